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
import * as zlib from 'node:zlib';
import { encodeRpcStatus } from '../../pdata/rpc-status';
import { TYPES, protoType } from '../../pdata/proto';
import { freePort } from '../../../test/support/free-port';
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

describe('otlp exporter gRPC transport (node:http2) against grpc-js', () => {
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

  it('writes a request of several parts as one run of DATA frames, the last carrying END_STREAM (no empty frame after)', async () => {
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
      expect(data.length).to.be.greaterThan(1);
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
