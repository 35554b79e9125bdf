import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './free-port';
import { jaegerServices, jaegerTraces, startJaeger, type JaegerInstance } from './jaeger';
import { startPrometheus, type PrometheusInstance } from './prometheus';

/**
 * Proves the external test support works: a real Jaeger v2 (memory storage,
 * SPM backed by Prometheus) and a real Prometheus. The first run builds Jaeger
 * from source (minutes); later runs use the cached binary.
 */

/** A /metrics endpoint serving span-metrics as the collector's prometheus exporter names them. */
function fakeSpanMetricsServer(): Promise<{ target: string; close(): Promise<void> }> {
  const t0 = Date.now();
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const n = Math.floor((Date.now() - t0) / 100) + 1; // grows 10/s
    const l = 'service_name="spm-smoke",span_name="GET /items/{id}",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"';
    const text = [
      '# TYPE traces_span_metrics_calls_total counter',
      `traces_span_metrics_calls_total{${l}} ${n}`,
      '# TYPE traces_span_metrics_duration_milliseconds histogram',
      `traces_span_metrics_duration_milliseconds_bucket{${l},le="10"} ${Math.floor(n / 2)}`,
      `traces_span_metrics_duration_milliseconds_bucket{${l},le="100"} ${n}`,
      `traces_span_metrics_duration_milliseconds_bucket{${l},le="+Inf"} ${n}`,
      `traces_span_metrics_duration_milliseconds_sum{${l}} ${n * 20}`,
      `traces_span_metrics_duration_milliseconds_count{${l}} ${n}`,
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        target: `127.0.0.1:${port}`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

function randomHex(bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++)
    s += Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0');
  return s;
}

describe('external test support (real Jaeger v2 + Prometheus)', function () {
  let jaeger: JaegerInstance | undefined;
  let prom: PrometheusInstance | undefined;
  let fake: { target: string; close(): Promise<void> } | undefined;

  before(async function () {
    // First run builds Jaeger from source via scripts/build-jaeger.sh.
    this.timeout(20 * 60_000);
    fake = await fakeSpanMetricsServer();
    prom = await startPrometheus({ scrapeTargets: [fake.target], scrapeIntervalS: 1, scrapeSelf: true, waitForFirstScrape: true });
    jaeger = await startJaeger({ prometheusUrl: prom.url });
  });

  after(async function () {
    this.timeout(60_000);
    await jaeger?.stop();
    await prom?.stop();
    await fake?.close();
  });

  it('Jaeger accepts an OTLP/HTTP JSON trace and serves it from the query API', async function () {
    this.timeout(60_000);
    const j = jaeger!;
    const service = `support-smoke-${randomHex(3)}`;
    const traceId = randomHex(16);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
          scopeSpans: [
            {
              scope: { name: 'routelens-test' },
              spans: [
                {
                  traceId,
                  spanId: randomHex(8),
                  name: 'GET /users/{id}',
                  kind: 2,
                  startTimeUnixNano: String(nowNs - 25_000_000n),
                  endTimeUnixNano: String(nowNs),
                  attributes: [{ key: 'http.route', value: { stringValue: '/users/{id}' } }],
                },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(`${j.otlpHttpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status, await res.text()).to.equal(200);

    const trace = await waitFor(
      async () => {
        const r = await jaegerTraces(j.queryUrl, service, 10);
        return r.data?.find((t) => t.traceID === traceId);
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `trace ${traceId} of ${service} in Jaeger` },
    );
    expect(trace.spans).to.have.length(1);
    const span = trace.spans[0]!;
    expect(span.operationName).to.equal('GET /users/{id}');
    expect(span.duration).to.equal(25_000); // µs
    expect(span.tags.find((t) => t.key === 'http.route')?.value).to.equal('/users/{id}');
    expect(trace.processes[span.processID]?.serviceName).to.equal(service);

    const byTag = await jaegerTraces(j.queryUrl, service, 10, { tags: { 'http.route': '/users/{id}' } });
    expect((byTag.data ?? []).map((t) => t.traceID)).to.deep.equal([traceId]);
    const noMatch = await jaegerTraces(j.queryUrl, service, 10, { tags: { 'http.route': '/other' } });
    expect(noMatch.data ?? []).to.deep.equal([]);
  });

  it('Prometheus scrapes itself: up == 1', async function () {
    this.timeout(30_000);
    const p = prom!;
    const data = await waitFor(
      async () => {
        const d = await p.query('up{job="prometheus"}');
        return d.result.length > 0 ? d : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'prometheus self-scrape (up)' },
    );
    expect(data.resultType).to.equal('vector');
    expect(data.result[0].value[1]).to.equal('1');
  });

  it('Jaeger SPM (/api/metrics/*) reads span-metrics from Prometheus', async function () {
    this.timeout(60_000);
    const j = jaeger!;
    // rate() needs two samples of the fake target.
    const url = new URL('/api/metrics/latencies', j.queryUrl);
    url.searchParams.set('service', 'spm-smoke');
    url.searchParams.set('quantile', '0.95');
    url.searchParams.set('groupByOperation', 'true');
    url.searchParams.set('lookback', '300000');
    url.searchParams.set('step', '1000');
    url.searchParams.set('ratePer', '60000');
    type Family = {
      metrics?: Array<{
        labels: Array<{ name: string; value: string }>;
        metricPoints: Array<{ gaugeValue?: { doubleValue?: number } }>;
      }>;
    };
    const fam = await waitFor(
      async () => {
        const res = await fetch(url);
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${res.status}: ${text.slice(0, 300)}`);
        const f = JSON.parse(text) as Family;
        const points = (f.metrics ?? []).flatMap((m) => m.metricPoints);
        return points.some((pt) => typeof pt.gaugeValue?.doubleValue === 'number') ? f : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 500, what: 'jaeger /api/metrics/latencies for spm-smoke' },
    );
    const m = fam.metrics![0]!;
    expect(m.labels.find((l) => l.name === 'operation')?.value).to.equal('GET /items/{id}');
    const values = m.metricPoints.map((pt) => pt.gaugeValue?.doubleValue).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    expect(values.length).to.be.greaterThan(0);
    // Half the calls are <= 10 ms, all <= 100 ms: p95 lies in (10, 100].
    for (const v of values) expect(v).to.be.within(10, 100);

    const calls = await fetch(`${j.queryUrl}/api/metrics/calls?service=spm-smoke&lookback=300000&step=1000&ratePer=60000`);
    expect(calls.status, await calls.clone().text()).to.equal(200);
  });

  it('restart() keeps the ports and drops in-memory traces', async function () {
    this.timeout(90_000);
    const j = jaeger!;
    const before = { grpc: j.otlpGrpcEndpoint, http: j.otlpHttpUrl, query: j.queryUrl };
    await j.restart();
    expect({ grpc: j.otlpGrpcEndpoint, http: j.otlpHttpUrl, query: j.queryUrl }).to.deep.equal(before);
    const services = await jaegerServices(j.queryUrl);
    expect(services.filter((s) => s.startsWith('support-smoke-'))).to.deep.equal([]);
  });
});
