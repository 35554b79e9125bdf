/**
 * Hand-built OTLP metrics and logs requests for tests that need a batch of each signal with item counts they
 * choose (the trace counterpart is trace-requests.ts; its postTraces posts to any OTLP/HTTP path), and a consumer
 * that records the batches of any signal.
 */
import { AnySignalConsumer } from '../../src/consumer/consumer';
import type { PipelineContext } from '../../src/core/component';
import type { OtlpBatch } from '../../src/pdata/otlp-batch';
import { TYPES, protoType } from '../../src/pdata/proto';

const T0 = 1_700_000_000_000_000_000n;

/**
 * An encoded ExportMetricsServiceRequest of one resource: a cumulative monotonic sum `requests` with `points` data
 * points (attribute `n` = 0..points-1), value `value` each.
 */
export function metricsRequest(points: number, opts: { service?: string; value?: number; resourceAttributes?: Record<string, string> } = {}): Uint8Array {
  const type = protoType(TYPES.exportMetricsRequest);
  const attrs = { 'service.name': opts.service ?? 'metrics-test', ...opts.resourceAttributes };
  return type
    .encode(
      type.fromObject({
        resourceMetrics: [
          {
            resource: { attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })) },
            scopeMetrics: [
              {
                scope: { name: 'routelens-test' },
                metrics: [
                  {
                    name: 'requests',
                    unit: '{request}',
                    sum: {
                      aggregationTemporality: 2,
                      isMonotonic: true,
                      dataPoints: Array.from({ length: points }, (_, i) => ({
                        attributes: [{ key: 'n', value: { intValue: i } }],
                        startTimeUnixNano: String(T0),
                        timeUnixNano: String(T0 + 60_000_000_000n),
                        asInt: opts.value ?? 1,
                      })),
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    )
    .finish();
}

/** An encoded ExportLogsServiceRequest of one resource with `records` log records (body `record <i>`). */
export function logsRequest(records: number, opts: { service?: string; resourceAttributes?: Record<string, string> } = {}): Uint8Array {
  const type = protoType(TYPES.exportLogsRequest);
  const attrs = { 'service.name': opts.service ?? 'logs-test', ...opts.resourceAttributes };
  return type
    .encode(
      type.fromObject({
        resourceLogs: [
          {
            resource: { attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })) },
            scopeLogs: [
              {
                scope: { name: 'routelens-test' },
                logRecords: Array.from({ length: records }, (_, i) => ({
                  timeUnixNano: String(T0 + BigInt(i)),
                  observedTimeUnixNano: String(T0 + BigInt(i) + 1000n),
                  severityNumber: 13,
                  severityText: 'WARN',
                  body: { stringValue: `record ${i}` },
                  traceId: Buffer.alloc(16, i + 1),
                  spanId: Buffer.alloc(8, i + 1),
                })),
              },
            ],
          },
        ],
      }),
    )
    .finish();
}

/** A consumer of every signal that keeps what it is given, for tests that look at what a component handed on. */
export class RecordingConsumer extends AnySignalConsumer {
  readonly batches: OtlpBatch[] = [];
  readonly contexts: PipelineContext[] = [];
  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    this.batches.push(batch);
    this.contexts.push(ctx);
  }
}
