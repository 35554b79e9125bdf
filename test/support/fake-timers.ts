/**
 * Time a test moves by hand, for code that takes a clock with `now`, `sleep` and `random` (the exporters'
 * sending queue): no real waits, and the waits asked for are recorded.
 */
export class FakeTimers {
  #now: number;
  /** Every wait asked for, in ms, in order. */
  readonly sleeps: number[] = [];
  #timers: { at: number; wake: () => void }[] = [];
  #random: () => number;
  /** With `autoAdvance`, a sleep moves time on by its length at once instead of waiting for `advance`. */
  readonly #auto: boolean;

  constructor(opts: { startMs?: number; autoAdvance?: boolean; random?: () => number } = {}) {
    this.#now = opts.startMs ?? 1_000_000;
    this.#auto = opts.autoAdvance ?? false;
    this.#random = opts.random ?? (() => 0.5);
  }

  now = (): number => this.#now;

  random = (): number => this.#random();

  /** Set where `random` draws from (e.g. a seeded generator, or a constant). */
  setRandom(random: () => number): void {
    this.#random = random;
  }

  /** Resolves once time reaches now + ms, or at once when `signal` aborts; never rejects. */
  sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    this.sleeps.push(ms);
    if (this.#auto) {
      this.#now += ms;
      return Promise.resolve();
    }
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = {
        at: this.#now + ms,
        wake: (): void => {
          signal.removeEventListener('abort', timer.wake);
          this.#timers = this.#timers.filter((t) => t !== timer);
          resolve();
        },
      };
      this.#timers.push(timer);
      signal.addEventListener('abort', timer.wake, { once: true });
    });
  };

  /** Waits pending now. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Move time on by `ms`, waking each wait due on the way in order and letting what it starts run. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      const next = [...this.#timers].sort((a, b) => a.at - b.at)[0];
      if (next === undefined || next.at > until) break;
      this.#now = next.at;
      next.wake();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

/** Let every callback already queued (promise jobs, immediates) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
