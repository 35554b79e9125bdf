/**
 * MetricsBatch: the representation of metric data in pipelines, an OtlpBatch (otlp-batch.ts) of
 * `ExportMetricsServiceRequest`s. Its items are data points of every metric type (gauge, sum, histogram,
 * exponential histogram, summary), counted as the Collector counts them. Readers that need the metrics
 * themselves (the runtime view) take the request with `encodeToKeep()` and decode it on their own schedule.
 */
import type { BufferLease } from './buffer-pool';
import { METRICS, OtlpBatch, type ResourceEntry, type SignalLayout } from './otlp-batch';
import { WIRE_LEN, cursor, readLen, readVarint32, skipField } from './wire';

export class MetricsBatch extends OtlpBatch {
  /**
   * Validate and index an encoded `ExportMetricsServiceRequest`. Throws DecodeError (→ INVALID_ARGUMENT / 400)
   * when any level of the message is malformed. The bytes are kept, not copied (see TraceBatch.decode).
   */
  static decode(bytes: Uint8Array, lease?: BufferLease): MetricsBatch {
    return new MetricsBatch(...OtlpBatch.decodeRequest(bytes, METRICS, lease));
  }

  /** A batch of no data points. */
  static empty(): MetricsBatch {
    return new MetricsBatch([], new Uint8Array(0), []);
  }

  /** Concatenate batches (resource order kept). The inputs must not be used afterwards. */
  static concat(batches: readonly MetricsBatch[]): MetricsBatch {
    return batches.length === 0 ? MetricsBatch.empty() : OtlpBatch.joined(batches);
  }

  get layout(): SignalLayout {
    return METRICS;
  }

  protected derive(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]): this {
    return new MetricsBatch(entries, pristine, leases) as this;
  }

  /** Data points in the batch. */
  get dataPointCount(): number {
    return this.itemCount;
  }

  /** Data points under resource `i`. */
  resourceDataPointCount(i: number): number {
    return this.resourceItemCount(i);
  }

  /** Metrics (`Metric` messages) in the batch: read by walking the bytes, for logs rather than per request. */
  metricCount(): number {
    let n = 0;
    for (const e of this.entries) n += countGrandchildren(e.buf, e.start, e.end);
    return n;
  }
}

/** Field-2 messages inside the field-2 messages of `[pos, end)` (metrics of the scopes of a resource). */
export function countGrandchildren(buf: Uint8Array, pos: number, end: number): number {
  const want = (2 << 3) | WIRE_LEN;
  let n = 0;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    if (tag !== want) {
      pos = skipField(buf, tag & 7, pos, end);
      continue;
    }
    const scopeEnd = readLen(buf, pos, end);
    let p = cursor.pos;
    while (p < scopeEnd) {
      const t = readVarint32(buf, p, scopeEnd);
      p = cursor.pos;
      if (t === want) n++;
      p = skipField(buf, t & 7, p, scopeEnd);
    }
    pos = scopeEnd;
  }
  return n;
}
