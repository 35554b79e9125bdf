/**
 * The route query API as pure functions over a RouteStore: the lead's HTTP server calls
 * `handleQuery(store, url.pathname, url.searchParams)` and writes `{status, body}` as JSON.
 *
 *   GET /api/v1/routes?window=5m&service=S&sort=p99&limit=N
 *   GET /api/v1/routes/{service}/{method}/{route…}?window=5m[&dimension.NAME=VALUE]
 *   GET /api/v1/services?window=5m
 *   GET /api/v1/openapi.json
 */
import { runtimeOpenapi } from '../../runtimeview/query';
import { parseDuration } from '../../core/schema';
import { ROUTE_SOURCES, UNMATCHED_ROUTE, type RouteSource } from './route-key';
import { SKIPPED_ASGI_EVENT, type ResolvedWindow, type RouteEntry, type RouteStore, type RouteWindowSummary } from './store';
import { formatDuration, STATUS_CLASSES } from './window';
import { relativeErrorAtScale, SKETCH_SCALE } from '../../pdata/expo-histogram';

/** Largest relative error of every percentile the API reports (the sketch's bucket bound, 0.5415 % at scale 6). */
export const RELATIVE_ERROR = Number(relativeErrorAtScale(SKETCH_SCALE).toPrecision(6));

/** A bad request (400) or an unknown resource (404); `message` is meant for the client. */
export class QueryError extends Error {
  readonly status: 400 | 404;
  constructor(status: 400 | 404, message: string) {
    super(message);
    this.name = 'QueryError';
    this.status = status;
  }
}

/** One route in API responses. Durations in ms; percentiles null when the route has no span in the window. */
export interface RouteJson {
  service: string;
  method: string;
  route: string;
  route_source: RouteSource;
  count: number;
  rate_per_s: number;
  error_rate: number;
  error_count: number;
  /** Non-zero status classes only, e.g. `{"2xx": 10, "5xx": 1}`. */
  status_classes: Record<string, number>;
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
  mean_ms: number | null;
  dimensions: Record<string, string>;
}

export interface RoutesResponse {
  window: string;
  generated_at: string;
  /** Seconds of wall time the window covers (see README: rates). */
  covered_s: number;
  /** The configured windows, any of which `window` accepts. */
  windows?: string[];
  /** Largest relative error of each percentile (the sketch's bound). */
  relative_error?: number;
  /** Routes matching `service` and `search` before `offset` and `limit` applied. */
  total?: number;
  offset?: number;
  routes: RouteJson[];
}

export interface ServiceJson {
  service: string;
  /** Known (not expired) routes, overflow route included. */
  routes: number;
  /** Routes with at least one span in the window. */
  active_routes: number;
  count: number;
  rate_per_s: number;
  error_count: number;
  error_rate: number;
  /** Spans put into the service's `__other__` route since start because a cap was reached. */
  overflow_spans: number;
}

export interface ServicesResponse {
  window: string;
  generated_at: string;
  covered_s: number;
  services: ServiceJson[];
}

export interface SlotJson {
  start: string;
  count: number;
  rate_per_s: number;
  error_count: number;
  /** Non-zero status classes only. */
  status_classes: Record<string, number>;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface ExemplarJson {
  trace_id: string;
  span_id: string;
  value_ms: number;
  time: string;
}

/**
 * The window's merged sketch: `counts[k]` spans fell in bucket `offset + k`, which covers
 * `(2^((offset+k)/2^scale), 2^((offset+k+1)/2^scale)]` ms; `zero_count` spans took 0 ms.
 */
export interface DistributionJson {
  scale: number;
  zero_count: number;
  offset: number;
  counts: number[];
}

export interface RouteDetailResponse {
  window: string;
  generated_at: string;
  covered_s: number;
  relative_error?: number;
  slot_s: number;
  /** Number of route entries (dimension combinations) merged into `route`. */
  entries: number;
  route: RouteJson;
  series: SlotJson[];
  exemplars: ExemplarJson[];
  distribution?: DistributionJson;
}

export interface ServiceDetailResponse {
  window: string;
  generated_at: string;
  covered_s: number;
  relative_error: number;
  slot_s: number;
  service: ServiceJson & { p50_ms: number | null; p95_ms: number | null; p99_ms: number | null; p999_ms: number | null; max_ms: number | null };
  /** All routes of the service merged, per slot. */
  series: SlotJson[];
}

/** Names of the skipped-span counters of /api/v1/coverage, by SpanKind (and the ASGI event index). */
const SKIPPED_NAMES = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
  'asgi_http_event',
];

export interface CoverageResponse {
  generated_at: string;
  /** Counts are since this time (the collector's start, the earliest worker's under --workers). */
  since: string;
  /** The kinds counted as requests. */
  span_kinds: string[];
  totals: { spans_seen: number; spans_counted: number; spans_skipped: number; overflow_spans: number };
  services: {
    service: string;
    counted_spans: number;
    /** Non-zero only: `SPAN_KIND_CLIENT`, …, and `asgi_http_event` (ASGI send/receive INTERNAL spans). */
    skipped_spans: Record<string, number>;
    /** Counted spans by the source that named their route (non-zero only): `http.route`, `span_name`, `url.path`, … */
    route_sources: Record<string, number>;
    /** Counted spans put into the service's `__other__` route (a cap was reached). */
    overflow_spans: number;
    /** Known routes now (overflow route included), and those of them that are `__unmatched__` 404s. */
    routes: number;
    unmatched_routes: number;
  }[];
}

export const SORT_KEYS = ['p50', 'p90', 'p95', 'p99', 'p999', 'rate', 'count', 'errors', 'error_rate', 'impact', 'route'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

/** 6 significant digits; NaN/±Infinity → null. */
function num(x: number): number | null {
  if (!Number.isFinite(x)) return null;
  return x === 0 ? 0 : Number(x.toPrecision(6));
}
function num0(x: number): number {
  return num(x) ?? 0;
}

export function routeJson(s: RouteWindowSummary): RouteJson {
  const status_classes = statusClassesJson(s.statusClasses);
  return {
    service: s.service,
    method: s.method,
    route: s.route,
    route_source: s.source,
    count: s.count,
    rate_per_s: num0(s.ratePerS),
    error_rate: num0(s.errorRate),
    error_count: s.errorCount,
    status_classes,
    p50_ms: num(s.p50),
    p90_ms: num(s.p90),
    p95_ms: num(s.p95),
    p99_ms: num(s.p99),
    p999_ms: num(s.p999),
    min_ms: num(s.min),
    max_ms: num(s.max),
    mean_ms: num(s.mean),
    dimensions: { ...s.dimensions },
  };
}

function statusClassesJson(counts: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  counts.forEach((n, i) => {
    if (n > 0) out[STATUS_CLASSES[i] as string] = n;
  });
  return out;
}

/** Reads the allowed parameters; unknown or repeated ones are a 400. */
export function readParams(params: URLSearchParams, allowed: readonly string[], allowPrefix?: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of params) {
    if (!allowed.includes(k) && !(allowPrefix !== undefined && k.startsWith(allowPrefix) && k.length > allowPrefix.length)) {
      throw new QueryError(400, `unknown parameter ${JSON.stringify(k)}; expected one of ${allowed.join(', ')}${allowPrefix ? `, ${allowPrefix}<name>` : ''}`);
    }
    if (out.has(k)) throw new QueryError(400, `parameter ${JSON.stringify(k)} given more than once`);
    out.set(k, v);
  }
  return out;
}

function defaultWindowMs(store: RouteStore): number {
  return store.windowsMs.includes(300_000) ? 300_000 : Math.min(...store.windowsMs);
}

export function resolveWindow(store: RouteStore, text: string | undefined, nowMs: number): ResolvedWindow {
  const expected = store.windowsMs.map(formatDuration).join(', ');
  const ms = text === undefined ? defaultWindowMs(store) : parseDuration(text);
  if (ms === undefined) throw new QueryError(400, `invalid window ${JSON.stringify(text)}; expected one of ${expected}`);
  if (!store.windowsMs.includes(ms)) throw new QueryError(400, `unknown window ${JSON.stringify(text)}; expected one of ${expected}`);
  return store.resolveWindow(ms, nowMs);
}

function header(store: RouteStore, win: ResolvedWindow, nowMs: number): { window: string; generated_at: string; covered_s: number } {
  return { window: formatDuration(win.windowMs), generated_at: new Date(nowMs).toISOString(), covered_s: num0(win.coveredMs / 1000) };
}

const SORT_QUANTILE: Partial<Record<SortKey, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99, p999: 0.999 };

/**
 * The value a route is sorted by, as its row in the answer has it (rounded as there, a missing percentile as
 * -1), from only what that needs of its window: no whole summary.
 */
function sortValue(store: RouteStore, e: RouteEntry, win: ResolvedWindow, key: SortKey): number {
  if (key === 'route') return 0;
  const agg = store.aggregate([e], win);
  const s = agg.sketch;
  const rate = (): number => num0(s.count / (win.coveredMs / 1000));
  const quantile = (q: number): number | null => num(s.quantiles([q])[0] as number);
  switch (key) {
    case 'rate':
      return rate();
    case 'count':
      return s.count;
    case 'errors':
      return agg.errors;
    case 'error_rate':
      return num0(s.count === 0 ? 0 : agg.errors / s.count);
    case 'impact': {
      // Time the route costs per second of wall time: rate × p95 (Jaeger's impact uses the mean; the p95 weighs slow routes).
      const p95 = quantile(0.95);
      return p95 === null ? -1 : rate() * p95;
    }
    default:
      return quantile(SORT_QUANTILE[key] as number) ?? -1;
  }
}

/** By service, route, method, then dimensions (as their JSON), as the rows name them. */
function byName(a: RouteEntry, b: RouteEntry): number {
  return cmp(a.service, b.service) || cmp(a.route, b.route) || cmp(a.method, b.method) || cmp(JSON.stringify(a.dimensions), JSON.stringify(b.dimensions));
}
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface RoutesQuery {
  window?: string | undefined;
  service?: string | undefined;
  sort?: string | undefined;
  limit?: string | number | undefined;
  offset?: string | number | undefined;
  /** Case-insensitive substring of the service, the method or the route. */
  search?: string | undefined;
}

function intParam(name: string, v: string | number | undefined, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new QueryError(400, `invalid ${name} ${JSON.stringify(String(v))}; expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * GET /api/v1/routes: one row per route (per dimension combination) with at least one span in the window,
 * matching `service` and `search`, sorted by `sort` (descending; `route` ascending by service, route, method),
 * `limit` rows from `offset`; `total` counts the matching rows.
 */
export function queryRoutes(store: RouteStore, q: RoutesQuery = {}, nowMs = store.clock.now()): RoutesResponse {
  const win = resolveWindow(store, q.window, nowMs);
  const sort = (q.sort ?? 'p99') as SortKey;
  if (!(SORT_KEYS as readonly string[]).includes(sort)) {
    throw new QueryError(400, `unknown sort key ${JSON.stringify(q.sort)}; expected one of ${SORT_KEYS.join(', ')}`);
  }
  const limit = intParam('limit', q.limit, 1, MAX_LIMIT, DEFAULT_LIMIT);
  const offset = intParam('offset', q.offset, 0, Number.MAX_SAFE_INTEGER, 0);
  if (q.service === '') throw new QueryError(400, 'invalid service ""; expected a service name');
  const needle = q.search === undefined || q.search === '' ? undefined : q.search.toLowerCase();
  // Each matching route is ordered by its sort value alone; only the page returned is summarised.
  const rows: { entry: RouteEntry; value: number }[] = [];
  for (const e of store.entries()) {
    if (q.service !== undefined && e.service !== q.service) continue;
    if (needle !== undefined && !`${e.service}\u0000${e.method} ${e.route}`.toLowerCase().includes(needle)) continue;
    if (!store.hasData([e], win)) continue;
    rows.push({ entry: e, value: sortValue(store, e, win, sort) });
  }
  rows.sort((a, b) => b.value - a.value || byName(a.entry, b.entry));
  return {
    ...header(store, win, nowMs),
    windows: store.windowsMs.map(formatDuration),
    relative_error: RELATIVE_ERROR,
    total: rows.length,
    offset,
    routes: rows.slice(offset, offset + limit).map((r) => routeJson(store.summarize([r.entry], win))),
  };
}

/** GET /api/v1/services: per service its route counts and totals over the window, by service name. */
export function queryServices(store: RouteStore, q: { window?: string | undefined } = {}, nowMs = store.clock.now()): ServicesResponse {
  const win = resolveWindow(store, q.window, nowMs);
  const byService = new Map<string, RouteEntry[]>();
  for (const e of store.entries()) {
    let list = byService.get(e.service);
    if (list === undefined) byService.set(e.service, (list = []));
    list.push(e);
  }
  const services: ServiceJson[] = [];
  for (const info of store.services()) {
    const entries = byService.get(info.service) ?? [];
    const active = entries.filter((e) => store.hasData([e], win));
    const agg = store.aggregate(active, win);
    const count = agg.sketch.count;
    services.push({
      service: info.service,
      routes: info.routes,
      active_routes: active.length,
      count,
      rate_per_s: num0(count / (win.coveredMs / 1000)),
      error_count: agg.errors,
      error_rate: num0(count === 0 ? 0 : agg.errors / count),
      overflow_spans: info.overflowSpans,
    });
  }
  services.sort((a, b) => cmp(a.service, b.service));
  return { ...header(store, win, nowMs), services };
}

/**
 * GET /api/v1/routes/{service}/{method}/{route…}: one route over the window with a series per slot and the
 * slowest exemplars. Entries that differ only in dimension values are merged unless `dimensions` narrows them.
 * Method `-` stands for the empty method of non-HTTP routes.
 */
export function queryRoute(
  store: RouteStore,
  key: { service: string; method: string; route: string; dimensions?: Record<string, string> | undefined },
  q: { window?: string | undefined } = {},
  nowMs = store.clock.now(),
): RouteDetailResponse {
  const win = resolveWindow(store, q.window, nowMs);
  const method = key.method === '-' ? '' : key.method;
  const entries = store.find(key.service, method, key.route, key.dimensions);
  if (entries.length === 0) {
    throw new QueryError(
      404,
      `route not found: service ${JSON.stringify(key.service)}, method ${JSON.stringify(key.method)}, route ${JSON.stringify(key.route)}`,
    );
  }
  const route = routeJson(store.summarize(entries, win));
  const series = store.series(entries, win, nowMs).map(slotJson);
  const exemplars = store.exemplars(entries, win, 10).map((x): ExemplarJson => ({
    trace_id: x.traceId,
    span_id: x.spanId,
    value_ms: num0(x.valueMs),
    time: new Date(x.timeMs).toISOString(),
  }));
  const sketch = store.windowSketch(entries, win).toOtlp();
  const distribution: DistributionJson = {
    scale: sketch.scale,
    zero_count: sketch.zeroCount,
    offset: sketch.positive.offset,
    counts: sketch.positive.bucketCounts,
  };
  return {
    ...header(store, win, nowMs),
    relative_error: RELATIVE_ERROR,
    slot_s: win.slotMs / 1000,
    entries: entries.length,
    route,
    series,
    exemplars,
    distribution,
  };
}

/** GET /api/v1/services/{service}: one service's totals and percentiles over the window, with a series of all its routes merged. */
export function queryService(store: RouteStore, service: string, q: { window?: string | undefined } = {}, nowMs = store.clock.now()): ServiceDetailResponse {
  const win = resolveWindow(store, q.window, nowMs);
  const info = store.services().find((s) => s.service === service);
  if (info === undefined) throw new QueryError(404, `service not found: ${JSON.stringify(service)}`);
  const entries = [...store.entries()].filter((e) => e.service === service);
  const active = entries.filter((e) => store.hasData([e], win));
  const first = entries[0];
  const series = first === undefined ? [] : store.series(entries, win, nowMs).map(slotJson);
  const s = first === undefined ? undefined : store.summarize(entries, win);
  const count = s?.count ?? 0;
  const errors = s?.errorCount ?? 0;
  return {
    ...header(store, win, nowMs),
    relative_error: RELATIVE_ERROR,
    slot_s: win.slotMs / 1000,
    service: {
      service,
      routes: info.routes,
      active_routes: active.length,
      count,
      rate_per_s: num0(count / (win.coveredMs / 1000)),
      error_count: errors,
      error_rate: num0(count === 0 ? 0 : errors / count),
      overflow_spans: info.overflowSpans,
      p50_ms: num(s?.p50 ?? NaN),
      p95_ms: num(s?.p95 ?? NaN),
      p99_ms: num(s?.p99 ?? NaN),
      p999_ms: num(s?.p999 ?? NaN),
      max_ms: num(s?.max ?? NaN),
    },
    series,
  };
}

/** GET /api/v1/coverage: per service, spans skipped by kind and counted spans by route source, since start. */
export function queryCoverage(store: RouteStore, nowMs = store.clock.now()): CoverageResponse {
  const { sinceMs, services } = store.coverage();
  const routes = new Map<string, { routes: number; unmatched: number }>();
  for (const e of store.entries()) {
    let r = routes.get(e.service);
    if (r === undefined) routes.set(e.service, (r = { routes: 0, unmatched: 0 }));
    r.routes++;
    if (e.route === UNMATCHED_ROUTE) r.unmatched++;
  }
  const totals = { spans_seen: 0, spans_counted: 0, spans_skipped: 0, overflow_spans: 0 };
  const out: CoverageResponse['services'] = [];
  for (const [service, c] of services) {
    const skipped_spans: Record<string, number> = {};
    c.skipped.forEach((n, i) => {
      if (n > 0) skipped_spans[SKIPPED_NAMES[i] ?? `kind_${i}`] = n;
    });
    const route_sources: Record<string, number> = {};
    let counted = 0;
    c.sources.forEach((n, i) => {
      counted += n;
      if (n > 0) route_sources[ROUTE_SOURCES[i] as string] = n;
    });
    const skipped = c.skipped.reduce((a, b) => a + b, 0);
    totals.spans_counted += counted;
    totals.spans_skipped += skipped;
    totals.overflow_spans += c.overflow;
    const r = routes.get(service);
    out.push({
      service,
      counted_spans: counted,
      skipped_spans,
      route_sources,
      overflow_spans: c.overflow,
      routes: r?.routes ?? 0,
      unmatched_routes: r?.unmatched ?? 0,
    });
  }
  totals.spans_seen = totals.spans_counted + totals.spans_skipped;
  out.sort((a, b) => cmp(a.service, b.service));
  const kinds = SKIPPED_NAMES.slice(0, SKIPPED_ASGI_EVENT).filter((_, k) => (store.kindMask & (1 << k)) !== 0);
  return { generated_at: new Date(nowMs).toISOString(), since: new Date(sinceMs).toISOString(), span_kinds: kinds, totals, services: out };
}

function slotJson(s: ReturnType<RouteStore['series']>[number]): SlotJson {
  return {
    start: new Date(s.startMs).toISOString(),
    count: s.count,
    rate_per_s: num0(s.ratePerS),
    error_count: s.errorCount,
    status_classes: statusClassesJson(s.statusClasses),
    p50_ms: num(s.p50),
    p95_ms: num(s.p95),
    p99_ms: num(s.p99),
    max_ms: num(s.max),
  };
}

/** URL path of a route's detail resource (inverse of the parsing in {@link handleQuery}). */
export function routePath(service: string, method: string, route: string): string {
  return `/api/v1/routes/${encodeURIComponent(service)}/${encodeURIComponent(method === '' ? '-' : method)}/${route
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`;
}

const ROUTES_PREFIX = '/api/v1/routes/';
const SERVICES_PREFIX = '/api/v1/services/';

/** Dispatches one GET request. Never throws: errors become `{status: 400 | 404, body: {error}}`. */
export function handleQuery(store: RouteStore, pathname: string, searchParams: URLSearchParams): { status: number; body: unknown } {
  try {
    const now = store.clock.now();
    if (pathname === '/api/v1/routes' || pathname === '/api/v1/routes/') {
      const p = readParams(searchParams, ['window', 'service', 'sort', 'limit', 'offset', 'search']);
      const q: RoutesQuery = {
        window: p.get('window'),
        service: p.get('service'),
        sort: p.get('sort'),
        limit: p.get('limit'),
        offset: p.get('offset'),
        search: p.get('search'),
      };
      return { status: 200, body: queryRoutes(store, q, now) };
    }
    if (pathname === '/api/v1/services' || pathname === '/api/v1/services/') {
      const p = readParams(searchParams, ['window']);
      return { status: 200, body: queryServices(store, { window: p.get('window') }, now) };
    }
    if (pathname.startsWith(SERVICES_PREFIX) && !pathname.slice(SERVICES_PREFIX.length).includes('/')) {
      const p = readParams(searchParams, ['window']);
      return { status: 200, body: queryService(store, decode(pathname.slice(SERVICES_PREFIX.length)), { window: p.get('window') }, now) };
    }
    if (pathname === '/api/v1/coverage') {
      readParams(searchParams, []);
      return { status: 200, body: queryCoverage(store, now) };
    }
    if (pathname === '/api/v1/openapi.json') {
      readParams(searchParams, []);
      return { status: 200, body: openapiDocument() };
    }
    if (pathname.startsWith(ROUTES_PREFIX)) {
      const rest = pathname.slice(ROUTES_PREFIX.length);
      const i = rest.indexOf('/');
      const j = i < 0 ? -1 : rest.indexOf('/', i + 1);
      if (i <= 0 || j < 0 || j === i + 1 || j === rest.length - 1) {
        throw new QueryError(400, 'invalid route path; expected /api/v1/routes/{service}/{method}/{route…} (method "-" for none)');
      }
      const service = decode(rest.slice(0, i));
      const method = decode(rest.slice(i + 1, j));
      const route = decode(rest.slice(j + 1));
      const p = readParams(searchParams, ['window'], 'dimension.');
      let dimensions: Record<string, string> | undefined;
      for (const [k, v] of p) {
        if (!k.startsWith('dimension.')) continue;
        (dimensions ??= {})[k.slice('dimension.'.length)] = v;
      }
      return { status: 200, body: queryRoute(store, { service, method, route, dimensions }, { window: p.get('window') }, now) };
    }
    return { status: 404, body: { error: `not found: ${pathname}` } };
  } catch (e) {
    if (e instanceof QueryError) return { status: e.status, body: { error: e.message } };
    if (e instanceof RangeError) return { status: 400, body: { error: e.message } };
    throw e;
  }
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new QueryError(400, `invalid percent-encoding in ${JSON.stringify(s)}`);
  }
}

const nullableNumber = { type: 'number', nullable: true } as const;

/** OpenAPI 3.0 description of the query API. */
export function openapiDocument(): Record<string, unknown> {
  const windowParam = {
    name: 'window',
    in: 'query',
    required: false,
    description: 'One of the configured windows (default 5m, or the smallest configured), e.g. "1m", "5m", "15m", "1h".',
    schema: { type: 'string', example: '5m' },
  };
  const error = {
    description: 'Bad parameter (400) or unknown route (404).',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
  const header = {
    window: { type: 'string', example: '5m' },
    generated_at: { type: 'string', format: 'date-time' },
    covered_s: { type: 'number', description: 'Wall time the window covers: now − max(start of its oldest slot, collector start), at least 1 s.' },
  };
  const runtime = runtimeOpenapi(windowParam, error);
  return {
    openapi: '3.0.3',
    info: {
      title: 'routelens route query API',
      version: '1',
      description: 'Per-route latency, rate and errors of server spans over sliding windows. Durations in milliseconds.',
    },
    paths: {
      '/api/v1/routes': {
        get: {
          summary: 'Routes with spans in the window',
          parameters: [
            windowParam,
            { name: 'service', in: 'query', required: false, schema: { type: 'string' }, description: 'Only this service.' },
            {
              name: 'sort',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: [...SORT_KEYS], default: 'p99' },
              description: 'Descending, except `route` (ascending by service, route, method). `impact` is rate_per_s × p95_ms.',
            },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT } },
            {
              name: 'offset',
              in: 'query',
              required: false,
              schema: { type: 'integer', minimum: 0, default: 0 },
              description: 'Rows to skip (paging; see `total`).',
            },
            {
              name: 'search',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'Case-insensitive substring of the service or of "METHOD route".',
            },
          ],
          responses: {
            200: { description: 'Routes', content: { 'application/json': { schema: { $ref: '#/components/schemas/RoutesResponse' } } } },
            400: error,
          },
        },
      },
      '/api/v1/routes/{service}/{method}/{route}': {
        get: {
          summary: 'One route with a series per slot and its slowest exemplars',
          description:
            'The route is everything after the method segment, verbatim (it may contain slashes; a route starting with "/" gives a double slash). Percent-encode each segment. Method "-" means none (non-HTTP routes, `__other__`). Entries differing only in dimension values are merged unless narrowed with dimension.NAME=VALUE parameters.',
          parameters: [
            { name: 'service', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'method', in: 'path', required: true, schema: { type: 'string', example: 'GET' } },
            { name: 'route', in: 'path', required: true, schema: { type: 'string', example: '/users/{id}' } },
            windowParam,
          ],
          responses: {
            200: { description: 'The route', content: { 'application/json': { schema: { $ref: '#/components/schemas/RouteDetailResponse' } } } },
            400: error,
            404: error,
          },
        },
      },
      '/api/v1/services': {
        get: {
          summary: 'Services with route counts and totals over the window',
          parameters: [windowParam],
          responses: {
            200: { description: 'Services', content: { 'application/json': { schema: { $ref: '#/components/schemas/ServicesResponse' } } } },
            400: error,
          },
        },
      },
      '/api/v1/services/{service}': {
        get: {
          summary: 'One service: all its routes merged, with percentiles and a series per slot',
          parameters: [{ name: 'service', in: 'path', required: true, schema: { type: 'string' } }, windowParam],
          responses: {
            200: { description: 'The service', content: { 'application/json': { schema: { $ref: '#/components/schemas/ServiceDetailResponse' } } } },
            400: error,
            404: error,
          },
        },
      },
      ...runtime.paths,
      '/api/v1/why': {
        get: {
          summary: 'Why a route is slow: where its time goes, statements, N+1, slow vs fast requests, versions (src/analysis/README.md)',
          parameters: [
            { name: 'service', in: 'query', required: true, schema: { type: 'string' } },
            { name: 'route', in: 'query', required: true, schema: { type: 'string', example: '/orders/{id}' } },
            {
              name: 'method',
              in: 'query',
              required: false,
              description: 'HTTP method; may be left out when the route has only one ("-" for none).',
              schema: { type: 'string', example: 'GET' },
            },
            windowParam,
          ],
          responses: {
            200: { description: 'The answer', content: { 'application/json': { schema: { $ref: '#/components/schemas/Why' } } } },
            400: error,
            404: error,
          },
        },
      },
      '/api/v1/coverage': {
        get: {
          summary: 'Why a route may be missing: per service since start, spans skipped by kind and counted spans by the source of their route name',
          responses: { 200: { description: 'Coverage', content: { 'application/json': { schema: { $ref: '#/components/schemas/CoverageResponse' } } } } },
        },
      },
    },
    components: {
      schemas: {
        ...runtime.schemas,
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
        Why: {
          type: 'object',
          required: [
            'service',
            'method',
            'route',
            'window',
            'count',
            'p50_ms',
            'p95_ms',
            'p99_ms',
            'breakdown',
            'statements',
            'n_plus_one',
            'slow_vs_fast',
            'versions',
            'summary',
          ],
          properties: {
            service: { type: 'string' },
            method: { type: 'string' },
            route: { type: 'string' },
            window: { type: 'string' },
            count: { type: 'integer' },
            p50_ms: { type: 'number', nullable: true },
            p95_ms: { type: 'number', nullable: true },
            p99_ms: { type: 'number', nullable: true },
            analysed: { type: 'integer' },
            error_count: { type: 'integer' },
            breakdown: { type: 'array', items: { type: 'object', required: ['category', 'target', 'share', 'p50_ms', 'p95_ms', 'p99_ms'] } },
            statements: {
              type: 'array',
              items: { type: 'object', required: ['fingerprint', 'db_system', 'calls_per_request', 'p50_ms', 'p95_ms', 'p99_ms', 'share', 'example_trace_id'] },
            },
            outbound: { type: 'array', items: { type: 'object' } },
            n_plus_one: {
              type: 'array',
              items: { type: 'object', required: ['kind', 'fingerprint', 'repeats', 'requests_share', 'cost_ms', 'example_trace_id', 'example_span_ids'] },
            },
            slow_vs_fast: { type: 'array', items: { type: 'object', required: ['kind', 'p_value'] } },
            versions: { type: 'array', items: { type: 'object', required: ['version', 'count', 'vs_previous'] } },
            quality: { type: 'object' },
            summary: { type: 'string' },
          },
        },
        Route: {
          type: 'object',
          required: ['service', 'method', 'route', 'route_source', 'count', 'rate_per_s', 'error_rate', 'error_count', 'status_classes', 'dimensions'],
          properties: {
            service: { type: 'string' },
            method: { type: 'string', description: 'HTTP method; empty for non-HTTP routes.' },
            route: { type: 'string', example: '/users/{id}' },
            route_source: {
              type: 'string',
              enum: ['http.route', 'span_name', 'url.path', 'http.target', 'url.full', 'http.url', 'span_name_fallback', 'unmatched', 'overflow'],
            },
            count: { type: 'integer' },
            rate_per_s: { type: 'number', description: 'count / covered_s' },
            error_rate: { type: 'number', description: 'error_count / count (0 when count is 0)' },
            error_count: { type: 'integer', description: 'Span status ERROR or HTTP status >= 500.' },
            status_classes: { type: 'object', additionalProperties: { type: 'integer' }, example: { '2xx': 120, '5xx': 2 } },
            p50_ms: nullableNumber,
            p90_ms: nullableNumber,
            p95_ms: nullableNumber,
            p99_ms: nullableNumber,
            p999_ms: nullableNumber,
            min_ms: nullableNumber,
            max_ms: nullableNumber,
            mean_ms: nullableNumber,
            dimensions: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        RoutesResponse: {
          type: 'object',
          properties: {
            ...header,
            windows: { type: 'array', items: { type: 'string' }, description: 'The configured windows.' },
            relative_error: { type: 'number', description: 'Largest relative error of every percentile (the sketch bound, 0.0054).' },
            total: { type: 'integer', description: 'Routes matching service and search, before offset and limit.' },
            offset: { type: 'integer' },
            routes: { type: 'array', items: { $ref: '#/components/schemas/Route' } },
          },
        },
        Service: {
          type: 'object',
          properties: {
            service: { type: 'string' },
            routes: { type: 'integer' },
            active_routes: { type: 'integer' },
            count: { type: 'integer' },
            rate_per_s: { type: 'number' },
            error_count: { type: 'integer' },
            error_rate: { type: 'number' },
            overflow_spans: { type: 'integer' },
          },
        },
        ServicesResponse: {
          type: 'object',
          properties: { ...header, services: { type: 'array', items: { $ref: '#/components/schemas/Service' } } },
        },
        Slot: {
          type: 'object',
          properties: {
            start: { type: 'string', format: 'date-time' },
            count: { type: 'integer' },
            rate_per_s: { type: 'number' },
            error_count: { type: 'integer' },
            status_classes: { type: 'object', additionalProperties: { type: 'integer' } },
            p50_ms: nullableNumber,
            p95_ms: nullableNumber,
            p99_ms: nullableNumber,
            max_ms: nullableNumber,
          },
        },
        Distribution: {
          type: 'object',
          description: 'The window sketch: counts[k] spans in bucket offset+k, which covers (2^((offset+k)/2^scale), 2^((offset+k+1)/2^scale)] ms.',
          properties: {
            scale: { type: 'integer' },
            zero_count: { type: 'integer' },
            offset: { type: 'integer' },
            counts: { type: 'array', items: { type: 'integer' } },
          },
        },
        ServiceDetailResponse: {
          type: 'object',
          properties: {
            ...header,
            relative_error: { type: 'number' },
            slot_s: { type: 'number' },
            service: {
              allOf: [
                { $ref: '#/components/schemas/Service' },
                {
                  type: 'object',
                  properties: { p50_ms: nullableNumber, p95_ms: nullableNumber, p99_ms: nullableNumber, p999_ms: nullableNumber, max_ms: nullableNumber },
                },
              ],
            },
            series: { type: 'array', items: { $ref: '#/components/schemas/Slot' } },
          },
        },
        CoverageResponse: {
          type: 'object',
          properties: {
            generated_at: { type: 'string', format: 'date-time' },
            since: { type: 'string', format: 'date-time' },
            span_kinds: { type: 'array', items: { type: 'string' } },
            totals: {
              type: 'object',
              properties: {
                spans_seen: { type: 'integer' },
                spans_counted: { type: 'integer' },
                spans_skipped: { type: 'integer' },
                overflow_spans: { type: 'integer' },
              },
            },
            services: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  service: { type: 'string' },
                  counted_spans: { type: 'integer' },
                  skipped_spans: { type: 'object', additionalProperties: { type: 'integer' }, example: { SPAN_KIND_CLIENT: 40 } },
                  route_sources: { type: 'object', additionalProperties: { type: 'integer' }, example: { 'http.route': 900, 'url.path': 12 } },
                  overflow_spans: { type: 'integer' },
                  routes: { type: 'integer' },
                  unmatched_routes: { type: 'integer' },
                },
              },
            },
          },
        },
        Exemplar: {
          type: 'object',
          properties: {
            trace_id: { type: 'string' },
            span_id: { type: 'string' },
            value_ms: { type: 'number' },
            time: { type: 'string', format: 'date-time' },
          },
        },
        RouteDetailResponse: {
          type: 'object',
          properties: {
            ...header,
            slot_s: { type: 'number' },
            entries: { type: 'integer' },
            route: { $ref: '#/components/schemas/Route' },
            relative_error: { type: 'number' },
            series: { type: 'array', items: { $ref: '#/components/schemas/Slot' } },
            exemplars: { type: 'array', items: { $ref: '#/components/schemas/Exemplar' } },
            distribution: { $ref: '#/components/schemas/Distribution' },
          },
        },
      },
    },
  };
}
