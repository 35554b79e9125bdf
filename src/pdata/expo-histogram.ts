/**
 * A base-2 exponential histogram at a fixed scale (the OpenTelemetry `ExponentialHistogram` bucket layout),
 * used as the mergeable latency sketch of every route slot.
 *
 * Layout: `base = 2^(2^-scale)`; bucket `i` covers `(base^i, base^(i+1)]` (upper bound inclusive, as in the
 * OTel data model); values `<= 0` go to the zero bucket. Buckets are kept in one dense array that starts at
 * bucket index `offset` and grows on demand (a route's latencies usually span a few octaves, so the array
 * stays short). Count, sum, min and max are exact.
 *
 * Accuracy: a bucket is represented by the harmonic mean of its bounds, `2·lo·hi/(lo+hi)`, which minimises the
 * largest relative error `|rep − v| / v` over the bucket; that error is `(base − 1)/(base + 1)`, 0.5415 % at
 * scale 6 (the geometric mean `sqrt(lo·hi)` would give `sqrt(base) − 1` = 0.5430 %).
 *
 * Memory bound: bucket indices are clamped to the values `[2^-20, 2^36]` (in the store's unit, milliseconds:
 * about 1 ns to 2 years), so one sketch never holds more than `56 · 2^scale` buckets (3584 at scale 6). Values
 * outside that range land in the first/last bucket; min/max stay exact and quantiles are clamped to them.
 * Counts start as uint16 (2 bytes a bucket) and widen to uint32, then float64, just before a bucket overflows.
 */

/** The scale used by the route store: 64 buckets per octave, relative error 0.5415 %. */
export const SKETCH_SCALE = 6;

/** Smallest and largest value (log2) that get their own bucket; see the memory bound above. */
const MIN_LOG2 = -20;
const MAX_LOG2 = 36;
const EMPTY = new Uint16Array(0);
/** Fixed cost of one sketch object plus, when it has buckets, its typed array, ArrayBuffer and backing store (calibrated against heapUsed + arrayBuffers on Node 20). */
const OBJECT_BYTES = 96;
const ARRAY_HEADER_BYTES = 330;

/** The OTLP `ExponentialHistogramDataPoint` fields this sketch produces and accepts (positive values only). */
export interface OtlpExponentialHistogram {
  scale: number;
  zeroCount: number;
  positive: { offset: number; bucketCounts: number[] };
  count: number;
  sum: number;
  /** Absent when `count` is 0 (OTLP leaves min/max unset for empty points). */
  min?: number | undefined;
  max?: number | undefined;
  /** Always 0 here: only values `<= 0` are in the zero bucket. */
  zeroThreshold?: number | undefined;
}

/** {@link OtlpExponentialHistogram} with run-length coded bucket counts (see ExpoHistogram.toCompact). */
export interface CompactExponentialHistogram extends Omit<OtlpExponentialHistogram, 'positive'> {
  positive: { offset: number; counts: number[] };
}

export interface ExpoHistogramOptions {
  /** Bucket scale, an integer in [-10, 20]. @default 6 */
  scale?: number;
  /**
   * Store counts as float64 from the start. Otherwise counts start as uint16 (2 bytes a bucket) and the array is
   * widened to uint32, then float64, just before a bucket would overflow.
   * @default false
   */
  wide?: boolean;
}

/**
 * Rank (1-based) of the q-quantile among n sorted values: the nearest-rank convention `max(1, ceil(q·n))`.
 * The product is nudged down by a relative 1e-12 so that e.g. `0.7 * 10 = 7.000000000000001` gives rank 7.
 */
export function rankFor(q: number, n: number): number {
  const k = Math.ceil(q * n * (1 - 1e-12));
  return k < 1 ? 1 : k > n ? n : k;
}

/** Bucket index of a positive value at a scale (no clamping). */
export function bucketIndex(value: number, scale: number): number {
  return Math.ceil(Math.log2(value) * Math.pow(2, scale)) - 1;
}

/** Largest relative error of a bucket's representative value at a scale: `(base − 1)/(base + 1)`. */
export function relativeErrorAtScale(scale: number): number {
  const base = Math.pow(2, Math.pow(2, -scale));
  return (base - 1) / (base + 1);
}

export class ExpoHistogram {
  readonly scale: number;
  /** Number of recorded values (including the zero bucket). */
  count = 0;
  /** Exact sum of recorded values (non-positive values count as 0). */
  sum = 0;
  /** Exact minimum, `Infinity` when empty. */
  min = Infinity;
  /** Exact maximum, `-Infinity` when empty. */
  max = -Infinity;
  /** Values `<= 0`. */
  zeroCount = 0;

  #counts: Uint16Array | Uint32Array | Float64Array;
  /** Largest count the current array type holds. */
  #maxCount: number;
  /** Bucket index of `#counts[0]`. */
  #offset = 0;
  /** Lowest and highest bucket index holding a count; `#lo > #hi` when no bucket is used. */
  #lo = Number.MAX_SAFE_INTEGER;
  #hi = Number.MIN_SAFE_INTEGER;
  readonly #factor: number;
  readonly #minIndex: number;
  readonly #maxIndex: number;
  /** `2 / (1 + base)`: representative of bucket i is `base^(i+1) · #repFactor`. */
  readonly #repFactor: number;

  constructor(options?: ExpoHistogramOptions) {
    const scale = options?.scale ?? SKETCH_SCALE;
    if (!Number.isInteger(scale) || scale < -10 || scale > 20) {
      throw new RangeError(`Cannot create a histogram as 'scale' must be an integer in [-10, 20]: current value is ${scale}`);
    }
    this.scale = scale;
    this.#factor = Math.pow(2, scale);
    this.#minIndex = Math.floor(MIN_LOG2 * this.#factor);
    this.#maxIndex = Math.ceil(MAX_LOG2 * this.#factor) - 1;
    this.#repFactor = 2 / (1 + Math.pow(2, 1 / this.#factor));
    this.#counts = options?.wide ? new Float64Array(0) : EMPTY;
    this.#maxCount = options?.wide ? Infinity : 0xffff;
  }

  /** Records one value. NaN is ignored; values `<= 0` (e.g. negative durations from clock skew) count as 0. */
  record(value: number): void {
    if (!(value > 0)) {
      if (value !== value) return;
      this.count++;
      this.zeroCount++;
      if (this.min > 0) this.min = 0;
      if (this.max < 0) this.max = 0;
      return;
    }
    let i = Math.ceil(Math.log2(value) * this.#factor) - 1;
    if (i < this.#minIndex) i = this.#minIndex;
    else if (i > this.#maxIndex) i = this.#maxIndex;
    this.recordAt(value, i);
  }

  /**
   * Records a positive value whose bucket index is already known (`i === indexOf(value)`), so that a value
   * recorded into several sketches of the same scale computes its logarithm once.
   */
  recordAt(value: number, i: number): void {
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    let j = i - this.#offset;
    if (j < 0 || j >= this.#counts.length) {
      this.#ensureRange(i, i);
      j = i - this.#offset;
    }
    const c = (this.#counts[j] as number) + 1;
    if (c > this.#maxCount) this.#widen();
    this.#counts[j] = c;
    if (i < this.#lo) this.#lo = i;
    if (i > this.#hi) this.#hi = i;
  }

  /** Empties the sketch, keeping its bucket array for reuse. */
  reset(): void {
    if (this.#lo <= this.#hi) this.#counts.fill(0, this.#lo - this.#offset, this.#hi - this.#offset + 1);
    this.#lo = Number.MAX_SAFE_INTEGER;
    this.#hi = Number.MIN_SAFE_INTEGER;
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.zeroCount = 0;
  }

  /** Adds another sketch of the same scale into this one (exact: bucket counts add, offsets aligned). */
  merge(other: ExpoHistogram): void {
    if (other.scale !== this.scale) {
      throw new RangeError(`Cannot merge histograms of different scales: ${other.scale} into ${this.scale}`);
    }
    if (other.count === 0) return;
    this.count += other.count;
    this.sum += other.sum;
    this.zeroCount += other.zeroCount;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    const lo = other.#lo;
    const hi = other.#hi;
    if (lo > hi) return;
    this.#ensureRange(lo, hi);
    const src = other.#counts;
    const srcOff = other.#offset;
    let dst = this.#counts;
    const dstOff = this.#offset;
    for (let i = lo; i <= hi; i++) {
      const add = src[i - srcOff] as number;
      if (add === 0) continue;
      const c = (dst[i - dstOff] as number) + add;
      while (c > this.#maxCount) {
        this.#widen();
        dst = this.#counts;
      }
      dst[i - dstOff] = c;
    }
    if (lo < this.#lo) this.#lo = lo;
    if (hi > this.#hi) this.#hi = hi;
  }

  /**
   * The q-quantile (q in [0, 1]) with the nearest-rank convention (see {@link rankFor}): the representative value
   * of the bucket holding the value of rank `max(1, ceil(q·n))`, clamped into [min, max]. Rank 1 returns the exact
   * min and rank n the exact max. NaN when empty.
   */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`Cannot compute a quantile as 'q' must be in [0, 1]: current value is ${q}`);
    const n = this.count;
    if (n === 0) return NaN;
    return this.#valueAtRank(rankFor(q, n));
  }

  /** Several quantiles in one pass over the buckets; `qs` need not be sorted. */
  quantiles(qs: readonly number[]): number[] {
    for (const q of qs) {
      if (!(q >= 0 && q <= 1)) throw new RangeError(`Cannot compute a quantile as 'q' must be in [0, 1]: current value is ${q}`);
    }
    const n = this.count;
    const out = new Array<number>(qs.length).fill(NaN);
    if (n === 0) return out;
    const order = qs.map((_, i) => i).sort((a, b) => (qs[a] as number) - (qs[b] as number));
    let cum = this.zeroCount;
    let i = this.#lo;
    const counts = this.#counts;
    const off = this.#offset;
    for (const idx of order) {
      const k = rankFor(qs[idx] as number, n);
      if (k <= 1) out[idx] = this.min;
      else if (k >= n) out[idx] = this.max;
      else if (k <= this.zeroCount) out[idx] = 0;
      else {
        // advance until the cumulative count reaches k; bucket i-1 is the last one added
        while (cum < k && i <= this.#hi) {
          cum += counts[i - off] as number;
          i++;
        }
        out[idx] = cum >= k ? this.#clamp(this.representative(i - 1)) : this.max;
      }
    }
    return out;
  }

  #valueAtRank(k: number): number {
    if (k <= 1) return this.min;
    if (k >= this.count) return this.max;
    let cum = this.zeroCount;
    if (k <= cum) return 0;
    const counts = this.#counts;
    const off = this.#offset;
    for (let i = this.#lo; i <= this.#hi; i++) {
      cum += counts[i - off] as number;
      if (cum >= k) return this.#clamp(this.representative(i));
    }
    return this.max;
  }

  #clamp(v: number): number {
    return v < this.min ? this.min : v > this.max ? this.max : v;
  }

  /** Lower (exclusive) bound of bucket i. */
  lowerBound(i: number): number {
    return Math.pow(2, i / this.#factor);
  }

  /** Upper (inclusive) bound of bucket i. */
  upperBound(i: number): number {
    return Math.pow(2, (i + 1) / this.#factor);
  }

  /** The harmonic mean of the bucket's bounds, which minimises the largest relative error. */
  representative(i: number): number {
    return Math.pow(2, (i + 1) / this.#factor) * this.#repFactor;
  }

  /** Index of the bucket a positive value is recorded in (clamped like {@link record}). */
  indexOf(value: number): number {
    const i = Math.ceil(Math.log2(value) * this.#factor) - 1;
    return i < this.#minIndex ? this.#minIndex : i > this.#maxIndex ? this.#maxIndex : i;
  }

  /**
   * Estimated number of values `<= b` for each bound (bounds ascending), for classic (explicit-bucket) histogram
   * output such as Prometheus `_bucket{le}` (cumulative) counts.
   *
   * A whole bucket is counted as `<= b` when its representative value is `<= b`. The only values that can be
   * misclassified are those in the single bucket that straddles `b`, i.e. values within one bucket width of `b`
   * (relative distance < `base − 1`, 1.09 % at scale 6); the zero bucket, and everything when `b >= max` or
   * nothing when `b < min`, are exact. When `b` is a bucket boundary the count is exact.
   */
  countsAtOrBelow(bounds: readonly number[]): number[] {
    const out = new Array<number>(bounds.length);
    let prev = -Infinity;
    for (const b of bounds) {
      if (!(b >= prev)) throw new RangeError(`Cannot count values at or below bounds as they must be ascending numbers: ${bounds.join(', ')}`);
      prev = b;
    }
    let cum = this.zeroCount;
    let i = this.#lo;
    const counts = this.#counts;
    const off = this.#offset;
    for (let k = 0; k < bounds.length; k++) {
      const b = bounds[k] as number;
      if (this.count === 0 || b < this.min || b < 0) {
        out[k] = 0;
        continue;
      }
      if (b >= this.max) {
        out[k] = this.count;
        continue;
      }
      while (i <= this.#hi && this.representative(i) <= b) {
        cum += counts[i - off] as number;
        i++;
      }
      out[k] = cum;
    }
    return out;
  }

  /** Calls `fn(index, count)` for each non-empty bucket in ascending order. */
  forEachBucket(fn: (index: number, count: number) => void): void {
    const counts = this.#counts;
    const off = this.#offset;
    for (let i = this.#lo; i <= this.#hi; i++) {
      const c = counts[i - off] as number;
      if (c !== 0) fn(i, c);
    }
  }

  /** Number of bucket slots allocated (memory accounting). */
  get capacity(): number {
    return this.#counts.length;
  }

  /** Estimated heap bytes of this sketch: the bucket array plus fixed object overhead. */
  memoryBytes(): number {
    return OBJECT_BYTES + (this.#counts.length === 0 ? 0 : ARRAY_HEADER_BYTES + this.#counts.byteLength);
  }

  /** A copy of this sketch (same scale, trimmed bucket array). */
  clone(options?: { wide?: boolean }): ExpoHistogram {
    const h = new ExpoHistogram({ scale: this.scale, wide: options?.wide ?? this.#counts instanceof Float64Array });
    h.merge(this);
    return h;
  }

  /**
   * An exact copy at a lower scale (`newScale <= scale`): bucket i maps to `i >> (scale − newScale)`. Use before
   * merging with data of a coarser scale.
   */
  downscaled(newScale: number): ExpoHistogram {
    if (!Number.isInteger(newScale) || newScale > this.scale) {
      throw new RangeError(`Cannot downscale as 'newScale' must be an integer <= ${this.scale}: current value is ${newScale}`);
    }
    const h = new ExpoHistogram({ scale: newScale, wide: true });
    const shift = this.scale - newScale;
    h.count = this.count;
    h.sum = this.sum;
    h.min = this.min;
    h.max = this.max;
    h.zeroCount = this.zeroCount;
    if (this.#lo <= this.#hi) {
      h.#ensureRange(this.#lo >> shift, this.#hi >> shift);
      this.forEachBucket((i, c) => {
        const j = i >> shift;
        h.#counts[j - h.#offset] = (h.#counts[j - h.#offset] as number) + c;
        if (j < h.#lo) h.#lo = j;
        if (j > h.#hi) h.#hi = j;
      });
    }
    return h;
  }

  /** The OTLP `ExponentialHistogramDataPoint` shape (positive buckets trimmed to the used range). */
  toOtlp(): OtlpExponentialHistogram {
    const bucketCounts: number[] = [];
    let offset = 0;
    if (this.#lo <= this.#hi) {
      offset = this.#lo;
      for (let i = this.#lo; i <= this.#hi; i++) bucketCounts.push(this.#counts[i - this.#offset] as number);
    }
    const out: OtlpExponentialHistogram = {
      scale: this.scale,
      zeroCount: this.zeroCount,
      positive: { offset, bucketCounts },
      count: this.count,
      sum: this.sum,
      zeroThreshold: 0,
    };
    if (this.count > 0) {
      out.min = this.min;
      out.max = this.max;
    }
    return out;
  }

  /**
   * The OTLP shape with the bucket counts run-length coded: a run of k ≥ 2 empty buckets is written as `-k`. Sketches
   * of wide latency ranges are mostly empty buckets (1 ms to 200 ms is ≈ 490 buckets at scale 6), so this keeps a
   * snapshot of many routes small to send (cluster queries) and to parse. {@link fromCompact} reads it back.
   */
  toCompact(): CompactExponentialHistogram {
    const { positive, ...rest } = this.toOtlp();
    const counts: number[] = [];
    let zeros = 0;
    const flush = (): void => {
      if (zeros === 1) counts.push(0);
      else if (zeros > 1) counts.push(-zeros);
      zeros = 0;
    };
    for (const c of positive.bucketCounts) {
      if (c === 0) zeros++;
      else {
        flush();
        counts.push(c);
      }
    }
    flush();
    return { ...rest, positive: { offset: positive.offset, counts } };
  }

  /**
   * A sketch from {@link toCompact}'s shape (or from the plain OTLP shape), with the checks of {@link fromOtlp}.
   * The runs may not reach past the scale's supported bucket range, so a short input cannot expand without bound.
   */
  static fromCompact(dp: CompactExponentialHistogram | OtlpExponentialHistogram): ExpoHistogram {
    const positive = dp.positive as { offset: number; counts?: unknown; bucketCounts?: unknown };
    if (!Array.isArray(positive?.counts)) return ExpoHistogram.fromOtlp(dp as OtlpExponentialHistogram);
    const range = new ExpoHistogram({ scale: dp.scale });
    const maxLength = range.#maxIndex - range.#minIndex + 1;
    const bucketCounts: number[] = [];
    for (const c of positive.counts as unknown[]) {
      if (typeof c === 'number' && Number.isInteger(c) && c < 0) {
        if (bucketCounts.length - c > maxLength) {
          throw new RangeError(`Cannot read an exponential histogram: 'positive.counts' spans more than the ${maxLength} buckets of scale ${dp.scale}`);
        }
        for (let k = 0; k < -c; k++) bucketCounts.push(0);
      } else bucketCounts.push(c as number);
    }
    return ExpoHistogram.fromOtlp({ ...(dp as Omit<CompactExponentialHistogram, 'positive'>), positive: { offset: positive.offset, bucketCounts } });
  }

  /**
   * Builds a sketch from the OTLP shape. Checks that counts are non-negative integers and that `count` equals
   * the zero count plus the bucket counts. Missing min/max are taken from the outermost used bucket bounds.
   */
  static fromOtlp(dp: OtlpExponentialHistogram): ExpoHistogram {
    const bad = (what: string): never => {
      throw new RangeError(`Cannot read an exponential histogram: ${what}`);
    };
    const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
    if (!isCount(dp.zeroCount)) bad(`'zeroCount' must be a non-negative integer: current value is ${String(dp.zeroCount)}`);
    if (!isCount(dp.count)) bad(`'count' must be a non-negative integer: current value is ${String(dp.count)}`);
    if (!Number.isInteger(dp.positive?.offset)) bad(`'positive.offset' must be an integer: current value is ${String(dp.positive?.offset)}`);
    if (!Array.isArray(dp.positive.bucketCounts)) bad("'positive.bucketCounts' must be a list");
    const h = new ExpoHistogram({ scale: dp.scale, wide: true });
    let total = dp.zeroCount;
    const counts = dp.positive.bucketCounts;
    for (let k = 0; k < counts.length; k++) {
      const c = counts[k];
      if (!isCount(c)) bad(`'positive.bucketCounts[${k}]' must be a non-negative integer: current value is ${String(c)}`);
      total += c as number;
    }
    if (total !== dp.count) bad(`'count' ${dp.count} is not the zero count plus the bucket counts (${total})`);
    let lo = Number.MAX_SAFE_INTEGER;
    let hi = Number.MIN_SAFE_INTEGER;
    for (let k = 0; k < counts.length; k++) {
      if ((counts[k] as number) === 0) continue;
      const i = dp.positive.offset + k;
      if (i < lo) lo = i;
      if (i > hi) hi = i;
    }
    if (lo <= hi) {
      if (lo < h.#minIndex || hi > h.#maxIndex) bad(`bucket indices ${lo}..${hi} are outside the supported range ${h.#minIndex}..${h.#maxIndex}`);
      h.#ensureRange(lo, hi);
      for (let k = 0; k < counts.length; k++) {
        const c = counts[k] as number;
        if (c !== 0) h.#counts[dp.positive.offset + k - h.#offset] = c;
      }
      h.#lo = lo;
      h.#hi = hi;
    }
    h.count = dp.count;
    h.zeroCount = dp.zeroCount;
    h.sum = typeof dp.sum === 'number' && Number.isFinite(dp.sum) ? dp.sum : 0;
    if (dp.count > 0) {
      h.min = typeof dp.min === 'number' ? dp.min : dp.zeroCount > 0 ? 0 : h.lowerBound(lo);
      h.max = typeof dp.max === 'number' ? dp.max : lo <= hi ? h.upperBound(hi) : 0;
      if (h.min > h.max) bad(`'min' ${h.min} is greater than 'max' ${h.max}`);
    }
    return h;
  }

  /**
   * Makes bucket indices [a, b] addressable. The used range is centred with slack on both sides (latency tails
   * grow both ways; slack on one side only made arrays ping-pong). When the array is already long enough its
   * contents are shifted in place; otherwise a new array of 1.5 times the needed length is allocated.
   */
  #ensureRange(a: number, b: number): void {
    const len = this.#counts.length;
    if (len > 0 && a >= this.#offset && b < this.#offset + len) return;
    const used = this.#lo <= this.#hi;
    const newLo = used ? Math.min(a, this.#lo) : a;
    const newHi = used ? Math.max(b, this.#hi) : b;
    const need = newHi - newLo + 1;
    const limit = this.#maxIndex - this.#minIndex + 1;
    const cap = need <= len ? len : Math.min(limit, Math.max(32, need + (need >> 1)));
    let offset = newLo - ((cap - need) >> 1);
    if (offset < this.#minIndex) offset = this.#minIndex;
    if (offset + cap - 1 > this.#maxIndex) offset = this.#maxIndex - cap + 1;
    if (cap === len) {
      // shift in place; cells outside the used range are zero before and after
      if (used) {
        const counts = this.#counts;
        const from = this.#lo - this.#offset;
        const to = this.#lo - offset;
        const n = this.#hi - this.#lo + 1;
        counts.copyWithin(to, from, from + n);
        if (to > from) counts.fill(0, from, Math.min(to, from + n));
        else counts.fill(0, Math.max(to + n, from), from + n);
      }
      this.#offset = offset;
      return;
    }
    const cur = this.#counts;
    const next = cur instanceof Float64Array ? new Float64Array(cap) : cur instanceof Uint32Array ? new Uint32Array(cap) : new Uint16Array(cap);
    if (used) next.set(cur.subarray(this.#lo - this.#offset, this.#hi - this.#offset + 1), this.#lo - offset);
    this.#counts = next;
    this.#offset = offset;
  }

  #widen(): void {
    if (this.#counts instanceof Uint16Array) {
      this.#counts = Uint32Array.from(this.#counts);
      this.#maxCount = 0xffffffff;
    } else {
      this.#counts = Float64Array.from(this.#counts);
      this.#maxCount = Infinity;
    }
  }

  /** Bytes per bucket of the current count array: 2, 4 or 8. */
  get bytesPerBucket(): number {
    return this.#counts.BYTES_PER_ELEMENT;
  }
}
