/**
 * Where each trace goes: consistent hashing with bounded loads over a table of slots.
 *
 * A trace id (or a service name) hashes to one of 65,536 slots; each slot belongs to one backend. The table is
 * built from the backends alone (sorted: the order the resolver lists them in does not matter), so every
 * routelens that sees the same backends routes a trace to the same one. Each backend has 200 points on a 32-bit
 * ring; each slot, at a pseudo-random place on the ring, goes to the first backend clockwise that holds fewer
 * than ⌈slots/backends⌉ slots: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam) with the
 * tightest bound, so every backend owns the mean share within one slot (the last one filled up to 1 % less with
 * 50 backends). Plain consistent hashing with 200 points per backend leaves shares 5–15 % off the mean (the
 * Collector's exporter: #41200). A backend joining or leaving moves 1.1–1.5 × the ideal 1/N of the slots: the
 * bound re-routes a few more than plain consistent hashing would.
 */

export const SLOT_BITS = 16;
export const SLOTS = 1 << SLOT_BITS;
const POINTS_PER_BACKEND = 200;
/** Largest share of the slots a backend may hold, over the mean (rounded up to a whole slot). */
export const LOAD_BOUND = 1;

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of bytes `[at, at + len)`, read as little-endian words (a trace id: four words). */
export function hashBytes(buf: Uint8Array, at: number, len: number): number {
  let h = 0x9747b28c ^ len;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const w = (buf[at + i] as number) | ((buf[at + i + 1] as number) << 8) | ((buf[at + i + 2] as number) << 16) | ((buf[at + i + 3] as number) << 24);
    h = fmix32(h ^ w);
  }
  let tail = 0;
  for (let s = 0; i < len; i++, s += 8) tail |= (buf[at + i] as number) << s;
  return fmix32(h ^ tail ^ 0x5bd1e995);
}

/** 32-bit hash of a string (its UTF-16 code units). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h >>> 0);
}

export class Ring {
  /** The backends, sorted. */
  readonly backends: readonly string[];
  /** Slot → index into `backends`. */
  readonly #table: Uint16Array;

  constructor(backends: readonly string[]) {
    this.backends = [...new Set(backends)].sort();
    if (this.backends.length > 0xffff) throw new RangeError('at most 65535 backends');
    this.#table = build(this.backends);
  }

  /** Index (into `backends`) of the backend owning hash `h`, or -1 without backends. */
  owner(h: number): number {
    if (this.backends.length === 0) return -1;
    return this.#table[h >>> (32 - SLOT_BITS)] as number;
  }

  /** Slots held by each backend (tests, self-telemetry). */
  shares(): number[] {
    const out = new Array<number>(this.backends.length).fill(0);
    for (const b of this.#table) out[b] = (out[b] as number) + 1;
    return out;
  }
}

function build(backends: readonly string[]): Uint16Array {
  const table = new Uint16Array(SLOTS);
  const n = backends.length;
  if (n <= 1) return table;
  // The ring: (position, backend) pairs sorted by position.
  const positions = new Uint32Array(n * POINTS_PER_BACKEND);
  const order: number[] = [];
  for (let b = 0; b < n; b++) {
    const name = backends[b] as string;
    for (let p = 0; p < POINTS_PER_BACKEND; p++) order.push(b * POINTS_PER_BACKEND + p);
    for (let p = 0; p < POINTS_PER_BACKEND; p++) positions[b * POINTS_PER_BACKEND + p] = hashString(`${name}#${p}`);
  }
  const ringPos = new Uint32Array(order.length);
  const ringOwner = new Uint16Array(order.length);
  order.sort((x, y) => (positions[x] as number) - (positions[y] as number) || x - y);
  order.forEach((k, i) => {
    ringPos[i] = positions[k] as number;
    ringOwner[i] = Math.floor(k / POINTS_PER_BACKEND);
  });
  const cap = Math.ceil((LOAD_BOUND * SLOTS) / n);
  const load = new Uint32Array(n);
  const points = ringPos.length;
  for (let s = 0; s < SLOTS; s++) {
    // The slot's place on the ring: spread by a hash so that neighbouring slots start at unrelated points.
    const at = fmix32(s * 0x9e3779b1);
    // First ring point at or after `at` (binary search), then clockwise past full backends.
    let lo = 0;
    let hi = points;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ringPos[mid] as number) < at) lo = mid + 1;
      else hi = mid;
    }
    let i = lo % points;
    while ((load[ringOwner[i] as number] as number) >= cap) i = (i + 1) % points;
    const b = ringOwner[i] as number;
    table[s] = b;
    load[b] = (load[b] as number) + 1;
  }
  return table;
}
