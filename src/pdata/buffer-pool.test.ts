import { expect } from 'chai';
import fc from 'fast-check';
import { BufferPool, type BufferLease } from './buffer-pool';

describe('BufferPool', () => {
  it('never hands out bytes that are still leased, whatever the order of acquire, retain and release (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('acquire' as const), size: fc.integer({ min: 0, max: 300_000 }) }),
      fc.record({ kind: fc.constant('retain' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('release' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const pool = new BufferPool({ maxIdleBytes: 4 * 1024 * 1024, poison: true });
        const live: { lease: BufferLease; mark: number; refs: number }[] = [];
        let mark = 0;
        for (const o of ops) {
          if (o.kind === 'acquire') {
            const lease = pool.acquire(o.size);
            expect(lease.bytes.length).to.equal(o.size);
            mark = (mark + 1) & 0xff;
            lease.bytes.fill(mark);
            live.push({ lease, mark, refs: 1 });
          } else if (live.length > 0) {
            const i = o.at % live.length;
            const l = live[i]!;
            if (o.kind === 'retain') {
              l.lease.retain();
              l.refs++;
            } else {
              l.lease.release();
              if (--l.refs === 0) live.splice(i, 1);
            }
          }
          // Every byte of every live lease still holds what its owner wrote.
          for (const l of live) expect(l.lease.bytes.every((b) => b === l.mark)).to.equal(true);
          expect(pool.outstanding).to.equal(live.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reuses released buffers, poisons them, keeps at most maxIdleBytes idle, and drops them on request', () => {
    const pool = new BufferPool({ maxIdleBytes: 256 * 1024, poison: true });
    const a = pool.acquire(100_000);
    const whole = a.bytes.buffer;
    a.bytes.fill(1);
    a.release();
    expect(pool.idleBytes).to.equal(128 * 1024);
    expect(new Uint8Array(whole, 0, 16).every((b) => b === 0xee)).to.equal(true);
    const b = pool.acquire(110_000);
    expect(b.bytes.buffer).to.equal(whole);
    expect([pool.hits, pool.misses]).to.deep.equal([1, 1]);
    const many = [pool.acquire(200_000), pool.acquire(200_000), pool.acquire(200_000)];
    for (const l of many) l.release();
    expect(pool.idleBytes).to.be.at.most(256 * 1024);
    b.release();
    expect(pool.idleBytes).to.be.greaterThan(0);
    pool.dropIdle();
    expect(pool.idleBytes).to.equal(0);
    expect(pool.acquire(110_000).bytes.buffer).to.not.equal(whole);
  });

  it('holds a request in the smallest class of 4 KiB × 2^n or 6 KiB × 2^n that fits it', () => {
    const pool = new BufferPool();
    const held = (n: number): number => pool.acquire(n).bytes.buffer.byteLength;
    expect([0, 1, 4096, 4097, 5_500, 6144, 6145, 49_000, 70_000, 100_000, 250_000, 4_000_000, 16 * 1024 * 1024].map(held)).to.deep.equal([
      4096, 4096, 4096, 6144, 6144, 6144, 8192, 49_152, 98_304, 131_072, 262_144, 4_194_304, 16_777_216,
    ]);
    // A released buffer goes back to its own class.
    const l = pool.acquire(5_500);
    l.release();
    expect(pool.acquire(6000).bytes.buffer).to.equal(l.bytes.buffer);
  });

  it('refuses a release without a matching retain, and a retain after the last release', () => {
    const pool = new BufferPool();
    const l = pool.acquire(10);
    l.retain();
    l.release();
    l.release();
    expect(() => l.release()).to.throw(/released more often/);
    expect(() => l.retain()).to.throw(/after its last release/);
  });

  it('gives requests larger than the biggest class a buffer of their own, never pooled', () => {
    const pool = new BufferPool();
    const big = pool.acquire(17 * 1024 * 1024);
    big.release();
    expect(pool.idleBytes).to.equal(0);
  });

  it('gather: a lease on exactly the concatenation of the chunks, also in a reused buffer (property)', () => {
    const pool = new BufferPool({ poison: true });
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40_000 }), { maxLength: 8 }), (chunks) => {
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const lease = pool.gather(chunks, total);
        expect(Buffer.from(lease.bytes).equals(Buffer.concat(chunks))).to.equal(true);
        lease.release();
      }),
      { numRuns: 100 },
    );
  });
});
