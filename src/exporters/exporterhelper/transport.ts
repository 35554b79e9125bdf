/** How an exporter's wire transport reports a send: errors as values, carrying the server's retry hint. */

export type SendResult =
  | { status: 'success'; /** spans or points the server reported as rejected (partial_success) */ rejected?: number; message?: string }
  | { status: 'retryable'; error: Error; retryAfterMs?: number | undefined }
  | { status: 'failure'; error: Error };

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

export interface Transport {
  /** Send one encoded OTLP request. Never throws: failures come back as values. */
  send(body: Body, timeoutMs: number): Promise<SendResult>;
  close(): Promise<void>;
}
