/**
 * A real Prometheus scrapes routelens's /metrics (it asks for OpenMetrics, so exemplars and the OpenMetrics
 * syntax are exercised) while the real OpenTelemetry JS SDK sends spans with known latencies; a real Jaeger v2
 * with Prometheus as its metrics storage reads the spanmetrics-compatible series (the Monitor tab, SPM).
 */
import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../support/free-port';
import { startJaeger, type JaegerInstance } from '../support/jaeger';
import { startPrometheus, type PrometheusInstance } from '../support/prometheus';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { routelensYaml, routesApi, sendSpans, type SpanSpec } from '../support/sdk-spans';

const SERVICE = 'checkout-svc';
const ROUTE = '/checkout/{id}';
const BOUNDS = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000];

/**
 * One round of 100 requests: 90 fast (5–9 ms), 10 slow (500–680 ms), 5 of them errors. Nearest-rank p95 is the
 * 95th value, 580 ms: in the explicit bucket (400, 800].
 */
function round(): SpanSpec[] {
  const out: SpanSpec[] = [];
  for (let i = 0; i < 100; i++) {
    if (i < 90) out.push({ route: ROUTE, method: 'POST', ms: 5 + (i % 5) });
    else out.push({ route: ROUTE, method: 'POST', ms: 500 + (i - 90) * 20, error: i >= 95 });
  }
  return out;
}

/** The explicit bucket (lo, hi] holding a value. */
function bucketOf(v: number): [number, number] {
  const i = BOUNDS.findIndex((b) => v <= b);
  return i < 0 ? [BOUNDS[BOUNDS.length - 1] as number, Infinity] : [i === 0 ? 0 : (BOUNDS[i - 1] as number), BOUNDS[i] as number];
}

/** A pass-through proxy in front of routelens's /metrics that remembers what the scraper asked for and got. */
interface ScrapeProxy {
  target: string;
  scrapes: { accept: string; contentType: string; exemplars: number }[];
  close(): Promise<void>;
}

async function scrapeProxy(upstream: string): Promise<ScrapeProxy> {
  const scrapes: ScrapeProxy['scrapes'] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const accept = String(req.headers.accept ?? '');
      const up = await fetch(`${upstream}${req.url ?? '/'}`, { headers: { accept } });
      const body = await up.text();
      const contentType = up.headers.get('content-type') ?? '';
      scrapes.push({ accept, contentType, exemplars: body.split('\n').filter((l) => l.includes(' # {trace_id=')).length });
      res.writeHead(up.status, { 'content-type': contentType });
      res.end(body);
    })().catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    target: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    scrapes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface JaegerFamily {
  metrics?: { labels: { name: string; value: string }[]; metricPoints: { gaugeValue?: { doubleValue?: number } }[] }[];
}

describe('route metrics scraped by a real Prometheus and read by a real Jaeger (SPM)', function () {
  this.timeout(180_000);
  let rl: RunningRoutelens | undefined;
  let prom: PrometheusInstance | undefined;
  let jaeger: JaegerInstance | undefined;
  let proxy: ScrapeProxy | undefined;
  let sent = 0;

  before(async function () {
    this.timeout(20 * 60_000); // a first run builds Jaeger
    rl = await startRoutelens(routelensYaml());
    proxy = await scrapeProxy(rl.queryUrl());
    prom = await startPrometheus({ scrapeTargets: [proxy.target], scrapeIntervalS: 1, waitForFirstScrape: true });
    jaeger = await startJaeger({ prometheusUrl: prom.url });
    // rate() needs the counters to grow between scrapes: send rounds until Prometheus sees a rate.
    const base = `http://127.0.0.1:${rl.httpPort()}`;
    const q = `sum(rate(traces_span_metrics_calls_total{service_name="${SERVICE}"}[1m]))`;
    await waitFor(
      async () => {
        await sendSpans(base, SERVICE, round());
        sent += 100;
        const d = await prom!.query(q);
        const v = Number(d.result[0]?.value[1]);
        return v > 0 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'a positive call rate in Prometheus' },
    );
  });

  after(async function () {
    this.timeout(60_000);
    await jaeger?.stop();
    await prom?.stop();
    await proxy?.close();
    await rl?.stop();
  });

  it('Prometheus scrapes the OpenMetrics output with exemplars (up == 1) and stores every family', async () => {
    const up = await prom!.query('up{job="routelens"}');
    expect(up.result[0]?.value[1]).to.equal('1');
    const last = proxy!.scrapes[proxy!.scrapes.length - 1];
    expect(last?.accept).to.include('application/openmetrics-text');
    expect(last?.contentType).to.match(/^application\/openmetrics-text; version=1\.0\.0/);
    expect(last?.exemplars).to.be.greaterThan(0);
    const scraped = await prom!.query('scrape_samples_scraped{job="routelens"}');
    expect(Number(scraped.result[0]?.value[1])).to.be.greaterThan(20);
    for (const name of [
      'traces_span_metrics_calls_total',
      'traces_span_metrics_duration_milliseconds_bucket',
      'traces_span_metrics_duration_milliseconds_count',
      'routelens_route_duration_seconds_bucket',
      'routelens_route_requests_total',
      'routelens_route_errors_total',
      'routelens_route_latency_seconds',
      'routelens_route_latency_seconds_count',
    ]) {
      const d = await prom!.query(`count(${name}{service_name="${SERVICE}"})`);
      expect(Number(d.result[0]?.value[1]), name).to.be.greaterThan(0);
    }
    const labels = await prom!.query(`traces_span_metrics_calls_total{service_name="${SERVICE}"}`);
    const got = labels.result.map((r: { metric: Record<string, string> }) => [r.metric.span_name, r.metric.span_kind, r.metric.status_code]);
    expect(got).to.have.deep.members([
      [`POST ${ROUTE}`, 'SPAN_KIND_SERVER', 'STATUS_CODE_UNSET'],
      [`POST ${ROUTE}`, 'SPAN_KIND_SERVER', 'STATUS_CODE_ERROR'],
    ]);
  });

  it("histogram_quantile(0.95) over the spanmetrics histogram lies in the explicit bucket of routelens's own p95", async () => {
    const [route] = (await routesApi(rl!.queryUrl(), { window: '5m' })).filter((r) => r.service === SERVICE);
    expect(route?.count).to.equal(sent);
    expect(route?.p95_ms).to.be.closeTo(580, 580 * 0.0055);
    const [lo, hi] = bucketOf(route!.p95_ms);
    expect([lo, hi]).to.deep.equal([400, 800]);
    const q = `histogram_quantile(0.95, sum by (le, service_name, span_name) (rate(traces_span_metrics_duration_milliseconds_bucket{service_name="${SERVICE}"}[1m])))`;
    const d = await prom!.query(q);
    expect(d.result).to.have.length(1);
    expect(d.result[0].metric).to.deep.equal({ service_name: SERVICE, span_name: `POST ${ROUTE}` });
    const v = Number(d.result[0].value[1]);
    expect(v).to.be.greaterThan(lo);
    expect(v).to.be.at.most(hi);
    // routelens's own histogram, in seconds, agrees: p95 in (0.5, 0.75]
    const own = await prom!.query(`histogram_quantile(0.95, sum by (le) (rate(routelens_route_duration_seconds_bucket{service_name="${SERVICE}"}[1m])))`);
    const s = Number(own.result[0].value[1]);
    expect(s).to.be.greaterThan(0.5);
    expect(s).to.be.at.most(0.75);
    // and the windowed summary carries routelens's p95 itself
    const summary = await prom!.query(`routelens_route_latency_seconds{service_name="${SERVICE}",quantile="0.95",window="5m"}`);
    expect(Number(summary.result[0].value[1])).to.be.closeTo(0.58, 0.58 * 0.0055);
  });

  it('Jaeger returns non-empty p95 latencies, calls and error rates for the service from Prometheus', async () => {
    const get = async (kind: string, extra: Record<string, string>): Promise<{ op: string | undefined; values: number[] }[]> => {
      const u = new URL(`/api/metrics/${kind}`, jaeger!.queryUrl);
      for (const [k, v] of Object.entries({
        service: SERVICE,
        spanKind: 'server',
        groupByOperation: 'true',
        lookback: '300000',
        step: '1000',
        ratePer: '60000',
        ...extra,
      }))
        u.searchParams.set(k, v);
      const res = await fetch(u);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${u} -> ${res.status}: ${text.slice(0, 300)}`);
      const fam = JSON.parse(text) as JaegerFamily;
      return (fam.metrics ?? []).map((m) => ({
        op: m.labels.find((l) => l.name === 'operation')?.value,
        values: m.metricPoints.map((p) => p.gaugeValue?.doubleValue).filter((x): x is number => typeof x === 'number' && Number.isFinite(x)),
      }));
    };
    const latencies = await waitFor(
      async () => {
        const series = await get('latencies', { quantile: '0.95' });
        return series.some((s) => s.values.length > 0) ? series : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'Jaeger /api/metrics/latencies' },
    );
    expect(latencies.map((s) => s.op)).to.deep.equal([`POST ${ROUTE}`]);
    const values = latencies[0]!.values;
    // points whose 1m rate window saw only a partial round can differ; most lie in the p95 bucket
    const inBucket = values.filter((v) => v > 400 && v <= 800);
    expect(inBucket.length).to.be.greaterThan(0);
    const calls = await get('calls', {});
    expect(calls[0]?.values.some((v) => v > 0)).to.equal(true);
    const errors = await get('errors', {});
    const rates = errors[0]?.values ?? [];
    expect(rates.length).to.be.greaterThan(0);
    for (const r of rates) expect(r).to.be.within(0, 1);
    expect(rates.some((r) => Math.abs(r - 0.05) < 0.02)).to.equal(true); // 5 of every 100 are errors
  });
});
