/**
 * End to end with the real Python SDK, zero-code: runtime_app.py under `opentelemetry-instrument` sends traces
 * and metrics to routelens (OTLP/gRPC), whose metrics pipeline exports to the routelatency connector (and on to
 * an OTLP sink). The runtime API's CPU is compared with /proc/<pid>/stat for a route that burns CPU, its RSS with
 * VmRSS; the app samples a fifth of its traces, and the API flags the route where spans and the unsampled
 * request counts diverge.
 */
import { expect } from 'chai';
import { waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { ProcSampler } from '../support/proc';
import { startZeroCodeApp, type PythonApp } from '../support/python';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import type { ServiceRuntimeResponse } from '../../src/runtimeview/query';

describe('runtime view end to end: a zero-code Python service through routelens', function () {
  this.timeout(240_000);
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let app: PythonApp | undefined;

  before(async () => {
    sink = await new OtlpSink().start();
    rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
connectors:
  routelatency: {}
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
    metrics: { receivers: [otlp], exporters: [otlp, routelatency] }
    logs: { receivers: [otlp], exporters: [otlp] }
`);
  });
  after(async () => {
    await app?.stop();
    await rl?.stop();
    await sink?.stop();
  });

  async function runtime(window: string): Promise<ServiceRuntimeResponse> {
    const res = await fetch(`${rl.queryUrl()}/api/v1/services/orders/runtime?window=${window}`);
    expect(res.status).to.equal(200);
    return (await res.json()) as ServiceRuntimeResponse;
  }

  it('CPU within 10 % of /proc, RSS within 5 % of VmRSS, unsampled rates beside sampled spans, metrics forwarded', async () => {
    app = await startZeroCodeApp({
      OTEL_SERVICE_NAME: 'orders',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.grpcPort()}`,
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.2',
    });
    const pid = (JSON.parse(await (await fetch(`${app.baseUrl}/healthz`)).text()) as { pid: number }).pid;
    const proc = new ProcSampler(pid, 50);
    try {
      for (let i = 0; i < 200; i++) expect((await fetch(`${app.baseUrl}/orders/${(i % 100) + 1}`)).status).to.equal(200);
      const until = Date.now() + 5000;
      while (Date.now() < until) expect((await fetch(`${app.baseUrl}/cpu?ms=200`)).status).to.equal(200);
      // Wait for a point taken at least one export interval after the last request: the export that was due
      // during it then holds every request.
      const lastRequestMs = Date.now();
      const body = await waitFor(
        async () => {
          const b = await runtime('1m');
          const t = b.instances[0]?.last_point_time;
          return typeof t === 'string' && Date.parse(t) >= lastRequestMs + 1000 ? b : undefined;
        },
        { timeoutMs: 20_000, what: 'a runtime point one export interval after the last request' },
      );
      proc.stop();
      expect(body.instances).to.have.length(1);
      const i = body.instances[0]!;
      const end = Date.parse(i.last_point_time as string);
      const start = end - i.covered_s * 1000;
      const expected = (proc.cpuAt(end) - proc.cpuAt(start)) / i.covered_s;
      expect(i.cpu_cores).to.be.a('number');
      expect(Math.abs((i.cpu_cores as number) - expected) / expected, `view ${i.cpu_cores} cores, /proc ${expected}`).to.be.below(0.1);
      const vm = proc.nearest(end).rssBytes;
      expect(Math.abs((i.memory_rss_bytes as number) - vm) / vm, `view ${i.memory_rss_bytes} B, VmRSS ${vm} B`).to.be.below(0.05);
      expect(i).to.include({ stale: false, multi_writer: false, instance_source: 'service.instance.id' });

      const orders = body.routes.find((r) => r.route === '/orders/<int:order_id>');
      expect(orders?.metric?.requests).to.equal(200);
      expect(orders?.spans?.count).to.be.below(120);
      expect(orders?.diverges).to.equal(true);

      // The metrics went on to the sink as well.
      expect(sink.metricsBodies().length).to.be.at.least(3);
      expect(app.output(), 'no export error in the app').not.to.match(/Failed to export|Exception while exporting/);
    } finally {
      proc.stop();
    }
  });
});
