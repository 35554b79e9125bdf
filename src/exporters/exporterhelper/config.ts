/** Queue and retry settings shared by the OTLP exporters, with the Collector's exporterhelper key names. */
import { bool, duration, num, obj, optStr, type Infer } from '../../core/schema';

/** The keys of `sending_queue`, for an exporter whose queue takes more (the loadbalancing exporter's `batch`). */
export const sendingQueueFields = {
  enabled: bool({ default: true, doc: 'Queue requests and send them in the background; the receiver answers once queued.' }),
  num_consumers: num({ default: 10, min: 1, max: 1000, integer: true, doc: 'Concurrent senders draining the queue.' }),
  queue_size: num({ default: 1000, min: 1, integer: true, doc: 'Maximum queued requests; when full, new data is refused with a retryable status.' }),
  storage: optStr({ doc: 'Id of a storage extension (file_storage) for a persistent queue.' }),
};

export const sendingQueueSchema = obj(sendingQueueFields);

export const retrySchema = obj({
  enabled: bool({
    default: true,
    doc: "Retry retryable failures with exponential back-off; a server's RetryInfo / Retry-After lengthens a wait, never shortens it.",
  }),
  initial_interval: duration({ default: '5s', doc: 'First back-off.' }),
  max_interval: duration({ default: '30s', doc: 'Largest back-off between attempts.' }),
  max_elapsed_time: duration({ default: '300s', doc: 'Give up (drop and count) after this long; 0 retries forever.' }),
  multiplier: num({ default: 1.5, min: 1, doc: 'Back-off growth factor.' }),
  randomization_factor: num({ default: 0.5, min: 0, max: 1, doc: 'Jitter: each back-off is multiplied by a random factor in [1-f, 1+f].' }),
});

export type SendingQueueConfig = Infer<typeof sendingQueueSchema>;
export type RetryConfig = Infer<typeof retrySchema>;

/** The exporterhelper keys every queued exporter's config has (its `timeout` in ms, parsed). */
export interface ExporterHelperConfig {
  timeout: number;
  sending_queue: SendingQueueConfig;
  retry_on_failure: RetryConfig;
}
