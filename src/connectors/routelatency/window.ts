/**
 * Time windows as rings of interval slots, merged on query.
 *
 * Each configured window is served by one tier of slots: the smallest slot size in {@link SLOT_CANDIDATES_MS}
 * that divides the window into at most {@link MAX_SLOTS_PER_WINDOW} slots. Default windows [1m, 5m, 15m, 1h]
 * give two tiers: 10 s × 30 (1m, 5m) and 1 min × 60 (15m, 1h). Every recorded span goes into one slot of each
 * tier. Slots are aligned to the epoch (`period = floor(t / slotMs)`), and a window of N slots at time t is the
 * current (partial) slot plus the N − 1 before it, so it covers between `W − slot` and `W` of wall time.
 */
import { ExpoHistogram } from './expo-histogram';
import type { SpanInput } from './span-input';

/** Slot sizes tried for each window, smallest first: 10 s, 1 min, 5 min, 15 min, 1 h. */
export const SLOT_CANDIDATES_MS: readonly number[] = [10_000, 60_000, 300_000, 900_000, 3_600_000];
/** A window is split into at most this many slots. */
export const MAX_SLOTS_PER_WINDOW = 60;

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export interface SlotTier {
  slotMs: number;
  /** Ring length: the most slots any window of this tier needs. */
  slots: number;
}

export interface WindowPlan {
  windowMs: number;
  /** Index into {@link SlotPlan.tiers}. */
  tier: number;
  /** Number of slots of the tier the window spans. */
  slots: number;
}

export interface SlotPlan {
  tiers: SlotTier[];
  windows: WindowPlan[];
}

/** The slot size for one window, or a message saying why the window cannot be served. */
export function slotSizeFor(windowMs: number): number | string {
  if (!Number.isFinite(windowMs) || windowMs < (SLOT_CANDIDATES_MS[0] as number)) {
    return `a window must be at least ${formatDuration(SLOT_CANDIDATES_MS[0] as number)}`;
  }
  for (const c of SLOT_CANDIDATES_MS) {
    if (windowMs % c === 0 && windowMs / c <= MAX_SLOTS_PER_WINDOW) return c;
  }
  const largest = SLOT_CANDIDATES_MS[SLOT_CANDIDATES_MS.length - 1] as number;
  if (windowMs > largest * MAX_SLOTS_PER_WINDOW) return `a window must be at most ${formatDuration(largest * MAX_SLOTS_PER_WINDOW)}`;
  return `a window must be a multiple of 10s (and of 1m above 10m, 5m above 1h, 15m above 5h, 1h above 15h)`;
}

/** Plans tiers for the windows; throws RangeError naming the first window that cannot be planned. */
export function planSlots(windowsMs: readonly number[]): SlotPlan {
  if (windowsMs.length === 0) throw new RangeError('Cannot plan slots as no window is configured');
  const tiers: SlotTier[] = [];
  const windows: WindowPlan[] = [];
  for (const w of windowsMs) {
    const slot = slotSizeFor(w);
    if (typeof slot === 'string') throw new RangeError(`Cannot plan window ${formatDuration(w)}: ${slot}`);
    let t = tiers.findIndex((x) => x.slotMs === slot);
    if (t < 0) {
      tiers.push({ slotMs: slot, slots: 0 });
      t = tiers.length - 1;
    }
    const tier = tiers[t] as SlotTier;
    const n = w / slot;
    if (n > tier.slots) tier.slots = n;
    windows.push({ windowMs: w, tier: t, slots: n });
  }
  return { tiers, windows };
}

/** `90000` → `1m30s`, `3600000` → `1h`, `500` → `500ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${Math.round(rest * 1000) / 1000}ms`;
  return out;
}

/** One exemplar: a slow span kept for "slowest trace" output and OpenMetrics exemplars. */
export interface Exemplar {
  traceId: string;
  spanId: string;
  /** Duration in ms. */
  valueMs: number;
  /** Span end time, epoch ms. */
  timeMs: number;
}

/** Fixed bytes of a ring beyond its typed arrays (objects, pointer arrays are counted separately). */
const RING_OBJECT_BYTES = 200;
/** Bytes held by one retained exemplar: two one-byte strings (32 + 16 chars) with headers. */
const EXEMPLAR_STRING_BYTES = 96;

/**
 * A ring of `length` slots of `slotMs` each. Per slot: a latency sketch (created on first use, reset and reused
 * when the slot comes round again), error count, status-class counts and the `exemplarsPerSlot` slowest spans.
 */
export class SlotRing {
  readonly slotMs: number;
  readonly length: number;
  readonly exemplarsPerSlot: number;
  readonly #periods: Float64Array;
  readonly #sketches: (ExpoHistogram | undefined)[];
  readonly #errors: Uint32Array;
  readonly #status: Uint32Array;
  readonly #exValue: Float64Array;
  readonly #exTime: Float64Array;
  readonly #exTrace: (string | undefined)[];
  readonly #exSpan: (string | undefined)[];

  constructor(slotMs: number, length: number, exemplarsPerSlot = 2) {
    this.slotMs = slotMs;
    this.length = length;
    this.exemplarsPerSlot = exemplarsPerSlot;
    this.#periods = new Float64Array(length).fill(NaN);
    this.#sketches = new Array<ExpoHistogram | undefined>(length).fill(undefined);
    this.#errors = new Uint32Array(length);
    this.#status = new Uint32Array(length * 5);
    const k = length * exemplarsPerSlot;
    this.#exValue = new Float64Array(k);
    this.#exTime = new Float64Array(k);
    this.#exTrace = new Array<string | undefined>(k).fill(undefined);
    this.#exSpan = new Array<string | undefined>(k).fill(undefined);
  }

  /** Period (slot number since the epoch) of a time. */
  periodOf(timeMs: number): number {
    return Math.floor(timeMs / this.slotMs);
  }

  #pos(period: number): number {
    const p = period % this.length;
    return p < 0 ? p + this.length : p;
  }

  /**
   * Records one span at time `nowMs`. `statusClass` is 0..4 for 1xx..5xx or -1 when the span has no HTTP status.
   * `span` supplies exemplar ids and is only asked for them when this value is among the slot's slowest.
   */
  record(nowMs: number, valueMs: number, isError: boolean, statusClass: number, span: SpanInput): void {
    const period = Math.floor(nowMs / this.slotMs);
    let pos = period % this.length;
    if (pos < 0) pos += this.length;
    if (this.#periods[pos] !== period) this.#resetSlot(pos, period);
    let sketch = this.#sketches[pos];
    if (sketch === undefined) {
      sketch = new ExpoHistogram();
      this.#sketches[pos] = sketch;
    }
    sketch.record(valueMs);
    if (isError) this.#errors[pos] = (this.#errors[pos] as number) + 1;
    if (statusClass >= 0) {
      const i = pos * 5 + statusClass;
      this.#status[i] = (this.#status[i] as number) + 1;
    }
    const k = this.exemplarsPerSlot;
    if (k > 0) {
      const base = pos * k;
      let target = -1;
      let minValue = Infinity;
      for (let j = base; j < base + k; j++) {
        if (this.#exTrace[j] === undefined) {
          target = j;
          break;
        }
        const v = this.#exValue[j] as number;
        if (v < minValue) {
          minValue = v;
          target = j;
        }
      }
      if (target >= 0 && (this.#exTrace[target] === undefined || valueMs > minValue)) {
        this.#exValue[target] = valueMs;
        this.#exTime[target] = span.endTimeMs;
        this.#exTrace[target] = span.traceIdHex();
        this.#exSpan[target] = span.spanIdHex();
      }
    }
  }

  #resetSlot(pos: number, period: number): void {
    this.#periods[pos] = period;
    this.#sketches[pos]?.reset();
    this.#errors[pos] = 0;
    this.#status.fill(0, pos * 5, pos * 5 + 5);
    const k = this.exemplarsPerSlot;
    for (let j = pos * k; j < pos * k + k; j++) {
      this.#exTrace[j] = undefined;
      this.#exSpan[j] = undefined;
      this.#exValue[j] = 0;
    }
  }

  /** True when some slot holds data of a period in [from, to]. */
  hasDataIn(fromPeriod: number, toPeriod: number): boolean {
    for (let pos = 0; pos < this.length; pos++) {
      const p = this.#periods[pos] as number;
      if (p >= fromPeriod && p <= toPeriod && (this.#sketches[pos]?.count ?? 0) > 0) return true;
    }
    return false;
  }

  /** Adds the slot of `period` (if this ring still holds it) into `agg`. */
  addPeriodTo(period: number, agg: WindowAggregate): void {
    const pos = this.#pos(period);
    if (this.#periods[pos] !== period) return;
    const sketch = this.#sketches[pos];
    if (sketch === undefined || sketch.count === 0) return;
    agg.sketch.merge(sketch);
    agg.errors += this.#errors[pos] as number;
    for (let c = 0; c < 5; c++) agg.status[c] = (agg.status[c] as number) + (this.#status[pos * 5 + c] as number);
  }

  /** Appends the exemplars of the slot of `period` to `out`. */
  exemplarsOf(period: number, out: Exemplar[]): void {
    const pos = this.#pos(period);
    if (this.#periods[pos] !== period) return;
    const k = this.exemplarsPerSlot;
    for (let j = pos * k; j < pos * k + k; j++) {
      const traceId = this.#exTrace[j];
      const spanId = this.#exSpan[j];
      if (traceId === undefined || spanId === undefined) continue;
      out.push({ traceId, spanId, valueMs: this.#exValue[j] as number, timeMs: this.#exTime[j] as number });
    }
  }

  /** Estimated heap bytes: typed arrays, pointer arrays, sketches and retained exemplar strings. */
  memoryBytes(): number {
    let bytes = RING_OBJECT_BYTES + this.#periods.byteLength + this.#errors.byteLength + this.#status.byteLength +
      this.#exValue.byteLength + this.#exTime.byteLength + 8 * (this.#sketches.length + this.#exTrace.length + this.#exSpan.length);
    for (const s of this.#sketches) if (s !== undefined) bytes += s.memoryBytes();
    for (const t of this.#exTrace) if (t !== undefined) bytes += EXEMPLAR_STRING_BYTES;
    return bytes;
  }
}

/** Scratch accumulator for merging slots (reused across queries). */
export class WindowAggregate {
  readonly sketch = new ExpoHistogram({ wide: true });
  errors = 0;
  readonly status: number[] = [0, 0, 0, 0, 0];

  reset(): void {
    this.sketch.reset();
    this.errors = 0;
    this.status.fill(0);
  }
}
