/**
 * The loadbalancing exporter alone, in front of backends the test controls: the wait before a retry when the
 * backend sends a RetryInfo hint, shutdown called twice, and coalescing (`sending_queue.batch`): its bounds, a
 * request answered only once its coalesced parts are delivered, and a coalesced call that fails retried whole,
 * nothing lost or doubled. (Routing, ring changes and restarts run in a whole routelens:
 * test/cluster/loadbalancing.test.ts.)
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { capturedLogger } from '../../../test/support/captured-logs';
import { stateOf } from '../../../test/support/deferred';
import { until } from '../../../test/support/raw-clients';
import { OtlpSink } from '../../../test/support/otlp-sink';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import type { Host } from '../../core/component';
import { GrpcStatus } from '../../core/errors';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import { encodeRpcStatus } from '../../pdata/rpc-status';
import { TraceBatch } from '../../pdata/trace-batch';
import { loadBalancingConfigSchema } from './config';
import { LoadBalancingExporter } from './exporter';

const host: Host = { getExtension: () => undefined, components: () => new Map(), healthy: () => true };

async function exporter(backend: string | string[], retry: Record<string, unknown>, sendingQueue?: Record<string, unknown>) {
  const issues = new ConfigErrorList();
  const config = loadBalancingConfigSchema.parse(
    {
      resolver: { static: { hostnames: typeof backend === 'string' ? [backend] : backend } },
      protocol: { otlp: { tls: { insecure: true }, timeout: '5s' } },
      retry_on_failure: retry,
      sending_queue: sendingQueue,
    },
    'exporters.loadbalancing',
    issues,
  );
  expect(issues.items).to.deep.equal([]);
  const { logger, lines } = capturedLogger();
  const e = new LoadBalancingExporter({ id: 'loadbalancing', logger, telemetry: new Telemetry() }, config);
  await e.start(host);
  return { e, lines };
}

/** A gRPC backend answering the first `refusals` calls UNAVAILABLE with a RetryInfo of `hintMs`, then OK. */
async function refusingBackend(refusals: number, hintMs: number): Promise<{ endpoint: string; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      if (++calls <= refusals) {
        const details = Buffer.from(encodeRpcStatus(GrpcStatus.UNAVAILABLE, 'busy', hintMs)).toString('base64');
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'busy', 'grpc-status-details-bin': details },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `127.0.0.1:${(h2.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () => new Promise<void>((resolve) => h2.close(() => resolve())),
  };
}

describe('loadbalancing exporter', () => {
  it("waits its own back-off when the backend's RetryInfo asks for less (0 s), as the Collector's retry sender", async () => {
    const backend = await refusingBackend(1, 0);
    const { e, lines } = await exporter(backend.endpoint, { initial_interval: '300ms', randomization_factor: 0 });
    try {
      await e.consumeTraces(TraceBatch.decode(traceRequest(spanIds(1, 2))));
      await until(() => backend.calls() === 2, 'the retry after the refusal');
      const retries = lines.filter((l) => l.msg === 'Exporting to a backend failed; will retry, routed again').map((l) => l.retry_in_ms);
      expect(retries).to.deep.equal([300]);
    } finally {
      await e.shutdown();
      await backend.close();
    }
  });

  it('shuts down safely twice: the second call returns once what was queued is delivered, not before', async () => {
    const sink = await new OtlpSink().start();
    const { e } = await exporter(sink.grpcEndpoint, {});
    try {
      sink.pause();
      await e.consumeTraces(TraceBatch.decode(traceRequest(spanIds(2, 3))));
      await until(() => sink.heldCount === 1, 'the request held at the backend');
      const first = e.shutdown();
      const second = e.shutdown();
      expect(await stateOf(second)).to.equal('pending');
      sink.resume();
      await Promise.all([first, second]);
      expect(sink.spanCount()).to.equal(3);
    } finally {
      sink.resume();
      await sink.stop();
    }
  });
});

/** A request of one trace: `n` spans whose ids start with `prefix` (so every request's spans are its own). */
function oneTrace(prefix: number, n: number): TraceBatch {
  return TraceBatch.decode(traceRequest(spanIds(prefix, n)));
}

/** The span counts of the calls a sink recorded, smallest first. */
function callSizes(sink: OtlpSink): number[] {
  return sink
    .traceRequests()
    .map((r) => JSON.stringify(r).match(/"spanId"/g)?.length ?? 0)
    .sort((a, b) => a - b);
}

describe('loadbalancing exporter: coalescing (sending_queue.batch)', () => {
  let sinks: OtlpSink[] = [];
  afterEach(async () => {
    for (const s of sinks) {
      s.resume();
      await s.stop();
    }
    sinks = [];
  });

  it('sends the parts of several requests for one backend in one call once min_size spans wait', async () => {
    const sink = await new OtlpSink().start();
    sinks.push(sink);
    const { e } = await exporter(sink.grpcEndpoint, {}, { batch: { flush_timeout: '1h', min_size: 30 } });
    try {
      for (let i = 1; i <= 3; i++) await e.consumeTraces(oneTrace(i, 10));
      await until(() => sink.spanCount() === 30, '30 spans at the backend');
      expect(callSizes(sink)).to.deep.equal([30]);
    } finally {
      await e.shutdown();
    }
  });

  it('max_size: a part that would pass it starts the next call, a larger part goes alone; shutdown sends what waits', async () => {
    const sink = await new OtlpSink().start();
    sinks.push(sink);
    const { e } = await exporter(sink.grpcEndpoint, {}, { batch: { flush_timeout: '1h', min_size: 25, max_size: 25 } });
    for (let i = 1; i <= 3; i++) await e.consumeTraces(oneTrace(i, 10));
    await until(() => sink.spanCount() === 20, 'the first two requests in one call');
    await e.consumeTraces(oneTrace(4, 40));
    await until(() => sink.spanCount() === 70, 'the third request alone, then the 40-span one');
    await e.consumeTraces(oneTrace(5, 3));
    await e.shutdown();
    expect(callSizes(sink)).to.deep.equal([3, 10, 20, 40]);
    expect(new Set(sink.spans().map((s) => s.spanId)).size).to.equal(73);
  });

  it('flush_timeout sends a group that stays below min_size', async () => {
    const sink = await new OtlpSink().start();
    sinks.push(sink);
    const { e } = await exporter(sink.grpcEndpoint, {}, { batch: { flush_timeout: '50ms' } });
    try {
      await e.consumeTraces(oneTrace(1, 4));
      await e.consumeTraces(oneTrace(2, 4));
      await until(() => sink.spanCount() === 8, 'the spans sent by the timer');
    } finally {
      await e.shutdown();
    }
  });

  it('without a queue, a request is answered only once the call carrying its parts is delivered', async () => {
    const sink = await new OtlpSink().start();
    sinks.push(sink);
    const { e } = await exporter(sink.grpcEndpoint, {}, { enabled: false, batch: { flush_timeout: '1h', min_size: 20 } });
    try {
      const first = e.consumeTraces(oneTrace(1, 10));
      expect(await stateOf(first), 'waiting to be coalesced').to.equal('pending');
      sink.pause();
      const second = e.consumeTraces(oneTrace(2, 10));
      await until(() => sink.heldCount === 1, 'the coalesced call held at the backend');
      expect(await stateOf(first), 'sent, not yet delivered').to.equal('pending');
      expect(await stateOf(second)).to.equal('pending');
      sink.resume();
      await Promise.all([first, second]);
      expect(callSizes(sink)).to.deep.equal([20]);
    } finally {
      await e.shutdown();
    }
  });

  it('a coalesced call that fails is retried whole: every part reaches its backend once, the other backend unaffected', async () => {
    sinks = [await new OtlpSink().start(), await new OtlpSink().start()];
    const [good, bad] = sinks as [OtlpSink, OtlpSink];
    bad.failWith = { grpcCode: grpc.status.UNAVAILABLE, httpStatus: 503 };
    const { e, lines } = await exporter(
      [good.grpcEndpoint, bad.grpcEndpoint],
      { initial_interval: '50ms', max_interval: '100ms', max_elapsed_time: '0s' },
      { batch: { flush_timeout: '20ms' } },
    );
    try {
      // Three requests of 32 two-span traces each: both backends own some of every request.
      const ids: string[] = [];
      for (let r = 0; r < 3; r++) {
        const traces = Array.from({ length: 32 }, (_, t) => oneTrace(r * 32 + t + 1, 2));
        for (const t of traces) t.forEachSpan((s) => void ids.push(s.spanIdHex()));
        await e.consumeTraces(TraceBatch.concat(traces));
      }
      await until(() => lines.some((l) => l.msg === 'Exporting to a backend failed; will retry, routed again'), 'a failed coalesced call');
      await until(() => good.spanCount() > 0, 'the healthy backend receiving meanwhile');
      bad.failWith = undefined;
      await until(() => good.spanCount() + bad.spanCount() === ids.length, 'every span delivered');
      await e.shutdown();
      const got = [...good.spans(), ...bad.spans()].map((s) => s.spanId);
      expect([...got].sort()).to.deep.equal([...ids].sort());
      expect(bad.spanCount(), 'the failing backend owns part of the traces').to.be.above(0);
      const goodTraces = new Set(good.spans().map((s) => s.traceId));
      expect(bad.spans().filter((s) => goodTraces.has(s.traceId))).to.deep.equal([]);
    } finally {
      await e.shutdown();
    }
  });

  it('refuses max_size below min_size and sizers other than items, naming the key', () => {
    const issues = new ConfigErrorList();
    loadBalancingConfigSchema.parse(
      { resolver: { static: { hostnames: ['a:4317'] } }, sending_queue: { batch: { min_size: 100, max_size: 50, sizer: 'bytes' } } },
      'exporters.loadbalancing',
      issues,
    );
    expect(issues.items.map((i) => i.path)).to.deep.equal([
      'exporters.loadbalancing.sending_queue.batch.sizer',
      'exporters.loadbalancing.sending_queue.batch.max_size',
    ]);
  });
});
