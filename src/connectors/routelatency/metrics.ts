/**
 * Route metrics kept by the routelatency connector next to its RouteStore:
 *
 * - spanmetrics-compatible series (`traces_span_metrics_calls_total`, `traces_span_metrics_duration_<unit>_*`)
 *   per route × span kind × span status, so Jaeger's Monitor tab (SPM) reads them unchanged;
 * - routelens's own per-route series in seconds: `routelens_route_duration_seconds` (histogram),
 *   `routelens_route_requests_total{status_class}`, `routelens_route_errors_total` and the windowed quantiles
 *   `routelens_route_latency_seconds{quantile, window}` (a summary, computed from the store's sketches);
 * - per route an export sketch (ExpoHistogram in the configured unit) and call/error counts for OTLP output
 *   (see otlp-metrics.ts), when the connector feeds a metrics pipeline.
 *
 * Everything is cumulative and kept per {@link RouteEntry} of the store, in a WeakMap: the series of a route are
 * exactly the store's routes, so they are bounded by the store's caps (`max_routes_per_service`, overflow route
 * `__other__`) and vanish when the store expires the route. Labels carry the templated route, never a raw path.
 *
 * Hot path (`record`, once per counted span): a WeakMap lookup (cached for runs of spans of one route), two
 * binary searches over fixed bounds, increments on fixed Float64Arrays, and an exemplar check (the ids of a span
 * are read at most once per bucket per second of receive time).
 */
import type { MetricFamily, MetricSample } from '../../core/telemetry';
import type { RouteLatencyConfig } from './config';
import { promLabelName } from './config';
import { KeptExemplar } from './exemplar';
import { ExpoHistogram } from '../../pdata/expo-histogram';
import type { SpanInput } from './span-input';
import { spanKindName } from './span-input';
import type { ResolvedWindow, RouteEntry, RouteStore } from './store';
import { STATUS_CLASSES } from './window';

export type MetricsConfig = RouteLatencyConfig['metrics'];

const STATUS_CODE_NAMES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'] as const;
/** Quantiles of `routelens_route_latency_seconds`. */
export const SUMMARY_QUANTILES: readonly number[] = [0.5, 0.9, 0.95, 0.99, 0.999];
/** `status_class` values: 1xx..5xx, then `none` for spans without an HTTP status. */
export const STATUS_CLASS_LABELS: readonly string[] = [...STATUS_CLASSES, 'none'];
/** An exemplar is replaced at most this often per bucket (receive time). */
const EXEMPLAR_REFRESH_MS = 1000;

/** Prometheus metric name from an OTel-style name (`traces.span.metrics` → `traces_span_metrics`). */
export function promMetricName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  if (/^[0-9]/.test(s)) s = `_${s}`;
  return s;
}

/** Metric names derived from the config. */
export interface MetricNames {
  /** Family of `…_calls_total` (the counter family name, without `_total`). */
  calls: string;
  /** Family of `…_duration_milliseconds_bucket|_sum|_count` (or `_seconds`). */
  duration: string;
  durationUnit: 'milliseconds' | 'seconds';
}

export function metricNames(cfg: Pick<MetricsConfig, 'namespace' | 'unit'>): MetricNames {
  const ns = promMetricName(cfg.namespace);
  const prefix = ns === '' ? '' : `${ns}_`;
  const durationUnit = cfg.unit === 's' ? 'seconds' : 'milliseconds';
  return { calls: `${prefix}calls`, duration: `${prefix}duration_${durationUnit}`, durationUnit };
}

/** Index of the bucket of `v` among upper-inclusive bounds: the first `i` with `v <= bounds[i]`, else `bounds.length`. */
export function bucketOf(bounds: Float64Array, v: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v <= (bounds[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The span kept as the exemplar of one bucket. */
export class BucketExemplar extends KeptExemplar {
  /** Receive time at which it was taken. */
  takenMs = 0;
}

/** A classic histogram with fixed bounds (per-bucket counts, not cumulative) and optional bucket exemplars. */
export class FixedHistogram {
  readonly counts: Float64Array;
  count = 0;
  /** Sum in ms. */
  sumMs = 0;
  exemplars: (BucketExemplar | undefined)[] | undefined;
  /** When each bucket's exemplar was taken (receive time), so most spans are turned away by one typed-array read. */
  #takenMs: Float64Array | undefined;

  constructor(buckets: number) {
    this.counts = new Float64Array(buckets);
  }

  record(bucket: number, valueMs: number): void {
    this.counts[bucket] = (this.counts[bucket] as number) + 1;
    this.count++;
    this.sumMs += valueMs;
  }

  /** Keeps the span as the bucket's exemplar unless the current one was taken less than a second ago. */
  offerExemplar(bucket: number, valueMs: number, span: SpanInput, nowMs: number): void {
    let taken = this.#takenMs;
    if (taken === undefined) {
      taken = new Float64Array(this.counts.length).fill(-Infinity);
      this.#takenMs = taken;
      this.exemplars = new Array<BucketExemplar | undefined>(this.counts.length).fill(undefined);
    }
    if (nowMs - (taken[bucket] as number) < EXEMPLAR_REFRESH_MS) return;
    const ex = this.exemplars as (BucketExemplar | undefined)[];
    const cur = ex[bucket] ?? new BucketExemplar();
    if (!cur.take(span, valueMs)) return;
    ex[bucket] = cur;
    taken[bucket] = nowMs;
    cur.takenMs = nowMs;
  }
}

/** Per-route export state for OTLP output. */
export class ExportState {
  /** Values in the configured unit (ms or s), recorded directly so the buckets are exact in that unit. */
  readonly sketch = new ExpoHistogram({ wide: true });
  calls = 0;
  errors = 0;
  /** Start of the current aggregation: route creation (cumulative) or the previous flush (delta). */
  startMs: number;

  constructor(startMs: number) {
    this.startMs = startMs;
  }
}

/** All metric state of one route entry of the store. */
export class RouteMetrics {
  readonly entry: RouteEntry;
  readonly createdMs: number;
  /** spanmetrics histograms by `kind * 3 + statusCode` (allocated on first use). */
  readonly spans: (FixedHistogram | undefined)[] = new Array<FixedHistogram | undefined>(18).fill(undefined);
  /** `routelens_route_duration_seconds`. */
  readonly route: FixedHistogram;
  /** Requests per status class 1xx..5xx, none. */
  readonly requests = new Float64Array(6);
  errors = 0;
  readonly export: ExportState | undefined;

  constructor(entry: RouteEntry, routeBuckets: number, nowMs: number, withExport: boolean) {
    this.entry = entry;
    this.createdMs = nowMs;
    this.route = new FixedHistogram(routeBuckets);
    this.export = withExport ? new ExportState(nowMs) : undefined;
  }
}

export interface RouteMetricsOptions {
  config: MetricsConfig;
  /** Keep export sketches (only when the connector feeds a metrics pipeline). */
  exportSketches: boolean;
}

/** Label values of a route, computed once per route and scrape. */
interface RouteLabels {
  span: Record<string, string>;
  route: Record<string, string>;
}

export class RouteMetricsRecorder {
  readonly store: RouteStore;
  readonly config: MetricsConfig;
  readonly names: MetricNames;
  readonly exportSketches: boolean;
  /** spanmetrics bounds in ms; `routelens_route_duration_seconds` bounds in ms. */
  readonly spanBoundsMs: Float64Array;
  readonly routeBoundsMs: Float64Array;
  /** Divisor from ms to the configured unit (1 or 1000). */
  readonly unitDivisor: number;
  /** Window of the quantile summary. */
  readonly summaryWindowMs: number;
  readonly #byEntry = new WeakMap<RouteEntry, RouteMetrics>();
  readonly #dimLabels: Map<string, string>;
  #lastEntry: RouteEntry | undefined;
  #lastMetrics: RouteMetrics | undefined;

  constructor(store: RouteStore, options: RouteMetricsOptions) {
    this.store = store;
    this.config = options.config;
    this.names = metricNames(options.config);
    this.exportSketches = options.exportSketches;
    this.spanBoundsMs = Float64Array.from(options.config.explicit_buckets);
    this.routeBoundsMs = Float64Array.from(options.config.route_buckets);
    this.unitDivisor = options.config.unit === 's' ? 1000 : 1;
    this.summaryWindowMs = summaryWindow(options.config, store.windowsMs);
    this.#dimLabels = new Map(store.dimensions.map((d) => [d.name, promLabelName(d.name)]));
  }

  /**
   * Records the span the store has just counted (`store.record(span, now)` returned true): reads the route and
   * status from `store.last`.
   */
  recordLast(span: SpanInput, nowMs: number): void {
    const last = this.store.last;
    const entry = last.entry;
    if (entry === undefined) return;
    let m: RouteMetrics | undefined;
    if (entry === this.#lastEntry) m = this.#lastMetrics as RouteMetrics;
    else {
      m = this.#byEntry.get(entry);
      if (m === undefined) {
        m = new RouteMetrics(entry, this.routeBoundsMs.length + 1, nowMs, this.exportSketches);
        this.#byEntry.set(entry, m);
      }
      this.#lastEntry = entry;
      this.#lastMetrics = m;
    }
    const v = last.valueMs;
    const kind = span.kind;
    const status = span.statusCode === 1 || span.statusCode === 2 ? span.statusCode : 0;
    const k = kind * 3 + status;
    let h = m.spans[k];
    if (h === undefined) {
      h = new FixedHistogram(this.spanBoundsMs.length + 1);
      m.spans[k] = h;
    }
    const sb = bucketOf(this.spanBoundsMs, v);
    h.record(sb, v);
    const rb = bucketOf(this.routeBoundsMs, v);
    m.route.record(rb, v);
    if (this.config.exemplars) {
      h.offerExemplar(sb, v, span, nowMs);
      m.route.offerExemplar(rb, v, span, nowMs);
    }
    const sc = last.statusClass;
    const ci = sc >= 0 ? sc : 5;
    m.requests[ci] = (m.requests[ci] as number) + 1;
    if (last.isError) m.errors++;
    const ex = m.export;
    if (ex !== undefined) {
      // in ms the store's bucket index is the export sketch's (same scale): no second logarithm
      const b = last.bucket;
      if (this.unitDivisor === 1 && b === b) ex.sketch.recordAt(v, b);
      else ex.sketch.record(v / this.unitDivisor);
      ex.calls++;
      if (last.isError) ex.errors++;
    }
  }

  /** Metric state of an entry (undefined when none of its spans went through `recordLast`). */
  metricsOf(entry: RouteEntry): RouteMetrics | undefined {
    return this.#byEntry.get(entry);
  }

  /** Metric state of every live route of the store (expired routes are gone with their store entries). */
  *routes(): IterableIterator<RouteMetrics> {
    for (const e of this.store.entries()) {
      const m = this.#byEntry.get(e);
      if (m !== undefined) yield m;
    }
  }

  #dimensionLabels(entry: RouteEntry, into: Record<string, string>): void {
    for (const [name, value] of Object.entries(entry.dimensions)) into[this.#dimLabels.get(name) ?? promLabelName(name)] = value;
  }

  labelsOf(entry: RouteEntry): RouteLabels {
    const span: Record<string, string> = {
      service_name: entry.service,
      span_name: entry.method === '' ? entry.route : `${entry.method} ${entry.route}`,
    };
    this.#dimensionLabels(entry, span);
    const route: Record<string, string> = { service_name: entry.service };
    if (entry.method !== '') route.http_method = entry.method;
    route.http_route = entry.route;
    this.#dimensionLabels(entry, route);
    return { span, route };
  }

  /** The families rendered on /metrics. */
  families(nowMs = this.store.clock.now()): MetricFamily[] {
    const n = this.names;
    const ms = this.config.unit === 'ms';
    const spanLe = [...this.spanBoundsMs].map((b) => String(ms ? b : b / 1000));
    const routeLe = [...this.routeBoundsMs].map((b) => String(b / 1000));
    const div = this.unitDivisor;
    const calls: MetricSample[] = [];
    const duration: MetricSample[] = [];
    const routeDuration: MetricSample[] = [];
    const requests: MetricSample[] = [];
    const errors: MetricSample[] = [];
    const latency: MetricSample[] = [];
    const win = this.store.resolveWindow(this.summaryWindowMs, nowMs);
    const windowLabel = formatWindow(this.summaryWindowMs);
    for (const m of this.routes()) {
      const labels = this.labelsOf(m.entry);
      for (let k = 0; k < m.spans.length; k++) {
        const h = m.spans[k];
        if (h === undefined) continue;
        const l = { ...labels.span, span_kind: spanKindName(Math.floor(k / 3)), status_code: STATUS_CODE_NAMES[k % 3] as string };
        calls.push({ suffix: '_total', labels: l, value: h.count });
        histogramSamples(h, l, spanLe, div, duration);
      }
      histogramSamples(m.route, labels.route, routeLe, 1000, routeDuration);
      for (let c = 0; c < 6; c++) {
        const v = m.requests[c] as number;
        if (v > 0) requests.push({ suffix: '_total', labels: { ...labels.route, status_class: STATUS_CLASS_LABELS[c] as string }, value: v });
      }
      errors.push({ suffix: '_total', labels: labels.route, value: m.errors });
      const wl = { ...labels.route, window: windowLabel };
      this.#quantileSamples(m.entry, labels, win, windowLabel, latency);
      latency.push({ suffix: '_sum', labels: wl, value: m.route.sumMs / 1000 });
      latency.push({ suffix: '_count', labels: wl, value: m.route.count });
    }
    const unitWord = n.durationUnit;
    return [
      {
        name: n.calls,
        help: 'Spans counted per route (span_name "METHOD route"), span kind and status code (spanmetrics-compatible).',
        type: 'counter',
        samples: calls,
      },
      {
        name: n.duration,
        help: `Span durations in ${unitWord} per route, span kind and status code (spanmetrics-compatible).`,
        type: 'histogram',
        unit: unitWord,
        samples: duration,
      },
      { name: 'routelens_route_duration_seconds', help: 'Request durations per route in seconds.', type: 'histogram', unit: 'seconds', samples: routeDuration },
      { name: 'routelens_route_requests', help: 'Requests per route and HTTP status class (none: no HTTP status).', type: 'counter', samples: requests },
      { name: 'routelens_route_errors', help: 'Failed requests per route (span status ERROR or HTTP status >= 500).', type: 'counter', samples: errors },
      latencyFamily(latency),
    ];
  }

  /**
   * The quantile samples of `routelens_route_latency_seconds` for every route of the store, without the
   * cumulative _sum and _count this recorder keeps: what a merged store can compute (src/core/query.ts).
   */
  quantileFamily(nowMs = this.store.clock.now()): MetricFamily {
    const win = this.store.resolveWindow(this.summaryWindowMs, nowMs);
    const windowLabel = formatWindow(this.summaryWindowMs);
    const samples: MetricSample[] = [];
    for (const entry of this.store.entries()) this.#quantileSamples(entry, this.labelsOf(entry), win, windowLabel, samples);
    return latencyFamily(samples);
  }

  #quantileSamples(entry: RouteEntry, labels: RouteLabels, win: ResolvedWindow, windowLabel: string, into: MetricSample[]): void {
    const s = this.store.summarize([entry], win);
    const qs = [s.p50, s.p90, s.p95, s.p99, s.p999];
    SUMMARY_QUANTILES.forEach((q, i) => {
      into.push({ suffix: '', labels: { ...labels.route, window: windowLabel, quantile: String(q) }, value: (qs[i] as number) / 1000 });
    });
  }
}

function latencyFamily(samples: MetricSample[]): MetricFamily {
  return {
    name: 'routelens_route_latency_seconds',
    help: `Request duration quantiles per route over the sliding window (label window), within 0.55 % of the exact nearest-rank value; _sum and _count are cumulative.`,
    type: 'summary',
    unit: 'seconds',
    samples,
  };
}

/** The summary window: `metrics.summary_window`, else 5m when it is a configured window, else the first window. */
export function summaryWindow(config: Pick<MetricsConfig, 'summary_window'>, windowsMs: readonly number[]): number {
  if (config.summary_window !== undefined) return config.summary_window;
  return windowsMs.includes(300_000) ? 300_000 : (windowsMs[0] as number);
}

/** Classic histogram samples; `div` converts ms to the histogram's unit. */
function histogramSamples(h: FixedHistogram, labels: Record<string, string>, le: readonly string[], div: number, out: MetricSample[]): void {
  let cum = 0;
  for (let b = 0; b < h.counts.length; b++) {
    cum += h.counts[b] as number;
    const sample: MetricSample = { suffix: '_bucket', labels: { ...labels, le: b < le.length ? (le[b] as string) : '+Inf' }, value: cum };
    const ex = h.exemplars?.[b];
    if (ex !== undefined) {
      sample.exemplar = {
        labels: { trace_id: ex.traceId, span_id: ex.spanId },
        value: ex.valueMs / div,
        ...(ex.timeMs > 0 ? { timestampS: ex.timeMs / 1000 } : {}),
      };
    }
    out.push(sample);
  }
  out.push({ suffix: '_sum', labels, value: h.sumMs / div });
  out.push({ suffix: '_count', labels, value: h.count });
}

/** `300000` → `5m`, `3600000` → `1h`, `90000` → `90s`: the largest unit that divides the window. */
export function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}
