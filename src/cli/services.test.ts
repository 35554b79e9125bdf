import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RuntimeInstanceJson, ServiceRuntimeResponse } from '../runtimeview/query';
import { formatBytes, formatServices, servicesCommand } from './services';

const NOW = Date.UTC(2026, 11, 1, 12, 5, 0);

function instance(over: Partial<RuntimeInstanceJson>): RuntimeInstanceJson {
  return {
    instance: '5f0c2e1a-0000-4000-8000-0000000000a1',
    instance_source: 'service.instance.id',
    namespace: '',
    k8s: {},
    host_name: null,
    cpu_cores: 0.3125,
    memory_rss_bytes: 140_509_184,
    memory_rss_slope_bytes_per_min: 1_258_291,
    gc_collections_per_min: 34,
    gc_gen2_per_min: 1,
    threads: 9,
    open_fds: 12,
    last_seen: new Date(NOW - 4000).toISOString(),
    stale: false,
    gc_collections_per_min_by_generation: { '0': 30, '1': 3, '2': 1 },
    memory_virtual_bytes: null,
    involuntary_context_switches_per_s: null,
    memory_rss_slope_points: 5,
    multi_writer: false,
    writers: 1,
    resets: 0,
    interval_s: 60,
    covered_s: 240,
    points: 5,
    same_process_as: [],
    last_point_time: null,
    sources: { cpu: 'process.cpu.time', memory: 'process.memory.usage', threads: 'process.thread.count' },
    resource: {},
    routes: [],
    ...over,
  };
}

const RESPONSE: ServiceRuntimeResponse = {
  service: 'orders',
  window: '5m',
  generated_at: new Date(NOW).toISOString(),
  instances: [
    instance({}),
    instance({
      instance: 'uid-2',
      k8s: { 'k8s.pod.name': 'orders-7d9f-x2' },
      cpu_cores: null,
      memory_rss_bytes: null,
      stale: true,
      multi_writer: true,
      writers: 2,
      last_seen: new Date(NOW - 600_000).toISOString(),
    }),
  ],
  routes: [
    {
      method: 'GET',
      route: '/orders/<int:order_id>',
      metric: { requests: 240, rate_per_s: 1, errors_5xx: 24, errors_5xx_per_s: 0.1, error_5xx_ratio: 0.1, mean_ms: 10, metric: 'http.server.duration' },
      spans: { count: 24, rate_per_s: 0.1, error_rate: 0, p95_ms: 12.34, p99_ms: 20 },
      span_to_metric_ratio: 0.1,
      diverges: true,
    },
    {
      method: 'GET',
      route: '/healthz',
      metric: null,
      spans: { count: 3, rate_per_s: 0.01, error_rate: 0, p95_ms: 0.5, p99_ms: 0.6 },
      span_to_metric_ratio: null,
      diverges: null,
    },
  ],
};

const EXPECTED = [
  'orders (window 5m)',
  '  INSTANCE                               CPU     RSS   RSS/MIN  GC/MIN  GEN2/MIN  THREADS  FDS  SEEN',
  '  5f0c2e1a-0000-4000-8000-0000000000a1  0.31  134MiB  +1.20MiB    34.0      1.00        9   12  4s ago',
  '  orders-7d9f-x2                           -       -  +1.20MiB    34.0      1.00        9   12  10m ago  [stale, 2 writers]',
  '  METHOD  ROUTE                   SPANS/S     P95     P99  REQ/S  5XX/S',
  '  GET     /orders/<int:order_id>     0.10  12.3ms  20.0ms   1.00   0.10  [spans 0.10× the requests: sampled upstream?]',
  '  GET     /healthz                   0.01   500µs   600µs      -      -',
  '',
  '',
].join('\n');

describe('routelens services', () => {
  it('prints each service’s instances with their runtime beside its routes, flags included', () => {
    expect(formatServices([RESPONSE], { nowMs: NOW })).to.equal(EXPECTED);
  });

  it('formats bytes with binary units', () => {
    expect([
      formatBytes(512),
      formatBytes(140_509_184),
      formatBytes(1.5 * 2 ** 30),
      formatBytes(-2048, true),
      formatBytes(2048, true),
      formatBytes(null),
    ]).to.deep.equal(['512B', '134MiB', '1.50GiB', '-2.00KiB', '+2.00KiB', '-']);
  });

  it('asks the API for every service the spans or the metrics know, and prints them', async () => {
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      asked.push(req.url ?? '');
      const url = new URL(req.url ?? '/', 'http://x');
      const body =
        url.pathname === '/api/v1/services'
          ? { window: '5m', services: [{ service: 'web' }] }
          : url.pathname === '/api/v1/runtime'
            ? { window: '5m', services: [{ service: 'orders' }] }
            : url.pathname === '/api/v1/services/orders/runtime'
              ? RESPONSE
              : { ...RESPONSE, service: 'web', instances: [], routes: [] };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      let text = '';
      const out = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
      await servicesCommand({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, window: '5m', json: false, color: false, out, nowMs: NOW });
      expect(asked.sort()).to.deep.equal([
        '/api/v1/runtime?window=5m',
        '/api/v1/services/orders/runtime?window=5m',
        '/api/v1/services/web/runtime?window=5m',
        '/api/v1/services?window=5m',
      ]);
      expect(text).to.equal(
        `${EXPECTED}web (window 5m)\n  no runtime metrics (run the service with opentelemetry-instrument and a metrics pipeline exporting to routelatency)\n\n`,
      );
    } finally {
      server.close();
    }
  });
});
