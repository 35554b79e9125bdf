/** Fan-out, for every signal: every consumer gets the data (its own copy but the last), and the result waits for all of them. */
import { expect } from 'chai';
import fc from 'fast-check';
import { deferred, stateOf, type Deferred } from '../../test/support/deferred';
import { logsRequest, metricsRequest } from '../../test/support/signal-requests';
import { spanIds, traceRequest } from '../../test/support/trace-requests';
import { AnySignalConsumer, forward, type AnyConsumer, type TracesConsumer } from '../consumer/consumer';
import type { PipelineContext } from '../core/component';
import { PipelineError } from '../core/errors';
import { LogsBatch } from '../pdata/logs-batch';
import { MetricsBatch } from '../pdata/metrics-batch';
import type { OtlpBatch } from '../pdata/otlp-batch';
import { TraceBatch } from '../pdata/trace-batch';
import { fanout } from './fanout';

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

/** A consumer of any signal that records what it got and settles when the test says. */
class Pending extends AnySignalConsumer {
  constructor(
    readonly got: OtlpBatch[],
    readonly settled: Promise<void>,
  ) {
    super();
  }
  consume(batch: OtlpBatch, _ctx: PipelineContext): Promise<void> {
    this.got.push(batch);
    return this.settled;
  }
}

const cases = [
  { signal: 'traces', request: traceRequest(spanIds(7, 3)), decode: (b: Uint8Array): OtlpBatch => TraceBatch.decode(b) },
  { signal: 'metrics', request: metricsRequest(4), decode: (b: Uint8Array): OtlpBatch => MetricsBatch.decode(b) },
  { signal: 'logs', request: logsRequest(5), decode: (b: Uint8Array): OtlpBatch => LogsBatch.decode(b) },
] as const;

describe('fan-out', () => {
  for (const c of cases) {
    it(`${c.signal}: settles after every consumer did, accepted only if all accepted, else with the first refusal in consumer order; each consumer but the last gets its own copy`, async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async ([outs, order]) => {
          const pending = outs.map(() => deferred());
          const got: OtlpBatch[] = [];
          const consumers: AnyConsumer[] = pending.map((d) => new Pending(got, d.promise));
          const original = c.decode(c.request);
          const result = forward(fanout(consumers), original, {});
          await settleInOrder(result, pending, outs, order);
          expect(await outcomeOf(result)).to.equal(expectedError(outs));
          expect(got).to.have.length(outs.length);
          expect(new Set(got).size).to.equal(outs.length);
          expect(got.at(-1)).to.equal(original);
          for (const b of got) {
            expect(b.signal).to.equal(c.signal);
            expect(Buffer.from(b.encode()).equals(Buffer.from(c.request))).to.equal(true);
          }
          // A change by one consumer (a processor adding attributes) does not show in another's copy.
          if (got.length > 1) {
            got[0]!.addResourceAttributes(0, [['k8s.pod.name', 'only-in-the-first']]);
            expect(got.at(-1)!.resourceAttribute(0, 'k8s.pod.name')).to.equal(undefined);
          }
        }),
        { numRuns: 100 },
      );
    });
  }

  it('a single consumer is used as it is', () => {
    const only: TracesConsumer = { consumeTraces: async () => undefined };
    expect(fanout([only])).to.equal(only);
  });
});
