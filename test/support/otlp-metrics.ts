/**
 * Builds OTLP ExportMetricsServiceRequest bytes for tests with the protobufjs reference codec, from plain
 * descriptions: times in milliseconds since the epoch (encoded as exact nanoseconds), attributes as a map.
 */
import { protoType, TYPES } from '../../src/pdata/proto';

export type Attrs = Record<string, string | number | boolean>;

export interface NumberPointSpec {
  /** start_time in ms; omitted for gauges. */
  start?: number;
  time: number;
  value: number;
  /** Encode as as_int (default: as_double unless the value is an integer). */
  int?: boolean;
  attrs?: Attrs;
}

export interface HistogramPointSpec {
  start: number;
  time: number;
  count: number;
  sum: number;
  attrs?: Attrs;
}

export type MetricSpec =
  | { kind: 'sum'; name: string; unit?: string; monotonic?: boolean; delta?: boolean; points: NumberPointSpec[] }
  | { kind: 'gauge'; name: string; unit?: string; points: NumberPointSpec[] }
  | { kind: 'histogram'; name: string; unit?: string; delta?: boolean; points: HistogramPointSpec[] };

export interface ResourceSpec {
  attrs: Attrs;
  scope?: string;
  metrics: MetricSpec[];
}

function anyValue(v: string | number | boolean): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}

function kvs(attrs: Attrs | undefined): Record<string, unknown>[] {
  return Object.entries(attrs ?? {}).map(([key, v]) => ({ key, value: anyValue(v) }));
}

/** Milliseconds → exact nanoseconds as a decimal string (protobufjs reads it into a Long). */
export function nanos(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

function numberPoint(p: NumberPointSpec): Record<string, unknown> {
  const useInt = p.int ?? Number.isInteger(p.value);
  return {
    attributes: kvs(p.attrs),
    ...(p.start === undefined ? {} : { startTimeUnixNano: nanos(p.start) }),
    timeUnixNano: nanos(p.time),
    ...(useInt ? { asInt: String(p.value) } : { asDouble: p.value }),
  };
}

function metric(m: MetricSpec): Record<string, unknown> {
  const base = { name: m.name, unit: m.unit ?? '' };
  switch (m.kind) {
    case 'sum':
      return { ...base, sum: { aggregationTemporality: m.delta ? 1 : 2, isMonotonic: m.monotonic ?? true, dataPoints: m.points.map(numberPoint) } };
    case 'gauge':
      return { ...base, gauge: { dataPoints: m.points.map(numberPoint) } };
    case 'histogram':
      return {
        ...base,
        histogram: {
          aggregationTemporality: m.delta ? 1 : 2,
          dataPoints: m.points.map((p) => ({
            attributes: kvs(p.attrs),
            startTimeUnixNano: nanos(p.start),
            timeUnixNano: nanos(p.time),
            count: String(p.count),
            sum: p.sum,
            bucketCounts: [String(p.count)],
            explicitBounds: [],
          })),
        },
      };
  }
}

export function metricsRequest(resources: readonly ResourceSpec[]): Uint8Array {
  const type = protoType(TYPES.exportMetricsRequest);
  const obj = {
    resourceMetrics: resources.map((r) => ({
      resource: { attributes: kvs(r.attrs) },
      scopeMetrics: [{ scope: { name: r.scope ?? 'opentelemetry.instrumentation.system_metrics' }, metrics: r.metrics.map(metric) }],
    })),
  };
  return type.encode(type.fromObject(obj)).finish();
}

/** One export of the system-metrics instrumentation for a process, with the values given (seconds, bytes, counts). */
export interface ProcessSample {
  time: number;
  /** Start time of the process's instruments (one writer's lifetime). */
  start: number;
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  threads: number;
  fds: number;
  gc: [number, number, number];
}

export function processMetrics(s: ProcessSample): MetricSpec[] {
  const pt = (value: number, attrs?: Attrs): NumberPointSpec => ({ start: s.start, time: s.time, value, ...(attrs ? { attrs } : {}) });
  return [
    {
      kind: 'sum',
      name: 'process.cpu.time',
      unit: 's',
      points: [pt(s.cpuUser, { type: 'user' }), pt(s.cpuSystem, { type: 'system' })].map((p) => ({ ...p, int: false })),
    },
    { kind: 'sum', name: 'process.memory.usage', unit: 'By', monotonic: false, points: [pt(s.rss)] },
    { kind: 'sum', name: 'process.thread.count', monotonic: false, points: [pt(s.threads)] },
    { kind: 'sum', name: 'process.open_file_descriptor.count', monotonic: false, points: [pt(s.fds)] },
    {
      kind: 'sum',
      name: 'cpython.gc.collections',
      unit: '{collection}',
      points: s.gc.map((v, gen) => pt(v, { 'cpython.gc.generation': gen, generation: String(gen) })),
    },
  ];
}
