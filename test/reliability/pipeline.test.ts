/**
 * Reliability of the exporter side: queueing and retrying while the destination is down, back-pressure when
 * the queue is full (and the real JS SDK retrying through it), isolation between exporters, permanent
 * errors, draining on shutdown, and fan-out isolation between pipelines.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Component, PipelineContext } from '../../src/core/component';
import type { ProcessorFactory } from '../../src/consumer/factory';
import type { TracesConsumer } from '../../src/consumer/consumer';
import { obj, str } from '../../src/core/schema';
import { decodeRetryInfo, decodeRpcStatus } from '../../src/pdata/rpc-status';
import type { TraceBatch } from '../../src/pdata/trace-batch';
import { freePort } from '../support/free-port';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { metricValue, startRoutelens, type RunningRoutelens } from '../support/routelens';
import { RawGrpcClient, buildRequest, httpRequest, until } from '../support/raw-clients';

const PROTO = { 'content-type': 'application/x-protobuf' };

function serviceOf(s: { resource: Record<string, unknown> }): string | undefined {
  return attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue as string | undefined;
}

/** `joined` cut into the `requests` it begins with, one after another (a part that is none of them is left as is). */
function splitInto(joined: string, requests: readonly string[]): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < joined.length) {
    const r = requests.find((q) => joined.startsWith(q, at));
    if (r === undefined) {
      parts.push(joined.slice(at));
      break;
    }
    parts.push(r);
    at += r.length;
  }
  return parts;
}

function idsAt(sink: OtlpSink, transport: 'grpc' | 'http', service: string): string[] {
  return sink
    .spans(transport)
    .filter((s) => serviceOf(s) === service)
    .map((s) => s.spanId)
    .sort();
}

function logsOf(rl: RunningRoutelens, msg: string, exporter?: string): Record<string, unknown>[] {
  return rl.logs.filter((l) => l.msg === msg && (exporter === undefined || l.exporter === exporter));
}

const receivers = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
`;

describe('reliability of the pipeline', function () {
  this.timeout(90_000);
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function sinkUp(): Promise<OtlpSink> {
    const sink = await new OtlpSink().start();
    cleanups.push(() => sink.stop());
    return sink;
  }
  async function routelens(yaml: string, extra: ProcessorFactory<unknown>[] = []): Promise<RunningRoutelens> {
    const rl = await startRoutelens(yaml, { extraFactories: extra });
    cleanups.push(() => rl.stop());
    return rl;
  }
  function grpcClient(rl: RunningRoutelens): RawGrpcClient {
    const c = new RawGrpcClient(rl.grpcPort());
    cleanups.push(() => c.close());
    return c;
  }
  async function metric(rl: RunningRoutelens, name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricValue(await rl.metricsText(), name, labels);
  }

  it('queues and retries while the destination is down, then delivers every span exactly once when it is back on the same ports', async () => {
    const sink = await sinkUp();
    const rl = await routelens(`${receivers}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    timeout: 2s
    retry_on_failure: { initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0 }
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    timeout: 2s
    retry_on_failure: { initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, otlphttp] }
`);
    const ports = { grpc: sink.grpcPort, http: sink.httpPort };
    await sink.stop();
    const client = grpcClient(rl);
    const sent: string[] = [];
    const bodies: string[] = [];
    for (let i = 0; i < 10; i++) {
      const a = buildRequest('outage', 3);
      expect((await client.export(a.bytes)).code).to.equal(grpc.status.OK);
      const b = buildRequest('outage', 3);
      expect((await httpRequest(rl.httpPort(), '/v1/traces', b.bytes, PROTO)).status).to.equal(200);
      sent.push(...a.spanIds, ...b.spanIds);
      bodies.push(Buffer.from(a.bytes).toString('hex'), Buffer.from(b.bytes).toString('hex'));
    }
    // Both exporters are failing and retrying, nothing was dropped.
    await until(
      () => logsOf(rl, 'Exporting failed; will retry', 'otlp').length >= 2 && logsOf(rl, 'Exporting failed; will retry', 'otlphttp').length >= 2,
      'retries of both exporters',
    );
    expect(await metric(rl, 'otelcol_exporter_send_failed_spans_total')).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_sent_spans_total')).to.equal(0);

    await sink.start();
    expect({ grpc: sink.grpcPort, http: sink.httpPort }).to.deep.equal(ports);
    await until(
      () => idsAt(sink, 'grpc', 'outage').length >= sent.length && idsAt(sink, 'http', 'outage').length >= sent.length,
      `${sent.length} spans via each exporter`,
      30_000,
    );
    expect(idsAt(sink, 'grpc', 'outage')).to.deep.equal([...sent].sort());
    expect(idsAt(sink, 'http', 'outage')).to.deep.equal([...sent].sort());
    // Unmodified requests are forwarded as the bytes that arrived, though the received buffers were pooled
    // (and overwritten on release in tests) while the queues held them. Requests that waited in a queue together
    // may leave joined as one (protobuf requests joined byte for byte are one request): each body the sink got is
    // whole requests one after another, and together they are every request once.
    for (const t of ['grpc', 'http'] as const) {
      expect(
        sink.requests
          .filter((r) => r.transport === t)
          .flatMap((r) => splitInto(r.body.toString('hex'), bodies))
          .sort(),
      ).to.deep.equal([...bodies].sort());
    }
    // The sink records a request before its answer reaches routelens: the last answers may still be on the way.
    const sentBy = async (exporter: string): Promise<number> => metric(rl, 'otelcol_exporter_sent_spans_total', { exporter });
    await until(async () => (await sentBy('otlp')) >= sent.length && (await sentBy('otlphttp')) >= sent.length, 'sent_spans of both exporters');
    expect(await sentBy('otlp')).to.equal(sent.length);
    expect(await sentBy('otlphttp')).to.equal(sent.length);
    expect(await metric(rl, 'otelcol_exporter_send_failed_spans_total')).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_queue_size')).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_in_flight_requests')).to.equal(0);
  });

  it('refuses with UNAVAILABLE + RetryInfo (gRPC) / 503 + Retry-After (HTTP) when the queue is full, counts it, and the SDK retries until its spans arrive', async () => {
    const sink = await sinkUp();
    sink.failWith = { grpcCode: grpc.status.UNAVAILABLE, httpStatus: 503 };
    const rl = await routelens(`${receivers}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    timeout: 2s
    sending_queue: { queue_size: 1, num_consumers: 1 }
    retry_on_failure: { initial_interval: 200ms, max_interval: 200ms, max_elapsed_time: 0 }
service:
  extensions: [routequery]
  shutdown_timeout: 1s
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`);
    const client = grpcClient(rl);
    const accepted: string[] = [];
    let refusedGrpc = 0;
    let refused: Awaited<ReturnType<RawGrpcClient['export']>> | undefined;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      const req = buildRequest('queue-full', 2);
      const r = await client.export(req.bytes);
      if (r.code === grpc.status.OK) accepted.push(...req.spanIds);
      else {
        refused = r;
        refusedGrpc += 2;
      }
    }
    expect(accepted.length, 'the first requests are queued').to.be.at.least(2);
    expect(refused, 'a request is refused once the queue is full').to.not.equal(undefined);
    const r = refused as NonNullable<typeof refused>;
    expect(r.code).to.equal(grpc.status.UNAVAILABLE);
    expect(r.details).to.equal('sending queue of exporter otlp is full (1 requests)');
    const retryInfo = r.metadata?.get('google.rpc.retryinfo-bin')[0];
    expect(retryInfo, 'google.rpc.retryinfo-bin trailer').to.be.instanceOf(Buffer);
    expect(decodeRetryInfo(retryInfo as Buffer)).to.equal(1000);
    const details = r.metadata?.get('grpc-status-details-bin')[0];
    expect(details, 'grpc-status-details-bin trailer').to.be.instanceOf(Buffer);
    expect(decodeRpcStatus(details as Buffer)).to.deep.equal({
      code: grpc.status.UNAVAILABLE,
      message: 'sending queue of exporter otlp is full (1 requests)',
      retryAfterMs: 1000,
    });

    const h = await httpRequest(rl.httpPort(), '/v1/traces', buildRequest('queue-full', 3).bytes, PROTO);
    expect(h.status).to.equal(503);
    expect(h.headers['retry-after']).to.equal('1');
    expect(decodeRpcStatus(h.body)).to.include({ code: grpc.status.UNAVAILABLE, message: 'sending queue of exporter otlp is full (1 requests)' });
    const hj = await httpRequest(rl.httpPort(), '/v1/traces', buildRequest('queue-full', 1).json, { 'content-type': 'application/json' });
    expect(hj.status).to.equal(503);
    expect(JSON.parse(hj.body.toString())).to.deep.equal({ code: grpc.status.UNAVAILABLE, message: 'sending queue of exporter otlp is full (1 requests)' });

    expect(await metric(rl, 'otelcol_exporter_enqueue_failed_spans_total', { exporter: 'otlp' })).to.equal(refusedGrpc + 4);
    expect(await metric(rl, 'otelcol_receiver_refused_spans_total', { transport: 'grpc' })).to.equal(refusedGrpc);
    expect(await metric(rl, 'otelcol_receiver_refused_spans_total', { transport: 'http' })).to.equal(4);
    expect(await metric(rl, 'otelcol_receiver_accepted_spans_total')).to.equal(accepted.length);
    expect(await metric(rl, 'otelcol_exporter_queue_capacity', { exporter: 'otlp' })).to.equal(1);

    // The real SDK exporter (OTLP/HTTP protobuf) is refused with 503 + Retry-After, retries, and gets through
    // once the destination recovers and the queue drains.
    const refusedBefore = await metric(rl, 'otelcol_receiver_refused_spans_total', { transport: 'http' });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-retry' }),
      spanProcessors: [new SimpleSpanProcessor(new ProtoExporter({ url: `http://127.0.0.1:${rl.httpPort()}/v1/traces` }))],
    });
    cleanups.push(() => provider.shutdown());
    const span = provider.getTracer('reliability').startSpan('GET /retry');
    span.end();
    const sdkSpanId = span.spanContext().spanId;
    await until(async () => (await metric(rl, 'otelcol_receiver_refused_spans_total', { transport: 'http' })) > refusedBefore, 'the SDK export to be refused');
    sink.failWith = undefined;
    await provider.forceFlush();
    await until(() => idsAt(sink, 'grpc', 'sdk-retry').length > 0, 'the SDK span at the sink');
    expect(idsAt(sink, 'grpc', 'sdk-retry')).to.deep.equal([sdkSpanId]);
    // Everything accepted before is delivered too; nothing refused shows up.
    await until(() => idsAt(sink, 'grpc', 'queue-full').length >= accepted.length, 'the queued spans at the sink');
    expect(idsAt(sink, 'grpc', 'queue-full')).to.deep.equal([...accepted].sort());
    expect(await metric(rl, 'otelcol_exporter_send_failed_spans_total')).to.equal(0);
  });

  it('a dead exporter never stalls another exporter of the same pipeline', async () => {
    const sink = await sinkUp();
    const closedPort = await freePort(); // nothing listens there
    const rl = await routelens(`${receivers}
exporters:
  otlp/dead:
    endpoint: 127.0.0.1:${closedPort}
    tls: { insecure: true }
    timeout: 1s
    retry_on_failure: { initial_interval: 500ms, max_interval: 1s, max_elapsed_time: 0 }
  otlp/live:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
service:
  extensions: [routequery]
  shutdown_timeout: 1s
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp/dead, otlp/live] }
`);
    const client = grpcClient(rl);
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const req = buildRequest('isolation', 3);
      sent.push(...req.spanIds);
      if (i % 2 === 0) expect((await client.export(req.bytes)).code).to.equal(grpc.status.OK);
      else expect((await httpRequest(rl.httpPort(), '/v1/traces', req.bytes, PROTO)).status).to.equal(200);
    }
    await until(() => idsAt(sink, 'grpc', 'isolation').length >= sent.length, 'every span at the live destination');
    expect(idsAt(sink, 'grpc', 'isolation')).to.deep.equal([...sent].sort());
    // ...while the dead exporter still holds all of it: nothing sent, nothing dropped, still retrying.
    expect(await metric(rl, 'otelcol_exporter_sent_spans_total', { exporter: 'otlp/dead' })).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlp/dead' })).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_enqueue_failed_spans_total')).to.equal(0);
    expect(await metric(rl, 'otelcol_exporter_sent_spans_total', { exporter: 'otlp/live' })).to.equal(sent.length);
    const held =
      (await metric(rl, 'otelcol_exporter_queue_size', { exporter: 'otlp/dead' })) +
      (await metric(rl, 'otelcol_exporter_in_flight_requests', { exporter: 'otlp/dead' }));
    expect(held).to.be.greaterThan(0);
    expect(logsOf(rl, 'Exporting failed; will retry', 'otlp/dead').length).to.be.greaterThan(0);
  });

  it('a permanent downstream error (INVALID_ARGUMENT / 400) is not retried and is counted as send_failed', async () => {
    const sink = await sinkUp();
    sink.failWith = { grpcCode: grpc.status.INVALID_ARGUMENT, httpStatus: 400 };
    const rl = await routelens(`${receivers}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 20ms, max_interval: 20ms }
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    retry_on_failure: { initial_interval: 20ms, max_interval: 20ms }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, otlphttp] }
`);
    const req = buildRequest('permanent', 4);
    expect((await grpcClient(rl).export(req.bytes)).code).to.equal(grpc.status.OK);
    await until(
      async () =>
        (await metric(rl, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' })) === 4 &&
        (await metric(rl, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlphttp' })) === 4,
      'send_failed of both exporters',
    );
    expect(await metric(rl, 'otelcol_exporter_sent_spans_total')).to.equal(0);
    for (const exporter of ['otlp', 'otlphttp']) {
      const dropped = logsOf(rl, 'Exporting failed; dropping data', exporter);
      expect(dropped, exporter).to.have.length(1);
      expect(dropped[0]).to.include({ attempts: 1, reason: 'permanent error', spans: 4 });
    }
    expect(dropped(rl)).to.deep.equal([]);
    // A second batch: still one attempt each (the first failure did not turn into a retry loop).
    expect((await httpRequest(rl.httpPort(), '/v1/traces', buildRequest('permanent', 2).bytes, PROTO)).status).to.equal(200);
    await until(async () => (await metric(rl, 'otelcol_exporter_send_failed_spans_total')) === 12, 'the second batch to fail');
    expect(logsOf(rl, 'Exporting failed; dropping data')).to.have.length(4);
    expect(dropped(rl)).to.deep.equal([]);
    expect(sink.requests).to.have.length(0);

    function dropped(r: RunningRoutelens): Record<string, unknown>[] {
      return logsOf(r, 'Exporting failed; will retry');
    }
  });

  it('service.shutdown() drains queued data to a destination that comes back before the deadline', async () => {
    const sink = await sinkUp();
    const rl = await routelens(`${receivers}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    timeout: 2s
    retry_on_failure: { initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 0 }
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    timeout: 2s
    retry_on_failure: { initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 0 }
service:
  extensions: [routequery]
  shutdown_timeout: 60s
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, otlphttp] }
`);
    await sink.stop();
    const client = grpcClient(rl);
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const req = buildRequest('drain', 5);
      sent.push(...req.spanIds);
      expect((await client.export(req.bytes)).code).to.equal(grpc.status.OK);
    }
    await until(
      () => logsOf(rl, 'Exporting failed; will retry', 'otlp').length > 0 && logsOf(rl, 'Exporting failed; will retry', 'otlphttp').length > 0,
      'failing sends',
    );
    let stopped = false;
    const stopping = rl.service.shutdown().then(() => (stopped = true));
    // Receivers close first: new data is no longer taken.
    await until(async () => {
      try {
        const r = await httpRequest(rl.httpPort(), '/v1/traces', buildRequest('late', 1).bytes, PROTO);
        return r.status === 503;
      } catch {
        return true; // connection refused: closed
      }
    }, 'the HTTP receiver to stop taking data');
    expect(stopped, 'shutdown waits for the queued data').to.equal(false);
    await sink.start();
    await stopping;
    expect(idsAt(sink, 'grpc', 'drain')).to.deep.equal([...sent].sort());
    expect(idsAt(sink, 'http', 'drain')).to.deep.equal([...sent].sort());
    expect(idsAt(sink, 'grpc', 'late')).to.deep.equal([]);
    expect(logsOf(rl, 'Shutdown deadline passed with data still queued')).to.deep.equal([]);
    expect(rl.service.telemetry.counterValue('otelcol_exporter_send_failed_spans')).to.equal(0);
    expect(rl.service.telemetry.counterValue('otelcol_exporter_sent_spans', { exporter: 'otlp' })).to.equal(sent.length);
  });

  it("one pipeline's processors never see attributes another pipeline's processor added (fan-out clones)", async () => {
    const seen: { pipeline: string; tag: unknown }[] = [];
    /** Adds `tag=<value>` to every resource, and records what it saw before adding. */
    const tagger: ProcessorFactory<{ value: string }> = {
      kind: 'processor',
      type: 'tagger',
      configSchema: obj({ value: str({ nonEmpty: true }) }),
      createTraces: (_settings, config, next): Component & TracesConsumer => ({
        start: async () => undefined,
        shutdown: async () => undefined,
        async consumeTraces(batch: TraceBatch, ctx: PipelineContext) {
          for (let i = 0; i < batch.resourceCount; i++) {
            seen.push({ pipeline: config.value, tag: batch.resourceAttribute(i, 'tag') });
            if (!batch.hasResourceAttribute(i, 'tag')) batch.addResourceAttributes(i, [['tag', config.value]]);
          }
          await next.consumeTraces(batch, ctx);
        },
      }),
    };
    const sinkA = await sinkUp();
    const sinkB = await sinkUp();
    const sinkC = await sinkUp();
    const rl = await routelens(
      `${receivers}
processors:
  tagger/a: { value: a }
  tagger/b: { value: b }
exporters:
  otlp/a: { endpoint: "${sinkA.grpcEndpoint}", tls: { insecure: true } }
  otlp/b: { endpoint: "${sinkB.grpcEndpoint}", tls: { insecure: true } }
  otlp/c: { endpoint: "${sinkC.grpcEndpoint}", tls: { insecure: true } }
service:
  extensions: [routequery]
  pipelines:
    traces/a: { receivers: [otlp], processors: [tagger/a], exporters: [otlp/a] }
    traces/plain: { receivers: [otlp], exporters: [otlp/c] }
    traces/b: { receivers: [otlp], processors: [tagger/b], exporters: [otlp/b] }
`,
      [tagger as ProcessorFactory<unknown>],
    );
    const req = buildRequest('fanout', 2);
    expect((await grpcClient(rl).export(req.bytes)).code).to.equal(grpc.status.OK);
    const tagsAt = (sink: OtlpSink): unknown[] => sink.spans('grpc').map((s) => attrMap((s.resource as { attributes?: never }).attributes).tag?.stringValue);
    await until(() => sinkA.spanCount() === 2 && sinkB.spanCount() === 2 && sinkC.spanCount() === 2, 'the spans at all three destinations');
    expect(tagsAt(sinkA)).to.deep.equal(['a', 'a']);
    expect(tagsAt(sinkB)).to.deep.equal(['b', 'b']);
    expect(tagsAt(sinkC)).to.deep.equal([undefined, undefined]);
    expect(seen.sort((x, y) => x.pipeline.localeCompare(y.pipeline))).to.deep.equal([
      { pipeline: 'a', tag: undefined },
      { pipeline: 'b', tag: undefined },
    ]);
    for (const sink of [sinkA, sinkB, sinkC]) expect(idsAt(sink, 'grpc', 'fanout')).to.deep.equal([...req.spanIds].sort());
  });
});
