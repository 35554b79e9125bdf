import { expect } from 'chai';
import fc from 'fast-check';
import { clip, equalSplit, length, merge, subtract, union } from './intervals';

/** Measure of a set given as unsorted intervals, computed on a 0.5-unit grid (inputs are multiples of 0.5). */
function gridMeasure(intervals: readonly number[], from = -Infinity, to = Infinity): number {
  const covered = new Set<number>();
  for (let i = 0; i < intervals.length; i += 2) {
    for (let x = intervals[i] as number; x < (intervals[i + 1] as number); x += 0.5) if (x >= from && x < to) covered.add(x);
  }
  return covered.size * 0.5;
}

const halfInt = fc.integer({ min: 0, max: 80 }).map((n) => n / 2);
const intervalList = fc.array(fc.tuple(halfInt, halfInt), { maxLength: 8 }).map((pairs) => pairs.flatMap(([a, b]) => [a, b]));

describe('intervals', () => {
  it('union: overlapping and touching intervals merge, empty and inverted ones vanish', () => {
    expect(union([10, 20, 15, 30, 30, 35, 50, 40, 60, 60, 0, 5])).to.deep.equal([0, 5, 10, 35]);
    expect(length(union([200, 300, 100, 250]))).to.equal(200); // Elastic's union example
  });

  it('clip, subtract and merge (known answers)', () => {
    expect(clip([0, 10, 20, 30], 5, 25)).to.deep.equal([5, 10, 20, 25]);
    expect(subtract([0, 100], [10, 20, 30, 40])).to.deep.equal([0, 10, 20, 30, 40, 100]);
    expect(subtract([0, 10, 20, 30], [5, 25])).to.deep.equal([0, 5, 25, 30]);
    expect(merge([0, 10], [5, 20, 30, 40])).to.deep.equal([0, 20, 30, 40]);
  });

  it('union measures what a grid count measures (property)', () => {
    fc.assert(
      fc.property(intervalList, (iv) => {
        expect(length(union(iv))).to.equal(gridMeasure(iv));
      }),
    );
  });

  it('subtract: |a ∖ b| = |a| − |a ∩ b| (property)', () => {
    fc.assert(
      fc.property(intervalList, intervalList, (a, b) => {
        const ua = union(a);
        const ub = union(b);
        const inter = length(ua) + length(ub) - length(merge(ua, ub));
        expect(length(subtract(ua, ub))).to.be.closeTo(length(ua) - inter, 1e-9);
      }),
    );
  });

  it('equalSplit: Datadog example — overlapping sets share equally, shares and rest add up to the window', () => {
    // A [10,60), B [20,80) over [0,100): A alone 10, both 40 (20 each), B alone 20; rest 30
    const { shares, rest } = equalSplit(
      [
        [10, 60],
        [20, 80],
      ],
      0,
      100,
    );
    expect(shares).to.deep.equal([30, 40]);
    expect(rest).to.equal(30);
  });

  it('equalSplit: shares + rest = window, and each share ≤ its clipped measure (property)', () => {
    fc.assert(
      fc.property(fc.array(intervalList, { maxLength: 4 }), halfInt, halfInt, (sets, a, b) => {
        const from = Math.min(a, b);
        const to = Math.max(a, b);
        const unions = sets.map((s) => union(s));
        const { shares, rest } = equalSplit(unions, from, to);
        expect(shares.reduce((x, y) => x + y, 0) + rest).to.be.closeTo(to - from, 1e-9);
        unions.forEach((u, i) => expect(shares[i]).to.be.at.most(length(clip(u, from, to)) + 1e-9));
      }),
    );
  });
});
