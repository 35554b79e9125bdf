/**
 * Fan-out: one batch to several consumers (a pipeline's exporters, or the pipelines a receiver feeds), for any
 * signal. Every consumer but the last gets its own clone, so a processor adding attributes in one pipeline never
 * shows up in another. The batch is accepted only when every consumer accepted it (a full exporter queue makes
 * the client retry, as in the Collector).
 */
import { AnySignalConsumer, forward, type AnyConsumer, type LogsConsumer, type MetricsConsumer, type TracesConsumer } from '../consumer/consumer';
import type { PipelineContext } from '../core/component';
import type { OtlpBatch } from '../pdata/otlp-batch';

class Fanout extends AnySignalConsumer {
  readonly #consumers: readonly AnyConsumer[];
  constructor(consumers: readonly AnyConsumer[]) {
    super();
    this.#consumers = consumers;
  }
  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    const consumers = this.#consumers;
    const last = consumers.length - 1;
    const results = await Promise.allSettled(consumers.map((c, i) => forward(c, i === last ? batch : batch.clone(), ctx)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

/** One consumer of the consumers' signal that hands each batch to all of them. */
export function fanout(consumers: readonly TracesConsumer[]): TracesConsumer;
export function fanout(consumers: readonly MetricsConsumer[]): MetricsConsumer;
export function fanout(consumers: readonly LogsConsumer[]): LogsConsumer;
export function fanout(consumers: readonly AnyConsumer[]): AnyConsumer;
export function fanout(consumers: readonly AnyConsumer[]): AnyConsumer {
  if (consumers.length === 1) return consumers[0] as AnyConsumer;
  return new Fanout(consumers);
}

/** A fan-out over `consumers`, or undefined when there are none. */
export function fanoutOrNone<C extends AnyConsumer>(consumers: readonly C[]): C | undefined {
  return consumers.length === 0 ? undefined : (fanout(consumers) as C);
}
