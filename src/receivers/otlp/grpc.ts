/**
 * OTLP/gRPC server on routelens's own HTTP/2 stack (src/http2, docs/decisions/0015-own-http2.md). OTLP export is a
 * single unary method, so the gRPC framing is small enough to speak directly, and the server looks at the first
 * bytes of every connection, so the mistakes Python users make get a clear log line instead of a silent reset:
 *  - a TLS handshake on a plaintext port (an exporter endpoint without `http://` defaults to TLS),
 *  - HTTP/1.1 on the gRPC port (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` pointed at 4317).
 *
 * Wire format (gRPC over HTTP/2): request `POST /<service>/<method>`, `content-type: application/grpc`, body =
 * 1-byte compressed flag + 4-byte big-endian length + message. Response: headers, one framed message, trailers
 * `grpc-status` / `grpc-message` (and `grpc-status-details-bin`); errors as trailers-only responses. The answer to
 * an accepted call (headers, message, trailers) is HPACK-encoded once at load and leaves in one socket write.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import type { Logger } from 'pino';
import { splitHostPort } from '../../core/schema';
import { ServerTlsMaterial } from '../../config/tls-reload';
import type { ServerAuthenticator } from '../../core/auth';
import type { PipelineContext } from '../../core/component';
import { GrpcStatus, PipelineError, asPipelineError, toGrpcStatus } from '../../core/errors';
import { requestBuffers } from '../../pdata/buffer-pool';
import { encodeRetryInfo, encodeRpcStatus } from '../../pdata/rpc-status';
import { Http2Connection, type Http2Stream, type ServerHandler } from '../../http2/connection';
import { ErrorCode } from '../../http2/frames';
import { encodeHeaderBlock } from '../../http2/hpack';
import type { GrpcServerConfig } from './config';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';
import type { Signal } from '../../consumer/consumer';
import { normaliseAddress, type Intake, type SignalIntake } from './intake';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
export const LOGS_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/** The signal of each OTLP gRPC method. */
const SIGNAL_OF_PATH: ReadonlyMap<string, Signal> = new Map([
  [TRACE_EXPORT_PATH, 'traces'],
  [METRICS_EXPORT_PATH, 'metrics'],
  [LOGS_EXPORT_PATH, 'logs'],
]);

/** An empty ExportTraceServiceResponse, framed: not compressed, length 0. */
const EMPTY_RESPONSE_FRAME = Buffer.from([0, 0, 0, 0, 0]);
/** The grpc-encoding values requests may use, as the grpc-accept-encoding header names them. */
const ACCEPTED_ENCODINGS: readonly string[] = ['identity', 'gzip', 'deflate'];

/**
 * The answer to every accepted call, HPACK-encoded once. No `grpc-encoding` (absent means identity) and no `date` (a
 * gRPC client reads neither); no `grpc-message` in the OK trailers (absent means empty).
 */
const OK_HEADERS = encodeHeaderBlock([':status', '200', 'content-type', 'application/grpc', 'grpc-accept-encoding', ACCEPTED_ENCODINGS.join(',')]);
const OK_TRAILERS = encodeHeaderBlock(['grpc-status', String(GrpcStatus.OK)]);
const WRONG_CONTENT_TYPE = encodeHeaderBlock([':status', '415', 'content-type', 'text/plain']);
const WRONG_CONTENT_TYPE_BODY = Buffer.from('expected content-type application/grpc\n');

/** Percent-encode a grpc-message value as the gRPC spec requires. */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** What the first bytes of a connection look like. */
export function sniffConnection(first: Buffer): 'tls' | 'http2' | 'http1' | 'unknown' {
  if (first.length >= 3 && first[0] === 0x16 && first[1] === 0x03) return 'tls';
  const head = first.subarray(0, 24).toString('latin1');
  if (head.startsWith('PRI * HTTP/2.0')) return 'http2';
  if (/^(GET|POST|PUT|HEAD|OPTIONS|DELETE|PATCH) /.test(head)) return 'http1';
  return 'unknown';
}

/** Flow-control window per call. */
export const STREAM_WINDOW = 1 << 20;
/**
 * Flow-control window per connection: one default Python batch (512 spans ≈ 250 KB) arrives without waiting
 * for a WINDOW_UPDATE, where HTTP/2's initial 64 KiB took four round trips, each a wake-up of both sides. Not
 * more: window updates wait for the event loop to read, which is the back-pressure a busy process needs (larger
 * windows let clients outrun forwarding at saturation). Measurements: docs/decisions/0005-grpc-on-node-http2.md.
 */
export const CONNECTION_WINDOW = 256 * 1024;

/**
 * Request bytes one connection may hold at once while bodies arrive (the sum over its streams, before each body is
 * complete): node:http2 capped a session at 64 MB (`maxSessionMemory`); the same bound here, so many concurrent
 * streams cannot each hold `max_recv_msg_size_mib`.
 */
export const MAX_CONNECTION_BUFFERED = 64 * 1024 * 1024;

/** What the receiver keeps per connection. */
class Peer {
  readonly client: string | undefined;
  /** Body bytes of calls still arriving. */
  buffered = 0;
  constructor(client: string | undefined) {
    this.client = client;
  }
}

/** Per-call state of a request being received (the stream's `user` slot). */
class Call {
  readonly peer: Peer;
  readonly ctx: PipelineContext;
  readonly intake: SignalIntake;
  readonly encoding: string;
  readonly chunks: Buffer[] = [];
  received = 0;
  failed = false;
  constructor(peer: Peer, ctx: PipelineContext, intake: SignalIntake, encoding: string) {
    this.peer = peer;
    this.ctx = ctx;
    this.intake = intake;
    this.encoding = encoding;
  }
}

export class OtlpGrpcServer implements ServerHandler {
  readonly #config: GrpcServerConfig;
  readonly #intake: Intake;
  readonly #logger: Logger;
  readonly #maxBytes: number;
  readonly #maxStreams: number;
  readonly #front: net.Server;
  /** TLS is terminated by a tls.Server that never listens: sniffed sockets are handed to it. */
  readonly #tlsServer: tls.Server | undefined;
  readonly #connections = new Set<Http2Connection>();
  /** Each connection's client address (normalised once per connection instead of once per call) and buffered bytes. */
  readonly #peers = new WeakMap<Http2Connection, Peer>();
  readonly #sockets = new Set<net.Socket>();
  readonly #log = new RateLimitedLog(30_000);
  readonly #tlsMaterial: ServerTlsMaterial | undefined;
  readonly #onConnectionClosed = (conn: Http2Connection): void => {
    this.#connections.delete(conn);
  };
  #auth: ServerAuthenticator | undefined;
  #port = 0;
  #closing = false;

  constructor(config: GrpcServerConfig, intake: Intake, logger: Logger) {
    this.#config = config;
    this.#intake = intake;
    this.#logger = logger;
    const maxMiB = config.max_recv_msg_size_mib === 0 ? 4 : config.max_recv_msg_size_mib;
    this.#maxBytes = Math.floor(maxMiB * 1024 * 1024);
    this.#maxStreams = config.max_concurrent_streams > 0 ? config.max_concurrent_streams : 1000;
    this.#tlsMaterial = config.tls === undefined ? undefined : new ServerTlsMaterial(config.tls);
    if (this.#tlsMaterial !== undefined) {
      const server = tls.createServer({ ...this.#tlsMaterial.serverOptions(), ALPNProtocols: ['h2'] });
      this.#tlsMaterial.onReload((o) => server.setSecureContext(o));
      server.on('secureConnection', (socket: tls.TLSSocket) => this.#serve(socket));
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        this.#log.warn(
          this.#logger,
          `tls:${socket.remoteAddress ?? ''}`,
          { client: normaliseAddress(socket.remoteAddress), err: err.message },
          'TLS handshake failed on the OTLP/gRPC port (a plaintext client, or an untrusted or missing client certificate)',
        );
      });
      this.#tlsServer = server;
    }
    this.#front = net.createServer((socket) => this.#onConnection(socket));
  }

  get port(): number {
    return this.#port;
  }

  /** Require every call to pass `auth` (set before `start`); refused calls get UNAUTHENTICATED unread. */
  setAuthenticator(auth: ServerAuthenticator | undefined): void {
    this.#auth = auth;
  }

  async start(): Promise<number> {
    const hp = splitHostPort(this.#config.endpoint);
    if (hp === undefined) throw new Error(`invalid endpoint ${this.#config.endpoint}`);
    await new Promise<void>((resolve, reject) => {
      this.#front.once('error', (err) => reject(new Error(`cannot listen on ${this.#config.endpoint} (gRPC): ${err.message}`)));
      this.#front.listen(hp.port, hp.host === '' ? undefined : hp.host, () => resolve());
    });
    this.#port = (this.#front.address() as net.AddressInfo).port;
    this.#tlsMaterial?.watch(this.#logger);
    return this.#port;
  }

  /** Stop accepting connections, let in-flight calls finish (GOAWAY), force-close when `signal` aborts. */
  async shutdown(signal?: AbortSignal): Promise<void> {
    this.#closing = true;
    this.#tlsMaterial?.stop();
    const closed = new Promise<void>((resolve) => this.#front.close(() => resolve()));
    for (const c of this.#connections) c.goaway();
    const force = (): void => {
      for (const c of this.#connections) c.destroy();
      for (const s of this.#sockets) s.destroy();
    };
    if (signal?.aborted) force();
    signal?.addEventListener('abort', force, { once: true });
    // Sockets not yet speaking HTTP/2 (still being sniffed, or in the TLS handshake) have nothing to finish.
    for (const s of this.#sockets) if (!s.destroyed && (s as { h2?: boolean }).h2 !== true) s.destroy();
    await closed;
    signal?.removeEventListener('abort', force);
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    const client = normaliseAddress(socket.remoteAddress);
    const sniffTimer = setTimeout(() => socket.destroy(), 30_000);
    socket.once('data', (first: Buffer) => {
      clearTimeout(sniffTimer);
      socket.pause();
      socket.unshift(first);
      const kind = sniffConnection(first);
      if (this.#tlsServer === undefined && kind === 'tls') {
        this.#log.warn(
          this.#logger,
          `tls-on-plaintext:${client ?? ''}`,
          { client },
          'A client started a TLS handshake on the plaintext OTLP/gRPC port: it is configured for TLS. For the Python exporter use an http:// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4317) or set OTEL_EXPORTER_OTLP_INSECURE=true',
        );
        this.#intake.rejected(new PipelineError('malformed', 'TLS handshake on the plaintext gRPC port'), { clientAddress: client, transport: 'grpc' });
        socket.destroy();
        return;
      }
      if (this.#tlsServer !== undefined && kind !== 'tls') {
        this.#log.warn(
          this.#logger,
          `plaintext-on-tls:${client ?? ''}`,
          { client },
          'A plaintext client connected to the TLS OTLP/gRPC port; configure the exporter for TLS (https:// endpoint and the CA)',
        );
        socket.destroy();
        return;
      }
      if (kind === 'http1') {
        this.#log.warn(
          this.#logger,
          `http1-on-grpc:${client ?? ''}`,
          { client, request: first.subarray(0, 40).toString('latin1').split('\r\n')[0] },
          'An HTTP/1.1 request arrived on the OTLP/gRPC port: the client uses OTLP/HTTP (http/protobuf); point it at the OTLP/HTTP port (4318) or set OTEL_EXPORTER_OTLP_PROTOCOL=grpc',
        );
        this.#intake.rejected(new PipelineError('malformed', 'HTTP/1.1 request on the gRPC port'), { clientAddress: client, transport: 'grpc' });
        const body = 'This is the OTLP/gRPC port. Send OTLP/HTTP (http/protobuf) to the OTLP/HTTP port, by default 4318.\n';
        socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        return;
      }
      (socket as { h2?: boolean }).h2 = true;
      if (this.#tlsServer !== undefined) {
        // The TLS server wraps the socket and replays the buffered first chunk itself (the socket stays paused).
        this.#tlsServer.emit('connection', socket);
        return;
      }
      this.#serve(socket);
    });
  }

  /** Speak HTTP/2 on a connection (plaintext after sniffing, or TLS after the handshake). */
  #serve(socket: net.Socket): void {
    if (socket instanceof tls.TLSSocket) {
      if (socket.alpnProtocol !== 'h2') {
        this.#log.warn(
          this.#logger,
          `alpn:${socket.remoteAddress ?? ''}`,
          { client: normaliseAddress(socket.remoteAddress), alpn: socket.alpnProtocol },
          'A TLS client on the OTLP/gRPC port did not negotiate HTTP/2 (ALPN h2); gRPC clients do, so this is not a gRPC client',
        );
        socket.destroy();
        return;
      }
    }
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const conn = Http2Connection.server(socket, this, {
      streamWindow: STREAM_WINDOW,
      connectionWindow: CONNECTION_WINDOW,
      maxConcurrentStreams: this.#maxStreams,
      onClose: this.#onConnectionClosed,
    });
    this.#connections.add(conn);
    this.#peers.set(conn, new Peer(normaliseAddress(socket.remoteAddress)));
  }

  /** ServerHandler: the request's headers. Everything that can be decided before the body is decided here. */
  onHeaders(stream: Http2Stream, headers: string[]): void {
    try {
      this.#onHeaders(stream, headers);
    } catch (err) {
      this.#internalError(stream, err);
    }
  }

  #onHeaders(stream: Http2Stream, headers: string[]): void {
    let method = '';
    let path = '';
    let contentType = '';
    let encoding = 'identity';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      if (name === ':path') path = value;
      else if (name === ':method') method = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'grpc-encoding') encoding = value;
    }
    const peer = this.#peers.get(stream.connection) as Peer;
    const ctx: PipelineContext = {
      transport: 'grpc',
      clientAddress: peer.client,
      ...(this.#config.include_metadata ? { headers: metadataOf(headers) } : {}),
    };
    if (!contentType.startsWith('application/grpc')) {
      stream.respond(WRONG_CONTENT_TYPE, WRONG_CONTENT_TYPE_BODY);
      return;
    }
    const signal = SIGNAL_OF_PATH.get(path);
    if (method !== 'POST' || signal === undefined) {
      const served = this.#intake.signals.map((sig) => [...SIGNAL_OF_PATH].find(([, s]) => s === sig)?.[0]);
      this.#respondError(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}; this receiver serves ${served.join(', ')}`);
      return;
    }
    const intake = this.#intake.of(signal);
    if (intake === undefined) {
      // As grpc-go answers for a service that is not registered (the Collector registers a signal's service only
      // when a pipeline takes it), plus the fix: the Python exporter logs this message and drops the data.
      const fix = this.#intake.unimplemented(signal, ctx);
      this.#respondError(stream, GrpcStatus.UNIMPLEMENTED, `unknown service ${path.split('/')[1] ?? path}: routelens has no ${signal} pipeline. ${fix}`);
      return;
    }
    if (this.#closing) {
      this.#respondPipelineError(stream, new PipelineError('shutting_down', 'routelens is shutting down'));
      return;
    }
    const denied = this.#auth?.authenticateHttp(headerRecord(headers));
    if (denied !== undefined) {
      this.#intake.unauthenticated(denied, ctx);
      this.#respondError(stream, GrpcStatus.UNAUTHENTICATED, denied);
      return;
    }
    if (!ACCEPTED_ENCODINGS.includes(encoding)) {
      // As gRPC specifies (and grpc-go answers): UNIMPLEMENTED, whatever the message's compressed flag, with
      // grpc-accept-encoding naming what this server inflates.
      const message = `unsupported grpc-encoding ${JSON.stringify(encoding)}; supported: ${ACCEPTED_ENCODINGS.join(', ')}`;
      this.#intake.rejected(new PipelineError('malformed', message), ctx);
      this.#respondError(stream, GrpcStatus.UNIMPLEMENTED, message);
      return;
    }
    stream.user = new Call(peer, ctx, intake, encoding);
  }

  /** ServerHandler: a piece of the body, a view into the socket's chunk (copied into the pooled request buffer at the end). */
  onData(stream: Http2Stream, c: Buffer): void {
    const call = stream.user as Call | undefined;
    if (call === undefined || call.failed) return;
    call.received += c.length;
    if (call.received >= 5 && call.chunks.length === 0 && c.length >= 5) {
      const declared = c.readUInt32BE(1);
      if (declared > this.#maxBytes)
        return this.#fail(stream, call, new PipelineError('too_large', `received message larger than max (${declared} vs. ${this.#maxBytes})`));
    }
    if (call.received > this.#maxBytes + 5)
      return this.#fail(stream, call, new PipelineError('too_large', `received message larger than max (more than ${this.#maxBytes} bytes)`));
    if (call.peer.buffered + c.length > MAX_CONNECTION_BUFFERED)
      // Back-pressure, not bad input: answered UNAVAILABLE with RetryInfo, not counted as malformed.
      return this.#fail(
        stream,
        call,
        new PipelineError('refused', `more than ${MAX_CONNECTION_BUFFERED} bytes of requests arriving at once on this connection`),
        false,
      );
    call.peer.buffered += c.length;
    call.chunks.push(c);
  }

  /** ServerHandler: the request is complete. */
  onEnd(stream: Http2Stream): void {
    try {
      this.#onEnd(stream);
    } catch (err) {
      this.#internalError(stream, err);
    }
  }

  /** ServerHandler: the client reset the call or the connection ended; the pipeline's answer, if any, goes nowhere. */
  onAbort(stream: Http2Stream): void {
    const call = stream.user as Call | undefined;
    if (call === undefined) return;
    call.failed = true;
    dropChunks(call);
  }

  #onEnd(stream: Http2Stream): void {
    const call = stream.user as Call | undefined;
    if (call === undefined || call.failed) return;
    // The request is assembled in a pooled buffer, reused once the pipeline is done with it (buffer-pool.ts).
    const lease = requestBuffers.gather(call.chunks, call.received);
    const body = lease.bytes;
    dropChunks(call);
    let message: Buffer;
    try {
      message = this.#unframe(body, call.encoding);
    } catch (err) {
      lease.release();
      return this.#fail(stream, call, asPipelineError(err));
    }
    // A compressed request was inflated into a buffer of its own: the pooled one is free at once.
    const pooled = message.buffer === body.buffer;
    if (!pooled) lease.release();
    call.intake.consume(message, call.ctx, pooled ? lease : undefined).then(
      () => {
        if (pooled) lease.release();
        stream.respond(OK_HEADERS, EMPTY_RESPONSE_FRAME, OK_TRAILERS);
      },
      (err: unknown) => {
        if (pooled) lease.release();
        this.#respondPipelineError(stream, asPipelineError(err));
      },
    );
  }

  #fail(stream: Http2Stream, call: Call, e: PipelineError, malformed = true): void {
    if (call.failed) return;
    call.failed = true;
    dropChunks(call);
    if (malformed) this.#intake.rejected(e, call.ctx);
    // Answered before the whole request arrived: the connection asks the client to stop sending it (RST_STREAM NO_ERROR).
    this.#respondPipelineError(stream, e);
  }

  /**
   * An exception in a stream handler, where nothing should throw: counted, logged with its stack and answered
   * INTERNAL, rather than left to take the connection down or the call unanswered.
   */
  #internalError(stream: Http2Stream, err: unknown): void {
    try {
      this.#intake.internalError(err, { transport: 'grpc', clientAddress: this.#peers.get(stream.connection)?.client });
      this.#respondError(stream, GrpcStatus.INTERNAL, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    } catch {
      stream.reset(ErrorCode.INTERNAL_ERROR);
    }
  }

  /** Extract the single message of a unary request, decompressing it if flagged. */
  #unframe(body: Buffer, encoding: string): Buffer {
    if (body.length < 5) throw new PipelineError('malformed', 'truncated gRPC message frame');
    const compressed = body[0] as number;
    const len = body.readUInt32BE(1);
    if (body.length !== 5 + len)
      throw new PipelineError('malformed', `gRPC frame length ${len} does not match the ${body.length - 5} bytes received (one message expected)`);
    const payload = body.subarray(5);
    if (compressed === 0) return payload;
    if (compressed !== 1) throw new PipelineError('malformed', `invalid gRPC compressed flag ${compressed}`);
    if (encoding === 'identity') throw new PipelineError('malformed', 'a message flagged compressed, with grpc-encoding identity (or none)');
    const opts = { maxOutputLength: this.#maxBytes };
    try {
      if (encoding === 'gzip') return zlib.gunzipSync(payload, opts);
      if (encoding === 'deflate') return zlib.inflateSync(payload, opts);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
        throw new PipelineError('too_large', `decompressed message larger than max (${this.#maxBytes} bytes)`);
      throw new PipelineError('malformed', `invalid ${encoding} message: ${err instanceof Error ? err.message : String(err)}`);
    }
    throw new Error(`grpc-encoding ${JSON.stringify(encoding)} passed the check of accepted encodings but has no inflater`);
  }

  #respondPipelineError(stream: Http2Stream, e: PipelineError): void {
    const code = e.code === 'internal' ? GrpcStatus.INTERNAL : toGrpcStatus(e);
    this.#respondError(stream, code, e.message, e.retryAfterMs);
  }

  /** A trailers-only error response, with RetryInfo where the client may retry. */
  #respondError(stream: Http2Stream, code: number, message: string, retryAfterMs?: number): void {
    if (stream.closed || stream.localEnded) return;
    const headers = [
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-accept-encoding',
      ACCEPTED_ENCODINGS.join(','),
      'grpc-status',
      String(code),
      'grpc-message',
      encodeGrpcMessage(message),
      'grpc-status-details-bin',
      Buffer.from(encodeRpcStatus(code, message, retryAfterMs))
        .toString('base64')
        .replace(/=+$/, ''),
    ];
    if (retryAfterMs !== undefined) headers.push('google.rpc.retryinfo-bin', Buffer.from(encodeRetryInfo(retryAfterMs)).toString('base64').replace(/=+$/, ''));
    stream.respond(encodeHeaderBlock(headers));
  }
}

/** Let go of a call's received chunks, and of their share of the connection's budget. */
function dropChunks(call: Call): void {
  for (const c of call.chunks) call.peer.buffered -= c.length;
  call.chunks.length = 0;
}

/** Request headers as a record for the authenticator (lower-case names; repeated fields joined with ", "). */
function headerRecord(headers: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i] as string;
    const v = headers[i + 1] as string;
    const had = out[k];
    out[k] = had === undefined ? v : `${had}, ${v}`;
  }
  return out;
}

/** gRPC metadata for the pipeline context: the regular header fields, repeated ones joined with ",". */
function metadataOf(headers: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i] as string;
    if (k.startsWith(':')) continue;
    const v = headers[i + 1] as string;
    const had = out[k];
    out[k] = had === undefined ? v : `${had},${v}`;
  }
  return out;
}
