/**
 * Test and benchmark helpers: a seeded PRNG with the latency distributions used by the accuracy tests, a fake
 * clock, and a reusable mutable SpanInput (shaped like the pdata layer's view object).
 */
import { rankFor } from '../../src/pdata/expo-histogram';
import type { Clock } from '../../src/connectors/routelatency/store';
import { copyHexIds } from '../../src/connectors/routelatency/span-input';
import type { SpanInput } from '../../src/connectors/routelatency/span-input';

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal via Box–Muller. */
export function normal(r: () => number): number {
  const u = 1 - r();
  const v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Latency distributions in ms. */
export const distributions: Record<string, (r: () => number) => number> = {
  /** Median 20 ms, σ = 0.8. */
  lognormal: (r) => 20 * Math.exp(0.8 * normal(r)),
  /** 90 % fast (~3 ms), 10 % slow (~400 ms). */
  bimodal: (r) => (r() < 0.9 ? 3 * Math.exp(0.2 * normal(r)) : 400 * Math.exp(0.3 * normal(r))),
  /** Pareto, x_m = 5 ms, α = 1.2 (heavy tail). */
  pareto: (r) => 5 / Math.pow(1 - r(), 1 / 1.2),
  /** Every request takes 42 ms. */
  constant: () => 42,
};

export class FakeClock implements Clock {
  t: number;
  constructor(startMs: number) {
    this.t = startMs;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A valid trace id (32 hex digits) and span id (16) that encode `n`, for tests that tell exemplars apart. */
export const traceIdOf = (n: number): string => n.toString(16).padStart(32, '0');
export const spanIdOf = (n: number): string => n.toString(16).padStart(16, '0');

/** A mutable span view reused across records, like the pdata layer's. */
export class MutableSpan implements SpanInput {
  service = 'svc';
  kind = 2;
  name = '';
  durationNs = 0;
  endTimeMs = 0;
  statusCode = 0;
  attrs = new Map<string, string | number | boolean>();
  resource = new Map<string, string | number | boolean>();
  traceId = '0af7651916cd43dd8448eb211c80319c';
  spanId = 'b7ad6b7169203331';
  attribute(key: string): string | number | boolean | undefined {
    return this.attrs.get(key);
  }
  resourceAttribute(key: string): string | number | boolean | undefined {
    return this.resource.get(key);
  }
  traceIdHex(): string {
    return this.traceId;
  }
  spanIdHex(): string {
    return this.spanId;
  }
  copyIds(into: Uint8Array): boolean {
    return copyHexIds(this.traceId, this.spanId, into);
  }
}

/** Exact q-quantile of ascending values with the sketch's nearest-rank convention ({@link rankFor}). */
export function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[rankFor(q, sorted.length) - 1] as number;
}
