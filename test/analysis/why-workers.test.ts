/**
 * Trace analysis under `--workers`: two services, each exporting over its own keep-alive connection (the
 * connections land on different workers), one calling the other within the same traces, children of every request
 * sent one batch before the request itself. Each request is analysed in the worker its service talks to, the
 * primary merges the workers' analysis state, and `GET /api/v1/why` answers exactly as a single process does.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { traceRequestFromJson } from '../../src/pdata/otlp-json';
import { freePorts, waitFor } from '../support/free-port';
import { BASE_MS, traceJson, type OtlpResourceSpec, type OtlpSpanSpec } from '../support/otlp-traces';
import { repoRoot, startProcess, type ProcessHandle } from '../support/process';
import { postTraces } from '../support/trace-requests';

const TRACES = 40;
const ITEMS = 'SELECT items.id FROM items WHERE items.order_id = %(param_1)s';

interface Running {
  proc: ProcessHandle;
  ports: number[];
}

async function start(workers: number): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `routelens-why-${workers}-`));
  const ports = await freePorts(3);
  fs.writeFileSync(
    path.join(dir, 'config.yaml'),
    `receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${ports[1]} }
connectors:
  routelatency:
    analysis: { decision_wait: 300ms }
exporters:
  debug: { verbosity: normal }
extensions:
  routequery: { endpoint: 127.0.0.1:${ports[2]} }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug, routelatency] }
`,
  );
  const proc = startProcess(
    process.execPath,
    [path.join(repoRoot(), 'bin/routelens.js'), 'run', '--config', path.join(dir, 'config.yaml'), '--workers', String(workers)],
    {
      name: `routelens-why-${workers}`,
    },
  );
  await waitFor(async () => ((await fetch(`http://127.0.0.1:${ports[2]}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), {
    timeoutMs: 30_000,
    what: `routelens with ${workers} workers ready`,
  });
  return { proc, ports };
}

/**
 * Trace t: front's GET /shop/{id} (0..d) calls orders over HTTP (client span 5..d−5); orders' GET /orders/{id}
 * runs one query and, in every fourth trace, an N+1 of 10 item queries. Durations differ per trace, so every
 * example the answer picks is unique.
 */
function trace(t: number): { front: OtlpSpanSpec[][]; orders: OtlpSpanSpec[][] } {
  const n1 = t % 4 === 0;
  const od = n1 ? 150 + t : 20 + t / 4;
  const fd = od + 10;
  const ordersKids: OtlpSpanSpec[] = [
    {
      id: 11,
      parent: 10,
      kind: 'client',
      start: 5.5,
      end: 8 + t / 10,
      attrs: { 'db.system': 'postgresql', 'db.statement': 'SELECT * FROM orders WHERE id = %(id_1)s', 'net.peer.name': 'pg' },
    },
  ];
  if (n1)
    for (let i = 0; i < 10; i++)
      ordersKids.push({
        id: 20 + i,
        parent: 10,
        kind: 'client',
        start: 10 + i * 12,
        end: 20 + i * 12,
        attrs: { 'db.system': 'postgresql', 'db.statement': ITEMS, 'net.peer.name': 'pg' },
      });
  const ordersRoot: OtlpSpanSpec = {
    id: 10,
    parent: 2,
    kind: 'server',
    name: 'GET /orders/{id}',
    start: 5,
    end: 5 + od,
    attrs: { 'http.method': 'GET', 'http.route': '/orders/{id}', 'http.status_code': 200 },
  };
  const frontKids: OtlpSpanSpec[] = [
    { id: 2, parent: 1, kind: 'client', start: 4, end: 6 + od, attrs: { 'http.method': 'GET', 'http.url': `http://orders:8000/orders/${t}` } },
  ];
  const frontRoot: OtlpSpanSpec = {
    id: 1,
    kind: 'server',
    name: 'GET /shop/{id}',
    start: 0,
    end: fd,
    attrs: { 'http.method': 'GET', 'http.route': '/shop/{id}', 'http.status_code': 200 },
  };
  return { front: [frontKids, [frontRoot]], orders: [ordersKids, [ordersRoot]] };
}

/** Each service over one keep-alive connection: its children in one request, its request spans in the next. */
async function send(r: Running): Promise<void> {
  const url = `http://127.0.0.1:${r.ports[1]}/v1/traces`;
  const agents = { front: new http.Agent({ keepAlive: true, maxSockets: 1 }), orders: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
  const base = BASE_MS; // the same span times for every run, so float rounding agrees too
  const post = async (service: 'front' | 'orders', batches: [number, OtlpSpanSpec[]][]): Promise<void> => {
    const json = batches.map(
      ([t, spans]) =>
        JSON.parse(traceJson(t, [{ service, attrs: { 'service.version': '1.0' }, spans } as OtlpResourceSpec], base + t)) as { resourceSpans: unknown[] },
    );
    const body = traceRequestFromJson(JSON.stringify({ resourceSpans: json.flatMap((j) => j.resourceSpans) }));
    const res = await postTraces(url, body, { agent: agents[service] });
    expect(res.status).to.equal(200);
  };
  for (let t = 1; t <= TRACES; t += 10) {
    const ts = Array.from({ length: 10 }, (_, i) => t + i);
    for (const service of ['orders', 'front'] as const) {
      await post(
        service,
        ts.map((x) => [x, trace(x)[service][0] as OtlpSpanSpec[]]),
      );
      await post(
        service,
        ts.map((x) => [x, trace(x)[service][1] as OtlpSpanSpec[]]),
      );
    }
  }
  agents.front.destroy();
  agents.orders.destroy();
}

async function why(r: Running, query: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${r.ports[2]}/api/v1/why?${query}`);
  expect(res.status, query).to.equal(200);
  return (await res.json()) as Record<string, unknown>;
}

/** An answer with its receive-time fields (version first/last seen) checked to be today and replaced. */
function timeless(a: Record<string, unknown>): Record<string, unknown> {
  const versions = (a.versions as Record<string, unknown>[]).map((v) => {
    for (const k of ['first_seen', 'last_seen']) expect(Date.now() - Date.parse(v[k] as string)).to.be.within(0, 120_000);
    return { ...v, first_seen: 'checked', last_seen: 'checked' };
  });
  return { ...a, versions };
}

describe('trace analysis under --workers', function () {
  this.timeout(120_000);
  const answers: Record<number, Record<string, Record<string, unknown>>> = {};

  for (const workers of [1, 2]) {
    it(`${workers} worker(s): every request of both services analysed, the N+1 and the call to orders named`, async () => {
      const r = await start(workers);
      try {
        await send(r);
        const queries = { orders: 'service=orders&method=GET&route=/orders/{id}&window=5m', front: 'service=front&route=/shop/{id}' };
        await waitFor(
          async () => {
            const [o, f] = await Promise.all([why(r, queries.orders), why(r, queries.front)]);
            return o.analysed === TRACES && f.analysed === TRACES ? true : undefined;
          },
          { timeoutMs: 20_000, what: 'every request analysed' },
        );
        const orders = await why(r, queries.orders);
        const front = await why(r, queries.front);
        const n1 = (orders.n_plus_one as Record<string, unknown>[])[0];
        expect(n1).to.deep.include({ kind: 'db', fingerprint: 'SELECT items.id FROM items WHERE items.order_id = ?', repeats: 10, requests_share: 0.25 });
        const http = (front.breakdown as Record<string, unknown>[]).find((b) => b.category === 'http');
        expect(http).to.deep.include({ target: 'orders:8000' });
        expect(http?.share as number).to.be.greaterThan(0.8);
        expect(orders.count).to.equal(TRACES);
        answers[workers] = { orders: timeless(orders), front: timeless(front) };
        const metrics = await (await fetch(`http://127.0.0.1:${r.ports[2]}/metrics`)).text();
        const analysed = [...metrics.matchAll(/^routelens_analysis_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
        expect(analysed).to.equal(2 * TRACES);
        if (workers > 1) {
          // the debug exporter logged each batch with its worker: the two services' connections went to two workers
          const seen = new Map<string, Set<number>>();
          for (const line of r.proc.output().split('\n')) {
            if (!line.includes('"ResourceSpans"')) continue;
            const l = JSON.parse(line) as { worker: number; service: string };
            let set = seen.get(l.service);
            if (set === undefined) seen.set(l.service, (set = new Set()));
            set.add(l.worker);
          }
          expect([...(seen.get('orders') ?? [])]).to.have.length(1);
          expect([...(seen.get('front') ?? [])]).to.have.length(1);
          expect([...seen.get('orders')!][0]).to.not.equal([...seen.get('front')!][0]);
        }
      } finally {
        await r.proc.stop();
      }
    });
  }

  it('2 workers answer exactly as 1', () => {
    expect(answers[2]).to.deep.equal(answers[1]);
  });
});
