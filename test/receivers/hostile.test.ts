/**
 * Hostile input classes not covered by test/receivers/malformed.test.ts. Each one is answered with a clear
 * status and message, the process stays up, and a well-behaved client sending concurrently (known span ids)
 * loses nothing.
 */
import { expect } from 'chai';
import * as http from 'node:http';
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TYPES, protoType } from '../../src/pdata/proto';
import { decodeRpcStatus } from '../../src/pdata/rpc-status';
import { OtlpSink } from '../support/otlp-sink';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { RawGrpcClient, buildRequest, httpRequest, until, type HttpResult } from '../support/raw-clients';

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };
/** The default max_request_body_size (20 MiB): a million small attributes fit under it. */
const MAX_BODY = 20 * 1024 * 1024;

function config(sink: OtlpSink): string {
  return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size: ${MAX_BODY}
        read_header_timeout: 1s
connectors:
  routelatency: {}
exporters:
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    retry_on_failure: { initial_interval: 50ms, max_interval: 200ms }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp, routelatency]
`;
}

// ---- a minimal protobuf writer, so that strings can carry bytes that are not UTF-8 ----
function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const ld = (field: number, body: Buffer): Buffer => Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
const vi = (field: number, n: number): Buffer => Buffer.concat([varint(field << 3), varint(n)]);
function fixed64(field: number, n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return Buffer.concat([varint((field << 3) | 1), b]);
}
/** A span attribute (Span.attributes is field 9): KeyValue{key, value: AnyValue{string_value}}. */
const kv = (key: Buffer | string, value: Buffer | string, field = 9): Buffer =>
  ld(field, Buffer.concat([ld(1, Buffer.from(key)), ld(2, ld(1, Buffer.from(value)))]));

/** An ExportTraceServiceRequest with one server span; name and attributes given as raw bytes. */
function rawRequest(service: string, name: Buffer, attrs: Buffer[], spanId = randomBytes(8)): { bytes: Buffer; spanId: string } {
  const start = 1_700_000_000_000_000_000n;
  const span = Buffer.concat([ld(1, randomBytes(16)), ld(2, spanId), ld(5, name), vi(6, 2), fixed64(7, start), fixed64(8, start + 5_000_000n), ...attrs]);
  const resource = ld(1, kv('service.name', service, 1));
  const scopeSpans = ld(2, Buffer.concat([ld(1, ld(1, Buffer.from('hostile'))), ld(2, span)]));
  return { bytes: ld(1, Buffer.concat([resource, scopeSpans])), spanId: spanId.toString('hex') };
}

function statusOf(r: HttpResult): { code: number; message: string } {
  if (String(r.headers['content-type']).includes('protobuf')) {
    const s = decodeRpcStatus(r.body);
    if (s === undefined) throw new Error(`undecodable status body ${r.body.toString('hex')}`);
    return s;
  }
  return JSON.parse(r.body.toString('utf8')) as { code: number; message: string };
}

/** Span ids in the sink's requests, skipping huge bodies (decoded separately). */
function sinkSpanIds(sink: OtlpSink): Set<string> {
  const T = protoType(TYPES.exportTraceRequest);
  const ids = new Set<string>();
  for (const r of sink.requests) {
    if (r.path !== '/v1/traces' || r.body.length > 1 << 20) continue;
    const msg = T.toObject(T.decode(r.body), { bytes: String }) as { resourceSpans?: { scopeSpans?: { spans?: { spanId: string }[] }[] }[] };
    for (const rs of msg.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) ids.add(Buffer.from(s.spanId, 'base64').toString('hex'));
  }
  return ids;
}

/** GET on the query API, without fetch's URL normalisation. */
function rawGet(port: number, path: string, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostile inputs against a running routelens', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let grpcClient: RawGrpcClient;
  /** Span ids the good client sent and had acknowledged. */
  const goodIds: string[] = [];
  let good: { stop: boolean; done: Promise<void> } | undefined;

  /** A good client sending small batches alternately over gRPC and HTTP until stopped. */
  function startGoodClient(): { stop: boolean; done: Promise<void> } {
    const state = { stop: false, done: Promise.resolve() };
    state.done = (async () => {
      for (let i = 0; !state.stop; i++) {
        const req = buildRequest('good-client', 3);
        if (i % 2 === 0) {
          // A generous deadline: what is asserted is that every good request succeeds, not how fast on a busy machine.
          const r = await grpcClient.export(req.bytes, 45_000);
          expect(r.code, r.details).to.equal(0);
        } else {
          const r = await httpRequest(rl.httpPort(), '/v1/traces', req.bytes, PROTO);
          expect(r.status).to.equal(200);
        }
        goodIds.push(...req.spanIds);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    return state;
  }

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(config(sink));
    grpcClient = new RawGrpcClient(rl.grpcPort());
  });
  beforeEach(() => {
    good = startGoodClient();
  });
  afterEach(async function () {
    if (good === undefined) return;
    good.stop = true;
    await good.done;
    good = undefined;
    expect(goodIds.length, 'the good client sent something').to.be.greaterThan(0);
    await until(() => {
      const ids = sinkSpanIds(sink);
      return goodIds.every((id) => ids.has(id));
    }, `all ${goodIds.length} good spans at the sink`);
    // the query API and the receiver still answer
    const health = await fetch(`${rl.queryUrl()}/healthz`);
    expect(health.status).to.equal(200);
  });
  after(async () => {
    grpcClient?.close();
    await rl?.stop();
    await sink?.stop();
  });

  it('one span with a million attributes: under the body limit, so accepted and forwarded whole', async () => {
    const attrs: Buffer[] = [];
    for (let i = 0; i < 1_000_000; i++) attrs.push(kv(`a${i}`, 'v'));
    const { bytes, spanId } = rawRequest('million-attrs', Buffer.from('GET /big'), attrs);
    expect(bytes.length, 'fits the configured limit').to.be.lessThan(MAX_BODY);
    const r = await httpRequest(rl.httpPort(), '/v1/traces', bytes, PROTO);
    expect(r.status, r.body.toString()).to.equal(200);
    let big: Buffer | undefined;
    await until(() => (big = sink.requests.find((q) => q.body.length > 1 << 20)?.body) !== undefined, 'the big request at the sink');
    const T = protoType(TYPES.exportTraceRequest);
    const msg = T.decode(big as Buffer) as unknown as { resourceSpans: { scopeSpans: { spans: { spanId: Uint8Array; attributes: { key: string }[] }[] }[] }[] };
    const span = msg.resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect(Buffer.from(span?.spanId ?? []).toString('hex')).to.equal(spanId);
    expect(span?.attributes.length).to.equal(1_000_000);
    expect(span?.attributes[999_999]?.key).to.equal('a999999');
  });

  it('one byte over the body limit → 413 naming max_request_body_size', async () => {
    const r = await httpRequest(rl.httpPort(), '/v1/traces', Buffer.alloc(MAX_BODY + 1), PROTO);
    expect(r.status).to.equal(413);
    expect(statusOf(r).message).to.equal(`request body of ${MAX_BODY + 1} bytes exceeds max_request_body_size (${MAX_BODY})`);
  });

  it('invalid UTF-8 in span names and attribute strings is forwarded byte for byte; /api/v1/routes stays valid JSON', async () => {
    const badName = Buffer.concat([Buffer.from('GET /bad'), Buffer.from([0xff, 0xfe, 0xc3, 0x28])]);
    const badRoute = Buffer.concat([Buffer.from('/r'), Buffer.from([0xed, 0xa0, 0x80, 0xc0, 0xaf])]);
    const badVal = Buffer.from([0x80, 0x81, 0xf8, 0x88, 0x80, 0x80, 0x80]);
    const { bytes, spanId } = rawRequest('bad-utf8', badName, [
      kv('http.route', badRoute),
      kv('http.request.method', 'GET'),
      kv(Buffer.from([0xfe, 0x6b]), badVal),
    ]);
    const r = await httpRequest(rl.httpPort(), '/v1/traces', bytes, PROTO);
    expect(r.status, r.body.toString()).to.equal(200);
    const viaGrpc = rawRequest('bad-utf8', badName, [kv('x', badVal)]);
    const g = await grpcClient.export(viaGrpc.bytes);
    expect(g.code, g.details).to.equal(0);
    await until(() => sinkSpanIds(sink).has(spanId) && sinkSpanIds(sink).has(viaGrpc.spanId), 'both invalid-UTF-8 spans at the sink');
    // the exporter may batch both into one request: count occurrences of the name bytes
    let names = 0;
    for (const q of sink.requests) for (let at = q.body.indexOf(badName); at >= 0; at = q.body.indexOf(badName, at + 1)) names++;
    expect(names, 'both span names forwarded unchanged').to.equal(2);
    const one = sink.requests.find((q) => q.body.includes(Buffer.from(spanId, 'hex'))) as { body: Buffer };
    expect(one.body.includes(badRoute)).to.equal(true);
    expect(one.body.includes(badVal)).to.equal(true);
    expect(one.body.includes(Buffer.from([0xfe, 0x6b]))).to.equal(true);
    const res = await fetch(`${rl.queryUrl()}/api/v1/routes?window=5m`);
    expect(res.status).to.equal(200);
    const text = await res.text();
    const body = JSON.parse(text) as { routes?: { service: string }[] } | { service: string }[];
    expect(JSON.stringify(body)).to.contain('bad-utf8');
  });

  it('slowloris: sockets trickling or never finishing headers are closed after read_header_timeout', async () => {
    const sockets: { socket: net.Socket; closed: boolean; timer?: NodeJS.Timeout }[] = [];
    const header = Buffer.from('POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\nx-slow: ' + 'a'.repeat(500));
    for (let i = 0; i < 20; i++) {
      const socket = net.connect(rl.httpPort(), '127.0.0.1');
      const entry: (typeof sockets)[number] = { socket, closed: false };
      socket.on('error', () => undefined);
      socket.on('close', () => {
        entry.closed = true;
        clearInterval(entry.timer);
      });
      socket.on('data', () => undefined);
      await new Promise<void>((res) => socket.once('connect', () => res()));
      if (i % 2 === 0) {
        // one byte at a time, forever
        let pos = 0;
        entry.timer = setInterval(() => {
          if (!socket.destroyed) socket.write(header.subarray(pos % header.length, (pos % header.length) + 1));
          pos++;
        }, 50);
      } else {
        // half the headers, then nothing
        socket.write(header.subarray(0, 40));
      }
      sockets.push(entry);
    }
    try {
      await until(() => sockets.every((s) => s.closed), 'every slow socket closed by the server', 15_000);
    } finally {
      for (const s of sockets) {
        clearInterval(s.timer);
        s.socket.destroy();
      }
    }
  });

  it('hundreds of idle connections on the gRPC port (preface sent, or nothing sent) do not stop a good client', async () => {
    const preface = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 250; i++) {
        const s = net.connect(rl.grpcPort(), '127.0.0.1');
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        await new Promise<void>((res) => s.once('connect', () => res()));
        if (i < 200) s.write(preface);
        idle.push(s);
      }
      // a fresh client connection works while all of them are held open
      const fresh = new RawGrpcClient(rl.grpcPort());
      try {
        const req = buildRequest('fresh-client', 5);
        const r = await fresh.export(req.bytes);
        expect(r.code, r.details).to.equal(0);
        goodIds.push(...req.spanIds);
      } finally {
        fresh.close();
      }
      const before = goodIds.length;
      await until(() => goodIds.length >= before + 30, 'the good client keeps going');
      expect(idle.filter((s) => !s.destroyed).length, 'idle connections still open (not a precondition that was skipped)').to.be.greaterThan(100);
    } finally {
      for (const s of idle) s.destroy();
    }
  });

  describe('OTLP/JSON with wrong types → 400 with a message', () => {
    const span = (extra: Record<string, unknown>): Record<string, unknown> => ({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      name: 'x',
      ...extra,
    });
    const wrap = (spans: unknown): string => JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] });
    const cases: [string, string, RegExp][] = [
      ['string where an array is expected', JSON.stringify({ resourceSpans: 'nope' }), /resourceSpans.*array expected/],
      ['number where an object is expected', JSON.stringify({ resourceSpans: [{ resource: 5 }] }), /resource.*object expected/],
      ['object where a string is expected', wrap([span({ name: { a: 1 } })]), /name.*string expected/],
      ['array where a number is expected', wrap([span({ kind: [1] })]), /kind.*(enum|integer|number)/],
      ['1e400 as a time', wrap([span({ startTimeUnixNano: Infinity })]).replace('null', '1e400'), /startTimeUnixNano/],
      ['a 30-digit integer as a time', wrap([span({ endTimeUnixNano: '123456789012345678901234567890' })]), /endTimeUnixNano/],
      [
        'a 30-digit bare number as an int attribute',
        wrap([span({ attributes: [{ key: 'n', value: { intValue: 0 } }] })]).replace('"intValue":0', '"intValue":123456789012345678901234567890'),
        /intValue/,
      ],
      [
        '1e400 as a double attribute',
        wrap([span({ attributes: [{ key: 'd', value: { doubleValue: 0 } }] })]).replace('"doubleValue":0', '"doubleValue":1e400'),
        /doubleValue/,
      ],
    ];
    for (const [what, body, message] of cases) {
      it(what, async () => {
        const r = await httpRequest(rl.httpPort(), '/v1/traces', body, JSON_CT);
        expect(r.status, `${what}: ${r.body.toString()}`).to.equal(400);
        expect(r.headers['content-type']).to.equal('application/json');
        const s = statusOf(r);
        expect(s.code).to.equal(3);
        expect(s.message).to.match(message);
      });
    }
  });

  it('the query API: bad parameters, long URLs, unknown paths and POST get 4xx JSON errors, and it keeps serving', async () => {
    const port = Number(new URL(rl.queryUrl()).port);
    const json = async (path: string, method = 'GET'): Promise<{ status: number; error: string }> => {
      const r = await rawGet(port, path, method);
      expect(r.headers['content-type'], path.slice(0, 80)).to.equal('application/json');
      return { status: r.status, error: (JSON.parse(r.body.toString('utf8')) as { error: string }).error };
    };
    const cases: [string, string, number, RegExp][] = [
      ['GET', '/api/v1/routes?window=banana', 400, /invalid window "banana"/],
      ['GET', '/api/v1/routes?window=7m', 400, /unknown window "7m"/],
      ['GET', '/api/v1/routes?limit=-1', 400, /invalid limit/],
      ['GET', '/api/v1/routes?limit=1e999', 400, /invalid limit/],
      ['GET', '/api/v1/routes?sort=__proto__', 400, /unknown sort key/],
      ['GET', '/api/v1/routes?window=5m&window=5m', 400, /more than once/],
      ['GET', '/api/v1/routes?constructor=1', 400, /unknown parameter "constructor"/],
      ['GET', '/api/v1/routes/%E0%A4%A/GET/x', 400, /percent-encoding|route/],
      ['GET', `/api/v1/routes?${'x'.repeat(8000)}=1`, 400, /unknown parameter/],
      ['GET', `/api/v1/routes/svc/GET/${'a/'.repeat(3000)}`, 404, /route not found/],
      ['GET', '/api/v2/routes', 404, /no such path/],
      ['GET', '/../../etc/passwd', 404, /no such path/],
      ['GET', '/api/v1/nothing', 404, /not found/],
      ['POST', '/api/v1/routes', 405, /method POST not allowed/],
      ['DELETE', '/metrics', 405, /method DELETE not allowed/],
    ];
    for (const [method, path, status, error] of cases) {
      const r = await json(path, method);
      expect(r.status, `${method} ${path.slice(0, 80)}`).to.equal(status);
      expect(r.error).to.match(error);
    }
    // a URL longer than Node's header limit (16 KiB) is refused by the HTTP parser with 431
    const huge = await rawGet(port, `/api/v1/routes?window=${'5'.repeat(40_000)}`).catch((e: Error) => ({ status: -1, error: e.message }));
    expect(huge.status).to.equal(431);
    const ok = await fetch(`${rl.queryUrl()}/api/v1/routes?window=5m`);
    expect(ok.status).to.equal(200);
    expect(JSON.parse(await ok.text())).to.be.an('object');
  });
});
