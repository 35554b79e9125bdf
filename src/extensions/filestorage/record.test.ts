import { expect } from 'chai';
import fc from 'fast-check';
import * as zlib from 'node:zlib';
import { crc32, crc32Fallback } from './crc32';
import { HEADER_BYTES, encodeRecord, scanRecords } from './record';

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).to.equal(0xcbf43926);
    expect(crc32Fallback(Buffer.from('123456789'))).to.equal(0xcbf43926);
  });

  it('the table fallback equals zlib.crc32, also when continued across chunks', () => {
    const native = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const whole = Buffer.concat([a, b]);
        expect(crc32Fallback(b, crc32Fallback(a))).to.equal(crc32Fallback(whole));
        if (native !== undefined) expect(crc32Fallback(whole)).to.equal(native(whole) >>> 0);
      }),
    );
  });
});

describe('scanRecords', () => {
  const payloads = fc.array(fc.uint8Array({ minLength: 0, maxLength: 200 }), { minLength: 1, maxLength: 8 });

  it('reads back every record of an intact segment', () => {
    fc.assert(
      fc.property(payloads, (ps) => {
        const seg = Buffer.concat(ps.map((p, i) => encodeRecord(100 + i, i * 3, p)));
        const { records, corrupt } = scanRecords(seg);
        expect(corrupt).to.equal(0);
        expect(records.map((r) => [r.seq, r.items, r.length])).to.deep.equal(ps.map((p, i) => [100 + i, i * 3, HEADER_BYTES + p.length]));
      }),
    );
  });

  it('damage inside one record loses only that record, and is counted once', () => {
    fc.assert(
      fc.property(payloads, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (ps, which, where, xor) => {
        const recs = ps.map((p, i) => encodeRecord(i, 1, p));
        const victim = which % recs.length;
        const r = recs[victim] as Buffer;
        const at = where % r.length;
        r.writeUInt8((r.readUInt8(at) ^ xor) & 0xff, at);
        const { records, corrupt } = scanRecords(Buffer.concat(recs));
        expect(corrupt).to.equal(1);
        expect(records.map((x) => x.seq)).to.deep.equal(ps.map((_, i) => i).filter((i) => i !== victim));
      }),
    );
  });

  it('a torn tail loses only the last record', () => {
    fc.assert(
      fc.property(payloads, fc.nat(), (ps, cut) => {
        const seg = Buffer.concat(ps.map((p, i) => encodeRecord(i, 1, p)));
        const last = HEADER_BYTES + (ps[ps.length - 1] as Uint8Array).length;
        const keep = seg.length - 1 - (cut % (last - 1)); // cut 1 to last-1 bytes: part of the last record stays
        const { records, corrupt } = scanRecords(seg.subarray(0, keep));
        expect(corrupt).to.equal(1);
        expect(records).to.have.length(ps.length - 1);
      }),
    );
  });
});
