/**
 * Through the real pipeline (SDK → OTLP/HTTP receiver → routelatency connector → routequery /metrics):
 * OpenMetrics exemplars carry trace ids that were sent, and 10 000 distinct raw paths stay a bounded number of
 * series, with the overflow route as one series.
 */
import { expect } from 'chai';
import { parseExposition, samplesOf, type ParsedExposition } from '../support/metrics-scrape';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { routelensYaml, sendSpans } from '../support/sdk-spans';

async function scrape(rl: RunningRoutelens, openMetrics: boolean): Promise<{ p: ParsedExposition; contentType: string; text: string }> {
  const res = await fetch(`${rl.queryUrl()}/metrics`, { headers: openMetrics ? { accept: 'application/openmetrics-text; version=1.0.0' } : {} });
  const text = await res.text();
  return { p: parseExposition(text), contentType: res.headers.get('content-type') ?? '', text };
}

describe('route metrics on /metrics: exemplars and cardinality', function () {
  this.timeout(120_000);
  let rl: RunningRoutelens;

  before(async () => {
    rl = await startRoutelens(routelensYaml({ connector: '    windows: [1m, 5m]\n    max_routes_per_service: 50' }));
  });
  after(async () => {
    await rl?.stop();
  });

  it('OpenMetrics exemplars on histogram buckets carry trace and span ids that were sent', async () => {
    const base = `http://127.0.0.1:${rl.httpPort()}`;
    const latencies = [1, 3, 5, 7, 9, 30, 70, 150, 300, 600, 900, 1200, 1800, 3000, 7000, 12_000, 20_000];
    const sent = await sendSpans(
      base,
      'exemplar-svc',
      latencies.map((ms) => ({ route: '/slow/{id}', ms })),
    );
    const ids = new Map(sent.map((s) => [s.spanContext().traceId, s.spanContext().spanId]));

    const plain = await scrape(rl, false);
    expect(plain.contentType).to.match(/^text\/plain; version=0\.0\.4/);
    expect(plain.text).to.not.include('trace_id');

    const { p, contentType } = await scrape(rl, true);
    expect(contentType).to.match(/^application\/openmetrics-text; version=1\.0\.0/);
    expect(p.eof).to.equal(true);
    for (const [name, unitDiv] of [
      ['traces_span_metrics_duration_milliseconds_bucket', 1],
      ['routelens_route_duration_seconds_bucket', 1000],
    ] as const) {
      const buckets = samplesOf(p, name, { service_name: 'exemplar-svc' });
      expect(buckets.length, name).to.be.greaterThan(10);
      let prev = 0;
      let withExemplar = 0;
      for (const b of buckets) {
        const own = b.value - prev; // spans in this bucket alone
        prev = b.value;
        if (own === 0) {
          expect(b.exemplar, `${name} le=${b.labels.le}`).to.equal(undefined);
          continue;
        }
        // every bucket holding a span shows one of them, with its duration and ids
        const ex = b.exemplar;
        expect(ex, `${name} le=${b.labels.le}`).to.not.equal(undefined);
        expect(ids.get(ex!.labels.trace_id as string), 'a sent trace id').to.equal(ex!.labels.span_id);
        const span = sent.find((s) => s.spanContext().traceId === ex!.labels.trace_id)!;
        const ms = span.duration[0] * 1000 + span.duration[1] / 1e6;
        expect(ex!.value).to.be.closeTo(ms / unitDiv, 1e-9);
        const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
        expect(ex!.value).to.be.at.most(le);
        expect(ex!.timestampS).to.be.closeTo(span.endTime[0] + span.endTime[1] / 1e9, 1e-3);
        withExemplar++;
      }
      expect(withExemplar, name).to.be.greaterThan(5);
    }
  });

  it('10 000 distinct raw paths make a bounded number of series, the overflow route one series', async () => {
    const base = `http://127.0.0.1:${rl.httpPort()}`;
    const word = (i: number): string => {
      let s = '';
      for (let n = i; ; n = Math.floor(n / 26) - 1) {
        s = String.fromCharCode(97 + (n % 26)) + s;
        if (n < 26) break;
      }
      return s;
    };
    // 5000 id-like paths (one templated route) + 5000 distinct word paths (each its own route until the cap)
    await sendSpans(
      base,
      'busy-svc',
      Array.from({ length: 10_000 }, (_, i) => ({ path: i % 2 === 0 ? `/users/${i * 7919}/cart` : `/wiki/${word(i)}`, ms: 1 + (i % 40) })),
    );
    const { p } = await scrape(rl, false);
    const calls = samplesOf(p, 'traces_span_metrics_calls_total', { service_name: 'busy-svc' });
    expect(calls).to.have.length(50 + 1);
    expect(calls.reduce((t, s) => t + s.value, 0)).to.equal(10_000);
    const other = calls.filter((s) => s.labels.span_name === '__other__');
    expect(other).to.have.length(1);
    expect(other[0]?.value).to.equal(5000 - 49);
    expect(calls.find((s) => s.labels.span_name === 'GET /users/{id}/cart')?.value).to.equal(5000);
    const busy = p.samples.filter((s) => s.labels.service_name === 'busy-svc');
    for (const s of busy) for (const v of Object.values(s.labels)) expect(v).to.not.match(/\/users\/\d/);
    // every family is per route: bounded by routes × (kinds × statuses seen) × buckets
    const perRoute = 1 + (16 + 3) + (14 + 3) + 1 + 1 + (5 + 2);
    expect(busy).to.have.length(51 * perRoute);
    expect(samplesOf(p, 'routelens_route_requests_total', { service_name: 'busy-svc', http_route: '__other__' })).to.have.length(1);
    const services = (await (await fetch(`${rl.queryUrl()}/api/v1/services?window=5m`)).json()) as {
      services: { service: string; overflow_spans: number; routes: number }[];
    };
    expect(services.services.find((s) => s.service === 'busy-svc')).to.deep.include({ overflow_spans: 5000 - 49, routes: 51 });
  });
});
