/**
 * Contracts between exporters' sending queues and the storage extensions that persist them (file_storage), and
 * the encoded request they carry. In core so that neither side imports the other.
 */

/**
 * An encoded OTLP request: one buffer, or the parts that make it up in order (a TraceBatch's re-encoded
 * resources between slices of the received bytes). Transports that can write parts one after another send them
 * without joining them first.
 */
export type Body = Uint8Array | readonly Uint8Array[];

export function bodyLength(body: Body): number {
  if (body instanceof Uint8Array) return body.byteLength;
  let n = 0;
  for (const p of body) n += p.byteLength;
  return n;
}

/** The body as one Buffer (no copy when it already is one buffer). */
export function bodyBytes(body: Body): Buffer {
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body.length === 1) return bodyBytes(body[0] as Uint8Array);
  return Buffer.concat(body);
}

export interface QueueItem {
  body: Body;
  /** Spans or data points in the request (for counting). */
  items: number;
  /**
   * Called (at most once matters; it may be called again) when `body` is no longer needed: delivered, dropped,
   * or written to a persistent store. Lets the receiver's pooled buffer, which `body` may point into, be reused.
   */
  release?: () => void;
}

/** Where queued items live: memory by default, a file_storage extension for a persistent queue. */
export interface QueueStore {
  /** Add an item; rejects (retryably) when it cannot be stored. */
  push(item: QueueItem): Promise<void>;
  /** Next item to send, or undefined when empty. The item stays owned by the store until `ack`. */
  take(): QueueItem | undefined;
  /** The item was delivered (or dropped for good). */
  ack(item: QueueItem): Promise<void>;
  /** The item could not be delivered before shutdown: keep it for the next start if the store can. */
  nack(item: QueueItem): Promise<void>;
  readonly size: number;
  /** True when items left at shutdown survive to the next start (nack keeps them). */
  readonly persistent?: boolean;
  close(): Promise<void>;
}

/** A storage extension (file_storage) hands out one persistent queue per exporter. */
export interface StorageExtension {
  openQueue(owner: string): Promise<QueueStore>;
}

export function isStorageExtension(c: unknown): c is StorageExtension {
  return typeof (c as StorageExtension | undefined)?.openQueue === 'function';
}
