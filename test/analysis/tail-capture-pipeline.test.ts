/**
 * tail_capture in a running routelens, configured as a user would: one pipeline counts every span
 * (routelatency), another forwards through tail_capture to an OTLP/HTTP backend. Only the slow trace and the
 * error trace reach the backend, whole, marked with their weight and reason, while /api/v1/routes counts every
 * request. The slow request comes last: while a route has fewer than 100 requests its p99 is its slowest one.
 */
import { expect } from 'chai';
import { traceRequestFromJson } from '../../src/pdata/otlp-json';
import { waitFor } from '../support/free-port';
import { parseExposition, samplesOf } from '../support/metrics-scrape';
import { OtlpSink } from '../support/otlp-sink';
import { spanHex, traceHex, traceJson, type OtlpSpanSpec } from '../support/otlp-traces';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { postTraces } from '../support/trace-requests';

function request(ms: number, error = false): OtlpSpanSpec[] {
  return [
    {
      id: 1,
      kind: 'server',
      name: 'GET /items/{id}',
      start: 0,
      end: ms,
      attrs: { 'http.method': 'GET', 'http.route': '/items/{id}', 'http.status_code': error ? 500 : 200 },
    },
    { id: 2, parent: 1, kind: 'client', name: 'SELECT', start: 1, end: ms - 1, attrs: { 'db.system': 'sqlite', 'db.statement': 'SELECT 1 FROM t' }, error },
  ];
}

describe('tail_capture in a pipeline', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
processors:
  tail_capture:
    decision_wait: 500ms
    policies:
      - { name: slow, type: route_latency, route_latency: { percentile: 99, window: 5m, min_requests: 20 } }
      - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
connectors:
  routelatency: {}
exporters:
  otlphttp:
    endpoint: ${sink.httpEndpoint}
    compression: none
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces/all: { receivers: [otlp], exporters: [routelatency] }
    traces/sampled: { receivers: [otlp], processors: [tail_capture], exporters: [otlphttp] }
`);
  });

  after(async () => {
    await rl.stop();
    await sink.stop();
  });

  it('forwards only the slow and the error trace, whole and marked; the routes count every request', async () => {
    const url = `http://127.0.0.1:${rl.httpPort()}/v1/traces`;
    for (let t = 1; t <= 150; t++) {
      const ms = t === 150 ? 400 : 10 + (t % 5);
      const r = await postTraces(url, traceRequestFromJson(traceJson(t, [{ service: 'shop', spans: request(ms, t === 30) }])));
      expect(r.status).to.equal(200);
    }
    await waitFor(async () => (sink.spans().length >= 4 ? true : undefined), { timeoutMs: 20_000, what: 'the kept traces at the backend' });
    // Nothing else can come once every trace is decided and every span sent has arrived.
    await waitFor(
      async () => {
        const m = parseExposition(await (await fetch(`${rl.queryUrl()}/metrics`)).text());
        const total = (name: string): number => samplesOf(m, name).reduce((n, x) => n + x.value, 0);
        const settled =
          total('routelens_tail_capture_traces_in_flight') === 0 &&
          total('otelcol_exporter_queue_size') === 0 &&
          total('otelcol_exporter_sent_spans_total') === sink.spans().length;
        return settled ? true : undefined;
      },
      { timeoutMs: 20_000, what: 'every trace decided and every span sent delivered' },
    );
    const got = sink.spans().map((s) => {
      const attr = (k: string): unknown => Object.values(s.attributes?.find((a) => a.key === k)?.value ?? {})[0];
      return [s.traceId, s.spanId, attr('routelens.capture.reason'), attr('routelens.sampling.weight')];
    });
    got.sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1])));
    expect(got).to.deep.equal([
      [traceHex(30), spanHex(30, 1), 'errors', 1],
      [traceHex(30), spanHex(30, 2), 'errors', 1],
      [traceHex(150), spanHex(150, 1), 'slow', 1],
      [traceHex(150), spanHex(150, 2), 'slow', 1],
    ]);
    const routes = (await (await fetch(`${rl.queryUrl()}/api/v1/routes`)).json()) as { routes: { route: string; count: number }[] };
    expect(routes.routes.find((r) => r.route === '/items/{id}')?.count).to.equal(150);
  });
});

describe('two tail_capture processors in one routelens', function () {
  this.timeout(60_000);

  it("keep their self-telemetry apart, labelled processor=<id> as the Collector labels processor metrics; an id's instances are summed", async () => {
    // tail_capture/a in two pipelines, tail_capture/b (room for one trace) in a third: every pipeline gets every span.
    const rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
processors:
  tail_capture/a:
    decision_wait: 30s
    policies: [{ name: errors, type: status_code, status_code: { status_codes: [ERROR] } }]
  tail_capture/b:
    decision_wait: 30s
    num_traces: 1
    policies: [{ name: errors, type: status_code, status_code: { status_codes: [ERROR] } }]
exporters:
  debug: {}
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces/a1: { receivers: [otlp], processors: [tail_capture/a], exporters: [debug] }
    traces/a2: { receivers: [otlp], processors: [tail_capture/a], exporters: [debug] }
    traces/b: { receivers: [otlp], processors: [tail_capture/b], exporters: [debug] }
`);
    try {
      const url = `http://127.0.0.1:${rl.httpPort()}/v1/traces`;
      for (let t = 1; t <= 3; t++) {
        const r = await postTraces(url, traceRequestFromJson(traceJson(t, [{ service: 'shop', spans: request(10) }])));
        expect(r.status).to.equal(200);
      }
      const m = parseExposition(await rl.metricsText());
      const series = (name: string): [Record<string, string>, number][] =>
        samplesOf(m, name)
          .map((s): [Record<string, string>, number] => [s.labels, s.value])
          .sort((x, y) => String(x[0].processor).localeCompare(String(y[0].processor)) || String(x[0].outcome).localeCompare(String(y[0].outcome)));
      // a: three traces of two spans held by each of its two instances; b: the newest one, the two before decided early.
      expect(series('routelens_tail_capture_traces_in_flight')).to.deep.equal([
        [{ processor: 'tail_capture/a' }, 6],
        [{ processor: 'tail_capture/b' }, 1],
      ]);
      expect(series('routelens_tail_capture_spans_in_flight')).to.deep.equal([
        [{ processor: 'tail_capture/a' }, 12],
        [{ processor: 'tail_capture/b' }, 2],
      ]);
      const retained = series('routelens_tail_capture_retained_bytes');
      expect(retained.map(([l]) => l.processor)).to.deep.equal(['tail_capture/a', 'tail_capture/b']);
      for (const [, v] of retained) expect(v).to.be.above(0);
      expect(series('routelens_tail_capture_evicted_traces_total')).to.deep.equal([
        [{ processor: 'tail_capture/a' }, 0],
        [{ processor: 'tail_capture/b' }, 2],
      ]);
      expect(series('routelens_tail_capture_traces_total').filter(([l]) => l.outcome === 'dropped')).to.deep.equal([
        [{ processor: 'tail_capture/a', outcome: 'dropped', policy: '' }, 0],
        [{ processor: 'tail_capture/b', outcome: 'dropped', policy: '' }, 2],
      ]);
    } finally {
      await rl.stop();
    }
  });
});
