/**
 * The figures of each instance over a window, from its streams (see series.ts for the arithmetic):
 * CPU in cores from cumulative CPU seconds, RSS and its slope, GC collections per minute by generation,
 * threads and file descriptors, and per route the requests and 5xx counted by the HTTP server histograms
 * (unsampled: every request is counted whatever the trace sampling decided).
 */
import { countsFromStart, type Role } from './catalog';
import { clip, increments, medianInterval, slope, unionLength, type Increment, type StreamEvidence } from './series';
import type { InstanceState, StreamState } from './state';

/** Default export interval of the Python SDK (OTEL_METRIC_EXPORT_INTERVAL), used until two exports were seen. */
export const DEFAULT_EXPORT_INTERVAL_MS = 60_000;
/** An instance is stale when nothing arrived for this many export intervals. */
export const STALE_INTERVALS = 3;

export interface RouteMetricFigures {
  method: string;
  route: string;
  /** Requests counted in the window (histogram count increments, in proportion at the window's start). */
  requests: number;
  rate_per_s: number | null;
  errors_5xx: number;
  errors_5xx_per_s: number | null;
  error_5xx_ratio: number | null;
  /** Mean server duration (histogram sum / count) in ms. */
  mean_ms: number | null;
  /** The histogram the figures come from. */
  metric: string;
}

export interface InstanceFigures {
  inst: InstanceState;
  cpuCores: number | null;
  cpuSource: string | null;
  rssBytes: number | null;
  rssSlopeBytesPerMin: number | null;
  rssSlopePoints: number;
  memorySource: string | null;
  vmsBytes: number | null;
  gcPerMin: number | null;
  gcGen2PerMin: number | null;
  gcByGeneration: Record<string, number>;
  threads: number | null;
  threadsSource: string | null;
  openFds: number | null;
  involuntaryCtxSwitchesPerS: number | null;
  lastPointMs: number;
  stale: boolean;
  multiWriter: boolean;
  writers: number;
  resets: number;
  intervalMs: number | null;
  coveredMs: number;
  /** Points of the CPU stream inside the window: how many exports the CPU figure rests on. */
  points: number;
  routes: RouteMetricFigures[];
}

interface Computed {
  st: StreamState;
  incs: Increment[];
  evidence: StreamEvidence;
  inWindow: number;
}

function num(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(6));
}

function statusCode(st: StreamState): number {
  return Number(st.attrs['http.response.status_code'] ?? st.attrs['http.status_code'] ?? 0);
}

/** ms per unit of an HTTP duration histogram (ms for the old conventions, s for the new). */
function msPerUnit(st: StreamState): number {
  if (st.unit === 's') return 1000;
  if (st.unit === 'ms') return 1;
  return st.role === 'http_new' ? 1000 : 1;
}

/** Figures of one instance over [fromMs, ∞), or undefined when it has no point in the window. */
export function instanceFigures(inst: InstanceState, fromMs: number, nowMs: number): InstanceFigures | undefined {
  const computed: Computed[] = [];
  const byRole = new Map<Role, Computed[]>();
  let lastPointMs = 0;
  for (const st of inst.streams.values()) {
    const n = st.t.length;
    if (n === 0) continue;
    const last = st.t[n - 1] as number;
    if (last > lastPointMs) lastPointMs = last;
    let inWindow = 0;
    for (let i = n - 1; i >= 0 && (st.t[i] as number) >= fromMs; i--) inWindow++;
    if (inWindow === 0) continue;
    const { increments: incs, evidence } = increments(st, { delta: st.delta, monotonic: st.monotonic, countsFromStart: countsFromStart(st.role) }, fromMs);
    const c: Computed = { st, incs, evidence, inWindow };
    computed.push(c);
    let list = byRole.get(st.role);
    if (list === undefined) byRole.set(st.role, (list = []));
    list.push(c);
  }
  if (computed.length === 0) return undefined;

  let multiWriter = false;
  // Writers that share start times cannot be told apart in any stream, even one whose values happen to rise.
  let inseparable = false;
  let writers = 1;
  let resets = 0;
  const all: [number, number][] = [];
  for (const c of computed) {
    if (c.evidence.overlap || c.evidence.decrease) multiWriter = true;
    if (c.evidence.decrease) inseparable = true;
    writers = Math.max(writers, c.evidence.writers, c.evidence.decrease ? 2 : 1);
    resets = Math.max(resets, c.evidence.resets);
    all.push(...clip(c.incs, fromMs, Infinity).intervals);
  }
  const coveredMs = unionLength(all);

  const pick = (primary: Role, fallback?: Role): Computed[] => {
    const p = byRole.get(primary);
    if (p !== undefined && p.length > 0) return p;
    return fallback === undefined ? [] : (byRole.get(fallback) ?? []);
  };
  /** Σ increments per ms of covered time over streams of one metric, or null when they cover nothing or disagree. */
  const rate = (cs: readonly Computed[]): { perMs: number | null; amounts: number[] } => {
    const intervals: [number, number][] = [];
    const amounts: number[] = [];
    let bad = inseparable;
    for (const c of cs) {
      const x = clip(c.incs, fromMs, Infinity);
      intervals.push(...x.intervals);
      amounts.push(x.amount);
      if (c.evidence.decrease) bad = true;
    }
    const len = unionLength(intervals);
    return { perMs: bad || len <= 0 ? null : amounts.reduce((a, b) => a + b, 0) / len, amounts: amounts.map((a) => (len > 0 ? a / len : NaN)) };
  };
  /** The latest value of a level, or null when several writers report it (whose value would be a matter of luck). */
  const level = (cs: readonly Computed[]): number | null => {
    let best: Computed | undefined;
    for (const c of cs) if (best === undefined || (c.st.t[c.st.t.length - 1] as number) > (best.st.t[best.st.t.length - 1] as number)) best = c;
    if (best === undefined || multiWriter) return null;
    return best.st.v[best.st.v.length - 1] as number;
  };

  const cpu = pick('cpu', 'cpu_fallback');
  const cpuRate = rate(cpu);
  const rss = pick('rss', 'rss_fallback');
  const rssSlope = rss.length === 1 && !multiWriter ? slope(rss[0]!.st, fromMs, Infinity) : undefined;
  const gc = pick('gc');
  const gcByGeneration: Record<string, number> = {};
  let gcTotal: number | null = null;
  let gcGen2: number | null = null;
  if (gc.length > 0) {
    const r = rate(gc);
    if (r.perMs !== null) {
      gcTotal = r.perMs * 60_000;
      gc.forEach((c, i) => {
        const gen = c.st.attrs['cpython.gc.generation'] ?? c.st.attrs['generation'] ?? '?';
        const perMin = (r.amounts[i] as number) * 60_000;
        if (Number.isFinite(perMin)) gcByGeneration[gen] = num((gcByGeneration[gen] ?? 0) + perMin);
      });
      gcGen2 = gcByGeneration['2'] ?? null;
    }
  }
  const ctx = pick('ctx_switches').filter((c) => (c.st.attrs['type'] ?? c.st.attrs['process.context_switch.type']) === 'involuntary');
  const ctxRate = ctx.length > 0 ? rate(ctx).perMs : null;
  const threads = pick('threads', 'threads_fallback');

  const intervalMs = exportInterval(inst);
  const staleAfter = STALE_INTERVALS * (intervalMs ?? DEFAULT_EXPORT_INTERVAL_MS);
  return {
    inst,
    cpuCores: cpuRate.perMs === null ? null : num(cpuRate.perMs * 1000), // CPU seconds per ms of wall time → per s
    cpuSource: cpu[0]?.st.metric ?? null,
    rssBytes: level(rss),
    rssSlopeBytesPerMin: rssSlope === undefined ? null : num(rssSlope.slopePerMs * 60_000),
    rssSlopePoints: rssSlope?.points ?? 0,
    memorySource: rss[0]?.st.metric ?? null,
    vmsBytes: level(pick('vms')),
    gcPerMin: gcTotal === null ? null : num(gcTotal),
    gcGen2PerMin: gcGen2,
    gcByGeneration,
    threads: level(threads),
    threadsSource: threads[0]?.st.metric ?? null,
    openFds: level(pick('fds')),
    involuntaryCtxSwitchesPerS: ctxRate === null ? null : num(ctxRate * 1000),
    lastPointMs,
    stale: nowMs - inst.lastReceivedMs > staleAfter,
    multiWriter,
    writers,
    resets,
    intervalMs,
    coveredMs,
    points: cpu.length > 0 ? Math.max(...cpu.map((c) => c.inWindow)) : 0,
    routes: routeFigures(byRole, fromMs, coveredMs, inseparable),
  };
}

/** Exports of the recent past kept for the interval estimate. */
const INTERVAL_POINTS = 10;

/**
 * The export interval: the median gap between the last points of the runtime stream with the most points (all
 * runtime streams are collected at once; an HTTP stream of delta temporality reports only when it has requests).
 * Read from the points, so a state merged from workers that each received some exports sees every gap.
 */
function exportInterval(inst: InstanceState): number | null {
  let best: StreamState | undefined;
  for (const st of inst.streams.values()) {
    if (st.role === 'http_old' || st.role === 'http_new') continue;
    if (best === undefined || st.t.length > best.t.length) best = st;
  }
  if (best === undefined || best.t.length < 2) return null;
  const from = best.t[Math.max(0, best.t.length - 1 - INTERVAL_POINTS)] as number;
  return medianInterval(best, from) ?? null;
}

/** Per (method, route): requests and 5xx from the new-convention histogram when present, else the old one. */
function routeFigures(byRole: ReadonlyMap<Role, Computed[]>, fromMs: number, coveredMs: number, inseparable: boolean): RouteMetricFigures[] {
  const fresh = byRole.get('http_new') ?? [];
  // With OTEL_SEMCONV_STABILITY_OPT_IN=http/dup both histograms count the same requests: read one.
  const streams = fresh.length > 0 ? fresh : (byRole.get('http_old') ?? []);
  const routes = new Map<string, { method: string; route: string; requests: number; errors: number; sumMs: number; metric: string; bad: boolean }>();
  for (const c of streams) {
    const a = c.st.attrs;
    const method = a['http.request.method'] ?? a['http.method'] ?? '';
    const route = a['http.route'] ?? a['http.target'] ?? '';
    const key = `${method} ${route}`;
    let r = routes.get(key);
    if (r === undefined) routes.set(key, (r = { method, route, requests: 0, errors: 0, sumMs: 0, metric: c.st.metric, bad: false }));
    const x = clip(c.incs, fromMs, Infinity);
    r.requests += x.amount;
    if (statusCode(c.st) >= 500) r.errors += x.amount;
    r.sumMs += x.sumAmount * msPerUnit(c.st);
    if (c.evidence.decrease || inseparable) r.bad = true;
  }
  const seconds = coveredMs / 1000;
  const out: RouteMetricFigures[] = [];
  for (const r of routes.values()) {
    const ok = !r.bad && seconds > 0;
    out.push({
      method: r.method,
      route: r.route,
      requests: num(r.requests),
      rate_per_s: ok ? num(r.requests / seconds) : null,
      errors_5xx: num(r.errors),
      errors_5xx_per_s: ok ? num(r.errors / seconds) : null,
      error_5xx_ratio: r.requests > 0 && !r.bad ? num(r.errors / r.requests) : null,
      mean_ms: r.requests > 0 && Number.isFinite(r.sumMs) && !r.bad ? num(r.sumMs / r.requests) : null,
      metric: r.metric,
    });
  }
  out.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
  return out;
}
