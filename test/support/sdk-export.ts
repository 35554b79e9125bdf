/** Drive the real OpenTelemetry JS SDK exporters: make spans, export them once, report what the exporter saw. */
import * as grpc from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Finished SDK spans of `service` (not exported anywhere yet). */
export async function makeSpans(service: string, n: number): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('routelens-reliability-test');
  for (let i = 0; i < n; i++) tracer.startSpan(`GET /op/${i}`).end();
  await provider.forceFlush();
  const spans = [...memory.getFinishedSpans()];
  await provider.shutdown();
  return spans;
}

export interface SdkExportOutcome {
  ok: boolean;
  error: Error | undefined;
  spanIds: string[];
}

/** Export `n` spans of `service` once through `exporter` (its own retries included), then shut it down. */
export async function sdkExport(exporter: SpanExporter, service: string, n = 2): Promise<SdkExportOutcome> {
  const spans = await makeSpans(service, n);
  const result = await new Promise<ExportResult>((resolve) => exporter.export(spans, resolve));
  await exporter.shutdown();
  return { ok: result.code === ExportResultCode.SUCCESS, error: result.error, spanIds: spans.map((s) => s.spanContext().spanId) };
}

const identity = (b: Buffer): Buffer => b;

/** One raw OTLP/gRPC Export call; resolves with the gRPC status code (0 = OK) and details. */
export function grpcExport(
  target: string,
  body: Uint8Array,
  opts: { creds?: grpc.ChannelCredentials; metadata?: Record<string, string> } = {},
): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(target, opts.creds ?? grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      identity,
      identity,
      Buffer.from(body),
      md,
      { deadline: Date.now() + 5000 },
      (err) => {
        client.close();
        resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' });
      },
    );
  });
}
