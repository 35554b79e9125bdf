/**
 * Metrics and logs through a running routelens, as traces go: the otlp receiver takes MetricsService/Export and
 * LogsService/Export over gRPC and POST /v1/metrics and /v1/logs over HTTP (protobuf and JSON, gzip and deflate),
 * with the same size limits, authentication and status codes; the otlp and otlphttp exporters forward them
 * (unmodified requests byte for byte; otlphttp to its per-signal URLs); every outcome is counted with the
 * Collector's metric names. A signal that no pipeline takes is answered UNIMPLEMENTED / 404 with the fix, counted
 * per signal and logged once per client.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { toOtlpJsonObject } from '../../src/pdata/otlp-json';
import { TYPES } from '../../src/pdata/proto';
import { decodeRpcStatus } from '../../src/pdata/rpc-status';
import { OtlpSink } from '../support/otlp-sink';
import { LOGS_EXPORT, METRICS_EXPORT, RawGrpcClient, httpRequest, until, type HttpResult } from '../support/raw-clients';
import { metricValue, startRoutelens, type RunningRoutelens } from '../support/routelens';
import { logsRequest, metricsRequest } from '../support/signal-requests';

const MAX_BODY = 64 * 1024;
const TOKEN = 'signals-test-token';
const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };

function statusOf(r: HttpResult): { code: number; message: string } {
  if (String(r.headers['content-type']).includes('protobuf')) return decodeRpcStatus(r.body) as { code: number; message: string };
  return JSON.parse(r.body.toString('utf8')) as { code: number; message: string };
}

const signals = [
  { signal: 'metrics', path: '/v1/metrics', method: METRICS_EXPORT, type: TYPES.exportMetricsRequest, request: metricsRequest, unit: 'metric_points' },
  { signal: 'logs', path: '/v1/logs', method: LOGS_EXPORT, type: TYPES.exportLogsRequest, request: logsRequest, unit: 'log_records' },
] as const;

describe('metrics and logs through a running routelens', function () {
  this.timeout(120_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let dir: string;
  const clients: RawGrpcClient[] = [];
  const grpcTo = (receiver = 'otlp', gzip = false): RawGrpcClient => {
    const c = new RawGrpcClient(rl.grpcPort(receiver), { gzip });
    clients.push(c);
    return c;
  };

  before(async () => {
    sink = await new OtlpSink().start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-signals-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, max_recv_msg_size_mib: 0.25 }
      http: { endpoint: 127.0.0.1:0, max_request_body_size: ${MAX_BODY} }
  otlp/tracesonly:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
  otlp/auth:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
      http: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    compression: none
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    metrics_endpoint: ${sink.httpEndpoint}/custom/metrics
    compression: none
extensions:
  bearertokenauth: { filename: ${tokenFile} }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces: { receivers: [otlp, otlp/tracesonly], exporters: [otlp] }
    metrics: { receivers: [otlp, otlp/auth], exporters: [otlp, otlphttp] }
    logs: { receivers: [otlp, otlp/auth], exporters: [otlp, otlphttp] }
`);
  });
  after(async () => {
    for (const c of clients) c.close();
    await rl?.stop();
    await sink?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const viaGrpcSink = (signal: string): Buffer[] => sink.requests.filter((r) => r.transport === 'grpc' && r.path === `/v1/${signal}`).map((r) => r.body);
  const viaHttpSink = (urlPath: string): Buffer[] => sink.requests.filter((r) => r.transport === 'http' && r.path === urlPath).map((r) => r.body);

  for (const s of signals) {
    describe(s.signal, () => {
      it(`is taken over gRPC (plain and gzip) and HTTP (protobuf plain, gzip, deflate; JSON), forwarded byte for byte by otlp and to the per-signal URL by otlphttp, and counted`, async () => {
        const before = await rl.metricsText();
        const bodies = [1, 2, 3, 4, 5, 6].map((n) => s.request(n, { service: `${s.signal}-${n}` }));
        expect((await grpcTo().export(bodies[0]!, 10_000, s.method)).code).to.equal(grpc.status.OK);
        expect((await grpcTo('otlp', true).export(bodies[1]!, 10_000, s.method)).code).to.equal(grpc.status.OK);
        const port = rl.httpPort();
        const answers = [
          await httpRequest(port, s.path, bodies[2]!, PROTO),
          await httpRequest(port, s.path, zlib.gzipSync(bodies[3]!), { ...PROTO, 'content-encoding': 'gzip' }),
          await httpRequest(port, s.path, zlib.deflateSync(bodies[4]!), { ...PROTO, 'content-encoding': 'deflate' }),
          await httpRequest(port, s.path, JSON.stringify(toOtlpJsonObject(s.type, bodies[5]!)), JSON_CT),
        ];
        expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200, 200]);
        expect(answers[0]!.headers['content-type']).to.equal('application/x-protobuf');
        expect(answers[3]!.body.toString()).to.equal('{}');
        const otlphttpPath = s.signal === 'metrics' ? '/custom/metrics' : '/v1/logs';
        await until(() => viaGrpcSink(s.signal).length === 6 && viaHttpSink(otlphttpPath).length === 6, `${s.signal} at the sink`);
        // Unmodified protobuf requests leave as the very bytes that came in; the JSON one as its protobuf encoding.
        const hex = (bs: Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex')).sort();
        expect(hex(viaGrpcSink(s.signal).slice(0, 5).concat(viaGrpcSink(s.signal).slice(5)))).to.deep.equal(hex(bodies));
        expect(hex(viaHttpSink(otlphttpPath))).to.deep.equal(hex(bodies));
        const after = await rl.metricsText();
        const delta = (name: string, labels: Record<string, string>): number => metricValue(after, name, labels) - metricValue(before, name, labels);
        expect(delta(`otelcol_receiver_accepted_${s.unit}_total`, { receiver: 'otlp', transport: 'grpc' })).to.equal(1 + 2);
        expect(delta(`otelcol_receiver_accepted_${s.unit}_total`, { receiver: 'otlp', transport: 'http' })).to.equal(3 + 4 + 5 + 6);
        await until(async () => metricValue(await rl.metricsText(), `otelcol_exporter_sent_${s.unit}_total`, { exporter: 'otlphttp' }) >= 21, 'sent counters');
        const sent = await rl.metricsText();
        expect(
          metricValue(sent, `otelcol_exporter_sent_${s.unit}_total`, { exporter: 'otlp' }) -
            metricValue(before, `otelcol_exporter_sent_${s.unit}_total`, { exporter: 'otlp' }),
        ).to.equal(21);
        expect(metricValue(sent, 'otelcol_exporter_queue_capacity', { exporter: 'otlp', data_type: s.signal })).to.equal(1000);
        expect(sent).to.include(`otelcol_exporter_queue_size{exporter="otlphttp",data_type="${s.signal}"}`);
      });

      it('answers a malformed request 400 / INVALID_ARGUMENT naming the problem, counts it, and loses nothing of a good client sending meanwhile', async () => {
        const before = await rl.metricsText();
        const good = Array.from({ length: 20 }, (_, i) => s.request(3, { service: `good-${s.signal}-${i}` }));
        const sending = Promise.all(good.map((b, i) => (i % 2 === 0 ? grpcTo().export(b, 10_000, s.method) : httpRequest(rl.httpPort(), s.path, b, PROTO))));
        const bad = Buffer.from([0x0a, 0x05, 0x12, 0x03, 0x0a, 0x7f, 0x00]);
        const httpBad = await httpRequest(rl.httpPort(), s.path, bad, PROTO);
        expect(httpBad.status).to.equal(400);
        expect(statusOf(httpBad)).to.deep.include({ code: grpc.status.INVALID_ARGUMENT, message: 'length prefix points past the end of the message' });
        const grpcBad = await grpcTo().export(bad, 10_000, s.method);
        expect(grpcBad.code).to.equal(grpc.status.INVALID_ARGUMENT);
        // An item of the signal with an id of the wrong length: refused as the Collector refuses it.
        const wrongId =
          s.signal === 'logs'
            ? JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: 'abcd' }] }] }] })
            : JSON.stringify({
                resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm', gauge: { dataPoints: [{ exemplars: [{ spanId: 'abcd' }] }] } }] }] }],
              });
        const idAnswer = await httpRequest(rl.httpPort(), s.path, wrongId, JSON_CT);
        expect(idAnswer.status).to.equal(400);
        expect(statusOf(idAnswer).message).to.equal(
          s.signal === 'logs' ? 'LogRecord trace_id is 2 bytes, expected 16' : 'Exemplar span_id is 2 bytes, expected 8',
        );
        const results = await sending;
        expect(results.map((r) => ('status' in r ? r.status : r.code === grpc.status.OK ? 200 : r.code))).to.deep.equal(good.map(() => 200));
        const services = good.map((_, i) => `good-${s.signal}-${i}`);
        // Requests that waited in the exporter's queue together may arrive joined as one: count the good resources.
        const arrived = (): number => {
          const json = viaGrpcSink(s.signal)
            .map((b) => JSON.stringify(toOtlpJsonObject(s.type, b)))
            .join('\n');
          return services.reduce((n, svc) => n + json.split(`"${svc}"`).length - 1, 0);
        };
        await until(() => arrived() === 20, 'every good request at the sink');
        const after = await rl.metricsText();
        const delta = (name: string, labels: Record<string, string>): number => metricValue(after, name, labels) - metricValue(before, name, labels);
        expect(delta('routelens_receiver_malformed_requests_total', { receiver: 'otlp', transport: 'http' })).to.equal(2);
        expect(delta('routelens_receiver_malformed_requests_total', { receiver: 'otlp', transport: 'grpc' })).to.equal(1);
        expect(delta(`otelcol_receiver_accepted_${s.unit}_total`, { receiver: 'otlp' })).to.equal(60);
      });

      it('applies the size limits: 413 over max_request_body_size (before and after decompression), RESOURCE_EXHAUSTED over max_recv_msg_size_mib', async () => {
        const big = s.request(1, { service: 'x'.repeat(MAX_BODY) });
        const r = await httpRequest(rl.httpPort(), s.path, big, PROTO);
        expect(r.status).to.equal(413);
        const bomb = await httpRequest(rl.httpPort(), s.path, zlib.gzipSync(Buffer.alloc(10 * MAX_BODY)), { ...PROTO, 'content-encoding': 'gzip' });
        expect(bomb.status).to.equal(413);
        const huge = s.request(1, { service: 'y'.repeat(300 * 1024) });
        const g = await grpcTo().export(huge, 10_000, s.method);
        expect(g.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      });

      it('requires the receiver authenticator: 401 / UNAUTHENTICATED without the token, accepted with it', async () => {
        const body = s.request(2, { service: `auth-${s.signal}` });
        expect((await httpRequest(rl.httpPort('otlp/auth'), s.path, body, PROTO)).status).to.equal(401);
        expect((await grpcTo('otlp/auth').export(body, 10_000, s.method)).code).to.equal(grpc.status.UNAUTHENTICATED);
        expect((await httpRequest(rl.httpPort('otlp/auth'), s.path, body, { ...PROTO, authorization: `Bearer ${TOKEN}` })).status).to.equal(200);
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${TOKEN}`);
        expect((await grpcTo('otlp/auth').export(body, 10_000, s.method, md)).code).to.equal(grpc.status.OK);
      });

      it('answers an empty request OK without counting items', async () => {
        const before = metricValue(await rl.metricsText(), `otelcol_receiver_accepted_${s.unit}_total`);
        expect((await httpRequest(rl.httpPort(), s.path, Buffer.alloc(0), PROTO)).status).to.equal(200);
        expect((await grpcTo().export(Buffer.alloc(0), 10_000, s.method)).code).to.equal(grpc.status.OK);
        expect(metricValue(await rl.metricsText(), `otelcol_receiver_accepted_${s.unit}_total`)).to.equal(before);
      });

      it('without a pipeline for it: UNIMPLEMENTED / 404 with the fix, counted per signal, logged once per client and transport', async () => {
        const body = s.request(4);
        const answers = [];
        for (let i = 0; i < 3; i++) answers.push(await grpcTo('otlp/tracesonly').export(body, 10_000, s.method));
        const fix = `Add a ${s.signal} pipeline (service.pipelines.${s.signal} with receivers: [otlp/tracesonly] and an exporter)`;
        for (const a of answers) {
          expect(a.code).to.equal(grpc.status.UNIMPLEMENTED);
          expect(a.details).to.contain(`unknown service ${s.method.split('/')[1]}: routelens has no ${s.signal} pipeline. ${fix}`);
        }
        const http404 = await httpRequest(rl.httpPort('otlp/tracesonly'), s.path, body, PROTO);
        expect(http404.status).to.equal(404);
        expect(statusOf(http404).message).to.equal(
          `no ${s.signal} pipeline takes OTLP ${s.signal} at ${s.path}. ${fix}, or stop the client sending ${s.signal} (OTEL_${s.signal.toUpperCase()}_EXPORTER=none).`,
        );
        const text = await rl.metricsText();
        expect(
          metricValue(text, 'routelens_receiver_unimplemented_requests_total', { receiver: 'otlp/tracesonly', transport: 'grpc', signal: s.signal }),
        ).to.equal(3);
        expect(
          metricValue(text, 'routelens_receiver_unimplemented_requests_total', { receiver: 'otlp/tracesonly', transport: 'http', signal: s.signal }),
        ).to.equal(1);
        expect(metricValue(text, 'routelens_receiver_unimplemented_requests_total', { receiver: 'otlp/tracesonly', signal: 'traces' })).to.equal(0);
        const lines = rl.logs.filter((l) => l.receiver === 'otlp/tracesonly' && l.signal === s.signal);
        expect(lines.map((l) => [l.transport, l.client, l.level])).to.deep.equal([
          ['grpc', '127.0.0.1', 'warn'],
          ['http', '127.0.0.1', 'warn'],
        ]);
        expect(String(lines[0]!.msg)).to.contain(
          `A client sent ${s.signal} but no ${s.signal} pipeline takes them from this receiver: the data is refused and lost. ${fix}`,
        );
        // The traces the receiver does take still go through.
        expect(metricValue(text, 'routelens_receiver_unimplemented_requests_total', { receiver: 'otlp', signal: s.signal })).to.equal(0);
      });
    });
  }

  it('an unknown HTTP path → 404 listing what the receiver accepts', async () => {
    const r = await httpRequest(rl.httpPort(), '/v1/profiles', Buffer.alloc(0), PROTO);
    expect(r.status).to.equal(404);
    expect(statusOf(r).message).to.equal(
      'no OTLP endpoint at /v1/profiles; this receiver accepts traces at POST /v1/traces, metrics at POST /v1/metrics, logs at POST /v1/logs',
    );
  });
});
