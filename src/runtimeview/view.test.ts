import { expect } from 'chai';
import { metricsRequest, processMetrics, type ProcessSample } from '../../test/support/otlp-metrics';
import type { ServiceRuntimeResponse, SpanRouteFigures } from './query';
import { RuntimeView } from './view';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;

function sample(i: number): ProcessSample {
  return { time: T0 + i * MIN, start: T0 - 1000, cpuUser: 10 + 6 * i, cpuSystem: 1 + 0.6 * i, rss: 100e6, threads: 9, fds: 12, gc: [100, 10, 1 + i] };
}

function request(i: number, requests: number, service = 'orders'): Uint8Array {
  const s = sample(i);
  return metricsRequest([
    {
      attrs: { 'service.name': service, 'service.instance.id': 'i-1', 'k8s.pod.name': 'orders-1', 'k8s.namespace.name': 'shop' },
      metrics: [
        ...processMetrics(s),
        {
          kind: 'histogram',
          name: 'http.server.duration',
          unit: 'ms',
          points: [
            {
              start: T0 - MIN,
              time: s.time,
              count: requests,
              sum: requests * 10,
              attrs: { 'http.method': 'GET', 'http.target': '/orders/<int:order_id>', 'http.status_code': 200 },
            },
          ],
        },
      ],
    },
  ]);
}

describe('runtimeview: RuntimeView', () => {
  it('decodes a copy: the caller may reuse its buffer as soon as offer returns', async () => {
    let now = T0;
    const view = new RuntimeView({ windowsMs: [MIN, 5 * MIN], clock: { now: () => now } });
    for (let i = 0; i < 3; i++) {
      const bytes = Buffer.from(request(i, 60 * (i + 1)));
      now = T0 + i * MIN + 10;
      expect(view.offer(bytes)).to.equal(true);
      bytes.fill(0xee); // a pooled buffer, reused
    }
    await view.drained();
    expect(view.stats).to.include({ accepted: 3, ingested: 3, decodeErrors: 0, dropped: 0, queuedRequests: 0, queuedBytes: 0 });
    const res = view.query('/api/v1/services/orders/runtime', new URLSearchParams({ window: '5m' }), undefined, T0 + 2 * MIN + 10);
    expect(res.status).to.equal(200);
    const body = res.body as ServiceRuntimeResponse;
    expect(body.instances).to.have.length(1);
    expect(body.instances[0]).to.include({
      instance: 'i-1',
      cpu_cores: 0.11,
      memory_rss_bytes: 100e6,
      gc_gen2_per_min: 1,
      threads: 9,
      open_fds: 12,
      stale: false,
      points: 3,
    });
    expect(body.instances[0]!.k8s).to.deep.equal({ 'k8s.pod.name': 'orders-1', 'k8s.namespace.name': 'shop' });
  });

  it('offerKept: the same state and answers as offer, from the bytes handed over (a Uint8Array or a Buffer)', async () => {
    let now = T0;
    const clock = { now: () => now };
    const copied = new RuntimeView({ windowsMs: [MIN, 5 * MIN], clock });
    const kept = new RuntimeView({ windowsMs: [MIN, 5 * MIN], clock });
    for (let i = 0; i < 4; i++) {
      const bytes = request(i, 60 * (i + 1));
      now = T0 + i * MIN + 10;
      expect(copied.offer(bytes)).to.equal(true);
      expect(kept.offerKept(i % 2 === 0 ? bytes : Buffer.from(bytes))).to.equal(true);
    }
    await Promise.all([copied.drained(), kept.drained()]);
    expect(kept.stats).to.deep.equal(copied.stats);
    expect(kept.snapshot()).to.deep.equal(copied.snapshot());
    const q = (v: RuntimeView) => v.query('/api/v1/services/orders/runtime', new URLSearchParams({ window: '5m' }), undefined, T0 + 3 * MIN + 10);
    expect(q(kept)).to.deep.equal(q(copied));
    expect((q(kept).body as ServiceRuntimeResponse).instances).to.have.length(1);
  });

  it('drops and counts requests when its queue is full, never waiting', async () => {
    const view = new RuntimeView({ windowsMs: [MIN], maxQueueRequests: 2 });
    const results = [0, 1, 2, 3].map((i) => view.offer(request(i, 1)));
    expect(results).to.deep.equal([true, true, false, false]);
    expect(view.stats).to.include({ accepted: 2, dropped: 2 });
    await view.drained();
    expect(view.offer(request(4, 1))).to.equal(true);
    const bytesView = new RuntimeView({ windowsMs: [MIN], maxQueueBytes: 10 });
    expect(bytesView.offer(request(0, 1))).to.equal(false);
    expect(bytesView.stats.dropped).to.equal(1);
  });

  it('counts a request it cannot decode and goes on with the next', async () => {
    const view = new RuntimeView({ windowsMs: [MIN] });
    view.offer(Buffer.from([0x0a, 0xff, 0x01]));
    view.offer(request(0, 1));
    await view.drained();
    expect(view.stats).to.include({ decodeErrors: 1, ingested: 1 });
    expect(view.state.instances.size).to.equal(1);
  });

  it('answers 400 for an unknown window or parameter and 404 for a service nobody knows', () => {
    const view = new RuntimeView({ windowsMs: [MIN, 5 * MIN] });
    expect(view.query('/api/v1/services/orders/runtime', new URLSearchParams({ window: '2m' }))).to.deep.equal({
      status: 400,
      body: { error: 'unknown window "2m"; expected one of 1m, 5m' },
    });
    expect(view.query('/api/v1/services/orders/runtime', new URLSearchParams({ sort: 'x' })).status).to.equal(400);
    expect(view.query('/api/v1/services/nope/runtime', new URLSearchParams())).to.deep.equal({
      status: 404,
      body: { error: 'service not found: "nope" (no runtime metrics and no spans)' },
    });
    // Known to the span analysis only: an answer without instances.
    const spans = (service: string) => (service === 'web' ? [] : undefined);
    expect(view.query('/api/v1/services/web/runtime', new URLSearchParams(), spans)).to.deep.include({ status: 200 });
    expect(RuntimeView.handles('/api/v1/services/a%2Fb/runtime')).to.equal(true);
    expect(RuntimeView.handles('/api/v1/services//runtime')).to.equal(false);
    expect(RuntimeView.handles('/api/v1/services')).to.equal(false);
  });

  it('sets the unsampled request rate beside the span rate and flags a divergence (a sign of sampling upstream)', async () => {
    const view = new RuntimeView({ windowsMs: [5 * MIN] });
    // 60 requests a minute counted by the histogram.
    for (let i = 0; i < 4; i++) view.offer(request(i, 60 * (i + 1)));
    await view.drained();
    const now = T0 + 3 * MIN;
    const spanRoutes = (rate: number) => (): SpanRouteFigures[] => [
      { method: 'GET', route: '/orders/<int:order_id>', count: rate * 240, rate_per_s: rate, error_rate: 0, p95_ms: 12, p99_ms: 20 },
      { method: 'GET', route: '/only-spans', count: 5, rate_per_s: 0.1, error_rate: 0, p95_ms: 1, p99_ms: 1 },
    ];
    const sampled = view.query('/api/v1/services/orders/runtime', new URLSearchParams(), spanRoutes(0.1), now).body as ServiceRuntimeResponse;
    expect(sampled.routes).to.deep.equal([
      {
        method: 'GET',
        route: '/only-spans',
        metric: null,
        spans: { count: 5, rate_per_s: 0.1, error_rate: 0, p95_ms: 1, p99_ms: 1 },
        span_to_metric_ratio: null,
        diverges: null,
      },
      {
        method: 'GET',
        route: '/orders/<int:order_id>',
        metric: { requests: 240, rate_per_s: 1, errors_5xx: 0, errors_5xx_per_s: 0, error_5xx_ratio: 0, mean_ms: 10, metric: 'http.server.duration' },
        spans: { count: 24, rate_per_s: 0.1, error_rate: 0, p95_ms: 12, p99_ms: 20 },
        span_to_metric_ratio: 0.1,
        diverges: true,
      },
    ]);
    const whole = view.query('/api/v1/services/orders/runtime', new URLSearchParams(), spanRoutes(0.95), now).body as ServiceRuntimeResponse;
    expect(whole.routes[1]).to.include({ span_to_metric_ratio: 0.95, diverges: false });
  });
});

describe('runtimeview: instances that report one process', () => {
  it('marks instances whose RSS and CPU seconds agree at two or more exports, and no others', async () => {
    const view = new RuntimeView({ windowsMs: [5 * MIN] });
    const send = (id: string, i: number, cpuUser: number, rss: number) =>
      view.offer(
        metricsRequest([
          {
            attrs: { 'service.name': 'pf', 'service.instance.id': id },
            metrics: processMetrics({
              time: T0 + i * MIN + (id === 'w2' ? 700 : 0),
              start: T0 - 1000,
              cpuUser,
              cpuSystem: 0.2,
              rss,
              threads: 3,
              fds: 5,
              gc: [0, 0, 0],
            }),
          },
        ]),
      );
    for (let i = 0; i < 3; i++) {
      // w1 and w2 both report the arbiter's state (0.8 + 0.01 i s, 99 MB + 4 KiB i); w3 is a process of its own that
      // agrees with them once.
      send('w1', i, 0.8 + 0.01 * i, 99e6 + 4096 * i);
      send('w2', i, 0.8 + 0.01 * i, 99e6 + 4096 * i);
      send('w3', i, i === 0 ? 0.8 : 0.3 + i, i === 0 ? 99e6 : 50e6);
    }
    await view.drained();
    const body = view.query('/api/v1/services/pf/runtime', new URLSearchParams(), undefined, T0 + 3 * MIN).body as ServiceRuntimeResponse;
    expect(body.instances.map((i) => [i.instance, i.same_process_as])).to.deep.equal([
      ['w1', ['w2']],
      ['w2', ['w1']],
      ['w3', []],
    ]);
  });
});
