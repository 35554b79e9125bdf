/**
 * The queued OTLP exporter and the receiver's pooled request buffer: the queue holds the bytes until it has sent
 * them, and hands them back exactly once whether it sends, drops or refuses them.
 */
import { expect } from 'chai';
import pino from 'pino';
import { deferred, stateOf } from '../../../test/support/deferred';
import { FakeTimers, settle } from '../../../test/support/fake-timers';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import type { Host } from '../../core/component';
import type { Body } from '../../core/storage';
import { bodyBytes } from '../../core/storage';
import { Telemetry } from '../../core/telemetry';
import { BufferPool, type BufferLease } from '../../pdata/buffer-pool';
import { TraceBatch } from '../../pdata/trace-batch';
import type { SendingQueueConfig } from './config';
import { OtlpExporter } from './otlp-exporter';
import { QueuedSender } from './queued-sender';
import type { SendResult, Transport } from './transport';

const silent = pino({ level: 'silent' });
const host: Host = { getExtension: () => undefined, components: () => new Map(), healthy: () => true };

/** A received request in a pooled (poisoned on release) buffer, as a receiver holds it. */
function received(pool: BufferPool, bytes: Uint8Array): { lease: BufferLease; batch: TraceBatch } {
  const lease = pool.gather([bytes], bytes.length);
  return { lease, batch: TraceBatch.decode(lease.bytes, lease) };
}

async function exporter(queue: Partial<SendingQueueConfig>, respond: (body: Buffer) => Promise<SendResult>): Promise<OtlpExporter> {
  const transport: Transport = { send: (body: Body) => respond(Buffer.from(bodyBytes(body))), close: async () => undefined };
  const sender = new QueuedSender({
    id: 'otlp',
    unit: 'spans',
    transport,
    timeoutMs: 1000,
    queue: { enabled: true, num_consumers: 1, queue_size: 1, storage: undefined, ...queue },
    retry: { enabled: false, initial_interval: 1000, max_interval: 1000, max_elapsed_time: 0, multiplier: 1, randomization_factor: 0 },
    logger: silent,
    telemetry: new Telemetry(),
    clock: new FakeTimers({ autoAdvance: true }),
  });
  const e = new OtlpExporter({ id: 'otlp', logger: silent, telemetry: new Telemetry() }, sender, undefined);
  await e.start(host);
  return e;
}

describe('OtlpExporter with pooled request buffers', () => {
  const request = traceRequest(spanIds(3, 4));

  it('keeps the bytes after the receiver let go of them, until they are sent; then the buffer goes back to the pool', async () => {
    const pool = new BufferPool({ poison: true });
    const sending = deferred<SendResult>();
    const sent: Buffer[] = [];
    const e = await exporter({}, (body) => {
      sent.push(body);
      return sending.promise;
    });
    const { lease, batch } = received(pool, request);
    await e.consumeTraces(batch);
    lease.release(); // the receiver answered the client and is done
    await settle();
    expect(lease.refs).to.equal(1); // the queue's hold
    expect(sent).to.have.length(1);
    expect(Buffer.compare(sent[0] as Buffer, Buffer.from(request))).to.equal(0);
    sending.resolve({ status: 'success' });
    await e.shutdown();
    expect(lease.refs).to.equal(0);
    expect(pool.idleBytes).to.be.greaterThan(0);
  });

  it('hands the bytes back once when the queue is full (the receiver still holds its own)', async () => {
    const pool = new BufferPool({ poison: true });
    const e = await exporter({}, () => new Promise(() => undefined)); // never answers: the queue fills
    await e.consumeTraces(received(pool, request).batch); // in flight
    await settle();
    await e.consumeTraces(received(pool, request).batch); // queued
    const { lease, batch } = received(pool, request);
    const err = await e.consumeTraces(batch).then(
      () => undefined,
      (x: unknown) => x as Error,
    );
    expect(err?.message).to.match(/sending queue of exporter otlp is full/);
    expect(lease.refs).to.equal(1);
    lease.release();
    expect(lease.refs).to.equal(0);
  });

  it('with the queue disabled, hands the bytes back once whether the send succeeds or fails', async () => {
    for (const result of [{ status: 'success' }, { status: 'failure', error: new Error('no') }] as SendResult[]) {
      const pool = new BufferPool({ poison: true });
      const e = await exporter({ enabled: false }, async () => result);
      const { lease, batch } = received(pool, request);
      await e.consumeTraces(batch).catch(() => undefined);
      expect(lease.refs).to.equal(1);
      lease.release();
      await e.shutdown();
    }
  });

  it('shuts down safely twice: the second call returns once the queue has drained, not before', async () => {
    const sending = deferred<SendResult>();
    const e = await exporter({}, () => sending.promise);
    await e.consumeTraces(received(new BufferPool(), request).batch);
    await settle();
    const first = e.shutdown();
    const second = e.shutdown();
    await settle();
    expect(await stateOf(second)).to.equal('pending');
    sending.resolve({ status: 'success' });
    await Promise.all([first, second]);
  });
});
