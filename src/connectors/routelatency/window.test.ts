import { expect } from 'chai';
import { formatDuration, planSlots, SlotRing, slotSizeFor, WindowAggregate } from './window';
import type { Exemplar } from './exemplar';
import { MutableSpan, spanIdOf, traceIdOf } from '../../../test/support/route-spans';

describe('slot planning', () => {
  it('default windows [1m, 5m, 15m, 1h] → 10 s × 30 and 1 min × 60', () => {
    const plan = planSlots([60_000, 300_000, 900_000, 3_600_000]);
    expect(plan.tiers).to.deep.equal([
      { slotMs: 10_000, slots: 30 },
      { slotMs: 60_000, slots: 60 },
    ]);
    expect(plan.windows.map((w) => [w.tier, w.slots])).to.deep.equal([
      [0, 6],
      [0, 30],
      [1, 15],
      [1, 60],
    ]);
  });

  it('rejects windows that are too short, too long or not a multiple of a slot', () => {
    expect(slotSizeFor(5000)).to.be.a('string').that.includes('at least 10s');
    expect(slotSizeFor(25_000)).to.be.a('string').that.includes('multiple of 10s');
    expect(slotSizeFor(61 * 3_600_000))
      .to.be.a('string')
      .that.includes('at most 60h');
    expect(slotSizeFor(24 * 3_600_000)).to.equal(3_600_000);
    expect(() => planSlots([60_000, 25_000])).to.throw(RangeError, 'Cannot plan window 25s');
  });

  it('formats durations the way they are configured', () => {
    expect([60_000, 300_000, 3_600_000, 90_000, 5_400_000, 500, 0].map(formatDuration)).to.deep.equal(['1m', '5m', '1h', '1m30s', '1h30m', '500ms', '0s']);
  });
});

describe('SlotRing', () => {
  const span = new MutableSpan();

  function window(ring: SlotRing, from: number, to: number): WindowAggregate {
    const agg = new WindowAggregate();
    for (let p = from; p <= to; p++) ring.addPeriodTo(p, agg);
    return agg;
  }

  it('keeps the last `length` periods and recycles older slots', () => {
    const ring = new SlotRing(10_000, 3, 0);
    for (let s = 0; s < 5; s++) for (let i = 0; i <= s; i++) ring.record(s * 10_000 + i, 1 + s, false, 1, span);
    // periods 2, 3, 4 survive, with 3, 4, 5 values
    expect(window(ring, 0, 4).sketch.count).to.equal(3 + 4 + 5);
    expect(window(ring, 0, 1).sketch.count).to.equal(0);
    expect(window(ring, 4, 4).sketch.count).to.equal(5);
    expect(ring.hasDataIn(0, 1)).to.equal(false);
    expect(ring.hasDataIn(4, 4)).to.equal(true);
  });

  it('counts errors and status classes per slot', () => {
    const ring = new SlotRing(10_000, 6, 0);
    ring.record(0, 5, false, 1, span);
    ring.record(1, 5, true, 4, span);
    ring.record(2, 5, true, -1, span);
    ring.record(3, 5, false, 3, span);
    const agg = window(ring, 0, 0);
    expect(agg.errors).to.equal(2);
    expect(agg.status).to.deep.equal([0, 1, 0, 1, 1]);
  });

  it('keeps the k slowest spans of a slot as exemplars, resetting them when the slot is reused', () => {
    const ring = new SlotRing(10_000, 2, 2);
    const values = [5, 50, 7, 40, 60, 1];
    values.forEach((v, i) => {
      span.traceId = traceIdOf(v);
      span.spanId = spanIdOf(v);
      span.endTimeMs = 1000 + i;
      ring.record(i, v, false, 1, span);
    });
    const out: Exemplar[] = [];
    ring.exemplarsOf(0, out);
    expect(out.map((e) => e.valueMs).sort((a, b) => a - b)).to.deep.equal([50, 60]);
    expect(out.find((e) => e.valueMs === 60)).to.deep.equal({ traceId: traceIdOf(60), spanId: spanIdOf(60), valueMs: 60, timeMs: 1004 });
    ring.record(20_000, 3, false, 1, span); // period 2 reuses position 0
    const later: Exemplar[] = [];
    ring.exemplarsOf(0, later);
    ring.exemplarsOf(2, later);
    expect(later.map((e) => e.valueMs)).to.deep.equal([3]);
  });

  it('memory grows with recorded sketches and exemplars', () => {
    const ring = new SlotRing(10_000, 30, 2);
    const empty = ring.memoryBytes();
    for (let i = 0; i < 300; i++) ring.record(i * 1000, 1 + (i % 50), false, 1, span);
    expect(ring.memoryBytes()).to.be.greaterThan(empty);
  });
});
