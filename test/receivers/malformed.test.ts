/**
 * Malformed and hostile requests against a running routelens (otlp receiver over gRPC and HTTP, exporting
 * to a recording sink): every one gets the documented status and message, the process stays up, a
 * well-behaved client sending at the same time loses nothing, and the rejections are counted.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import * as zlib from 'node:zlib';
import { TYPES, protoType } from '../../src/pdata/proto';
import { CONNECTION_WINDOW, STREAM_WINDOW } from '../../src/receivers/otlp/grpc';
import { decodeRpcStatus } from '../../src/pdata/rpc-status';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { metricValue, startRoutelens, type RunningRoutelens } from '../support/routelens';
import { RawGrpcClient, buildRequest, httpRequest, until, type HttpResult } from '../support/raw-clients';

const MAX_BODY = 64 * 1024;
const MAX_GRPC_MIB = 0.25; // 256 KiB

function config(sink: OtlpSink): string {
  return `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        max_recv_msg_size_mib: ${MAX_GRPC_MIB}
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size: ${MAX_BODY}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 50ms, max_interval: 200ms }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
`;
}

function protobufVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };

/** The google.rpc.Status of an error response, from a protobuf or JSON body. */
function statusOf(r: HttpResult): { code: number; message: string } {
  if (String(r.headers['content-type']).includes('protobuf')) {
    const s = decodeRpcStatus(r.body);
    if (s === undefined) throw new Error(`undecodable protobuf status body ${r.body.toString('hex')}`);
    return s;
  }
  return JSON.parse(r.body.toString('utf8')) as { code: number; message: string };
}

describe('malformed requests against a running routelens', function () {
  this.timeout(120_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let grpcClient: RawGrpcClient;
  /** Requests this test expects the receiver to count as malformed (or oversized), per transport. */
  const expectedMalformed = { http: 0, grpc: 0 };

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(config(sink));
    grpcClient = new RawGrpcClient(rl.grpcPort());
  });
  after(async () => {
    grpcClient?.close();
    await rl?.stop();
    await sink?.stop();
  });

  async function post(body: Uint8Array | string, headers: Record<string, string>, opts: { chunked?: boolean } = {}): Promise<HttpResult> {
    const r = await httpRequest(rl.httpPort(), '/v1/traces', body, headers, opts);
    if ([400, 413, 415].includes(r.status)) expectedMalformed.http++;
    return r;
  }

  describe('OTLP/HTTP', () => {
    it('random bytes as protobuf → 400 with a google.rpc.Status body', async () => {
      const r = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]), PROTO);
      expect(r.status).to.equal(400);
      expect(r.headers['content-type']).to.equal('application/x-protobuf');
      expect(statusOf(r)).to.deep.equal({
        code: grpc.status.INVALID_ARGUMENT,
        message: 'length prefix points past the end of the message',
        retryAfterMs: undefined,
      });
    });

    it('truncated protobuf → 400 naming the problem', async () => {
      const { bytes } = buildRequest('truncated', 3);
      const r = await post(bytes.subarray(0, bytes.length - 7), PROTO);
      expect(r.status).to.equal(400);
      expect(statusOf(r).message).to.match(/past the end|truncated/);
    });

    it('a wrong Content-Type → 415 listing the accepted types', async () => {
      const r = await post(buildRequest('ct', 1).bytes, { 'content-type': 'text/plain' });
      expect(r.status).to.equal(415);
      expect(statusOf(r).message).to.equal('unsupported Content-Type "text/plain"; expected application/x-protobuf or application/json');
      const none = await post(buildRequest('ct', 1).bytes, {});
      expect(none.status).to.equal(415);
      expect(statusOf(none).message).to.contain('unsupported Content-Type ""');
    });

    it('bad JSON → 400 with a JSON status body', async () => {
      const r = await post('{"resourceSpans": [', JSON_CT);
      expect(r.status).to.equal(400);
      expect(r.headers['content-type']).to.equal('application/json');
      const s = statusOf(r);
      expect(s.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(s.message).to.match(/^invalid JSON: /);
      const notObject = await post('[1,2]', JSON_CT);
      expect(notObject.status).to.equal(400);
      expect(statusOf(notObject).message).to.equal('invalid OTLP/JSON: the body must be a JSON object');
      const badId = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'xyz', spanId: '0102030405060708' }] }] }] }), JSON_CT);
      expect(badId.status).to.equal(400);
      expect(statusOf(badId).message).to.match(/traceId must be a hex string/);
      const shortId = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'abcd', spanId: '0102030405060708' }] }] }] }), JSON_CT);
      expect(shortId.status).to.equal(400);
      expect(statusOf(shortId).message).to.equal('Span trace_id is 2 bytes, expected 16');
      const deep = await post(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, JSON_CT);
      expect(deep.status).to.equal(400);
      expect(statusOf(deep).message).to.equal('JSON nested deeper than 256 levels');
      // A message quoting the client's data is counted once, whatever that data says.
      const quoting = await post(
        JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'invalid gzip', spanId: '0102030405060708' }] }] }] }),
        JSON_CT,
      );
      expect(quoting.status).to.equal(400);
      expect(statusOf(quoting).message).to.equal('traceId must be a hex string, got "invalid gzip"');
    });

    it('invalid gzip → 400; an unknown Content-Encoding → 400', async () => {
      const r = await post(Buffer.from('definitely not gzip'), { ...PROTO, 'content-encoding': 'gzip' });
      expect(r.status).to.equal(400);
      expect(statusOf(r).message).to.match(/^invalid gzip body: /);
      const br = await post(zlib.brotliCompressSync(buildRequest('br', 1).bytes), { ...PROTO, 'content-encoding': 'br' });
      expect(br.status).to.equal(400);
      expect(statusOf(br).message).to.equal('unsupported Content-Encoding "br"; expected gzip, deflate or none');
    });

    it('a valid gzip and deflate body → 200', async () => {
      const g = buildRequest('gzip-ok', 2);
      expect((await post(zlib.gzipSync(g.bytes), { ...PROTO, 'content-encoding': 'gzip' })).status).to.equal(200);
      const d = buildRequest('deflate-ok', 2);
      expect((await post(zlib.deflateRawSync(Buffer.from(d.json)), { ...JSON_CT, 'content-encoding': 'deflate' })).status).to.equal(200);
      await until(
        () =>
          sink
            .spans()
            .filter((s) => ['gzip-ok', 'deflate-ok'].includes(String(attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue)))
            .length === 4,
        'gzip/deflate spans at the sink',
      );
    });

    it('a gzip bomb → 413 (decompressed size capped)', async () => {
      const bomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024)); // 50 MiB of zeros, ~50 KiB compressed
      expect(bomb.length).to.be.lessThan(MAX_BODY);
      const r = await post(bomb, { ...PROTO, 'content-encoding': 'gzip' });
      expect(r.status).to.equal(413);
      expect(statusOf(r)).to.include({ code: grpc.status.RESOURCE_EXHAUSTED, message: `decompressed body exceeds max_request_body_size (${MAX_BODY} bytes)` });
      const deflateBomb = zlib.deflateSync(Buffer.alloc(10 * 1024 * 1024));
      const d = await post(deflateBomb, { ...JSON_CT, 'content-encoding': 'deflate' });
      expect(d.status).to.equal(413);
    });

    it('a body over max_request_body_size → 413, with or without Content-Length', async () => {
      const big = randomBytes(MAX_BODY + 1);
      const declared = await post(big, PROTO);
      expect(declared.status).to.equal(413);
      expect(statusOf(declared).message).to.equal(`request body of ${MAX_BODY + 1} bytes exceeds max_request_body_size (${MAX_BODY})`);
      const chunked = await post(randomBytes(4 * MAX_BODY), PROTO, { chunked: true });
      expect(chunked.status).to.equal(413);
      expect(statusOf(chunked).message).to.equal(`request body exceeds max_request_body_size (${MAX_BODY} bytes)`);
      // A body of exactly the limit is accepted: a valid request padded with an unknown top-level field.
      const atLimit = buildRequest('at-limit', 1).bytes;
      const padLen = MAX_BODY - atLimit.length - 4; // tag (1 byte) + a 3-byte length
      const padded = Buffer.concat([atLimit, Buffer.from([0x7a]), Buffer.from(protobufVarint(padLen)), Buffer.alloc(padLen)]);
      expect(padded.length).to.equal(MAX_BODY);
      expect((await post(padded, PROTO)).status).to.equal(200);
      expect((await post(padded, PROTO, { chunked: true })).status).to.equal(200);
    });

    it('GET /v1/traces → 405 with Allow: POST; an unknown path → 404', async () => {
      const get = await httpRequest(rl.httpPort(), '/v1/traces', undefined, {}, { method: 'GET' });
      expect(get.status).to.equal(405);
      expect(get.headers.allow).to.equal('POST');
      expect(statusOf(get).message).to.equal('method GET not allowed; use POST');
      const missing = await httpRequest(rl.httpPort(), '/v2/traces', buildRequest('x', 1).bytes, PROTO);
      expect(missing.status).to.equal(404);
      expect(statusOf(missing).message).to.equal('no OTLP endpoint at /v2/traces; this receiver accepts traces at POST /v1/traces');
      // A signal without a pipeline (test/receivers/signals.test.ts covers it in full): 404 with the fix.
      const noPipeline = await httpRequest(rl.httpPort(), '/v1/metrics', buildRequest('x', 1).bytes, PROTO);
      expect(noPipeline.status).to.equal(404);
      expect(statusOf(noPipeline).message).to.match(/^no metrics pipeline takes OTLP metrics at \/v1\/metrics\. Add a metrics pipeline/);
      const root = await httpRequest(rl.httpPort(), '/', undefined, {}, { method: 'GET' });
      expect(root.status).to.equal(404);
    });
  });

  describe('OTLP/gRPC', () => {
    async function call(body: Uint8Array, client = grpcClient): Promise<{ code: grpc.status; details: string; metadata: grpc.Metadata | undefined }> {
      const r = await client.export(body);
      if (r.code === grpc.status.INVALID_ARGUMENT || r.code === grpc.status.RESOURCE_EXHAUSTED) expectedMalformed.grpc++;
      return r;
    }

    it('random bytes → INVALID_ARGUMENT with the reason in details and grpc-status-details-bin', async () => {
      const r = await call(Buffer.from([0x0a, 0x05, 0x01]));
      expect(r.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(r.details).to.equal('length prefix points past the end of the message');
      const details = r.metadata?.get('grpc-status-details-bin')[0];
      expect(details).to.be.instanceOf(Buffer);
      expect(decodeRpcStatus(details as Buffer)).to.deep.equal({
        code: grpc.status.INVALID_ARGUMENT,
        message: 'length prefix points past the end of the message',
        retryAfterMs: undefined,
      });
      expect(r.metadata?.get('google.rpc.retryinfo-bin')).to.deep.equal([]);
    });

    it('truncated protobuf → INVALID_ARGUMENT, also when gzip-compressed', async () => {
      const { bytes } = buildRequest('grpc-truncated', 3);
      const r = await call(bytes.subarray(0, bytes.length - 3));
      expect(r.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(r.details).to.match(/past the end|truncated/);
      const gz = new RawGrpcClient(rl.grpcPort(), { gzip: true });
      try {
        const z = await call(bytes.subarray(0, 20), gz);
        expect(z.code).to.equal(grpc.status.INVALID_ARGUMENT);
        expect((await call(buildRequest('grpc-gzip-ok', 2).bytes, gz)).code).to.equal(grpc.status.OK);
      } finally {
        gz.close();
      }
    });

    it('a message over max_recv_msg_size_mib → RESOURCE_EXHAUSTED', async () => {
      const r = await call(randomBytes(MAX_GRPC_MIB * 1024 * 1024 + 1));
      expect(r.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(r.details).to.match(/larger than max/i);
      // Just under the limit: a valid request padded with an unknown top-level field is accepted.
      const padLen = MAX_GRPC_MIB * 1024 * 1024 - 1024;
      const under = await call(
        Buffer.concat([buildRequest('grpc-under', 1).bytes, Buffer.from([0x7a]), Buffer.from(protobufVarint(padLen)), Buffer.alloc(padLen)]),
      );
      expect(under.code, under.details).to.equal(grpc.status.OK);
    });
    it("grants each connection a flow-control window that holds a 512-span request, not HTTP/2's initial 64 KiB", async () => {
      const session = http2.connect(`http://127.0.0.1:${rl.grpcPort()}`);
      try {
        await new Promise<void>((resolve, reject) => {
          session.once('remoteSettings', () => resolve());
          session.once('error', reject);
        });
        expect(session.remoteSettings.initialWindowSize).to.equal(STREAM_WINDOW);
        // The connection window is raised by a WINDOW_UPDATE on stream 0, sent with the server's preface.
        await until(() => session.state.remoteWindowSize === CONNECTION_WINDOW, 'the connection WINDOW_UPDATE', 5000);
        expect(CONNECTION_WINDOW).to.be.at.least(512 * 500);
      } finally {
        session.destroy();
      }
    });
  });

  describe('under fire', () => {
    const T = protoType(TYPES.exportTraceRequest);
    const valid = fc.integer({ min: 1, max: 4 }).map((n) => buildRequest('fuzz', n));
    const mutations = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 });
    const mutate = (b: Uint8Array, ms: [number, number][]): Buffer => {
      const out = Buffer.from(b);
      for (const [at, x] of ms) if (out.length > 0) out[at % out.length] = (out[at % out.length] as number) ^ x;
      return out;
    };
    const protoBody = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.tuple(valid, mutations).map(([v, ms]) => mutate(v.bytes, ms)),
      fc.tuple(valid, fc.nat()).map(([v, n]) => Buffer.from(v.bytes.subarray(0, n % (v.bytes.length + 1)))),
      valid.map((v) => Buffer.from(v.bytes)),
    );
    const jsonBody = fc.oneof(
      fc.tuple(valid, mutations).map(([v, ms]) => mutate(Buffer.from(v.json), ms)),
      fc.tuple(valid, fc.nat()).map(([v, n]) => Buffer.from(v.json.slice(0, n % (v.json.length + 1)))),
      fc.json().map((j) => Buffer.from(j)),
      valid.map((v) => Buffer.from(v.json)),
    );
    type Encoded = { body: Buffer; headers: Record<string, string> };
    const httpCase: fc.Arbitrary<Encoded> = fc.oneof(
      protoBody.map((body) => ({ body, headers: PROTO })),
      jsonBody.map((body) => ({ body, headers: JSON_CT })),
      fc
        .tuple(fc.oneof(protoBody, jsonBody), fc.boolean())
        .map(([b, isJson]) => ({ body: zlib.gzipSync(b), headers: { ...(isJson ? JSON_CT : PROTO), 'content-encoding': 'gzip' } })),
      fc.tuple(protoBody, fc.nat()).map(([b, n]) => {
        const z = zlib.gzipSync(b);
        return { body: z.subarray(0, n % (z.length + 1)), headers: { ...PROTO, 'content-encoding': 'gzip' } };
      }),
      fc.constantFrom('br', 'zstd', 'gzip, br', '').chain((enc) => protoBody.map((body) => ({ body, headers: { ...PROTO, 'content-encoding': enc } }))),
      fc.constant(null).map(() => ({ body: randomBytes(MAX_BODY + 100), headers: PROTO })),
    );
    const grpcCase = fc.oneof(
      protoBody,
      fc.constant(null).map(() => randomBytes(MAX_GRPC_MIB * 1024 * 1024 + 10)),
    );

    it('random and mutated bodies get only 200/400/413 (HTTP) and OK/INVALID_ARGUMENT/RESOURCE_EXHAUSTED (gRPC) while a good client loses nothing', async () => {
      const before = { accepted: metricValue(await rl.metricsText(), 'otelcol_receiver_accepted_spans_total') };
      // The good client: 60 requests of 3 spans, alternating transports, concurrently with the fuzzing.
      const good: string[] = [];
      const goodClient = new RawGrpcClient(rl.grpcPort());
      const goodLoop = (async () => {
        for (let i = 0; i < 60; i++) {
          const req = buildRequest('good-client', 3);
          good.push(...req.spanIds);
          if (i % 2 === 0) {
            const r = await goodClient.export(req.bytes);
            expect(r.code, r.details).to.equal(grpc.status.OK);
          } else {
            const r = await httpRequest(rl.httpPort(), '/v1/traces', i % 4 === 1 ? req.bytes : req.json, i % 4 === 1 ? PROTO : JSON_CT);
            expect(r.status).to.equal(200);
          }
        }
      })();
      const httpStatuses = new Map<number, number>();
      const grpcCodes = new Map<number, number>();
      let fuzzAccepted = 0;
      const httpFuzz = fc.assert(
        fc.asyncProperty(httpCase, async ({ body, headers }) => {
          const r = await post(body, headers);
          httpStatuses.set(r.status, (httpStatuses.get(r.status) ?? 0) + 1);
          expect([200, 400, 413], `HTTP ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`).to.include(r.status);
          if (r.status !== 200) expect(statusOf(r).message).to.be.a('string').and.not.equal('');
        }),
        { numRuns: 300 },
      );
      const grpcFuzz = fc.assert(
        fc.asyncProperty(grpcCase, async (body) => {
          const r = await grpcClient.export(body);
          grpcCodes.set(r.code, (grpcCodes.get(r.code) ?? 0) + 1);
          if (r.code === grpc.status.INVALID_ARGUMENT || r.code === grpc.status.RESOURCE_EXHAUSTED) expectedMalformed.grpc++;
          if (r.code === grpc.status.OK) fuzzAccepted++;
          expect([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED], `gRPC ${r.code}: ${r.details}`).to.include(r.code);
          if (r.code !== grpc.status.OK) expect(r.details).to.not.equal('');
        }),
        { numRuns: 300 },
      );
      await Promise.all([goodLoop, httpFuzz, grpcFuzz]);
      goodClient.close();
      // Each outcome actually happened (the fuzzing reached past the first checks).
      expect(httpStatuses.get(200) ?? 0, JSON.stringify([...httpStatuses])).to.be.greaterThan(0);
      expect(httpStatuses.get(400) ?? 0).to.be.greaterThan(0);
      expect(httpStatuses.get(413) ?? 0).to.be.greaterThan(0);
      expect(grpcCodes.get(grpc.status.INVALID_ARGUMENT) ?? 0, JSON.stringify([...grpcCodes])).to.be.greaterThan(0);
      expect(fuzzAccepted).to.be.greaterThan(0);

      // Every good span arrives exactly once.
      const goodAt = (): string[] =>
        sink
          .spans()
          .filter((s) => attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue === 'good-client')
          .map((s) => s.spanId);
      await until(() => goodAt().length >= good.length, `${good.length} good spans at the sink`);
      expect(goodAt().sort()).to.deep.equal([...good].sort());
      // Everything the sink got decodes with the reference codec (nothing half-valid was forwarded).
      for (const r of sink.requests) expect(() => T.decode(r.body)).to.not.throw();
      const text = await rl.metricsText();
      expect(metricValue(text, 'otelcol_receiver_accepted_spans_total') - before.accepted).to.be.at.least(good.length);
    });

    it('the process is still up and healthy, and counted every malformed request', async () => {
      const health = await fetch(`${rl.queryUrl()}/healthz`);
      expect(health.status).to.equal(200);
      const req = buildRequest('after-the-storm', 2);
      expect((await grpcClient.export(req.bytes)).code).to.equal(grpc.status.OK);
      expect((await httpRequest(rl.httpPort(), '/v1/traces', req.bytes, PROTO)).status).to.equal(200);
      const text = await rl.metricsText();
      expect(expectedMalformed.http).to.be.greaterThan(20);
      expect(expectedMalformed.grpc).to.be.greaterThan(20);
      expect(metricValue(text, 'routelens_receiver_malformed_requests_total', { transport: 'http' }), 'http').to.equal(expectedMalformed.http);
      expect(metricValue(text, 'routelens_receiver_malformed_requests_total', { transport: 'grpc' }), 'grpc').to.equal(expectedMalformed.grpc);
      expect(metricValue(text, 'otelcol_receiver_requests_total', { transport: 'http', outcome: 'failure' })).to.equal(expectedMalformed.http);
      expect(metricValue(text, 'otelcol_receiver_refused_spans_total')).to.equal(0);
      expect(metricValue(text, 'otelcol_receiver_failed_spans_total')).to.equal(0);
    });
  });
});
