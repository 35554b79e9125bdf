/**
 * The arithmetic of metric streams over a window, following the OpenTelemetry data model
 * (specification/metrics/data-model.md: Sums, Resets and Gaps, Single-Writer):
 *
 * - A cumulative stream's points are grouped by start time: one group per writer lifetime. Inside a group the
 *   increment between consecutive points is the difference of their values; a new start time is a reset (the
 *   process restarted) and the first point of a group counts from its start time only for synchronous
 *   instruments (see catalog.countsFromStart). A value that goes down under one start time cannot come from a
 *   single writer of a monotonic sum.
 * - Two groups whose lifetimes overlap in time are two processes writing one stream (pre-fork servers whose
 *   workers share a resource): flagged, never averaged.
 * - A delta point is its own increment over (start, time].
 * - Increments are intervals (from, to] with an amount; a window takes each in proportion to the part of its
 *   interval inside the window (a uniform rate within one export interval), and the time covered is the union
 *   of the intervals inside the window.
 */

/** Points of one stream, sorted by time: parallel arrays (time ms, start ms, value, histogram sum). */
export interface Points {
  t: number[];
  s: number[];
  v: number[];
  /** Histogram sums (NaN for number points). */
  u: number[];
}

export interface Increment {
  from: number;
  to: number;
  amount: number;
  /** Increment of a histogram's sum (NaN when not a histogram). */
  sumAmount: number;
}

export interface StreamEvidence {
  /** Two writer lifetimes (start-time groups) overlap in time. */
  overlap: boolean;
  /** A monotonic value decreased under one start time. */
  decrease: boolean;
  /** Most writer lifetimes alive at one moment (1 for a well-behaved stream). */
  writers: number;
  /** Resets seen: a later start time that follows the previous writer's last point. */
  resets: number;
}

export interface StreamShape {
  delta: boolean;
  monotonic: boolean;
  countsFromStart: boolean;
}

/** Start-time groups in order of their first point; indices into the points. */
function groups(p: Points): number[][] {
  const byStart = new Map<number, number[]>();
  for (let i = 0; i < p.t.length; i++) {
    const s = p.s[i] as number;
    let g = byStart.get(s);
    if (g === undefined) byStart.set(s, (g = []));
    g.push(i);
  }
  return [...byStart.values()];
}

/** Increments of a stream and what its start times say about who wrote it (only groups alive after `since`). */
export function increments(p: Points, shape: StreamShape, since = -Infinity): { increments: Increment[]; evidence: StreamEvidence } {
  const out: Increment[] = [];
  const evidence: StreamEvidence = { overlap: false, decrease: false, writers: p.t.length > 0 ? 1 : 0, resets: 0 };
  if (shape.delta) {
    for (let i = 0; i < p.t.length; i++) {
      const s = p.s[i] as number;
      const t = p.t[i] as number;
      if (s > 0 && s < t) out.push({ from: s, to: t, amount: p.v[i] as number, sumAmount: p.u[i] as number });
      else out.push({ from: t, to: t, amount: p.v[i] as number, sumAmount: p.u[i] as number });
    }
    return { increments: out, evidence };
  }
  const spans: [begin: number, end: number][] = [];
  for (const g of groups(p)) {
    const first = g[0] as number;
    const start = p.s[first] as number;
    const t0 = p.t[first] as number;
    const last = p.t[g[g.length - 1] as number] as number;
    if (last < since) continue;
    spans.push([start > 0 && start <= t0 ? start : t0, last]);
    if (shape.countsFromStart && start > 0 && start < t0) out.push({ from: start, to: t0, amount: p.v[first] as number, sumAmount: p.u[first] as number });
    for (let k = 1; k < g.length; k++) {
      const i = g[k - 1] as number;
      const j = g[k] as number;
      const dv = (p.v[j] as number) - (p.v[i] as number);
      if (dv < 0 && shape.monotonic) {
        evidence.decrease = true;
        continue;
      }
      out.push({ from: p.t[i] as number, to: p.t[j] as number, amount: dv, sumAmount: (p.u[j] as number) - (p.u[i] as number) });
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  // Sweep: the most lifetimes alive at once. Touching ends (a restart at the moment the old one's last point
  // was taken) do not overlap.
  const events: [number, number][] = [];
  for (const [b, e] of spans) events.push([b, 1], [e, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let alive = 0;
  let most = spans.length > 0 ? 1 : 0;
  for (const [, d] of events) {
    alive += d;
    if (alive > most) most = alive;
  }
  evidence.writers = most;
  evidence.overlap = most > 1;
  evidence.resets = Math.max(0, spans.length - most);
  return { increments: out, evidence };
}

/** The part of increments inside [from, to]: amounts in proportion, and the union of their intervals. */
export function clip(incs: readonly Increment[], from: number, to: number): { amount: number; sumAmount: number; intervals: [number, number][] } {
  let amount = 0;
  let sumAmount = 0;
  const intervals: [number, number][] = [];
  for (const x of incs) {
    const len = x.to - x.from;
    if (len <= 0) {
      if (x.to > from && x.to <= to) {
        amount += x.amount;
        sumAmount += x.sumAmount;
      }
      continue;
    }
    const a = Math.max(x.from, from);
    const b = Math.min(x.to, to);
    if (b <= a) continue;
    const share = (b - a) / len;
    amount += x.amount * share;
    sumAmount += x.sumAmount * share;
    intervals.push([a, b]);
  }
  return { amount, sumAmount, intervals };
}

/** Total length of the union of intervals. */
export function unionLength(intervals: readonly [number, number][]): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curA = -Infinity;
  let curB = -Infinity;
  for (const [a, b] of sorted) {
    if (a > curB) {
      if (curB > curA) total += curB - curA;
      curA = a;
      curB = b;
    } else if (b > curB) curB = b;
  }
  if (curB > curA) total += curB - curA;
  return total;
}

/** Least-squares slope of value over time (per ms) of the points in [from, to]; undefined with fewer than 2. */
export function slope(p: Points, from: number, to: number): { slopePerMs: number; points: number } | undefined {
  let n = 0;
  let st = 0;
  let sv = 0;
  for (let i = 0; i < p.t.length; i++) {
    const t = p.t[i] as number;
    if (t < from || t > to) continue;
    n++;
    st += t;
    sv += p.v[i] as number;
  }
  if (n < 2) return undefined;
  const mt = st / n;
  const mv = sv / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < p.t.length; i++) {
    const t = p.t[i] as number;
    if (t < from || t > to) continue;
    num += (t - mt) * ((p.v[i] as number) - mv);
    den += (t - mt) * (t - mt);
  }
  if (den === 0) return undefined;
  return { slopePerMs: num / den, points: n };
}

/** Median of the gaps between consecutive point times (ms), or undefined with fewer than 2 points. */
export function medianInterval(p: Points, from = -Infinity): number | undefined {
  const gaps: number[] = [];
  for (let i = 1; i < p.t.length; i++) {
    if ((p.t[i - 1] as number) < from) continue;
    const d = (p.t[i] as number) - (p.t[i - 1] as number);
    if (d > 0) gaps.push(d);
  }
  if (gaps.length === 0) return undefined;
  gaps.sort((a, b) => a - b);
  const mid = gaps.length >> 1;
  return gaps.length % 2 === 1 ? (gaps[mid] as number) : ((gaps[mid - 1] as number) + (gaps[mid] as number)) / 2;
}
