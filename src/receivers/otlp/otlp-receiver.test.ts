/**
 * The otlp receiver through its public surface, in a running routelens exporting to a recording sink:
 * gRPC framing (the 5-byte prefix, the compressed flag, grpc-encoding gzip/deflate/identity, lengths that lie),
 * the status of each outcome as gRPC trailers and HTTP bodies, and the pooled request buffer, which must come
 * back exactly once on every path: success, decode error, pipeline refusal, client abort.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as net from 'node:net';
import * as zlib from 'node:zlib';
import { OtlpSink } from '../../../test/support/otlp-sink';
import { buildRequest, httpRequest, until, type HttpResult } from '../../../test/support/raw-clients';
import { grpcFrame, h2Call, type H2Answer } from '../../../test/support/raw-grpc';
import { metricValue, startRoutelens, type RunningRoutelens } from '../../../test/support/routelens';
import type { ExtensionFactory } from '../../consumer/factory';
import { GrpcStatus } from '../../core/errors';
import { obj } from '../../core/schema';
import { requestBuffers } from '../../pdata/buffer-pool';
import { decodeRetryInfo, decodeRpcStatus } from '../../pdata/rpc-status';
import { encodeGrpcMessage } from './grpc';

const MAX_GRPC = 256 * 1024; // max_recv_msg_size_mib: 0.25
const MAX_HTTP = 64 * 1024;
const TOKEN = 'receiver-test-token';

function config(sink: OtlpSink): string {
  const both = '{ grpc: { endpoint: 127.0.0.1:0 }, http: { endpoint: 127.0.0.1:0 } }';
  const auth = '{ authenticator: bearertokenauth }';
  return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, max_recv_msg_size_mib: 0.25 }
      http: { endpoint: 127.0.0.1:0, max_request_body_size: ${MAX_HTTP} }
  otlp/full: { protocols: ${both} }
  otlp/sync: { protocols: ${both} }
  otlp/auth: { protocols: { grpc: { endpoint: 127.0.0.1:0, auth: ${auth} }, http: { endpoint: 127.0.0.1:0, auth: ${auth} } } }
exporters:
  otlp: { endpoint: ${sink.grpcEndpoint}, tls: { insecure: true } }
  # One request in flight and one queued, then full.
  otlp/full: { endpoint: ${sink.grpcEndpoint}, tls: { insecure: true }, sending_queue: { queue_size: 1, num_consumers: 1 } }
  # Sends in the receiver's time: the request is held while the destination holds it.
  otlp/sync: { endpoint: ${sink.grpcEndpoint}, tls: { insecure: true }, timeout: 30s, sending_queue: { enabled: false }, retry_on_failure: { enabled: false } }
extensions:
  bearertokenauth: { token: ${TOKEN} }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces: { receivers: [otlp, otlp/auth], exporters: [otlp] }
    traces/full: { receivers: [otlp/full], exporters: [otlp/full] }
    traces/sync: { receivers: [otlp/sync], exporters: [otlp/sync] }
`;
}

interface PoolMark {
  outstanding: number;
  leases: number;
}

/** Every buffer leased since `mark` is back in the pool. */
async function expectAllReturned(mark: PoolMark, leases: number): Promise<void> {
  await until(() => requestBuffers.outstanding === mark.outstanding, 'every pooled request buffer back in the pool');
  expect(requestBuffers.hits + requestBuffers.misses - mark.leases, 'buffers leased').to.equal(leases);
}

/** The trailers of a gRPC error: status, percent-decoded message, and the same in grpc-status-details-bin. */
function grpcError(a: H2Answer | undefined): { code: number | undefined; message: string | undefined; details: unknown; retryInfoMs: number | undefined } {
  const bin = (name: string): Buffer | undefined => {
    const v = a?.status(name);
    return v === undefined ? undefined : Buffer.from(v, 'base64');
  };
  const details = bin('grpc-status-details-bin');
  const retry = bin('google.rpc.retryinfo-bin');
  return {
    code: a?.grpcStatus,
    message: a?.grpcMessage,
    details: details === undefined ? undefined : decodeRpcStatus(details),
    retryInfoMs: retry === undefined ? undefined : decodeRetryInfo(retry),
  };
}

/** A google.rpc.Status body, in the encoding of the request (protobuf or JSON). */
function statusBody(r: HttpResult): { code: number; message: string } | undefined {
  if (String(r.headers['content-type']).startsWith('application/json')) return JSON.parse(r.body.toString()) as { code: number; message: string };
  const s = decodeRpcStatus(r.body);
  return s === undefined ? undefined : { code: s.code, message: s.message };
}

describe('otlp receiver', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let port: { grpc: (id?: string) => number; http: (id?: string) => number };

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(config(sink));
    port = { grpc: (id) => rl.grpcPort(id), http: (id) => rl.httpPort(id) };
  });
  after(async () => {
    await rl.stop();
    await sink.stop();
  });
  afterEach(() => {
    sink.resume();
  });

  const request = (spans: number) => buildRequest('receiver-test', spans);
  const post = (id: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<HttpResult> =>
    httpRequest(port.http(id), '/v1/traces', body, { 'content-type': 'application/x-protobuf', ...headers });
  /** Every exporter has sent what it took (and so handed back the request buffers it held). */
  const exportersIdle = (): Promise<void> =>
    until(async () => {
      const text = await rl.metricsText();
      return metricValue(text, 'otelcol_exporter_queue_size') + metricValue(text, 'otelcol_exporter_in_flight_requests') === 0;
    }, 'the exporters idle');
  /** Pause the sink once the exporters are idle, so that what the sink then holds is the test's. */
  const pauseSinkWhenIdle = async (): Promise<void> => {
    await exportersIdle();
    sink.pause();
  };
  /** Where the receivers' pooled request buffers stand, once nothing from earlier is still held. */
  const poolMark = async (): Promise<PoolMark> => {
    await exportersIdle();
    return { outstanding: requestBuffers.outstanding, leases: requestBuffers.hits + requestBuffers.misses };
  };
  /** Wait until the sink has every span id of `ids`. */
  const delivered = (ids: readonly string[]): Promise<void> =>
    until(() => {
      const got = new Set(sink.spans().map((s) => s.spanId));
      return ids.every((id) => got.has(id));
    }, `${ids.length} spans at the sink`);

  describe('gRPC framing', () => {
    it('takes one uncompressed message and answers an empty framed response with grpc-status 0 in the trailers', async () => {
      const r = request(3);
      const a = await h2Call(port.grpc(), grpcFrame(r.bytes));
      expect([a?.httpStatus, a?.headers['content-type'], a?.data.toString('hex'), a?.trailers['grpc-status']]).to.deep.equal([
        200,
        'application/grpc',
        '0000000000',
        '0',
      ]);
      // Exactly what a gRPC client reads: no date, no grpc-encoding (identity), no empty grpc-message.
      expect(Object.fromEntries(Object.entries(a?.headers ?? {}))).to.deep.equal({
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-accept-encoding': 'identity,gzip,deflate',
      });
      expect(Object.fromEntries(Object.entries(a?.trailers ?? {}))).to.deep.equal({ 'grpc-status': '0' });
      await delivered(r.spanIds);
    });

    it('inflates a message flagged compressed per grpc-encoding gzip or deflate; identity needs the flag clear', async () => {
      for (const [encoding, compress] of [
        ['gzip', zlib.gzipSync],
        ['deflate', zlib.deflateSync],
      ] as const) {
        const r = request(2);
        const a = await h2Call(port.grpc(), grpcFrame(compress(r.bytes), { compressed: 1 }), { headers: { 'grpc-encoding': encoding } });
        expect([encoding, a?.grpcStatus]).to.deep.equal([encoding, GrpcStatus.OK]);
        await delivered(r.spanIds);
      }
      const plain = request(1);
      expect((await h2Call(port.grpc(), grpcFrame(plain.bytes), { headers: { 'grpc-encoding': 'gzip' } }))?.grpcStatus).to.equal(GrpcStatus.OK);
      const flagged = await h2Call(port.grpc(), grpcFrame(plain.bytes, { compressed: 1 }), { headers: { 'grpc-encoding': 'identity' } });
      expect(grpcError(flagged).code).to.equal(GrpcStatus.INVALID_ARGUMENT);
    });

    const framingCases: [string, () => { body: Buffer; headers?: Record<string, string> }, GrpcStatus, RegExp][] = [
      ['a frame shorter than its 5-byte prefix', () => ({ body: Buffer.from([0, 0, 0]) }), GrpcStatus.INVALID_ARGUMENT, /^truncated gRPC message frame$/],
      [
        'a length prefix larger than the bytes sent',
        () => ({ body: grpcFrame(request(1).bytes, { declaredLength: request(1).bytes.length + 10 }) }),
        GrpcStatus.INVALID_ARGUMENT,
        /^gRPC frame length \d+ does not match the \d+ bytes received \(one message expected\)$/,
      ],
      [
        'two messages in one unary call',
        () => ({ body: Buffer.concat([grpcFrame(request(1).bytes), grpcFrame(request(1).bytes)]) }),
        GrpcStatus.INVALID_ARGUMENT,
        /does not match/,
      ],
      [
        'a compressed flag other than 0 or 1',
        () => ({ body: grpcFrame(request(1).bytes, { compressed: 2 }) }),
        GrpcStatus.INVALID_ARGUMENT,
        /^invalid gRPC compressed flag 2$/,
      ],
      [
        'a gzip message that is not gzip',
        () => ({ body: grpcFrame(Buffer.from('not gzip at all'), { compressed: 1 }), headers: { 'grpc-encoding': 'gzip' } }),
        GrpcStatus.INVALID_ARGUMENT,
        /^invalid gzip message: /,
      ],
      [
        'a declared length over max_recv_msg_size_mib (refused before the rest is read)',
        () => ({ body: grpcFrame(Buffer.alloc(100), { declaredLength: MAX_GRPC + 1 }) }),
        GrpcStatus.RESOURCE_EXHAUSTED,
        /^received message larger than max \(262145 vs\. 262144\)$/,
      ],
      [
        'a gzip message that inflates past max_recv_msg_size_mib',
        () => ({ body: grpcFrame(zlib.gzipSync(Buffer.alloc(MAX_GRPC + 1)), { compressed: 1 }), headers: { 'grpc-encoding': 'gzip' } }),
        GrpcStatus.RESOURCE_EXHAUSTED,
        /^decompressed message larger than max \(262144 bytes\)$/,
      ],
      ['protobuf that does not decode', () => ({ body: grpcFrame(Buffer.from([0x0a, 0xff, 0xff])) }), GrpcStatus.INVALID_ARGUMENT, /./],
    ];
    for (const [what, make, code, message] of framingCases) {
      it(`${what} → ${GrpcStatus[code]}, trailers-only, the reason in grpc-message and grpc-status-details-bin, counted`, async () => {
        const before = await rl.metricsText();
        const { body, headers } = make();
        const mark = await poolMark();
        const e = grpcError(await h2Call(port.grpc(), body, { headers: headers ?? {} }));
        expect(e.code).to.equal(code);
        expect(e.message).to.match(message);
        expect(e.details).to.deep.equal({ code, message: e.message, retryAfterMs: undefined });
        expect(e.retryInfoMs).to.equal(undefined);
        const counted = (text: string): number =>
          Number(/routelens_receiver_malformed_requests_total\{receiver="otlp",transport="grpc"\} (\d+)/.exec(text)?.[1]);
        expect(counted(await rl.metricsText())).to.equal(counted(before) + 1);
        // Refused before the body was assembled, or assembled and given back.
        await expectAllReturned(mark, code === GrpcStatus.RESOURCE_EXHAUSTED && /declared/.test(what) ? 0 : 1);
      });
    }

    it('a grpc-encoding it does not know → UNIMPLEMENTED whatever the flag, grpc-accept-encoding naming what it takes, counted, nothing read', async () => {
      const before = await rl.metricsText();
      const mark = await poolMark();
      for (const compressed of [1, 0]) {
        const a = await h2Call(port.grpc(), grpcFrame(request(1).bytes, { compressed }), { headers: { 'grpc-encoding': 'snappy' } });
        const e = grpcError(a);
        const message = 'unsupported grpc-encoding "snappy"; supported: identity, gzip, deflate';
        expect([e.code, e.message, e.details, a?.headers['grpc-accept-encoding']]).to.deep.equal([
          GrpcStatus.UNIMPLEMENTED,
          message,
          { code: GrpcStatus.UNIMPLEMENTED, message, retryAfterMs: undefined },
          'identity,gzip,deflate',
        ]);
      }
      const counted = (text: string): number => metricValue(text, 'routelens_receiver_malformed_requests_total', { receiver: 'otlp', transport: 'grpc' });
      expect(counted(await rl.metricsText())).to.equal(counted(before) + 2);
      await expectAllReturned(mark, 0);
    });

    it('follows the framing rules for any frame: flag, declared length, encoding and payload (property)', async () => {
      const valid = request(1).bytes;
      const frame = fc.record({
        flag: fc.constantFrom(0, 1, 2, 255),
        encoding: fc.constantFrom('identity', 'gzip', 'deflate', 'br'),
        payload: fc.constantFrom('valid', 'gzip', 'deflate', 'garbage'),
        lengthDelta: fc.constantFrom(0, 0, 0, -1, 1, 1000),
      });
      await fc.assert(
        fc.asyncProperty(frame, async (f) => {
          const payload =
            f.payload === 'valid'
              ? valid
              : f.payload === 'gzip'
                ? zlib.gzipSync(valid)
                : f.payload === 'deflate'
                  ? zlib.deflateSync(valid)
                  : Buffer.from('\u00ff\u00fegarbage');
          const body = grpcFrame(payload, { compressed: f.flag, declaredLength: Math.max(0, payload.length + f.lengthDelta) });
          const a = await h2Call(port.grpc(), body, { headers: { 'grpc-encoding': f.encoding } });
          // The rules, in the order the receiver applies them.
          let expected: GrpcStatus;
          if (f.encoding === 'br') expected = GrpcStatus.UNIMPLEMENTED;
          else if (f.lengthDelta !== 0) expected = GrpcStatus.INVALID_ARGUMENT;
          else if (f.flag === 0) expected = f.payload === 'valid' ? GrpcStatus.OK : GrpcStatus.INVALID_ARGUMENT;
          else if (f.flag !== 1) expected = GrpcStatus.INVALID_ARGUMENT;
          else if (f.encoding === f.payload) expected = GrpcStatus.OK;
          else expected = GrpcStatus.INVALID_ARGUMENT;
          expect(a?.grpcStatus, JSON.stringify(f)).to.equal(expected);
        }),
        { numRuns: 60 },
      );
    });

    it('answers 415 to a content-type other than application/grpc, and UNIMPLEMENTED to another method', async () => {
      const wrongType = await h2Call(port.grpc(), grpcFrame(request(1).bytes), { headers: { 'content-type': 'application/json' } });
      expect([wrongType?.httpStatus, wrongType?.data.toString()]).to.deep.equal([415, 'expected content-type application/grpc\n']);
      const other = grpcError(await h2Call(port.grpc(), grpcFrame(request(1).bytes), { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Nope' }));
      expect(other.code).to.equal(GrpcStatus.UNIMPLEMENTED);
      expect(other.message).to.match(/^unknown method \/opentelemetry\.proto\.collector\.trace\.v1\.TraceService\/Nope; /);
    });
  });

  describe('status of each outcome', () => {
    it('a full exporter queue: UNAVAILABLE with RetryInfo over gRPC, 503 with Retry-After and a Status body over HTTP; nothing is kept', async () => {
      await pauseSinkWhenIdle();
      const inFlight = request(1);
      const queued = request(1);
      const mark = await poolMark();
      expect((await h2Call(port.grpc('otlp/full'), grpcFrame(inFlight.bytes)))?.grpcStatus).to.equal(GrpcStatus.OK);
      await until(() => sink.heldCount === 1, 'the first request held at the sink');
      expect((await h2Call(port.grpc('otlp/full'), grpcFrame(queued.bytes)))?.grpcStatus).to.equal(GrpcStatus.OK);

      const refused = grpcError(await h2Call(port.grpc('otlp/full'), grpcFrame(request(2).bytes)));
      expect(refused).to.deep.equal({
        code: GrpcStatus.UNAVAILABLE,
        message: 'sending queue of exporter otlp/full is full (1 requests)',
        details: { code: GrpcStatus.UNAVAILABLE, message: 'sending queue of exporter otlp/full is full (1 requests)', retryAfterMs: 1000 },
        retryInfoMs: 1000,
      });
      for (const [encoding, body] of [
        ['application/x-protobuf', request(2).bytes],
        ['application/json', Buffer.from(request(2).json)],
      ] as const) {
        const r = await post('otlp/full', body, { 'content-type': encoding });
        expect([r.status, r.headers['retry-after'], String(r.headers['content-type'])]).to.deep.equal([503, '1', encoding]);
        expect(statusBody(r)).to.deep.equal({ code: GrpcStatus.UNAVAILABLE, message: 'sending queue of exporter otlp/full is full (1 requests)' });
      }
      const text = await rl.metricsText();
      expect(text).to.include('otelcol_receiver_refused_spans_total{receiver="otlp/full",transport="grpc"} 2\n');
      expect(text).to.include('otelcol_receiver_refused_spans_total{receiver="otlp/full",transport="http"} 4\n');
      sink.resume();
      await delivered([...inFlight.spanIds, ...queued.spanIds]);
      // Two held by the queue until sent, three refused and handed back at once.
      await expectAllReturned(mark, 5);
    });

    it('bad credentials: UNAUTHENTICATED over gRPC and 401 with a Bearer challenge over HTTP, before the body is read', async () => {
      const mark = await poolMark();
      const g = grpcError(await h2Call(port.grpc('otlp/auth'), grpcFrame(request(1).bytes), { headers: { authorization: 'Bearer wrong' } }));
      expect([g.code, (g.details as { code: number } | undefined)?.code]).to.deep.equal([GrpcStatus.UNAUTHENTICATED, GrpcStatus.UNAUTHENTICATED]);
      const h = await post('otlp/auth', request(1).bytes);
      expect([h.status, h.headers['www-authenticate'], statusBody(h)?.code]).to.deep.equal([401, 'Bearer', GrpcStatus.UNAUTHENTICATED]);
      await expectAllReturned(mark, 0);
      const ok = request(1);
      expect((await h2Call(port.grpc('otlp/auth'), grpcFrame(ok.bytes), { headers: { authorization: `Bearer ${TOKEN}` } }))?.grpcStatus).to.equal(
        GrpcStatus.OK,
      );
      expect((await post('otlp/auth', request(1).bytes, { authorization: `Bearer ${TOKEN}` })).status).to.equal(200);
    });

    it('percent-encodes grpc-message as the gRPC spec asks: printable ASCII but %, the rest as %XX of its UTF-8 bytes', () => {
      fc.assert(
        fc.property(
          fc.string({
            unit: fc.oneof(fc.constantFrom('%', '4', '1', ' ', '~', '\n', '\u007f', 'é', '😀'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
          }),
          (message) => {
            const encoded = encodeGrpcMessage(message);
            expect(encoded).to.match(/^(?:[\x20-\x24\x26-\x7e]|%[0-9A-F]{2})*$/);
            const bytes = Buffer.from(
              encoded.replace(/%([0-9A-F]{2})|[^%]/g, (m, hex: string | undefined) =>
                String.fromCharCode(hex === undefined ? m.charCodeAt(0) : parseInt(hex, 16)),
              ),
              'latin1',
            );
            expect(bytes.equals(Buffer.from(message, 'utf8'))).to.equal(true);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('the pooled request buffer comes back exactly once', () => {
    it('after a success, once the exporter sent the spans (intact) — over gRPC, gzip, HTTP protobuf and HTTP JSON', async () => {
      const mark = await poolMark();
      const rs = [request(4), request(4), request(4), request(4)];
      expect((await h2Call(port.grpc(), grpcFrame(rs[0]!.bytes)))?.grpcStatus).to.equal(GrpcStatus.OK);
      expect(
        (await h2Call(port.grpc(), grpcFrame(zlib.gzipSync(rs[1]!.bytes), { compressed: 1 }), { headers: { 'grpc-encoding': 'gzip' } }))?.grpcStatus,
      ).to.equal(GrpcStatus.OK);
      expect((await post('otlp', rs[2]!.bytes)).status).to.equal(200);
      expect((await post('otlp', Buffer.from(rs[3]!.json), { 'content-type': 'application/json' })).status).to.equal(200);
      await delivered(rs.flatMap((r) => r.spanIds));
      // Released too early, a buffer is overwritten (ROUTELENS_POOL_POISON=1): the spans arrived with their names.
      const names = new Map(sink.spans().map((s) => [s.spanId, s.name]));
      for (const id of rs.flatMap((r) => r.spanIds)) expect(names.get(id)).to.match(/^GET \//);
      await expectAllReturned(mark, 4);
    });

    it('after a decode error, over both transports', async () => {
      const mark = await poolMark();
      expect((await h2Call(port.grpc(), grpcFrame(Buffer.from([0x0a, 0x05, 1]))))?.grpcStatus).to.equal(GrpcStatus.INVALID_ARGUMENT);
      expect((await post('otlp', Buffer.from([0x0a, 0x05, 1]))).status).to.equal(400);
      expect((await post('otlp', Buffer.from('{"resourceSpans": 7}'), { 'content-type': 'application/json' })).status).to.equal(400);
      await expectAllReturned(mark, 3);
    });

    it('when the client goes away while the pipeline still holds its request (gRPC cancel, HTTP socket closed)', async () => {
      await pauseSinkWhenIdle();
      const mark = await poolMark();
      const viaGrpc = request(2);
      const held = until(() => sink.heldCount === 1, 'the gRPC request held at the sink');
      expect(await h2Call(port.grpc('otlp/sync'), grpcFrame(viaGrpc.bytes), { cancelWhen: held })).to.equal(undefined);

      const viaHttp = request(2);
      const socket = net.connect(port.http('otlp/sync'), '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.write(`POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: ${viaHttp.bytes.length}\r\n\r\n`);
      socket.write(viaHttp.bytes);
      await until(() => sink.heldCount === 2, 'the HTTP request held at the sink');
      socket.destroy();

      sink.resume();
      await delivered([...viaGrpc.spanIds, ...viaHttp.spanIds]);
      await expectAllReturned(mark, 2);
    });

    it('is never leased when the client goes away in the middle of the body', async () => {
      const mark = await poolMark();
      const r = request(50);
      expect(await h2Call(port.grpc(), grpcFrame(r.bytes), { cancelAfterBytes: 100 })).to.equal(undefined);
      const socket = net.connect(port.http('otlp'), '127.0.0.1');
      await new Promise((ok) => socket.once('connect', ok));
      socket.write(`POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: ${r.bytes.length}\r\n\r\n`);
      socket.write(r.bytes.subarray(0, 100));
      await new Promise((ok) => setTimeout(ok, 50));
      socket.destroy();
      // The receiver still answers, and took nothing from the pool for the calls that never ended.
      expect((await h2Call(port.grpc(), grpcFrame(request(1).bytes)))?.grpcStatus).to.equal(GrpcStatus.OK);
      await expectAllReturned(mark, 1);
    });
  });
});

/**
 * An authenticator that throws when a request carries `x-break`: a fault where the receiver calls code it does not
 * expect to fail, as a bug would (the receiver's own checks leave nothing else that throws on purpose).
 */
const breakingAuthFactory: ExtensionFactory<Record<string, never>> = {
  kind: 'extension',
  type: 'breakingauth',
  configSchema: obj({}),
  create: () => ({
    start: async () => undefined,
    shutdown: async () => undefined,
    authenticateHttp: (headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined => {
      if (headers['x-break'] !== undefined) throw new TypeError('the authenticator broke');
      return undefined;
    },
  }),
};

describe('otlp receiver: a failure of its own', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(
      `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: breakingauth } }
      http: { endpoint: 127.0.0.1:0, auth: { authenticator: breakingauth } }
exporters:
  otlp: { endpoint: ${sink.grpcEndpoint}, tls: { insecure: true } }
extensions:
  breakingauth: {}
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [breakingauth, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`,
      { extraFactories: [breakingAuthFactory as ExtensionFactory<unknown>] },
    );
  });
  after(async () => {
    await rl.stop();
    await sink.stop();
  });

  const internalErrors = async (transport: string): Promise<number> =>
    metricValue(await rl.metricsText(), 'routelens_receiver_internal_errors_total', { receiver: 'otlp', transport });
  const failures = async (transport: string): Promise<number> =>
    metricValue(await rl.metricsText(), 'otelcol_receiver_requests_total', { receiver: 'otlp', transport, outcome: 'failure' });
  const message = 'internal error: the authenticator broke';

  it('HTTP: 500 with a google.rpc.Status INTERNAL in the request’s encoding, counted and logged with its stack; the next request is served', async () => {
    const r = buildRequest('internal-error-test', 1);
    const json = JSON.stringify({ resourceSpans: [] });
    const answers: [number, string, { code: number; message: string } | undefined][] = [];
    for (const [body, type] of [
      [r.bytes, 'application/x-protobuf'],
      [json, 'application/json'],
    ] as const) {
      const a = await httpRequest(rl.httpPort(), '/v1/traces', body, { 'content-type': type, 'x-break': '1' });
      answers.push([a.status, String(a.headers['content-type']), statusBody(a)]);
    }
    expect(answers).to.deep.equal([
      [500, 'application/x-protobuf', { code: GrpcStatus.INTERNAL, message }],
      [500, 'application/json', { code: GrpcStatus.INTERNAL, message }],
    ]);
    expect([await internalErrors('http'), await failures('http')]).to.deep.equal([2, 2]);
    const logged = rl.logs.filter((l) => l.msg === 'Failed to handle an export request (an internal error): answered it with an internal error');
    expect(logged.length).to.be.at.least(1);
    expect(String((logged[0]?.err as { stack?: string } | undefined)?.stack)).to.match(/^TypeError: the authenticator broke\n\s+at /);
    const ok = await httpRequest(rl.httpPort(), '/v1/traces', r.bytes, { 'content-type': 'application/x-protobuf' });
    expect(ok.status).to.equal(200);
    await until(() => sink.spans().some((s) => s.spanId === r.spanIds[0]), 'the span at the sink');
  });

  it('gRPC: INTERNAL, trailers-only, counted; the process keeps serving', async () => {
    const r = buildRequest('internal-error-test', 1);
    const e = grpcError(await h2Call(rl.grpcPort(), grpcFrame(r.bytes), { headers: { 'x-break': '1' } }));
    expect([e.code, e.message, e.details]).to.deep.equal([GrpcStatus.INTERNAL, message, { code: GrpcStatus.INTERNAL, message, retryAfterMs: undefined }]);
    expect([await internalErrors('grpc'), await failures('grpc')]).to.deep.equal([1, 1]);
    expect((await h2Call(rl.grpcPort(), grpcFrame(r.bytes)))?.grpcStatus).to.equal(GrpcStatus.OK);
  });
});
