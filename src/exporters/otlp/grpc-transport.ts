/**
 * OTLP/gRPC transport: sends already-encoded request bytes with an identity serializer, so nothing is
 * re-marshalled. Maps gRPC status codes to retryable/permanent as the Collector's exporter does.
 */
import * as grpc from '@grpc/grpc-js';
import { clientTlsOptions, type TlsClientConfig } from '../../config/tls';
import { decodePartialSuccess, decodeRpcStatus } from '../../pdata/rpc-status';
import type { SendResult, Transport } from '../exporterhelper/transport';

const identity = (b: Buffer): Buffer => b;

const retryableCodes = new Set([grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED, grpc.status.OUT_OF_RANGE, grpc.status.UNAVAILABLE, grpc.status.DATA_LOSS]);

export interface GrpcTransportOptions {
  endpoint: string;
  tls: TlsClientConfig;
  headers: Record<string, string>;
  compression: 'gzip' | 'none' | '';
  /** Full method path, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`. */
  method: string;
  /** Response message type (for partial_success). */
  responseType: string;
  balancer: 'pick_first' | 'round_robin';
  /** Per-request headers from a client authenticator (`auth.authenticator`). */
  auth?: { headers(): Record<string, string> };
}

export class GrpcTransport implements Transport {
  readonly #client: grpc.Client;
  readonly #o: GrpcTransportOptions;

  constructor(o: GrpcTransportOptions) {
    this.#o = o;
    const plaintext = o.tls.insecure || o.endpoint.startsWith('http://');
    const address = o.endpoint.replace(/^https?:\/\//, '');
    let creds: grpc.ChannelCredentials;
    if (plaintext) creds = grpc.credentials.createInsecure();
    else {
      const t = clientTlsOptions(o.tls);
      creds = grpc.credentials.createSsl(t.ca as Buffer | undefined ?? null, t.key as Buffer | undefined ?? null, t.cert as Buffer | undefined ?? null, {
        rejectUnauthorized: t.rejectUnauthorized ?? true,
        ...(o.tls.insecure_skip_verify ? { checkServerIdentity: () => undefined } : {}),
      });
    }
    const options: grpc.ChannelOptions = {
      'grpc.default_compression_algorithm': o.compression === 'gzip' ? 2 : 0,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': -1,
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [o.balancer]: {} }] }),
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5000,
      ...(o.tls.server_name_override === undefined ? {} : { 'grpc.ssl_target_name_override': o.tls.server_name_override }),
    };
    this.#client = new grpc.Client(address, creds, options);
  }

  send(body: Uint8Array, timeoutMs: number): Promise<SendResult> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.#o.headers)) md.set(k, v);
    if (this.#o.auth !== undefined) for (const [k, v] of Object.entries(this.#o.auth.headers())) md.set(k, v);
    const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(this.#o.method, identity, identity, buf, md, { deadline: Date.now() + timeoutMs }, (err, resp) => {
        if (err === null || err === undefined) {
          const partial = resp === undefined ? undefined : decodePartialSuccess(this.#o.responseType, resp);
          resolve(partial === undefined ? { status: 'success' } : { status: 'success', rejected: partial.rejected, message: partial.message });
          return;
        }
        const e = err as grpc.ServiceError;
        let retryAfterMs: number | undefined;
        const details = e.metadata?.get('grpc-status-details-bin')[0];
        if (details instanceof Buffer) retryAfterMs = decodeRpcStatus(details)?.retryAfterMs;
        const error = new Error(`gRPC ${grpc.status[e.code] ?? e.code}: ${e.details || e.message}`);
        // RESOURCE_EXHAUSTED is retryable only when the server says when (RetryInfo), as in the Collector.
        if (retryableCodes.has(e.code) || (e.code === grpc.status.RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) {
          resolve({ status: 'retryable', error, retryAfterMs });
        } else resolve({ status: 'failure', error });
      });
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}
