/**
 * Per-backend coalescing (`sending_queue.batch`): the parts that successive requests route to one backend are
 * gathered and sent in one export call, so a request split among N backends no longer costs N calls of its own.
 *
 * A backend's group is sent when it holds `min_size` spans, or `flush_timeout` after its first part arrived,
 * whichever comes first; a part that would take the group past `max_size` starts the next group (a part larger
 * than `max_size` on its own is sent alone, never split: its spans stay together). Every part's promise settles
 * with the outcome of the one call that carried it, so the caller (one queued request, waiting for all its parts)
 * learns exactly when its spans are safe.
 */

/** The bounds of `sending_queue.batch`, in spans and milliseconds. */
export interface CoalesceBounds {
  flushTimeoutMs: number;
  minSize: number;
  /** 0: no maximum. */
  maxSize: number;
}

/** Runs `fn` after `ms`; the returned function cancels it. */
export type Schedule = (fn: () => void, ms: number) => () => void;

const realSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

interface Group<P> {
  parts: P[];
  size: number;
  cancel: () => void;
  done: Promise<boolean>;
  resolve: (ok: boolean) => void;
  reject: (err: unknown) => void;
}

export class Coalescer<P> {
  readonly #bounds: CoalesceBounds;
  readonly #size: (part: P) => number;
  readonly #send: (key: string, parts: P[]) => Promise<boolean>;
  readonly #schedule: Schedule;
  readonly #groups = new Map<string, Group<P>>();
  #draining = false;

  /**
   * `size`: a part's spans. `send`: one call carrying `parts` (in arrival order) to backend `key`; its result (or
   * rejection) becomes each part's.
   */
  constructor(bounds: CoalesceBounds, size: (part: P) => number, send: (key: string, parts: P[]) => Promise<boolean>, schedule: Schedule = realSchedule) {
    this.#bounds = bounds;
    this.#size = size;
    this.#send = send;
    this.#schedule = schedule;
  }

  /** Parts waiting to be sent, over all backends. */
  get waiting(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.parts.length;
    return n;
  }

  /** Queue `part` for backend `key`; settles with the outcome of the call that carries it. */
  add(key: string, part: P): Promise<boolean> {
    const size = this.#size(part);
    let g = this.#groups.get(key);
    if (g !== undefined && this.#bounds.maxSize > 0 && g.size + size > this.#bounds.maxSize) {
      this.#flush(key, g);
      g = undefined;
    }
    if (g === undefined) g = this.#open(key);
    g.parts.push(part);
    g.size += size;
    const done = g.done;
    if (this.#draining || g.size >= this.#bounds.minSize) this.#flush(key, g);
    return done;
  }

  /** Send every group now, and from now on every part as it arrives (shutdown). */
  drain(): void {
    this.#draining = true;
    for (const [key, g] of [...this.#groups]) this.#flush(key, g);
  }

  #open(key: string): Group<P> {
    let resolve!: (ok: boolean) => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<boolean>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const g: Group<P> = { parts: [], size: 0, cancel: () => undefined, done, resolve, reject };
    g.cancel = this.#schedule(() => {
      if (this.#groups.get(key) === g) this.#flush(key, g);
    }, this.#bounds.flushTimeoutMs);
    this.#groups.set(key, g);
    return g;
  }

  #flush(key: string, g: Group<P>): void {
    if (this.#groups.get(key) === g) this.#groups.delete(key);
    g.cancel();
    let sent: Promise<boolean>;
    try {
      sent = this.#send(key, g.parts);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(g.resolve, g.reject);
  }
}
