/** Exponential backoff with full jitter between `initialMs` and `maxMs`. */
export class Backoff {
  #attempt = 0;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;

  constructor(opts: { initialMs: number; maxMs: number; random?: () => number }) {
    this.#initialMs = opts.initialMs;
    this.#maxMs = opts.maxMs;
    this.#random = opts.random ?? Math.random;
  }

  /** The next delay: a random value in [cap/2, cap], cap doubling from `initialMs` to `maxMs`. */
  next(): number {
    const cap = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(cap / 2 + (this.#random() * cap) / 2);
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
