/**
 * Interval arithmetic on half-open time ranges `[start, end)` in milliseconds, kept as flat arrays
 * `[s0, e0, s1, e1, …]` so that a request's few dozen intervals cost one array, not one object each.
 *
 * A union is sorted by start and has no two intervals that overlap or touch; every function that takes a
 * union expects that form and every function that returns one produces it.
 */

/** The union of possibly overlapping, unsorted intervals `[s0, e0, s1, e1, …]`; empty and inverted ones are left out. */
export function union(intervals: readonly number[]): number[] {
  const n = intervals.length >> 1;
  if (n === 0) return [];
  const order: number[] = [];
  for (let i = 0; i < n; i++) if ((intervals[2 * i + 1] as number) > (intervals[2 * i] as number)) order.push(i);
  order.sort((a, b) => (intervals[2 * a] as number) - (intervals[2 * b] as number));
  const out: number[] = [];
  for (const i of order) {
    const s = intervals[2 * i] as number;
    const e = intervals[2 * i + 1] as number;
    const last = out.length - 1;
    if (last > 0 && s <= (out[last] as number)) {
      if (e > (out[last] as number)) out[last] = e;
    } else out.push(s, e);
  }
  return out;
}

/** Total length of a union. */
export function length(u: readonly number[]): number {
  let t = 0;
  for (let i = 0; i < u.length; i += 2) t += (u[i + 1] as number) - (u[i] as number);
  return t;
}

/** A union clipped to `[from, to)`. */
export function clip(u: readonly number[], from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < u.length; i += 2) {
    const s = Math.max(u[i] as number, from);
    const e = Math.min(u[i + 1] as number, to);
    if (e > s) out.push(s, e);
  }
  return out;
}

/** `a ∖ b` for two unions. */
export function subtract(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let s = a[i] as number;
    const e = a[i + 1] as number;
    while (j < b.length && (b[j + 1] as number) <= s) j += 2;
    let k = j;
    while (k < b.length && (b[k] as number) < e) {
      const bs = b[k] as number;
      const be = b[k + 1] as number;
      if (bs > s) out.push(s, bs);
      if (be > s) s = be;
      if (s >= e) break;
      k += 2;
    }
    if (s < e) out.push(s, e);
  }
  return out;
}

/** `a ∪ b` for two unions. */
export function merge(a: readonly number[], b: readonly number[]): number[] {
  if (a.length === 0) return [...b];
  if (b.length === 0) return [...a];
  return union([...a, ...b]);
}

/**
 * Splits wall time among overlapping sets the way Datadog's execution-time breakdown does: every instant of
 * `[from, to)` covered by k of the `sets` (unions) adds 1/k of its length to each of them; instants covered by
 * none are returned as `rest`. The shares and `rest` add up to `to − from`.
 */
export function equalSplit(sets: readonly (readonly number[])[], from: number, to: number): { shares: number[]; rest: number } {
  const shares = new Array<number>(sets.length).fill(0);
  // Boundaries: every start and end inside [from, to), plus the ends of the range.
  const events: number[] = [];
  sets.forEach((u, k) => {
    for (let i = 0; i < u.length; i += 2) {
      const s = Math.max(u[i] as number, from);
      const e = Math.min(u[i + 1] as number, to);
      if (e > s) events.push(s, k + 1, e, -(k + 1));
    }
  });
  const idx: number[] = [];
  for (let i = 0; i < events.length; i += 2) idx.push(i);
  // At equal times process ends before starts, so touching intervals never count as overlapping.
  idx.sort((x, y) => (events[x] as number) - (events[y] as number) || (events[x + 1] as number) - (events[y + 1] as number));
  const active = new Array<boolean>(sets.length).fill(false);
  let activeCount = 0;
  let rest = 0;
  let t = from;
  for (const i of idx) {
    const at = events[i] as number;
    const code = events[i + 1] as number;
    if (at > t) {
      const d = at - t;
      if (activeCount === 0) rest += d;
      else for (let k = 0; k < active.length; k++) if (active[k]) shares[k] = (shares[k] as number) + d / activeCount;
      t = at;
    }
    const k = Math.abs(code) - 1;
    if (code > 0) {
      if (!active[k]) activeCount++;
      active[k] = true;
    } else {
      if (active[k]) activeCount--;
      active[k] = false;
    }
  }
  if (to > t) rest += to - t;
  return { shares, rest };
}
