import { expect } from 'chai';
import { ExpoHistogram } from '../pdata/expo-histogram';
import { binomialUpper, erfc, fisherGreater, logFactorial, mannWhitney, poissonRateGreater } from './stats';

describe('statistics', () => {
  it('Fisher exact test, one-sided: the lady tasting tea (3 of 4 right: p = 17/70)', () => {
    expect(fisherGreater(3, 1, 1, 3)).to.be.closeTo(17 / 70, 1e-12);
    expect(fisherGreater(4, 0, 0, 4)).to.be.closeTo(1 / 70, 1e-12);
    expect(fisherGreater(0, 4, 4, 0)).to.be.closeTo(1, 1e-12);
  });

  it('binomial upper tail and the call-rate test (exact small cases)', () => {
    expect(binomialUpper(2, 3, 0.5)).to.be.closeTo(0.5, 1e-12);
    expect(binomialUpper(10, 10, 0.5)).to.be.closeTo(1 / 1024, 1e-12);
    // 30 calls in 10 slow requests vs 10 in 10 fast: given 40 calls, P(≥ 30 of them in the slow half)
    expect(poissonRateGreater(30, 10, 10, 10)).to.be.closeTo(binomialUpper(30, 40, 0.5), 1e-15);
    expect(poissonRateGreater(30, 10, 10, 10)).to.be.closeTo(0.0011107168866146822, 1e-15); // Σ C(40, x) / 2^40, x ≥ 30
  });

  it('logFactorial and erfc against known values', () => {
    expect(logFactorial(10)).to.be.closeTo(Math.log(3628800), 1e-9);
    expect(logFactorial(200_000)).to.be.closeTo(2241221.5510813077, 1e-6); // lgamma(200001); Stirling beyond the table
    expect(erfc(0)).to.be.closeTo(1, 1e-7);
    expect(erfc(1)).to.be.closeTo(0.157299207, 1e-7);
    expect(erfc(-1)).to.be.closeTo(1.842700793, 1e-7);
  });

  it('Mann-Whitney on sketches: U by hand, and no difference between equal samples', () => {
    const a = new ExpoHistogram();
    const b = new ExpoHistogram();
    for (const v of [10, 20, 30]) a.record(v);
    for (const v of [15, 25, 35, 45]) b.record(v);
    // ranks: 10(1) 15(2) 20(3) 25(4) 30(5) 35(6) 45(7): R1 = 9, U1 = 9 − 6 = 3
    const r = mannWhitney(a, b);
    expect(r.u).to.equal(3);
    expect(r.probabilityGreater).to.be.closeTo(3 / 12, 1e-12);
    const same = mannWhitney(a, a.clone());
    expect(same.p).to.equal(1);
    const slow = new ExpoHistogram();
    const fast = new ExpoHistogram();
    for (let i = 0; i < 200; i++) {
      slow.record(100 + i);
      fast.record(50 + i / 4);
    }
    expect(mannWhitney(slow, fast).p).to.be.lessThan(1e-10);
  });
});
