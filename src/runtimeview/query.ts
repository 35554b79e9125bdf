/**
 * The runtime view's JSON API, as pure functions over a RuntimeState:
 *
 *   GET /api/v1/runtime?window=5m                     services with runtime metrics, their instance counts
 *   GET /api/v1/services/{service}/runtime?window=5m  each instance's runtime, and per route the unsampled
 *                                                      request and 5xx rates beside the span-based figures
 *
 * Span-based figures come from whoever serves the routes (the routelatency connector) through `SpanRoutes`, so
 * this library knows nothing of how spans are kept.
 */
import { instanceFigures, type InstanceFigures, type RouteMetricFigures } from './compute';
import type { RuntimeState } from './state';

/** One route as the span-based analysis sees it over the same window. */
export interface SpanRouteFigures {
  method: string;
  route: string;
  count: number;
  rate_per_s: number;
  error_rate: number;
  p95_ms: number | null;
  p99_ms: number | null;
}

/** The span-based routes of a service over a window; undefined when spans never named that service. */
export type SpanRoutes = (service: string, windowMs: number, nowMs: number) => SpanRouteFigures[] | undefined;

export interface RuntimeInstanceJson {
  instance: string;
  instance_source: string;
  namespace: string;
  k8s: Record<string, string>;
  host_name: string | null;
  cpu_cores: number | null;
  memory_rss_bytes: number | null;
  memory_rss_slope_bytes_per_min: number | null;
  gc_collections_per_min: number | null;
  gc_gen2_per_min: number | null;
  threads: number | null;
  open_fds: number | null;
  last_seen: string;
  stale: boolean;
  /** GC collections per minute by generation ("0", "1", "2"). */
  gc_collections_per_min_by_generation: Record<string, number>;
  memory_virtual_bytes: number | null;
  involuntary_context_switches_per_s: number | null;
  /** Points of the RSS series the slope rests on. */
  memory_rss_slope_points: number;
  /** Several processes write this instance's streams (pre-fork workers sharing one resource): levels are null, rates are their total. */
  multi_writer: boolean;
  writers: number;
  /** Restarts seen in the window (a new start time after the previous one's last point). */
  resets: number;
  /** Median time between exports (null until two were seen; the Python SDK's default is 60 s). */
  interval_s: number | null;
  /** Seconds of the window covered by this instance's points. */
  covered_s: number;
  /** Exports (CPU points) inside the window. */
  points: number;
  /**
   * Other instances of the service that reported the very same RSS and CPU seconds at SAME_PROCESS_EXPORTS or more
   * exports in the window: they report one process. Under a pre-fork server the system-metrics instrumentation
   * reports the process that loaded it (the arbiter) from every worker.
   */
  same_process_as: string[];
  /** Time of the newest point (the SDK's clock). */
  last_point_time: string | null;
  sources: { cpu: string | null; memory: string | null; threads: string | null };
  resource: Record<string, string>;
  routes: RouteMetricFigures[];
}

export interface RuntimeRouteJson {
  method: string;
  route: string;
  /** From the HTTP server duration histograms of every instance: every request, sampled or not. */
  metric: Omit<RouteMetricFigures, 'method' | 'route'> | null;
  /** From server spans (after any sampling upstream). */
  spans: Omit<SpanRouteFigures, 'method' | 'route'> | null;
  /** Spans counted / requests counted by the metrics, carried on to now at each instance's rate (null unless both are known). */
  span_to_metric_ratio: number | null;
  /** The ratio is outside [1 − DIVERGENCE, 1 / (1 − DIVERGENCE)] with enough requests: a sign of sampling upstream (null: too few to tell). */
  diverges: boolean | null;
}

export interface ServiceRuntimeResponse {
  service: string;
  window: string;
  generated_at: string;
  instances: RuntimeInstanceJson[];
  routes: RuntimeRouteJson[];
}

export interface RuntimeServicesResponse {
  window: string;
  generated_at: string;
  services: { service: string; instances: number; stale_instances: number; multi_writer_instances: number }[];
}

/** Span and metric rates diverge when their ratio is outside [1 − DIVERGENCE, 1 / (1 − DIVERGENCE)]. */
export const DIVERGENCE = 0.2;
/** Fewer metric-counted requests than this in the window are not enough to call a divergence. */
export const MIN_REQUESTS_FOR_DIVERGENCE = 20;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseWindow(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  return m === null ? undefined : Number(m[1]) * (UNITS[m[2] as string] as number);
}

export function formatWindow(ms: number): string {
  for (const [u, f] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % f === 0) return `${ms / f}${u}`;
  }
  return `${ms}ms`;
}

function num(x: number | null): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  return x === 0 ? 0 : Number(x.toPrecision(6));
}

function instanceJson(f: InstanceFigures): RuntimeInstanceJson {
  const k8s: Record<string, string> = {};
  const resource: Record<string, string> = {};
  for (const [k, v] of Object.entries(f.inst.resource)) {
    if (k.startsWith('k8s.')) k8s[k] = v;
    else resource[k] = v;
  }
  return {
    instance: f.inst.instance,
    instance_source: f.inst.source,
    namespace: f.inst.namespace,
    k8s,
    host_name: f.inst.resource['host.name'] ?? null,
    cpu_cores: f.cpuCores,
    memory_rss_bytes: f.rssBytes,
    memory_rss_slope_bytes_per_min: f.rssSlopeBytesPerMin,
    gc_collections_per_min: f.gcPerMin,
    gc_gen2_per_min: f.gcGen2PerMin,
    threads: f.threads,
    open_fds: f.openFds,
    last_seen: new Date(f.inst.lastReceivedMs).toISOString(),
    stale: f.stale,
    gc_collections_per_min_by_generation: f.gcByGeneration,
    memory_virtual_bytes: f.vmsBytes,
    involuntary_context_switches_per_s: f.involuntaryCtxSwitchesPerS,
    memory_rss_slope_points: f.rssSlopePoints,
    multi_writer: f.multiWriter,
    writers: f.writers,
    resets: f.resets,
    interval_s: f.intervalMs === null ? null : num(f.intervalMs / 1000),
    covered_s: num(f.coveredMs / 1000) ?? 0,
    points: f.points,
    same_process_as: [],
    last_point_time: f.lastPointMs > 0 ? new Date(f.lastPointMs).toISOString() : null,
    sources: { cpu: f.cpuSource, memory: f.memorySource, threads: f.threadsSource },
    resource,
    routes: f.routes,
  };
}

/** Per route: the metric figures summed over instances beside the span figures. */
/**
 * Per route: the metric figures summed over instances beside the span figures. The two are compared as counts:
 * the spans counted in the window against the requests the histograms counted, each instance's carried on at its
 * own rate from its last export to now (the metrics lag by up to one export interval; an instance that started
 * inside the window had no requests before, so rates over different spans of time would not compare).
 */
function routesJson(instances: readonly InstanceFigures[], spans: readonly SpanRouteFigures[] | undefined, nowMs: number): RuntimeRouteJson[] {
  const byKey = new Map<string, RuntimeRouteJson>();
  const entry = (method: string, route: string): RuntimeRouteJson => {
    const key = JSON.stringify([method, route]);
    let r = byKey.get(key);
    if (r === undefined) byKey.set(key, (r = { method, route, metric: null, spans: null, span_to_metric_ratio: null, diverges: null }));
    return r;
  };
  const sums = new Map<
    RuntimeRouteJson,
    { requests: number; expected: number; rate: number | null; errors: number; errRate: number | null; sumMs: number; metric: string }
  >();
  for (const f of instances) {
    for (const r of f.routes) {
      const e = entry(r.method, r.route);
      let s = sums.get(e);
      if (s === undefined) sums.set(e, (s = { requests: 0, expected: 0, rate: 0, errors: 0, errRate: 0, sumMs: 0, metric: r.metric }));
      s.requests += r.requests;
      s.expected += r.requests + (r.rate_per_s ?? NaN) * (Math.max(0, nowMs - f.lastPointMs) / 1000);
      s.errors += r.errors_5xx;
      s.rate = s.rate === null || r.rate_per_s === null ? null : s.rate + r.rate_per_s;
      s.errRate = s.errRate === null || r.errors_5xx_per_s === null ? null : s.errRate + r.errors_5xx_per_s;
      s.sumMs += r.mean_ms === null ? NaN : r.mean_ms * r.requests;
    }
  }
  for (const [e, s] of sums) {
    e.metric = {
      requests: num(s.requests) ?? 0,
      rate_per_s: num(s.rate),
      errors_5xx: num(s.errors) ?? 0,
      errors_5xx_per_s: num(s.errRate),
      error_5xx_ratio: s.requests > 0 ? num(s.errors / s.requests) : null,
      mean_ms: s.requests > 0 ? num(s.sumMs / s.requests) : null,
      metric: s.metric,
    };
  }
  for (const sp of spans ?? []) {
    const { method, route, ...rest } = sp;
    entry(method, route).spans = rest;
  }
  for (const [e, s] of sums) {
    if (e.spans === null || !(s.expected > 0)) continue;
    const ratio = e.spans.count / s.expected;
    e.span_to_metric_ratio = num(ratio);
    if (s.requests >= MIN_REQUESTS_FOR_DIVERGENCE) e.diverges = ratio < 1 - DIVERGENCE || ratio > 1 / (1 - DIVERGENCE);
  }
  return [...byKey.values()].sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
}

export interface RuntimeQueryOptions {
  /** The windows a query may ask for (ms), as the routes' windows. */
  windowsMs: readonly number[];
  spanRoutes?: SpanRoutes | undefined;
}

class BadRequest extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

function resolveWindow(text: string | undefined, windowsMs: readonly number[]): number {
  const expected = windowsMs.map(formatWindow).join(', ');
  if (text === undefined) return windowsMs.includes(300_000) ? 300_000 : Math.min(...windowsMs);
  const ms = parseWindow(text);
  if (ms === undefined || !windowsMs.includes(ms)) throw new BadRequest(400, `unknown window ${JSON.stringify(text)}; expected one of ${expected}`);
  return ms;
}

export function queryServiceRuntime(
  state: RuntimeState,
  service: string,
  windowMs: number,
  nowMs: number,
  spanRoutes?: SpanRoutes,
): ServiceRuntimeResponse | undefined {
  const fromMs = nowMs - windowMs;
  const figures: InstanceFigures[] = [];
  let known = false;
  for (const inst of state.instances.values()) {
    if (inst.service !== service) continue;
    known = true;
    const f = instanceFigures(inst, fromMs, nowMs);
    if (f !== undefined) figures.push(f);
  }
  const spans = spanRoutes?.(service, windowMs, nowMs);
  if (!known && spans === undefined) return undefined;
  figures.sort((a, b) => (a.inst.key < b.inst.key ? -1 : a.inst.key > b.inst.key ? 1 : 0));
  const instances = figures.map(instanceJson);
  markSameProcess(figures, instances, fromMs);
  return {
    service,
    window: formatWindow(windowMs),
    generated_at: new Date(nowMs).toISOString(),
    instances,
    routes: routesJson(figures, spans, nowMs),
  };
}

/** Exports at which two instances must report the same process state to be taken for one process. */
export const SAME_PROCESS_EXPORTS = 2;
/** Instances of one service compared pairwise at most (beyond, no instance is marked). */
const SAME_PROCESS_MAX_INSTANCES = 200;

/**
 * Per export of an instance inside the window, its process state as one string: RSS to the byte and CPU seconds
 * by type (10 ms resolution). Two processes hardly ever agree on all of them at once; one process seen through
 * two instances does at every export between two of its changes.
 */
function processStates(f: InstanceFigures, fromMs: number): string[] {
  const byTime = new Map<number, string[]>();
  for (const st of f.inst.streams.values()) {
    if (st.role !== 'rss' && st.role !== 'cpu') continue;
    const label = st.role === 'rss' ? 'rss' : `cpu.${st.attrs['type'] ?? st.attrs['cpu.mode'] ?? ''}`;
    for (let i = 0; i < st.t.length; i++) {
      const t = st.t[i] as number;
      if (t < fromMs) continue;
      let parts = byTime.get(t);
      if (parts === undefined) byTime.set(t, (parts = []));
      parts.push(`${label}=${st.v[i] as number}`);
    }
  }
  const out: string[] = [];
  for (const parts of byTime.values()) if (parts.some((p) => p.startsWith('rss=')) && parts.some((p) => p.startsWith('cpu.'))) out.push(parts.sort().join(' '));
  return out;
}

/** Sets `same_process_as` on instances that report one process (see RuntimeInstanceJson). */
function markSameProcess(figures: readonly InstanceFigures[], out: RuntimeInstanceJson[], fromMs: number): void {
  if (figures.length < 2 || figures.length > SAME_PROCESS_MAX_INSTANCES) return;
  const states = figures.map((f) => processStates(f, fromMs));
  const sets = states.map((s) => new Set(s));
  for (let a = 0; a < figures.length; a++) {
    for (let b = a + 1; b < figures.length; b++) {
      const other = sets[b] as Set<string>;
      let shared = 0;
      for (const s of states[a] as string[]) if (other.has(s)) shared++;
      if (shared < SAME_PROCESS_EXPORTS) continue;
      (out[a] as RuntimeInstanceJson).same_process_as.push((out[b] as RuntimeInstanceJson).instance);
      (out[b] as RuntimeInstanceJson).same_process_as.push((out[a] as RuntimeInstanceJson).instance);
    }
  }
}

export function queryRuntimeServices(state: RuntimeState, windowMs: number, nowMs: number): RuntimeServicesResponse {
  const fromMs = nowMs - windowMs;
  const byService = new Map<string, RuntimeServicesResponse['services'][number]>();
  for (const inst of state.instances.values()) {
    const f = instanceFigures(inst, fromMs, nowMs);
    if (f === undefined) continue;
    let s = byService.get(inst.service);
    if (s === undefined) byService.set(inst.service, (s = { service: inst.service, instances: 0, stale_instances: 0, multi_writer_instances: 0 }));
    s.instances++;
    if (f.stale) s.stale_instances++;
    if (f.multiWriter) s.multi_writer_instances++;
  }
  const services = [...byService.values()].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  return { window: formatWindow(windowMs), generated_at: new Date(nowMs).toISOString(), services };
}

const SERVICES_PREFIX = '/api/v1/services/';
const RUNTIME_SUFFIX = '/runtime';

/** Is this path one the runtime view answers? */
export function isRuntimePath(pathname: string): boolean {
  return (
    pathname === '/api/v1/runtime' ||
    (pathname.startsWith(SERVICES_PREFIX) && pathname.endsWith(RUNTIME_SUFFIX) && pathname.length > SERVICES_PREFIX.length + RUNTIME_SUFFIX.length)
  );
}

/** Answers a runtime path (see isRuntimePath). Never throws on bad input: 400 / 404 with `{error}`. */
export function handleRuntimeQuery(
  state: RuntimeState,
  pathname: string,
  params: URLSearchParams,
  nowMs: number,
  o: RuntimeQueryOptions,
): { status: number; body: unknown } {
  try {
    for (const k of params.keys()) if (k !== 'window') throw new BadRequest(400, `unknown parameter ${JSON.stringify(k)}; expected window`);
    if (params.getAll('window').length > 1) throw new BadRequest(400, 'parameter "window" given more than once');
    const windowMs = resolveWindow(params.get('window') ?? undefined, o.windowsMs);
    if (pathname === '/api/v1/runtime') return { status: 200, body: queryRuntimeServices(state, windowMs, nowMs) };
    let service: string;
    try {
      service = decodeURIComponent(pathname.slice(SERVICES_PREFIX.length, pathname.length - RUNTIME_SUFFIX.length));
    } catch {
      throw new BadRequest(400, `invalid percent-encoding in ${JSON.stringify(pathname)}`);
    }
    const body = queryServiceRuntime(state, service, windowMs, nowMs, o.spanRoutes);
    if (body === undefined) throw new BadRequest(404, `service not found: ${JSON.stringify(service)} (no runtime metrics and no spans)`);
    return { status: 200, body };
  } catch (e) {
    if (e instanceof BadRequest) return { status: e.status, body: { error: e.message } };
    throw e;
  }
}

/** OpenAPI 3.0 paths and schemas of the runtime API, for the document of whoever serves it. */
export function runtimeOpenapi(
  windowParam: Record<string, unknown>,
  error: Record<string, unknown>,
): { paths: Record<string, unknown>; schemas: Record<string, unknown> } {
  const nnum = { type: 'number', nullable: true };
  const route = {
    type: 'object',
    properties: {
      method: { type: 'string' },
      route: { type: 'string' },
      metric: {
        type: 'object',
        nullable: true,
        description: 'From the HTTP server duration histograms: every request, sampled or not.',
        properties: {
          requests: { type: 'number' },
          rate_per_s: nnum,
          errors_5xx: { type: 'number' },
          errors_5xx_per_s: nnum,
          error_5xx_ratio: nnum,
          mean_ms: nnum,
          metric: { type: 'string', enum: ['http.server.duration', 'http.server.request.duration'] },
        },
      },
      spans: {
        type: 'object',
        nullable: true,
        description: 'From server spans over the same window.',
        properties: { count: { type: 'integer' }, rate_per_s: { type: 'number' }, error_rate: { type: 'number' }, p95_ms: nnum, p99_ms: nnum },
      },
      span_to_metric_ratio: nnum,
      diverges: {
        type: 'boolean',
        nullable: true,
        description: `Span rate outside ${1 - DIVERGENCE}–${Number((1 / (1 - DIVERGENCE)).toFixed(2))}× the metric rate with at least ${MIN_REQUESTS_FOR_DIVERGENCE} requests: a sign of sampling upstream.`,
      },
    },
  };
  const instance = {
    type: 'object',
    required: [
      'instance',
      'k8s',
      'cpu_cores',
      'memory_rss_bytes',
      'memory_rss_slope_bytes_per_min',
      'gc_collections_per_min',
      'gc_gen2_per_min',
      'threads',
      'open_fds',
      'last_seen',
      'stale',
    ],
    properties: {
      instance: { type: 'string', description: 'service.instance.id, else k8s.pod.uid, k8s.pod.name, host.name (see instance_source).' },
      instance_source: { type: 'string', enum: ['service.instance.id', 'k8s.pod.uid', 'k8s.pod.name', 'host.name', 'none'] },
      namespace: { type: 'string', description: 'service.namespace' },
      k8s: { type: 'object', additionalProperties: { type: 'string' } },
      host_name: { type: 'string', nullable: true },
      cpu_cores: { ...nnum, description: 'CPU seconds per second from process.cpu.time (null: fewer than two exports, or writers that cannot be told apart).' },
      memory_rss_bytes: { ...nnum, description: 'Last process.memory.usage (null under several writers).' },
      memory_rss_slope_bytes_per_min: { ...nnum, description: 'Least-squares slope of RSS over the window (a leak hint).' },
      gc_collections_per_min: { ...nnum, description: 'cpython.gc.collections of all generations per minute.' },
      gc_gen2_per_min: nnum,
      gc_collections_per_min_by_generation: { type: 'object', additionalProperties: { type: 'number' } },
      threads: nnum,
      open_fds: nnum,
      memory_virtual_bytes: nnum,
      involuntary_context_switches_per_s: nnum,
      last_seen: { type: 'string', format: 'date-time', description: 'When routelens last received metrics of this instance.' },
      stale: { type: 'boolean', description: 'Nothing received for three export intervals.' },
      multi_writer: { type: 'boolean', description: 'Several processes write this instance’s streams: levels null, rates their total.' },
      writers: { type: 'integer' },
      resets: { type: 'integer' },
      interval_s: nnum,
      covered_s: { type: 'number' },
      points: { type: 'integer', description: 'Exports inside the window the CPU figure rests on.' },
      same_process_as: {
        type: 'array',
        items: { type: 'string' },
        description:
          'Instances whose RSS went through the same byte counts: they report one process (system-metrics under a pre-fork server reports the arbiter from every worker).',
      },
      last_point_time: { type: 'string', format: 'date-time', nullable: true },
      sources: { type: 'object', additionalProperties: { type: 'string', nullable: true } },
      resource: { type: 'object', additionalProperties: { type: 'string' } },
      routes: { type: 'array', items: { type: 'object' } },
    },
  };
  return {
    paths: {
      '/api/v1/services/{service}/runtime': {
        get: {
          summary: 'The runtime of each instance of a service (from a metrics pipeline) and, per route, unsampled request rates beside the span figures',
          parameters: [{ name: 'service', in: 'path', required: true, schema: { type: 'string' } }, windowParam],
          responses: {
            200: { description: 'The service’s runtime', content: { 'application/json': { schema: { $ref: '#/components/schemas/ServiceRuntimeResponse' } } } },
            400: error,
            404: error,
          },
        },
      },
      '/api/v1/runtime': {
        get: {
          summary: 'Services that send runtime metrics, with their instance counts',
          parameters: [windowParam],
          responses: {
            200: { description: 'Services', content: { 'application/json': { schema: { $ref: '#/components/schemas/RuntimeServicesResponse' } } } },
            400: error,
          },
        },
      },
    },
    schemas: {
      RuntimeInstance: instance,
      RuntimeRoute: route,
      ServiceRuntimeResponse: {
        type: 'object',
        properties: {
          service: { type: 'string' },
          window: { type: 'string' },
          generated_at: { type: 'string', format: 'date-time' },
          instances: { type: 'array', items: { $ref: '#/components/schemas/RuntimeInstance' } },
          routes: { type: 'array', items: { $ref: '#/components/schemas/RuntimeRoute' } },
        },
      },
      RuntimeServicesResponse: {
        type: 'object',
        properties: {
          window: { type: 'string' },
          generated_at: { type: 'string', format: 'date-time' },
          services: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                service: { type: 'string' },
                instances: { type: 'integer' },
                stale_instances: { type: 'integer' },
                multi_writer_instances: { type: 'integer' },
              },
            },
          },
        },
      },
    },
  };
}
