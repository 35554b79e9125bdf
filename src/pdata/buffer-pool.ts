/**
 * Reusable buffers for received requests.
 *
 * Buffers live outside the V8 heap, and V8 schedules full garbage collections by the external memory allocated
 * since the last one, so a fresh buffer per request meant frequent full collections under load. A pooled buffer
 * is allocated once and reused, so steady traffic allocates (almost) no external memory
 * (docs/decisions/0006-buffer-pool.md).
 *
 * Ownership is counted: the receiver holds a lease while the pipeline runs; whatever keeps the bytes after the
 * pipeline returns (an exporter's queue holding slices of them) retains the lease and releases it when done. A
 * lease nobody releases is simply garbage-collected with its buffer; only a release while the bytes are still in
 * use would be wrong, so releases happen at the points where the bytes are provably done with (see TraceBatch
 * `retainBytes` and QueuedSender). With ROUTELENS_POOL_POISON=1 (set for the tests) a released buffer is filled with
 * 0xEE, so a too-early release corrupts data visibly instead of silently.
 */

/**
 * Pooled size classes: every power of two from 4 KiB to 16 MiB and the midpoint 1.5× above each (4, 6, 8, 12, 16,
 * 24 KiB, …), so a buffer is at most a third larger than its request. A request waiting in an exporter's sending
 * queue holds its buffer: with power-of-two classes from 64 KiB, a 5 KiB request held 64 KiB and a 48 KiB one
 * 64 KiB. Larger requests get a buffer of their own.
 */
const CLASS_SIZES: readonly number[] = (() => {
  const sizes: number[] = [];
  for (let p = 12; p <= 24; p++) sizes.push(1 << p, 3 << (p - 1));
  return sizes.filter((n) => n <= 1 << 24);
})();

/** The index of the smallest class holding `length` bytes, or -1 when none does. */
function classOf(length: number): number {
  for (let i = 0; i < CLASS_SIZES.length; i++) if ((CLASS_SIZES[i] as number) >= length) return i;
  return -1;
}

export class BufferLease {
  /** The leased bytes (exactly the requested length). */
  readonly bytes: Buffer;
  #refs = 1;
  readonly #pool: BufferPool | undefined;
  readonly #whole: Buffer;

  /** @internal */
  constructor(whole: Buffer, length: number, pool: BufferPool | undefined) {
    this.#whole = whole;
    this.bytes = whole.subarray(0, length);
    this.#pool = pool;
  }

  /** One more owner. */
  retain(): void {
    if (this.#refs <= 0) throw new Error('BufferLease retained after its last release');
    this.#refs++;
  }

  /** One owner fewer; the last one returns the buffer to the pool. */
  release(): void {
    if (this.#refs <= 0) throw new Error('BufferLease released more often than retained');
    if (--this.#refs === 0) this.#pool?.put(this.#whole);
  }

  /** Owners left (for tests). */
  get refs(): number {
    return this.#refs;
  }
}

export interface BufferPoolOptions {
  /** Bytes of idle buffers kept for reuse. @default 32 MiB */
  maxIdleBytes?: number;
  /** Fill released buffers with 0xEE (to catch use after release in tests). @default ROUTELENS_POOL_POISON=1 */
  poison?: boolean;
}

export class BufferPool {
  readonly #free: Buffer[][] = CLASS_SIZES.map(() => []);
  readonly #maxIdle: number;
  readonly #poison: boolean;
  #idleBytes = 0;
  /** Acquisitions served from the pool, and those that allocated (for tests and telemetry). */
  hits = 0;
  misses = 0;
  /** Pooled buffers leased and not yet released by their last owner (for tests). */
  outstanding = 0;

  constructor(o: BufferPoolOptions = {}) {
    this.#maxIdle = o.maxIdleBytes ?? 32 * 1024 * 1024;
    this.#poison = o.poison ?? process.env['ROUTELENS_POOL_POISON'] === '1';
  }

  /** A lease on `length` bytes (contents undefined). */
  acquire(length: number): BufferLease {
    const cls = classOf(length);
    if (cls < 0) {
      this.misses++;
      return new BufferLease(Buffer.allocUnsafeSlow(length), length, undefined);
    }
    const free = this.#free[cls] as Buffer[];
    const reused = free.pop();
    this.outstanding++;
    if (reused !== undefined) {
      this.#idleBytes -= reused.length;
      this.hits++;
      return new BufferLease(reused, length, this);
    }
    this.misses++;
    return new BufferLease(Buffer.allocUnsafeSlow(CLASS_SIZES[cls] as number), length, this);
  }

  /** A lease on the concatenation of `chunks` (`length` bytes in all): a request body received in pieces. */
  gather(chunks: readonly Uint8Array[], length: number): BufferLease {
    const lease = this.acquire(length);
    let at = 0;
    for (const c of chunks) {
      lease.bytes.set(c, at);
      at += c.length;
    }
    return lease;
  }

  /** Bytes held by idle buffers. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /** Let go of every idle buffer (the garbage collector frees them): for memory pressure. */
  dropIdle(): void {
    for (const free of this.#free) free.length = 0;
    this.#idleBytes = 0;
  }

  /** @internal */
  put(whole: Buffer): void {
    this.outstanding--;
    if (this.#poison) whole.fill(0xee);
    if (this.#idleBytes + whole.length > this.#maxIdle) return; // left to the garbage collector
    (this.#free[classOf(whole.length)] as Buffer[]).push(whole);
    this.#idleBytes += whole.length;
  }
}

/** The pool the receivers lease request buffers from (one per process). */
export const requestBuffers = new BufferPool();
