/**
 * Prometheus across replicas, as docs/prometheus-across-replicas.md says to query it: a real Prometheus scrapes
 * three replicas that received the spans round-robin; summing the replicas' bucket series per route (`sum by (le,
 * route labels)`) and taking `histogram_quantile` gives, for every route, a p99 in the bucket where the cluster
 * API's exact p99 is (the bucket bound is PromQL's accuracy), and counts equal to the cluster API's. Both the
 * routelens series (`routelens_route_duration_seconds`) and the spanmetrics-compatible ones Jaeger's Monitor tab
 * reads.
 */
import { expect } from 'chai';
import { clusterWorkload, encodeWorkload, replicaYaml, type ReplicaPorts } from '../support/cluster';
import { freePorts, waitFor } from '../support/free-port';
import { startPrometheus, type PrometheusInstance } from '../support/prometheus';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { postTraces } from '../support/trace-requests';
import type { RoutesResponse } from '../../src/connectors/routelatency/query';
import { ROUTE_DEFAULT_BUCKETS_MS, SPANMETRICS_DEFAULT_BUCKETS_MS } from '../../src/connectors/routelatency/config';
import { relativeErrorAtScale, SKETCH_SCALE } from '../../src/pdata/expo-histogram';

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** The bucket `(lower, upper]` of `bounds` that holds `v` (upper Infinity past the last bound). */
function bucketAround(bounds: readonly number[], v: number): [number, number] {
  let lower = 0;
  for (const b of bounds) {
    if (v <= b) return [lower, b];
    lower = b;
  }
  return [lower, Infinity];
}

describe('Prometheus across replicas: the documented PromQL against the cluster API', function () {
  this.timeout(120_000);
  let replicas: RunningRoutelens[] = [];
  let prom: PrometheusInstance | undefined;

  after(async () => {
    await prom?.stop();
    for (const r of replicas) await r.stop();
  });

  it("sum by (le, route) of the replicas' buckets: counts equal, p99 within the bucket of the exact one, for every route", async () => {
    const free = await freePorts(9);
    const ports: ReplicaPorts[] = [0, 1, 2].map((i) => ({ grpc: free[3 * i] as number, http: free[3 * i + 1] as number, query: free[3 * i + 2] as number }));
    const peers = ports.map((p) => `127.0.0.1:${p.query}`);
    replicas = [];
    for (const p of ports) replicas.push(await startRoutelens(replicaYaml(p, { peers, handoff: false })));
    const spans = clusterWorkload(50, { traces: 4000, routes: 25, services: 3 });
    for (let i = 0; i < spans.length; i += 100) {
      const r = await postTraces(`http://127.0.0.1:${ports[(i / 100) % 3]?.http}/v1/traces`, encodeWorkload(spans.slice(i, i + 100)));
      expect(r.status).to.equal(200);
    }
    prom = await startPrometheus({ scrapeTargets: peers, scrapeIntervalS: 1, waitForFirstScrape: true });
    const p = prom;
    await waitFor(
      async () => {
        const r = (await p.query('sum(routelens_route_duration_seconds_count)')) as { result: VectorSample[] };
        return Number(r.result[0]?.value[1] ?? 0) === spans.length ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'Prometheus to have scraped every span from the three replicas' },
    );
    const cluster = (await (await fetch(`http://${peers[0]}/api/v1/routes?window=5m&limit=1000&scope=cluster`)).json()) as RoutesResponse & {
      partial: boolean;
    };
    expect(cluster.partial).to.equal(false);
    expect(cluster.routes).to.have.length(25);
    const bound = relativeErrorAtScale(SKETCH_SCALE);

    const byRoute = async (query: string, key: (m: Record<string, string>) => string): Promise<Map<string, number>> =>
      new Map(((await p.query(query)) as { result: VectorSample[] }).result.map((s) => [key(s.metric), Number(s.value[1])]));
    const routeKey = (m: Record<string, string>): string => `${m.service_name} ${m.http_method} ${m.http_route}`;
    const p99 = await byRoute(
      'histogram_quantile(0.99, sum by (le, service_name, http_method, http_route) (routelens_route_duration_seconds_bucket))',
      routeKey,
    );
    const counts = await byRoute('sum by (service_name, http_method, http_route) (routelens_route_duration_seconds_count)', routeKey);
    const spanKey = (m: Record<string, string>): string => `${m.service_name} ${m.span_name}`;
    const spanP99 = await byRoute(
      'histogram_quantile(0.99, sum by (le, service_name, span_name) (traces_span_metrics_duration_milliseconds_bucket{span_kind="SPAN_KIND_SERVER"}))',
      spanKey,
    );
    for (const r of cluster.routes) {
      const key = `${r.service} ${r.method} ${r.route}`;
      expect(counts.get(key), key).to.equal(r.count);
      // The exact p99 (the API's, within the sketch's relative error) and PromQL's are in the same bucket.
      const exact = r.p99_ms as number;
      const [lower, upper] = bucketAround(ROUTE_DEFAULT_BUCKETS_MS, exact / (1 + bound));
      const [, upper2] = bucketAround(ROUTE_DEFAULT_BUCKETS_MS, exact * (1 + bound));
      expect((p99.get(key) as number) * 1000, key).to.be.within(lower, Math.max(upper, upper2));
      const [sl, su] = bucketAround(SPANMETRICS_DEFAULT_BUCKETS_MS, exact / (1 + bound));
      const [, su2] = bucketAround(SPANMETRICS_DEFAULT_BUCKETS_MS, exact * (1 + bound));
      expect(spanP99.get(`${r.service} ${r.method} ${r.route}`), key).to.be.within(sl, Math.max(su, su2));
    }
    // What PromQL cannot give: the bucket bound is wide (here a route's PromQL p99 is off the exact one by up to
    // the width of its bucket); the cluster API's is within 0.54 %.
    const worst = Math.max(
      ...cluster.routes.map((r) => Math.abs((p99.get(`${r.service} ${r.method} ${r.route}`) as number) * 1000 - (r.p99_ms as number)) / (r.p99_ms as number)),
    );
    expect(worst).to.be.greaterThan(bound);
  });
});
