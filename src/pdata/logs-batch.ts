/**
 * LogsBatch: the representation of log data in pipelines, an OtlpBatch (otlp-batch.ts) of
 * `ExportLogsServiceRequest`s. Its items are log records. Logs pass through: bodies, attributes, trace and span
 * ids stay the bytes that arrived.
 */
import type { BufferLease } from './buffer-pool';
import { LOGS, OtlpBatch, type ResourceEntry, type SignalLayout } from './otlp-batch';

export class LogsBatch extends OtlpBatch {
  /**
   * Validate and index an encoded `ExportLogsServiceRequest`. Throws DecodeError (→ INVALID_ARGUMENT / 400) when
   * any level of the message is malformed. The bytes are kept, not copied (see TraceBatch.decode).
   */
  static decode(bytes: Uint8Array, lease?: BufferLease): LogsBatch {
    return new LogsBatch(...OtlpBatch.decodeRequest(bytes, LOGS, lease));
  }

  /** A batch of no log records. */
  static empty(): LogsBatch {
    return new LogsBatch([], new Uint8Array(0), []);
  }

  /** Concatenate batches (resource order kept). The inputs must not be used afterwards. */
  static concat(batches: readonly LogsBatch[]): LogsBatch {
    return batches.length === 0 ? LogsBatch.empty() : OtlpBatch.joined(batches);
  }

  get layout(): SignalLayout {
    return LOGS;
  }

  protected derive(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]): this {
    return new LogsBatch(entries, pristine, leases) as this;
  }

  /** Log records in the batch. */
  get logRecordCount(): number {
    return this.itemCount;
  }

  /** Log records under resource `i`. */
  resourceLogRecordCount(i: number): number {
    return this.resourceItemCount(i);
  }
}
