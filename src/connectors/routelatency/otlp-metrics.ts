/**
 * OTLP metrics of the routelatency connector: every `metrics.flush_interval` (and once more on shutdown) the
 * per-route export sketches become one `ExportMetricsServiceRequest`, encoded with protobufjs:
 *
 * - `routelens.route.duration`: ExponentialHistogram, one data point per route, the sketch itself (scale 6,
 *   64 buckets per octave), in the configured unit (`ms` or `s`). The sketch of a route records the values
 *   in that unit directly, so the buckets are exact in it: no re-bucketing between ms and s (whose bucket
 *   boundaries are log2(1000)·64 ≈ 637.8 buckets apart, not a whole number), and points of several routelens
 *   instances at the same scale merge exactly.
 * - `routelens.route.requests` and `routelens.route.errors`: monotonic Sums.
 *
 * Temporality: cumulative (start = when the route's metrics appeared; every live route each flush) or delta
 * (start = previous flush; only routes with spans since then; the sketch is reset after the flush).
 * Resource: `service.name=routelens`, `service.instance.id` (a UUID per process), `host.name`, `service.version`,
 * so a backend can tell instances apart and merge them.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as os from 'node:os';
import { protoType, TYPES } from '../../pdata/proto';
import type { RouteMetrics, RouteMetricsRecorder } from './metrics';

/** One UUID per process: `service.instance.id` of everything this routelens sends. */
export const PROCESS_INSTANCE_ID = randomUUID();

const VERSION = (JSON.parse(readFileSync(join(__dirname, '../../../../package.json'), 'utf8')) as { version: string }).version;

export const OTLP_METRIC_NAMES = {
  duration: 'routelens.route.duration',
  requests: 'routelens.route.requests',
  errors: 'routelens.route.errors',
} as const;

/** OTLP `AggregationTemporality` numbers. */
export const TEMPORALITY = { AGGREGATION_TEMPORALITY_DELTA: 1, AGGREGATION_TEMPORALITY_CUMULATIVE: 2 } as const;

type AnyValue = { stringValue: string };
type KeyValue = { key: string; value: AnyValue };

function kv(key: string, value: string): KeyValue {
  return { key, value: { stringValue: value } };
}

function nanos(ms: number): string {
  return (BigInt(Math.floor(ms)) * 1_000_000n).toString();
}

export function resourceAttributes(): KeyValue[] {
  return [kv('service.name', 'routelens'), kv('service.instance.id', PROCESS_INSTANCE_ID), kv('host.name', os.hostname()), kv('service.version', VERSION)];
}

function pointAttributes(m: RouteMetrics): KeyValue[] {
  const e = m.entry;
  const out = [kv('service.name', e.service)];
  if (e.method !== '') out.push(kv('http.request.method', e.method));
  out.push(kv('http.route', e.route));
  for (const [k, v] of Object.entries(e.dimensions)) out.push(kv(k, v));
  return out;
}

/**
 * The request object (protobufjs `fromObject` shape) for the routes' current export state, or undefined when
 * there is nothing to send. In delta mode, resets the exported state (the caller sends the request or loses it).
 */
export function collectMetricsRequest(recorder: RouteMetricsRecorder, nowMs: number, connectorId: string): Record<string, unknown> | undefined {
  const delta = recorder.config.aggregation_temporality === 'AGGREGATION_TEMPORALITY_DELTA';
  const temporality = TEMPORALITY[recorder.config.aggregation_temporality];
  const unit = recorder.config.unit;
  const hist: Record<string, unknown>[] = [];
  const requests: Record<string, unknown>[] = [];
  const errors: Record<string, unknown>[] = [];
  const time = nanos(nowMs);
  for (const m of recorder.routes()) {
    const ex = m.export;
    if (ex === undefined || ex.calls === 0) continue;
    const attributes = pointAttributes(m);
    const start = nanos(ex.startMs);
    const o = ex.sketch.toOtlp();
    hist.push({
      attributes,
      startTimeUnixNano: start,
      timeUnixNano: time,
      count: o.count,
      sum: o.sum,
      scale: o.scale,
      zeroCount: o.zeroCount,
      positive: o.positive,
      ...(o.min === undefined ? {} : { min: o.min, max: o.max }),
      zeroThreshold: 0,
    });
    requests.push({ attributes, startTimeUnixNano: start, timeUnixNano: time, asInt: ex.calls });
    errors.push({ attributes, startTimeUnixNano: start, timeUnixNano: time, asInt: ex.errors });
    if (delta) {
      ex.sketch.reset();
      ex.calls = 0;
      ex.errors = 0;
      ex.startMs = nowMs;
    }
  }
  if (hist.length === 0) return undefined;
  return {
    resourceMetrics: [
      {
        resource: { attributes: resourceAttributes() },
        scopeMetrics: [
          {
            scope: { name: 'routelens/connector/routelatency', version: VERSION, attributes: [kv('routelens.connector.id', connectorId)] },
            metrics: [
              {
                name: OTLP_METRIC_NAMES.duration,
                description: 'Request durations per route (base-2 exponential histogram, the route sketch).',
                unit,
                exponentialHistogram: { dataPoints: hist, aggregationTemporality: temporality },
              },
              {
                name: OTLP_METRIC_NAMES.requests,
                description: 'Requests per route.',
                unit: '{request}',
                sum: { dataPoints: requests, aggregationTemporality: temporality, isMonotonic: true },
              },
              {
                name: OTLP_METRIC_NAMES.errors,
                description: 'Failed requests per route (span status ERROR or HTTP status >= 500).',
                unit: '{request}',
                sum: { dataPoints: errors, aggregationTemporality: temporality, isMonotonic: true },
              },
            ],
          },
        ],
      },
    ],
  };
}

/** Encodes a request object from {@link collectMetricsRequest}. */
export function encodeMetricsRequest(request: Record<string, unknown>): Uint8Array {
  const T = protoType(TYPES.exportMetricsRequest);
  return T.encode(T.fromObject(request)).finish();
}
