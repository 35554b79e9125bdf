/**
 * OTLP/HTTP transport: POSTs already-encoded protobuf bodies (gzip by default) over a keep-alive agent.
 * 429/502/503/504 are retryable (with Retry-After as the server's hint), other non-2xx statuses are permanent.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { clientTlsOptions, type TlsClientConfig } from '../../config/tls';
import { decodePartialSuccess, decodeRpcStatus } from '../../pdata/rpc-status';
import { bodyBytes, bodyLength, type Body } from '../../core/storage';
import { type SendResult, type Transport } from '../exporterhelper/transport';

const gzipAsync = promisify(zlib.gzip);

export interface HttpTransportOptions {
  url: string;
  tls: TlsClientConfig;
  headers: Record<string, string>;
  compression: 'gzip' | 'none' | '';
  /** Per-request headers from a client authenticator (`auth.authenticator`). */
  auth?: { headers(): Record<string, string> };
}

const RETRYABLE = new Set([429, 502, 503, 504]);

/** Parse Retry-After (seconds or an HTTP date) into ms. */
export function parseRetryAfter(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

export class HttpTransport implements Transport {
  readonly #o: HttpTransportOptions;
  readonly #url: URL;
  readonly #agent: http.Agent;

  constructor(o: HttpTransportOptions) {
    this.#o = o;
    this.#url = new URL(o.url);
    this.#agent = this.#url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...clientTlsOptions(o.tls) }) : new http.Agent({ keepAlive: true });
  }

  async send(body: Body, timeoutMs: number): Promise<SendResult> {
    const gzip = this.#o.compression === 'gzip';
    // Compress on the thread pool; uncompressed parts are written one after another without being joined.
    const parts: readonly Uint8Array[] = gzip ? [await gzipAsync(bodyBytes(body))] : body instanceof Uint8Array ? [body] : body;
    const length = bodyLength(parts);
    const mod = this.#url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: SendResult): void => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      const req = mod.request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          timeout: timeoutMs,
          headers: {
            ...this.#o.headers,
            ...this.#o.auth?.headers(),
            'content-type': 'application/x-protobuf',
            'content-length': length,
            ...(gzip ? { 'content-encoding': 'gzip' } : {}),
            'user-agent': 'routelens',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= 1 << 20) chunks.push(c);
          });
          res.on('error', (err) => done({ status: 'retryable', error: err }));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const respBody = Buffer.concat(chunks);
            if (status >= 200 && status < 300) {
              const isProto = String(res.headers['content-type'] ?? '').includes('protobuf');
              const partial = isProto ? decodePartialSuccess(respBody) : undefined;
              done(partial === undefined ? { status: 'success' } : { status: 'success', rejected: partial.rejected, message: partial.message });
              return;
            }
            const detail = String(res.headers['content-type'] ?? '').includes('protobuf')
              ? decodeRpcStatus(respBody)?.message
              : respBody.toString('utf8').slice(0, 200);
            const error = new Error(`HTTP ${status}${detail ? `: ${detail}` : ''}`);
            if (RETRYABLE.has(status)) done({ status: 'retryable', error, retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined) });
            else done({ status: 'failure', error });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request timed out after ${timeoutMs}ms`)));
      req.on('error', (err) => done({ status: 'retryable', error: err }));
      for (const p of parts) req.write(p);
      req.end();
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}
