/** Shared helpers of the route metrics tests: spans with exact latencies through the real OpenTelemetry JS SDK. */
import { SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface SpanSpec {
  /** Duration in ms (whole microseconds are exact). */
  ms: number;
  method?: string;
  /** `http.route`; the span is named `METHOD route`. */
  route?: string;
  /** `url.path` (raw path) when no route is given; the span is named `METHOD`. */
  path?: string;
  status?: number;
  error?: boolean;
  kind?: SpanKind;
}

function hr(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

/** Finished SDK spans of `service` with exactly the given durations, ending about now. */
export async function makeSdkSpans(service: string, specs: readonly SpanSpec[]): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('routelens-metrics-test');
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  for (const s of specs) {
    const method = s.method ?? 'GET';
    const durNs = BigInt(Math.round(s.ms * 1000)) * 1000n;
    const attributes: Record<string, string | number> = { 'http.request.method': method, 'http.response.status_code': s.status ?? (s.error ? 500 : 200) };
    if (s.route !== undefined) attributes['http.route'] = s.route;
    else if (s.path !== undefined) attributes['url.path'] = s.path;
    const span = tracer.startSpan(s.route === undefined ? method : `${method} ${s.route}`, {
      kind: s.kind ?? SpanKind.SERVER,
      startTime: hr(nowNs - durNs),
      attributes,
    });
    if (s.error) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(hr(nowNs));
  }
  await provider.forceFlush();
  const spans = [...memory.getFinishedSpans()];
  await provider.shutdown();
  return spans;
}

/** Exports spans with the SDK's OTLP/HTTP protobuf exporter to `baseUrl`/v1/traces, in chunks; throws on failure. */
export async function exportSdkSpans(baseUrl: string, spans: readonly ReadableSpan[], chunk = 1000): Promise<void> {
  const exporter = new OTLPTraceExporter({ url: `${baseUrl}/v1/traces` });
  try {
    for (let i = 0; i < spans.length; i += chunk) {
      const result = await new Promise<ExportResult>((resolve) => exporter.export(spans.slice(i, i + chunk), resolve));
      if (result.code !== ExportResultCode.SUCCESS) throw new Error(`SDK export failed: ${String(result.error)}`);
    }
  } finally {
    await exporter.shutdown();
  }
}

/** Makes and sends spans; returns them (ids, durations) as the SDK saw them. */
export async function sendSpans(baseUrl: string, service: string, specs: readonly SpanSpec[]): Promise<ReadableSpan[]> {
  const spans = await makeSdkSpans(service, specs);
  await exportSdkSpans(baseUrl, spans);
  return spans;
}

export interface RouteRow {
  service: string;
  method: string;
  route: string;
  count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  [k: string]: unknown;
}

/** GET /api/v1/routes of a running routelens. */
export async function routesApi(queryUrl: string, params: Record<string, string> = {}): Promise<RouteRow[]> {
  const u = new URL('/api/v1/routes', queryUrl);
  for (const [k, v] of Object.entries({ window: '1m', ...params })) u.searchParams.set(k, v);
  const res = await fetch(u);
  const body = (await res.json()) as { routes?: RouteRow[]; error?: string };
  if (res.status !== 200) throw new Error(`GET ${u} -> ${res.status}: ${body.error}`);
  return body.routes ?? [];
}

/** Config of an in-process routelens: OTLP/HTTP in, routelatency connector, routequery on a free port. */
export function routelensYaml(opts: { connector?: string; exporters?: string; metricsExporters?: string[] } = {}): string {
  const metrics = opts.metricsExporters ?? [];
  return `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
connectors:
  routelatency:
${(opts.connector ?? '    windows: [1m, 5m]').replace(/^\n/, '')}
${opts.exporters ?? ''}
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [routelatency]
${metrics.length === 0 ? '' : `    metrics:\n      receivers: [routelatency]\n      exporters: [${metrics.join(', ')}]\n`}`;
}
