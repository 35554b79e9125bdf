import { expect } from 'chai';
import fc from 'fast-check';
import { utf8Interned, utf8Key } from './wire';

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

describe('wire: utf8Key', () => {
  // Keys of one length sharing their sampled bytes land in one slot: "net.peer.port" and "net.host.port" differ
  // only where the slot does not look.
  const keyLike = fc
    .tuple(fc.constantFrom('net.', 'http.', 'db.', 'k8s.'), fc.uint8Array({ minLength: 0, maxLength: 12 }), fc.constantFrom('.port', '.name', ''))
    .map(([a, mid, b]) => Buffer.concat([Buffer.from(a), Buffer.from(mid.map((x) => 0x61 + (x % 4))), Buffer.from(b)]));
  const anyBytes = fc.uint8Array({ minLength: 0, maxLength: 80 }).map((a) => Buffer.from(a));

  it('decodes exactly as Buffer#toString("utf8"), for keys that collide in the table and for any bytes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(keyLike, anyBytes), { maxLength: 200 }), fc.nat(16), (values, pad) => {
        for (const v of values) {
          const buf = Buffer.alloc(pad + v.length + 3, 0x41);
          buf.set(v, pad);
          expect(utf8Key(buf, pad, pad + v.length)).to.equal(v.toString('utf8'));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('net.peer.port and net.host.port, alternating, each read as itself', () => {
    const a = Buffer.from('net.peer.port');
    const b = Buffer.from('net.host.port');
    for (let i = 0; i < 10; i++) {
      expect(utf8Key(a, 0, a.length)).to.equal('net.peer.port');
      expect(utf8Key(b, 0, b.length)).to.equal('net.host.port');
    }
  });
});
