/**
 * The data-plane contract: one consumer interface per signal, as in the Collector. Once the promise a consumer
 * returns settles, the caller no longer owns the batch: a consumer that keeps it (a queue) must not expect the
 * caller to mutate it, and a caller must not reuse it after handing it on.
 *
 * The three batches are one representation (`OtlpBatch`, src/pdata/otlp-batch.ts), so a component that does the
 * same to every signal (enrichment, memory limiting, forwarding) implements `consume` once (`AnySignalConsumer`)
 * and hands a batch on with `forward`.
 */
import type { PipelineContext } from '../core/component';
import type { LogsBatch } from '../pdata/logs-batch';
import type { MetricsBatch } from '../pdata/metrics-batch';
import type { OtlpBatch, Signal } from '../pdata/otlp-batch';
import type { TraceBatch } from '../pdata/trace-batch';

export type { Signal } from '../pdata/otlp-batch';

/** The contract of trace pipelines. */
export interface TracesConsumer {
  /** Consume a batch. Rejects with a PipelineError (src/core/errors.ts) to refuse it (retryable or permanent). */
  consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void>;
}

/** The contract of metrics pipelines. */
export interface MetricsConsumer {
  /** Consume a batch. Rejects with a PipelineError (src/core/errors.ts) to refuse it (retryable or permanent). */
  consumeMetrics(batch: MetricsBatch, ctx: PipelineContext): Promise<void>;
}

/** The contract of logs pipelines. */
export interface LogsConsumer {
  /** Consume a batch. Rejects with a PipelineError (src/core/errors.ts) to refuse it (retryable or permanent). */
  consumeLogs(batch: LogsBatch, ctx: PipelineContext): Promise<void>;
}

/** A consumer of one signal or another. */
export type AnyConsumer = TracesConsumer | MetricsConsumer | LogsConsumer;

/** The consumer of each signal, where there is one (a receiver's or connector's pipelines). */
export interface SignalConsumers {
  traces?: TracesConsumer | undefined;
  metrics?: MetricsConsumer | undefined;
  logs?: LogsConsumer | undefined;
}

export const SIGNALS: readonly Signal[] = ['traces', 'metrics', 'logs'];

/**
 * Hand `batch` to `next`, which consumes the batch's signal (the service wires a component only to consumers of
 * its pipeline's signal).
 */
export function forward(next: AnyConsumer, batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
  switch (batch.signal) {
    case 'traces':
      return (next as TracesConsumer).consumeTraces(batch as TraceBatch, ctx);
    case 'metrics':
      return (next as MetricsConsumer).consumeMetrics(batch as MetricsBatch, ctx);
    case 'logs':
      return (next as LogsConsumer).consumeLogs(batch as LogsBatch, ctx);
  }
}

/** A component that does the same to a batch of any signal: it implements `consume` once. */
export abstract class AnySignalConsumer implements TracesConsumer, MetricsConsumer, LogsConsumer {
  abstract consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void>;

  consumeTraces(batch: TraceBatch, ctx: PipelineContext = {}): Promise<void> {
    return this.consume(batch, ctx);
  }

  consumeMetrics(batch: MetricsBatch, ctx: PipelineContext = {}): Promise<void> {
    return this.consume(batch, ctx);
  }

  consumeLogs(batch: LogsBatch, ctx: PipelineContext = {}): Promise<void> {
    return this.consume(batch, ctx);
  }
}
