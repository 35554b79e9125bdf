/**
 * The protobufjs reference codec, loaded from proto/ at run time. It decodes everything into objects, so it
 * serves the JSON path, the debug/file exporters, OTLP metrics export and tests; the hot path (`wire.ts`,
 * `trace-batch.ts`) never uses it. The module itself is loaded on first use: a collector that only receives
 * and forwards protobuf never pays its memory (≈ 1.5 MiB of RSS).
 */
import * as path from 'node:path';
import type * as protobuf from 'protobufjs';

const protoDir = path.resolve(__dirname, '../../../proto');

let cached: protobuf.Root | undefined;

/** The protobufjs module, loaded on first call. */
export function protobufjs(): typeof protobuf {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('protobufjs') as typeof protobuf;
}

export function protoRoot(): protobuf.Root {
  if (cached === undefined) {
    const root = new (protobufjs().Root)();
    root.resolvePath = (_origin, target) => path.join(protoDir, target);
    root.loadSync(
      [
        'opentelemetry/proto/collector/trace/v1/trace_service.proto',
        'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
        'opentelemetry/proto/collector/logs/v1/logs_service.proto',
        'google/rpc/status.proto',
      ],
      { keepCase: false },
    );
    root.resolveAll();
    cached = root;
  }
  return cached;
}

export function protoType(name: string): protobuf.Type {
  return protoRoot().lookupType(name);
}

export const TYPES = {
  exportTraceRequest: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  exportTraceResponse: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
  exportMetricsRequest: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  exportMetricsResponse: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
  exportLogsRequest: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
  exportLogsResponse: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse',
  rpcStatus: 'google.rpc.Status',
  retryInfo: 'google.rpc.RetryInfo',
} as const;
