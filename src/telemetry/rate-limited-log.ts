import type { Logger } from 'pino';

/** Logs a message at most once per interval per key, with the number suppressed in between. */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  readonly #now: () => number;
  constructor(
    readonly intervalMs = 10_000,
    now: () => number = Date.now,
  ) {
    this.#now = now;
  }
  warn(logger: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
    this.#write('warn', logger, key, fields, msg);
  }

  error(logger: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
    this.#write('error', logger, key, fields, msg);
  }

  #write(level: 'warn' | 'error', logger: Logger, key: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.#now();
    const e = this.#last.get(key);
    if (e !== undefined && now - e.at < this.intervalMs) {
      e.suppressed++;
      return;
    }
    if (this.#last.size > 1000) this.#last.clear();
    this.#last.set(key, { at: now, suppressed: 0 });
    logger[level]({ ...fields, ...(e?.suppressed ? { suppressed_since_last: e.suppressed } : {}) }, msg);
  }
}
