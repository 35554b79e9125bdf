/**
 * OTLP/gRPC client transport on routelens's own HTTP/2 client (src/http2/connection.ts), the counterpart of the
 * receiver's server. OTLP export is one unary method, so the gRPC framing is written directly: the 5-byte message
 * prefix and the request's parts go out as DATA frames as they are, without concatenating them into one message and
 * copying that into a framed buffer (what a general gRPC client does; docs/decisions/0005-grpc-on-node-http2.md).
 * The request's header block is built once per transport (only `grpc-timeout` and an authenticator's headers are
 * appended per call), and a call's HEADERS and DATA frames leave in one socket write
 * (docs/decisions/0015-own-http2.md).
 *
 * Semantics follow gRPC's HTTP/2 protocol and grpc-js's client: `grpc-timeout` deadlines (RST_STREAM CANCEL when
 * one passes), gzip, status from trailers (or a trailers-only response), HTTP status → gRPC code mapping,
 * RST_STREAM REFUSED_STREAM and streams above a GOAWAY's last id → UNAVAILABLE, a broken or GOAWAY'd connection is
 * replaced on the next send (the sending queue's retries space the attempts); `round_robin` spreads requests over
 * every address the endpoint's name resolves to.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { splitHostPort } from '../../core/schema';
import { clientTlsOptions, type TlsClientConfig } from '../../config/tls';
import { GrpcStatus } from '../../core/errors';
import { decodePartialSuccess, decodeRpcStatus } from '../../pdata/rpc-status';
import { bodyBytes, type Body } from '../../core/storage';
import { Http2Connection, type Http2Error, type Http2Stream } from '../../http2/connection';
import { ErrorCode } from '../../http2/frames';
import { encodeHeaderBlock } from '../../http2/hpack';
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
  conn: Http2Connection;
  /** The address connected to (the endpoint's host, or one address it resolved to). */
  address: string;
  /** Settles when the connection's socket has closed. */
  closed: Promise<void>;
}

/**
 * A call in flight: what its answer needs. One object per call; the callbacks are shared functions. Calls in flight
 * are linked in the transport's deadline list (`prev`/`next`), watched by one timer per transport.
 */
interface Call {
  transport: GrpcTransport;
  resolve: (r: SendResult) => void;
  stream: Http2Stream | undefined;
  /** `Date.now()` after which the call is cancelled. */
  deadline: number;
  timeoutMs: number;
  settled: boolean;
  prev: Call | undefined;
  next: Call | undefined;
}

/** Response DATA kept for the partial-success message: an answer is a few bytes; a server sending more is cut. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** The `grpc-timeout` field up to its value: a literal without indexing, appended to the constant block per call. */
const TIMEOUT_FIELD = encodeHeaderBlock(['grpc-timeout', '']).subarray(0, -1);
/** Names the transport sets itself; configured headers of these names are not sent. */
const PROTOCOL_HEADERS = new Set(['content-type', 'te', 'user-agent', 'grpc-accept-encoding', 'grpc-encoding', 'grpc-timeout']);
const EMPTY = Buffer.alloc(0);
/** Fields HTTP/2 forbids (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

export class GrpcTransport implements Transport {
  readonly #o: GrpcTransportOptions;
  readonly #secure: boolean;
  readonly #host: string;
  readonly #port: number;
  readonly #tlsOptions: ConnectionOptions | undefined;
  /** The request's header block without `grpc-timeout` and the authenticator's headers: built once. */
  readonly #baseBlock: Buffer;
  #channels: Channel[] = [];
  /** Every connection not yet closed, including ones draining after a GOAWAY (for close()). */
  readonly #open = new Set<Channel>();
  #connecting: Promise<Channel> | undefined;
  #next = 0;
  #resolvedAt = 0;
  #closed = false;
  #authHeaders: Record<string, string> | undefined;
  #authBlock: Buffer = EMPTY;
  /**
   * Calls in flight, oldest first, and one timer for all their deadlines, armed for the earliest one it knew of when
   * armed (a timer per call cost a setTimeout and a clearTimeout per export). The timer holds the process open
   * (ref) only while a call is in flight, as a call's own timer did.
   */
  #first: Call | undefined;
  #last: Call | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  readonly #onDeadlineTimer = (): void => this.#expire();

  constructor(o: GrpcTransportOptions) {
    this.#o = o;
    this.#secure = !(o.tls.insecure || o.endpoint.startsWith('http://'));
    // The config schema has checked the endpoint's shape.
    const hp = splitHostPort(o.endpoint.replace(/^https?:\/\//, '')) ?? { host: '', port: 0 };
    this.#host = hp.host;
    this.#port = hp.port;
    this.#tlsOptions = this.#secure ? clientTlsOptions(o.tls) : undefined;
    const authority = `${net.isIPv6(this.#host) ? `[${this.#host}]` : this.#host}:${this.#port}`;
    const fields = [
      ':method',
      'POST',
      ':scheme',
      this.#secure ? 'https' : 'http',
      ':path',
      o.method,
      ':authority',
      authority,
      'content-type',
      'application/grpc',
      'te',
      'trailers',
      'user-agent',
      'routelens',
      'grpc-accept-encoding',
      'identity,gzip',
    ];
    if (o.compression === 'gzip') fields.push('grpc-encoding', 'gzip');
    fields.push(...metadataFields(o.headers));
    this.#baseBlock = encodeHeaderBlock(fields);
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
    let channel = this.#ready();
    if (channel === undefined) {
      try {
        channel = await this.#pick(timeoutMs);
      } catch (e) {
        return fail(GrpcStatus.UNAVAILABLE, `cannot connect to ${this.#o.endpoint}: ${(e as Error).message}`);
      }
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return fail(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded before the request was sent');
    return this.#call(channel, parts, compressed, remaining, deadline);
  }

  #call(channel: Channel, parts: readonly Uint8Array[], compressed: number, timeoutMs: number, deadline: number): Promise<SendResult> {
    let length = 0;
    const frames: Buffer[] = [Buffer.allocUnsafe(5)];
    for (const p of parts) {
      length += p.length;
      frames.push(Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    }
    const prefix = frames[0] as Buffer;
    prefix[0] = compressed;
    prefix.writeUInt32BE(length, 1);
    const block = this.#requestBlock(timeoutMs);
    return new Promise<SendResult>((resolve) => {
      const call: Call = { transport: this, resolve, stream: undefined, deadline, timeoutMs, settled: false, prev: undefined, next: undefined };
      const stream = channel.conn.request(block, frames, onAnswer, call);
      if (!call.settled) {
        call.stream = stream;
        this.#watch(call);
      }
    });
  }

  /** Add a call to the deadline list; arm the timer if it is not armed or armed later than this deadline. */
  #watch(call: Call): void {
    const last = this.#last;
    call.prev = last;
    if (last === undefined) this.#first = call;
    else last.next = call;
    this.#last = call;
    const timer = this.#deadlineTimer;
    if (timer === undefined || call.deadline < this.#timerAt) this.#arm(call.deadline);
    else if (last === undefined) timer.ref();
  }

  /** @internal Remove a settled call from the deadline list (shared callback, see onAnswer). */
  unwatch(call: Call): void {
    const { prev, next } = call;
    if (prev === undefined) this.#first = next;
    else prev.next = next;
    if (next === undefined) this.#last = prev;
    else next.prev = prev;
    call.prev = call.next = undefined;
    // Nothing in flight: the armed timer may fire once more for nothing, but keeps no process alive.
    if (this.#first === undefined) this.#deadlineTimer?.unref();
  }

  #arm(at: number): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#timerAt = at;
    this.#deadlineTimer = setTimeout(this.#onDeadlineTimer, Math.max(0, at - Date.now()));
  }

  /** The timer fired: fail and cancel every call past its deadline, re-arm for the earliest deadline left. */
  #expire(): void {
    this.#deadlineTimer = undefined;
    const now = Date.now();
    let earliest = Infinity;
    for (let c = this.#first; c !== undefined;) {
      const next = c.next;
      if (c.deadline <= now) onDeadline(c);
      else if (c.deadline < earliest) earliest = c.deadline;
      c = next;
    }
    if (earliest !== Infinity) this.#arm(earliest);
  }

  /** The constant block, then `grpc-timeout` and the authenticator's headers. */
  #requestBlock(timeoutMs: number): Buffer {
    const timeout = grpcTimeout(timeoutMs);
    const auth = this.#o.auth?.headers();
    // Encoded again only when the authenticator hands out another object (a new token); none or {} adds nothing.
    if (auth !== this.#authHeaders) {
      this.#authHeaders = auth;
      this.#authBlock = auth === undefined || isEmpty(auth) ? EMPTY : encodeHeaderBlock(metadataFields(auth));
    }
    const base = this.#baseBlock;
    const extra = this.#authBlock;
    const out = Buffer.allocUnsafe(base.length + TIMEOUT_FIELD.length + 1 + timeout.length + extra.length);
    base.copy(out, 0);
    let at = base.length;
    at += TIMEOUT_FIELD.copy(out, at);
    out[at++] = timeout.length;
    at += out.write(timeout, at, 'latin1');
    extra.copy(out, at);
    return out;
  }

  /** @internal The outcome of a call the connection reported (shared callback, see onAnswer). */
  outcome(err: Http2Error | undefined, stream: Http2Stream): SendResult {
    const endpoint = this.#o.endpoint;
    if (err !== undefined) {
      if (err.unprocessed) return fail(GrpcStatus.UNAVAILABLE, `${endpoint} did not take the call: ${err.message}`);
      if (!stream.connection.usable) return fail(GrpcStatus.UNAVAILABLE, `connection to ${endpoint} lost before an answer: ${err.message}`);
      return resetResult(err.code, endpoint);
    }
    const headers = stream.headers as string[];
    const status = field(headers, ':status');
    if (status !== '200') return fail(grpcCodeOfHttpStatus(Number(status)), `HTTP status ${status} from ${endpoint}`);
    // Trailers-only responses carry grpc-status in the response headers (the connection gives them as trailers).
    const meta = stream.trailers;
    if (meta === undefined || field(meta, 'grpc-status') === undefined) {
      return fail(GrpcStatus.UNAVAILABLE, `${endpoint} ended the call without a grpc-status`);
    }
    return this.#result(meta, stream.data);
  }

  #result(meta: readonly string[], data: readonly Buffer[]): SendResult {
    const code = Number(field(meta, 'grpc-status'));
    if (!Number.isInteger(code)) return fail(GrpcStatus.UNKNOWN, `response without a valid grpc-status from ${this.#o.endpoint}`);
    if (code === GrpcStatus.OK) {
      if (data.length === 0) return { status: 'success' };
      let bytes = 0;
      for (const d of data) bytes += d.length;
      const body = data.length === 1 ? (data[0] as Buffer) : Buffer.concat(data, Math.min(bytes, MAX_RESPONSE_BYTES));
      if (body.length >= 5 && body[0] === 0) {
        const len = body.readUInt32BE(1);
        const partial = decodePartialSuccess(body.subarray(5, 5 + len));
        if (partial !== undefined) return { status: 'success', rejected: partial.rejected, message: partial.message };
      }
      return { status: 'success' };
    }
    const rawMessage = field(meta, 'grpc-message');
    let message = rawMessage !== undefined ? decodeGrpcMessage(rawMessage) : '';
    let retryAfterMs: number | undefined;
    const details = field(meta, 'grpc-status-details-bin');
    if (details !== undefined) {
      const status = decodeRpcStatus(Buffer.from(details, 'base64'));
      retryAfterMs = status?.retryAfterMs;
      if (message === '' && status !== undefined) message = status.message;
    }
    return fail(code, message, retryAfterMs);
  }

  /** A connection usable now without waiting, if there is one (the common case). */
  #ready(): Channel | undefined {
    const channels = this.#channels;
    if (channels.length === 0) return undefined;
    if (this.#o.balancer === 'round_robin') {
      if (Date.now() - this.#resolvedAt > 30_000) return undefined;
      const c = channels[this.#next++ % channels.length] as Channel;
      return c.conn.usable ? c : undefined;
    }
    const c = channels[0] as Channel;
    return c.conn.usable ? c : undefined;
  }

  /** The channel for the next call, connecting (and for round_robin resolving the name) when needed. */
  async #pick(connectTimeoutMs: number): Promise<Channel> {
    if (this.#channels.some((c) => !c.conn.usable)) this.#channels = this.#channels.filter((c) => c.conn.usable);
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
    for (const c of this.#channels) if (!next.includes(c)) void closeChannel(c);
    this.#channels = next;
  }

  /**
   * Open a connection to `address` and wait until the socket is connected (TLS: handshake done, ALPN h2), at most
   * `timeoutMs`. A failed attempt fails the sends waiting for it; the sending queue's retry_on_failure spaces the
   * next ones (a wait here would spend the sends' own deadlines and leave them too little time to be answered).
   */
  #connect(address: string, timeoutMs: number): Promise<Channel> {
    return new Promise<Channel>((resolve, reject) => {
      let connected = false;
      let closedNow: () => void = () => undefined;
      const closed = new Promise<void>((r) => (closedNow = r));
      const tls =
        this.#tlsOptions === undefined
          ? undefined
          : {
              ...this.#tlsOptions,
              // Verify the certificate against the endpoint's name even when connecting to one of its addresses.
              servername: this.#tlsOptions.servername ?? (net.isIP(this.#host) === 0 ? this.#host : undefined),
            };
      const conn = Http2Connection.connect(
        { host: address, port: this.#port, tls },
        {
          onClose: (_c, err) => {
            this.#open.delete(channel);
            closedNow();
            if (connected) return;
            clearTimeout(timer);
            reject(err ?? new Error('connection closed'));
          },
        },
      );
      const channel: Channel = { conn, address, closed };
      this.#open.add(channel);
      // An idle connection does not keep the process alive; a call's deadline timer does while it is in flight.
      conn.socket.unref();
      // A black-holed address would otherwise hold every send until the OS gives up on the SYN.
      const timer = setTimeout(() => conn.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      conn.socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        if (conn.socket.destroyed) return; // ALPN refused: onClose reports it
        connected = true;
        clearTimeout(timer);
        resolve(channel);
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const closing = [...this.#open].map(closeChannel);
    this.#channels = [];
    await Promise.all(closing);
    if (this.#first === undefined && this.#deadlineTimer !== undefined) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
  }
}

/** The connection's answer to a call (one function for all calls: the call object carries the rest). */
function onAnswer(err: Http2Error | undefined, stream: Http2Stream, call: Call): void {
  if (call.settled) return;
  call.settled = true;
  // A call answered within `request()` itself was never watched.
  if (call.stream !== undefined) call.transport.unwatch(call);
  call.resolve(call.transport.outcome(err, stream));
}

function onDeadline(call: Call): void {
  if (call.settled) return;
  call.settled = true;
  call.transport.unwatch(call);
  call.resolve(fail(GrpcStatus.DEADLINE_EXCEEDED, `no answer within ${call.timeoutMs} ms`));
  call.stream?.cancel();
}

/**
 * Close a connection gracefully (GOAWAY), letting open calls finish; at most 2 s (the sender has drained by the
 * time it closes the transport).
 */
function closeChannel(c: Channel): Promise<void> {
  if (c.conn.closed) return Promise.resolve();
  c.conn.close();
  const timer = setTimeout(() => c.conn.destroy(), 2000);
  return c.closed.then(() => clearTimeout(timer));
}

/** Configured or authenticator headers as HPACK fields: names in lower case, none the protocol owns. */
function metadataFields(headers: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (name.startsWith(':') || PROTOCOL_HEADERS.has(name) || CONNECTION_SPECIFIC.has(name)) continue;
    out.push(name, v);
  }
  return out;
}

function isEmpty(o: Record<string, string>): boolean {
  for (const _ in o) return false;
  return true;
}

/** gRPC's TimeoutValue has at most 8 digits: milliseconds while they fit, then seconds, then hours. */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  return s < 1e8 ? `${s}S` : `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/** The value of the first field named `name` in a flat [name, value, …] list. */
function field(list: readonly string[], name: string): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}

function fail(code: number, message: string, retryAfterMs?: number): SendResult {
  const error = new Error(`gRPC ${GrpcStatus[code] ?? code}: ${message}`);
  if (RETRYABLE.has(code) || (code === GrpcStatus.RESOURCE_EXHAUSTED && retryAfterMs !== undefined)) return { status: 'retryable', error, retryAfterMs };
  return { status: 'failure', error };
}

/** A stream the server reset without a gRPC status: map its RST_STREAM code as gRPC clients do. */
function resetResult(code: number, endpoint: string): SendResult {
  switch (code) {
    case ErrorCode.REFUSED_STREAM:
      return fail(GrpcStatus.UNAVAILABLE, `stream refused by ${endpoint}`);
    case ErrorCode.CANCEL:
      return fail(GrpcStatus.CANCELLED, `call cancelled by ${endpoint}`);
    case ErrorCode.ENHANCE_YOUR_CALM:
      return fail(GrpcStatus.RESOURCE_EXHAUSTED, `${endpoint} asked to enhance our calm`);
    case ErrorCode.INADEQUATE_SECURITY:
      return fail(GrpcStatus.PERMISSION_DENIED, `inadequate security for ${endpoint}`);
    case ErrorCode.NO_ERROR:
      return fail(GrpcStatus.UNAVAILABLE, `connection to ${endpoint} closed before an answer`);
    default:
      return fail(GrpcStatus.INTERNAL, `stream reset by ${endpoint} (HTTP/2 error ${code})`);
  }
}

function decodeGrpcMessage(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
