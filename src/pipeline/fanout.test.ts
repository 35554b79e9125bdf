/** Fan-out: every consumer gets the data (its own copy but the last), and the result waits for all of them. */
import { expect } from 'chai';
import fc from 'fast-check';
import { deferred, stateOf, type Deferred } from '../../test/support/deferred';
import { spanIds, traceRequest } from '../../test/support/trace-requests';
import type { MetricsConsumer, TracesConsumer } from '../consumer/consumer';
import { PipelineError } from '../core/errors';
import { TraceBatch } from '../pdata/trace-batch';
import { fanoutMetrics, fanoutTraces } from './fanout';

type Outcome = 'accept' | 'refuse' | 'fail';

const outcomes = fc.array(fc.constantFrom<Outcome>('accept', 'refuse', 'fail'), { minLength: 1, maxLength: 6 });

/** The outcomes and, as a permutation of their indices, the order in which the consumers settle. */
const scenario = outcomes.chain((o) => fc.tuple(fc.constant(o), fc.shuffledSubarray([...o.keys()], { minLength: o.length, maxLength: o.length })));

function errorOf(outcome: Outcome, i: number): PipelineError | undefined {
  if (outcome === 'accept') return undefined;
  return outcome === 'refuse' ? new PipelineError('refused', `queue ${i} full`) : new PipelineError('malformed', `consumer ${i} refuses for good`);
}

/** Settle the consumers one by one in `order`; the fan-out must still be pending before the last. */
async function settleInOrder(result: Promise<void>, pending: Deferred<void>[], outcomes: readonly Outcome[], order: readonly number[]): Promise<void> {
  for (const i of order) {
    expect(await stateOf(result)).to.equal('pending');
    const err = errorOf(outcomes[i] as Outcome, i);
    if (err === undefined) pending[i]?.resolve();
    else pending[i]?.reject(err);
  }
}

/** What the fan-out must answer: the first refusal in consumer order (not in time), or acceptance. */
function expectedError(outcomes: readonly Outcome[]): string | undefined {
  const i = outcomes.findIndex((o) => o !== 'accept');
  return i < 0 ? undefined : errorOf(outcomes[i] as Outcome, i)?.message;
}

async function outcomeOf(p: Promise<void>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => (e as Error).message,
  );
}

describe('fan-out', () => {
  it('traces: settles after every consumer did, accepted only if all accepted, else with the first refusal in consumer order', async () => {
    const request = traceRequest(spanIds(7, 3));
    await fc.assert(
      fc.asyncProperty(scenario, async ([outs, order]) => {
        const pending = outs.map(() => deferred());
        const got: TraceBatch[] = [];
        const consumers: TracesConsumer[] = pending.map((d) => ({
          consumeTraces: (b) => {
            got.push(b);
            return d.promise;
          },
        }));
        const original = TraceBatch.decode(request);
        const result = fanoutTraces(consumers).consumeTraces(original, {});
        await settleInOrder(result, pending, outs, order);
        expect(await outcomeOf(result)).to.equal(expectedError(outs));
        // Every consumer got the data; each but the last its own copy, so one changing it cannot affect another.
        expect(got).to.have.length(outs.length);
        expect(new Set(got).size).to.equal(outs.length);
        expect(got.at(-1)).to.equal(original);
        for (const b of got) expect(Buffer.from(b.encode()).equals(Buffer.from(request))).to.equal(true);
      }),
      { numRuns: 150 },
    );
  });

  it('metrics: the same, with the one request handed to every consumer', async () => {
    const request = new Uint8Array([1, 2, 3]);
    await fc.assert(
      fc.asyncProperty(scenario, async ([outs, order]) => {
        const pending = outs.map(() => deferred());
        const got: Uint8Array[] = [];
        const consumers: MetricsConsumer[] = pending.map((d) => ({
          consumeMetrics: (r) => {
            got.push(r);
            return d.promise;
          },
        }));
        const result = fanoutMetrics(consumers).consumeMetrics(request, {});
        await settleInOrder(result, pending, outs, order);
        expect(await outcomeOf(result)).to.equal(expectedError(outs));
        expect(got).to.deep.equal(outs.map(() => request));
      }),
      { numRuns: 150 },
    );
  });

  it('a single consumer is used as it is', () => {
    const only: TracesConsumer = { consumeTraces: async () => undefined };
    expect(fanoutTraces([only])).to.equal(only);
  });
});
