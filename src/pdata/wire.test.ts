import { expect } from 'chai';
import fc from 'fast-check';
import { utf8Interned } from './wire';

describe('wire: utf8Interned', () => {
  // Short ASCII values from a small alphabet collide in the 4096-slot table and repeat often: both the
  // cached and the replaced paths are exercised, and a stale slot would show as a wrong string.
  const shortAscii = fc.uint8Array({ minLength: 0, maxLength: 50 }).map((a) => a.map((b) => 0x20 + (b % 8)));
  const anyBytes = fc.uint8Array({ minLength: 0, maxLength: 80 });

  it('decodes exactly as Buffer#toString("utf8"), for any bytes, in any order of repeats (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(shortAscii, anyBytes), { maxLength: 200 }), fc.nat(16), (values, pad) => {
        for (const v of values) {
          // At an offset inside a larger buffer, as attribute values are.
          const buf = Buffer.alloc(pad + v.length + 3, 0x41);
          buf.set(v, pad);
          expect(utf8Interned(buf, pad, pad + v.length)).to.equal(Buffer.from(v).toString('utf8'));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps returning the right value when more distinct values than slots share the table', () => {
    const values = Array.from({ length: 10_000 }, (_, i) => `/v1/items/${i}`);
    const bufs = values.map((v) => Buffer.from(`..${v}..`));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < values.length; i++) {
        const b = bufs[i] as Buffer;
        expect(utf8Interned(b, 2, b.length - 2)).to.equal(values[i]);
      }
    }
  });
});
