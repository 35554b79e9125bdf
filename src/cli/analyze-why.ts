/**
 * `routelens analyze FILE… --why`: the why answers of every route offline, from OTLP/JSON captures, by the same
 * analysis the connector runs live. The capture is read once: spans go to a latency store and to the trace
 * analysis, whose decision waits run on the capture's own clock (the latest span end seen), so a request is
 * analysed once the spans after it in the capture are some seconds later, and memory stays bounded however long
 * the capture. Every answer covers the whole capture (one window, as `routelens analyze` does).
 * `routelens analyze --html` embeds the same answers in the offline page (CaptureAnalysis).
 */
import { buildWhy, type WhyAnswer } from '../analysis/why';
import { RouteAnalyzer } from '../connectors/routelatency/analyzer';
import { routeLatencyConfigSchema, type RouteLatencyConfig } from '../connectors/routelatency/config';
import { RouteStore, routeStoreOptions } from '../connectors/routelatency/store';
import { ConfigErrorList } from '../core/schema';
import { traceRequestFromJson } from '../pdata/otlp-json';
import { TraceBatch, type SpanView } from '../pdata/trace-batch';
import { readCaptures } from './captures';
import { CommandError } from './routes';

/** The one window of an offline analysis: every span lands in one slot of it, at the instant OFFLINE_NOW. */
export const OFFLINE_WINDOW = '1h';
const WINDOW_MS = 3_600_000;
export const OFFLINE_NOW = 0;

/** The connector's config as offline analysis uses it (one window; the analysis defaults). */
export function offlineConfig(): RouteLatencyConfig {
  return routeLatencyConfigSchema.parse({ windows: [OFFLINE_WINDOW] }, 'analyze', new ConfigErrorList());
}

/** A latency store whose clock stands still at OFFLINE_NOW. */
export function offlineStore(config: RouteLatencyConfig): RouteStore {
  return new RouteStore(routeStoreOptions(config, { now: () => OFFLINE_NOW }));
}

/**
 * The trace analysis of a capture beside its latency store: each batch's spans are recorded into the store (at
 * OFFLINE_NOW) and copied to the analysis, whose clock is the latest span end read so far.
 */
export class CaptureAnalysis {
  readonly #store: RouteStore;
  readonly #analyzer: RouteAnalyzer;
  #clock = -Infinity;
  #finished = false;

  constructor(store: RouteStore, config: RouteLatencyConfig) {
    this.#store = store;
    this.#analyzer = new RouteAnalyzer(store, config.analysis, { recordAtMs: OFFLINE_NOW });
  }

  /** Records every span of the batch into the store and the analysis; `each` sees every span first. */
  record(batch: TraceBatch, each?: (s: SpanView) => void): void {
    batch.forEachSpan((s) => {
      if (s.endTimeMs > this.#clock) this.#clock = s.endTimeMs;
    });
    const at = this.#now();
    this.#analyzer.beginBatch();
    batch.forEachSpan((s) => {
      each?.(s);
      const entry = this.#store.record(s, OFFLINE_NOW) ? this.#store.last.entry : undefined;
      this.#analyzer.copy(s, entry, at);
    });
    this.#analyzer.expire(at);
  }

  /** The answer for one route over the whole capture (the end of the capture analyses what is still held). */
  answer(service: string, method: string, route: string): WhyAnswer {
    this.#finish();
    const entries = this.#store.find(service, method, route);
    const s = this.#store.summarize(entries, this.#store.resolveWindow(WINDOW_MS, OFFLINE_NOW));
    return buildWhy({
      service,
      method,
      route,
      window: 'capture',
      latency: { count: s.count, p50: s.p50, p95: s.p95, p99: s.p99 },
      errorCount: s.errorCount,
      data: this.#analyzer.analysis.aggregate({ service, method, route }, WINDOW_MS, OFFLINE_NOW),
    });
  }

  /** The answers of every route (entries differing only in dimension values are one route), slowest p99 first. */
  answers(filter: { service?: string | undefined; method?: string | undefined; route?: string | undefined } = {}): WhyAnswer[] {
    const out: WhyAnswer[] = [];
    const seen = new Set<string>();
    for (const e of this.#store.entries()) {
      const key = `${e.service}\u0000${e.method}\u0000${e.route}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (filter.service !== undefined && e.service !== filter.service) continue;
      if (filter.route !== undefined && e.route !== filter.route) continue;
      if (filter.method !== undefined && e.method !== filter.method) continue;
      out.push(this.answer(e.service, e.method, e.route));
    }
    return out.sort((a, b) => (b.p99_ms ?? -1) - (a.p99_ms ?? -1) || a.service.localeCompare(b.service) || a.route.localeCompare(b.route));
  }

  #now(): number {
    return Number.isFinite(this.#clock) ? this.#clock : 0;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#analyzer.stop(this.#now());
  }
}

export interface AnalyzeWhyOptions {
  files: readonly string[];
  service?: string | undefined;
  /** `/orders/{id}` or `GET /orders/{id}`. */
  route?: string | undefined;
  method?: string | undefined;
}

export interface AnalyzeWhyResult {
  answers: WhyAnswer[];
  spans: number;
  badLines: number;
}

export async function analyzeWhy(o: AnalyzeWhyOptions): Promise<AnalyzeWhyResult> {
  const config = offlineConfig();
  const capture = new CaptureAnalysis(offlineStore(config), config);
  let spans = 0;
  let requests = 0;
  let badLines = 0;
  const errors: string[] = [];
  await readCaptures(
    o.files,
    (json, where) => {
      let batch: TraceBatch;
      try {
        batch = TraceBatch.decode(traceRequestFromJson(json));
      } catch (err) {
        badLines++;
        if (errors.length < 3) errors.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      requests++;
      capture.record(batch, () => {
        spans++;
      });
    },
    () => undefined,
  );
  if (requests === 0) throw new CommandError(`no OTLP/JSON trace requests found in ${o.files.join(', ')}${errors.length ? `: ${errors.join('; ')}` : ''}`);
  if (badLines > 0) process.stderr.write(`routelens: skipped ${badLines} unreadable line(s); first: ${errors.join('; ')}\n`);
  return { answers: capture.answers({ service: o.service, route: o.route, method: o.method }), spans, badLines };
}
