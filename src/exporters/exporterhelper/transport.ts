/** How an exporter's wire transport reports a send: errors as values, carrying the server's retry hint. */
import type { Body } from '../../core/storage';

export type SendResult =
  | { status: 'success'; /** spans or points the server reported as rejected (partial_success) */ rejected?: number; message?: string }
  | { status: 'retryable'; error: Error; retryAfterMs?: number | undefined }
  | { status: 'failure'; error: Error };

export interface Transport {
  /** Send one encoded OTLP request. Never throws: failures come back as values. */
  send(body: Body, timeoutMs: number): Promise<SendResult>;
  close(): Promise<void>;
}
