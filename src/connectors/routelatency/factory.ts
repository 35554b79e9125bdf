/**
 * The `routelatency` connector: listed as an exporter of a traces pipeline (as spanmetrics is), it records
 * every span of the configured kinds into the RouteStore and its route metrics, and passes the batch on
 * unchanged to the traces pipelines it feeds, if any. The routequery extension serves its store under /api/v1
 * and its metrics on /metrics (a Telemetry collector). Listed as a receiver of metrics pipelines, it sends OTLP
 * metrics (exponential histograms of the route sketches, call and error sums) every `metrics.flush_interval`
 * and once more on shutdown.
 */
import type { Component, CreateSettings, PipelineContext } from '../../core/component';
import type { ConnectorFactory } from '../../consumer/factory';
import type { MetricsConsumer, SignalConsumers, TracesConsumer } from '../../consumer/consumer';
import { MetricsBatch } from '../../pdata/metrics-batch';
import type { TraceBatch } from '../../pdata/trace-batch';
import type { MergedQueryState, QueryHint, QueryStateSource, RouteQueryProvider } from '../../core/query';
import type { LiveRouteLatency } from '../../core/route-latency';
import type { SpanInput } from './span-input';
import type { Counter } from '../../core/telemetry';
import { routeLatencyConfigSchema, type RouteLatencyConfig } from './config';
import { RouteMetricsRecorder } from './metrics';
import { collectMetricsRequest, encodeMetricsRequest } from './otlp-metrics';
import { handleQuery, resolveWindow } from './query';
import { RouteStore, routeStoreOptions, type Clock, type StoreSnapshot } from './store';
import { RuntimeView } from '../../runtimeview/view';
import type { RuntimeSnapshot } from '../../runtimeview/state';
import { runtimeViewFamilies, spanRoutesOf } from './runtime';
import { RouteAnalysisStore, type RouteAnalysisSnapshot } from '../../analysis/route-analysis';
import { RouteAnalyzer } from './analyzer';
import { handleWhy, WHY_PATH } from './why-query';

/** The connector's query state as plain data (QueryStateSource): what the primary merges under `--workers`. */
export interface RouteLatencySnapshot {
  store: StoreSnapshot;
  runtime?: RuntimeSnapshot | undefined;
  /** Per-route trace analysis (absent when `analysis.enabled` is false). */
  analysis?: RouteAnalysisSnapshot[];
}

/**
 * Answers the route API from a store, the runtime API from a view (the runtime's routes beside the store's) and
 * `why` from the analysis store.
 */
function queryProvider(store: RouteStore, runtime: RuntimeView, analysis: RouteAnalysisStore | undefined): RouteQueryProvider {
  const spans = spanRoutesOf(store);
  return {
    handleQuery: (pathname, params) => {
      if (RuntimeView.handles(pathname)) return runtime.query(pathname, params, spans, store.clock.now());
      if (pathname === WHY_PATH || pathname === `${WHY_PATH}/`) return handleWhy(store, analysis, params);
      return handleQuery(store, pathname, params);
    },
  };
}

export class RouteLatencyConnector implements Component, TracesConsumer, MetricsConsumer, QueryStateSource {
  readonly store: RouteStore;
  /** The runtime of each service instance, fed by the metrics pipelines that export to this connector. */
  readonly runtime: RuntimeView;
  readonly metrics: RouteMetricsRecorder;
  readonly routeQuery: RouteQueryProvider;
  /** Trace analysis, unless `analysis.enabled` is false. */
  readonly analyzer: RouteAnalyzer | undefined;
  /** The routes' live latency, for the tail_capture processor (`routes_from`). */
  readonly liveLatency: LiveRouteLatency;
  readonly #next: SignalConsumers;
  readonly #settings: CreateSettings;
  readonly #config: RouteLatencyConfig;
  readonly #flushes: { sent: Counter; failed: Counter };
  #sweepTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #inFlight = new Set<Promise<void>>();
  readonly #recordSkipped = (service: string, counts: Uint32Array): void => this.store.recordSkipped(service, counts);
  #stopped = false;

  constructor(settings: CreateSettings, config: RouteLatencyConfig, next: SignalConsumers, clock?: Clock) {
    this.#next = next;
    this.#settings = settings;
    this.#config = config;
    this.store = new RouteStore(routeStoreOptions(config, clock));
    this.metrics = new RouteMetricsRecorder(this.store, { config: config.metrics, exportSketches: next.metrics !== undefined });
    this.runtime = new RuntimeView({ windowsMs: config.windows, clock: this.store.clock });
    this.analyzer = config.analysis.enabled ? new RouteAnalyzer(this.store, config.analysis) : undefined;
    this.routeQuery = queryProvider(this.store, this.runtime, this.analyzer?.analysis);
    this.liveLatency = liveLatency(this.store);
    const t = settings.telemetry;
    const labels = { connector: settings.id };
    if (this.analyzer !== undefined) registerAnalysisTelemetry(t, labels, this.analyzer);
    t.gauge('routelens_routes', 'Routes currently tracked.', labels, () => this.store.stats().routes);
    t.gauge('routelens_route_memory_bytes', 'Estimated memory held by route sketches.', labels, () => this.store.stats().memoryBytes);
    t.gauge('routelens_route_overflow_spans', 'Spans recorded into an overflow (__other__) route since start.', labels, () => this.store.stats().overflowSpans);
    t.collector(() => this.metrics.families());
    t.collector(() => runtimeViewFamilies(this.runtime, settings.id));
    const help = 'OTLP route metrics requests handed to the metrics pipelines, by outcome.';
    this.#flushes = {
      sent: t.counter('routelens_route_metrics_flushes', help, { ...labels, outcome: 'sent' }),
      failed: t.counter('routelens_route_metrics_flushes', help, { ...labels, outcome: 'failed' }),
    };
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // Expire idle routes even when no spans arrive.
    this.#sweepTimer = setInterval(() => {
      this.store.sweep();
      this.runtime.sweep();
      this.analyzer?.analysis.sweep(this.store.clock.now());
    }, 60_000);
    this.#sweepTimer.unref();
    this.analyzer?.start();
    if (this.#next.metrics !== undefined) {
      this.#flushTimer = setInterval(() => void this.flush(), this.#config.metrics.flush_interval);
      this.#flushTimer.unref();
    }
  }

  async shutdown(): Promise<void> {
    this.analyzer?.stop();
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    const started = this.#flushTimer !== undefined;
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    if (started && !this.#stopped) {
      this.#stopped = true;
      await this.flush();
    }
    await Promise.all([...this.#inFlight]);
  }

  /**
   * Builds the OTLP metrics request of the routes and hands it to the metrics pipelines (no-op without one or
   * when no route has data). Failures are logged and counted, never thrown.
   */
  flush(): Promise<void> {
    const next = this.#next.metrics;
    if (next === undefined) return Promise.resolve();
    let batch: MetricsBatch;
    try {
      const request = collectMetricsRequest(this.metrics, this.store.clock.now(), this.#settings.id);
      if (request === undefined) return Promise.resolve();
      batch = MetricsBatch.decode(encodeMetricsRequest(request));
    } catch (err) {
      this.#flushes.failed.add();
      this.#settings.logger.error({ err: String(err) }, 'Cannot build the route metrics request');
      return Promise.resolve();
    }
    const p = next
      .consumeMetrics(batch, {})
      .then(
        () => this.#flushes.sent.add(),
        (err: unknown) => {
          this.#flushes.failed.add();
          this.#settings.logger.warn({ err: String(err) }, 'Route metrics were not accepted by the metrics pipeline; dropped');
        },
      )
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
    return p;
  }

  /**
   * The connector's query state; for a `query` (a cluster-wide one), only what it reads: trace analysis for
   * /api/v1/why, the runtime view for its paths, and for the windowed route and service paths only the slots of the
   * queried window.
   */
  snapshotQueryState(query?: QueryHint): RouteLatencySnapshot {
    const whole = query === undefined;
    const why = query?.pathname === WHY_PATH || query?.pathname === `${WHY_PATH}/`;
    const runtime = query !== undefined && RuntimeView.handles(query.pathname);
    const analysis = whole || why ? this.analyzer?.analysis.snapshot() : undefined;
    return {
      // Only a version that asks for one query's state reads compact sketches.
      store: this.store.snapshot(whole || why || runtime ? undefined : windowOfQuery(this.store, query), !whole),
      ...(whole || runtime ? { runtime: this.runtime.snapshot() } : {}),
      ...(analysis === undefined ? {} : { analysis }),
    };
  }

  /**
   * As an exporter of a metrics pipeline: hands the request to the runtime view's bounded queue and
   * returns at once. The view never refuses (a full queue drops the copy and counts it), so the pipeline's other
   * exporters and its answer to the client are unaffected.
   */
  consumeMetrics(batch: MetricsBatch): Promise<void> {
    // The request as it stands after the pipeline's processors: its encoding when a processor changed it, else
    // the very bytes received (copied when the receiver reuses their buffer), kept by the view without a copy.
    this.runtime.offerKept(batch.encodeToKeep());
    return Promise.resolve();
  }

  async consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void> {
    const now = this.store.clock.now();
    const store = this.store;
    const metrics = this.metrics;
    const analyzer = this.analyzer;
    if (analyzer === undefined) {
      // Spans of other kinds are skipped without being read.
      batch.forEachSpan(
        (span) => {
          if (store.record(span, now)) metrics.recordLast(span, now);
        },
        { kinds: store.kindMask, skipped: this.#recordSkipped },
      );
    } else {
      // Analysis needs every span of a trace; the store counts the kinds it does not record as skipped.
      analyzer.beginBatch();
      batch.forEachSpan((span) => {
        let entry;
        if (store.record(span, now)) {
          metrics.recordLast(span, now);
          entry = store.last.entry;
        }
        analyzer.copy(span, entry, now);
      });
    }
    if (this.#next.traces !== undefined) await this.#next.traces.consumeTraces(batch, ctx);
  }
}

export const routeLatencyConnectorFactory: ConnectorFactory<RouteLatencyConfig> = {
  kind: 'connector',
  type: 'routelatency',
  configSchema: routeLatencyConfigSchema,
  consumes: ['traces', 'metrics'],
  produces: ['traces', 'metrics'],
  create: (settings, config, next) => new RouteLatencyConnector(settings, config, next),
  mergeQueryStates: (config, snapshots) => mergeQueryStates(config, snapshots as readonly RouteLatencySnapshot[]),
};

/**
 * The tier and first period a query of the route and service paths (`window`, default 5m) can read when answered
 * at `query.atMs` or later, or undefined for other paths and for a window the store does not have (the query
 * answers 400 then). The earlier of this process's time and `atMs` is taken, never the store's latest span time:
 * whichever clock is behind, the asker's window starts at this period or later.
 */
export function windowOfQuery(store: RouteStore, query: QueryHint): { tier: number; fromPeriod: number } | undefined {
  if (!/^\/api\/v1\/(routes|services)(\/|$)/.test(query.pathname)) return undefined;
  const text = query.params.find(([k]) => k === 'window')?.[1];
  const now = store.clock.now();
  const at = query.atMs === undefined ? now : Math.min(now, query.atMs);
  try {
    const win = resolveWindow(store, text, now);
    return { tier: win.tier, fromPeriod: Math.floor(at / win.slotMs) - win.slots + 1 };
  } catch {
    return undefined;
  }
}

/** One store merged from the workers' snapshots (exact: one scale, absolute slot periods), queried as the connector's own. */
export function mergeQueryStates(config: RouteLatencyConfig, snapshots: readonly RouteLatencySnapshot[], clock?: Clock): MergedQueryState {
  const store = new RouteStore(routeStoreOptions(config, clock));
  for (const s of snapshots) store.mergeSnapshot(s.store);
  const runtime = new RuntimeView({ windowsMs: config.windows, clock: store.clock });
  for (const s of snapshots) if (s.runtime !== undefined) runtime.merge(s.runtime);
  let analysis: RouteAnalysisStore | undefined;
  if (config.analysis.enabled) {
    analysis = new RouteAnalysisStore({ windowsMs: store.windowsMs, maxRoutes: config.analysis.max_routes, routeExpiryMs: store.routeExpiryMs });
    for (const s of snapshots) analysis.mergeSnapshot(s.analysis ?? []);
  }
  const recorder = new RouteMetricsRecorder(store, { config: config.metrics, exportSketches: false });
  return {
    routeQuery: queryProvider(store, runtime, analysis),
    metricFamilies: () => [recorder.quantileFamily()],
  };
}

function registerAnalysisTelemetry(t: CreateSettings['telemetry'], labels: Record<string, string>, analyzer: RouteAnalyzer): void {
  type Stats = ReturnType<RouteAnalyzer['stats']>;
  const stat = (k: keyof Stats) => (): number => analyzer.stats()[k];
  t.gauge(
    'routelens_analysis_traces_in_flight',
    'Traces held by trace analysis, waiting for spans or for their requests to be analysed.',
    labels,
    stat('tracesInFlight'),
  );
  t.gauge('routelens_analysis_spans_in_flight', 'Span records held by trace analysis.', labels, stat('spansInFlight'));
  t.gauge('routelens_analysis_memory_bytes', 'Estimated memory of the span records held by trace analysis.', labels, stat('bytesInFlight'));
  t.gauge('routelens_analysis_routes', 'Routes with analysis state.', labels, stat('routes'));
  // Cumulative figures are counters, brought up to date from the analyzer's totals before each scrape.
  const unusedHelp =
    'Spans trace analysis did not use, by reason: late (their request was analysed before they came), dropped (max_spans_per_trace), orphan (parent never arrived), unrooted (trace without a request span), duplicate (span id seen twice).';
  const counters: [keyof Stats, ReturnType<typeof t.counter>][] = [
    ['requestsAnalysed', t.counter('routelens_analysis_requests', 'Requests analysed.', labels)],
    ['evictedTraces', t.counter('routelens_analysis_evicted_traces', 'Traces analysed early because max_traces or max_memory_mib was reached.', labels)],
    ['overflowRequests', t.counter('routelens_analysis_overflow_requests', 'Requests not analysed because max_routes was reached.', labels)],
    ['lateSpans', t.counter('routelens_analysis_unused_spans', unusedHelp, { ...labels, reason: 'late' })],
    ['droppedSpans', t.counter('routelens_analysis_unused_spans', unusedHelp, { ...labels, reason: 'dropped' })],
    ['orphanSpans', t.counter('routelens_analysis_unused_spans', unusedHelp, { ...labels, reason: 'orphan' })],
    ['unrootedSpans', t.counter('routelens_analysis_unused_spans', unusedHelp, { ...labels, reason: 'unrooted' })],
    ['duplicateSpans', t.counter('routelens_analysis_unused_spans', unusedHelp, { ...labels, reason: 'duplicate' })],
  ];
  t.beforeScrape(async () => {
    const s = analyzer.stats();
    for (const [k, c] of counters) {
      const d = s[k] - c.value();
      if (d > 0) c.add(d);
    }
  });
}

/**
 * LiveRouteLatency over a store: route keys are `service NUL method NUL route`; quantiles merge the route's
 * entries (all dimension values) over the window, cached for a second per route, window and quantile.
 */
function liveLatency(store: RouteStore): LiveRouteLatency {
  const cache = new Map<string, { atMs: number; valueMs: number; count: number }>();
  return {
    windowsMs: store.windowsMs,
    routeOf(span) {
      const r = store.routeOf(span as SpanInput);
      return r === undefined ? undefined : `${r.service}\u0000${r.method}\u0000${r.route}`;
    },
    quantile(route, q, windowMs, nowMs) {
      const key = `${route}\u0000${windowMs}\u0000${q}`;
      const hit = cache.get(key);
      if (hit !== undefined && nowMs - hit.atMs < 1000) return hit;
      const [service = '', method = '', name = ''] = route.split('\u0000');
      const entries = store.find(service, method, name);
      let out = { atMs: nowMs, valueMs: NaN, count: 0 };
      if (entries.length > 0) {
        const agg = store.aggregate(entries, store.resolveWindow(windowMs, nowMs));
        out = { atMs: nowMs, valueMs: agg.sketch.quantile(q), count: agg.sketch.count };
      }
      if (cache.size > 100_000) cache.clear();
      cache.set(key, out);
      return out;
    },
  };
}
