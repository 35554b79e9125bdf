/** The exporter the `otlp` and `otlphttp` factories build: a wire transport behind a bounded sending queue with retries. */
import { type ClientAuthBinding } from '../../core/auth';
import type { Component, CreateSettings, PipelineContext } from '../../core/component';
import { AnySignalConsumer, type Signal } from '../../consumer/consumer';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import type { ExporterHelperConfig } from './config';
import { QueuedSender, type SenderUnit } from './queued-sender';
import { resolveQueueStore } from './storage';
import type { Transport } from './transport';

/** The Collector's exporter counter suffix of each signal. */
export const UNIT_OF_SIGNAL: Readonly<Record<Signal, SenderUnit>> = { traces: 'spans', metrics: 'metric_points', logs: 'log_records' };

/**
 * An exporter built from a transport and a queued sender; shared by the gRPC and HTTP exporters. One instance
 * carries one signal (its transport speaks that signal's method or URL).
 */
export class OtlpExporter extends AnySignalConsumer implements Component {
  readonly #sender: QueuedSender;
  readonly #settings: CreateSettings;
  readonly #storage: string | undefined;
  readonly #auth: ClientAuthBinding | undefined;
  #started = false;
  constructor(settings: CreateSettings, sender: QueuedSender, storage: string | undefined, auth?: ClientAuthBinding) {
    super();
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
  async consume(batch: OtlpBatch, _ctx: PipelineContext): Promise<void> {
    // The parts are slices of the received (pooled) bytes: keep them until the queue is done with them.
    const release = batch.retainBytes();
    try {
      await this.#sender.submit({ body: batch.encodeParts(), items: batch.itemCount, release });
    } catch (err) {
      release();
      throw err;
    }
  }
  async shutdown(signal?: AbortSignal): Promise<void> {
    // Again after the first call: the sender's second shutdown waits for the first to finish draining.
    if (!this.#started) return;
    await this.#sender.shutdown(signal);
  }
  healthy(): boolean {
    return this.#sender.healthy();
  }
}

/**
 * Requests already waiting in the queue when a sender takes one go with it as one call, up to this many bytes:
 * well under the 4 MiB a gRPC server (the Collector's otlp receiver among them) accepts by default.
 */
export const MERGE_MAX_BYTES = 1 << 20;

/** An OTLP exporter of `signal` over `transport`, behind a bounded sending queue with retries. */
export function queuedOtlpExporter(
  settings: CreateSettings,
  config: ExporterHelperConfig,
  signal: Signal,
  transport: Transport,
  auth: ClientAuthBinding,
): OtlpExporter {
  const sender = new QueuedSender({
    id: settings.id,
    unit: UNIT_OF_SIGNAL[signal],
    transport,
    timeoutMs: config.timeout,
    queue: config.sending_queue,
    retry: config.retry_on_failure,
    logger: settings.logger,
    telemetry: settings.telemetry,
    merge: { maxBytes: MERGE_MAX_BYTES },
  });
  return new OtlpExporter(settings, sender, config.sending_queue.storage, auth);
}
