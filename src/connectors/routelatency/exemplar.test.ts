import { expect } from 'chai';
import { ID_BYTES, KeptExemplar } from './exemplar';
import { copyHexIds } from './span-input';
import { MutableSpan, rng } from '../../../test/support/route-spans';

const randomHex = (next: () => number, digits: number): string => Array.from({ length: digits }, () => Math.floor(next() * 16).toString(16)).join('');

describe('KeptExemplar', () => {
  it('reads back the ids and values it took, over random ids, and survives a plain-data round trip', () => {
    const next = rng(7);
    const span = new MutableSpan();
    const kept = new KeptExemplar(); // one object reused, as the slots and buckets reuse theirs
    for (let i = 0; i < 300; i++) {
      span.traceId = randomHex(next, 32);
      span.spanId = randomHex(next, 16);
      span.endTimeMs = Math.floor(next() * 2e12);
      const valueMs = next() * 1000;
      expect(kept.take(span, valueMs)).to.equal(true);
      const plain = { traceId: span.traceId, spanId: span.spanId, valueMs, timeMs: span.endTimeMs };
      expect(kept.plain()).to.deep.equal(plain);
      expect(new KeptExemplar().assign(kept.plain()).plain()).to.deep.equal(plain);
    }
  });

  it('a span without full ids is not taken and leaves the exemplar as it was', () => {
    const span = new MutableSpan();
    const kept = new KeptExemplar();
    expect(kept.take(span, 5)).to.equal(true);
    const before = kept.plain();
    for (const [traceId, spanId] of [
      ['', span.spanId],
      [span.traceId, ''],
      ['zz'.repeat(16), span.spanId],
      [span.traceId.slice(2), span.spanId],
    ] as const) {
      const odd = new MutableSpan();
      odd.traceId = traceId;
      odd.spanId = spanId;
      odd.endTimeMs = 99;
      expect(kept.take(odd, 7), `${traceId}/${spanId}`).to.equal(false);
      expect(kept.plain()).to.deep.equal(before);
    }
  });

  it('copyHexIds writes the trace id then the span id', () => {
    const into = new Uint8Array(ID_BYTES);
    expect(copyHexIds('0102030405060708090a0b0c0d0e0f10', 'a1a2a3a4a5a6a7a8', into)).to.equal(true);
    expect(Buffer.from(into).toString('hex')).to.equal('0102030405060708090a0b0c0d0e0f10a1a2a3a4a5a6a7a8');
  });
});
