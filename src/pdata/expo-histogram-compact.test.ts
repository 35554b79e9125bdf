/** ExpoHistogram.toCompact / fromCompact: the run-length coded OTLP shape reads back to the same sketch. */
import { expect } from 'chai';
import fc from 'fast-check';
import { runs } from '../../test/support/otlp-arbitraries';
import { ExpoHistogram } from './expo-histogram';

describe('pdata: ExpoHistogram compact shape', () => {
  it('reads back to the same sketch, never larger than the OTLP shape', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: 0.001, max: 1e6, noNaN: true }), fc.constant(0)), { maxLength: 300 }), (values) => {
        const h = new ExpoHistogram();
        for (const v of values) h.record(v);
        const compact = h.toCompact();
        expect(ExpoHistogram.fromCompact(JSON.parse(JSON.stringify(compact))).toOtlp()).to.deep.equal(h.toOtlp());
        expect(compact.positive.counts.length).to.be.at.most(h.toOtlp().positive.bucketCounts.length);
        // the plain OTLP shape is accepted too (snapshots of older versions)
        expect(ExpoHistogram.fromCompact(h.toOtlp()).toOtlp()).to.deep.equal(h.toOtlp());
      }),
      { numRuns: runs(300) },
    );
  });

  it('codes runs of empty buckets as negative lengths', () => {
    const h = new ExpoHistogram();
    for (const v of [1, 1.02, 2, 200]) h.record(v);
    const counts = h.toCompact().positive.counts;
    expect(counts.filter((c) => c > 0).reduce((a, b) => a + b, 0)).to.equal(4);
    expect(counts.some((c) => c < -100)).to.equal(true);
    expect(() => ExpoHistogram.fromCompact({ ...h.toCompact(), count: 5 })).to.throw(RangeError);
  });

  it("refuses runs that reach past the scale's bucket range instead of expanding them", () => {
    const one = new ExpoHistogram();
    one.record(1);
    const dp = one.toCompact();
    // 56 octaves × 64 buckets at scale 6: a run of 4000 empty buckets cannot be in a sketch of this scale.
    expect(() => ExpoHistogram.fromCompact({ ...dp, positive: { offset: dp.positive.offset, counts: [-4000, 1] } })).to.throw(RangeError, /3584 buckets/);
    expect(() => ExpoHistogram.fromCompact({ ...dp, positive: { offset: dp.positive.offset, counts: [-(2 ** 40), 1] } })).to.throw(RangeError);
  });
});
