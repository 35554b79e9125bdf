/**
 * `routelens analyze FILE…`: the per-route table computed offline from OTLP/JSON captures: one
 * ExportTraceServiceRequest per line (what the `file` exporter writes), or a single JSON document per file.
 * Uses the same route keys and sketches as the live connector; the rate is over the captured time span.
 * With `--html OUT`, also the page routequery serves, as one self-contained file with the answers embedded
 * (the why answers of `analyze --why` among them: the trace analysis reads the spans in the first pass).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { routeLatencyConfigSchema } from '../connectors/routelatency/config';
import {
  queryCoverage,
  queryRoute,
  queryRoutes,
  queryService,
  queryServices,
  routePath,
  MAX_LIMIT,
  type RoutesResponse,
} from '../connectors/routelatency/query';
import { RouteStore, routeStoreOptions } from '../connectors/routelatency/store';
import { formatDuration, slotSizeFor } from '../connectors/routelatency/window';
import { offlinePageHtml } from '../extensions/routequery/page-assets';
import { ConfigErrorList } from '../core/schema';
import { traceRequestFromJson } from '../pdata/otlp-json';
import { TraceBatch, type SpanView } from '../pdata/trace-batch';
import { CaptureAnalysis, OFFLINE_NOW, OFFLINE_WINDOW, offlineConfig, offlineStore } from './analyze-why';
import { readCaptures } from './captures';
import { formatRoutesTable } from './routes-table';
import { CommandError } from './routes';

export interface AnalyzeOptions {
  files: readonly string[];
  json: boolean;
  sort?: string | undefined;
  limit?: string | undefined;
  service?: string | undefined;
  /** Also write the page, with the answers embedded, to this file. */
  html?: string | undefined;
  /** Base URL of a Jaeger UI the offline page links slow traces to. */
  jaegerUrl?: string | undefined;
  out: NodeJS.WritableStream;
  /** Progress bar destination (stderr when it is a terminal). */
  progress?: NodeJS.WriteStream | undefined;
  color: boolean;
}

export interface AnalyzeResult {
  response: RoutesResponse;
  spans: number;
  requests: number;
  badLines: number;
}

const WINDOW = OFFLINE_WINDOW;

export async function analyze(o: AnalyzeOptions): Promise<AnalyzeResult> {
  const config = offlineConfig();
  // Every span lands in one slot of one window at a fixed "now"; the time span comes from the spans.
  const now = OFFLINE_NOW;
  const store = offlineStore(config);
  // The page shows each route's why answer: the analysis reads the spans in the same pass.
  const analysis = o.html === undefined ? undefined : new CaptureAnalysis(store, config);
  let minStart = Infinity;
  let maxEnd = -Infinity;
  let spans = 0;
  let requests = 0;
  let badLines = 0;
  const firstErrors: string[] = [];
  const ingest = (json: string, where: string): void => {
    let batch: TraceBatch;
    try {
      batch = TraceBatch.decode(traceRequestFromJson(json));
    } catch (err) {
      badLines++;
      if (firstErrors.length < 3) firstErrors.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    requests++;
    const each = (s: SpanView): void => {
      spans++;
      if (s.startTimeMs > 0 && s.startTimeMs < minStart) minStart = s.startTimeMs;
      if (s.endTimeMs > maxEnd) maxEnd = s.endTimeMs;
    };
    if (analysis !== undefined) analysis.record(batch, each);
    else
      batch.forEachSpan((s) => {
        each(s);
        store.record(s, now);
      });
  };
  const total = o.files.reduce((n, f) => n + statSize(f), 0) * (o.html === undefined ? 1 : 2);
  let done = 0;
  let lastDraw = 0;
  const draw = (final = false): void => {
    if (o.progress === undefined || total < 1 << 20) return;
    const t = Date.now();
    if (!final && t - lastDraw < 100) return;
    lastDraw = t;
    const frac = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(frac * width);
    o.progress.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${spans} spans${final ? '\n' : ''}`);
  };
  await readCaptures(o.files, ingest, (n) => {
    done += n;
    draw();
  });
  draw(true);
  if (requests === 0) {
    throw new CommandError(`no OTLP/JSON trace requests found in ${o.files.join(', ')}${firstErrors.length ? `: ${firstErrors.join('; ')}` : ''}`);
  }
  const response = queryRoutes(store, { window: WINDOW, sort: o.sort, limit: o.limit, service: o.service }, now);
  const seconds = Number.isFinite(minStart) && maxEnd > minStart ? (maxEnd - minStart) / 1000 : 0;
  const captured = (r: RoutesResponse): RoutesResponse => {
    for (const route of r.routes) route.rate_per_s = seconds > 0 ? route.count / seconds : 0;
    r.window = seconds > 0 ? `${seconds.toFixed(1)}s captured` : 'capture';
    r.generated_at = new Date().toISOString();
    delete r.windows;
    return r;
  };
  captured(response);
  if (o.html !== undefined && analysis !== undefined) {
    const timeline = await timelineStore(o.files, minStart, maxEnd, (n) => {
      done += n;
      draw();
    });
    const data = embeddedAnswers(
      store,
      captured(queryRoutes(store, { window: WINDOW, limit: MAX_LIMIT, sort: 'p99' }, now)),
      timeline,
      seconds,
      o.jaegerUrl,
      analysis,
    );
    fs.writeFileSync(o.html, offlinePageHtml(data, `routelens: ${o.files.map((f) => path.basename(f)).join(', ')}`));
  }
  o.out.write(o.json ? `${JSON.stringify({ ...response, spans, requests, bad_lines: badLines }, null, 2)}\n` : formatRoutesTable(response, { color: o.color }));
  if (badLines > 0) process.stderr.write(`routelens: skipped ${badLines} unreadable line(s); first: ${firstErrors.join('; ')}\n`);
  return { response, spans, requests, badLines };
}

/** Windows the offline page may use: the first whose slots cover the capture is chosen. */
const TIMELINE_WINDOWS_MS = [60_000, 300_000, 900_000, 3_600_000, 3 * 3_600_000, 6 * 3_600_000, 12 * 3_600_000, 24 * 3_600_000, 60 * 3_600_000];
/** Routes whose detail (series, distribution, slowest traces) the offline page embeds, the busiest first. */
const MAX_EMBEDDED_ROUTES = 300;

/**
 * A second pass over the files into a store whose clock is the spans' end time, so each route has a series over
 * the capture (the first pass puts every span at one instant). The window is the smallest whose slots cover
 * the capture; of a capture longer than 59 h the series keep the last 60 h.
 */
async function timelineStore(files: readonly string[], minStart: number, maxEnd: number, progress: (bytes: number) => void): Promise<RouteStore> {
  const span = Number.isFinite(minStart) && maxEnd > minStart ? maxEnd - minStart : 0;
  const windowMs =
    TIMELINE_WINDOWS_MS.find((w) => {
      const slot = slotSizeFor(w);
      return typeof slot === 'number' && w - slot >= span;
    }) ?? (TIMELINE_WINDOWS_MS[TIMELINE_WINDOWS_MS.length - 1] as number);
  let now = Number.isFinite(minStart) ? minStart : 0;
  const config = routeLatencyConfigSchema.parse(
    { windows: [formatDuration(windowMs)], route_expiry: formatDuration(Math.max(windowMs, 3_600_000)) },
    'analyze',
    new ConfigErrorList(),
  );
  const store = new RouteStore(routeStoreOptions(config, { now: () => now }));
  await readCaptures(
    files,
    (json) => {
      let batch: TraceBatch;
      try {
        batch = TraceBatch.decode(traceRequestFromJson(json));
      } catch {
        return; // counted by the first pass
      }
      batch.forEachSpan((s) => {
        if (s.endTimeMs > now) now = s.endTimeMs;
        store.record(s, s.endTimeMs > 0 ? s.endTimeMs : now);
      });
    },
    progress,
  );
  return store;
}

/**
 * The API answers the offline page reads (its EmbeddedApi): routes and services of the whole capture, details
 * from the timeline, and the why answer of each route whose detail is embedded (`analyze --why`'s, by key
 * whyAnswerKey).
 */
function embeddedAnswers(
  store: RouteStore,
  routes: RoutesResponse,
  timeline: RouteStore,
  seconds: number,
  jaegerUrl: string | undefined,
  analysis: CaptureAnalysis,
): unknown {
  const window = formatDuration(timeline.windowsMs[0] as number);
  const services = queryServices(store, { window: WINDOW }, 0);
  services.window = routes.window;
  for (const s of services.services) s.rate_per_s = seconds > 0 ? s.count / seconds : 0;
  const answers: Record<string, unknown> = { 'api/v1/coverage': queryCoverage(store, 0) };
  const busiest = [...routes.routes].sort((a, b) => b.count - a.count).slice(0, MAX_EMBEDDED_ROUTES);
  for (const r of busiest) {
    const key = routePath(r.service, r.method, r.route).slice(1);
    if (key in answers) continue; // the dimension values of one route share its detail
    answers[whyAnswerKey(r.service, r.method, r.route)] = analysis.answer(r.service, r.method, r.route);
    try {
      const d = queryRoute(timeline, { service: r.service, method: r.method === '' ? '-' : r.method, route: r.route }, { window });
      d.route.rate_per_s = seconds > 0 ? d.route.count / seconds : 0;
      d.window = routes.window;
      answers[key] = d;
    } catch {
      // all its spans are older than the timeline's 60 h: no detail in the file
    }
  }
  for (const s of services.services) {
    try {
      const d = queryService(timeline, s.service, { window });
      d.service.rate_per_s = seconds > 0 ? d.service.count / seconds : 0;
      d.window = routes.window;
      answers[`api/v1/services/${encodeURIComponent(s.service)}`] = d;
    } catch {
      // as above
    }
  }
  return { routes, services, answers, settings: { jaeger_url: jaegerUrl ?? null } };
}

/**
 * Where the offline page finds the answer of GET /api/v1/why for a route: the same key its EmbeddedApi builds
 * from the request's parameters (page/api.ts whyKey).
 */
export function whyAnswerKey(service: string, method: string, route: string): string {
  return `api/v1/why?${new URLSearchParams({ service, method: method === '' ? '-' : method, route }).toString()}`;
}

function statSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    throw new CommandError(`cannot read ${f}: no such file`);
  }
}
