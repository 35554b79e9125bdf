/**
 * The real OpenTelemetry JS SDK sends spans (every AnyValue kind, events, links, status) to routelens over
 * OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON; routelens forwards them through `otlp` and `otlphttp`
 * to a test sink, which must receive every span with every field equal to what was sent.
 */
import { expect } from 'chai';
import { SpanKind, SpanStatusCode, context, trace, type Link } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type SpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { OtlpSink, attrMap, type OtlpJsonSpan } from '../support/otlp-sink';
import { startRoutelens, metricValue, type RunningRoutelens } from '../support/routelens';

function config(sink: OtlpSink): string {
  return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 100ms }
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    retry_on_failure: { initial_interval: 100ms }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp, otlphttp]
`;
}

/** Emit a fixed set of spans covering every AnyValue kind, events, links and statuses. */
async function emit(exporter: SpanExporter, service: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test', 'host.cores': 2 }),
    spanProcessors: [new SimpleSpanProcessor(exporter), new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('roundtrip-test', '1.2.3');
  const t0 = 1_700_000_000_000;
  const parent = tracer.startSpan('GET /users/{id}', {
    kind: SpanKind.SERVER,
    startTime: [Math.floor(t0 / 1000), 123_456_789],
    attributes: {
      'http.route': '/users/{id}',
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      str: 'text ünïcødé',
      int: 9007199254740991,
      neg: -42,
      double: 3.25,
      bool: true,
      'str.array': ['a', 'b'],
      'int.array': [1, 2, 3],
      'bool.array': [true, false],
      'double.array': [1.5, 2.5],
    },
  });
  parent.addEvent('cache.miss', { 'cache.key': 'user:1', attempt: 2 }, [Math.floor(t0 / 1000), 500_000_000]);
  const ctx = trace.setSpan(context.active(), parent);
  const linkTarget = tracer.startSpan('linked');
  linkTarget.end();
  const links: Link[] = [{ context: linkTarget.spanContext(), attributes: { 'link.kind': 'follows' } }];
  const child = tracer.startSpan(
    'SELECT users',
    { kind: SpanKind.CLIENT, links, attributes: { 'db.system': 'sqlite', 'db.statement': 'SELECT * FROM users WHERE id = ?' } },
    ctx,
  );
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'database is locked' });
  child.end([Math.floor(t0 / 1000) + 1, 0]);
  parent.setStatus({ code: SpanStatusCode.OK });
  parent.end([Math.floor(t0 / 1000) + 2, 1]);
  await provider.forceFlush();
  const finished = [...memory.getFinishedSpans()];
  await provider.shutdown();
  return finished;
}

function hrToNanos(t: [number, number]): string {
  return (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
}

function anyValueOf(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValueOf) } };
  throw new Error(`unexpected attribute ${String(v)}`);
}

/** Compare a received OTLP/JSON span with the SDK's ReadableSpan, field by field. */
function expectSameSpan(got: OtlpJsonSpan & { resource: Record<string, unknown>; scope: Record<string, unknown> }, sent: ReadableSpan, service: string): void {
  const sc = sent.spanContext();
  expect(got.traceId).to.equal(sc.traceId);
  expect(got.spanId).to.equal(sc.spanId);
  expect(got.name).to.equal(sent.name);
  expect(got.kind).to.equal(sent.kind + 1); // OTLP kinds are the API's + 1
  expect(got.startTimeUnixNano).to.equal(hrToNanos(sent.startTime));
  expect(got.endTimeUnixNano).to.equal(hrToNanos(sent.endTime));
  expect(got.parentSpanId ?? undefined).to.equal(sent.parentSpanContext?.spanId);
  const attrs = attrMap(got.attributes);
  expect(Object.keys(attrs).sort()).to.deep.equal(Object.keys(sent.attributes).sort());
  for (const [k, v] of Object.entries(sent.attributes)) expect(attrs[k], k).to.deep.equal(anyValueOf(v));
  const status = (got.status ?? {}) as { code?: number; message?: string };
  expect(status.code ?? 0).to.equal(sent.status.code);
  expect(status.message ?? '').to.equal(sent.status.message ?? '');
  const events = (got.events ?? []) as { name: string; timeUnixNano: string; attributes?: { key: string; value: Record<string, unknown> }[] }[];
  expect(events.map((e) => e.name)).to.deep.equal(sent.events.map((e) => e.name));
  sent.events.forEach((e, i) => {
    expect(events[i]?.timeUnixNano).to.equal(hrToNanos(e.time));
    expect(attrMap(events[i]?.attributes)).to.deep.equal(Object.fromEntries(Object.entries(e.attributes ?? {}).map(([k, v]) => [k, anyValueOf(v)])));
  });
  const links = (got.links ?? []) as { traceId: string; spanId: string; attributes?: { key: string; value: Record<string, unknown> }[] }[];
  expect(links.map((l) => [l.traceId, l.spanId])).to.deep.equal(sent.links.map((l) => [l.context.traceId, l.context.spanId]));
  sent.links.forEach((l, i) =>
    expect(attrMap(links[i]?.attributes)).to.deep.equal(Object.fromEntries(Object.entries(l.attributes ?? {}).map(([k, v]) => [k, anyValueOf(v)]))),
  );
  expect(attrMap((got.resource as { attributes?: { key: string; value: Record<string, unknown> }[] }).attributes)['service.name']).to.deep.equal({
    stringValue: service,
  });
  expect(got.scope).to.include({ name: 'roundtrip-test', version: '1.2.3' });
}

describe('SDK → routelens → otlp + otlphttp round trip', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(config(sink));
  });
  after(async () => {
    await rl?.stop();
    await sink?.stop();
  });

  const cases: [string, (rl: RunningRoutelens) => SpanExporter][] = [
    ['OTLP/gRPC (gzip)', (r) => new GrpcExporter({ url: `http://127.0.0.1:${r.grpcPort()}`, compression: 'gzip' as never })],
    ['OTLP/HTTP protobuf', (r) => new ProtoExporter({ url: `http://127.0.0.1:${r.httpPort()}/v1/traces` })],
    ['OTLP/HTTP JSON', (r) => new HttpJsonExporter({ url: `http://127.0.0.1:${r.httpPort()}/v1/traces` })],
  ];

  for (const [name, makeExporter] of cases) {
    it(`forwards every span and field sent over ${name}`, async () => {
      sink.clear();
      const service = `svc-${name.replace(/\W+/g, '-')}`;
      const sent = await emit(makeExporter(rl), service);
      expect(sent).to.have.length(3);
      for (const transport of ['grpc', 'http'] as const) {
        for (let i = 0; i < 100 && sink.spanCount(transport) < sent.length; i++) await new Promise((r) => setTimeout(r, 50));
        const got = sink.spans(transport).filter((s) => attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue === service);
        expect(got, `spans via ${transport}`).to.have.length(sent.length);
        for (const s of sent) {
          const match = got.find((g) => g.spanId === s.spanContext().spanId);
          expect(match, `span ${s.name} via ${transport}`).to.not.equal(undefined);
          expectSameSpan(match as NonNullable<typeof match>, s, service);
        }
      }
    });
  }

  it('counts accepted and sent spans on /metrics', async () => {
    const text = await rl.metricsText();
    expect(metricValue(text, 'otelcol_receiver_accepted_spans_total')).to.equal(9);
    expect(metricValue(text, 'otelcol_exporter_sent_spans_total', { exporter: 'otlp' })).to.equal(9);
    expect(metricValue(text, 'otelcol_exporter_sent_spans_total', { exporter: 'otlphttp' })).to.equal(9);
    expect(metricValue(text, 'otelcol_receiver_accepted_spans_total', { transport: 'grpc' })).to.equal(3);
  });
});
