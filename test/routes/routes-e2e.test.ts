/**
 * Route latency end to end: the real OpenTelemetry JS SDK sends server spans whose durations follow known
 * distributions through the OTLP receiver; the query API must give percentiles within 1 % of the exact ones.
 * Also the `routes` and `analyze` commands, and the `file` exporter feeding `analyze`.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { distributions, rng } from '../support/route-spans';
import type { RoutesResponse } from '../../src/connectors/routelatency/query';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { runRoutelensCli } from '../support/process';

/** Run the CLI without blocking this process's event loop (routelens runs in-process here). */
const cli = runRoutelensCli;

const QUANTILES: [string, number][] = [
  ['p50_ms', 0.5],
  ['p90_ms', 0.9],
  ['p95_ms', 0.95],
  ['p99_ms', 0.99],
  ['p999_ms', 0.999],
];

function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

function msToHr(ms: number): [number, number] {
  const ns = Math.round(ms * 1e6);
  return [Math.floor(ns / 1e9), ns % 1e9];
}

describe('route latency through the receiver (real JS SDK)', function () {
  this.timeout(120_000);
  let rl: RunningRoutelens;
  let tmp: string;
  const sent = new Map<string, number[]>();
  const N = 3000;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-routes-'));
    rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
connectors:
  routelatency: {}
exporters:
  file:
    path: ${tmp}/capture.jsonl
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [routelatency, file]
`);
    const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${rl.grpcPort()}` });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'accuracy-svc' }),
      spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, maxQueueSize: 100_000, scheduledDelayMillis: 50 })],
    });
    const tracer = provider.getTracer('accuracy');
    const base = Date.now() - 10_000;
    let i = 0;
    for (const [name, dist] of Object.entries(distributions)) {
      const r = rng(name.length * 7919);
      const route = `/${name}/{id}`;
      const durations: number[] = [];
      for (let k = 0; k < N; k++) {
        const ms = dist(r);
        durations.push(ms);
        const start = base + (i++ % 5000);
        const span = tracer.startSpan(`GET ${route}`, {
          kind: SpanKind.SERVER,
          startTime: msToHr(start),
          attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': k % 50 === 0 ? 503 : 200 },
        });
        if (k % 50 === 0) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end(msToHr(start + ms));
      }
      sent.set(
        route,
        durations.sort((a, b) => a - b),
      );
    }
    // a CLIENT span must not count as a route
    tracer.startSpan('SELECT users', { kind: SpanKind.CLIENT }).end();
    await provider.forceFlush();
    await provider.shutdown();
  });

  after(async () => {
    await rl?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reports p50/p90/p95/p99/p99.9 within 1 % of the exact percentiles for every distribution', async () => {
    const res = await fetch(`${rl.queryUrl()}/api/v1/routes?window=5m&service=accuracy-svc&limit=100`);
    expect(res.status).to.equal(200);
    const body = (await res.json()) as RoutesResponse;
    expect(body.routes.map((r) => r.route).sort()).to.deep.equal([...sent.keys()].sort());
    for (const r of body.routes) {
      const exact = sent.get(r.route) as number[];
      expect(r.count, r.route).to.equal(N);
      expect(r.method).to.equal('GET');
      expect(r.route_source).to.equal('http.route');
      expect(r.error_rate, r.route).to.be.closeTo(N / 50 / N, 1e-9);
      expect(r.status_classes['5xx']).to.equal(N / 50);
      for (const [key, q] of QUANTILES) {
        const want = exactQuantile(exact, q);
        const got = (r as unknown as Record<string, number>)[key] as number;
        expect(Math.abs(got - want) / want, `${r.route} ${key}: got ${got}, exact ${want}`).to.be.at.most(0.01);
      }
      expect(r.min_ms).to.be.closeTo(exact[0] as number, (exact[0] as number) * 0.01);
      expect(r.max_ms).to.be.closeTo(exact[exact.length - 1] as number, (exact[exact.length - 1] as number) * 0.01);
    }
  });

  it('`routelens routes` prints the table and --json prints the API answer', async () => {
    const table = await cli('routes', '--url', rl.queryUrl(), '--service', 'accuracy-svc', '--sort', 'p99');
    expect(table.status, table.stderr).to.equal(0);
    const lines = table.stdout.trim().split('\n');
    const header = lines.findIndex((l) => /SERVICE\s+METHOD\s+ROUTE\s+COUNT/.test(l));
    expect(header, table.stdout).to.be.at.least(0);
    const rows = lines.slice(header + 1).filter((l) => l.includes('accuracy-svc'));
    expect(rows).to.have.length(sent.size);
    // sorted by p99, descending
    const byP99 = [...sent.entries()].sort((a, b) => exactQuantile(b[1], 0.99) - exactQuantile(a[1], 0.99)).map(([route]) => route);
    rows.forEach((row, i) => expect(row).to.include(byP99[i] as string));
    const json = await cli('routes', '--url', rl.queryUrl(), '--json', '--window', '1m');
    expect(json.status, json.stderr).to.equal(0);
    const parsed = JSON.parse(json.stdout) as RoutesResponse;
    expect(parsed.window).to.equal('1m');
    expect(parsed.routes).to.have.length(sent.size);
    const bad = await cli('routes', '--url', rl.queryUrl(), '--window', '7x');
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/HTTP 400/);
    const down = await cli('routes', '--url', 'http://127.0.0.1:1');
    expect(down.status).to.equal(1);
    expect(down.stderr).to.match(/cannot reach routelens/);
  });

  it('`routelens analyze` on the file exporter capture gives the same counts and percentiles as the live API', async () => {
    const live = (await (await fetch(`${rl.queryUrl()}/api/v1/routes?window=5m&service=accuracy-svc`)).json()) as RoutesResponse;
    const out = await cli('analyze', path.join(tmp, 'capture.jsonl'), '--json');
    expect(out.status, out.stderr).to.equal(0);
    const offline = JSON.parse(out.stdout) as RoutesResponse & { spans: number };
    expect(offline.spans).to.equal(sent.size * N + 1);
    for (const r of live.routes) {
      const o = offline.routes.find((x) => x.route === r.route);
      expect(o, r.route).to.not.equal(undefined);
      expect(o?.count).to.equal(r.count);
      expect(o?.p99_ms).to.equal(r.p99_ms);
      expect(o?.rate_per_s).to.be.greaterThan(0);
    }
  });
});
