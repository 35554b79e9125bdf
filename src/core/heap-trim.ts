/**
 * Full garbage collections at quiet moments, so that a lightly loaded routelens holds about its live heap instead
 * of up to 8 MB of garbage more (BENCHMARKS.md, thirteenth round).
 *
 * V8 starts its next full collection only once the old generation has grown at least 8 MB (its minimum step)
 * past what the last one left. At a light load what reaches the old generation is mostly garbage (objects a
 * scavenge found alive mid-request, such as node:http2's per-stream state), so the heap climbs for minutes
 * (11 → 19 MB at 10k spans/s) and RSS with it. The trimmer runs one full collection once the old generation has
 * grown `stepBytes` past the last full collection, if the event loop was mostly idle over the last check and the
 * last forced one is at least `minIntervalMs` old. Under a heavy load it stays out of the way: V8's own
 * incremental collections are cheaper there.
 *
 * Where it runs: at a safe point the OTLP gRPC exporter offers right after it has handed a request to
 * node:http2, while that request's objects are alive. A collection at an idle moment finds none alive; their
 * hidden classes die, and every optimised function that checks one is deoptimised and compiled again (measured:
 * ≈ 40 deoptimisations per collection from a timer, ≈ 20 at the safe point, none for V8's own collections,
 * which run mid-request). With no safe point within `fallbackMs` of being due (a pipeline without a gRPC
 * exporter) the check timer runs it.
 */
import * as v8 from 'node:v8';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';

export interface HeapTrimSources {
  /** V8's full collection (`global.gc` under `--expose-gc`, one of V8_FLAGS). */
  gc: () => void;
  /** Bytes in use in V8's old generation. */
  oldGenerationUsed: () => number;
  /** Share of the time since the previous call the event loop was busy (0–1). */
  loopUtilization: () => number;
  now: () => number;
}

export interface HeapTrimOptions {
  stepBytes: number;
  minIntervalMs: number;
  fallbackMs: number;
  /** Busier than this (event-loop utilisation) and no collection is forced. */
  maxUtilization: number;
}

export const DEFAULT_HEAP_TRIM: HeapTrimOptions = { stepBytes: 1 << 20, minIntervalMs: 15_000, fallbackMs: 5_000, maxUtilization: 0.5 };

const CHECK_INTERVAL_MS = 1000;

export class HeapTrimmer {
  readonly #s: HeapTrimSources;
  readonly #o: HeapTrimOptions;
  /** Old generation in use right after the last full collection (V8's or ours). */
  #floor: number;
  #lastForced = -Infinity;
  /** When the trimmer decided a collection was due (NaN: none is). */
  #dueSince = NaN;
  #timer: NodeJS.Timeout | undefined;
  #observer: PerformanceObserver | undefined;
  collections = 0;
  pauseSeconds = 0;

  constructor(sources: HeapTrimSources, options: HeapTrimOptions = DEFAULT_HEAP_TRIM) {
    this.#s = sources;
    this.#o = options;
    this.#floor = sources.oldGenerationUsed();
  }

  get due(): boolean {
    return this.#dueSince === this.#dueSince;
  }

  /** Called once a second: decides whether a collection is due, and runs it if no safe point came in time. */
  check(): void {
    const used = this.#s.oldGenerationUsed();
    if (used < this.#floor) this.#floor = used;
    const busy = this.#s.loopUtilization() > this.#o.maxUtilization;
    const now = this.#s.now();
    if (busy || used - this.#floor < this.#o.stepBytes || now - this.#lastForced < this.#o.minIntervalMs) {
      this.#dueSince = NaN;
      return;
    }
    if (!this.due) this.#dueSince = now;
    else if (now - this.#dueSince >= this.#o.fallbackMs) this.#collect();
  }

  /** A moment when a request's objects are alive (see above): collect if one is due. */
  atSafePoint(): void {
    if (this.due) this.#collect();
  }

  /** V8 finished a full collection of its own. */
  majorCollectionDone(): void {
    this.#floor = this.#s.oldGenerationUsed();
  }

  #collect(): void {
    this.#dueSince = NaN;
    const t0 = performance.now();
    this.#s.gc();
    this.pauseSeconds += (performance.now() - t0) / 1000;
    this.collections++;
    this.#lastForced = this.#s.now();
    this.#floor = this.#s.oldGenerationUsed();
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
    this.#observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (((e as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.majorCollectionDone();
      }
    });
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#observer?.disconnect();
    this.#observer = undefined;
  }
}

/** Bytes in use in V8's old generation (its `old_space`). */
export function oldGenerationUsed(): number {
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'old_space') return s.space_used_size;
  return 0;
}

function loopUtilizationMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

/** V8's full collection when node runs with `--expose-gc`, else undefined. */
export function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? () => (gc as () => void)() : undefined;
}

/** The process's trimmer: undefined until `startHeapTrim`, and when node runs without `--expose-gc`. */
let processTrimmer: HeapTrimmer | undefined;

/** Start trimming this process's heap (a no-op without `--expose-gc`); returns the trimmer. */
export function startHeapTrim(): HeapTrimmer | undefined {
  if (processTrimmer !== undefined) return processTrimmer;
  const gc = exposedGc();
  if (gc === undefined) return undefined;
  processTrimmer = new HeapTrimmer({ gc, oldGenerationUsed, loopUtilization: loopUtilizationMeter(), now: Date.now });
  processTrimmer.start();
  return processTrimmer;
}

/** This process's trimmer, if started. */
export function processHeapTrimmer(): HeapTrimmer | undefined {
  return processTrimmer;
}

/** The safe point (see above); costs one comparison when no collection is due. */
export function heapTrimSafePoint(): void {
  processTrimmer?.atSafePoint();
}
