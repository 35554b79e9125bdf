/**
 * The data-plane contract: one consumer interface per signal. Once the promise a consumer returns settles, the
 * caller no longer owns the data: a consumer that keeps it (a queue) must not expect the caller to mutate it, and
 * a caller must not reuse it after handing it on.
 */
import type { PipelineContext } from '../core/component';
import type { TraceBatch } from '../pdata/trace-batch';

/** The single data-plane contract of trace pipelines. */
export interface TracesConsumer {
  /** Consume a batch. Rejects with a PipelineError (src/core/errors.ts) to refuse it (retryable or permanent). */
  consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void>;
}

/** A metrics data point stream is carried as encoded OTLP `ExportMetricsServiceRequest` bytes. */
export interface MetricsConsumer {
  consumeMetrics(request: Uint8Array, ctx: PipelineContext): Promise<void>;
}
