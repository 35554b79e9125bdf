/**
 * Fan-out: one batch to several consumers (a pipeline's exporters, or the pipelines a receiver feeds).
 * Every consumer but the last gets its own clone, so a processor adding attributes in one pipeline never
 * shows up in another. The batch is accepted only when every consumer accepted it (a full exporter queue
 * makes the client retry, as in the Collector).
 */
import type { MetricsConsumer, TracesConsumer } from '../consumer/consumer';
import type { PipelineContext } from '../core/component';
import type { TraceBatch } from '../pdata/trace-batch';

export function fanoutTraces(consumers: readonly TracesConsumer[]): TracesConsumer {
  if (consumers.length === 1) return consumers[0] as TracesConsumer;
  return {
    async consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void> {
      const last = consumers.length - 1;
      const results = await Promise.allSettled(consumers.map((c, i) => c.consumeTraces(i === last ? batch : batch.clone(), ctx)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },
  };
}

export function fanoutMetrics(consumers: readonly MetricsConsumer[]): MetricsConsumer {
  if (consumers.length === 1) return consumers[0] as MetricsConsumer;
  return {
    async consumeMetrics(request: Uint8Array, ctx: PipelineContext): Promise<void> {
      const results = await Promise.allSettled(consumers.map((c) => c.consumeMetrics(request, ctx)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },
  };
}
