/**
 * RuntimeView: the runtime of each instance that sends metrics, fed from a copy of the metrics stream.
 *
 * `offer(request)` is what a pipeline calls with each ExportMetricsServiceRequest it forwards: it copies the bytes
 * into a bounded queue and returns at once (false when the queue is full: the request is dropped from the view
 * and counted, never delayed or refused). `offerKept(request)` does the same with bytes nobody changes afterwards,
 * without the copy. The queue is decoded one request per macrotask, after the pipeline's own work. Nothing the
 * view does changes what is forwarded.
 *
 * The state is mergeable: `snapshot()` in each worker process, `merge()` in the primary, then `query()`.
 */
import { DecodeError } from '../pdata/errors';
import { handleRuntimeQuery, isRuntimePath, type SpanRoutes } from './query';
import { RuntimeState, type RuntimeSnapshot, type RuntimeStateOptions } from './state';

export interface RuntimeViewOptions extends Partial<RuntimeStateOptions> {
  /** Query windows (ms); the longest bounds what is kept. */
  windowsMs: readonly number[];
  /** Bytes of requests waiting to be decoded before further ones are dropped (default 8 MiB). */
  maxQueueBytes?: number;
  /** Requests waiting to be decoded before further ones are dropped (default 256). */
  maxQueueRequests?: number;
  clock?: { now(): number };
}

export interface RuntimeViewStats {
  /** Requests taken into the queue. */
  accepted: number;
  /** Requests dropped because the queue was full. */
  dropped: number;
  /** Requests the view could not decode (the pipeline had accepted them: they were still forwarded). */
  decodeErrors: number;
  /** Requests decoded. */
  ingested: number;
  /** Allow-listed points recorded. */
  points: number;
  /** Points not recorded because a cap (instances, streams per instance) was reached. */
  droppedPoints: number;
  queuedRequests: number;
  queuedBytes: number;
}

const SWEEP_EVERY_MS = 30_000;

export class RuntimeView {
  readonly state: RuntimeState;
  readonly windowsMs: readonly number[];
  readonly clock: { now(): number };
  readonly stats: RuntimeViewStats = { accepted: 0, dropped: 0, decodeErrors: 0, ingested: 0, points: 0, droppedPoints: 0, queuedRequests: 0, queuedBytes: 0 };
  readonly #maxQueueBytes: number;
  readonly #maxQueueRequests: number;
  readonly #queue: { bytes: Uint8Array; receivedMs: number }[] = [];
  #scheduled = false;
  #lastSweepMs = 0;
  #idle: (() => void)[] = [];

  constructor(o: RuntimeViewOptions) {
    if (o.windowsMs.length === 0) throw new Error('RuntimeView needs at least one window');
    this.windowsMs = [...o.windowsMs];
    this.state = new RuntimeState({ spacingMs: Math.min(...o.windowsMs) / 60, ...o, maxWindowMs: Math.max(...o.windowsMs) });
    this.clock = o.clock ?? Date;
    this.#maxQueueBytes = o.maxQueueBytes ?? 8 * 1024 * 1024;
    this.#maxQueueRequests = o.maxQueueRequests ?? 256;
  }

  /** Queue a copy of an ExportMetricsServiceRequest for the view. Never throws, never waits. */
  offer(request: Uint8Array): boolean {
    // The caller's buffer may be pooled and reused once the pipeline returns: keep a copy.
    return this.#enqueue(request, true);
  }

  /**
   * Queue an ExportMetricsServiceRequest the caller will never modify nor reuse (OtlpBatch.encodeToKeep), without
   * copying it. Never throws, never waits.
   */
  offerKept(request: Uint8Array): boolean {
    return this.#enqueue(request, false);
  }

  #enqueue(request: Uint8Array, copy: boolean): boolean {
    if (this.#queue.length >= this.#maxQueueRequests || this.stats.queuedBytes + request.length > this.#maxQueueBytes) {
      this.stats.dropped++;
      return false;
    }
    // The state decodes strings in place from a Buffer (decision 0017).
    const bytes = copy ? Buffer.from(request) : Buffer.isBuffer(request) ? request : Buffer.from(request.buffer, request.byteOffset, request.byteLength);
    this.#queue.push({ bytes, receivedMs: this.clock.now() });
    this.stats.accepted++;
    this.stats.queuedRequests++;
    this.stats.queuedBytes += request.length;
    this.#schedule();
    return true;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#drainOne());
  }

  #drainOne(): void {
    this.#scheduled = false;
    const item = this.#queue.shift();
    if (item !== undefined) {
      this.stats.queuedRequests--;
      this.stats.queuedBytes -= item.bytes.length;
      try {
        const r = this.state.ingest(item.bytes, item.receivedMs);
        this.stats.ingested++;
        this.stats.points += r.points;
        this.stats.droppedPoints += r.droppedPoints;
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        this.stats.decodeErrors++;
      }
      if (item.receivedMs - this.#lastSweepMs >= SWEEP_EVERY_MS) this.sweep(item.receivedMs);
    }
    if (this.#queue.length > 0) this.#schedule();
    else for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves once every queued request has been decoded. */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  sweep(nowMs = this.clock.now()): void {
    this.#lastSweepMs = nowMs;
    this.state.sweep(nowMs);
  }

  snapshot(): RuntimeSnapshot {
    return this.state.snapshot();
  }

  merge(snapshot: RuntimeSnapshot): void {
    this.state.merge(snapshot);
  }

  /** Does `pathname` belong to the runtime API (/api/v1/runtime, /api/v1/services/{service}/runtime)? */
  static handles(pathname: string): boolean {
    return isRuntimePath(pathname);
  }

  query(pathname: string, params: URLSearchParams, spanRoutes?: SpanRoutes, nowMs = this.clock.now()): { status: number; body: unknown } {
    return handleRuntimeQuery(this.state, pathname, params, nowMs, { windowsMs: this.windowsMs, spanRoutes });
  }
}
