import { expect } from 'chai';
import fc from 'fast-check';
import { ExpoHistogram, rankFor, relativeErrorAtScale, SKETCH_SCALE } from './expo-histogram';
import type { OtlpExponentialHistogram } from './expo-histogram';
import { distributions, exactQuantile, rng } from '../../test/support/route-spans';

const QS = [0.5, 0.9, 0.95, 0.99, 0.999];
const REL = relativeErrorAtScale(SKETCH_SCALE);

function sketchOf(values: readonly number[]): ExpoHistogram {
  const h = new ExpoHistogram();
  for (const v of values) h.record(v);
  return h;
}

const positive = fc.double({ min: Math.pow(2, -20), max: Math.pow(2, 36), noNaN: true, noDefaultInfinity: true });
const duration = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 8, arbitrary: fc.double({ min: 1e-6, max: 1e9, noNaN: true, noDefaultInfinity: true }) },
  // narrow ranges exercise dense neighbouring buckets
  { weight: 8, arbitrary: fc.double({ min: 10, max: 12, noNaN: true, noDefaultInfinity: true }) },
);

describe('ExpoHistogram', () => {
  describe('accuracy', () => {
    it('scale 6 has a worst-case relative error of 0.54 % (below the 1 % target)', () => {
      expect(REL).to.be.closeTo(0.005415, 1e-6);
      expect(relativeErrorAtScale(5)).to.be.greaterThan(0.01); // scale 5 would not do
    });

    for (const [name, draw] of Object.entries(distributions)) {
      for (const n of [1000, 20_000]) {
        it(`${name}, ${n} values: p50/p90/p95/p99/p99.9 within 1 % of the exact nearest-rank percentiles`, () => {
          const r = rng(n + name.length);
          const values = Array.from({ length: n }, () => draw(r));
          const h = sketchOf(values);
          const sorted = [...values].sort((a, b) => a - b);
          for (const q of QS) {
            const exact = exactQuantile(sorted, q);
            const got = h.quantile(q);
            const err = Math.abs(got - exact) / exact;
            expect(err, `q=${q} exact=${exact} got=${got}`).to.be.at.most(0.01);
            expect(err, `q=${q}: the bucket bound`).to.be.at.most(REL + 1e-12);
          }
          expect(h.count).to.equal(n);
          expect(h.min).to.equal(sorted[0]);
          expect(h.max).to.equal(sorted[n - 1]);
          expect(h.sum).to.be.closeTo(
            values.reduce((a, b) => a + b, 0),
            1e-9 * h.sum,
          );
        });
      }
    }

    it('a constant distribution returns the constant exactly for every quantile', () => {
      const h = sketchOf(Array.from({ length: 5000 }, () => 42));
      for (const q of [0, 0.01, 0.5, 0.99, 1]) expect(h.quantile(q)).to.equal(42);
    });

    it('quantile(0) is the exact min and quantile(1) the exact max', () => {
      const h = sketchOf([3.3, 7.1, 100.25, 0.5]);
      expect(h.quantile(0)).to.equal(0.5);
      expect(h.quantile(1)).to.equal(100.25);
    });

    it('quantiles() agrees with quantile() for every q, in any order', () => {
      const r = rng(7);
      const h = sketchOf(Array.from({ length: 3000 }, () => distributions.bimodal!(r)));
      const qs = [0.99, 0.1, 0.5, 0.999, 0, 1, 0.9, 0.5];
      expect(h.quantiles(qs)).to.deep.equal(qs.map((q) => h.quantile(q)));
    });

    it('property: every positive value is represented within 0.55 % (≤ 1 %)', () => {
      fc.assert(
        fc.property(positive, (v) => {
          const h = new ExpoHistogram();
          const rep = h.representative(h.indexOf(v));
          const err = Math.abs(rep - v) / v;
          return err <= REL + 1e-12 && v > h.lowerBound(h.indexOf(v)) * (1 - 1e-12) && v <= h.upperBound(h.indexOf(v)) * (1 + 1e-12);
        }),
        { numRuns: 5000 },
      );
    });

    it('property: every quantile of any multiset is within 1 % of the exact nearest-rank value', () => {
      fc.assert(
        fc.property(fc.array(positive, { minLength: 1, maxLength: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (values, q) => {
          const h = sketchOf(values);
          const exact = exactQuantile(
            [...values].sort((a, b) => a - b),
            q,
          );
          return Math.abs(h.quantile(q) - exact) / exact <= 0.01;
        }),
        { numRuns: 500 },
      );
    });

    it('property: quantile is monotone in q', () => {
      fc.assert(
        fc.property(
          fc.array(duration, { minLength: 1, maxLength: 300 }),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 20 }),
          (values, qs) => {
            const h = sketchOf(values);
            const sortedQ = [...qs].sort((a, b) => a - b);
            const out = sortedQ.map((q) => h.quantile(q));
            return out.every((v, i) => i === 0 || v >= (out[i - 1] as number));
          },
        ),
        { numRuns: 500 },
      );
    });
  });

  describe('rankFor', () => {
    it('is the nearest rank max(1, ceil(q·n)) without floating-point overshoot', () => {
      expect(rankFor(0.7, 10)).to.equal(7); // 0.7 * 10 = 7.000000000000001
      expect(rankFor(0.5, 3)).to.equal(2);
      expect(rankFor(0, 10)).to.equal(1);
      expect(rankFor(1, 10)).to.equal(10);
      expect(rankFor(0.999, 1000)).to.equal(999);
      expect(rankFor(0.999, 1001)).to.equal(1000);
    });
  });

  describe('zero bucket and odd input', () => {
    it('counts 0 and negative durations as 0 and ignores NaN', () => {
      const h = sketchOf([0, -5, 2, NaN]);
      expect(h.count).to.equal(3);
      expect(h.zeroCount).to.equal(2);
      expect(h.min).to.equal(0);
      expect(h.max).to.equal(2);
      expect(h.quantile(0.5)).to.equal(0);
      expect(h.toOtlp().zeroCount).to.equal(2);
    });

    it('clamps far-out values into the edge buckets but keeps min/max exact', () => {
      const h = sketchOf([1e-12, 1e15]);
      expect(h.min).to.equal(1e-12);
      expect(h.max).to.equal(1e15);
      expect(h.capacity).to.be.at.most(56 * 64);
      expect(h.quantile(0)).to.equal(1e-12);
      expect(h.quantile(1)).to.equal(1e15);
    });

    it('an empty sketch has NaN quantiles and no min/max in OTLP', () => {
      const h = new ExpoHistogram();
      expect(Number.isNaN(h.quantile(0.5))).to.equal(true);
      const dp = h.toOtlp();
      expect(dp).to.deep.equal({ scale: 6, zeroCount: 0, positive: { offset: 0, bucketCounts: [] }, count: 0, sum: 0, zeroThreshold: 0 });
    });

    it('rejects q outside [0, 1] and bad scales', () => {
      expect(() => new ExpoHistogram().quantile(1.5)).to.throw(RangeError, "'q' must be in [0, 1]");
      expect(() => new ExpoHistogram().quantile(NaN)).to.throw(RangeError);
      expect(() => new ExpoHistogram({ scale: 21 })).to.throw(RangeError, "'scale' must be an integer");
    });
  });

  describe('merge', () => {
    it('property: merge(sketch(A), sketch(B)) equals sketch(A ∪ B) exactly (sum up to rounding)', () => {
      fc.assert(
        fc.property(fc.array(duration, { maxLength: 200 }), fc.array(duration, { maxLength: 200 }), (a, b) => {
          const merged = sketchOf(a);
          merged.merge(sketchOf(b));
          const direct = sketchOf([...a, ...b]);
          const m = merged.toOtlp();
          const d = direct.toOtlp();
          expect(m.count).to.equal(d.count);
          expect(m.zeroCount).to.equal(d.zeroCount);
          expect(m.min).to.equal(d.min);
          expect(m.max).to.equal(d.max);
          expect(m.positive).to.deep.equal(d.positive);
          expect(m.sum).to.be.closeTo(d.sum, 1e-9 * Math.max(1, d.sum));
        }),
        { numRuns: 500 },
      );
    });

    it('counts start as uint16 and widen to uint32 before a bucket overflows', () => {
      const h = new ExpoHistogram();
      for (let i = 0; i < 70_000; i++) h.record(7);
      h.record(8);
      expect(h.bytesPerBucket).to.equal(4);
      expect(h.toOtlp().positive.bucketCounts.filter((c) => c > 0)).to.deep.equal([70_000, 1]);
      expect(h.quantile(0.5)).to.equal(7);
    });

    it('merging past uint32 widens to float64', () => {
      const big = ExpoHistogram.fromOtlp({
        scale: 6,
        zeroCount: 0,
        positive: { offset: 10, bucketCounts: [3_000_000_000] },
        count: 3_000_000_000,
        sum: 1,
        min: 1,
        max: 1.2,
      });
      const h = new ExpoHistogram();
      h.merge(big);
      h.merge(big);
      expect(h.toOtlp().positive.bucketCounts).to.deep.equal([6_000_000_000]);
      expect(h.count).to.equal(6_000_000_000);
      expect(h.bytesPerBucket).to.equal(8);
    });

    it('refuses to merge different scales; downscaled() makes them compatible exactly', () => {
      const a = sketchOf([1, 2, 3, 50]);
      const coarse = new ExpoHistogram({ scale: 3 });
      coarse.record(7);
      expect(() => coarse.merge(a)).to.throw(RangeError, 'different scales');
      const down = a.downscaled(3);
      coarse.merge(down);
      const direct = new ExpoHistogram({ scale: 3 });
      for (const v of [1, 2, 3, 50, 7]) direct.record(v);
      expect(coarse.toOtlp().positive).to.deep.equal(direct.toOtlp().positive);
    });

    it('property: a reused sketch (reset, then values in another range) equals a fresh one', () => {
      const batch = fc
        .tuple(fc.double({ min: 0.001, max: 1e6, noNaN: true }), fc.array(fc.double({ min: 0.2, max: 5, noNaN: true }), { minLength: 1, maxLength: 60 }))
        .map(([centre, factors]) => factors.map((f) => centre * f));
      fc.assert(
        fc.property(fc.array(batch, { minLength: 1, maxLength: 8 }), (batches) => {
          const reused = new ExpoHistogram();
          for (const values of batches) {
            reused.reset();
            for (const v of values) reused.record(v);
            expect(reused.toOtlp()).to.deep.equal(sketchOf(values).toOtlp());
          }
        }),
        { numRuns: 300 },
      );
    });

    it('reset() empties the sketch and reuses its array for values elsewhere', () => {
      const h = sketchOf([10, 11, 12]);
      const cap = h.capacity;
      h.reset();
      expect(h.count).to.equal(0);
      h.record(1000);
      expect(h.capacity).to.equal(cap);
      expect(h.toOtlp().positive.bucketCounts).to.deep.equal([1]);
      expect(h.quantile(0.5)).to.equal(1000);
    });
  });

  describe('OTLP shape', () => {
    it('round-trips through toOtlp/fromOtlp', () => {
      fc.assert(
        fc.property(fc.array(duration, { minLength: 1, maxLength: 200 }), (values) => {
          const h = sketchOf(values);
          const back = ExpoHistogram.fromOtlp(h.toOtlp());
          expect(back.toOtlp()).to.deep.equal(h.toOtlp());
          expect(back.quantile(0.9)).to.equal(h.quantile(0.9));
        }),
        { numRuns: 200 },
      );
    });

    it('bucket i of the export covers (base^i, base^(i+1)] with base 2^(1/64)', () => {
      const h = sketchOf([1, 2, 1.0000001]);
      const dp = h.toOtlp();
      // 1 = 2^0 is the upper bound of bucket -1; 2 is the upper bound of bucket 63; 1.0000001 is in bucket 0
      expect(dp.positive.offset).to.equal(-1);
      expect(dp.positive.bucketCounts[0]).to.equal(1);
      expect(dp.positive.bucketCounts[1]).to.equal(1);
      expect(dp.positive.bucketCounts[64]).to.equal(1);
      expect(dp.positive.bucketCounts.length).to.equal(65);
    });

    it('fromOtlp validates counts and fills missing min/max from bucket bounds', () => {
      const ok: OtlpExponentialHistogram = { scale: 6, zeroCount: 1, positive: { offset: 0, bucketCounts: [2, 0, 1] }, count: 4, sum: 3 };
      const h = ExpoHistogram.fromOtlp(ok);
      expect(h.min).to.equal(0);
      expect(h.max).to.be.closeTo(Math.pow(2, 3 / 64), 1e-12);
      expect(() => ExpoHistogram.fromOtlp({ ...ok, count: 5 })).to.throw(RangeError, "'count' 5 is not the zero count plus the bucket counts (4)");
      expect(() => ExpoHistogram.fromOtlp({ ...ok, positive: { offset: 0, bucketCounts: [1.5] } })).to.throw(RangeError, 'bucketCounts[0]');
      expect(() => ExpoHistogram.fromOtlp({ ...ok, zeroCount: -1 })).to.throw(RangeError, "'zeroCount'");
    });
  });

  describe('countsAtOrBelow', () => {
    it('property: off only by values within one bucket width of each bound', () => {
      const width = Math.pow(2, 1 / 64) - 1;
      fc.assert(
        fc.property(
          fc.array(fc.double({ min: 0.01, max: 20_000, noNaN: true }), { minLength: 1, maxLength: 300 }),
          fc.array(fc.double({ min: 0.001, max: 30_000, noNaN: true }), { minLength: 1, maxLength: 16 }),
          (values, rawBounds) => {
            const bounds = [...rawBounds].sort((a, b) => a - b);
            const h = sketchOf(values);
            const got = h.countsAtOrBelow(bounds);
            const countLe = (x: number): number => values.filter((v) => v <= x).length;
            return bounds.every((b, k) => {
              const c = got[k] as number;
              return countLe(b / (1 + width)) <= c && c <= countLe(b * (1 + width)) && (k === 0 || c >= (got[k - 1] as number));
            });
          },
        ),
        { numRuns: 300 },
      );
    });

    it('is exact for the spanmetrics default buckets when no value is near a bound', () => {
      const bounds = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000];
      const values = [1, 3, 3.5, 5, 7, 9, 20, 70, 150, 300, 600, 900, 1200, 1700, 3000, 7000, 12000, 20000];
      const h = sketchOf(values);
      expect(h.countsAtOrBelow(bounds)).to.deep.equal(bounds.map((b) => values.filter((v) => v <= b).length));
    });

    it('rejects unsorted bounds', () => {
      expect(() => sketchOf([1]).countsAtOrBelow([5, 1])).to.throw(RangeError, 'ascending');
    });
  });

  describe('memory', () => {
    it('grows the bucket array only over the octaves used', () => {
      const r = rng(3);
      const h = new ExpoHistogram();
      for (let i = 0; i < 100_000; i++) h.record(50 * Math.exp(0.3 * (r() - 0.5))); // within ~0.43 octaves
      expect(h.capacity).to.be.lessThan(80);
      expect(h.memoryBytes()).to.be.lessThan(600);
    });
  });
});
