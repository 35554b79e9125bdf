/**
 * The otlp exporter's gRPC transport against grpc-js servers (an independent gRPC implementation) and against
 * servers that misbehave: bytes and metadata arrive exactly, every status maps as the Collector's exporter maps
 * it, deadlines hold, and a lost or late server is reconnected.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import fc from 'fast-check';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import { ErrorCode, Flag, FrameReader, FrameType, SETTINGS_ACK, Setting, frame, headersFrames, rstStreamFrame, settingsFrame } from '../../http2/frames';
import { HpackDecoder, encodeHeaderBlock } from '../../http2/hpack';
import { encodeRpcStatus } from '../../pdata/rpc-status';
import { TYPES, protoType } from '../../pdata/proto';
import { freePort, waitFor } from '../../../test/support/free-port';
import { makeTestCerts } from '../../../test/support/test-certs';
import type { SendResult } from './transport';
import { GrpcTransport, grpcCodeOfHttpStatus, type GrpcTransportOptions } from './grpc-transport';

const METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer): Buffer => b;

type Handler = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => void;

/** A grpc-js server for the trace Export method; `handler` is swappable per test. */
class GrpcJsServer {
  handler: Handler = (_call, cb) => cb(null, Buffer.alloc(0));
  readonly received: { body: Buffer; metadata: Record<string, string> }[] = [];
  #server: grpc.Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    const server = new grpc.Server();
    server.addService(
      {
        Export: {
          path: METHOD,
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          this.received.push({ body: call.request, metadata: Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)])) });
          this.handler(call, cb);
        },
      },
    );
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.#server = server;
    return this;
  }

  stop(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
  }
}

function transport(port: number, extra: Partial<GrpcTransportOptions> = {}): GrpcTransport {
  return new GrpcTransport({
    endpoint: `127.0.0.1:${port}`,
    tls: { insecure: true, insecure_skip_verify: false, ca_file: undefined, cert_file: undefined, key_file: undefined, server_name_override: undefined },
    headers: {},
    compression: 'none',
    method: METHOD,
    balancer: 'pick_first',
    ...extra,
  });
}

function statusOf(r: SendResult): string {
  return r.status === 'success' ? 'success' : `${r.status}: ${r.error.message}`;
}

describe('otlp exporter gRPC transport against grpc-js', () => {
  let server: GrpcJsServer;
  beforeEach(async () => {
    server = await new GrpcJsServer().start();
  });
  afterEach(() => server.stop());

  it('delivers any split of a request into parts as the exact concatenation, with and without gzip', async () => {
    const plain = transport(server.port);
    const gzip = transport(server.port, { compression: 'gzip' });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 40_000 }), { maxLength: 6 }), fc.boolean(), async (parts, compress) => {
          server.received.length = 0;
          const r = await (compress ? gzip : plain).send(parts, 5000);
          expect(statusOf(r)).to.equal('success');
          expect(server.received).to.have.length(1);
          expect(server.received[0]?.body.equals(Buffer.concat(parts))).to.equal(true);
        }),
        { numRuns: 60 },
      );
    } finally {
      await plain.close();
      await gzip.close();
    }
  });

  it('sends configured headers and authenticator headers as metadata', async () => {
    const t = transport(server.port, { headers: { 'X-Tenant': 'blue' }, auth: { headers: () => ({ authorization: 'Bearer t0k' }) } });
    expect(statusOf(await t.send(Buffer.from('abc'), 5000))).to.equal('success');
    expect(server.received[0]?.metadata).to.include({ 'x-tenant': 'blue', authorization: 'Bearer t0k' });
    await t.close();
  });

  it('maps gRPC statuses as the Collector exporter does, with RetryInfo and partial success', async () => {
    const t = transport(server.port);
    const cases: { code: grpc.status; details?: Uint8Array; want: string; retryAfterMs?: number }[] = [
      { code: grpc.status.UNAVAILABLE, want: 'retryable' },
      { code: grpc.status.DEADLINE_EXCEEDED, want: 'retryable' },
      { code: grpc.status.ABORTED, want: 'retryable' },
      { code: grpc.status.CANCELLED, want: 'retryable' },
      { code: grpc.status.RESOURCE_EXHAUSTED, want: 'failure' },
      { code: grpc.status.RESOURCE_EXHAUSTED, details: encodeRpcStatus(8, 'slow down', 1500), want: 'retryable', retryAfterMs: 1500 },
      { code: grpc.status.UNAVAILABLE, details: encodeRpcStatus(14, 'later', 250), want: 'retryable', retryAfterMs: 250 },
      { code: grpc.status.INVALID_ARGUMENT, want: 'failure' },
      { code: grpc.status.PERMISSION_DENIED, want: 'failure' },
      { code: grpc.status.UNAUTHENTICATED, want: 'failure' },
      { code: grpc.status.UNIMPLEMENTED, want: 'failure' },
      { code: grpc.status.INTERNAL, want: 'failure' },
    ];
    for (const c of cases) {
      server.handler = (_call, cb) => {
        const md = new grpc.Metadata();
        if (c.details !== undefined) md.set('grpc-status-details-bin', Buffer.from(c.details));
        cb({ code: c.code, details: `told ${grpc.status[c.code]}`, metadata: md });
      };
      const r = await t.send(Buffer.from('x'), 5000);
      expect(r.status, grpc.status[c.code]).to.equal(c.want);
      if (r.status !== 'success') {
        expect(r.error.message).to.contain(grpc.status[c.code]).and.to.contain(`told ${grpc.status[c.code]}`);
      }
      if (r.status === 'retryable') expect(r.retryAfterMs).to.equal(c.retryAfterMs);
    }
    const resp = protoType(TYPES.exportTraceResponse);
    server.handler = (_call, cb) => cb(null, Buffer.from(resp.encode(resp.create({ partialSuccess: { rejectedSpans: 7, errorMessage: 'too old' } })).finish()));
    const r = await t.send(Buffer.from('x'), 5000);
    expect(r).to.deep.equal({ status: 'success', rejected: 7, message: 'too old' });
    await t.close();
  });

  it('gives up at the deadline when the server does not answer, and the next call still works', async () => {
    const t = transport(server.port);
    let hold: grpc.sendUnaryData<Buffer> | undefined;
    server.handler = (_call, cb) => {
      hold = cb;
    };
    const t0 = Date.now();
    const r = await t.send(Buffer.from('x'), 300);
    const took = Date.now() - t0;
    expect(statusOf(r)).to.match(/^retryable: gRPC DEADLINE_EXCEEDED/);
    expect(took).to.be.within(250, 3000);
    hold?.(null, Buffer.alloc(0));
    server.handler = (_call, cb) => cb(null, Buffer.alloc(0));
    expect(statusOf(await t.send(Buffer.from('y'), 5000))).to.equal('success');
    await t.close();
  });

  it('reports an unreachable endpoint as retryable, then connects once the server is back on the port', async () => {
    const port = server.port;
    server.stop();
    const t = transport(port);
    const down = await t.send(Buffer.from('x'), 1000);
    expect(statusOf(down)).to.match(/^retryable: gRPC UNAVAILABLE/);
    server = await new GrpcJsServer().start(port);
    expect(statusOf(await t.send(Buffer.from('y'), 5000))).to.equal('success');
    // The server goes away under an open connection and comes back: the transport reconnects.
    server.stop();
    const lost = await t.send(Buffer.from('z'), 1000);
    expect(lost.status).to.equal('retryable');
    server = await new GrpcJsServer().start(port);
    let ok: SendResult | undefined;
    for (let i = 0; i < 20 && ok?.status !== 'success'; i++) ok = await t.send(Buffer.from('w'), 2000);
    expect(statusOf(ok as SendResult)).to.equal('success');
    expect(server.received.map((x) => x.body.toString())).to.include('w');
    await t.close();
  });
});

describe('otlp exporter gRPC transport shutdown', () => {
  it('close() returns at once when the server has already gone away (a closed session never calls back)', async () => {
    const server = await new GrpcJsServer().start();
    const t = transport(server.port);
    expect(statusOf(await t.send(Buffer.from('x'), 5000))).to.equal('success');
    server.stop();
    // A send after the server left fails on the closed session, which stays in the transport until the next pick.
    expect((await t.send(Buffer.from('y'), 1000)).status).to.equal('retryable');
    const t0 = Date.now();
    await t.close();
    expect(Date.now() - t0).to.be.below(1000);
    expect(statusOf(await t.send(Buffer.from('z'), 1000))).to.match(/^retryable: gRPC UNAVAILABLE: exporter is shutting down/);
  });
});

describe('otlp exporter gRPC transport against servers that are not gRPC servers', () => {
  it('maps a plain HTTP/2 answer to the gRPC code of its HTTP status', async () => {
    const statuses = [404, 503, 429, 400, 401, 500];
    const h2 = http2.createServer();
    let next = 0;
    h2.on('stream', (stream) => {
      stream.respond({ ':status': statuses[next++] ?? 500, 'content-type': 'text/plain' });
      stream.end('not grpc');
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const t = transport((h2.address() as net.AddressInfo).port);
    try {
      for (const s of statuses) {
        const r = await t.send(Buffer.from('x'), 2000);
        const code = grpcCodeOfHttpStatus(s);
        expect(r.status, String(s)).to.equal(code === 14 ? 'retryable' : 'failure');
        expect(statusOf(r)).to.contain(`HTTP status ${s}`);
      }
    } finally {
      await t.close();
      h2.close();
    }
  });

  it('frames the message as gRPC: compressed flag, big-endian length, gzip body with grpc-encoding', async () => {
    const seen: { headers: http2.IncomingHttpHeaders; body: Buffer }[] = [];
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        seen.push({ headers, body: Buffer.concat(chunks) });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const port = (h2.address() as net.AddressInfo).port;
    const plain = transport(port);
    const gz = transport(port, { compression: 'gzip' });
    try {
      expect(statusOf(await plain.send([Buffer.from('ab'), Buffer.from('cde')], 2000))).to.equal('success');
      expect(statusOf(await gz.send([Buffer.from('ab'), Buffer.from('cde')], 2000))).to.equal('success');
      const [p, g] = seen as [(typeof seen)[0], (typeof seen)[0]];
      expect(p.headers).to.include({ ':method': 'POST', ':path': METHOD, 'content-type': 'application/grpc', te: 'trailers' });
      expect(p.headers['grpc-timeout']).to.match(/^\d+m$/);
      expect(p.headers['grpc-encoding']).to.equal(undefined);
      expect([...p.body]).to.deep.equal([0, 0, 0, 0, 5, ...Buffer.from('abcde')]);
      expect(g.headers['grpc-encoding']).to.equal('gzip');
      expect(g.body[0]).to.equal(1);
      expect(g.body.readUInt32BE(1)).to.equal(g.body.length - 5);
      expect(zlib.gunzipSync(g.body.subarray(5)).toString()).to.equal('abcde');
    } finally {
      await plain.close();
      await gz.close();
      h2.close();
    }
  });

  it('writes a request of several parts as one run of full DATA frames that parts share, the last carrying END_STREAM (no empty frame after)', async () => {
    // An HTTP/2 server framed by hand, to see the frames themselves: SETTINGS with a wide window, then the answer.
    const frame = (type: number, flags: number, id: number, payload: Buffer): Buffer => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(id, 5);
      return Buffer.concat([h, payload]);
    };
    const literal = (name: string, value: string): Buffer =>
      Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
    const data: { flags: number; length: number }[] = [];
    const body: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
      settings.writeUInt32BE(1 << 20, 2);
      const windowUpdate = Buffer.alloc(4);
      windowUpdate.writeUInt32BE(1 << 20, 0);
      socket.write(Buffer.concat([frame(4, 0, 0, settings), frame(8, 0, 0, windowUpdate)]));
      let buf = Buffer.alloc(0);
      let p = 24; // the client preface
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length - p >= 9 && buf.length - p >= 9 + buf.readUIntBE(p, 3)) {
          const len = buf.readUIntBE(p, 3);
          const [type, flags] = [buf[p + 3] as number, buf[p + 4] as number];
          const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
          const payload = buf.subarray(p + 9, p + 9 + len);
          p += 9 + len;
          if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0)));
          if (type !== 0 || id === 0) continue;
          data.push({ flags, length: len });
          body.push(Buffer.from(payload));
          if ((flags & 1) === 0) continue;
          const headers = Buffer.concat([Buffer.from([0x88]), literal('content-type', 'application/grpc')]); // 0x88: :status 200
          socket.write(Buffer.concat([frame(1, 4, id, headers), frame(0, 0, id, Buffer.alloc(5)), frame(1, 5, id, literal('grpc-status', '0'))]));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const t = transport((server.address() as net.AddressInfo).port);
    try {
      const parts = [Buffer.alloc(20_000, 1), Buffer.alloc(3, 2), Buffer.alloc(30_000, 3)];
      expect(statusOf(await t.send(parts, 2000))).to.equal('success');
      expect(Buffer.concat(body).equals(Buffer.concat([Buffer.from([0, 0, 0, 0xc3, 0x53]), ...parts]))).to.equal(true);
      // 5 + 20,000 + 3 + 30,000 bytes in frames of the default SETTINGS_MAX_FRAME_SIZE: the prefix does not get a frame of its own.
      expect(data.map((f) => f.length)).to.deep.equal([16_384, 16_384, 16_384, 856]);
      expect(data.slice(0, -1).every((f) => (f.flags & 1) === 0)).to.equal(true);
      expect(data.at(-1)).to.include({ flags: 1 });
      expect(
        data.every((f) => f.length > 0),
        'no empty DATA frame',
      ).to.equal(true);
    } finally {
      await t.close();
      server.close();
    }
  });

  it('a TCP server that never speaks HTTP/2 costs one deadline, not a hang', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t = transport((silent.address() as net.AddressInfo).port);
    const t0 = Date.now();
    const r = await t.send(Buffer.from('x'), 400);
    expect(r.status).to.equal('retryable');
    expect(Date.now() - t0).to.be.below(3000);
    await Promise.race([t.close(), new Promise((res) => setTimeout(res, 500))]);
    for (const s of sockets) s.destroy();
    silent.close();
  });

  it('a refused port answers at once as UNAVAILABLE', async () => {
    const port = await freePort();
    const t = transport(port);
    const r = await t.send(Buffer.from('x'), 5000);
    expect(statusOf(r)).to.match(/^retryable: gRPC UNAVAILABLE: cannot connect/);
    await t.close();
  });
});

/** One frame as a hand-framed server received it, with the index of the socket chunk it arrived in. */
interface SeenFrame {
  conn: number;
  chunk: number;
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/**
 * An HTTP/2 server framed by hand (frames.ts for the bytes, nothing of connection.ts), to see what the transport
 * writes: every frame, which socket chunk it came in, and the answer a test chooses per call.
 */
class RawServer {
  readonly frames: SeenFrame[] = [];
  readonly sockets: net.Socket[] = [];
  /** Called when a call's request is complete; write the answer to the socket (or not). */
  onCall: (socket: net.Socket, id: number, conn: number) => void = (socket, id) => socket.write(okAnswer(id));
  readonly server = net.createServer((socket) => {
    const conn = this.sockets.push(socket) - 1;
    socket.on('error', () => undefined);
    socket.write(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]));
    const reader = new FrameReader(1 << 24);
    let preface = false;
    let chunk = 0;
    socket.on('data', (d: Buffer) => {
      chunk++;
      reader.push(d);
      if (!preface) {
        if (!reader.skip(24)) return;
        preface = true;
      }
      while (reader.next()) {
        const f = { conn, chunk, type: reader.type, flags: reader.flags, id: reader.streamId, payload: Buffer.from(reader.payload) };
        this.frames.push(f);
        if (f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0) socket.write(SETTINGS_ACK);
        if (f.id !== 0 && (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && (f.flags & Flag.END_STREAM) !== 0) this.onCall(socket, f.id, conn);
      }
    });
  });
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

function okAnswer(id: number): Buffer {
  return Buffer.concat([
    headersFrames(id, encodeHeaderBlock([':status', '200', 'content-type', 'application/grpc']), false, 16384),
    frame(FrameType.DATA, 0, id, Buffer.alloc(5)),
    headersFrames(id, encodeHeaderBlock(['grpc-status', '0']), true, 16384),
  ]);
}

describe('otlp exporter gRPC transport on its own HTTP/2 client, seen frame by frame', () => {
  let raw: RawServer;
  let port: number;
  beforeEach(async () => {
    raw = new RawServer();
    port = await raw.listen();
  });
  afterEach(() => raw.close());

  it('sends the constant header block, grpc-timeout and the authenticator headers; HEADERS and DATA in one socket write', async () => {
    const t = transport(port, {
      headers: { 'X-Tenant': 'blue', 'User-Agent': 'not this', TE: 'gzip' },
      auth: { headers: () => ({ Authorization: 'Bearer t0k' }) },
    });
    try {
      expect(statusOf(await t.send([Buffer.from('ab'), Buffer.from('cde')], 5000))).to.equal('success');
      expect(statusOf(await t.send(Buffer.alloc(30_000, 7), 4000))).to.equal('success');
      const decoder = new HpackDecoder();
      const requests = raw.frames.filter((f) => f.type === FrameType.HEADERS);
      expect(requests.map((f) => f.id)).to.deep.equal([1, 3]);
      const base = [
        ':method',
        'POST',
        ':scheme',
        'http',
        ':path',
        METHOD,
        ':authority',
        `127.0.0.1:${port}`,
        'content-type',
        'application/grpc',
        'te',
        'trailers',
      ];
      const rest = ['user-agent', 'routelens', 'grpc-accept-encoding', 'identity,gzip', 'x-tenant', 'blue'];
      const [first, second] = requests.map((f) => decoder.decode(f.payload));
      expect(first).to.deep.equal([...base, ...rest, 'grpc-timeout', first?.[first.length - 3], 'authorization', 'Bearer t0k']);
      expect(first?.[first.length - 3]).to.match(/^(4\d{3}|5000)m$/);
      expect(second?.[second.length - 3]).to.match(/^(3\d{3}|4000)m$/);
      // The constant part is byte-identical on every call; the authorization header is never indexed.
      const constant = encodeHeaderBlock([...base, ...rest]);
      for (const f of requests) expect(f.payload.subarray(0, constant.length)).to.deep.equal(constant);
      // The second call: its HEADERS and all its DATA frames came in one socket chunk, END_STREAM on the last.
      const call = raw.frames.filter((f) => f.id === 3 && (f.type === FrameType.HEADERS || f.type === FrameType.DATA));
      expect(new Set(call.map((f) => f.chunk)).size).to.equal(1);
      expect(call.map((f) => f.type)).to.deep.equal([FrameType.HEADERS, ...call.slice(1).map(() => FrameType.DATA)]);
      expect(call.map((f) => f.flags & Flag.END_STREAM)).to.deep.equal([...call.slice(1).map(() => 0), 1]);
      expect(Buffer.concat(call.slice(1).map((f) => f.payload)).equals(Buffer.concat([Buffer.from([0, 0, 0, 0x75, 0x30]), Buffer.alloc(30_000, 7)]))).to.equal(
        true,
      );
      expect(raw.sockets).to.have.length(1);
    } finally {
      await t.close();
    }
  });

  it('cancels a call whose deadline passed with RST_STREAM CANCEL, and the connection serves the next one', async () => {
    raw.onCall = (socket, id) => {
      if (id !== 1) socket.write(okAnswer(id));
    };
    const t = transport(port);
    try {
      expect(statusOf(await t.send(Buffer.from('x'), 200))).to.match(/^retryable: gRPC DEADLINE_EXCEEDED/);
      expect(statusOf(await t.send(Buffer.from('y'), 2000))).to.equal('success');
      const rst = raw.frames.find((f) => f.type === FrameType.RST_STREAM);
      expect(rst?.id).to.equal(1);
      expect(rst?.payload.readUInt32BE(0)).to.equal(ErrorCode.CANCEL);
      expect(raw.sockets).to.have.length(1);
    } finally {
      await t.close();
    }
  });

  it('one timer watches every call: a later call with an earlier deadline is cancelled first, the others are answered', async () => {
    const held: { socket: net.Socket; id: number }[] = [];
    raw.onCall = (socket, id) => void held.push({ socket, id });
    const t = transport(port);
    try {
      // Far beyond the test's own timeout: the shorter deadline below must not wait for this one's.
      const long = t.send(Buffer.from('a'), 600_000);
      await waitFor(async () => (held.length === 1 ? true : undefined), { timeoutMs: 5000, intervalMs: 5, what: 'the first call' });
      const short = t.send(Buffer.from('b'), 200);
      const third = t.send(Buffer.from('c'), 600_000);
      expect(statusOf(await short)).to.match(/^retryable: gRPC DEADLINE_EXCEEDED: no answer within \d+ ms/);
      await waitFor(async () => (held.length === 3 ? true : undefined), { timeoutMs: 5000, intervalMs: 5, what: 'the third call' });
      for (const h of [held[0], held[2]]) h?.socket.write(okAnswer(h.id));
      expect([statusOf(await long), statusOf(await third)]).to.deep.equal(['success', 'success']);
      const resets = raw.frames.filter((f) => f.type === FrameType.RST_STREAM);
      expect(resets.map((f) => [f.id, f.payload.readUInt32BE(0)])).to.deep.equal([[3, ErrorCode.CANCEL]]);
      raw.onCall = (socket, id) => void socket.write(okAnswer(id));
      expect(statusOf(await t.send(Buffer.from('d'), 300))).to.equal('success');
      expect(raw.sockets).to.have.length(1);
    } finally {
      await t.close();
    }
  });

  it('after GOAWAY, a call above the last stream id is retryable, one below it completes, and the next call opens a new connection', async () => {
    const held: { socket: net.Socket; id: number }[] = [];
    raw.onCall = (socket, id, conn) => {
      if (conn > 0) return void socket.write(okAnswer(id));
      held.push({ socket, id });
      if (held.length < 2) return;
      const last = Buffer.alloc(8);
      last.writeUInt32BE(1, 0); // last stream id 1, NO_ERROR
      socket.write(Buffer.concat([frame(FrameType.GOAWAY, 0, 0, last), okAnswer(1)]));
    };
    const t = transport(port);
    try {
      const [a, b] = await Promise.all([t.send(Buffer.from('a'), 3000), t.send(Buffer.from('b'), 3000)]);
      expect(statusOf(a)).to.equal('success');
      expect(statusOf(b)).to.match(/^retryable: gRPC UNAVAILABLE: .* did not take the call/);
      expect(statusOf(await t.send(Buffer.from('c'), 3000))).to.equal('success');
      expect(raw.sockets).to.have.length(2);
      expect(raw.frames.filter((f) => f.conn === 1 && f.type === FrameType.HEADERS).map((f) => f.id)).to.deep.equal([1]);
    } finally {
      await t.close();
    }
  });

  it('a stream the server refuses or resets maps to the gRPC code grpc-js gives it', async () => {
    const codes = [ErrorCode.REFUSED_STREAM, ErrorCode.CANCEL, ErrorCode.ENHANCE_YOUR_CALM, ErrorCode.INTERNAL_ERROR];
    let n = 0;
    raw.onCall = (socket, id) => socket.write(rstStreamFrame(id, codes[n++] ?? 0));
    const t = transport(port);
    try {
      const got: string[] = [];
      for (let i = 0; i < codes.length; i++) got.push(/^\w+: gRPC \w+/.exec(statusOf(await t.send(Buffer.from('x'), 2000)))?.[0] ?? '');
      expect(got).to.deep.equal(['retryable: gRPC UNAVAILABLE', 'retryable: gRPC CANCELLED', 'failure: gRPC RESOURCE_EXHAUSTED', 'failure: gRPC INTERNAL']);
    } finally {
      await t.close();
    }
  });
});

describe('otlp exporter gRPC transport over TLS (ALPN h2)', () => {
  it('verifies the server with ca_file, refuses an unknown CA unless insecure_skip_verify, and needs ALPN h2', async () => {
    const certs = makeTestCerts();
    const h2 = http2.createSecureServer({ cert: certs.serverCert, key: certs.serverKey });
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.alloc(5));
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    // A TLS server without ALPN: the handshake succeeds, but no h2 is agreed.
    const h1 = tls.createServer({ cert: certs.serverCert, key: certs.serverKey }, (s) => s.on('error', () => undefined));
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    const tlsConfig = (o: Partial<GrpcTransportOptions['tls']>): GrpcTransportOptions['tls'] => ({
      insecure: false,
      insecure_skip_verify: false,
      ca_file: undefined,
      cert_file: undefined,
      key_file: undefined,
      server_name_override: undefined,
      ...o,
    });
    const secure = (p: number, o: Partial<GrpcTransportOptions['tls']>): GrpcTransport => transport(p, { tls: tlsConfig(o) });
    const h2Port = (h2.address() as net.AddressInfo).port;
    const ts = [
      secure(h2Port, { ca_file: certs.paths.caCert }),
      secure(h2Port, {}),
      secure(h2Port, { insecure_skip_verify: true }),
      secure((h1.address() as net.AddressInfo).port, { ca_file: certs.paths.caCert }),
    ];
    try {
      const [trusted, unknown, skip, noH2] = await Promise.all(ts.map((t) => t.send(Buffer.from('x'), 3000)));
      expect(statusOf(trusted as SendResult)).to.equal('success');
      expect(statusOf(unknown as SendResult)).to.match(/^retryable: gRPC UNAVAILABLE: cannot connect .*(certificate|self.signed)/i);
      expect(statusOf(skip as SendResult)).to.equal('success');
      expect(statusOf(noH2 as SendResult)).to.match(/^retryable: gRPC UNAVAILABLE: cannot connect .*did not negotiate HTTP\/2/);
    } finally {
      await Promise.all(ts.map((t) => t.close()));
      h2.close();
      h1.close();
    }
  });
});
