/**
 * Request counts by coarse latency bucket, kept per attribute value, statement and N+1 pattern so that "slow"
 * and "fast" can be decided when the route is queried, against the window's own percentiles, and so that the
 * counts of several workers simply add.
 *
 * Buckets: 4 per octave (each 19 % wide), bucket b covering [2^(b/4 − 4), 2^((b+1)/4 − 4)) ms, b in 0..95
 * (1/16 ms to about 9 minutes; values outside land in the end buckets). A flat array of (bucket, count) pairs in
 * bucket order: a route's requests fall in a few buckets, so the arrays stay short.
 */

export const BUCKETS_PER_OCTAVE = 4;
const MIN_LOG2 = -4;
const MAX_BUCKET = 95;

export type LatencyCounts = number[];

export function latencyBucket(ms: number): number {
  if (!(ms > 0)) return 0;
  const b = Math.floor((Math.log2(ms) - MIN_LOG2) * BUCKETS_PER_OCTAVE);
  return b < 0 ? 0 : b > MAX_BUCKET ? MAX_BUCKET : b;
}

export function bucketLower(b: number): number {
  return b === 0 ? 0 : Math.pow(2, b / BUCKETS_PER_OCTAVE + MIN_LOG2);
}

export function bucketUpper(b: number): number {
  return b === MAX_BUCKET ? Infinity : Math.pow(2, (b + 1) / BUCKETS_PER_OCTAVE + MIN_LOG2);
}

/** Adds `n` at bucket `b`. */
export function addCount(counts: LatencyCounts, b: number, n = 1): void {
  let i = 0;
  while (i < counts.length && (counts[i] as number) < b) i += 2;
  if (i < counts.length && counts[i] === b) counts[i + 1] = (counts[i + 1] as number) + n;
  else counts.splice(i, 0, b, n);
}

/** Adds every bucket of `from` into `into`. */
export function mergeCounts(into: LatencyCounts, from: readonly number[]): void {
  for (let i = 0; i < from.length; i += 2) addCount(into, from[i] as number, from[i + 1] as number);
}

export function totalCount(counts: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < counts.length; i += 2) n += counts[i] as number;
  return n;
}

/**
 * Counts of the requests certainly slower than `slowAbove` (their whole bucket lies above it) and certainly no
 * slower than `fastAtMost`; requests in a bucket straddling a threshold are in neither.
 */
export function slowFast(counts: readonly number[], slowAbove: number, fastAtMost: number): [slow: number, fast: number] {
  let slow = 0;
  let fast = 0;
  for (let i = 0; i < counts.length; i += 2) {
    const b = counts[i] as number;
    const n = counts[i + 1] as number;
    if (bucketLower(b) >= slowAbove) slow += n;
    else if (bucketUpper(b) <= fastAtMost) fast += n;
  }
  return [slow, fast];
}
