/**
 * The answer to "why is this route slow" over one window: `GET /api/v1/why` and `routelens why` print it.
 * Built from a window's aggregate of the route's analysis slots (route-analysis.ts) and the route's latency
 * summary from the latency store (which counts 100 % of spans; the analysis counts the requests it analysed).
 *
 * The field names of WhyAnswer are a contract (issue 28 item 8; the page renders them): service, method, route,
 * window, count, p50_ms, p95_ms, p99_ms, breakdown[{category, target, share, p50_ms, p95_ms, p99_ms}],
 * statements[{fingerprint, db_system, calls_per_request, p50_ms, p95_ms, p99_ms, share, example_trace_id}],
 * n_plus_one[{kind, fingerprint, repeats, requests_share, cost_ms, example_trace_id, example_span_ids}],
 * slow_vs_fast[…], versions[…], summary. Further fields are additions, documented in README.md.
 */
import type { ExpoHistogram } from '../pdata/expo-histogram';
import type { CallAcc, SlotData, VersionAcc } from './route-analysis';
import { OTHER } from './route-analysis';
import { slowFast } from './latency-counts';
import { fisherGreater, mannWhitney, poissonRateGreater } from './stats';

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface BreakdownJson {
  category: string;
  target: string;
  /** Share of the analysed requests' total time (equal split of overlapping calls; all shares add up to 1). */
  share: number;
  /** Percentiles of this target's time per request, over all analysed requests (0 where it had none). */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Share of the requests' critical path it owns. */
  critical_path_share: number;
  /** Share of the analysed requests that spent time in it. */
  requests_share: number;
}

export interface StatementJson {
  fingerprint: string;
  db_system: string;
  /** `SELECT users`. */
  summary: string;
  calls_per_request: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Sum of its calls' durations over the requests' total time. */
  share: number;
  /** Share of the analysed requests that ran it. */
  requests_share: number;
  /** The request where it cost the most. */
  example_trace_id: string;
}

export interface OutboundJson {
  fingerprint: string;
  method: string;
  server: string;
  calls_per_request: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  share: number;
  requests_share: number;
  example_trace_id: string;
}

export interface NPlusOneJson {
  kind: 'db' | 'http';
  fingerprint: string;
  /** db.system, or the HTTP server. */
  system: string;
  /** Mean repeats per affected request. */
  repeats: number;
  max_repeats: number;
  /** Share of the analysed requests that had it. */
  requests_share: number;
  /** Share of the slow requests (above the live p95) that had it. */
  slow_requests_share: number | null;
  /** Mean time per affected request spent in the repeated calls (union of their intervals). */
  cost_ms: number;
  example_trace_id: string;
  example_span_ids: string[];
}

/** One way slow requests differ from fast ones; `kind` tells an attribute value from a statement count. */
export type SlowVsFastJson =
  | {
      kind: 'attribute';
      attribute: string;
      value: string;
      /** Slow requests (above the live p95) carrying the value, of all slow requests analysed. */
      slow_count: number;
      slow_requests: number;
      /** Fast requests (under the live p50) carrying it, of all fast ones. */
      fast_count: number;
      fast_requests: number;
      /** (slow_count / slow_requests) ÷ (fast_count / fast_requests); null when no fast request has it. */
      ratio: number | null;
      /** One-sided Fisher exact test. */
      p_value: number;
    }
  | {
      kind: 'statement';
      fingerprint: string;
      db_system: string;
      slow_calls_per_request: number;
      fast_calls_per_request: number;
      slow_requests: number;
      fast_requests: number;
      ratio: number | null;
      /** One-sided conditional binomial test of the call rates. */
      p_value: number;
    };

export interface VersionJson {
  version: string;
  first_seen: string;
  last_seen: string;
  count: number;
  error_count: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Against the version seen before it in the window; null for the oldest. */
  vs_previous: {
    version: string;
    p95_change: number | null;
    p99_change: number | null;
    /** Two-sided Mann-Whitney test of the two latency distributions. */
    p_value: number;
    /** p < 0.01 and both versions have at least 20 requests. */
    significant: boolean;
    new_fingerprints: string[];
    vanished_fingerprints: string[];
    changed_calls: { fingerprint: string; before: number; after: number }[];
  } | null;
}

export interface WhyAnswer {
  service: string;
  method: string;
  route: string;
  window: string;
  /** Requests of the route in the window (every span counted by the latency store). */
  count: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Requests analysed (whole traces assembled). */
  analysed: number;
  error_count: number;
  breakdown: BreakdownJson[];
  statements: StatementJson[];
  outbound: OutboundJson[];
  n_plus_one: NPlusOneJson[];
  slow_vs_fast: SlowVsFastJson[];
  versions: VersionJson[];
  quality: {
    truncated_children: number;
    children_outside_parent: number;
    clock_skew_adjusted: number;
    double_db_spans: number;
    db_spans_without_statement: number;
    dropped_entries: number;
  };
  summary: string;
}

const MAX_STATEMENTS = 50;
const MAX_SLOW_VS_FAST = 12;
/** A window with fewer requests (in the latency store) has no slow or fast requests: its percentiles are noise. */
export const MIN_REQUESTS = 20;
/** Attribute over-representations reported need at least this many slow requests carrying the value. */
const MIN_SLOW_COUNT = 3;
const P_REPORT = 0.05;

/** 4 significant digits; NaN/±Infinity → null. */
function num(x: number): number | null {
  return Number.isFinite(x) ? (x === 0 ? 0 : Number(x.toPrecision(4))) : null;
}
function num0(x: number): number {
  return num(x) ?? 0;
}
function ratioOf(a: number, b: number): number {
  return b > 0 ? a / b : 0;
}

/** Quantiles of a per-request sketch that holds only the requests with a value, the others counting as 0. */
function withZeros(sketch: ExpoHistogram, total: number, qs: readonly number[]): number[] {
  const missing = total - sketch.count;
  if (missing <= 0) return sketch.quantiles(qs);
  const h = sketch.clone({ wide: true });
  h.count += missing;
  h.zeroCount += missing;
  h.min = 0;
  if (h.max < 0) h.max = 0;
  return h.quantiles(qs);
}

const Q = [0.5, 0.95, 0.99];

export interface WhyInput {
  service: string;
  method: string;
  route: string;
  window: string;
  latency: LatencySummary;
  errorCount: number;
  /** The window's aggregate of the analysis slots (undefined: nothing analysed). */
  data: SlotData | undefined;
}

export function buildWhy(input: WhyInput): WhyAnswer {
  const d = input.data;
  const n = d?.requests ?? 0;
  const total = d?.durationMs ?? 0;
  const breakdown: BreakdownJson[] = [];
  const statements: StatementJson[] = [];
  const outbound: OutboundJson[] = [];
  const nPlusOne: NPlusOneJson[] = [];
  let slowVsFast: SlowVsFastJson[] = [];
  const versions: VersionJson[] = [];
  if (d !== undefined && n > 0) {
    for (const t of d.targets.values()) {
      const [p50, p95, p99] = withZeros(t.sketch, n, Q) as [number, number, number];
      breakdown.push({
        category: t.category,
        target: t.target,
        share: num0(ratioOf(t.splitMs, total)),
        p50_ms: num(p50),
        p95_ms: num(p95),
        p99_ms: num(p99),
        critical_path_share: num0(ratioOf(t.cpMs, total)),
        requests_share: num0(t.requests / n),
      });
    }
    breakdown.sort((a, b) => b.share - a.share || a.category.localeCompare(b.category));
    const calls = [...d.calls.values()];
    for (const c of calls) {
      const [p50, p95, p99] = c.sketch.quantiles(Q) as [number, number, number];
      const common = {
        fingerprint: c.text,
        calls_per_request: num0(c.calls / n),
        p50_ms: num(p50),
        p95_ms: num(p95),
        p99_ms: num(p99),
        share: num0(ratioOf(c.sumMs, total)),
        requests_share: num0(c.requests / n),
        example_trace_id: c.exampleTrace,
      };
      if (c.kind === 'db') statements.push({ ...common, db_system: c.system, summary: c.summary });
      else {
        const [method = '', server = ''] = c.text.split(' ');
        outbound.push({ ...common, method, server });
      }
    }
    statements.sort((a, b) => b.share - a.share || b.calls_per_request - a.calls_per_request);
    statements.splice(MAX_STATEMENTS);
    const cut = latencyCut(d, input.latency);
    outbound.sort((a, b) => b.share - a.share || b.calls_per_request - a.calls_per_request);
    outbound.splice(MAX_STATEMENTS);
    for (const f of d.nPlusOne.values()) {
      nPlusOne.push({
        kind: f.kind,
        fingerprint: f.fingerprint,
        system: f.system,
        repeats: num0(f.repeats / f.requests),
        max_repeats: f.maxRepeats,
        requests_share: num0(f.requests / n),
        slow_requests_share: cut === undefined || cut.slow === 0 ? null : num0(slowFast(f.requestsByLatency, cut.p95, cut.p50)[0] / cut.slow),
        cost_ms: num0(f.costMs / f.requests),
        example_trace_id: f.exampleTrace,
        example_span_ids: [...f.exampleSpans],
      });
    }
    nPlusOne.sort((a, b) => b.requests_share * b.cost_ms - a.requests_share * a.cost_ms);
    slowVsFast = cut === undefined ? [] : compareSlowFast(d, calls, cut);
    versions.push(...compareVersions(d.versions));
  }
  const q = d?.quality;
  const answer: WhyAnswer = {
    service: input.service,
    method: input.method,
    route: input.route,
    window: input.window,
    count: input.latency.count,
    p50_ms: num(input.latency.p50),
    p95_ms: num(input.latency.p95),
    p99_ms: num(input.latency.p99),
    analysed: n,
    error_count: input.errorCount,
    breakdown,
    statements,
    outbound,
    n_plus_one: nPlusOne,
    slow_vs_fast: slowVsFast,
    versions,
    quality: {
      truncated_children: q?.truncated ?? 0,
      children_outside_parent: q?.outside ?? 0,
      clock_skew_adjusted: q?.skewAdjusted ?? 0,
      double_db_spans: q?.doubleSpans ?? 0,
      db_spans_without_statement: q?.dbWithoutStatement ?? 0,
      dropped_entries: q?.dropped ?? 0,
    },
    summary: '',
  };
  answer.summary = summarize(answer);
  return answer;
}

/** The route's slow and fast requests: above its p95, at or under its p50 (of the latency store, for the window). */
interface LatencyCut {
  p50: number;
  p95: number;
  slow: number;
  fast: number;
}

/** Undefined when the window has too few requests to call any slow or fast. */
function latencyCut(d: SlotData, latency: LatencySummary): LatencyCut | undefined {
  if (latency.count < MIN_REQUESTS || !Number.isFinite(latency.p50) || !Number.isFinite(latency.p95)) return undefined;
  const [slow, fast] = slowFast(d.latency, latency.p95, latency.p50);
  return { p50: latency.p50, p95: latency.p95, slow, fast };
}

function compareSlowFast(d: SlotData, calls: readonly CallAcc[], cut: LatencyCut): SlowVsFastJson[] {
  const S = cut.slow;
  const F = cut.fast;
  if (S === 0 || F === 0) return [];
  const out: SlowVsFastJson[] = [];
  for (const [key, counts] of d.attributes) {
    const [s, f] = slowFast(counts, cut.p95, cut.p50);
    if (s < MIN_SLOW_COUNT || s / S <= f / F) continue;
    const p = fisherGreater(s, S - s, f, F - f);
    if (p >= P_REPORT) continue;
    const sep = key.indexOf('\u0000');
    out.push({
      kind: 'attribute',
      attribute: key.slice(0, sep),
      value: key.slice(sep + 1),
      slow_count: s,
      slow_requests: S,
      fast_count: f,
      fast_requests: F,
      ratio: f > 0 ? num(s / S / (f / F)) : null,
      p_value: num0(p),
    });
  }
  for (const c of calls) {
    if (c.kind !== 'db' || c.text === OTHER) continue;
    const [slowCalls, fastCalls] = slowFast(c.callsByLatency, cut.p95, cut.p50);
    const rs = slowCalls / S;
    const rf = fastCalls / F;
    if (rs <= rf || slowCalls < MIN_SLOW_COUNT) continue;
    const p = poissonRateGreater(slowCalls, S, fastCalls, F);
    if (p >= P_REPORT) continue;
    out.push({
      kind: 'statement',
      fingerprint: c.text,
      db_system: c.system,
      slow_calls_per_request: num0(rs),
      fast_calls_per_request: num0(rf),
      slow_requests: S,
      fast_requests: F,
      ratio: rf > 0 ? num(rs / rf) : null,
      p_value: num0(p),
    });
  }
  out.sort((a, b) => a.p_value - b.p_value || (b.ratio ?? Infinity) - (a.ratio ?? Infinity));
  return out.slice(0, MAX_SLOW_VS_FAST);
}

/** Versions newest first (by first appearance in the window), each against the one that came before it. */
function compareVersions(map: ReadonlyMap<string, VersionAcc>): VersionJson[] {
  const list = [...map.values()].filter((v) => v.version !== '' || map.size > 1).sort((a, b) => a.firstSeenMs - b.firstSeenMs);
  const out: VersionJson[] = [];
  list.forEach((v, i) => {
    const [p50, p95, p99] = v.sketch.quantiles(Q) as [number, number, number];
    const prev = i > 0 ? (list[i - 1] as VersionAcc) : undefined;
    let vs: VersionJson['vs_previous'] = null;
    if (prev !== undefined) {
      const [, pp95, pp99] = prev.sketch.quantiles(Q) as [number, number, number];
      const mw = mannWhitney(v.sketch, prev.sketch);
      const keysNow = new Set(v.calls.keys());
      const keysBefore = new Set(prev.calls.keys());
      const name = (k: string): string => k.slice(k.indexOf('\u0000') + 1);
      const changed: { fingerprint: string; before: number; after: number }[] = [];
      for (const k of keysNow) {
        if (!keysBefore.has(k)) continue;
        const after = (v.calls.get(k) as number) / v.requests;
        const before = (prev.calls.get(k) as number) / prev.requests;
        if (Math.abs(after - before) >= 1 || (before > 0 && (after / before >= 1.5 || after / before <= 1 / 1.5))) {
          changed.push({ fingerprint: name(k), before: num0(before), after: num0(after) });
        }
      }
      vs = {
        version: prev.version,
        p95_change: num(p95 / pp95 - 1),
        p99_change: num(p99 / pp99 - 1),
        p_value: num0(mw.p),
        significant: mw.p < 0.01 && v.requests >= 20 && prev.requests >= 20,
        new_fingerprints: [...keysNow].filter((k) => !keysBefore.has(k)).map(name),
        vanished_fingerprints: [...keysBefore].filter((k) => !keysNow.has(k)).map(name),
        changed_calls: changed,
      };
    }
    out.push({
      version: v.version,
      first_seen: new Date(v.firstSeenMs).toISOString(),
      last_seen: new Date(v.lastSeenMs).toISOString(),
      count: v.requests,
      error_count: v.errors,
      p50_ms: num(p50),
      p95_ms: num(p95),
      p99_ms: num(p99),
      vs_previous: vs,
    });
  });
  return out.reverse();
}

function ms(x: number | null): string {
  if (x === null) return '–';
  return x >= 100 ? `${Math.round(x)} ms` : `${Number(x.toPrecision(2))} ms`;
}
function pct(x: number): string {
  return `${Math.round(x * 100)} %`;
}
function short(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** One plain sentence: the latency, where the time goes, the worst N+1, what slow requests have, a regression. */
export function summarize(a: WhyAnswer): string {
  if (a.count === 0 && a.analysed === 0) return `No requests of ${a.method} ${a.route} in the last ${a.window}.`;
  const parts: string[] = [`p99 ${ms(a.p99_ms)} (p50 ${ms(a.p50_ms)}, ${a.count} requests)`];
  if (a.analysed === 0) {
    parts.push('no request analysed yet');
    return `${parts.join('; ')}.`;
  }
  const top = a.breakdown.filter((b) => b.share >= 0.1).slice(0, 2);
  if (top.length > 0)
    parts.push(
      top
        .map(
          (b) => `${pct(b.share)} ${b.category === 'self' ? 'in its own code' : `${b.category.toUpperCase()}${b.target ? ` (${short(b.target, 30)})` : ''}`}`,
        )
        .join(', '),
    );
  const n1 = a.n_plus_one[0];
  if (n1 !== undefined) {
    const where =
      n1.slow_requests_share !== null && n1.slow_requests_share > n1.requests_share
        ? `${pct(n1.slow_requests_share)} of slow requests`
        : `${pct(n1.requests_share)} of requests`;
    parts.push(`N+1 on ${short(n1.fingerprint, 80)} × ${Math.round(n1.repeats)} in ${where}`);
  } else {
    const s = a.statements[0];
    if (s !== undefined && s.share >= 0.2) parts.push(`${short(s.fingerprint, 80)} takes ${pct(s.share)} of the time (p95 ${ms(s.p95_ms)})`);
  }
  const sf = a.slow_vs_fast.find((x) => x.kind === 'attribute' || x.fingerprint !== n1?.fingerprint);
  if (sf !== undefined) {
    if (sf.kind === 'attribute') {
      const counts = `${sf.slow_count} of ${sf.slow_requests} slow, ${sf.fast_count === 0 ? 'none' : sf.fast_count} of ${sf.fast_requests} fast`;
      parts.push(
        `slow requests run ${sf.ratio === null ? '' : `${Number(sf.ratio.toPrecision(2))}× more often `}on ${sf.attribute}=${short(sf.value, 40)} (${counts})`,
      );
    } else
      parts.push(
        `slow requests run ${short(sf.fingerprint, 60)} ${Number(sf.slow_calls_per_request.toPrecision(2))}× per request, fast ones ${Number(sf.fast_calls_per_request.toPrecision(2))}×`,
      );
  }
  const v = a.versions[0]?.vs_previous;
  if (v !== null && v !== undefined && v.significant && v.p95_change !== null && Math.abs(v.p95_change) >= 0.1) {
    parts.push(`p95 ${v.p95_change > 0 ? '+' : ''}${pct(v.p95_change)} in ${a.versions[0]?.version} against ${v.version}`);
  }
  return `${parts.join('; ')}.`;
}
