/**
 * Two routelens instances each get half of the spans (real OpenTelemetry JS SDK), a third gets all of them; each
 * sends its route metrics through a metrics pipeline (`otlp` over gRPC, `otlphttp`) to a test sink. The decoded
 * exponential histograms of the two halves merge into exactly the third's: same buckets, same percentiles.
 */
import { expect } from 'chai';
import * as os from 'node:os';
import { ExpoHistogram } from '../../src/pdata/expo-histogram';
import { decodeMetricsRequest, type DecodedMetricsRequest } from '../support/metrics-scrape';
import { OTLP_METRIC_NAMES } from '../../src/connectors/routelatency/otlp-metrics';
import { distributions, rng } from '../support/route-spans';
import { waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { makeSdkSpans, exportSdkSpans, routesApi, routelensYaml, type SpanSpec } from '../support/sdk-spans';

const SERVICE = 'merge-svc';
const QUANTILES = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

function yaml(sink: OtlpSink, exporter: 'otlp' | 'otlphttp', temporality: 'CUMULATIVE' | 'DELTA'): string {
  const exporters =
    exporter === 'otlp'
      ? `exporters:\n  otlp:\n    endpoint: ${sink.grpcEndpoint}\n    tls: { insecure: true }\n    retry_on_failure: { initial_interval: 100ms }\n`
      : `exporters:\n  otlphttp:\n    endpoint: ${sink.httpEndpoint}\n    retry_on_failure: { initial_interval: 100ms }\n`;
  return routelensYaml({
    connector: `    windows: [1m, 5m]\n    metrics:\n      flush_interval: 200ms\n      aggregation_temporality: AGGREGATION_TEMPORALITY_${temporality}`,
    exporters,
    metricsExporters: [exporter],
  });
}

function decoded(sink: OtlpSink): DecodedMetricsRequest[] {
  return sink.requests.filter((r) => r.path === '/v1/metrics').flatMap((r) => decodeMetricsRequest(r.body));
}

/** Duration points of one route in every request a sink got, oldest first. */
function points(sink: OtlpSink, route: string): ExpoHistogram[] {
  const out: ExpoHistogram[] = [];
  for (const req of decoded(sink)) {
    for (const m of req.metrics) {
      if (m.name !== OTLP_METRIC_NAMES.duration) continue;
      for (const p of m.expo) if (p.attributes['service.name'] === SERVICE && p.attributes['http.route'] === route) out.push(p.sketch);
    }
  }
  return out;
}

describe('OTLP route metrics of several routelens instances merge exactly', function () {
  this.timeout(120_000);
  const sinks: OtlpSink[] = [];
  const instances: RunningRoutelens[] = [];

  after(async () => {
    for (const rl of instances) await rl.stop();
    for (const s of sinks) await s.stop();
  });

  it('half + half (cumulative over gRPC, delta over HTTP) = all, bucket for bucket', async () => {
    const [sinkA, sinkB, sinkAll] = await Promise.all([new OtlpSink().start(), new OtlpSink().start(), new OtlpSink().start()]);
    sinks.push(sinkA, sinkB, sinkAll);
    const a = await startRoutelens(yaml(sinkA, 'otlp', 'CUMULATIVE'));
    instances.push(a);
    const b = await startRoutelens(yaml(sinkB, 'otlphttp', 'DELTA'));
    instances.push(b);
    const all = await startRoutelens(yaml(sinkAll, 'otlp', 'CUMULATIVE'));
    instances.push(all);

    // two routes, bimodal and heavy-tailed latencies
    const r = rng(42);
    const specs: SpanSpec[] = [];
    for (let i = 0; i < 3000; i++) {
      const heavy = i % 3 === 0;
      const ms = Math.round((heavy ? distributions.pareto! : distributions.bimodal!)(r) * 1000) / 1000;
      specs.push({ route: heavy ? '/search' : '/items/{id}', ms, error: i % 97 === 0 });
    }
    const spans = await makeSdkSpans(SERVICE, specs);
    const halfA = spans.filter((_, i) => i % 2 === 0);
    const halfB = spans.filter((_, i) => i % 2 === 1);
    const url = (rl: RunningRoutelens): string => `http://127.0.0.1:${rl.httpPort()}`;
    // B gets its half in two parts, so its deltas span several flushes
    await exportSdkSpans(url(a), halfA);
    await exportSdkSpans(url(b), halfB.slice(0, 700));
    await exportSdkSpans(url(all), spans);
    await waitFor(async () => (points(sinkB, '/search').length > 0 ? true : undefined), { timeoutMs: 20_000, what: 'a first delta of B' });
    await exportSdkSpans(url(b), halfB.slice(700));

    for (const route of ['/items/{id}', '/search']) {
      const n = specs.filter((s) => s.route === route).length;
      const nA = halfA.filter((s) => s.attributes['http.route'] === route).length;
      // cumulative: wait for a point with every span; delta: for deltas adding up to every span
      const lastFull = async (sink: OtlpSink, count: number): Promise<ExpoHistogram | undefined> => points(sink, route).find((p) => p.count === count);
      const pa = await waitFor(() => lastFull(sinkA, nA), { timeoutMs: 20_000, what: `A's point of ${route}` });
      const pAll = await waitFor(() => lastFull(sinkAll, n), { timeoutMs: 20_000, what: `the point of ${route} with all spans` });
      const deltas = await waitFor(
        async () => {
          const ps = points(sinkB, route);
          return ps.reduce((t, p) => t + p.count, 0) === n - nA ? ps : undefined;
        },
        { timeoutMs: 20_000, what: `B's deltas of ${route}` },
      );
      expect(deltas.length, 'B sent more than one delta').to.be.greaterThan(1);
      const merged = new ExpoHistogram({ wide: true });
      merged.merge(pa);
      for (const d of deltas) merged.merge(d);
      const m = merged.toOtlp();
      const o = pAll.toOtlp();
      expect(m.positive, route).to.deep.equal(o.positive);
      expect([m.count, m.zeroCount, m.min, m.max, m.scale]).to.deep.equal([o.count, o.zeroCount, o.min, o.max, o.scale]);
      expect(m.sum).to.be.closeTo(o.sum, 1e-9 * o.sum);
      expect(merged.quantiles(QUANTILES), route).to.deep.equal(pAll.quantiles(QUANTILES));
      // and the one instance's sketch is what its query API reports (6 significant digits)
      const row = (await routesApi(all.queryUrl(), { window: '5m' })).find((x) => x.route === route);
      expect(row?.count).to.equal(n);
      expect(row?.p99_ms).to.be.closeTo(pAll.quantile(0.99), pAll.quantile(0.99) * 1e-5);
    }

    // what identifies an instance, and the metric shapes
    const req = decoded(sinkAll).at(-1) as DecodedMetricsRequest;
    expect(req.resource['service.name']).to.equal('routelens');
    expect(req.resource['service.instance.id']).to.match(/^[0-9a-f-]{36}$/);
    expect(req.resource['host.name']).to.equal(os.hostname());
    const byName = new Map(req.metrics.map((m) => [m.name, m]));
    expect(byName.get(OTLP_METRIC_NAMES.duration)).to.deep.include({ kind: 'exponentialHistogram', unit: 'ms', temporality: 2 });
    expect(byName.get(OTLP_METRIC_NAMES.requests)).to.deep.include({ kind: 'sum', monotonic: true, temporality: 2 });
    const errors = byName.get(OTLP_METRIC_NAMES.errors)?.sums.reduce((t, s) => t + s.value, 0);
    expect(errors).to.equal(specs.filter((s) => s.error).length);
    expect(decoded(sinkB).every((x) => x.metrics.every((mm) => mm.temporality === 1))).to.equal(true);
    expect(sinkA.requests.every((x) => x.transport === 'grpc')).to.equal(true);
    expect(sinkB.requests.every((x) => x.transport === 'http' && x.path === '/v1/metrics')).to.equal(true);
  });

  it('flushes once more on shutdown', async () => {
    const sink = await new OtlpSink().start();
    sinks.push(sink);
    const rl = await startRoutelens(
      routelensYaml({
        connector: '    windows: [1m]\n    metrics:\n      flush_interval: 1h',
        exporters: `exporters:\n  otlphttp:\n    endpoint: ${sink.httpEndpoint}\n`,
        metricsExporters: ['otlphttp'],
      }),
    );
    await exportSdkSpans(
      `http://127.0.0.1:${rl.httpPort()}`,
      await makeSdkSpans(SERVICE, [
        { route: '/x', ms: 12 },
        { route: '/x', ms: 30 },
      ]),
    );
    expect(sink.requests.filter((x) => x.path === '/v1/metrics')).to.have.length(0);
    await rl.stop();
    const p = points(sink, '/x');
    expect(p).to.have.length(1);
    expect([p[0]?.count, p[0]?.min, p[0]?.max]).to.deep.equal([2, 12, 30]);
  });
});
