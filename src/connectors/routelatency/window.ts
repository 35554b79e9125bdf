/**
 * Time windows as rings of interval slots, merged on query.
 *
 * Each configured window is served by one tier of slots: the smallest slot size in {@link SLOT_CANDIDATES_MS}
 * that divides the window into at most {@link MAX_SLOTS_PER_WINDOW} slots. Default windows [1m, 5m, 15m, 1h]
 * give two tiers: 10 s × 30 (1m, 5m) and 1 min × 60 (15m, 1h). Every recorded span goes into one slot of each
 * tier. Slots are aligned to the epoch (`period = floor(t / slotMs)`), and a window of N slots at time t is the
 * current (partial) slot plus the N − 1 before it, so it covers between `W − slot` and `W` of wall time.
 */
import { ExpoHistogram, type CompactExponentialHistogram, type OtlpExponentialHistogram } from '../../pdata/expo-histogram';
import { KeptExemplar, type Exemplar } from './exemplar';
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
export function slotSizeFor(windowMs: number, maxSlotsPerWindow = MAX_SLOTS_PER_WINDOW): number | string {
  if (!Number.isFinite(windowMs) || windowMs < (SLOT_CANDIDATES_MS[0] as number)) {
    return `a window must be at least ${formatDuration(SLOT_CANDIDATES_MS[0] as number)}`;
  }
  for (const c of SLOT_CANDIDATES_MS) {
    if (windowMs % c === 0 && windowMs / c <= maxSlotsPerWindow) return c;
  }
  const largest = SLOT_CANDIDATES_MS[SLOT_CANDIDATES_MS.length - 1] as number;
  if (windowMs > largest * maxSlotsPerWindow) return `a window must be at most ${formatDuration(largest * maxSlotsPerWindow)}`;
  return `a window must be a multiple of 10s (and of 1m above 10m, 5m above 1h, 15m above 5h, 1h above 15h)`;
}

/**
 * Plans tiers for the windows; throws RangeError naming the first window that cannot be planned. A smaller
 * `maxSlotsPerWindow` (e.g. 30: 15m in 1 min slots, 1h in 5 min slots) trades series resolution for memory.
 */
export function planSlots(windowsMs: readonly number[], maxSlotsPerWindow = MAX_SLOTS_PER_WINDOW): SlotPlan {
  if (windowsMs.length === 0) throw new RangeError('Cannot plan slots as no window is configured');
  const tiers: SlotTier[] = [];
  const windows: WindowPlan[] = [];
  for (const w of windowsMs) {
    const slot = slotSizeFor(w, maxSlotsPerWindow);
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
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${Math.round(rest * 1000) / 1000}ms`;
  return out;
}

/** A slot as plain data (JSON-safe), for merging rings across processes. */
export interface SlotSnapshot {
  period: number;
  /** Run-length coded in a snapshot for one query; the plain OTLP shape in a whole snapshot. Both are read. */
  sketch: CompactExponentialHistogram | OtlpExponentialHistogram;
  errors: number;
  status: number[];
  exemplars: Exemplar[];
}

/** Estimated bytes of a slot object (fields, status array) and of an exemplar (object + its id bytes). */
const SLOT_BYTES = 160;
const EXEMPLAR_BYTES = 150;
const RING_BYTES = 64;
const POINTER_BYTES = 8;

/** The exemplar with the smallest value (the one a slower span replaces) of a non-empty list. */
function fastestOf(exemplars: readonly KeptExemplar[]): KeptExemplar {
  let min = exemplars[0] as KeptExemplar;
  for (let j = 1; j < exemplars.length; j++) if ((exemplars[j] as KeptExemplar).valueMs < min.valueMs) min = exemplars[j] as KeptExemplar;
  return min;
}

/** One slot's data; created on the first span of a period and reused when the ring comes round again. */
class Slot {
  period: number;
  readonly sketch = new ExpoHistogram();
  errors = 0;
  /** Counts of 1xx..5xx. */
  readonly status: number[] = [0, 0, 0, 0, 0];
  /** Up to `exemplarsPerSlot` slowest spans, objects reused on replacement. */
  readonly exemplars: KeptExemplar[] = [];
  /** Exemplar objects of earlier periods, for reuse. */
  readonly spare: KeptExemplar[] = [];
  /** Smallest value among `exemplars` once full (-Infinity before): most spans are rejected by one comparison. */
  exemplarFloor = -Infinity;

  constructor(period: number) {
    this.period = period;
  }

  reset(period: number): void {
    this.period = period;
    this.sketch.reset();
    this.errors = 0;
    this.status.fill(0);
    for (const e of this.exemplars) this.spare.push(e);
    this.exemplars.length = 0;
    this.exemplarFloor = -Infinity;
  }
}

/**
 * A ring of `length` slots of `slotMs` each. Per slot: a latency sketch, error count, status-class counts and the
 * `exemplarsPerSlot` slowest spans. A slot is allocated on its first span, so a quiet route costs only the ring's
 * pointer array plus the slots it used.
 */
export class SlotRing {
  readonly slotMs: number;
  readonly length: number;
  readonly exemplarsPerSlot: number;
  readonly #slots: (Slot | undefined)[];

  constructor(slotMs: number, length: number, exemplarsPerSlot = 2) {
    this.slotMs = slotMs;
    this.length = length;
    this.exemplarsPerSlot = exemplarsPerSlot;
    this.#slots = new Array<Slot | undefined>(length).fill(undefined);
  }

  /** Period (slot number since the epoch) of a time. */
  periodOf(timeMs: number): number {
    return Math.floor(timeMs / this.slotMs);
  }

  /** The slot holding `period`, if the ring still has it. */
  #slotOf(period: number): Slot | undefined {
    let pos = period % this.length;
    if (pos < 0) pos += this.length;
    const slot = this.#slots[pos];
    return slot !== undefined && slot.period === period ? slot : undefined;
  }

  /**
   * Records one span at time `nowMs`. `statusClass` is 0..4 for 1xx..5xx or -1 when the span has no HTTP status.
   * `bucket` is the sketch bucket index of `valueMs` when known (see ExpoHistogram.recordAt), else NaN.
   * `span` supplies exemplar ids and is only asked for them when this value is among the slot's slowest.
   */
  record(nowMs: number, valueMs: number, isError: boolean, statusClass: number, span: SpanInput, bucket = NaN): void {
    const period = Math.floor(nowMs / this.slotMs);
    let pos = period % this.length;
    if (pos < 0) pos += this.length;
    let slot = this.#slots[pos];
    if (slot === undefined) {
      slot = new Slot(period);
      this.#slots[pos] = slot;
    } else if (slot.period !== period) {
      slot.reset(period);
    }
    if (valueMs > 0 && bucket === bucket) slot.sketch.recordAt(valueMs, bucket);
    else slot.sketch.record(valueMs);
    if (isError) slot.errors++;
    if (statusClass >= 0) slot.status[statusClass] = (slot.status[statusClass] as number) + 1;
    if (valueMs > slot.exemplarFloor && this.exemplarsPerSlot > 0) this.#keepExemplar(slot, valueMs, span);
  }

  #keepExemplar(slot: Slot, valueMs: number, span: SpanInput): void {
    const ex = slot.exemplars;
    if (ex.length < this.exemplarsPerSlot) {
      const e = slot.spare.pop() ?? new KeptExemplar();
      if (e.take(span, valueMs)) ex.push(e);
      else slot.spare.push(e);
    } else {
      fastestOf(ex).take(span, valueMs);
    }
    if (ex.length === this.exemplarsPerSlot) slot.exemplarFloor = fastestOf(ex).valueMs;
  }

  /**
   * The slots holding data (from period `fromPeriod` on), for merging into another ring (worker → primary, peer →
   * cluster query). `compact`: sketches run-length coded, which every version that asks for a query's snapshot
   * reads; whole snapshots (hand-offs, a worker's final state) keep the plain OTLP shape older versions read.
   */
  snapshot(fromPeriod = -Infinity, compact = false): SlotSnapshot[] {
    const out: SlotSnapshot[] = [];
    for (const slot of this.#slots) {
      if (slot === undefined || slot.sketch.count === 0 || slot.period < fromPeriod) continue;
      out.push({
        period: slot.period,
        sketch: compact ? slot.sketch.toCompact() : slot.sketch.toOtlp(),
        errors: slot.errors,
        status: [...slot.status],
        exemplars: slot.exemplars.map((e) => e.plain()),
      });
    }
    return out;
  }

  /** Add slots of another ring with the same slot size (periods are absolute, so they line up). */
  mergeSnapshot(slots: readonly SlotSnapshot[]): void {
    for (const snap of slots) {
      let pos = snap.period % this.length;
      if (pos < 0) pos += this.length;
      let slot = this.#slots[pos];
      if (slot === undefined) {
        slot = new Slot(snap.period);
        this.#slots[pos] = slot;
      } else if (slot.period < snap.period) slot.reset(snap.period);
      else if (slot.period > snap.period) continue; // older than what this ring holds
      slot.sketch.merge(ExpoHistogram.fromCompact(snap.sketch));
      slot.errors += snap.errors;
      for (let c = 0; c < 5; c++) slot.status[c] = (slot.status[c] as number) + (snap.status[c] ?? 0);
      for (const e of snap.exemplars) {
        if (slot.exemplars.length < this.exemplarsPerSlot) slot.exemplars.push((slot.spare.pop() ?? new KeptExemplar()).assign(e));
        else {
          const min = fastestOf(slot.exemplars);
          if (min.valueMs < e.valueMs) min.assign(e);
        }
      }
    }
  }

  /** True when some slot holds data of a period in [from, to]. */
  hasDataIn(fromPeriod: number, toPeriod: number): boolean {
    for (const slot of this.#slots) {
      if (slot !== undefined && slot.period >= fromPeriod && slot.period <= toPeriod && slot.sketch.count > 0) return true;
    }
    return false;
  }

  /** Adds the slot of `period` (if this ring still holds it) into `agg`. */
  addPeriodTo(period: number, agg: WindowAggregate): void {
    const slot = this.#slotOf(period);
    if (slot === undefined || slot.sketch.count === 0) return;
    agg.sketch.merge(slot.sketch);
    agg.errors += slot.errors;
    for (let c = 0; c < 5; c++) agg.status[c] = (agg.status[c] as number) + (slot.status[c] as number);
  }

  /** Appends copies of the exemplars of the slot of `period` to `out`. */
  exemplarsOf(period: number, out: Exemplar[]): void {
    const slot = this.#slotOf(period);
    if (slot === undefined) return;
    for (const e of slot.exemplars) out.push(e.plain());
  }

  /** Estimated heap bytes: the slot pointer array, slots, their sketches and exemplars. */
  memoryBytes(): number {
    let bytes = RING_BYTES + POINTER_BYTES * this.length;
    for (const slot of this.#slots) {
      if (slot === undefined) continue;
      bytes += SLOT_BYTES + slot.sketch.memoryBytes() + EXEMPLAR_BYTES * slot.exemplars.length;
    }
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
