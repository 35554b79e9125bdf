/**
 * The connector's trace analysis (`analysis:` settings): copies the few fields analysis needs out of every span
 * while the batch is walked (the batch itself is passed on at once), assembles them by trace (src/analysis/
 * assembly.ts), and records each analysed request into the per-route analysis store, classed slow or fast
 * against the route's live percentiles in the latency store.
 *
 * Under `--workers N` each worker analyses the requests whose spans reached it. A request needs only its own
 * service's spans (the callee's time is measured by the client span that called it), and one service process
 * sends all of them over one exporter connection, which stays on one worker; so each request is analysed whole,
 * in the worker its service talks to. The per-route results merge exactly in the primary (snapshot → merge).
 */
import { TraceAssembler, type AssemblyStats } from '../../analysis/assembly';
import { RouteAnalysisStore, routeKeyOf } from '../../analysis/route-analysis';
import { recordFromView, resourceInfo, type ResourceInfo } from '../../analysis/span-record';
import { FingerprintCache } from '../../analysis/sql';
import type { TraceAnalysis } from '../../analysis/trace';
import type { SpanView } from '../../pdata/trace-batch';
import type { RouteLatencyConfig } from './config';
import type { RouteEntry, RouteStore } from './store';

type AnalysisConfig = RouteLatencyConfig['analysis'];

/** Longest stretch of analysis the connector's timer runs before giving the event loop back. */
const SLICE_MS = 2;

export interface AnalyzerStats extends AssemblyStats {
  routes: number;
  overflowRequests: number;
}

export class RouteAnalyzer {
  readonly analysis: RouteAnalysisStore;
  readonly assembler: TraceAssembler;
  readonly #store: RouteStore;
  readonly #routeKeys = new WeakMap<RouteEntry, string>();
  readonly #recordAtMs: number | undefined;
  readonly #words = new Uint32Array(8);
  /** Resource facts of the batch being walked, by resource index. */
  #resources: ResourceInfo[] = [];
  #timer: NodeJS.Timeout | undefined;
  #rest: NodeJS.Immediate | undefined;

  /**
   * `recordAtMs`: the time analysed requests are recorded at, instead of when they were analysed (offline
   * analysis puts a whole capture in one slot, as its latency store does).
   */
  constructor(store: RouteStore, config: AnalysisConfig, options: { recordAtMs?: number } = {}) {
    this.#store = store;
    this.#recordAtMs = options.recordAtMs;
    this.analysis = new RouteAnalysisStore({ windowsMs: store.windowsMs, maxRoutes: config.max_routes, routeExpiryMs: store.routeExpiryMs });
    this.assembler = new TraceAssembler((a, now) => this.#record(a, now), {
      decisionWaitMs: config.decision_wait,
      maxTraceWaitMs: config.max_trace_wait,
      maxTraces: config.max_traces,
      maxSpansPerTrace: config.max_spans_per_trace,
      maxBytes: config.max_memory_mib * 1024 * 1024,
      maxClockSkewMs: config.max_clock_skew,
      minRepeats: config.n_plus_one.min_repeats,
      minTotalMs: config.n_plus_one.min_total,
      fingerprints: new FingerprintCache(),
    });
  }

  start(): void {
    this.#timer = setInterval(() => this.#slice(), 250);
    this.#timer.unref();
  }

  /**
   * What is due, in slices of at most ~SLICE_MS with the event loop free between them: at 10k spans/s a quarter
   * second of due requests takes several milliseconds to analyse, which requests arriving meanwhile would wait.
   */
  #slice(): void {
    if (this.#rest !== undefined) return;
    const until = performance.now() + SLICE_MS;
    if (this.assembler.expire(this.#store.clock.now(), () => performance.now() > until)) return;
    this.#rest = setImmediate(() => {
      this.#rest = undefined;
      this.#slice();
    });
  }

  /** Analyses everything still held (shutdown; the end of a capture). */
  stop(nowMs = this.#store.clock.now()): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#rest !== undefined) clearImmediate(this.#rest);
    this.#rest = undefined;
    this.assembler.flush(nowMs);
  }

  expire(nowMs: number): void {
    this.assembler.expire(nowMs);
  }

  /** Start of a batch walk: resource facts are computed once per resource. */
  beginBatch(): void {
    this.#resources = [];
  }

  /**
   * Copies a span. `entry` is the route the latency store counted it under (a request span), else undefined.
   */
  copy(span: SpanView, entry: RouteEntry | undefined, nowMs: number): void {
    const words = this.#words;
    const mask = span.readIdWords(words);
    if ((mask & 3) !== 3) return; // no trace or span id: cannot be assembled
    let resource = this.#resources[span.resourceIndex];
    if (resource === undefined) this.#resources[span.resourceIndex] = resource = resourceInfo(span);
    const route = entry === undefined ? '' : this.#routeKey(entry);
    const rec = recordFromView(span, resource, route, nowMs, words, mask);
    this.assembler.addWords(words[0] as number, words[1] as number, words[2] as number, words[3] as number, rec, nowMs);
  }

  stats(): AnalyzerStats {
    const a = this.analysis.stats();
    return { ...this.assembler.stats(), routes: a.routes, overflowRequests: a.overflowRequests };
  }

  #routeKey(entry: RouteEntry): string {
    let k = this.#routeKeys.get(entry);
    if (k === undefined) this.#routeKeys.set(entry, (k = routeKeyOf(entry.service, entry.method, entry.route)));
    return k;
  }

  #record(a: TraceAnalysis, nowMs: number): void {
    const at = this.#recordAtMs ?? nowMs;
    for (const req of a.requests) this.analysis.record(req, at, nowMs);
  }
}
