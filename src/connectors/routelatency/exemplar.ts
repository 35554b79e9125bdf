/**
 * Exemplars: spans kept as examples of a latency (the slowest of a slot, the latest of a histogram bucket).
 */
import { hex } from '../../pdata/wire';
import type { SpanInput } from './span-input';

/** An exemplar as plain data: JSON-safe, for query answers and worker → primary snapshots. */
export interface Exemplar {
  traceId: string;
  spanId: string;
  /** Duration in ms. */
  valueMs: number;
  /** Span end time, epoch ms (0 when unknown). */
  timeMs: number;
}

/** Bytes of a trace id and a span id, in that order. */
export const ID_BYTES = 24;

/**
 * An exemplar kept in place. Exemplars are replaced far more often than read, so a replacement copies the ids'
 * bytes into an array allocated once, and the hex strings are made only when read. Making them on every
 * replacement cost two strings that the exemplar then held past a scavenge, one of the largest sources of what
 * routelens promoted to V8's old generation.
 */
export class KeptExemplar implements Exemplar {
  readonly #ids = new Uint8Array(ID_BYTES);
  valueMs = 0;
  timeMs = 0;

  /** Takes `span` (its ids, end time and `valueMs`); false, and nothing changed, when it lacks an id. */
  take(span: SpanInput, valueMs: number): boolean {
    if (!span.copyIds(this.#ids)) return false;
    this.valueMs = valueMs;
    this.timeMs = span.endTimeMs;
    return true;
  }

  /** Takes another exemplar's values. */
  assign(e: Exemplar): this {
    this.#ids.fill(0);
    this.#ids.set(Buffer.from(e.traceId, 'hex').subarray(0, 16), 0);
    this.#ids.set(Buffer.from(e.spanId, 'hex').subarray(0, 8), 16);
    this.valueMs = e.valueMs;
    this.timeMs = e.timeMs;
    return this;
  }

  get traceId(): string {
    return hex(this.#ids, 0, 16);
  }

  get spanId(): string {
    return hex(this.#ids, 16, ID_BYTES);
  }

  plain(): Exemplar {
    return { traceId: this.traceId, spanId: this.spanId, valueMs: this.valueMs, timeMs: this.timeMs };
  }
}
