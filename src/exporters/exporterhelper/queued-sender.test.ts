/**
 * The exporters' sending queue against a fake transport and fake time: the bound, num_consumers, retries with
 * jittered exponential back-off or the server's hint, max_elapsed_time, drop-and-count, the shutdown deadline,
 * and the release of each request's bytes exactly once.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { capturedLogger } from '../../../test/support/captured-logs';
import { deferred, stateOf, type Deferred } from '../../../test/support/deferred';
import { FakeTimers, settle } from '../../../test/support/fake-timers';
import { PipelineError } from '../../core/errors';
import { bodyBytes, type Body, type QueueItem, type QueueStore } from '../../core/storage';
import { Telemetry } from '../../core/telemetry';
import { TYPES, protoType } from '../../pdata/proto';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import type { RetryConfig, SendingQueueConfig } from './config';
import { MemoryQueueStore, QueuedSender } from './queued-sender';
import type { SendResult, Transport } from './transport';

const ID = 'otlp/test';

/** Records what it is asked to send; answers with `respond` (a test replaces it). */
class FakeTransport implements Transport {
  /** The first byte of every body sent, in order: which request each attempt was. */
  readonly sent: number[] = [];
  readonly events: string[] = [];
  respond: (request: number, attempt: number) => SendResult | Promise<SendResult> = () => ({ status: 'success' });
  async send(body: Body): Promise<SendResult> {
    const request = (body as Uint8Array)[0] as number;
    this.sent.push(request);
    this.events.push(`send ${request}`);
    return this.respond(request, this.sent.filter((r) => r === request).length);
  }
  async close(): Promise<void> {
    this.events.push('close');
  }
  /** Answer every send when the test settles its entry in the returned list. */
  holdEverySend(): Deferred<SendResult>[] {
    const holds: Deferred<SendResult>[] = [];
    this.respond = () => {
      const d = deferred<SendResult>();
      holds.push(d);
      return d.promise;
    };
    return holds;
  }
}

const retryable = (retryAfterMs?: number): SendResult => ({ status: 'retryable', error: new Error('unavailable'), retryAfterMs });
const failure = (): SendResult => ({ status: 'failure', error: new Error('bad request') });

/** Request `id` of `spans` spans, counting the releases of its bytes in `released[id]`. */
function request(id: number, spans: number, released: number[]): QueueItem {
  released[id] = 0;
  return { body: new Uint8Array([id]), items: spans, release: () => (released[id] = (released[id] ?? 0) + 1) };
}

function setup(o: { queue?: Partial<SendingQueueConfig>; retry?: Partial<RetryConfig>; store?: QueueStore; timers?: FakeTimers } = {}) {
  const telemetry = new Telemetry();
  const { logger, lines } = capturedLogger();
  const transport = new FakeTransport();
  const timers = o.timers ?? new FakeTimers({ autoAdvance: true });
  const queue: SendingQueueConfig = { enabled: true, num_consumers: 1, queue_size: 100, storage: undefined, ...o.queue };
  const sender = new QueuedSender({
    id: ID,
    unit: 'spans',
    transport,
    timeoutMs: 5000,
    queue,
    retry: { enabled: true, initial_interval: 1000, max_interval: 8000, max_elapsed_time: 300_000, multiplier: 2, randomization_factor: 0, ...o.retry },
    logger,
    telemetry,
    clock: timers,
    ...(o.store === undefined ? {} : { store: o.store }),
  });
  const counter = (what: 'sent' | 'send_failed' | 'enqueue_failed'): number => telemetry.counterValue(`otelcol_exporter_${what}_spans`, { exporter: ID });
  const gauge = (name: string): number | undefined => telemetry.families().find((f) => f.name === name)?.samples[0]?.value;
  const logged = (msg: string): Record<string, unknown>[] => lines.filter((l) => l.msg === msg);
  return { sender, transport, timers, counter, gauge, logged };
}

async function refusal(p: Promise<unknown>): Promise<PipelineError | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => e as PipelineError,
  );
}

describe('QueuedSender (exporterhelper sending queue)', () => {
  it('sends what is queued, counts it and releases its bytes once', async () => {
    const { sender, transport, counter } = setup();
    const released: number[] = [];
    sender.start();
    await sender.submit(request(1, 3, released));
    await settle();
    expect(transport.sent).to.deep.equal([1]);
    expect(counter('sent')).to.equal(3);
    expect(released[1]).to.equal(1);
    await sender.shutdown();
    expect(transport.events.at(-1)).to.equal('close');
  });

  describe('queue', () => {
    it('is bounded: when full it refuses retryably, counts the refused spans, leaves their bytes to the caller and is unhealthy until a send succeeds', async () => {
      const { sender, transport, counter, gauge } = setup({ queue: { queue_size: 2 } });
      const hold = deferred<SendResult>();
      transport.respond = () => hold.promise;
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 1, released));
      await settle(); // taken: in flight, not queued
      await sender.submit(request(2, 2, released));
      await sender.submit(request(3, 3, released));
      const err = await refusal(sender.submit(request(4, 4, released)));
      expect(err).to.be.instanceOf(PipelineError);
      expect(err?.code).to.equal('refused');
      expect(err?.retryable).to.equal(true);
      expect(err?.retryAfterMs).to.equal(1000);
      expect(err?.message).to.equal('sending queue of exporter otlp/test is full (2 requests)');
      expect(counter('enqueue_failed')).to.equal(4);
      expect(released[4]).to.equal(0);
      expect(sender.healthy()).to.equal(false);
      expect([gauge('otelcol_exporter_queue_size'), gauge('otelcol_exporter_queue_capacity'), gauge('otelcol_exporter_in_flight_requests')]).to.deep.equal([
        2, 2, 1,
      ]);
      hold.resolve({ status: 'success' });
      await sender.shutdown();
      expect(transport.sent).to.deep.equal([1, 2, 3]);
      expect(counter('sent')).to.equal(6);
      expect(sender.healthy()).to.equal(true);
      expect(released).to.deep.equal([undefined, 1, 1, 1, 0]);
    });

    it('runs num_consumers sends at once and queues the rest', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 12 }), async (consumers, requests) => {
          const { sender, transport, gauge } = setup({ queue: { num_consumers: consumers } });
          const holds = transport.holdEverySend();
          sender.start();
          for (let i = 0; i < requests; i++) await sender.submit(request(i, 1, []));
          await settle();
          const busy = Math.min(consumers, requests);
          expect(transport.sent).to.have.length(busy);
          expect(gauge('otelcol_exporter_in_flight_requests')).to.equal(busy);
          expect(sender.queueSize).to.equal(requests - busy);
          // Each finished send frees its consumer for the next request.
          transport.respond = () => ({ status: 'success' });
          for (const h of holds) h.resolve({ status: 'success' });
          await sender.shutdown();
          expect([...transport.sent].sort((a, b) => a - b)).to.deep.equal([...Array(requests).keys()]);
        }),
        { numRuns: 40 },
      );
    });

    it('with the queue disabled, sends in the caller’s time and refuses retryably what it could not send', async () => {
      const { sender, transport, counter } = setup({ queue: { enabled: false } });
      const released: number[] = [];
      sender.start();
      const hold = deferred<SendResult>();
      transport.respond = () => hold.promise;
      const sending = sender.submit(request(1, 2, released));
      expect(await stateOf(sending)).to.equal('pending');
      hold.resolve({ status: 'success' });
      await sending;
      expect(counter('sent')).to.equal(2);
      transport.respond = () => failure();
      const err = await refusal(sender.submit(request(2, 5, released)));
      expect(err?.code).to.equal('unavailable');
      expect(err?.retryable).to.equal(true);
      expect(counter('send_failed')).to.equal(5);
      expect(released).to.deep.equal([undefined, 1, 1]);
      await sender.shutdown();
    });
  });

  describe('retry', () => {
    it('retries retryable failures with exponential back-off capped at max_interval, then delivers once', async () => {
      const { sender, transport, timers, counter, logged } = setup({ retry: { initial_interval: 1000, multiplier: 2, max_interval: 5000 } });
      transport.respond = (_r, attempt) => (attempt <= 5 ? retryable() : { status: 'success' });
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 4, released));
      await sender.shutdown();
      expect(timers.sleeps).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
      expect(transport.sent).to.deep.equal([1, 1, 1, 1, 1, 1]);
      expect([counter('sent'), counter('send_failed')]).to.deep.equal([4, 0]);
      expect(released[1]).to.equal(1);
      // An outage logs one line per interval, not one per attempt.
      expect(logged('Exporting failed; will retry')).to.have.length(1);
    });

    it('jitters each back-off to interval × (1 − f + 2f·random), within [1 − f, 1 + f] of the interval', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 8 }),
          async (factor, randoms) => {
            const { sender, transport, timers } = setup({ retry: { initial_interval: 100, multiplier: 1.5, max_interval: 400, randomization_factor: factor } });
            let draw = 0;
            timers.setRandom(() => randoms[draw++] as number);
            transport.respond = (_r, attempt) => (attempt <= randoms.length ? retryable() : { status: 'success' });
            sender.start();
            await sender.submit(request(1, 1, []));
            await sender.shutdown();
            expect(timers.sleeps).to.have.length(randoms.length);
            let interval = 100;
            timers.sleeps.forEach((wait, k) => {
              expect(wait).to.be.closeTo(interval * (1 - factor + (randoms[k] as number) * 2 * factor), 1e-9);
              expect(wait).to.be.within(interval * (1 - factor) - 1e-9, interval * (1 + factor) + 1e-9);
              interval = Math.min(400, interval * 1.5);
            });
          },
        ),
        { numRuns: 100 },
      );
    });

    it("waits as long as the server's RetryInfo / Retry-After says when that is longer than its own back-off", async () => {
      const { sender, transport, timers } = setup({ retry: { initial_interval: 1000, multiplier: 2, randomization_factor: 0.5 } });
      timers.setRandom(() => 0.9);
      transport.respond = (_r, attempt) => (attempt === 1 ? retryable(7000) : attempt === 2 ? retryable() : { status: 'success' });
      sender.start();
      await sender.submit(request(1, 1, []));
      await sender.shutdown();
      // The back-off after the hint goes on from the second interval, jittered.
      expect(timers.sleeps).to.deep.equal([7000, 2000 * (1 - 0.5 + 0.9 * 2 * 0.5)]);
    });

    it('never waits less than its own back-off, whatever the hint (0 s included): the longer of the two, as the Collector', async () => {
      const { sender, transport, timers } = setup({ retry: { initial_interval: 1000, multiplier: 2, max_interval: 8000, randomization_factor: 0 } });
      const hints = [0, 0, 500, 3000, 0, 20_000, 1];
      transport.respond = (_r, attempt) => (attempt <= hints.length ? retryable(hints[attempt - 1]) : { status: 'success' });
      sender.start();
      await sender.submit(request(1, 1, []));
      await sender.shutdown();
      expect(timers.sleeps).to.deep.equal([1000, 2000, 4000, 8000, 8000, 20_000, 8000]);
    });

    it('waits max(hint, jittered back-off) before each attempt, the back-off growing as without hints (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              hint: fc.option(fc.integer({ min: 0, max: 5000 }), { nil: undefined }),
              random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
            }),
            {
              minLength: 1,
              maxLength: 8,
            },
          ),
          async (attempts) => {
            const { sender, transport, timers } = setup({ retry: { initial_interval: 100, multiplier: 1.5, max_interval: 1000, randomization_factor: 0.5 } });
            let draw = 0;
            timers.setRandom(() => attempts[draw++]?.random as number);
            transport.respond = (_r, attempt) => (attempt <= attempts.length ? retryable(attempts[attempt - 1]?.hint) : { status: 'success' });
            sender.start();
            await sender.submit(request(1, 1, []));
            await sender.shutdown();
            let interval = 100;
            expect(timers.sleeps).to.have.length(attempts.length);
            timers.sleeps.forEach((wait, k) => {
              const { hint, random } = attempts[k] as { hint: number | undefined; random: number };
              const backOff = interval * (0.5 + random);
              expect(wait).to.be.closeTo(Math.max(backOff, hint ?? 0), 1e-9);
              interval = Math.min(1000, interval * 1.5);
            });
          },
        ),
        { numRuns: 100 },
      );
    });

    it('gives up once the next wait would pass max_elapsed_time: drops, counts and logs the spans, releases their bytes once', async () => {
      const { sender, transport, timers, counter, logged } = setup({
        retry: { initial_interval: 1000, multiplier: 2, max_interval: 10_000, max_elapsed_time: 5000 },
      });
      transport.respond = () => retryable();
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 6, released));
      await sender.shutdown();
      // Attempts at 0, 1000 and 3000 ms; the next would start at 7000 > 5000.
      expect(transport.sent).to.deep.equal([1, 1, 1]);
      expect(timers.sleeps).to.deep.equal([1000, 2000]);
      expect([counter('sent'), counter('send_failed')]).to.deep.equal([0, 6]);
      expect(logged('Exporting failed; dropping data').map((l) => [l.spans, l.attempts, l.reason])).to.deep.equal([[6, 3, 'retries exhausted']]);
      expect(released[1]).to.equal(1);
      expect(sender.healthy()).to.equal(false);
    });

    it('with max_elapsed_time 0 retries for as long as it takes', async () => {
      const { sender, transport, counter } = setup({ retry: { max_elapsed_time: 0, max_interval: 30_000 } });
      transport.respond = (_r, attempt) => (attempt <= 200 ? retryable() : { status: 'success' });
      sender.start();
      await sender.submit(request(1, 2, []));
      await sender.shutdown();
      expect(transport.sent).to.have.length(201);
      expect(counter('sent')).to.equal(2);
    });

    it('drops a permanent failure at once, and a retryable one when retry_on_failure is disabled', async () => {
      for (const [retry, result] of [
        [{}, failure()],
        [{ enabled: false }, retryable()],
      ] as const) {
        const { sender, transport, timers, counter, logged } = setup({ retry });
        transport.respond = () => result;
        const released: number[] = [];
        sender.start();
        await sender.submit(request(1, 3, released));
        await sender.shutdown();
        expect(transport.sent).to.deep.equal([1]);
        expect(timers.sleeps).to.deep.equal([]);
        expect(counter('send_failed')).to.equal(3);
        expect(logged('Exporting failed; dropping data').map((l) => l.reason)).to.deep.equal(['permanent error']);
        expect(released[1]).to.equal(1);
      }
    });

    it('counts the spans a partial success rejected as failed and the rest as sent', async () => {
      const { sender, transport, counter, logged } = setup();
      transport.respond = () => ({ status: 'success', rejected: 3, message: 'spans too old' });
      sender.start();
      await sender.submit(request(1, 10, []));
      await sender.shutdown();
      expect([counter('sent'), counter('send_failed')]).to.deep.equal([7, 3]);
      expect(logged('Partial success: the destination rejected some data').map((l) => [l.rejected, l.message])).to.deep.equal([[3, 'spans too old']]);
    });
  });

  describe('shutdown', () => {
    it('refuses new data retryably once shutting down', async () => {
      const { sender, counter } = setup();
      sender.start();
      await sender.shutdown();
      const released: number[] = [];
      const err = await refusal(sender.submit(request(1, 2, released)));
      expect([err?.code, err?.retryable]).to.deep.equal(['shutting_down', true]);
      expect(counter('enqueue_failed')).to.equal(2);
      expect(released[1]).to.equal(0);
    });

    it('drains the queue, then closes the transport', async () => {
      const { sender, transport } = setup({ queue: { num_consumers: 2 } });
      const holds = transport.holdEverySend();
      sender.start();
      for (const id of [1, 2, 3]) await sender.submit(request(id, 1, []));
      const stopping = sender.shutdown();
      for (let i = 0; i < 3; i++) {
        await settle();
        expect(await stateOf(stopping)).to.equal('pending');
        holds[i]?.resolve({ status: 'success' });
      }
      await stopping;
      expect(transport.events).to.deep.equal(['send 1', 'send 2', 'send 3', 'close']);
    });

    it('is safe twice: a second call waits for the first to finish draining, and its deadline counts too', async () => {
      const timers = new FakeTimers();
      const { sender, transport, counter } = setup({ timers });
      const holds = transport.holdEverySend();
      sender.start();
      for (const id of [1, 2]) await sender.submit(request(id, 1, []));
      await settle();
      const first = sender.shutdown();
      const second = sender.shutdown();
      await settle();
      expect([await stateOf(first), await stateOf(second)]).to.deep.equal(['pending', 'pending']);
      holds[0]?.resolve({ status: 'success' });
      await settle();
      expect([await stateOf(first), await stateOf(second)]).to.deep.equal(['pending', 'pending']);
      holds[1]?.resolve({ status: 'success' });
      await Promise.all([first, second]);
      expect(transport.events).to.deep.equal(['send 1', 'send 2', 'close']);
      expect(counter('sent')).to.equal(2);

      // A deadline given to the second call stops the drain the first one started.
      const later = setup({ timers: new FakeTimers() });
      later.transport.respond = () => retryable();
      later.sender.start();
      await later.sender.submit(request(3, 4, []));
      await settle();
      const draining = later.sender.shutdown();
      const deadline = new AbortController();
      const again = later.sender.shutdown(deadline.signal);
      deadline.abort();
      await Promise.all([draining, again]);
      expect(later.counter('send_failed')).to.equal(4);
      expect(later.transport.events.at(-1)).to.equal('close');
    });

    it('at the deadline stops retrying: drops and counts the spans in flight, releases them once, logs what is left queued, closes the transport', async () => {
      const timers = new FakeTimers();
      const { sender, transport, counter, logged } = setup({ timers });
      transport.respond = () => retryable();
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 5, released));
      await settle();
      expect(timers.pending).to.equal(1); // request 1 waits to retry
      const deadline = new AbortController();
      const stopping = sender.shutdown(deadline.signal);
      await timers.advance(1000); // a retry before the deadline, still failing
      expect(transport.sent).to.deep.equal([1, 1]);
      expect(await stateOf(stopping)).to.equal('pending');
      deadline.abort();
      await stopping;
      expect(transport.sent).to.deep.equal([1, 1]);
      expect(counter('send_failed')).to.equal(5);
      expect(released[1]).to.equal(1);
      expect(transport.events.at(-1)).to.equal('close');
      expect(logged('Shutdown deadline passed with data still queued')).to.deep.equal([]);
    });

    it('at the deadline drops and counts what is still queued in memory, and releases its bytes once', async () => {
      const timers = new FakeTimers();
      const { sender, transport, counter, logged } = setup({ timers });
      transport.respond = () => retryable();
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 5, released));
      await settle();
      await sender.submit(request(2, 7, released)); // behind request 1, never sent
      const deadline = new AbortController();
      const stopping = sender.shutdown(deadline.signal);
      deadline.abort();
      await stopping;
      expect(transport.sent).to.deep.equal([1]);
      expect(counter('send_failed')).to.equal(12);
      expect(released).to.deep.equal([undefined, 1, 1]);
      expect(logged('Shutdown deadline passed with data still queued').map((l) => [l.requests, l.spans])).to.deep.equal([[1, 7]]);
    });

    it('with a persistent store, keeps what the deadline interrupts for the next start instead of dropping it', async () => {
      const store = new RecordingPersistentStore();
      const timers = new FakeTimers();
      const { sender, transport, counter, logged } = setup({ timers, store });
      transport.respond = () => retryable();
      const released: number[] = [];
      sender.start();
      await sender.submit(request(1, 5, released));
      // Written to the store: the caller's bytes are free at once.
      expect(released[1]).to.equal(1);
      await settle();
      await sender.submit(request(2, 7, released)); // behind request 1, never sent
      const deadline = new AbortController();
      const stopping = sender.shutdown(deadline.signal);
      deadline.abort();
      await stopping;
      expect(store.nacked).to.deep.equal([1]);
      expect(store.acked).to.deep.equal([]);
      expect(counter('send_failed')).to.equal(0);
      expect(released).to.deep.equal([undefined, 1, 1]);
      expect(store.size).to.equal(1);
      expect(logged('Shutdown deadline passed with data still queued').map((l) => [l.requests, l.spans])).to.deep.equal([[1, undefined]]);
      expect(transport.events.at(-1)).to.equal('close');
    });
  });

  it('an exporter id serving traces and metrics reports each of its gauges once per data_type', () => {
    const telemetry = new Telemetry();
    for (const unit of ['spans', 'metric_points'] as const) {
      const options = { id: 'otlp', unit, transport: new FakeTransport(), timeoutMs: 1000, logger: capturedLogger().logger, telemetry };
      new QueuedSender({
        ...options,
        queue: { enabled: true, num_consumers: 1, queue_size: 10, storage: undefined },
        retry: { enabled: false } as RetryConfig,
      });
    }
    const gauges = telemetry.families().filter((f) => f.type === 'gauge');
    expect(gauges.map((f) => f.name)).to.deep.equal(['otelcol_exporter_queue_size', 'otelcol_exporter_queue_capacity', 'otelcol_exporter_in_flight_requests']);
    for (const f of gauges)
      expect(f.samples.map((s) => s.labels)).to.deep.equal([
        { exporter: 'otlp', data_type: 'traces' },
        { exporter: 'otlp', data_type: 'metrics' },
      ]);
  });

  it('releases the bytes of every queued request exactly once and counts every span as sent or failed, whatever the transport answers', async () => {
    const outcome = fc.record({
      spans: fc.integer({ min: 1, max: 50 }),
      retries: fc.integer({ min: 0, max: 4 }),
      end: fc.constantFrom('success', 'failure', 'retryable', 'partial'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(outcome, { maxLength: 12 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 12 }),
        async (requests, consumers, size) => {
          // max_elapsed_time allows three attempts: a request whose retries outlast it is dropped.
          const { sender, transport, counter } = setup({ queue: { num_consumers: consumers, queue_size: size }, retry: { max_elapsed_time: 3500 } });
          transport.respond = (id, attempt) => {
            const r = requests[id] as (typeof requests)[number];
            if (attempt <= r.retries) return retryable();
            if (r.end === 'success') return { status: 'success' };
            if (r.end === 'partial') return { status: 'success', rejected: 1 };
            return r.end === 'failure' ? failure() : retryable();
          };
          const released: number[] = [];
          const accepted: number[] = [];
          sender.start();
          for (const [id, r] of requests.entries()) {
            const err = await refusal(sender.submit(request(id, r.spans, released)));
            if (err === undefined) accepted.push(id);
            else expect(err.code).to.equal('refused');
          }
          await sender.shutdown();
          for (const [id] of requests.entries()) expect(released[id]).to.equal(accepted.includes(id) ? 1 : 0);
          const spans = (ids: number[]): number => ids.reduce((n, id) => n + (requests[id]?.spans ?? 0), 0);
          expect(counter('sent') + counter('send_failed')).to.equal(spans(accepted));
          expect(counter('enqueue_failed')).to.equal(spans([...requests.keys()].filter((id) => !accepted.includes(id))));
          if (consumers > 1) return; // concurrent back-offs all move the one fake clock, so who runs out of time varies
          const delivered = accepted.filter((id) => {
            const r = requests[id] as (typeof requests)[number];
            return r.retries <= 2 && (r.end === 'success' || r.end === 'partial');
          });
          expect(counter('sent')).to.equal(spans(delivered) - delivered.filter((id) => requests[id]?.end === 'partial').length);
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** A store that keeps items across restarts as file_storage does: what it hands out is a copy read back, without a release. */
class RecordingPersistentStore implements QueueStore {
  readonly persistent = true;
  readonly acked: number[] = [];
  readonly nacked: number[] = [];
  readonly #items = new MemoryQueueStore();
  async push(item: QueueItem): Promise<void> {
    await this.#items.push({ body: Uint8Array.from(item.body as Uint8Array), items: item.items });
  }
  take(): QueueItem | undefined {
    return this.#items.take();
  }
  get size(): number {
    return this.#items.size;
  }
  async ack(item: QueueItem): Promise<void> {
    this.acked.push((item.body as Uint8Array)[0] as number);
  }
  async nack(item: QueueItem): Promise<void> {
    this.nacked.push((item.body as Uint8Array)[0] as number);
  }
  async close(): Promise<void> {}
}

describe('QueuedSender joining the requests waiting in a memory queue (merge)', () => {
  /** A transport that keeps every body it is sent, joined, and holds each send until the test answers it. */
  class HoldingTransport implements Transport {
    readonly bodies: Buffer[] = [];
    readonly holds: Deferred<SendResult>[] = [];
    async send(body: Body): Promise<SendResult> {
      this.bodies.push(bodyBytes(body));
      const d = deferred<SendResult>();
      this.holds.push(d);
      return d.promise;
    }
    async close(): Promise<void> {}
  }

  function mergingSender(maxBytes: number) {
    const telemetry = new Telemetry();
    const transport = new HoldingTransport();
    const sender = new QueuedSender({
      id: ID,
      unit: 'spans',
      transport,
      timeoutMs: 5000,
      queue: { enabled: true, num_consumers: 1, queue_size: 100, storage: undefined },
      retry: { enabled: true, initial_interval: 1000, max_interval: 8000, max_elapsed_time: 300_000, multiplier: 2, randomization_factor: 0 },
      logger: capturedLogger().logger,
      telemetry,
      clock: new FakeTimers({ autoAdvance: true }),
      merge: { maxBytes },
    });
    const sent = (): number => telemetry.counterValue('otelcol_exporter_sent_spans', { exporter: ID });
    return { sender, transport, sent };
  }

  it('sends the requests waiting behind the one it takes as one request, up to maxBytes; their bytes are released after delivery, once each', async () => {
    const released: number[] = [];
    const item = (id: number, spans: number, parts: Uint8Array[]): QueueItem => {
      released[id] = 0;
      return { body: parts, items: spans, release: () => (released[id] = (released[id] ?? 0) + 1) };
    };
    const a = item(0, 1, [traceRequest(spanIds(0, 1))]);
    // b arrives as two parts (as a re-encoded resource and the received bytes would), c as one buffer.
    const bBytes = traceRequest(spanIds(1, 2), { service: 'b' });
    const b = item(1, 2, [bBytes.subarray(0, 7), bBytes.subarray(7)]);
    const cBytes = traceRequest(spanIds(2, 3), { service: 'c' });
    const c: QueueItem = { ...item(2, 3, []), body: cBytes };
    const d = item(3, 4, [traceRequest(spanIds(3, 4), { service: 'd', padBytes: 2000 })]);
    const { sender, transport, sent } = mergingSender(bBytes.length + cBytes.length + 10);
    sender.start();
    await sender.submit(a);
    await settle();
    expect(transport.bodies).to.have.length(1); // a is in flight; b, c and d wait behind it
    for (const x of [b, c, d]) await sender.submit(x);
    await settle();
    expect(transport.bodies).to.have.length(1);
    transport.holds[0]?.resolve({ status: 'success' });
    await settle();
    // b and c fit within maxBytes together; d does not fit beside them and goes alone next.
    expect(transport.bodies).to.have.length(2);
    expect(transport.bodies[1]?.equals(Buffer.concat([bBytes, cBytes]))).to.equal(true);
    expect(released).to.deep.equal([1, 0, 0, 0]);
    transport.holds[1]?.resolve({ status: 'success' });
    await settle();
    expect(released).to.deep.equal([1, 1, 1, 0]);
    expect(sent()).to.equal(6);
    expect(transport.bodies).to.have.length(3);
    transport.holds[2]?.resolve({ status: 'success' });
    await settle();
    expect(released).to.deep.equal([1, 1, 1, 1]);
    expect(sent()).to.equal(10);
    // The joined body is one export request: the resources of b, then those of c, span for span.
    const joined = protoType(TYPES.exportTraceRequest).toObject(protoType(TYPES.exportTraceRequest).decode(transport.bodies[1] as Buffer), { longs: String });
    const one = (bytes: Uint8Array): unknown[] =>
      (protoType(TYPES.exportTraceRequest).toObject(protoType(TYPES.exportTraceRequest).decode(bytes), { longs: String }) as { resourceSpans: unknown[] })
        .resourceSpans;
    expect((joined as { resourceSpans: unknown[] }).resourceSpans).to.deep.equal([...one(bBytes), ...one(cBytes)]);
    await sender.shutdown();
  });

  it('a joined request that fails is retried whole and, dropped for good, counted whole and released once each', async () => {
    const released: number[] = [];
    const { sender, transport, sent } = mergingSender(1 << 20);
    sender.start();
    await sender.submit(request(0, 1, released));
    await settle();
    await sender.submit(request(1, 2, released));
    await sender.submit(request(2, 3, released));
    transport.holds[0]?.resolve({ status: 'success' });
    await settle();
    expect(transport.bodies.map((x) => [...x])).to.deep.equal([[0], [1, 2]]);
    transport.holds[1]?.resolve(retryable());
    await settle();
    expect(transport.bodies.map((x) => [...x])).to.deep.equal([[0], [1, 2], [1, 2]]);
    expect(released).to.deep.equal([1, 0, 0]);
    transport.holds[2]?.resolve(failure());
    await settle();
    expect(released).to.deep.equal([1, 1, 1]);
    expect(sent()).to.equal(1);
    await sender.shutdown();
  });
});
