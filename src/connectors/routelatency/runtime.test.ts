/**
 * The connector as an exporter of a metrics pipeline: its runtime view answers /api/v1/services/{service}/runtime
 * with the span-based route figures of its store beside the metric counts, and the answer merged from workers'
 * snapshots equals the answer of one connector that received every request and span.
 */
import { expect } from 'chai';
import pino from 'pino';
import { Telemetry } from '../../core/telemetry';
import { ConfigErrorList } from '../../core/schema';
import { routeLatencyConfigSchema } from './config';
import { RouteLatencyConnector, mergeQueryStates } from './factory';
import { FakeClock, MutableSpan } from '../../../test/support/route-spans';
import { metricsRequest, processMetrics } from '../../../test/support/otlp-metrics';
import type { ServiceRuntimeResponse } from '../../runtimeview/query';
import { MetricsBatch } from '../../pdata/metrics-batch';

const config = routeLatencyConfigSchema.parse({}, 'connectors.routelatency', new ConfigErrorList());
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;

function connector(clock: FakeClock, telemetry = new Telemetry()): RouteLatencyConnector {
  return new RouteLatencyConnector(
    { id: 'routelatency', logger: pino({ level: 'silent' }), telemetry },
    config,
    { traces: undefined, metrics: undefined },
    clock,
  );
}

/** Export i of instance `id`: process metrics and 60 requests a minute to one route, 6 of them 5xx. */
function exportOf(id: string, i: number): Uint8Array {
  const time = T0 + i * MIN;
  const attrs = (status: number) => ({ 'http.method': 'GET', 'http.target': '/orders/<int:order_id>', 'http.status_code': status });
  return metricsRequest([
    {
      attrs: { 'service.name': 'orders', 'service.instance.id': id },
      metrics: [
        ...processMetrics({ time, start: T0 - MIN, cpuUser: 5 + 3 * i, cpuSystem: 0, rss: 5e7, threads: 4, fds: 9, gc: [i, 0, 0] }),
        {
          kind: 'histogram',
          name: 'http.server.duration',
          unit: 'ms',
          points: [
            { start: T0 - MIN, time, count: 54 * (i + 1), sum: 540 * (i + 1), attrs: attrs(200) },
            { start: T0 - MIN, time, count: 6 * (i + 1), sum: 60 * (i + 1), attrs: attrs(500) },
          ],
        },
      ],
    },
  ]);
}

function recordSpans(c: RouteLatencyConnector, n: number, at: number): void {
  const span = new MutableSpan();
  span.service = 'orders';
  span.resource.set('service.name', 'orders');
  span.attrs.set('http.route', '/orders/<int:order_id>');
  span.attrs.set('http.request.method', 'GET');
  span.attrs.set('http.response.status_code', 200);
  span.durationNs = 8e6;
  for (let i = 0; i < n; i++) c.store.record(span, at + i);
}

describe('routelatency: the runtime view behind a metrics pipeline', () => {
  it('serves /api/v1/services/{service}/runtime with the spans beside the unsampled counts, and counts on /metrics', async () => {
    const clock = new FakeClock(T0 - MIN);
    const telemetry = new Telemetry();
    const c = connector(clock, telemetry);
    for (let i = 0; i < 4; i++) await c.consumeMetrics(MetricsBatch.decode(exportOf('a', i)));
    await c.runtime.drained();
    // A tenth of the requests were traced (sampling upstream).
    recordSpans(c, 24, T0);
    clock.t = T0 + 3 * MIN;
    const res = (await c.routeQuery.handleQuery('/api/v1/services/orders/runtime', new URLSearchParams({ window: '5m' }))) as {
      status: number;
      body: ServiceRuntimeResponse;
    };
    expect(res.status).to.equal(200);
    expect(res.body.instances.map((i) => [i.instance, i.cpu_cores, i.memory_rss_bytes, i.threads, i.open_fds])).to.deep.equal([['a', 0.05, 5e7, 4, 9]]);
    expect(res.body.routes).to.have.length(1);
    const route = res.body.routes[0]!;
    expect(route.metric).to.include({ requests: 240, rate_per_s: 1, errors_5xx: 24, error_5xx_ratio: 0.1 });
    expect(route.spans?.count).to.equal(24);
    expect(route.diverges).to.equal(true);
    // The route API is still the store's.
    expect(((await c.routeQuery.handleQuery('/api/v1/routes', new URLSearchParams())) as { status: number }).status).to.equal(200);
    const families = (await telemetry.scrape()).filter((f) => f.name.startsWith('routelens_runtime_'));
    const value = (name: string, outcome?: string) =>
      families.find((f) => f.name === name)?.samples.find((s) => outcome === undefined || s.labels['outcome'] === outcome)?.value;
    expect(value('routelens_runtime_metrics_requests', 'accepted')).to.equal(4);
    expect(value('routelens_runtime_metrics_requests', 'dropped')).to.equal(0);
    expect(value('routelens_runtime_metric_points', 'recorded')).to.equal(4 * 10);
    expect(value('routelens_runtime_instances')).to.equal(1);
  });

  it('answers from workers’ snapshots merged as one connector that received every export', async () => {
    const clock = new FakeClock(T0 - MIN);
    const single = connector(clock);
    const workers = [connector(clock), connector(clock)];
    for (let i = 0; i < 6; i++) {
      for (const id of ['a', 'b']) {
        const bytes = exportOf(id, i);
        await single.consumeMetrics(MetricsBatch.decode(bytes));
        // Exports of one instance land on either worker (new connections are handed out round-robin).
        await workers[(i + (id === 'a' ? 0 : 1)) % 2]!.consumeMetrics(MetricsBatch.decode(bytes));
      }
    }
    await Promise.all([single, ...workers].map((c) => c.runtime.drained()));
    recordSpans(single, 10, T0);
    recordSpans(workers[0]!, 4, T0);
    recordSpans(workers[1]!, 6, T0);
    clock.t = T0 + 5 * MIN + 1000;
    const merged = mergeQueryStates(
      config,
      workers.map((w) => JSON.parse(JSON.stringify(w.snapshotQueryState())) as ReturnType<typeof w.snapshotQueryState>),
      clock,
    );
    for (const window of ['1m', '5m', '15m', '1h']) {
      const params = new URLSearchParams({ window });
      const want = await single.routeQuery.handleQuery('/api/v1/services/orders/runtime', params);
      const got = await merged.routeQuery.handleQuery('/api/v1/services/orders/runtime', params);
      expect(got).to.deep.equal(want);
      expect(await merged.routeQuery.handleQuery('/api/v1/runtime', params)).to.deep.equal(await single.routeQuery.handleQuery('/api/v1/runtime', params));
    }
  });
});
