/**
 * Routing that does not split traces when the backends change.
 *
 * The ring (ring.ts) says who owns a trace now. When the backends change, a trace in progress may move to
 * another owner, and its spans that arrive later would land on a different replica than its first ones. So the
 * router remembers which traces it saw recently (a bit per trace-hash in a 1 Mibit set, two generations of
 * `grace` each: a few hundred kilobytes whatever the traffic) and, at a change, freezes that set with the old
 * ring: for `grace` afterwards, a trace in the frozen set keeps going to its old owner, while traces first seen
 * after the change go to the new one. A false positive of the set (another trace sharing the bit) only sends a
 * new trace to its old owner, consistently, during the grace period.
 */
import { fmix32, Ring } from './ring';

const SEEN_BITS = 20;
const SEEN_WORDS = (1 << SEEN_BITS) >>> 5;

interface Transition {
  /** The ring before the change. */
  ring: Ring;
  /** Traces seen before the change. */
  seen: Uint32Array;
  untilMs: number;
}

export class TraceRouter {
  readonly #graceMs: number;
  #ring = new Ring([]);
  #current = new Uint32Array(SEEN_WORDS);
  #previous = new Uint32Array(SEEN_WORDS);
  #rotatedAtMs: number;
  #transitions: Transition[] = [];

  constructor(graceMs: number, nowMs: number) {
    this.#graceMs = graceMs;
    this.#rotatedAtMs = nowMs;
  }

  get ring(): Ring {
    return this.#ring;
  }

  /** Changes in progress (old rings still routing the traces seen before them). */
  get transitions(): number {
    return this.#transitions.length;
  }

  /** New backends. Traces seen within the last grace period keep their owner for `grace`. */
  setBackends(backends: readonly string[], nowMs: number): void {
    const next = new Ring(backends);
    if (next.backends.length === this.#ring.backends.length && next.backends.every((b, i) => b === this.#ring.backends[i])) return;
    this.tick(nowMs);
    if (this.#graceMs > 0 && this.#ring.backends.length > 0) {
      const seen = new Uint32Array(SEEN_WORDS);
      for (let i = 0; i < SEEN_WORDS; i++) seen[i] = (this.#current[i] as number) | (this.#previous[i] as number);
      this.#transitions.push({ ring: this.#ring, seen, untilMs: nowMs + this.#graceMs });
    }
    this.#ring = next;
  }

  /** Age the memory of seen traces and end finished transitions; call once per batch. */
  tick(nowMs: number): void {
    if (this.#graceMs > 0 && nowMs - this.#rotatedAtMs >= this.#graceMs) {
      const cleared = this.#previous;
      cleared.fill(0);
      this.#previous = this.#current;
      this.#current = cleared;
      this.#rotatedAtMs = nowMs;
    }
    while (this.#transitions.length > 0 && (this.#transitions[0] as Transition).untilMs <= nowMs) this.#transitions.shift();
  }

  /**
   * The backend (`host:port`) for a trace whose id hashes to `h`, or undefined without backends. The oldest
   * change that saw the trace before it decides; otherwise the current ring.
   */
  route(h: number): string | undefined {
    const bit = fmix32(h ^ 0x27d4eb2f) >>> (32 - SEEN_BITS);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    this.#current[word] = (this.#current[word] as number) | mask;
    for (let i = 0; i < this.#transitions.length; i++) {
      const t = this.#transitions[i] as Transition;
      if (((t.seen[word] as number) & mask) !== 0) return t.ring.backends[t.ring.owner(h)];
    }
    return this.#ring.backends[this.#ring.owner(h)];
  }

  /** The current owner, ignoring transitions (a retry after the old owner failed). */
  currentOwner(h: number): string | undefined {
    return this.#ring.backends[this.#ring.owner(h)];
  }
}
