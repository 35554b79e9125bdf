/**
 * Rates under `--workers N` as a new user sees them: `npm start`-style processes with 1, 2 and 4 workers get the
 * same spans over many connections; every endpoint's `rate_per_s` is its count over the time the window covers,
 * and that time is the process's uptime (not 1 s, as when the primary answered from a store built per query).
 * Everything else the three processes answer must be identical: the merge is exact.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { freePorts, waitFor } from '../support/free-port';
import { repoRoot, startProcess, type ProcessHandle } from '../support/process';

interface Running {
  workers: number;
  proc: ProcessHandle;
  ports: number[];
  spawnedAt: number;
  /** When /healthz first answered 200: every worker had started its pipeline by then. */
  readyAt: number;
  dir: string;
}

const SERVICES = ['checkout', 'orders'];
const ROUTES = ['/a/{id}', '/b', '/c/{x}/{y}'];

async function start(workers: number): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `routelens-rates-${workers}-`));
  const ports = await freePorts(3);
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
  debug: { verbosity: basic }
extensions:
  routequery: { endpoint: 127.0.0.1:${ports[2]} }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug, routelatency] }
`,
  );
  const spawnedAt = Date.now();
  const proc = startProcess(
    process.execPath,
    [path.join(repoRoot(), 'bin/routelens.js'), 'run', '--config', path.join(dir, 'config.yaml'), '--workers', String(workers)],
    {
      name: `routelens-rates-${workers}`,
    },
  );
  await waitFor(async () => ((await fetch(`http://127.0.0.1:${ports[2]}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), {
    timeoutMs: 30_000,
    what: `routelens with ${workers} workers ready`,
  });
  return { workers, proc, ports, spawnedAt, readyAt: Date.now(), dir };
}

/** Every span sent (the same to each process): its route, ids and duration. */
const SENT: { service: string; route: string; traceId: string; spanId: string; ms: number }[] = [];

/** Ids from a counter, so every process gets the very same spans (and keeps the same exemplars). */
class CountingIds {
  #n = 0;
  generateTraceId(): string {
    return (++this.#n).toString(16).padStart(32, '0');
  }
  generateSpanId(): string {
    return this.#n.toString(16).padStart(16, '0');
  }
}

/** The same spans to every process: per service one connection per route, so they spread over the workers. */
async function send(r: Running, base: number, record: boolean): Promise<void> {
  const ids = new CountingIds();
  for (const service of SERVICES) {
    for (const [ri, route] of ROUTES.entries()) {
      const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${r.ports[1]}/v1/traces`, httpAgentOptions: { keepAlive: false } });
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': service }),
        idGenerator: ids,
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      const tracer = provider.getTracer('rates');
      for (let i = 0; i < 20; i++) {
        const start = base + i * 10;
        const span = tracer.startSpan(`GET ${route}`, {
          kind: SpanKind.SERVER,
          startTime: start,
          attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': i % 10 === 0 ? 503 : 200 },
        });
        if (i % 10 === 0) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end(start + 3 + ri * 7 + i);
        if (record) SENT.push({ service, route, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, ms: 3 + ri * 7 + i });
      }
      await provider.forceFlush();
      await provider.shutdown();
    }
  }
}

async function get(r: Running, pathAndQuery: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${r.ports[2]}${pathAndQuery}`);
  expect(res.status, pathAndQuery).to.equal(200);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * Checks the time-dependent fields of an answer against their definitions and returns the answer with them
 * replaced by what they were checked to be (`"checked"`), so the rest can be compared across processes.
 */
function checkTimes(r: Running, body: Record<string, unknown>, askedAt: number, answeredAt: number): Record<string, unknown> {
  const covered = body.covered_s as number;
  // The 5m window of a process younger than 5 minutes covers its uptime: from when its workers started (after
  // the spawn, before /healthz answered) to the query.
  expect(covered, `covered_s of ${r.workers} worker(s)`).to.be.within((askedAt - r.readyAt) / 1000 - 0.01, (answeredAt - r.spawnedAt) / 1000 + 0.01);
  expect(covered).to.be.greaterThan(2);
  const generated = Date.parse(body.generated_at as string);
  expect(generated).to.be.within(askedAt - 1, answeredAt + 1);
  const rates = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
    rows.map((row) => {
      expect(row.rate_per_s, JSON.stringify(row)).to.be.closeTo((row.count as number) / covered, 1e-3);
      return { ...row, rate_per_s: 'checked' };
    });
  const out: Record<string, unknown> = { ...body, covered_s: 'checked', generated_at: 'checked' };
  if (Array.isArray(body.routes)) out.routes = rates(body.routes as Record<string, unknown>[]);
  if (Array.isArray(body.services)) out.services = rates(body.services as Record<string, unknown>[]);
  if (Array.isArray(body.series)) {
    // Slots are aligned to absolute periods, so their count and rate depend on when spans arrived: each slot's
    // rate is its count over the part of the slot the process was up.
    out.series = (body.series as Record<string, unknown>[]).map((slot) => {
      expect(slot.rate_per_s as number).to.be.at.least(0);
      if ((slot.count as number) === 0) expect(slot.rate_per_s).to.equal(0);
      return 'checked';
    });
    expect((body.series as { count: number }[]).reduce((n, s) => n + s.count, 0)).to.equal((body.route as { count: number } | undefined)?.count ?? body.count);
  }
  if (Array.isArray(body.exemplars)) {
    // Each slot keeps its slowest spans, so which spans are kept depends on the slots they arrived in: every
    // exemplar must be a span of this route with its own duration, slowest first, the slowest span among them.
    const exemplars = body.exemplars as { trace_id: string; span_id: string; value_ms: number }[];
    const route = (body.routes as { service: string; route: string }[])[0] as { service: string; route: string };
    const sent = SENT.filter((x) => x.service === route.service && x.route === route.route);
    expect(exemplars.length).to.be.greaterThan(0);
    for (const e of exemplars) {
      const span = sent.find((x) => x.traceId === e.trace_id && x.spanId === e.span_id);
      expect(span, JSON.stringify(e)).to.not.equal(undefined);
      expect(e.value_ms).to.equal(span?.ms);
    }
    expect(exemplars.map((e) => e.value_ms)).to.deep.equal([...exemplars.map((e) => e.value_ms)].sort((a, b) => b - a));
    expect(exemplars[0]?.value_ms).to.equal(Math.max(...sent.map((x) => x.ms)));
    out.exemplars = 'checked';
  }
  return out;
}

describe('rates under --workers: count over the covered time, in every mode', function () {
  this.timeout(180_000);
  const running: Running[] = [];

  before(async () => {
    for (const workers of [1, 2, 4]) running.push(await start(workers));
    const base = Date.now() - 5_000;
    await Promise.all(running.map((r, i) => send(r, base, i === 0)));
    // Let every process be up a few seconds, so a covered time of 1 s (the old defect) cannot pass.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
  });

  after(async () => {
    for (const r of running) {
      await r.proc.stop();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
  });

  it('routes, services and each route answer the same in 1, 2 and 4 workers, with rates from the uptime', async () => {
    const views: Record<string, unknown>[][] = [];
    for (const r of running) {
      const view: Record<string, unknown>[] = [];
      for (const q of ['/api/v1/routes?window=5m&sort=route', '/api/v1/services?window=5m', '/api/v1/routes?window=1m&sort=p99']) {
        const askedAt = Date.now();
        const body = await get(r, q);
        view.push(checkTimes(r, body, askedAt, Date.now()));
      }
      const routes = (await get(r, '/api/v1/routes?window=5m&sort=route')).routes as { service: string; method: string; route: string; count: number }[];
      expect(routes.map((x) => `${x.service} ${x.route} ${x.count}`)).to.deep.equal(
        SERVICES.flatMap((s) => [...ROUTES].sort().map((route) => `${s} ${route} 20`)),
      );
      for (const route of routes) {
        const q = `/api/v1/routes/${encodeURIComponent(route.service)}/GET/${route.route.split('/').map(encodeURIComponent).join('/')}?window=5m`;
        const askedAt = Date.now();
        const body = await get(r, q);
        const route1 = body.route as Record<string, unknown>;
        const checked = checkTimes(r, { ...body, routes: [route1] }, askedAt, Date.now());
        view.push({ ...checked, route: (checked.routes as unknown[])[0], routes: undefined });
      }
      views.push(view);
    }
    expect(views[1], '2 workers against 1').to.deep.equal(views[0]);
    expect(views[2], '4 workers against 1').to.deep.equal(views[0]);
  });
});
