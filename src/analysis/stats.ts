/**
 * The significance tests behind the analysis's claims, small and exact where it is cheap:
 * - `fisherGreater`: Fisher's exact test, one-sided (is a value over-represented among slow requests?);
 * - `poissonRateGreater`: are calls per request higher in one group than another (conditional binomial test);
 * - `mannWhitney`: do two latency distributions (sketches) differ (rank-sum test with ties, normal approximation).
 */
import type { ExpoHistogram } from '../pdata/expo-histogram';

const LN_FACT: number[] = [0];
/** ln(n!) (exact table up to 10^5, Stirling's series beyond). */
export function logFactorial(n: number): number {
  if (n < 0) return NaN;
  if (n < 100_000) {
    while (LN_FACT.length <= n) LN_FACT.push((LN_FACT[LN_FACT.length - 1] as number) + Math.log(LN_FACT.length));
    return LN_FACT[n] as number;
  }
  return n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + 1 / (12 * n) - 1 / (360 * n ** 3);
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

/**
 * One-sided Fisher exact test for the 2×2 table [[a, b], [c, d]] (a: slow with the value, b: slow without,
 * c: fast with, d: fast without): P(X ≥ a) for X hypergeometric with the table's margins.
 */
export function fisherGreater(a: number, b: number, c: number, d: number): number {
  const row1 = a + b;
  const col1 = a + c;
  const n = a + b + c + d;
  if (n === 0 || row1 === 0 || col1 === 0) return 1;
  const hi = Math.min(row1, col1);
  const base = logChoose(n, col1);
  let p = 0;
  for (let x = a; x <= hi; x++) p += Math.exp(logChoose(row1, x) + logChoose(n - row1, col1 - x) - base);
  return Math.min(1, p);
}

/** P(X ≥ k) for X ~ Binomial(n, p): exact in log space up to n = 20000, normal approximation beyond. */
export function binomialUpper(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  if (n > 20_000) {
    const mean = n * p;
    const sd = Math.sqrt(n * p * (1 - p));
    return normalUpper((k - 0.5 - mean) / sd);
  }
  let s = 0;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  for (let x = k; x <= n; x++) s += Math.exp(logChoose(n, x) + x * lp + (n - x) * lq);
  return Math.min(1, s);
}

/**
 * Are calls per request higher in group 1 (x1 calls over n1 requests) than in group 2 (x2 over n2)? Given the
 * total calls, under equal rates group 1's share is Binomial(x1 + x2, n1 / (n1 + n2)): one-sided p.
 */
export function poissonRateGreater(x1: number, n1: number, x2: number, n2: number): number {
  if (n1 <= 0 || n2 <= 0) return 1;
  return binomialUpper(x1, x1 + x2, n1 / (n1 + n2));
}

/** P(Z ≥ z) for a standard normal Z. */
export function normalUpper(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' erfcc; relative error < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export interface MannWhitneyResult {
  /** U of the first sample. */
  u: number;
  z: number;
  /** Two-sided p-value. */
  p: number;
  /** P(a value of the first sample > one of the second) + ½ P(equal): 0.5 means no shift. */
  probabilityGreater: number;
}

/**
 * Mann-Whitney U test of two sketches: values in one bucket are ties (the sketch cannot order them), which
 * the tie-corrected variance accounts for. Two-sided p from the normal approximation with continuity correction.
 */
export function mannWhitney(a: ExpoHistogram, b: ExpoHistogram): MannWhitneyResult {
  const n1 = a.count;
  const n2 = b.count;
  if (n1 === 0 || n2 === 0) return { u: 0, z: 0, p: 1, probabilityGreater: 0.5 };
  const counts = new Map<number, [number, number]>();
  const add =
    (side: 0 | 1) =>
    (i: number, c: number): void => {
      let e = counts.get(i);
      if (e === undefined) counts.set(i, (e = [0, 0]));
      e[side] += c;
    };
  for (const [h, side] of [
    [a, 0],
    [b, 1],
  ] as const) {
    if (h.zeroCount > 0) add(side)(-Infinity, h.zeroCount);
    h.forEachBucket(add(side));
  }
  const keys = [...counts.keys()].sort((x, y) => x - y);
  let rank = 0;
  let r1 = 0;
  let ties = 0;
  for (const k of keys) {
    const [c1, c2] = counts.get(k) as [number, number];
    const t = c1 + c2;
    const mid = rank + (t + 1) / 2;
    r1 += c1 * mid;
    rank += t;
    ties += t * t * t - t;
  }
  const n = n1 + n2;
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  if (!(variance > 0)) return { u, z: 0, p: 1, probabilityGreater: u / (n1 * n2) };
  const diff = u - mean;
  const z = (Math.abs(diff) - 0.5 > 0 ? Math.abs(diff) - 0.5 : 0) / Math.sqrt(variance);
  return { u, z: Math.sign(diff) * z, p: Math.min(1, 2 * normalUpper(z)), probabilityGreater: u / (n1 * n2) };
}
