/** The exporter the `otlp` and `otlphttp` factories build: a wire transport behind a bounded sending queue with retries. */
import { type ClientAuthBinding } from '../../core/auth';
import type { Component, CreateSettings } from '../../core/component';
import type { MetricsConsumer, TracesConsumer } from '../../consumer/consumer';
import type { TraceBatch } from '../../pdata/trace-batch';
import type { ExporterHelperConfig } from './config';
import { QueuedSender } from './queued-sender';
import { resolveQueueStore } from './storage';
import type { Transport } from './transport';

/** An exporter built from a transport and a queued sender; shared by the gRPC and HTTP exporters. */
export class OtlpExporter implements Component, TracesConsumer, MetricsConsumer {
  readonly #sender: QueuedSender;
  readonly #settings: CreateSettings;
  readonly #storage: string | undefined;
  readonly #auth: ClientAuthBinding | undefined;
  #started = false;
  constructor(settings: CreateSettings, sender: QueuedSender, storage: string | undefined, auth?: ClientAuthBinding) {
    this.#settings = settings;
    this.#sender = sender;
    this.#storage = storage;
    this.#auth = auth;
  }
  async start(host: Parameters<Component['start']>[0]): Promise<void> {
    this.#auth?.resolve(host);
    await resolveQueueStore(this.#sender, this.#storage, host, this.#settings);
    this.#sender.start();
    this.#started = true;
  }
  async consumeTraces(batch: TraceBatch): Promise<void> {
    // The parts are slices of the received (pooled) bytes: keep them until the queue is done with them.
    const release = batch.retainBytes();
    try {
      await this.#sender.submit({ body: batch.encodeParts(), items: batch.spanCount, release });
    } catch (err) {
      release();
      throw err;
    }
  }
  async consumeMetrics(request: Uint8Array): Promise<void> {
    await this.#sender.submit({ body: request, items: 1 });
  }
  async shutdown(signal?: AbortSignal): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#sender.shutdown(signal);
  }
  healthy(): boolean {
    return this.#sender.healthy();
  }
}

/** An OTLP exporter over `transport`, behind a bounded sending queue with retries. */
export function queuedOtlpExporter(
  settings: CreateSettings,
  config: ExporterHelperConfig,
  signal: 'traces' | 'metrics',
  transport: Transport,
  auth: ClientAuthBinding,
): OtlpExporter {
  const sender = new QueuedSender({
    id: settings.id,
    unit: signal === 'traces' ? 'spans' : 'metric_points',
    transport,
    timeoutMs: config.timeout,
    queue: config.sending_queue,
    retry: config.retry_on_failure,
    logger: settings.logger,
    telemetry: settings.telemetry,
  });
  return new OtlpExporter(settings, sender, config.sending_queue.storage, auth);
}
