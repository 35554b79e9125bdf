/**
 * OTLP/HTTP server: POST /v1/traces with application/x-protobuf or application/json, Content-Encoding gzip,
 * deflate or none. Sizes are capped before and after decompression (413). Errors answer with a
 * google.rpc.Status body in the request's encoding; 503 carries Retry-After.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import type { Logger } from 'pino';
import { splitHostPort } from '../../core/schema';
import { ServerTlsMaterial } from '../../config/tls-reload';
import type { ServerAuthenticator } from '../../core/auth';
import type { PipelineContext } from '../../core/component';
import { PipelineError, asPipelineError, toGrpcStatus, toHttpStatus } from '../../core/errors';
import { requestBuffers, type BufferLease } from '../../pdata/buffer-pool';
import { encodeRpcStatus } from '../../pdata/rpc-status';
import type { HttpServerConfig } from './config';
import { sniffConnection } from './grpc';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';
import type { Signal } from '../../consumer/consumer';
import { normaliseAddress, type Intake } from './intake';

type Encoding = 'proto' | 'json';

function mediaType(header: string | undefined): Encoding | undefined {
  const t = (header ?? '').split(';')[0]?.trim().toLowerCase();
  if (t === 'application/x-protobuf' || t === 'application/protobuf') return 'proto';
  if (t === 'application/json') return 'json';
  return undefined;
}

/** Read the body, up to `limit` bytes, into a pooled buffer (buffer-pool.ts); rejects with too_large beyond it. */
function readBody(req: http.IncomingMessage, limit: number): Promise<BufferLease> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new PipelineError('too_large', `request body of ${declared} bytes exceeds max_request_body_size (${limit})`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(new PipelineError('too_large', `request body exceeds max_request_body_size (${limit} bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (failed) return;
      resolve(requestBuffers.gather(chunks, size));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(new PipelineError('malformed', `error reading request body: ${err.message}`));
      }
    });
  });
}

/** Decompress per Content-Encoding, capping the output at `limit` bytes (gzip bombs get 413). */
export function decompress(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  const enc = (encoding ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity' || enc === 'none') return body;
  const opts = { maxOutputLength: limit };
  try {
    if (enc === 'gzip' || enc === 'x-gzip') return zlib.gunzipSync(body, opts);
    if (enc === 'deflate') {
      // Clients disagree on whether deflate means zlib-wrapped or raw; accept both.
      try {
        return zlib.inflateSync(body, opts);
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw err;
        return zlib.inflateRawSync(body, opts);
      }
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PipelineError('too_large', `decompressed body exceeds max_request_body_size (${limit} bytes)`);
    }
    throw new PipelineError('malformed', `invalid ${enc} body: ${err instanceof Error ? err.message : String(err)}`);
  }
  throw new PipelineError('malformed', `unsupported Content-Encoding ${JSON.stringify(encoding)}; expected gzip, deflate or none`);
}

export class OtlpHttpServer {
  readonly #server: http.Server;
  readonly #config: HttpServerConfig;
  readonly #intake: Intake;
  /** The signal of each URL path. */
  readonly #paths: ReadonlyMap<string, Signal>;
  readonly #log = new RateLimitedLog(30_000);
  readonly #logger: Logger;
  readonly #tlsMaterial: ServerTlsMaterial | undefined;
  #auth: ServerAuthenticator | undefined;
  #port = 0;
  #closing = false;

  constructor(config: HttpServerConfig, intake: Intake, logger: Logger) {
    this.#config = config;
    this.#intake = intake;
    this.#paths = new Map<string, Signal>([
      [config.logs_url_path, 'logs'],
      [config.metrics_url_path, 'metrics'],
      [config.traces_url_path, 'traces'],
    ]);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.#handle(req, res).catch((err: unknown) => this.#internalError(req, res, err));
    };
    this.#logger = logger;
    this.#tlsMaterial = config.tls === undefined ? undefined : new ServerTlsMaterial(config.tls);
    // Node enforces headersTimeout only when it sweeps connections, every connectionsCheckingInterval (30 s by
    // default): sweep often enough that read_header_timeout really cuts slow (slowloris) clients.
    const headersTimeout = Math.max(1000, config.read_header_timeout);
    const serverOpts = { connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(headersTimeout / 4))) };
    this.#server =
      this.#tlsMaterial === undefined
        ? http.createServer(serverOpts, handler)
        : https.createServer({ ...this.#tlsMaterial.serverOptions(), ...serverOpts }, handler);
    this.#tlsMaterial?.onReload((o) => (this.#server as https.Server).setSecureContext(o));
    this.#server.headersTimeout = headersTimeout;
    this.#server.requestTimeout = Math.max(this.#server.headersTimeout + 1000, 120_000);
    this.#server.keepAliveTimeout = config.idle_timeout;
    this.#server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
      const client = normaliseAddress((socket as { remoteAddress?: string }).remoteAddress);
      const kind = err.rawPacket === undefined ? 'unknown' : sniffConnection(err.rawPacket);
      if (kind === 'tls' && config.tls === undefined) {
        this.#log.warn(
          logger,
          `tls:${client ?? ''}`,
          { client },
          'A client started a TLS handshake on the plaintext OTLP/HTTP port: use an http:// endpoint, or configure tls on this receiver',
        );
      } else if (kind === 'http2') {
        this.#log.warn(
          logger,
          `h2:${client ?? ''}`,
          { client },
          'An HTTP/2 (gRPC) client connected to the OTLP/HTTP port: point gRPC exporters at the OTLP/gRPC port (4317) or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf',
        );
      }
      if (kind === 'tls' || kind === 'http2')
        intake.rejected(new PipelineError('malformed', `${kind} connection on the OTLP/HTTP port`), { clientAddress: client, transport: 'http' });
      if (socket.writable && kind !== 'tls' && kind !== 'http2') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
      logger.debug({ err: err.message, code: err.code }, 'HTTP client error');
    });
  }

  async start(): Promise<number> {
    const hp = splitHostPort(this.#config.endpoint);
    if (hp === undefined) throw new Error(`invalid endpoint ${this.#config.endpoint}`);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) => reject(new Error(`cannot listen on ${this.#config.endpoint} (HTTP): ${err.message}`)));
      this.#server.listen(hp.port, hp.host === '' ? undefined : hp.host, () => resolve());
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#tlsMaterial?.watch(this.#logger);
    return this.#port;
  }

  get port(): number {
    return this.#port;
  }

  /** Require every request to pass `auth` (set before `start`); refused requests get 401 and their body is not read. */
  setAuthenticator(auth: ServerAuthenticator | undefined): void {
    this.#auth = auth;
  }

  async shutdown(signal?: AbortSignal): Promise<void> {
    this.#closing = true;
    this.#tlsMaterial?.stop();
    await new Promise<void>((resolve) => {
      const force = (): void => {
        this.#server.closeAllConnections();
        resolve();
      };
      if (signal?.aborted) force();
      signal?.addEventListener('abort', force, { once: true });
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    const encoding: Encoding = mediaType(req.headers['content-type']) ?? 'json';
    const ctx: PipelineContext = {
      transport: 'http',
      clientAddress: normaliseAddress(req.socket.remoteAddress),
      ...(this.#config.include_metadata ? { headers: flatHeaders(req.headers) } : {}),
    };
    const denied = this.#auth?.authenticateHttp(req.headers);
    if (denied !== undefined) {
      this.#intake.unauthenticated(denied, ctx);
      res.setHeader('www-authenticate', 'Bearer');
      this.#reply(res, 401, encoding, new PipelineError('unauthenticated', denied));
      req.resume();
      return;
    }
    const signal = this.#paths.get(url ?? '');
    const intake = signal === undefined ? undefined : this.#intake.of(signal);
    if (intake === undefined) {
      const accepted = this.#intake.signals.map((sig) => `${sig} at POST ${[...this.#paths].find(([, s]) => s === sig)?.[0] ?? ''}`);
      // A signal no pipeline takes: 404, as the Collector (which registers a signal's path only when a pipeline
      // takes it), counted and logged with the fix; the Python exporter logs this body and drops the data.
      const message =
        signal === undefined
          ? `no OTLP endpoint at ${url}; this receiver accepts ${accepted.join(', ')}`
          : `no ${signal} pipeline takes OTLP ${signal} at ${url}. ${this.#intake.unimplemented(signal, ctx)}`;
      this.#reply(res, 404, encoding, new PipelineError('malformed', message));
      req.resume();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      this.#reply(res, 405, encoding, new PipelineError('malformed', `method ${req.method} not allowed; use POST`));
      req.resume();
      return;
    }
    if (this.#closing) {
      this.#fail(res, encoding, new PipelineError('shutting_down', 'routelens is shutting down'), ctx, false);
      req.resume();
      return;
    }
    const type = mediaType(req.headers['content-type']);
    if (type === undefined) {
      const e = new PipelineError(
        'unsupported_media_type',
        `unsupported Content-Type ${JSON.stringify(req.headers['content-type'] ?? '')}; expected application/x-protobuf or application/json`,
      );
      this.#fail(res, 'json', e, ctx, true);
      req.resume();
      return;
    }
    const limit = this.#config.max_request_body_size;
    let lease: BufferLease;
    try {
      lease = await readBody(req, limit);
    } catch (err) {
      const e = asPipelineError(err);
      this.#fail(res, type, e, ctx, true);
      if (e.code === 'too_large') drainOrCut(req, limit);
      else req.resume();
      return;
    }
    let body: Buffer;
    try {
      body = decompress(lease.bytes, req.headers['content-encoding'], limit);
    } catch (err) {
      lease.release();
      this.#fail(res, type, asPipelineError(err), ctx, true);
      return;
    }
    // A body read in place stays in the pooled buffer until the pipeline is done (JSON is converted to its own
    // protobuf buffer during decode, so only protobuf bodies are leased to the batch); an inflated body has its
    // own buffer and the pooled one is free at once.
    const pooled = body.buffer === lease.bytes.buffer;
    if (!pooled) lease.release();
    try {
      await intake.consume(type === 'json' ? () => intake.spec.fromJson(body) : body, ctx, pooled && type === 'proto' ? lease : undefined);
      if (type === 'json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
        res.end();
      }
    } catch (err) {
      // Decode and pipeline errors were counted by the intake.
      this.#fail(res, type, asPipelineError(err), ctx, false);
    } finally {
      if (pooled) lease.release();
    }
  }

  /**
   * A request whose handling threw where nothing should: counted, logged with the stack, and answered 500 with a
   * google.rpc.Status in the request's encoding, so that the client neither waits for an answer nor sees the
   * connection reset.
   */
  #internalError(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    try {
      this.#intake.internalError(err, { transport: 'http', clientAddress: normaliseAddress(req.socket.remoteAddress) });
      const message = `internal error: ${err instanceof Error ? err.message : String(err)}`;
      if (!res.headersSent) this.#reply(res, 500, mediaType(req.headers['content-type']) ?? 'json', new PipelineError('internal', message));
      else if (!res.writableEnded) res.end();
      req.resume();
    } catch {
      // Answering failed too: end the exchange rather than leave the client waiting.
      res.destroy();
    }
  }

  #fail(res: http.ServerResponse, enc: Encoding, e: PipelineError, ctx: PipelineContext, count: boolean): void {
    if (count) this.#intake.rejected(e, ctx);
    if (e.retryAfterMs !== undefined) res.setHeader('retry-after', String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
    this.#reply(res, toHttpStatus(e), enc, e);
  }

  #reply(res: http.ServerResponse, status: number, enc: Encoding, e: PipelineError): void {
    if (res.headersSent) return;
    if (enc === 'proto') {
      const body = encodeRpcStatus(toGrpcStatus(e), e.message);
      res.writeHead(status, { 'content-type': 'application/x-protobuf', 'content-length': body.length });
      res.end(body);
    } else {
      const body = JSON.stringify({ code: toGrpcStatus(e), message: e.message });
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  }
}

/**
 * After an early 413, read and discard the rest of the body instead of resetting the connection: a reset
 * makes the client lose the 413 (it sees ECONNRESET / a broken pipe and retries the same oversized request).
 * A client that keeps sending well past the limit is cut off.
 */
function drainOrCut(req: http.IncomingMessage, limit: number): void {
  const cap = Math.max(4 * limit, 1 << 20);
  let drained = 0;
  req.on('data', (c: Buffer) => {
    drained += c.length;
    if (drained > cap) req.destroy();
  });
  req.resume();
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}
