/**
 * The `loadbalancing` exporter: every span of a trace (or of a service) to one backend that the resolver finds,
 * over OTLP/gRPC.
 *
 * - **One queue, before routing.** A request is acknowledged once it is in the sending queue (memory, or
 *   `file_storage`: it then survives a crash of this process). When sent, it is split by trace id among the
 *   backends that own its traces now (ring.ts, router.ts) and each part goes to its backend. A part that fails
 *   with a retryable error is retried after a back-off, routed again: if its backend left the ring meanwhile, it
 *   goes to the new owner. So nothing is stranded in the queue of a backend that is gone (the Collector keeps one
 *   queue per backend, and loses what is in it when the backend disappears). The request leaves the queue once
 *   every part is delivered or dropped for good.
 * - **Ring changes do not split traces in progress** (router.ts): traces seen before a change keep their old
 *   owner for `routing_grace`; with the `k8s` resolver, a terminating replica receives no new traces but still
 *   the rest of the ones it has.
 * - A backend that does not answer holds only its own parts: the others keep flowing until the queue is full
 *   (then new data is refused with a retryable status, as any exporter's full queue is).
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { ClientAuthBinding } from '../../core/auth';
import { StopOnce, type Component, type CreateSettings, type Host } from '../../core/component';
import { PipelineError } from '../../core/errors';
import { sleep } from '../../core/sleep';
import { bodyBytes, isStorageExtension, type QueueItem, type QueueStore } from '../../core/storage';
import type { Counter, Telemetry } from '../../core/telemetry';
import type { TracesConsumer } from '../../consumer/consumer';
import { DecodeError } from '../../pdata/errors';
import { TraceBatch, type TraceIdRef } from '../../pdata/trace-batch';
import { createResolver, type Membership, type Resolver } from '../../discovery/resolver';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';
import { GrpcTransport } from '../exporterhelper/grpc-transport';
import { MemoryQueueStore, retryWait } from '../exporterhelper/queued-sender';
import type { LoadBalancingConfig } from './config';
import { Coalescer } from './coalescer';
import { hashBytes, hashString } from './ring';
import { TraceRouter } from './router';

const TRACE_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** One backend: its connection and how many sends it has in flight. */
class Backend {
  readonly endpoint: string;
  readonly transport: GrpcTransport;
  active = 0;
  readonly #waiters: (() => void)[] = [];
  readonly #limit: number;

  constructor(endpoint: string, transport: GrpcTransport, limit: number) {
    this.endpoint = endpoint;
    this.transport = transport;
    this.#limit = limit;
  }

  async acquire(): Promise<void> {
    while (this.active >= this.#limit) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.active++;
  }

  release(): void {
    this.active--;
    this.#waiters.shift()?.();
  }
}

/** A part waiting to be coalesced with others for its backend, and when its request was first tried. */
interface Piece {
  batch: TraceBatch;
  startedMs: number;
}

/** A part's retry state: when its request was first tried, and the next back-off. */
interface Attempt {
  startedMs: number;
  intervalMs: number;
  attempts: number;
}

interface Metrics {
  sent: Counter;
  failed: Counter;
  enqueueFailed: Counter;
  rerouted: Counter;
  resolutionsOk: Counter;
  resolutionsFailed: Counter;
  backendUpdates: Counter;
  outcome: (endpoint: string, success: boolean) => Counter;
}

function makeMetrics(t: Telemetry, id: string, resolver: string): Metrics {
  const labels = { exporter: id };
  const outcomes = new Map<string, Counter>();
  return {
    sent: t.counter('otelcol_exporter_sent_spans', 'Number of spans successfully sent to destination.', labels),
    failed: t.counter('otelcol_exporter_send_failed_spans', 'Number of spans in failed attempts to send to destination.', labels),
    enqueueFailed: t.counter('otelcol_exporter_enqueue_failed_spans', 'Number of spans failed to be added to the sending queue.', labels),
    rerouted: t.counter('routelens_loadbalancer_rerouted_spans', 'Spans sent again, routed anew, after their backend failed.', labels),
    resolutionsOk: t.counter('otelcol_loadbalancer_num_resolutions', 'Number of times the resolver has triggered new resolutions.', {
      ...labels,
      resolver,
      success: 'true',
    }),
    resolutionsFailed: t.counter('otelcol_loadbalancer_num_resolutions', 'Number of times the resolver has triggered new resolutions.', {
      ...labels,
      resolver,
      success: 'false',
    }),
    backendUpdates: t.counter('otelcol_loadbalancer_num_backend_updates', 'Number of times the list of backends was updated.', { ...labels, resolver }),
    outcome: (endpoint, success) => {
      const key = `${endpoint}\u0000${success}`;
      let c = outcomes.get(key);
      if (c === undefined) {
        c = t.counter('otelcol_loadbalancer_backend_outcome', 'Number of successes and failures for each endpoint.', {
          ...labels,
          endpoint,
          success: String(success),
        });
        outcomes.set(key, c);
      }
      return c;
    },
  };
}

export class LoadBalancingExporter implements Component, TracesConsumer {
  readonly #settings: CreateSettings;
  readonly #config: LoadBalancingConfig;
  readonly #logger: Logger;
  readonly #auth: ClientAuthBinding;
  readonly #router: TraceRouter;
  readonly #backends = new Map<string, Backend>();
  readonly #metrics: Metrics;
  readonly #retryLog = new RateLimitedLog();
  /** Batches of items queued in memory, so they are not decoded again when sent. */
  readonly #batches = new WeakMap<QueueItem, TraceBatch>();
  readonly #abort = new AbortController();
  readonly #shutdown = new StopOnce(this.#abort, () => this.#stop());
  readonly #wake: (() => void)[] = [];
  readonly #workers: Promise<void>[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #now: () => number;
  /** Parts bound for one backend sent together (`sending_queue.batch`); undefined: each part alone. */
  readonly #coalescer: Coalescer<Piece> | undefined;
  #store: QueueStore = new MemoryQueueStore();
  #resolver: Resolver | undefined;
  #stopping = false;
  /** The first shutdown's drain, which later calls wait for. */
  #started = false;
  #healthy = true;

  constructor(settings: CreateSettings, config: LoadBalancingConfig, opts: { now?: () => number } = {}) {
    this.#settings = settings;
    this.#config = config;
    this.#logger = settings.logger;
    this.#now = opts.now ?? Date.now;
    this.#auth = new ClientAuthBinding(config.protocol.otlp.auth?.authenticator, `exporters.${settings.id}.protocol.otlp.auth.authenticator`);
    this.#router = new TraceRouter(config.routing_grace, this.#now());
    const batch = config.sending_queue.batch;
    if (batch !== undefined)
      this.#coalescer = new Coalescer<Piece>(
        { flushTimeoutMs: batch.flush_timeout, minSize: batch.min_size, maxSize: batch.max_size },
        (p) => p.batch.spanCount,
        (endpoint, pieces) => this.#sendCoalesced(endpoint, pieces),
      );
    // Every part waiting for a retry listens for the shutdown deadline.
    setMaxListeners(0, this.#abort.signal);
    const resolverKind = config.resolver.k8s !== undefined ? 'k8s' : config.resolver.dns !== undefined ? 'dns' : 'static';
    this.#metrics = makeMetrics(settings.telemetry, settings.id, resolverKind);
    const t = settings.telemetry;
    const labels = { exporter: settings.id };
    t.gauge('otelcol_exporter_queue_size', 'Current size of the retry queue (in batches).', { ...labels, data_type: 'traces' }, () => this.#store.size);
    t.gauge(
      'otelcol_exporter_queue_capacity',
      'Fixed capacity of the retry queue (in batches).',
      { ...labels, data_type: 'traces' },
      () => config.sending_queue.queue_size,
    );
    t.gauge(
      'otelcol_loadbalancer_num_backends',
      'Current number of backends in use.',
      { ...labels, resolver: resolverKind },
      () => this.#router.ring.backends.length,
    );
    t.gauge(
      'routelens_loadbalancer_ring_transitions',
      'Backend changes whose grace period is running (traces seen before keep their old owner).',
      labels,
      () => this.#router.transitions,
    );
  }

  /** The backends new traces go to (tests). */
  get backends(): readonly string[] {
    return this.#router.ring.backends;
  }

  async start(host: Host): Promise<void> {
    this.#auth.resolve(host);
    const storage = this.#config.sending_queue.storage;
    if (storage !== undefined) {
      const ext = host.getExtension(storage);
      if (!isStorageExtension(ext))
        throw new Error(`exporters.${this.#settings.id}.sending_queue.storage: extension ${JSON.stringify(storage)} is not a running storage extension`);
      this.#store = await ext.openQueue(this.#settings.id);
    }
    try {
      this.#resolver = createResolver(this.#config.resolver, {
        logger: this.#logger,
        onResolution: (ok) => (ok ? this.#metrics.resolutionsOk : this.#metrics.resolutionsFailed).add(),
      });
      this.#resolver.subscribe((m) => this.#onMembership(m));
      await this.#resolver.start();
    } catch (err) {
      throw new Error(`exporters.${this.#settings.id}.resolver: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#onMembership(this.#resolver.membership());
    this.#started = true;
    if (this.#config.sending_queue.enabled) for (let i = 0; i < this.#config.sending_queue.num_consumers; i++) this.#workers.push(this.#worker());
  }

  #onMembership(m: Membership): void {
    const before = this.#router.ring.backends;
    this.#router.setBackends(m.ready, this.#now());
    if (this.#router.ring.backends !== before) {
      this.#metrics.backendUpdates.add();
      this.#logger.info({ backends: this.#router.ring.backends }, 'Load balancing backends changed');
    }
    this.#wake.splice(0).forEach((w) => w());
    this.#closeUnused();
  }

  /** Close connections to backends that neither the ring nor a running transition routes to, once idle. */
  #closeUnused(): void {
    const keep = new Set(this.#router.ring.backends);
    for (const [ep, b] of this.#backends) {
      if (keep.has(ep) || b.active > 0) continue;
      // A transition may still route old traces there; a send recreates the connection if so.
      this.#backends.delete(ep);
      void b.transport.close();
    }
  }

  #backend(endpoint: string): Backend {
    let b = this.#backends.get(endpoint);
    if (b === undefined) {
      const o = this.#config.protocol.otlp;
      const transport = new GrpcTransport({
        auth: this.#auth,
        endpoint,
        tls: o.tls,
        headers: o.headers,
        compression: o.compression,
        method: TRACE_METHOD,
        balancer: 'pick_first',
      });
      b = new Backend(endpoint, transport, this.#config.sending_queue.num_consumers);
      this.#backends.set(endpoint, b);
    }
    return b;
  }

  healthy(): boolean {
    return this.#healthy;
  }

  async consumeTraces(batch: TraceBatch): Promise<void> {
    if (this.#stopping) {
      this.#metrics.enqueueFailed.add(batch.spanCount);
      throw new PipelineError('shutting_down', `exporter ${this.#settings.id} is shutting down`);
    }
    if (batch.spanCount === 0) return;
    if (!this.#config.sending_queue.enabled) {
      const release = batch.retainBytes();
      try {
        if (!(await this.#deliver(batch))) throw new PipelineError('unavailable', `exporter ${this.#settings.id} could not send the data`);
      } finally {
        release();
      }
      return;
    }
    if (this.#store.size + this.#inFlight.size >= this.#config.sending_queue.queue_size) {
      this.#metrics.enqueueFailed.add(batch.spanCount);
      this.#healthy = false;
      throw new PipelineError('refused', `sending queue of exporter ${this.#settings.id} is full (${this.#config.sending_queue.queue_size} requests)`, {
        retryAfterMs: 1000,
      });
    }
    const release = batch.retainBytes();
    const item: QueueItem = { body: batch.encodeParts(), items: batch.spanCount, release };
    try {
      await this.#store.push(item);
    } catch (err) {
      release();
      this.#metrics.enqueueFailed.add(batch.spanCount);
      throw err instanceof PipelineError ? err : new PipelineError('refused', `cannot queue data for exporter ${this.#settings.id}: ${String(err)}`);
    }
    if (this.#store.persistent === true) release();
    else this.#batches.set(item, batch);
    this.#wake.shift()?.();
  }

  async #worker(): Promise<void> {
    const limit = this.#config.sending_queue.queue_size;
    for (;;) {
      if (this.#abort.signal.aborted) return;
      if (this.#inFlight.size >= limit) {
        await Promise.race(this.#inFlight);
        continue;
      }
      const item = this.#store.take();
      if (item === undefined) {
        if (this.#stopping) return;
        await new Promise<void>((resolve) => this.#wake.push(resolve));
        continue;
      }
      // Sent without waiting: a backend that does not answer must not hold the parts of other backends.
      const p = this.#deliverItem(item).finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  async #deliverItem(item: QueueItem): Promise<void> {
    let delivered = false;
    try {
      let batch = this.#batches.get(item);
      if (batch === undefined) {
        try {
          batch = TraceBatch.decode(bodyBytes(item.body));
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          this.#metrics.failed.add(item.items);
          this.#logger.error({ err: err.message }, 'A queued request cannot be decoded; dropping it');
          delivered = true;
          return;
        }
      }
      delivered = await this.#deliver(batch);
    } finally {
      this.#batches.delete(item);
      item.release?.();
      // Interrupted by the shutdown deadline: a persistent queue keeps it for the next start.
      if (delivered || !this.#abort.signal.aborted || this.#store.persistent !== true) await this.#store.ack(item);
      else await this.#store.nack(item);
    }
  }

  /** Route `batch` and send every part; true when each was delivered or dropped for good, false when interrupted. */
  async #deliver(batch: TraceBatch): Promise<boolean> {
    return this.#route(batch, { startedMs: this.#now(), intervalMs: this.#config.retry_on_failure.initial_interval, attempts: 0 }, false);
  }

  /**
   * Split `batch` among the backends that own its spans and send each part. `retry`: the batch is a part whose
   * backend failed, so it goes to the current owners (its old owner's transition no longer applies).
   */
  async #route(batch: TraceBatch, attempt: Attempt, retry: boolean): Promise<boolean> {
    const router = this.#router;
    router.tick(this.#now());
    if (router.ring.backends.length === 0) return this.#retryLater(batch, attempt, new Error('no backend: the resolver found none'));
    const index = new Map<string, number>();
    const endpoints: string[] = [];
    const slot = (ep: string): number => {
      let i = index.get(ep);
      if (i === undefined) {
        i = endpoints.length;
        index.set(ep, i);
        endpoints.push(ep);
      }
      return i;
    };
    const pick = (h: number): string => (retry ? router.currentOwner(h) : router.route(h)) as string;
    let parts: (TraceBatch | undefined)[];
    if (this.#config.routing_key === 'service') {
      parts = batch.partitionByResource((r) => {
        const s = batch.resourceAttribute(r, 'service.name');
        return slot(pick(hashString(typeof s === 'string' ? s : '')));
      });
    } else {
      parts = batch.partitionBySpan((ref: TraceIdRef) => slot(pick(hashBytes(ref.buf, ref.at, ref.len))));
    }
    // A first attempt may share its backend's call with other requests' parts; a retry goes alone, at once.
    const coalescer = retry ? undefined : this.#coalescer;
    const results = await Promise.all(
      parts.map((p, i) => {
        if (p === undefined) return true;
        const endpoint = endpoints[i] as string;
        return coalescer === undefined ? this.#send(endpoint, p, attempt) : coalescer.add(endpoint, { batch: p, startedMs: attempt.startedMs });
      }),
    );
    return results.every((ok) => ok);
  }

  /** One call carrying the coalesced parts of several requests; its retries count from the oldest request's start. */
  #sendCoalesced(endpoint: string, pieces: readonly Piece[]): Promise<boolean> {
    let startedMs = Infinity;
    for (const p of pieces) startedMs = Math.min(startedMs, p.startedMs);
    const batch = TraceBatch.concat(pieces.map((p) => p.batch));
    return this.#send(endpoint, batch, { startedMs, intervalMs: this.#config.retry_on_failure.initial_interval, attempts: 0 });
  }

  async #send(endpoint: string, part: TraceBatch, attempt: Attempt): Promise<boolean> {
    const b = this.#backend(endpoint);
    await b.acquire();
    let result;
    try {
      result = await b.transport.send(part.encodeParts(), this.#config.timeout ?? this.#config.protocol.otlp.timeout);
    } finally {
      b.release();
    }
    if (result.status === 'success') {
      this.#metrics.outcome(endpoint, true).add();
      this.#metrics.sent.add(part.spanCount - (result.rejected ?? 0));
      if (result.rejected) {
        this.#metrics.failed.add(result.rejected);
        this.#logger.warn({ endpoint, rejected: result.rejected, message: result.message }, 'Partial success: the backend rejected some spans');
      }
      this.#healthy = true;
      return true;
    }
    this.#metrics.outcome(endpoint, false).add();
    if (result.status === 'failure' || !this.#config.retry_on_failure.enabled) {
      this.#metrics.failed.add(part.spanCount);
      this.#logger.error({ endpoint, spans: part.spanCount, err: result.error.message }, 'Exporting to a backend failed for good; dropping the spans');
      return true;
    }
    return this.#retryLater(part, attempt, result.error, endpoint, result.retryAfterMs);
  }

  /** Wait a back-off, then route `part` again to its current owner; drops it when the retry time is spent. */
  async #retryLater(part: TraceBatch, attempt: Attempt, err: Error, endpoint?: string, retryAfterMs?: number): Promise<boolean> {
    const r = this.#config.retry_on_failure;
    const wait = retryWait(attempt.intervalMs, r.randomization_factor, Math.random(), retryAfterMs);
    const elapsed = this.#now() - attempt.startedMs;
    if (r.max_elapsed_time > 0 && elapsed + wait > r.max_elapsed_time) {
      this.#metrics.failed.add(part.spanCount);
      this.#healthy = false;
      this.#logger.error(
        { endpoint, spans: part.spanCount, attempts: attempt.attempts + 1, err: err.message },
        'Exporting failed, retries exhausted; dropping the spans',
      );
      return true;
    }
    this.#retryLog.warn(
      this.#logger,
      'retry',
      { endpoint, retry_in_ms: Math.round(wait), err: err.message },
      'Exporting to a backend failed; will retry, routed again',
    );
    await sleep(wait, this.#abort.signal);
    if (this.#abort.signal.aborted) {
      if (this.#store.persistent !== true) this.#metrics.failed.add(part.spanCount);
      return false;
    }
    const next: Attempt = {
      startedMs: attempt.startedMs,
      intervalMs: Math.min(r.max_interval, attempt.intervalMs * r.multiplier),
      attempts: attempt.attempts + 1,
    };
    if (endpoint !== undefined) this.#metrics.rerouted.add(part.spanCount);
    return this.#route(part, next, true);
  }

  /**
   * Stop accepting, send what is queued until `signal` aborts, then stop. A second call waits for the first to
   * finish (its `signal` is a deadline too).
   */
  shutdown(signal?: AbortSignal): Promise<void> {
    return this.#shutdown.stop(signal);
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    // What waits to be coalesced goes now, and what the drain takes from the queue goes at once.
    this.#coalescer?.drain();
    this.#wake.splice(0).forEach((w) => w());
    await Promise.all(this.#workers);
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    if (this.#store.size > 0) this.#logger.warn({ requests: this.#store.size }, 'Shutdown deadline passed with data still queued');
    if (this.#started) await this.#store.close();
    await this.#resolver?.stop();
    for (const b of this.#backends.values()) await b.transport.close();
    this.#backends.clear();
  }
}
