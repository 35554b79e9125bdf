/**
 * `routelens run --workers 2`: two worker processes share the ports; the primary's query API merges the
 * workers' route sketches and sums their counters. Clients on separate connections land on both workers.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import { freePorts, waitFor } from '../support/free-port';
import { startProcess, type ProcessHandle } from '../support/process';
import { metricValue } from '../support/routelens';
import type { RoutesResponse } from '../../src/connectors/routelatency/query';

const root = path.resolve(__dirname, '../../..');

describe('routelens run --workers 2', function () {
  this.timeout(60_000);
  let proc: ProcessHandle;
  let dir: string;
  let ports: number[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-workers-'));
    ports = await freePorts(3);
    fs.writeFileSync(
      path.join(dir, 'config.yaml'),
      `receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${ports[0]} }
      http: { endpoint: 127.0.0.1:${ports[1]} }
connectors:
  routelatency: {}
exporters:
  debug: {}
extensions:
  routequery: { endpoint: 127.0.0.1:${ports[2]} }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug, routelatency] }
`,
    );
    proc = startProcess(process.execPath, [path.join(root, 'bin/routelens.js'), 'run', '--config', path.join(dir, 'config.yaml'), '--workers', '2'], {
      name: 'routelens-workers',
    });
    await waitFor(async () => ((await fetch(`http://127.0.0.1:${ports[2]}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'routelens workers ready',
    });
  });

  after(async () => {
    await proc?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('spreads connections over both workers and answers with merged routes and summed counters', async () => {
    const clients = 12;
    const perClient = 25;
    for (let c = 0; c < clients; c++) {
      // one connection per client (no keep-alive across clients), as separate services would
      const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${ports[1]}/v1/traces`, httpAgentOptions: { keepAlive: false } });
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      const tracer = provider.getTracer('workers');
      for (let i = 0; i < perClient; i++) {
        const start = Date.now() - 1000;
        tracer
          .startSpan('GET /orders/{id}', {
            kind: SpanKind.SERVER,
            startTime: start,
            attributes: { 'http.route': '/orders/{id}', 'http.request.method': 'GET' },
          })
          .end(start + 10 + c);
      }
      await provider.forceFlush();
      await provider.shutdown();
    }
    const total = clients * perClient;
    const metrics = await (await fetch(`http://127.0.0.1:${ports[2]}/metrics`)).text();
    expect(metricValue(metrics, 'otelcol_receiver_accepted_spans_total')).to.equal(total);
    const routes = (await (await fetch(`http://127.0.0.1:${ports[2]}/api/v1/routes?window=5m`)).json()) as RoutesResponse;
    expect(routes.routes).to.have.length(1);
    expect(routes.routes[0]?.count).to.equal(total);
    // p50 over the merged sketches: durations are 10..21 ms, 25 of each
    expect(routes.routes[0]?.p50_ms).to.be.within(15 * 0.99, 16 * 1.01);
    // summary quantiles come from the merged sketches, not a sum of the workers' quantiles
    const p50 = metricValue(metrics, 'routelens_route_latency_seconds', { quantile: '0.5', http_route: '/orders/{id}' });
    expect(p50 * 1000).to.be.closeTo(routes.routes[0]?.p50_ms as number, 1e-3); // the API rounds to 4 decimals
    expect(metricValue(metrics, 'routelens_route_latency_seconds_count', { http_route: '/orders/{id}' })).to.equal(total);
    // both workers took part: their debug exporters logged batches
    const out = proc.output();
    expect(out).to.match(/"worker":0[^\n]*"msg":"Traces"/);
    expect(out).to.match(/"worker":1[^\n]*"msg":"Traces"/);
  });

  it('stops every worker on SIGTERM and exits 0', async () => {
    await proc.stop();
    const exit = await proc.exited;
    expect(exit.code).to.equal(0);
  });
});
