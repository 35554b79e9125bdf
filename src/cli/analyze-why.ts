/**
 * `routelens analyze FILE… --why`: the why answers of every route offline, from OTLP/JSON captures, by the same
 * analysis the connector runs live. The capture is read once: spans go to a latency store and to the trace
 * analysis, whose decision waits run on the capture's own clock (the latest span end seen), so a request is
 * analysed once the spans after it in the capture are some seconds later, and memory stays bounded however long
 * the capture. Every answer covers the whole capture (one window, as `routelens analyze` does).
 */
import { buildWhy, type WhyAnswer } from '../analysis/why';
import { RouteAnalyzer } from '../connectors/routelatency/analyzer';
import { routeLatencyConfigSchema } from '../connectors/routelatency/config';
import { RouteStore, routeStoreOptions } from '../connectors/routelatency/store';
import { ConfigErrorList } from '../core/schema';
import { traceRequestFromJson } from '../pdata/otlp-json';
import { TraceBatch } from '../pdata/trace-batch';
import { readCaptures } from './analyze';
import { CommandError } from './routes';

const WINDOW_MS = 3_600_000;

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
  const config = routeLatencyConfigSchema.parse({ windows: ['1h'] }, 'analyze', new ConfigErrorList());
  const now = 0;
  const store = new RouteStore(routeStoreOptions(config, { now: () => now }));
  const analyzer = new RouteAnalyzer(store, config.analysis, { recordAtMs: now });
  let clock = -Infinity;
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
      batch.forEachSpan((s) => {
        if (s.endTimeMs > clock) clock = s.endTimeMs;
      });
      const at = Number.isFinite(clock) ? clock : 0;
      analyzer.beginBatch();
      batch.forEachSpan((s) => {
        spans++;
        const entry = store.record(s, now) ? store.last.entry : undefined;
        analyzer.copy(s, entry, at);
      });
      analyzer.expire(at);
    },
    () => undefined,
  );
  analyzer.stop(Number.isFinite(clock) ? clock : 0);
  if (requests === 0) throw new CommandError(`no OTLP/JSON trace requests found in ${o.files.join(', ')}${errors.length ? `: ${errors.join('; ')}` : ''}`);
  if (badLines > 0) process.stderr.write(`routelens: skipped ${badLines} unreadable line(s); first: ${errors.join('; ')}\n`);
  const win = store.resolveWindow(WINDOW_MS, now);
  const answers: WhyAnswer[] = [];
  const seen = new Set<string>();
  for (const e of store.entries()) {
    const key = `${e.service}\u0000${e.method}\u0000${e.route}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (o.service !== undefined && e.service !== o.service) continue;
    if (o.route !== undefined && e.route !== o.route) continue;
    if (o.method !== undefined && e.method !== o.method) continue;
    const entries = store.find(e.service, e.method, e.route);
    const s = store.summarize(entries, win);
    answers.push(
      buildWhy({
        service: e.service,
        method: e.method,
        route: e.route,
        window: 'capture',
        latency: { count: s.count, p50: s.p50, p95: s.p95, p99: s.p99 },
        errorCount: s.errorCount,
        data: analyzer.analysis.aggregate(e, WINDOW_MS, now),
      }),
    );
  }
  answers.sort((a, b) => (b.p99_ms ?? -1) - (a.p99_ms ?? -1) || a.service.localeCompare(b.service) || a.route.localeCompare(b.route));
  return { answers, spans, badLines };
}
