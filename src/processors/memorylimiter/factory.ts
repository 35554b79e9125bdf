/**
 * The `memory_limiter` processor: measures memory every `check_interval` and, while it is above the soft
 * limit, refuses new data with a retryable error (the receiver answers gRPC UNAVAILABLE / HTTP 503 with a
 * retry hint, so clients keep their data and send it again later). Put it first in every pipeline.
 *
 * As in the Collector, one limiter (one measurement loop) serves every pipeline that lists the same
 * processor id.
 */
import type { Component, CreateSettings, PipelineContext } from '../../core/component';
import type { ProcessorFactory } from '../../consumer/factory';
import { AnySignalConsumer, forward, type AnyConsumer, type Signal } from '../../consumer/consumer';
import { PipelineError } from '../../core/errors';
import { requestBuffers } from '../../pdata/buffer-pool';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import type { Counter, Telemetry } from '../../core/telemetry';
import { memoryLimiterConfigSchema, type MemoryLimiterConfig } from './config';
import { v8FullGc } from '../../v8/full-gc';
import { MemoryChecker, availableMemoryBytes, computeLimits, processMemoryBytes } from './memory';

/** Overridable sources, for tests. */
export interface MemorySources {
  read: () => number;
  available: () => number;
  gc: () => (() => void) | undefined;
  now: () => number;
}

const defaultSources: MemorySources = {
  read: processMemoryBytes,
  available: () => availableMemoryBytes().bytes,
  gc: () => {
    const gc = v8FullGc();
    // Under memory pressure the idle request buffers are given up too, so the collection can return them.
    return gc === undefined
      ? undefined
      : () => {
          requestBuffers.dropIdle();
          gc();
        };
  },
  now: () => Date.now(),
};

/** The Collector's processor counter suffix of each signal. */
const REFUSED_UNIT = { traces: 'spans', metrics: 'metric_points', logs: 'log_records' } as const;

/** The measurement loop shared by the pipelines using one processor id. */
class SharedLimiter {
  readonly checker: MemoryChecker;
  /** Items refused, by signal (the Collector's otelcol_processor_refused_{spans,metric_points,log_records}). */
  readonly #refused: Partial<Record<Signal, Counter>> = {};
  readonly #telemetry: Telemetry;
  readonly #labels: Record<string, string>;
  readonly #timer: NodeJS.Timeout;
  readonly #gauges: (() => void)[];
  users = 0;

  constructor(settings: CreateSettings, config: MemoryLimiterConfig, sources: MemorySources) {
    const limits = computeLimits(config, sources.available);
    const gc = sources.gc();
    this.checker = new MemoryChecker({
      ...limits,
      minGcSoftMs: config.min_gc_interval_when_soft_limited,
      minGcHardMs: config.min_gc_interval_when_hard_limited,
      read: sources.read,
      gc,
      now: sources.now,
      logger: settings.logger,
    });
    const labels = { processor: settings.id };
    const t = settings.telemetry;
    this.#telemetry = t;
    this.#labels = labels;
    this.refused('traces');
    // Removed at stop: the id's next limiter (the pipelines started again) registers its own.
    this.#gauges = [
      t.gauge('routelens_memory_limiter_used_bytes', 'Memory the limiter measures (V8 heap used + external), read at scrape time.', labels, sources.read),
      t.gauge('routelens_memory_limiter_peak_bytes', 'Largest memory use seen by the limiter at its checks.', labels, () => this.checker.peak),
      t.gauge(
        'routelens_memory_limiter_limit_bytes',
        'Soft limit of the memory limiter (data is refused above it).',
        { ...labels, limit: 'soft' },
        () => limits.softBytes,
      ),
      t.gauge('routelens_memory_limiter_limit_bytes', 'Hard limit of the memory limiter.', { ...labels, limit: 'hard' }, () => limits.hardBytes),
      t.gauge(
        'routelens_memory_limiter_used_after_gc_bytes',
        'Memory measured right after the last forced GC: what garbage collection could not free.',
        labels,
        () => this.checker.usedAfterGc,
      ),
      t.gauge('routelens_memory_limiter_refusing', '1 while the memory limiter refuses data.', labels, () => (this.checker.refusing ? 1 : 0)),
      t.gauge('routelens_memory_limiter_forced_gcs', 'Garbage collections forced by the memory limiter.', labels, () => this.checker.gcCount),
    ];
    settings.logger.info(
      {
        soft_limit_mib: limits.softBytes / 1048576,
        hard_limit_mib: limits.hardBytes / 1048576,
        check_interval_ms: config.check_interval,
        forced_gc: gc !== undefined,
      },
      gc === undefined ? 'Memory limiter started (V8 refused to expose its garbage collection: no forced collections)' : 'Memory limiter started',
    );
    this.checker.check();
    this.#timer = setInterval(() => this.checker.check(), config.check_interval);
    this.#timer.unref();
  }

  refused(signal: Signal): Counter {
    let c = this.#refused[signal];
    if (c === undefined) {
      const unit = REFUSED_UNIT[signal];
      this.#refused[signal] = c = this.#telemetry.counter(
        `otelcol_processor_refused_${unit}`,
        `Number of ${unit.replace('_', ' ')} refused by the processor (memory limiter over its soft limit).`,
        this.#labels,
      );
    }
    return c;
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const remove of this.#gauges) remove();
  }
}

const shared = new WeakMap<Telemetry, Map<string, SharedLimiter>>();

export class MemoryLimiterProcessor extends AnySignalConsumer implements Component {
  readonly #settings: CreateSettings;
  readonly #config: MemoryLimiterConfig;
  readonly #next: AnyConsumer;
  readonly #sources: MemorySources;
  #limiter: SharedLimiter | undefined;

  constructor(settings: CreateSettings, config: MemoryLimiterConfig, next: AnyConsumer, sources: MemorySources = defaultSources) {
    super();
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    this.#sources = sources;
  }

  /** The shared checker (tests and diagnostics). */
  get checker(): MemoryChecker | undefined {
    return this.#limiter?.checker;
  }

  async start(): Promise<void> {
    if (this.#limiter !== undefined) return;
    let byId = shared.get(this.#settings.telemetry);
    if (byId === undefined) {
      byId = new Map();
      shared.set(this.#settings.telemetry, byId);
    }
    let l = byId.get(this.#settings.id);
    if (l === undefined) {
      l = new SharedLimiter(this.#settings, this.#config, this.#sources);
      byId.set(this.#settings.id, l);
    }
    l.users++;
    this.#limiter = l;
  }

  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    const l = this.#limiter;
    // Also check on each request, not only every check_interval: a burst of large requests between two checks
    // must not carry memory past the hard limit. check() rate-limits the GCs it forces.
    if (l !== undefined && !l.checker.refusing) l.checker.check();
    if (l !== undefined && l.checker.refusing) {
      l.refused(batch.signal).add(batch.itemCount);
      throw new PipelineError('refused', 'data refused due to high memory usage', { retryAfterMs: Math.max(1000, this.#config.check_interval) });
    }
    await forward(this.#next, batch, ctx);
  }

  async shutdown(): Promise<void> {
    const l = this.#limiter;
    if (l === undefined) return;
    this.#limiter = undefined;
    if (--l.users > 0) return;
    l.stop();
    shared.get(this.#settings.telemetry)?.delete(this.#settings.id);
  }
}

export const memoryLimiterProcessorFactory: ProcessorFactory<MemoryLimiterConfig> = {
  kind: 'processor',
  type: 'memory_limiter',
  configSchema: memoryLimiterConfigSchema,
  createTraces: (settings, config, next) => new MemoryLimiterProcessor(settings, config, next),
  createMetrics: (settings, config, next) => new MemoryLimiterProcessor(settings, config, next),
  createLogs: (settings, config, next) => new MemoryLimiterProcessor(settings, config, next),
};
