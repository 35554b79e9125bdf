/**
 * Asks V8 for one of its own incremental full collections at a light load, so that a quiet routelens holds
 * about its live heap instead of up to 8 MB of garbage more (V8 waits for the old generation to grow at least 8 MB
 * past what the last full collection left, and at a light load what reaches it is mostly garbage). Not `gc()`:
 * an atomic collection between requests kills the hidden classes of per-request objects and deoptimises the code
 * that checks them; V8's own collections mark incrementally while requests run. The one way to ask for one is the
 * `--stress-marking=N` flag: while it is above 0, V8 starts incremental marking at its next allocation-limit check
 * once the old generation is a random 0–N % of the way to its limit, so with 1 at once. The trimmer sets it to 1
 * when a collection is due (the old generation grew `stepBytes`, the event loop was busy at most
 * `maxUtilization` of the last second, the last request is `minIntervalMs` old) and back to 0 when V8 reports a
 * full collection, or after `timeoutMs`. `ROUTELENS_HEAP_TRIM=off` turns it off. Measurements and the
 * alternatives tried: docs/decisions/0002-heap-trimmer.md.
 *
 * V8 reports collections to a `gc` PerformanceObserver, and while one observes Node builds a performance entry
 * for every collection, scavenges included (a few a second at a light load). So the observer is connected only
 * while a collection is asked for; the full collections V8 runs on its own are seen at the next check instead, as
 * a fall in the old generation's use (only a full collection frees old-generation space)
 * (docs/decisions/0013-heap-trim-observes-only-when-asking.md).
 */
import * as v8 from 'node:v8';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';

export interface HeapTrimSources {
  /** Make V8 start incremental marking at its next check (true), or stop asking (false). */
  requestMarking: (on: boolean) => void;
  /** Bytes in use in V8's old generation. */
  oldGenerationUsed: () => number;
  /** Share of the time since the previous call the event loop was busy (0–1). */
  loopUtilization: () => number;
  now: () => number;
}

export interface HeapTrimOptions {
  stepBytes: number;
  minIntervalMs: number;
  /** A request V8 has not answered with a full collection by then is withdrawn. */
  timeoutMs: number;
  /** Busier than this (event-loop utilisation) and no collection is requested. */
  maxUtilization: number;
}

// 5 s: the old generation can grow a step in less than 15 s (at 50k spans/s), and a collection every 5 s costs
// under 0.4 % of a core (docs/decisions/0002-heap-trimmer.md).
export const DEFAULT_HEAP_TRIM: HeapTrimOptions = { stepBytes: 1 << 20, minIntervalMs: 5_000, timeoutMs: 10_000, maxUtilization: 0.5 };

const CHECK_INTERVAL_MS = 1000;

export class HeapTrimmer {
  readonly #s: HeapTrimSources;
  readonly #o: HeapTrimOptions;
  /** Old generation in use right after the last full collection. */
  #floor: number;
  #requestedAt = -Infinity;
  /** Old generation in use at the previous check. */
  #lastUsed: number;
  #pending = false;
  #timer: NodeJS.Timeout | undefined;
  #observer: PerformanceObserver | undefined;
  /** Full collections V8 ran while asked to. */
  collections = 0;
  /** Requests withdrawn after `timeoutMs` without a full collection. */
  withdrawn = 0;

  constructor(sources: HeapTrimSources, options: HeapTrimOptions = DEFAULT_HEAP_TRIM) {
    this.#s = sources;
    this.#o = options;
    this.#floor = sources.oldGenerationUsed();
    this.#lastUsed = this.#floor;
  }

  /** True while V8 is asked for a collection. */
  get pending(): boolean {
    return this.#pending;
  }

  /** True while the `gc` PerformanceObserver is connected (only while a collection is asked for). */
  get observing(): boolean {
    return this.#observing;
  }

  #observing = false;

  /** Called once a second. */
  check(): void {
    const used = this.#s.oldGenerationUsed();
    // A fall since the last check: a full collection ran (V8's own, unreported while not observing).
    if (used < this.#floor || used < this.#lastUsed) this.#floor = used;
    this.#lastUsed = used;
    const now = this.#s.now();
    // Read at every check, pending or not, so that it always covers the last second only.
    const busy = this.#s.loopUtilization() > this.#o.maxUtilization;
    if (this.#pending) {
      if (now - this.#requestedAt >= this.#o.timeoutMs) {
        this.#pending = false;
        this.withdrawn++;
        this.#s.requestMarking(false);
        this.#observe(false);
      }
      return;
    }
    if (busy || used - this.#floor < this.#o.stepBytes || now - this.#requestedAt < this.#o.minIntervalMs) return;
    this.#pending = true;
    this.#requestedAt = now;
    this.#observe(true);
    this.#s.requestMarking(true);
  }

  /** V8 finished a full collection (its PerformanceObserver `gc` entry). */
  majorCollectionDone(): void {
    this.#floor = this.#s.oldGenerationUsed();
    this.#lastUsed = this.#floor;
    if (!this.#pending) return;
    this.#pending = false;
    this.collections++;
    this.#s.requestMarking(false);
    this.#observe(false);
  }

  /** Connect the `gc` observer (once started) while a collection is asked for, and only then. */
  #observe(on: boolean): void {
    const o = this.#observer;
    if (o === undefined || on === this.#observing) return;
    if (on) o.observe({ entryTypes: ['gc'] });
    else o.disconnect();
    this.#observing = on;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), CHECK_INTERVAL_MS).unref();
    this.#observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.majorCollectionDone();
      }
    });
    if (this.#pending) this.#observe(true);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#observe(false);
    this.#observer = undefined;
    if (this.#pending) this.#s.requestMarking(false);
    this.#pending = false;
  }
}

/** Bytes in use in V8's old generation (its `old_space`). */
export function oldGenerationUsed(): number {
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'old_space') return s.space_used_size;
  return 0;
}

/** V8's `--stress-marking` (see above): 1 while a collection is wanted, 0 otherwise. */
export function requestV8Marking(on: boolean): void {
  v8.setFlagsFromString(on ? '--stress-marking=1' : '--stress-marking=0');
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

let processTrimmer: HeapTrimmer | undefined;

/** Start this process's trimmer (unless `ROUTELENS_HEAP_TRIM=off`); returns it. */
export function startHeapTrim(env: NodeJS.ProcessEnv = process.env): HeapTrimmer | undefined {
  if (processTrimmer !== undefined || env.ROUTELENS_HEAP_TRIM === 'off') return processTrimmer;
  processTrimmer = new HeapTrimmer({ requestMarking: requestV8Marking, oldGenerationUsed, loopUtilization: loopUtilizationMeter(), now: Date.now });
  processTrimmer.start();
  return processTrimmer;
}

/** This process's trimmer, if started. */
export function processHeapTrimmer(): HeapTrimmer | undefined {
  return processTrimmer;
}
