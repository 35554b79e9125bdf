/**
 * OTLP/gRPC client transport on Node's own HTTP/2 stack, the counterpart of the receiver's server
 * (src/receivers/otlp/grpc.ts). OTLP export is one unary method, so the gRPC framing is written directly: the
 * 5-byte message prefix and the request's parts go to the stream as they are, without first concatenating them
 * into one message and then copying that into a framed buffer (what a general gRPC client does). Those two
 * copies of every request were, with the garbage collection their external memory caused, the largest cost
 * left on routelens's forwarding path (docs/decisions/0005-grpc-on-node-http2.md).
 *
 * Semantics follow gRPC's HTTP/2 protocol and grpc-js's client: `grpc-timeout` deadlines, gzip, status from
 * trailers (or a trailers-only response), HTTP status → gRPC code mapping, RST_STREAM REFUSED_STREAM → UNAVAILABLE,
 * a broken or GOAWAY'd connection is replaced on the next send; `round_robin` spreads requests over every address
 * the endpoint's name resolves to.
 */
import * as dns from 'node:dns';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { splitHostPort } from '../../core/schema';
import { clientTlsOptions, type TlsClientConfig } from '../../config/tls';
import { installLeanAsyncResourceBind } from '../../v8/async-resource-bind';
import { GrpcStatus } from '../../core/errors';
import { decodePartialSuccess, decodeRpcStatus } from '../../pdata/rpc-status';
import { bodyBytes, type Body } from '../../core/storage';
import { type SendResult, type Transport } from './transport';

const gzip = promisify(zlib.gzip);

/** Retryable as in the Collector's exporter; RESOURCE_EXHAUSTED only when the server says when (RetryInfo). */
const RETRYABLE = new Set<number>([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);

/** gRPC's mapping of an HTTP status to a code when a response is not a gRPC response. */
export function grpcCodeOfHttpStatus(status: number): GrpcStatus {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

export interface GrpcTransportOptions {
  endpoint: string;
  tls: TlsClientConfig;
  headers: Record<string, string>;
  compression: 'gzip' | 'none' | '';
  /** Full method path, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`. */
  method: string;
  balancer: 'pick_first' | 'round_robin';
  /** Per-request headers from a client authenticator (`auth.authenticator`). */
  auth?: { headers(): Record<string, string> };
}

/** One HTTP/2 connection to one address. */
interface Channel {
  session: http2.ClientHttp2Session;
  /** The address connected to (the endpoint's host, or one address it resolved to). */
  address: string;
  /** Set once the session failed, closed or got GOAWAY: the next send opens a new one. */
  dead: boolean;
}

/**
 * The request options with every priority default node:http2's request() would otherwise add to its copy of
 * them: adding them made that copy one of the largest sources of objects that outlive a scavenge, and with all
 * present the copy gains no properties.
 */
const REQUEST_OPTIONS: http2.ClientSessionRequestOptions = Object.freeze({ endStream: false, weight: 16, parent: 0, exclusive: false, silent: false });

export class GrpcTransport implements Transport {
  readonly #o: GrpcTransportOptions;
  readonly #secure: boolean;
  readonly #host: string;
  readonly #port: number;
  readonly #tlsOptions: ConnectionOptions | undefined;
  /** Static request headers (metadata + protocol headers). */
  readonly #baseHeaders: http2.OutgoingHttpHeaders;
  #channels: Channel[] = [];
  #connecting: Promise<Channel> | undefined;
  #next = 0;
  #resolvedAt = 0;
  #closed = false;

  constructor(o: GrpcTransportOptions) {
    // Every session.request() binds an AsyncResource; Node 20's bind leaves each request's stream in the old
    // generation until a full collection (v8/async-resource-bind.ts says why).
    installLeanAsyncResourceBind();
    this.#o = o;
    this.#secure = !(o.tls.insecure || o.endpoint.startsWith('http://'));
    // The config schema has checked the endpoint's shape.
    const hp = splitHostPort(o.endpoint.replace(/^https?:\/\//, '')) ?? { host: '', port: 0 };
    this.#host = hp.host;
    this.#port = hp.port;
    this.#tlsOptions = this.#secure ? clientTlsOptions(o.tls) : undefined;
    const headers: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(o.headers)) headers[k.toLowerCase()] = v;
    Object.assign(headers, {
      [http2.constants.HTTP2_HEADER_METHOD]: 'POST',
      [http2.constants.HTTP2_HEADER_PATH]: o.method,
      [http2.constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      [http2.constants.HTTP2_HEADER_TE]: 'trailers',
      [http2.constants.HTTP2_HEADER_USER_AGENT]: 'routelens',
      'grpc-accept-encoding': 'identity,gzip',
      ...(o.compression === 'gzip' ? { 'grpc-encoding': 'gzip' } : {}),
    });
    this.#baseHeaders = headers;
  }

  async send(body: Body, timeoutMs: number): Promise<SendResult> {
    if (this.#closed) return fail(GrpcStatus.UNAVAILABLE, 'exporter is shutting down');
    const deadline = Date.now() + timeoutMs;
    let parts: readonly Uint8Array[] = body instanceof Uint8Array ? [body] : body;
    let compressed = 0;
    if (this.#o.compression === 'gzip') {
      parts = [await gzip(bodyBytes(body))];
      compressed = 1;
    }
    let channel: Channel;
    try {
      channel = await this.#pick(timeoutMs);
    } catch (e) {
      return fail(GrpcStatus.UNAVAILABLE, `cannot connect to ${this.#o.endpoint}: ${(e as Error).message}`);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return fail(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded before the request was sent');
    return this.#call(channel, parts, compressed, remaining);
  }

  #call(channel: Channel, parts: readonly Uint8Array[], compressed: number, timeoutMs: number): Promise<SendResult> {
    let length = 0;
    for (const p of parts) length += p.length;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = compressed;
    prefix.writeUInt32BE(length, 1);
    const headers: http2.OutgoingHttpHeaders = { ...this.#baseHeaders, 'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m` };
    if (this.#o.auth !== undefined) for (const [k, v] of Object.entries(this.#o.auth.headers())) headers[k.toLowerCase()] = v;

    let stream: http2.ClientHttp2Stream;
    try {
      stream = channel.session.request(headers, REQUEST_OPTIONS);
    } catch (e) {
      channel.dead = true;
      return Promise.resolve(fail(GrpcStatus.UNAVAILABLE, `cannot start a call: ${(e as Error).message}`));
    }
    const answer = this.#answer(channel, stream, timeoutMs);
    // The request: prefix and parts as they are (no concatenated copy), then end of stream. Corked, the stream
    // hands all of them to nghttp2 at once (one _writev), which frames them into one socket write; uncorked, each
    // part after the first waits for the previous one's socket write (docs/decisions/0014-small-request-cost.md).
    stream.cork();
    stream.write(prefix);
    for (const p of parts) if (p.length > 0) stream.write(p);
    stream.end(); // uncorks
    return answer;
  }

  /**
   * The call's outcome. Its listeners live as long as the stream, and node keeps a finished stream until a full
   * collection: they must not hold the request body (so it is written by the caller, outside these closures).
   */
  #answer(channel: Channel, stream: http2.ClientHttp2Stream, timeoutMs: number): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (r: SendResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(() => {
        finish(fail(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`));
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, timeoutMs);

      let httpStatus = 0;
      let responseHeaders: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        responseHeaders = h;
        httpStatus = Number(h[':status']);
      });
      stream.on('data', (c: Buffer) => {
        if (chunks.length < 64) chunks.push(c); // a response is a few bytes; a server sending more is ignored
      });
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on('trailers', (t) => {
        trailers = t;
      });
      stream.on('error', () => {
        // 'close' follows with the RST_STREAM code; the session's own error marks the channel dead.
      });
      stream.on('close', () => {
        if (settled) return;
        if (httpStatus !== 0 && httpStatus !== 200) {
          finish(fail(grpcCodeOfHttpStatus(httpStatus), `HTTP status ${httpStatus} from ${this.#o.endpoint}`));
          return;
        }
        // Trailers-only responses carry grpc-status in the response headers.
        const meta = trailers ?? (responseHeaders['grpc-status'] !== undefined ? responseHeaders : undefined);
        if (meta !== undefined) finish(this.#result(meta, chunks));
        else if (channel.dead) finish(fail(GrpcStatus.UNAVAILABLE, `connection to ${this.#o.endpoint} lost before an answer`));
        else finish(resetResult(stream.rstCode, this.#o.endpoint));
      });
    });
  }

  #result(meta: http2.IncomingHttpHeaders, chunks: Buffer[]): SendResult {
    const code = Number(meta['grpc-status']);
    if (!Number.isInteger(code)) return fail(GrpcStatus.UNKNOWN, `response without a valid grpc-status from ${this.#o.endpoint}`);
    if (code === GrpcStatus.OK) {
      const body = Buffer.concat(chunks);
      if (body.length >= 5 && body[0] === 0) {
        const len = body.readUInt32BE(1);
        const partial = decodePartialSuccess(body.subarray(5, 5 + len));
        if (partial !== undefined) return { status: 'success', rejected: partial.rejected, message: partial.message };
      }
      return { status: 'success' };
    }
    const rawMessage = meta['grpc-message'];
    let message = typeof rawMessage === 'string' ? decodeGrpcMessage(rawMessage) : '';
    let retryAfterMs: number | undefined;
    const details = meta['grpc-status-details-bin'];
    if (typeof details === 'string') {
      const status = decodeRpcStatus(Buffer.from(details, 'base64'));
      retryAfterMs = status?.retryAfterMs;
      if (message === '' && status !== undefined) message = status.message;
    }
    return fail(code, message, retryAfterMs);
  }

  /** The channel for the next call, connecting (and for round_robin resolving the name) when needed. */
  async #pick(connectTimeoutMs: number): Promise<Channel> {
    if (this.#channels.some((c) => c.dead)) this.#channels = this.#channels.filter((c) => !c.dead);
    if (this.#o.balancer === 'round_robin' && (this.#channels.length === 0 || Date.now() - this.#resolvedAt > 30_000)) {
      await this.#resolveAll(connectTimeoutMs);
    }
    if (this.#channels.length > 0) return this.#channels[this.#next++ % this.#channels.length] as Channel;
    // Concurrent sends share one connection attempt.
    if (this.#connecting === undefined) {
      this.#connecting = this.#connect(this.#host, connectTimeoutMs).finally(() => {
        this.#connecting = undefined;
      });
      const c = await this.#connecting;
      this.#channels.push(c);
      return c;
    }
    return this.#connecting;
  }

  /** round_robin: one channel per resolved address (kept ones reused). */
  async #resolveAll(connectTimeoutMs: number): Promise<void> {
    this.#resolvedAt = Date.now();
    let addresses: string[];
    if (net.isIP(this.#host) !== 0) addresses = [this.#host];
    else addresses = (await dns.promises.lookup(this.#host, { all: true })).map((a) => a.address);
    const byAddress = new Map(this.#channels.map((c) => [c.address, c]));
    const next: Channel[] = [];
    for (const a of addresses) {
      const have = byAddress.get(a);
      if (have !== undefined) next.push(have);
      else {
        try {
          next.push(await this.#connect(a, connectTimeoutMs));
        } catch {
          // unreachable address: skipped until the next resolution
        }
      }
    }
    for (const c of this.#channels) if (!next.includes(c)) void closeSession(c.session);
    this.#channels = next;
  }

  /** Open a session to `address` and wait until it is connected (at most `timeoutMs`). */
  #connect(address: string, timeoutMs: number): Promise<Channel> {
    return new Promise((resolve, reject) => {
      const authority = `${this.#secure ? 'https' : 'http'}://${net.isIPv6(this.#host) ? `[${this.#host}]` : this.#host}:${this.#port}`;
      const session = http2.connect(authority, {
        ...(this.#tlsOptions ?? {}),
        ...(address === this.#host ? {} : { host: address }),
        // Verify the certificate against the endpoint's name even when connecting to one of its addresses.
        ...(this.#secure && this.#tlsOptions?.servername === undefined && net.isIP(this.#host) === 0 ? { servername: this.#host } : {}),
        settings: { enablePush: false },
        // Requests waiting for the server's flow-control window count against this (in MB); the sending
        // queue already bounds what is in flight, so this must not refuse streams first.
        maxSessionMemory: 1024,
        createConnection: this.#secure ? undefined : () => net.connect({ host: address, port: this.#port, noDelay: true }),
      } as http2.SecureClientSessionOptions);
      const channel: Channel = { session, dead: false, address };
      const onError = (e: Error): void => {
        clearTimeout(timer);
        channel.dead = true;
        reject(e);
      };
      // A black-holed address would otherwise hold every send until the OS gives up on the SYN.
      const timer = setTimeout(() => session.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        session.off('error', onError);
        session.on('error', () => {
          channel.dead = true;
        });
        resolve(channel);
      });
      session.once('error', onError);
      session.on('goaway', () => {
        channel.dead = true;
      });
      session.on('close', () => {
        channel.dead = true;
      });
      session.unref();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closing = this.#channels.map((c) => closeSession(c.session));
    this.#channels = [];
    await Promise.all(closing);
  }
}

/**
 * Close a session gracefully, letting open calls finish; at most 2 s (the sender has drained by the time it
 * closes the transport). A session that already closed never calls close()'s callback, so it is skipped.
 */
function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  if (session.closed || session.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => session.destroy(), 2000);
    session.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    session.close();
  });
}

function fail(code: number, message: string, retryAfterMs?: number): SendResult {
  const error = new Error(`gRPC ${GrpcStatus[code] ?? code}: ${message}`);
  if (RETRYABLE.has(code) || (code === GrpcStatus.RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) return { status: 'retryable', error, retryAfterMs };
  return { status: 'failure', error };
}

/** A stream that closed without a gRPC status: map its RST_STREAM code as gRPC clients do. */
function resetResult(rstCode: number, endpoint: string): SendResult {
  const c = http2.constants;
  switch (rstCode) {
    case c.NGHTTP2_REFUSED_STREAM:
      return fail(GrpcStatus.UNAVAILABLE, `stream refused by ${endpoint}`);
    case c.NGHTTP2_CANCEL:
      return fail(GrpcStatus.CANCELLED, `call cancelled by ${endpoint}`);
    case c.NGHTTP2_ENHANCE_YOUR_CALM:
      return fail(GrpcStatus.RESOURCE_EXHAUSTED, `${endpoint} asked to enhance our calm`);
    case c.NGHTTP2_INADEQUATE_SECURITY:
      return fail(GrpcStatus.PERMISSION_DENIED, `inadequate security for ${endpoint}`);
    case c.NGHTTP2_NO_ERROR:
      return fail(GrpcStatus.UNAVAILABLE, `connection to ${endpoint} closed before an answer`);
    default:
      return fail(GrpcStatus.INTERNAL, `stream reset by ${endpoint} (HTTP/2 error ${rstCode})`);
  }
}

function decodeGrpcMessage(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
