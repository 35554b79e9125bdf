/**
 * The exporter side of a pipeline: a bounded queue drained by `num_consumers` senders, each retrying
 * retryable failures with jittered exponential back-off (longer when the server's RetryInfo / Retry-After says so).
 * A full queue refuses new data with a retryable PipelineError; the receiver turns it into UNAVAILABLE / 503
 * so the client retries. Each exporter has its own queue, so a dead exporter never stalls another.
 */
import type { Logger } from 'pino';
import { StopOnce } from '../../core/component';
import { PipelineError } from '../../core/errors';
import type { Counter, Telemetry } from '../../core/telemetry';
import type { RetryConfig, SendingQueueConfig } from './config';
import { bodyLength, type QueueItem, type QueueStore } from '../../core/storage';
import type { SendResult, Transport } from './transport';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';
import { sleep } from '../../core/sleep';

export class MemoryQueueStore implements QueueStore {
  readonly #items: QueueItem[] = [];
  #head = 0;
  async push(item: QueueItem): Promise<void> {
    this.#items.push(item);
  }
  take(): QueueItem | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as QueueItem;
    this.#items[this.#head++] = undefined as unknown as QueueItem;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return item;
  }
  async ack(): Promise<void> {}
  async nack(): Promise<void> {}
  /** The next item `take` would return, left in the queue. */
  peek(): QueueItem | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }
  get size(): number {
    return this.#items.length - this.#head;
  }
  async close(): Promise<void> {}
}

export type SenderUnit = 'spans' | 'metric_points' | 'log_records';

/** The `data_type` label of the queue gauges (the Collector's), by unit. */
const DATA_TYPE: Readonly<Record<SenderUnit, string>> = { spans: 'traces', metric_points: 'metrics', log_records: 'logs' };

export interface QueuedSenderOptions {
  id: string;
  /** What the queue carries, the suffix of the exporter counters: `spans`, `metric_points` or `log_records`. */
  unit: SenderUnit;
  transport: Transport;
  timeoutMs: number;
  queue: SendingQueueConfig;
  retry: RetryConfig;
  logger: Logger;
  telemetry: Telemetry;
  store?: QueueStore;
  /** Time as the sender sees it (back-off waits, max_elapsed_time): the real one unless a test passes its own. */
  clock?: SenderClock;
  /**
   * Bodies are protobuf export requests (one repeated field), so that several requests joined are one request: a
   * sender then takes the requests already waiting in a memory queue along with the one it takes, up to `maxBytes`
   * in all, and sends them as one call. Nothing waits for more to arrive.
   */
  merge?: { maxBytes: number };
}

export interface SenderClock {
  now(): number;
  /** Wait `ms`, or less if `signal` aborts first (never rejects). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** A number in [0, 1): the jitter of back-offs. */
  random(): number;
}

const realClock: SenderClock = { now: () => Date.now(), sleep, random: () => Math.random() };

export class QueuedSender {
  readonly #o: QueuedSenderOptions;
  readonly #clock: SenderClock;
  #store: QueueStore;
  readonly #sent: Counter;
  readonly #failed: Counter;
  readonly #enqueueFailed: Counter;
  #inFlight = 0;
  #running = false;
  #stopping = false;
  /** The first shutdown's drain, which later calls wait for. */
  /** Aborted when the shutdown deadline passes: senders stop retrying. */
  readonly #abort = new AbortController();
  readonly #shutdown = new StopOnce(this.#abort, () => this.#stop());
  readonly #wake: (() => void)[] = [];
  readonly #workers: Promise<void>[] = [];
  #healthy = true;
  readonly #retryLog = new RateLimitedLog();

  constructor(options: QueuedSenderOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#store = options.store ?? new MemoryQueueStore();
    const labels = { exporter: options.id };
    const queueLabels = { exporter: options.id, data_type: DATA_TYPE[options.unit] };
    const t = options.telemetry;
    this.#sent = t.counter(`otelcol_exporter_sent_${options.unit}`, `Number of ${options.unit} successfully sent to destination.`, labels);
    this.#failed = t.counter(`otelcol_exporter_send_failed_${options.unit}`, `Number of ${options.unit} in failed attempts to send to destination.`, labels);
    this.#enqueueFailed = t.counter(
      `otelcol_exporter_enqueue_failed_${options.unit}`,
      `Number of ${options.unit} failed to be added to the sending queue.`,
      labels,
    );
    t.gauge('otelcol_exporter_queue_size', 'Current size of the retry queue (in batches).', queueLabels, () => this.#store.size);
    t.gauge('otelcol_exporter_queue_capacity', 'Fixed capacity of the retry queue (in batches).', queueLabels, () => options.queue.queue_size);
    t.gauge('otelcol_exporter_in_flight_requests', 'Requests being sent.', queueLabels, () => this.#inFlight);
  }

  /** Replace the in-memory queue by a persistent one (before `start`). */
  useStore(store: QueueStore): void {
    if (this.#running) throw new Error(`Cannot change the queue store of ${this.#o.id} after start`);
    this.#store = store;
  }

  /** True until a send fails for good or the queue is full; reset by a success. */
  healthy(): boolean {
    return this.#healthy;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (!this.#o.queue.enabled) return;
    for (let i = 0; i < this.#o.queue.num_consumers; i++) this.#workers.push(this.#worker());
  }

  /**
   * Queue (or, with the queue disabled, send) one request. Once it resolves the sender owns `item.release`;
   * when it rejects the caller still does.
   */
  async submit(item: QueueItem): Promise<void> {
    if (this.#stopping) {
      this.#enqueueFailed.add(item.items);
      throw new PipelineError('shutting_down', `exporter ${this.#o.id} is shutting down`);
    }
    if (!this.#o.queue.enabled) {
      let ok: boolean;
      try {
        ok = await this.#deliver(item);
      } finally {
        item.release?.();
      }
      if (!ok) throw new PipelineError('unavailable', `exporter ${this.#o.id} could not send the data`);
      return;
    }
    if (this.#store.size >= this.#o.queue.queue_size) {
      this.#enqueueFailed.add(item.items);
      this.#healthy = false;
      throw new PipelineError('refused', `sending queue of exporter ${this.#o.id} is full (${this.#o.queue.queue_size} requests)`, { retryAfterMs: 1000 });
    }
    try {
      await this.#store.push(item);
    } catch (err) {
      this.#enqueueFailed.add(item.items);
      throw err instanceof PipelineError ? err : new PipelineError('refused', `cannot queue data for exporter ${this.#o.id}: ${String(err)}`);
    }
    // A persistent store has written the bytes; what it hands out later is read back from disk.
    if (this.#store.persistent === true) item.release?.();
    this.#wake.shift()?.();
  }

  get queueSize(): number {
    return this.#store.size;
  }

  /** What the queue carries: `spans`, `metric_points` or `log_records`. */
  get unit(): SenderUnit {
    return this.#o.unit;
  }

  /**
   * Stop accepting, drain the queue until `signal` aborts, then stop. A second call waits for the first to finish
   * (its `signal` is a deadline too).
   */
  shutdown(signal?: AbortSignal): Promise<void> {
    return this.#shutdown.stop(signal);
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    for (const w of this.#wake.splice(0)) w();
    await Promise.all(this.#workers);
    const left = this.#store.size;
    if (left > 0 && this.#store.persistent === true) this.#o.logger.warn({ requests: left }, 'Shutdown deadline passed with data still queued');
    else if (left > 0) {
      // A memory queue ends here: what it still holds is dropped, so count it and let its bytes go.
      let dropped = 0;
      for (let item = this.#store.take(); item !== undefined; item = this.#store.take()) {
        dropped += item.items;
        item.release?.();
      }
      this.#failed.add(dropped);
      this.#o.logger.warn({ requests: left, [this.#o.unit]: dropped }, 'Shutdown deadline passed with data still queued');
    }
    await this.#store.close();
    await this.#o.transport.close();
  }

  async #worker(): Promise<void> {
    for (;;) {
      if (this.#abort.signal.aborted) return;
      let item = this.#store.take();
      if (item === undefined) {
        if (this.#stopping) return;
        await new Promise<void>((resolve) => this.#wake.push(resolve));
        continue;
      }
      if (this.#o.merge !== undefined && this.#store instanceof MemoryQueueStore && this.#store.size > 0)
        item = mergeWaiting(item, this.#store, this.#o.merge.maxBytes);
      let delivered: boolean;
      try {
        delivered = await this.#deliver(item);
      } finally {
        // Delivered, dropped for good or, at the shutdown deadline, abandoned (a persistent store keeps its
        // own copy): the bytes are done with either way.
        item.release?.();
      }
      if (delivered || !this.#abort.signal.aborted) await this.#store.ack(item);
      else await this.#store.nack(item);
    }
  }

  /** Send with retries; true when delivered, false when dropped or interrupted. */
  async #deliver(item: QueueItem): Promise<boolean> {
    const r = this.#o.retry;
    const started = this.#clock.now();
    let interval = r.initial_interval;
    for (let attempt = 1; ; attempt++) {
      this.#inFlight++;
      let result: SendResult;
      try {
        result = await this.#o.transport.send(item.body, this.#o.timeoutMs);
      } finally {
        this.#inFlight--;
      }
      if (result.status === 'success') {
        this.#sent.add(item.items - (result.rejected ?? 0));
        if (result.rejected) {
          this.#failed.add(result.rejected);
          this.#o.logger.warn({ rejected: result.rejected, message: result.message }, 'Partial success: the destination rejected some data');
        }
        this.#healthy = true;
        return true;
      }
      const permanent = result.status === 'failure' || !r.enabled;
      const elapsed = this.#clock.now() - started;
      const wait = retryWait(interval, r.randomization_factor, this.#clock.random(), result.status === 'retryable' ? result.retryAfterMs : undefined);
      const outOfTime = r.max_elapsed_time > 0 && elapsed + wait > r.max_elapsed_time;
      if (!permanent && !outOfTime && this.#abort.signal.aborted && this.#store.persistent === true) return false; // kept for the next start
      if (permanent || outOfTime || this.#abort.signal.aborted) {
        this.#failed.add(item.items);
        this.#healthy = false;
        const reason = permanent ? 'permanent error' : outOfTime ? 'retries exhausted' : 'shutdown deadline';
        this.#o.logger.error({ [this.#o.unit]: item.items, attempts: attempt, err: result.error.message, reason }, 'Exporting failed; dropping data');
        return false;
      }
      // One line per 10 s, not one per request and attempt: an outage must not flood the log.
      this.#retryLog.warn(this.#o.logger, 'retry', { attempt, retry_in_ms: Math.round(wait), err: result.error.message }, 'Exporting failed; will retry');
      await this.#clock.sleep(wait, this.#abort.signal);
      if (this.#abort.signal.aborted) {
        if (this.#store.persistent !== true) this.#failed.add(item.items);
        return false;
      }
      interval = Math.min(r.max_interval, interval * r.multiplier);
    }
  }
}

/**
 * `first` and the items waiting behind it in `store`, joined into one while their bodies stay within `maxBytes` in
 * all (`first` alone may be larger): protobuf messages of one type joined byte for byte are one message whose
 * repeated fields hold both lists in order, so the joined body is one export request. Its release releases them all.
 */
export function mergeWaiting(first: QueueItem, store: MemoryQueueStore, maxBytes: number): QueueItem {
  let bytes = bodyLength(first.body);
  let next = store.peek();
  if (next === undefined || bytes + bodyLength(next.body) > maxBytes) return first;
  const body: Uint8Array[] = [];
  const releases: (() => void)[] = [];
  let items = 0;
  const add = (item: QueueItem): void => {
    if (item.body instanceof Uint8Array) body.push(item.body);
    else body.push(...item.body);
    if (item.release !== undefined) releases.push(item.release);
    items += item.items;
  };
  add(first);
  while (next !== undefined && bytes + bodyLength(next.body) <= maxBytes) {
    bytes += bodyLength(next.body);
    add(store.take() as QueueItem);
    next = store.peek();
  }
  return {
    body,
    items,
    release: () => {
      for (const r of releases) r();
    },
  };
}

/**
 * The wait before the next attempt, as the Collector's retry sender computes it: the back-off `intervalMs` jittered
 * to a factor in [1 - factor, 1 + factor] (`random` in [0, 1) picking where), or the server's hint (RetryInfo,
 * Retry-After) when that is longer. A hint never shortens the back-off: a server saying 0 s would otherwise get
 * an attempt per round trip for as long as it refuses.
 */
export function retryWait(intervalMs: number, factor: number, random: number, hintMs?: number): number {
  const backOff = intervalMs * (1 - factor + random * 2 * factor);
  return hintMs === undefined ? backOff : Math.max(backOff, hintMs);
}
