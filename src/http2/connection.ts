/**
 * One HTTP/2 connection (RFC 9113) over a net.Socket or tls.TLSSocket, for either role. Built for gRPC unary calls:
 * a request is headers, a body and an answer; there is no stream object per call beyond `Http2Stream`, no
 * EventEmitter, and no closure per call.
 *
 * What it does: the preface and SETTINGS exchange, SETTINGS/PING acknowledgements, flow control both ways (it
 * grants the peer `streamWindow` per stream and `connectionWindow` per connection and tops them up as it reads;
 * it honours the peer's windows when sending and queues the rest until a WINDOW_UPDATE), HEADERS + CONTINUATION
 * assembly decoded by HPACK, RST_STREAM, GOAWAY both ways, and SETTINGS_MAX_CONCURRENT_STREAMS both ways (the
 * server refuses streams beyond its own; the client queues requests beyond the peer's). PRIORITY is read and
 * ignored; PUSH_PROMISE is refused (a client sends SETTINGS_ENABLE_PUSH=0, so one is a PROTOCOL_ERROR).
 *
 * Writes are gathered and written once per event-loop turn: frames produced while a socket chunk is being read
 * go out when it is done; frames produced later (an answer after a promise) go out from one process.nextTick, so
 * everything answered in one turn (HEADERS, DATA and trailers of each call) is a single socket write.
 *
 * Hostile peers (the server side faces the network). Every violation becomes a connection error (GOAWAY with the
 * RFC 9113 code, then the socket closes) or a stream error (RST_STREAM); nothing throws out of the socket's data
 * handler, and memory per connection is bounded:
 *  - frames longer than SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR from the 9-byte header, before any payload;
 *  - header blocks: at most `maxHeaderListSize` encoded bytes and `MAX_CONTINUATIONS` frames per block
 *    (ENHANCE_YOUR_CALM); decoded lists above `maxHeaderListSize` get a 431 answer on that stream only;
 *  - DATA beyond the window granted: FLOW_CONTROL_ERROR;
 *  - streams beyond `maxConcurrentStreams`: RST_STREAM REFUSED_STREAM;
 *  - rapid reset (CVE-2023-44487): more than `maxResetsPerSecond` streams reset by the peer or refused within a
 *    second (sliding, see RateCounter): GOAWAY ENHANCE_YOUR_CALM;
 *  - SETTINGS, PING, PRIORITY, empty DATA and WINDOW_UPDATE floods: more than `maxControlFramesPerSecond` of them
 *    within a second, or more than `MAX_UNREAD_OUTPUT` bytes owed to a peer that does not read: ENHANCE_YOUR_CALM;
 *  - a request body is bounded by its owner (the server handler answers and the stream's rest is discarded).
 *
 * Server use:
 *   const conn = Http2Connection.server(socket, handler, options);
 *   handler.onHeaders(stream, headers)  headers as [name0, value0, …]; answer here to refuse without reading;
 *   handler.onData(stream, chunk)       a view into the socket's chunk, valid as long as it is referenced;
 *   handler.onEnd(stream)               the request is complete; answer now or later:
 *   stream.respond(headerBlock, data?, trailerBlock?)  HEADERS, DATA, trailers with END_STREAM, one write;
 *   stream.respond(trailersOnlyBlock)                  one HEADERS with END_STREAM;
 *   stream.reset(code)                                 RST_STREAM;
 *   handler.onAbort(stream, code)       the peer reset the stream, or the connection ended before the answer.
 *   conn.goaway() refuses new streams, finishes the open ones, then closes; conn.destroy() closes now.
 *
 * Client use (h2c: `Http2Connection.connect({ host, port })`; TLS with ALPN h2: add `tls: { ca, … }`; or
 * `Http2Connection.client(socket)` on a connected socket):
 *   const call = conn.request(headerBlock, bodyParts, onResponse, ctx);
 *   onResponse(err, call, ctx) runs once: without err, `call.headers`, `call.data` (the response's DATA payloads)
 *   and `call.trailers` (undefined if the stream ended without trailers, or `call.headers` itself for a
 *   trailers-only answer) are set; with err (an `Http2Error`), `err.unprocessed` says the server certainly did not
 *   process it (REFUSED_STREAM, above a GOAWAY's last stream id, or never sent), so it is safe to retry anywhere.
 *   call.cancel() sends RST_STREAM CANCEL (deadlines) and reports an Http2Error with code CANCEL.
 *   Requests beyond the peer's SETTINGS_MAX_CONCURRENT_STREAMS wait in a queue. After a GOAWAY (or a connection
 *   error, or stream ids running out) `conn.usable` is false: open calls below the last stream id finish, the
 *   others fail unprocessed, and the owner opens a new connection. conn.close() is a graceful GOAWAY and close.
 *   A server that does not acknowledge our SETTINGS within `settingsTimeoutMs` gets GOAWAY SETTINGS_TIMEOUT; with
 *   `keepaliveMs`, a silent server is PINGed and the connection closed when the PING goes unanswered.
 *   `onClose(conn, err)` in the options reports the end of the connection.
 *
 * Header blocks are HPACK-encoded by the caller (hpack.ts `encodeHeaderBlock`, stateless, so constant blocks are
 * built once); the connection prefixes the table-size update the peer's SETTINGS_HEADER_TABLE_SIZE may require.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { HeaderListTooLargeError, HpackDecoder, encodeHeaderBlock, tableSizeUpdate } from './hpack';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  FRAME_HEADER_LENGTH,
  Flag,
  FrameReader,
  FrameType,
  MAX_ALLOWED_FRAME_SIZE,
  MAX_WINDOW,
  SETTINGS_ACK,
  Setting,
  dataFrameHeader,
  errorCodeName,
  goawayFrame,
  headersFrames,
  parseSettings,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames';

/** CONTINUATION frames accepted in one header block. */
export const MAX_CONTINUATIONS = 64;
/** Bytes queued for a peer that does not read (our acknowledgements and answers) before it is cut off. */
export const MAX_UNREAD_OUTPUT = 16 * 1024 * 1024;
/** HPACK's initial dynamic table size (RFC 7541), what our stateless encoder's peer assumes until told otherwise. */
const DEFAULT_TABLE_SIZE = 4096;

export interface ConnectionOptions {
  /** Stream window granted to the peer (SETTINGS_INITIAL_WINDOW_SIZE). Default 1 MiB. */
  streamWindow?: number;
  /** Connection window granted to the peer. Default 1 MiB. */
  connectionWindow?: number;
  /** Streams the peer may open at once (server: enforced; client: advertised). Default 100 for a client, 1000 for a server. */
  maxConcurrentStreams?: number;
  /** Decoded header list size (RFC 9113 §6.5.2) accepted, and encoded header block bytes. Default 64 KiB. */
  maxHeaderListSize?: number;
  /** Streams the peer may reset (or have refused) per second before ENHANCE_YOUR_CALM. Default 200. */
  maxResetsPerSecond?: number;
  /** SETTINGS, PING, PRIORITY, empty DATA and WINDOW_UPDATE frames per second before ENHANCE_YOUR_CALM. Default 10,000. */
  maxControlFramesPerSecond?: number;
  /**
   * Client: response body bytes one call may receive. A call whose answer grows past it is cancelled and fails, so a
   * misbehaving server cannot make routelens hold an unbounded answer (the window is topped up as data is read).
   * Default 4 MiB, gRPC's default maximum received message.
   */
  maxResponseBytes?: number;
  /** Called once when the socket has closed, with the error that ended it if one did. */
  onClose?: (conn: Http2Connection, err: Error | undefined) => void;
  /**
   * Client: a peer that has not acknowledged our SETTINGS this many ms after they were sent gets a connection error
   * SETTINGS_TIMEOUT (RFC 9113 §6.5.3), so a server that accepted the TCP connection but does not speak is noticed
   * before each call's deadline. Default 10,000; 0 turns it off.
   */
  settingsTimeoutMs?: number;
  /**
   * Client keepalive: after `keepaliveMs` without anything received while calls are open (or always, with
   * `keepaliveWithoutCalls`), send a PING; if nothing arrives within `keepaliveTimeoutMs` after it, the connection
   * is closed and its calls fail (a peer gone behind a silent network). Default 0: off.
   */
  keepaliveMs?: number;
  /** Default 20,000 (gRPC's keepalive timeout). */
  keepaliveTimeoutMs?: number;
  keepaliveWithoutCalls?: boolean;
}

/** What a server connection reports per stream; one object per server, its methods take the stream. */
export interface ServerHandler {
  onHeaders(stream: Http2Stream, headers: string[]): void;
  onData(stream: Http2Stream, data: Buffer): void;
  onEnd(stream: Http2Stream): void;
  onAbort(stream: Http2Stream, code: number): void;
}

/** A client call's outcome. `call` holds the answer's headers, data and trailers when `err` is undefined. */
export type ResponseCallback<C> = (err: Http2Error | undefined, call: Http2Stream, ctx: C) => void;

/** A stream or connection failure as a client call sees it. */
export class Http2Error extends Error {
  /** RFC 9113 error code (of the RST_STREAM or GOAWAY), or INTERNAL_ERROR for a socket failure. */
  readonly code: number;
  /** True when the server certainly did not process the request: it may be retried, on another connection. */
  readonly unprocessed: boolean;
  constructor(message: string, code: number, unprocessed: boolean) {
    super(message);
    this.name = 'Http2Error';
    this.code = code;
    this.unprocessed = unprocessed;
  }
}

const enum Role {
  Server,
  Client,
}

/** One stream: a server's incoming request or a client's call. */
export class Http2Stream {
  id: number;
  readonly connection: Http2Connection;
  /** Free for the owner: the server's per-call state, or anything a client wants beside `ctx`. */
  user: unknown = undefined;
  /** Response headers (client). */
  headers: string[] | undefined = undefined;
  /** Response DATA payloads (client). */
  readonly data: Buffer[] = [];
  /** Bytes in `data` (client). */
  dataBytes = 0;
  /** Response trailers (client). */
  trailers: string[] | undefined = undefined;
  /** The peer has ended its side (END_STREAM received). */
  remoteEnded = false;
  /** This side has ended (END_STREAM written or queued). */
  localEnded = false;
  /** Closed, reset or failed: nothing more is sent or delivered. */
  closed = false;
  sendWindow: number;
  recvWindow: number;
  recvConsumed = 0;
  /** Output waiting for window: DATA parts, then (if set) the trailers block, END_STREAM after the last. */
  pending: Buffer[] = [];
  pendingBytes = 0;
  pendingTrailers: Buffer | undefined = undefined;
  pendingEnd = false;
  /** Client: the request, until it is started (queued behind MAX_CONCURRENT_STREAMS). */
  requestBlock: Buffer | undefined = undefined;
  onResponse: ResponseCallback<unknown> | undefined = undefined;
  ctx: unknown = undefined;

  constructor(connection: Http2Connection, id: number, sendWindow: number, recvWindow: number) {
    this.connection = connection;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /**
   * Server: answer with a header block, optionally DATA and a trailers block (END_STREAM on the last frame), in one
   * write. A single block with neither data nor trailers is a trailers-only answer. False if the stream is gone.
   */
  respond(headerBlock: Buffer, data?: Buffer, trailerBlock?: Buffer): boolean {
    return this.connection.respond(this, headerBlock, data, trailerBlock);
  }

  /** RST_STREAM with `code`: a server refusing, or a client cancelling (reported to its callback as CANCEL). */
  reset(code: number = ErrorCode.CANCEL): void {
    this.connection.resetStream(this, code);
  }

  /** Client: abandon the call (RST_STREAM CANCEL); the callback gets an Http2Error with code CANCEL. */
  cancel(): void {
    this.connection.resetStream(this, ErrorCode.CANCEL);
  }
}

/**
 * Frames counted against a limit per second, over a sliding second: ten 100 ms slots, so more than `limit` hits
 * within any 0.9 s are always caught and no more than `limit` within 1 s never are. (A window reset on each
 * calendar second missed a burst of up to twice the limit that straddled a second boundary.)
 */
export class RateCounter {
  static readonly SLOT_MS = 100;
  static readonly SLOTS = 10;
  readonly #slots = new Array<number>(RateCounter.SLOTS).fill(0);
  /** The slot (time / SLOT_MS) of the latest hit. */
  #slot = -Infinity;
  /** Hits in the slots kept. */
  #count = 0;
  constructor(readonly limit: number) {}
  /** Count one at `now` (ms); true when more than `limit` hits fall in the last second. */
  hit(now: number): boolean {
    const slot = Math.floor(now / RateCounter.SLOT_MS);
    if (slot !== this.#slot) {
      const n = RateCounter.SLOTS;
      if (slot < this.#slot || slot - this.#slot >= n) {
        // a second or more since the last hit (or the clock went back): nothing kept counts
        this.#slots.fill(0);
        this.#count = 0;
      } else {
        for (let k = this.#slot + 1; k <= slot; k++) {
          const i = k % n;
          this.#count -= this.#slots[i] as number;
          this.#slots[i] = 0;
        }
      }
      this.#slot = slot;
    }
    const i = slot % RateCounter.SLOTS;
    this.#slots[i] = (this.#slots[i] as number) + 1;
    return ++this.#count > this.limit;
  }
}

const REQUEST_TOO_LARGE_BLOCK = encodeHeaderBlock([':status', '431']);
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export class Http2Connection {
  readonly socket: net.Socket;
  readonly #role: Role;
  readonly #handler: ServerHandler | undefined;
  readonly #reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, Http2Stream>();
  readonly #streamWindow: number;
  readonly #connectionWindow: number;
  readonly #maxStreams: number;
  readonly #maxHeaderBytes: number;
  readonly #maxResponseBytes: number;
  readonly #resets: RateCounter;
  readonly #control: RateCounter;
  readonly #onClose: ((conn: Http2Connection, err: Error | undefined) => void) | undefined;

  #prefaceReceived: boolean;
  #settingsReceived = false;
  #out: Buffer[] = [];
  #outBytes = 0;
  #reading = false;
  #flushScheduled = false;
  #windowUpdateScheduled = false;
  /** Connection window granted to the peer but not yet sent as a WINDOW_UPDATE. */
  #windowUpdateOwed = 0;
  /** Receive side: what the peer may still send on the connection, and what was read since the last top-up. */
  #recvWindow = DEFAULT_WINDOW;
  #recvConsumed = 0;
  /** Send side: the peer's connection window and its settings. */
  #sendWindow = DEFAULT_WINDOW;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #peerMaxStreams = Infinity;
  /** A table-size update the next header block must start with (the peer lowered SETTINGS_HEADER_TABLE_SIZE). */
  #tableSizePrefix: Buffer | undefined = undefined;
  #peerTableSize = DEFAULT_TABLE_SIZE;
  /** Streams with output waiting for window. */
  readonly #blocked = new Set<Http2Stream>();
  /** Server: requests whose END_STREAM arrived in the read being parsed. */
  #ended: Http2Stream[] = [];
  /** Header block being assembled from HEADERS + CONTINUATION. */
  #blockStream = 0;
  #blockFlags = 0;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #blockFrames = 0;
  /** Highest stream id the peer opened (server) / we opened (client). */
  #lastPeerStream = 0;
  #nextStreamId = 1;
  /** Peer-initiated streams open (server), or our streams in flight (client). */
  #active = 0;
  readonly #queue: Http2Stream[] = [];
  #goawaySent = false;
  #goawayReceived = false;
  #peerLastStream = MAX_WINDOW;
  #dead = false;
  #closed = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #socketError: Error | undefined;
  #pings: ((err?: Error) => void)[] = [];
  #settingsTimer: NodeJS.Timeout | undefined;
  readonly #keepaliveMs: number;
  readonly #keepaliveTimeoutMs: number;
  readonly #keepaliveWithoutCalls: boolean;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  /** When a keepalive PING went out (0: none waiting), and when the socket last delivered bytes (keepalive only). */
  #keepalivePingAt = 0;
  #lastReadAt = 0;

  private constructor(socket: net.Socket, role: Role, handler: ServerHandler | undefined, opts: ConnectionOptions) {
    this.socket = socket;
    this.#role = role;
    this.#handler = handler;
    this.#streamWindow = opts.streamWindow ?? 1 << 20;
    this.#connectionWindow = opts.connectionWindow ?? 1 << 20;
    this.#maxStreams = opts.maxConcurrentStreams ?? (role === Role.Server ? 1000 : 100);
    this.#maxHeaderBytes = opts.maxHeaderListSize ?? 64 * 1024;
    this.#maxResponseBytes = opts.maxResponseBytes ?? 4 << 20;
    this.#decoder = new HpackDecoder({ maxHeaderListSize: this.#maxHeaderBytes });
    this.#resets = new RateCounter(opts.maxResetsPerSecond ?? 200);
    this.#control = new RateCounter(opts.maxControlFramesPerSecond ?? 10_000);
    this.#onClose = opts.onClose;
    this.#keepaliveMs = role === Role.Client ? (opts.keepaliveMs ?? 0) : 0;
    this.#keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? 20_000;
    this.#keepaliveWithoutCalls = opts.keepaliveWithoutCalls === true;
    this.#prefaceReceived = role === Role.Client;
    socket.setNoDelay?.(true);
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, this.#maxStreams],
      [Setting.INITIAL_WINDOW_SIZE, this.#streamWindow],
      [Setting.MAX_HEADER_LIST_SIZE, this.#maxHeaderBytes],
    ];
    if (role === Role.Client) {
      settings.unshift([Setting.ENABLE_PUSH, 0]);
      this.#write(CLIENT_PREFACE);
    }
    this.#write(settingsFrame(settings));
    if (this.#connectionWindow > DEFAULT_WINDOW) {
      this.#write(windowUpdateFrame(0, this.#connectionWindow - DEFAULT_WINDOW));
      this.#recvWindow = this.#connectionWindow;
    }
    if (role === Role.Client) {
      const settingsTimeout = opts.settingsTimeoutMs ?? 10_000;
      if (settingsTimeout > 0) this.#settingsTimer = setTimeout(settingsTimedOut, settingsTimeout, this, settingsTimeout).unref();
      if (this.#keepaliveMs > 0) {
        this.#lastReadAt = Date.now();
        this.#keepaliveTimer = setInterval(keepaliveCheck, this.#keepaliveMs, this).unref();
      }
    }
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => (this.#socketError ??= err));
    socket.on('close', () => this.#onSocketClosed());
    socket.resume();
  }

  /** Serve HTTP/2 on an accepted socket (after TLS, if any). Bytes the socket has buffered or unshifted are read first. */
  static server(socket: net.Socket, handler: ServerHandler, opts: ConnectionOptions = {}): Http2Connection {
    return new Http2Connection(socket, Role.Server, handler, opts);
  }

  /** Speak HTTP/2 as a client on a socket (connected or connecting; for TLS the socket must negotiate ALPN h2). */
  static client(socket: net.Socket, opts: ConnectionOptions = {}): Http2Connection {
    return new Http2Connection(socket, Role.Client, undefined, opts);
  }

  /** Open a client connection: h2c, or TLS with ALPN `h2` when `tls` is given (its options go to tls.connect). */
  static connect(target: { host: string; port: number; tls?: tls.ConnectionOptions }, opts: ConnectionOptions = {}): Http2Connection {
    if (target.tls === undefined) return Http2Connection.client(net.connect({ host: target.host, port: target.port }), opts);
    const socket = tls.connect({
      servername: net.isIP(target.host) === 0 ? target.host : undefined,
      ...target.tls,
      host: target.host,
      port: target.port,
      ALPNProtocols: ['h2'],
    });
    const conn = Http2Connection.client(socket, opts);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') socket.destroy(new Error(`${target.host}:${target.port} did not negotiate HTTP/2 (ALPN h2) over TLS`));
    });
    return conn;
  }

  /** Client: true while new requests may be sent (no GOAWAY, no error, stream ids left). */
  get usable(): boolean {
    return !this.#dead && !this.#goawaySent && !this.#goawayReceived && this.#nextStreamId <= MAX_WINDOW;
  }

  /** Streams open (server) or calls in flight and queued (client). */
  get activeStreams(): number {
    return this.#active + this.#queue.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- client -------------------------------------------------------------------------------------------------

  /** Send a request: `headerBlock` (HPACK), then `body` (END_STREAM after it). See the file comment. */
  request<C>(headerBlock: Buffer, body: readonly Buffer[], onResponse: ResponseCallback<C>, ctx: C): Http2Stream {
    const s = new Http2Stream(this, 0, 0, this.#streamWindow);
    s.requestBlock = headerBlock;
    s.onResponse = onResponse as ResponseCallback<unknown>;
    s.ctx = ctx;
    let bytes = 0;
    for (const b of body) {
      if (b.length === 0) continue;
      s.pending.push(b);
      bytes += b.length;
    }
    s.pendingBytes = bytes;
    s.pendingEnd = true;
    if (this.#role !== Role.Client) throw new Error('request() on a server connection');
    if (!this.usable) {
      s.closed = true;
      const err = new Http2Error(this.#dead ? 'the HTTP/2 connection is closed' : 'the HTTP/2 connection is going away', ErrorCode.REFUSED_STREAM, true);
      process.nextTick(() => onResponse(err, s, ctx));
      return s;
    }
    if (this.#active >= this.#peerMaxStreams) this.#queue.push(s);
    else this.#start(s);
    return s;
  }

  /** Send a PING; `done` runs when its ACK arrives (or with an error when the connection ends first). */
  ping(done: (err?: Error) => void): void {
    if (this.#dead) return process.nextTick(done, new Error('the HTTP/2 connection is closed'));
    this.#pings.push(done);
    this.#write(pingFrame(Buffer.alloc(8), false));
  }

  #start(s: Http2Stream): void {
    if (this.#nextStreamId > MAX_WINDOW) {
      this.#fail(s, new Http2Error('stream ids exhausted on this connection', ErrorCode.REFUSED_STREAM, true));
      return;
    }
    s.id = this.#nextStreamId;
    this.#nextStreamId += 2;
    s.sendWindow = this.#peerInitialWindow;
    this.#streams.set(s.id, s);
    this.#active++;
    const block = s.requestBlock as Buffer;
    s.requestBlock = undefined;
    const endNow = s.pendingBytes === 0;
    this.#write(headersFrames(s.id, this.#withTableSize(block), endNow, this.#peerMaxFrameSize));
    if (endNow) {
      s.pendingEnd = false;
      s.localEnded = true;
    } else this.#pump(s);
  }

  /** Run queued requests while the peer's stream limit allows. */
  #startQueued(): void {
    while (this.#queue.length > 0 && this.#active < this.#peerMaxStreams && this.usable) this.#start(this.#queue.shift() as Http2Stream);
  }

  // ---- server -------------------------------------------------------------------------------------------------

  /** See Http2Stream.respond. */
  respond(s: Http2Stream, headerBlock: Buffer, data: Buffer | undefined, trailerBlock: Buffer | undefined): boolean {
    if (s.closed || s.localEnded || this.#dead) return false;
    const only = data === undefined && trailerBlock === undefined;
    const max = this.#peerMaxFrameSize;
    if (
      data !== undefined &&
      trailerBlock !== undefined &&
      this.#tableSizePrefix === undefined &&
      s.pendingBytes === 0 &&
      data.length <= Math.min(s.sendWindow, this.#sendWindow) &&
      Math.max(headerBlock.length, data.length, trailerBlock.length) <= max
    ) {
      // The common answer (headers, one small message, trailers) as three frames in one buffer.
      this.#write(answerFrames(s.id, headerBlock, data, trailerBlock));
      s.sendWindow -= data.length;
      this.#sendWindow -= data.length;
      s.localEnded = true;
      this.#localEnded(s);
      return true;
    }
    this.#write(headersFrames(s.id, this.#withTableSize(headerBlock), only, this.#peerMaxFrameSize));
    if (only) {
      s.localEnded = true;
      this.#localEnded(s);
      return true;
    }
    if (data !== undefined && data.length > 0) {
      s.pending.push(data);
      s.pendingBytes += data.length;
    }
    s.pendingTrailers = trailerBlock;
    s.pendingEnd = true;
    this.#pump(s);
    return true;
  }

  /** Refuse new streams (GOAWAY NO_ERROR with the last stream id), finish the open ones, then close. */
  goaway(): void {
    if (this.#dead || this.#goawaySent) return;
    this.#goawaySent = true;
    this.#write(goawayFrame(this.#role === Role.Server ? this.#lastPeerStream : 0, ErrorCode.NO_ERROR));
    for (const s of this.#queue.splice(0)) this.#fail(s, new Http2Error('the HTTP/2 connection is closing', ErrorCode.REFUSED_STREAM, true));
    this.#closeIfIdle();
  }

  /** Graceful close (client or server): GOAWAY, let the open streams finish, close. */
  close(): void {
    this.goaway();
  }

  /** Close now: open streams fail (client) or are aborted (server). */
  destroy(err?: Error): void {
    this.#flush();
    if (err !== undefined) this.#socketError ??= err;
    this.socket.destroy();
  }

  /** RST_STREAM `code` on `s` (a no-op if it is already closed). */
  resetStream(s: Http2Stream, code: number): void {
    if (s.closed) return;
    if (s.id === 0) {
      const i = this.#queue.indexOf(s);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#fail(s, new Http2Error(`cancelled (${errorCodeName(code)})`, code, true));
      return;
    }
    this.#write(rstStreamFrame(s.id, code));
    this.#closeStream(s);
    if (this.#role === Role.Client) this.#report(s, new Http2Error(`cancelled (${errorCodeName(code)})`, code, false));
  }

  /** @internal The SETTINGS acknowledgement did not come in time. */
  settingsTimedOut(ms: number): void {
    this.#settingsTimer = undefined;
    this.#connectionError(ErrorCode.SETTINGS_TIMEOUT, `the peer did not acknowledge our SETTINGS within ${ms} ms`);
  }

  /** @internal Every `keepaliveMs`: PING a peer that has been silent that long; close when the last PING went unanswered. */
  keepaliveCheck(): void {
    if (this.#dead) return;
    const now = Date.now();
    if (this.#keepalivePingAt !== 0) {
      if (this.#lastReadAt >= this.#keepalivePingAt) this.#keepalivePingAt = 0;
      else if (now - this.#keepalivePingAt >= this.#keepaliveTimeoutMs) {
        this.destroy(new Error(`no answer to a keepalive PING within ${this.#keepaliveTimeoutMs} ms`));
        return;
      } else return;
    }
    if (this.#active === 0 && !this.#keepaliveWithoutCalls) return;
    if (now - this.#lastReadAt < this.#keepaliveMs) return;
    this.#keepalivePingAt = now;
    this.ping(() => undefined);
  }

  // ---- output -------------------------------------------------------------------------------------------------

  #write(b: Buffer): void {
    this.#out.push(b);
    this.#outBytes += b.length;
    if (!this.#reading && !this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(flushConnection, this);
    }
  }

  /** Write everything gathered since the last flush in one socket write. */
  flush(): void {
    this.#flush();
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0) return;
    this.#takeWindowUpdate();
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    if (this.socket.destroyed) return;
    if (out.length === 1) this.socket.write(out[0] as Buffer);
    else if (bytes <= 64 * 1024) this.socket.write(Buffer.concat(out, bytes));
    else {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.socket.writableLength > MAX_UNREAD_OUTPUT && this.#role === Role.Server)
      this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'the peer does not read what it is sent');
  }

  /** Add the connection window's top-up granted since the last write, if any, to the output gathered. */
  #takeWindowUpdate(): void {
    const owed = this.#windowUpdateOwed;
    if (owed === 0) return;
    this.#windowUpdateOwed = 0;
    const frame = windowUpdateFrame(0, owed);
    this.#out.push(frame);
    this.#outBytes += frame.length;
  }

  /** @internal The immediate scheduled by a read that granted a top-up: sends it unless a write took it already. */
  sendWindowUpdate(): void {
    this.#windowUpdateScheduled = false;
    if (this.#dead || this.#windowUpdateOwed === 0) return;
    this.#takeWindowUpdate();
    this.#flush();
  }

  /** Prefix a header block with the table-size update the peer's settings call for, once. */
  #withTableSize(block: Buffer): Buffer {
    const prefix = this.#tableSizePrefix;
    if (prefix === undefined) return block;
    this.#tableSizePrefix = undefined;
    return Buffer.concat([prefix, block]);
  }

  /** Send what the windows allow of a stream's pending output; park it in #blocked when they are exhausted. */
  #pump(s: Http2Stream): void {
    while (s.pendingBytes > 0) {
      const room = Math.min(s.sendWindow, this.#sendWindow, this.#peerMaxFrameSize);
      if (room <= 0) {
        this.#blocked.add(s);
        return;
      }
      // One DATA frame carries as many queued parts as fit, so a gRPC message's 5-byte prefix and its body share
      // a frame header: the peer handles one frame, not one per part.
      const size = Math.min(room, s.pendingBytes);
      s.pendingBytes -= size;
      s.sendWindow -= size;
      this.#sendWindow -= size;
      const last = s.pendingBytes === 0 && s.pendingEnd && s.pendingTrailers === undefined;
      this.#write(dataFrameHeader(s.id, size, last));
      let left = size;
      while (left > 0) {
        const head = s.pending[0] as Buffer;
        if (head.length <= left) {
          s.pending.shift();
          this.#write(head);
          left -= head.length;
        } else {
          this.#write(head.subarray(0, left));
          s.pending[0] = head.subarray(left);
          left = 0;
        }
      }
      if (last) {
        s.pendingEnd = false;
        s.localEnded = true;
      }
    }
    this.#blocked.delete(s);
    if (s.pendingTrailers !== undefined) {
      const t = s.pendingTrailers;
      s.pendingTrailers = undefined;
      s.pendingEnd = false;
      s.localEnded = true;
      this.#write(headersFrames(s.id, this.#withTableSize(t), true, this.#peerMaxFrameSize));
    } else if (s.pendingEnd) {
      s.pendingEnd = false;
      s.localEnded = true;
      this.#write(dataFrameHeader(s.id, 0, true));
    }
    if (s.localEnded) this.#localEnded(s);
  }

  /** After END_STREAM went out: close the stream if the peer is done; a server stops reading a request it answered early. */
  #localEnded(s: Http2Stream): void {
    if (s.remoteEnded) this.#closeStream(s);
    else if (this.#role === Role.Server) {
      // RFC 9113 §8.1: a complete answer before the complete request; NO_ERROR asks the client to stop sending.
      this.#write(rstStreamFrame(s.id, ErrorCode.NO_ERROR));
      this.#closeStream(s);
    }
  }

  #resumeBlocked(): void {
    for (const s of this.#blocked) {
      if (this.#sendWindow <= 0) return;
      if (s.closed) this.#blocked.delete(s);
      else this.#pump(s);
    }
  }

  // ---- input --------------------------------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    if (this.#keepaliveMs > 0) this.#lastReadAt = Date.now();
    this.#reading = true;
    try {
      this.#reader.push(chunk);
      if (!this.#prefaceReceived) {
        const have = this.#reader.peek(CLIENT_PREFACE.length);
        if (!CLIENT_PREFACE.subarray(0, have.length).equals(have)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface');
        if (!this.#reader.skip(CLIENT_PREFACE.length)) return;
        this.#prefaceReceived = true;
      }
      while (!this.#dead && this.#reader.next()) this.#onFrame(this.#reader.type, this.#reader.flags, this.#reader.streamId, this.#reader.payload);
      if (this.#ended.length > 0) this.#deliverEnded();
      if (this.#dead) return;
      if (this.#reader.oversized !== 0)
        return this.#connectionError(
          ErrorCode.FRAME_SIZE_ERROR,
          `frame of ${this.#reader.oversized} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.#reader.maxFrameSize}`,
        );
      if (this.#recvConsumed >= this.#connectionWindow / 2) {
        // Granted now; the WINDOW_UPDATE leaves with the next write of this turn (a request read now is usually
        // answered within it), else from an immediate at the end of the turn: a socket write and a wake-up of the
        // peer fewer per top-up.
        this.#recvWindow += this.#recvConsumed;
        this.#windowUpdateOwed += this.#recvConsumed;
        this.#recvConsumed = 0;
        if (!this.#windowUpdateScheduled) {
          this.#windowUpdateScheduled = true;
          setImmediate(sendWindowUpdate, this);
        }
      }
    } catch (err) {
      // A bug of ours or a handler's: the connection cannot be trusted any more, the process can.
      this.#connectionError(ErrorCode.INTERNAL_ERROR, err instanceof Error ? err.message : String(err));
    } finally {
      this.#reading = false;
      this.#flush();
    }
  }

  /**
   * Requests completed in this read, handed over once the whole read is parsed, so a call the client cancels in the
   * same packet (END_STREAM then RST_STREAM) is never processed.
   */
  #deliverEnded(): void {
    const ended = this.#ended;
    this.#ended = [];
    const handler = this.#handler as ServerHandler;
    for (const s of ended) if (!s.closed && !s.localEnded) handler.onEnd(s);
  }

  #onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.#blockStream !== 0 && type !== FrameType.CONTINUATION)
      return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'a frame other than CONTINUATION inside a header block');
    if (!this.#settingsReceived && type !== FrameType.SETTINGS) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame must be SETTINGS');
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, id, payload);
      case FrameType.HEADERS:
        return this.#onHeadersFrame(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case FrameType.PRIORITY:
        if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) return this.#streamError(id, ErrorCode.FRAME_SIZE_ERROR);
        this.#countControl();
        return;
      case FrameType.RST_STREAM:
        return this.#onRstStream(id, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE is not accepted');
      case FrameType.PING:
        if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING payload is not 8 octets');
        if ((flags & Flag.ACK) !== 0) {
          this.#pings.shift()?.();
          return;
        }
        if (this.#countControl()) return;
        this.#write(pingFrame(payload, true));
        return;
      case FrameType.GOAWAY:
        return this.#onGoaway(id, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /** Count a frame that costs us work without carrying a request; true after a connection error for a flood. */
  #countControl(): boolean {
    if (!this.#control.hit(Date.now())) return false;
    this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many control frames');
    return true;
  }

  /** A stream id the peer has not opened (server) or we have not (client): any frame but HEADERS there is an error. */
  #idle(id: number): boolean {
    if (this.#role === Role.Server) return (id & 1) === 1 ? id > this.#lastPeerStream : true;
    return (id & 1) === 1 ? id >= this.#nextStreamId : true;
  }

  #onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = payload.length;
    if (length > this.#recvWindow) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.#recvWindow -= length;
    this.#recvConsumed += length;
    let data = payload;
    if ((flags & Flag.PADDED) !== 0) {
      const pad = length > 0 ? (payload[0] as number) : 0;
      if (length === 0 || pad >= length) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the DATA frame');
      data = payload.subarray(1, length - pad);
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#idle(id)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return; // a stream closed or reset here; the peer may not know yet
    }
    if (s.remoteEnded) return this.#streamError(id, ErrorCode.STREAM_CLOSED);
    if (length > s.recvWindow) return this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
    s.recvWindow -= length;
    if (length === 0 && !end && this.#countControl()) return;
    if (data.length > 0) {
      if (this.#role === Role.Server) (this.#handler as ServerHandler).onData(s, data);
      else if (s.headers !== undefined) {
        s.dataBytes += data.length;
        if (s.dataBytes > this.#maxResponseBytes)
          return this.#streamError(id, ErrorCode.CANCEL, `the response body is larger than ${this.#maxResponseBytes} bytes`);
        s.data.push(data);
      } else return this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
    }
    if (s.closed) return;
    if (end) return this.#remoteEnded(s);
    s.recvConsumed += length;
    if (s.recvConsumed >= this.#streamWindow / 2) {
      this.#write(windowUpdateFrame(id, s.recvConsumed));
      s.recvWindow += s.recvConsumed;
      s.recvConsumed = 0;
    }
  }

  #onHeadersFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let from = 0;
    let pad = 0;
    if ((flags & Flag.PADDED) !== 0) {
      if (payload.length < 1) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS too short for its padding');
      pad = payload[0] as number;
      from = 1;
    }
    if ((flags & Flag.PRIORITY) !== 0) {
      if (payload.length >= from + 4 && (payload.readUInt32BE(from) & 0x7fffffff) === id)
        return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'a stream depending on itself');
      from += 5;
    }
    if (from + pad > payload.length) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS too short for its padding and priority');
    const fragment = payload.subarray(from, payload.length - pad);
    if ((flags & Flag.END_HEADERS) !== 0) return this.#onHeaderBlock(id, flags, fragment);
    if (fragment.length > this.#maxHeaderBytes) return this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    this.#blockStream = id;
    this.#blockFlags = flags;
    this.#blockParts = [fragment];
    this.#blockBytes = fragment.length;
    this.#blockFrames = 0;
  }

  #onContinuation(flags: number, id: number, payload: Buffer): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION outside a header block');
    this.#blockBytes += payload.length;
    if (++this.#blockFrames > MAX_CONTINUATIONS || this.#blockBytes > this.#maxHeaderBytes)
      return this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large (CONTINUATION flood)');
    this.#blockParts.push(payload);
    if ((flags & Flag.END_HEADERS) === 0) return;
    const block = Buffer.concat(this.#blockParts, this.#blockBytes);
    const f = this.#blockFlags;
    this.#blockStream = 0;
    this.#blockParts = [];
    this.#onHeaderBlock(id, f, block);
  }

  #onHeaderBlock(id: number, flags: number, block: Buffer): void {
    let headers: string[] | undefined;
    let tooLarge = false;
    try {
      headers = this.#decoder.decode(block);
    } catch (err) {
      if (!(err instanceof HeaderListTooLargeError))
        return this.#connectionError(ErrorCode.COMPRESSION_ERROR, `HPACK: ${err instanceof Error ? err.message : String(err)}`);
      tooLarge = true;
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    const s = this.#streams.get(id);
    if (this.#role === Role.Client) {
      if (s === undefined) {
        if (this.#idle(id)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${id}, which this client did not open`);
        return;
      }
      if (tooLarge || headers === undefined) return this.#streamError(id, ErrorCode.PROTOCOL_ERROR, 'response header list too large');
      if (s.remoteEnded) return this.#streamError(id, ErrorCode.STREAM_CLOSED);
      if (s.headers === undefined) {
        const status = headers[0] === ':status' ? (headers[1] as string) : '';
        if (status.length === 3 && status[0] === '1') {
          if (end) return this.#streamError(id, ErrorCode.PROTOCOL_ERROR, 'an informational response ending the stream');
          return; // 1xx: wait for the final response
        }
        if (status === '') return this.#streamError(id, ErrorCode.PROTOCOL_ERROR, 'a response without :status');
        s.headers = headers;
        if (end) s.trailers = headers;
      } else {
        if (!end) return this.#streamError(id, ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
        s.trailers = headers;
      }
      if (end) this.#remoteEnded(s);
      return;
    }
    // Server.
    if (s !== undefined) {
      // Trailers of a request (gRPC clients send none, but HTTP/2 allows them): they end it.
      if (s.remoteEnded) return this.#streamError(id, ErrorCode.STREAM_CLOSED);
      if (!end) return this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return this.#remoteEnded(s);
    }
    if ((id & 1) === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `client stream id ${id} is even`);
    if (id <= this.#lastPeerStream) {
      // A stream already closed here (reset, refused or answered): frames in flight when that happened are ignored.
      return;
    }
    this.#lastPeerStream = id;
    if (this.#goawaySent) return; // above the last stream id of our GOAWAY: ignored, the client retries elsewhere
    if (this.#active >= this.#maxStreams) {
      this.#write(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      if (this.#resets.hit(Date.now())) this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams refused or reset');
      return;
    }
    const stream = new Http2Stream(this, id, this.#peerInitialWindow, this.#streamWindow);
    stream.remoteEnded = end;
    this.#streams.set(id, stream);
    this.#active++;
    if (tooLarge || headers === undefined) {
      this.respond(stream, REQUEST_TOO_LARGE_BLOCK, undefined, undefined);
      return;
    }
    if (!validRequest(headers)) {
      this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    (this.#handler as ServerHandler).onHeaders(stream, headers);
    if (end) this.#ended.push(stream);
  }

  /** END_STREAM from the peer. */
  #remoteEnded(s: Http2Stream): void {
    s.remoteEnded = true;
    if (this.#role === Role.Server) {
      if (!s.localEnded) this.#ended.push(s);
      else this.#closeStream(s);
      return;
    }
    if (!s.localEnded) {
      // The server answered before taking the whole request: stop sending it.
      this.#write(rstStreamFrame(s.id, ErrorCode.CANCEL));
      s.pending = [];
      s.pendingBytes = 0;
      s.pendingTrailers = undefined;
      s.pendingEnd = false;
      s.localEnded = true;
    }
    this.#closeStream(s);
    this.#report(s, undefined);
  }

  #onRstStream(id: number, payload: Buffer): void {
    if (id === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM payload is not 4 octets');
    if (this.#idle(id)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    const code = payload.readUInt32BE(0);
    const s = this.#streams.get(id);
    if (this.#role === Role.Server && this.#resets.hit(Date.now()))
      return this.#connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams reset (rapid reset)');
    if (s === undefined) return;
    this.#closeStream(s);
    if (this.#role === Role.Server) (this.#handler as ServerHandler).onAbort(s, code);
    else this.#report(s, new Http2Error(`stream reset by the server (${errorCodeName(code)})`, code, code === ErrorCode.REFUSED_STREAM));
  }

  #onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      if (this.#settingsTimer !== undefined) clearTimeout(this.#settingsTimer);
      this.#settingsTimer = undefined;
      return;
    }
    const settings = parseSettings(payload);
    if (settings === undefined) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS payload not a multiple of 6 octets');
    if (this.#settingsReceived && this.#countControl()) return;
    this.#settingsReceived = true;
    for (const [key, value] of settings) {
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          if (value < this.#peerTableSize) this.#tableSizePrefix = tableSizeUpdate(value);
          this.#peerTableSize = value;
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1 || (this.#role === Role.Client && value !== 0)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.#peerMaxStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_ALLOWED_FRAME_SIZE)
            return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
          this.#peerMaxFrameSize = value;
          break;
        default:
          break; // SETTINGS_MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
      }
    }
    this.#write(SETTINGS_ACK);
    this.#resumeBlocked();
    if (this.#role === Role.Client) this.#startQueued();
  }

  #onGoaway(id: number, payload: Buffer): void {
    if (id !== 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY shorter than 8 octets');
    const last = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    this.#goawayReceived = true;
    this.#peerLastStream = Math.min(this.#peerLastStream, last);
    if (this.#role === Role.Client) {
      const why = `the server sent GOAWAY (${errorCodeName(code)}${payload.length > 8 ? `: ${payload.toString('utf8', 8, Math.min(payload.length, 264))}` : ''})`;
      for (const s of [...this.#streams.values()]) {
        if (s.id > last) {
          this.#closeStream(s);
          this.#report(s, new Http2Error(why, code === ErrorCode.NO_ERROR ? ErrorCode.REFUSED_STREAM : code, true));
        }
      }
      for (const s of this.#queue.splice(0)) this.#fail(s, new Http2Error(why, ErrorCode.REFUSED_STREAM, true));
    }
    this.#closeIfIdle();
  }

  #onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload is not 4 octets');
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) return this.#connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      if (this.#blocked.size === 0 && this.#countControl()) return;
      this.#resumeBlocked();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (this.#idle(id)) return this.#connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (inc === 0) return this.#streamError(id, ErrorCode.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.#streamError(id, ErrorCode.FLOW_CONTROL_ERROR);
    if (s.pendingBytes > 0 || s.pendingEnd) this.#pump(s);
    else if (this.#countControl()) return;
  }

  // ---- stream and connection ends -----------------------------------------------------------------------------

  #closeStream(s: Http2Stream): void {
    if (s.closed) return;
    s.closed = true;
    if (this.#streams.delete(s.id)) this.#active--;
    this.#blocked.delete(s);
    if (this.#role === Role.Client) this.#startQueued();
    this.#closeIfIdle();
  }

  /** RST_STREAM `code` for a stream the peer got wrong; its owner hears of it (server: onAbort; client: the callback). */
  #streamError(id: number, code: number, message?: string): void {
    this.#write(rstStreamFrame(id, code));
    const s = this.#streams.get(id);
    if (s === undefined) return;
    this.#closeStream(s);
    if (this.#role === Role.Server) (this.#handler as ServerHandler).onAbort(s, code);
    else this.#report(s, new Http2Error(message ?? `stream error ${errorCodeName(code)}`, code, false));
  }

  /** GOAWAY with `code`, then close: every open stream is aborted. */
  #connectionError(code: number, message: string): void {
    if (this.#dead) return;
    const last = this.#role === Role.Server ? this.#lastPeerStream : 0;
    this.#write(goawayFrame(last, code, message));
    this.#goawaySent = true;
    this.#flush();
    this.#terminate(new Http2Error(`HTTP/2 connection error ${errorCodeName(code)}: ${message}`, code, false));
    this.socket.end();
    this.#closeTimer = setTimeout(() => this.socket.destroy(), 1000);
    this.#closeTimer.unref();
  }

  /** Mark the connection dead and fail or abort everything open. */
  #terminate(err: Http2Error): void {
    this.#stopTimers();
    if (this.#dead) return;
    this.#dead = true;
    const open = [...this.#streams.values()];
    for (const s of open) {
      this.#closeStream(s);
      if (this.#role === Role.Server) (this.#handler as ServerHandler).onAbort(s, err.code);
      else this.#report(s, err);
    }
    for (const s of this.#queue.splice(0)) this.#fail(s, new Http2Error(err.message, err.code, true));
    for (const p of this.#pings.splice(0)) p(err);
  }

  #onSocketClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#stopTimers();
    const err = this.#socketError;
    this.#terminate(
      new Http2Error(err === undefined ? 'the HTTP/2 connection closed' : `the HTTP/2 connection failed: ${err.message}`, ErrorCode.INTERNAL_ERROR, false),
    );
    this.#onClose?.(this, err);
  }

  /** After a GOAWAY either way, close the socket once the last stream is done. */
  #closeIfIdle(): void {
    if ((this.#goawaySent || this.#goawayReceived) && this.#streams.size === 0 && this.#queue.length === 0 && !this.#dead) {
      this.#flush();
      this.#dead = true;
      this.socket.end();
      this.#closeTimer = setTimeout(() => this.socket.destroy(), 1000);
      this.#closeTimer.unref();
    }
  }

  #stopTimers(): void {
    if (this.#settingsTimer !== undefined) clearTimeout(this.#settingsTimer);
    if (this.#keepaliveTimer !== undefined) clearInterval(this.#keepaliveTimer);
    this.#settingsTimer = undefined;
    this.#keepaliveTimer = undefined;
  }

  #report(s: Http2Stream, err: Http2Error | undefined): void {
    const cb = s.onResponse;
    if (cb === undefined) return;
    s.onResponse = undefined;
    cb(err, s, s.ctx);
  }

  /** Fail a client call that never started (queued, or refused before it got a stream id). */
  #fail(s: Http2Stream, err: Http2Error): void {
    s.closed = true;
    this.#report(s, err);
  }
}

/** HEADERS, DATA and trailing HEADERS with END_STREAM, each fitting one frame, in one buffer. */
function answerFrames(id: number, headers: Buffer, data: Buffer, trailers: Buffer): Buffer {
  const out = Buffer.allocUnsafe(3 * FRAME_HEADER_LENGTH + headers.length + data.length + trailers.length);
  let at = 0;
  writeFrameHeader(out, at, headers.length, FrameType.HEADERS, Flag.END_HEADERS, id);
  at += FRAME_HEADER_LENGTH + headers.copy(out, at + FRAME_HEADER_LENGTH);
  writeFrameHeader(out, at, data.length, FrameType.DATA, 0, id);
  at += FRAME_HEADER_LENGTH + data.copy(out, at + FRAME_HEADER_LENGTH);
  writeFrameHeader(out, at, trailers.length, FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, id);
  trailers.copy(out, at + FRAME_HEADER_LENGTH);
  return out;
}

function flushConnection(c: Http2Connection): void {
  c.flush();
}

function settingsTimedOut(c: Http2Connection, ms: number): void {
  c.settingsTimedOut(ms);
}

function keepaliveCheck(c: Http2Connection): void {
  c.keepaliveCheck();
}

function sendWindowUpdate(c: Http2Connection): void {
  c.sendWindowUpdate();
}

/**
 * RFC 9113 §8.3: a request's pseudo-header fields first, each once, :method/:scheme/:path present (CONNECT aside),
 * names in lower case, no connection-specific fields, `te` at most `trailers`.
 */
function validRequest(h: readonly string[]): boolean {
  let method = false;
  let scheme = false;
  let path = false;
  let regular = false;
  let isConnect = false;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i] as string;
    if (name.length === 0) return false;
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return false;
      if (name === ':method') {
        if (method) return false;
        method = true;
        isConnect = h[i + 1] === 'CONNECT';
      } else if (name === ':scheme') {
        if (scheme) return false;
        scheme = true;
      } else if (name === ':path') {
        if (path || h[i + 1] === '') return false;
        path = true;
      } else if (name !== ':authority') return false;
      continue;
    }
    regular = true;
    for (let k = 0; k < name.length; k++) {
      const c = name.charCodeAt(k);
      if (c >= 0x41 && c <= 0x5a) return false;
    }
    if (CONNECTION_SPECIFIC.has(name)) return false;
    if (name === 'te' && h[i + 1] !== 'trailers') return false;
  }
  return method && (isConnect || (scheme && path));
}
