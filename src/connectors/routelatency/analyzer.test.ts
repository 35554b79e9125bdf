/**
 * The connector's trace analysis end to end in process: OTLP batches in (spans of one request split over
 * batches), `GET /api/v1/why` out, and the same answer from connectors merged as the primary merges workers.
 */
import { expect } from 'chai';
import pino from 'pino';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import type { WhyAnswer } from '../../analysis/why';
import { FakeClock } from '../../../test/support/route-spans';
import { BASE_MS, traceBatch, type OtlpResourceSpec, type OtlpSpanSpec } from '../../../test/support/otlp-traces';
import { routeLatencyConfigSchema, type RouteLatencyConfig } from './config';
import { RouteLatencyConnector, mergeQueryStates, type RouteLatencySnapshot } from './factory';

const ITEMS = 'SELECT items.id FROM items WHERE items.order_id = ?';

function parse(raw: unknown): { config: RouteLatencyConfig; issues: string[] } {
  const issues = new ConfigErrorList();
  const config = routeLatencyConfigSchema.parse(raw, 'connectors.routelatency', issues);
  return { config, issues: issues.items.map((i) => `${i.path}: ${i.message}`) };
}

function connector(clock: FakeClock, raw: unknown = {}): RouteLatencyConnector {
  return new RouteLatencyConnector(
    { id: 'routelatency', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
    parse(raw).config,
    { traces: undefined, metrics: undefined },
    clock,
  );
}

/** One request of GET /orders/{id}: `items` sequential 10 ms queries after a 5 ms one; `ms` long in all. */
function orderRequest(ms: number, items: number, node: string): { children: OtlpSpanSpec[]; root: OtlpSpanSpec; attrs: Record<string, string> } {
  const children: OtlpSpanSpec[] = [
    {
      id: 2,
      parent: 1,
      kind: 'client',
      name: 'SELECT',
      start: 1,
      end: 6,
      attrs: { 'db.system': 'sqlite', 'db.statement': 'SELECT * FROM orders WHERE id = ?' },
    },
  ];
  for (let i = 0; i < items; i++) {
    children.push({
      id: 10 + i,
      parent: 1,
      kind: 'client',
      name: 'SELECT',
      start: 7 + i * 11,
      end: 17 + i * 11,
      attrs: { 'db.system': 'sqlite', 'db.statement': ITEMS },
    });
  }
  const root: OtlpSpanSpec = {
    id: 1,
    kind: 'server',
    name: 'GET /orders/{id}',
    start: 0,
    end: ms,
    attrs: { 'http.method': 'GET', 'http.route': '/orders/{id}', 'http.status_code': 200 },
  };
  return { children, root, attrs: { 'k8s.node.name': node, 'service.version': '2.0' } };
}

/**
 * 80 fast requests (30–39 ms, one query) and 20 slow ones (300–870 ms, an N+1 of 20 items; the five slowest, the
 * only ones above the route's p95, on node-3), each trace's children one batch before its root.
 */
async function feed(conns: RouteLatencyConnector[], clock: FakeClock): Promise<void> {
  for (let t = 1; t <= 100; t++) {
    const k = t - 81;
    const req = k >= 0 ? orderRequest(300 + 30 * k, 20, k >= 15 ? 'node-3' : 'node-1') : orderRequest(30 + (t % 10), 0, 'node-1');
    const res = (spans: OtlpSpanSpec[]): OtlpResourceSpec[] => [{ service: 'orders', attrs: req.attrs, spans }];
    const c = conns[t % conns.length] as RouteLatencyConnector;
    await c.consumeTraces(traceBatch(t, res(req.children), BASE_MS + t * 1000), {});
    clock.advance(200);
    await c.consumeTraces(traceBatch(t, res([req.root]), BASE_MS + t * 1000), {});
    clock.advance(200);
    for (const x of conns) x.analyzer?.expire(clock.now());
  }
  clock.advance(5000);
  for (const x of conns) x.analyzer?.expire(clock.now());
}

function why(
  c: { routeQuery: { handleQuery(p: string, q: URLSearchParams): unknown } },
  query = 'service=orders&method=GET&route=/orders/{id}&window=5m',
): { status: number; body: WhyAnswer & { error?: string } } {
  return c.routeQuery.handleQuery('/api/v1/why', new URLSearchParams(query)) as { status: number; body: WhyAnswer & { error?: string } };
}

describe('routelatency: trace analysis and /api/v1/why', () => {
  it('requests whose children came in an earlier batch are analysed whole; the answer names the N+1 and the node', async () => {
    const clock = new FakeClock(BASE_MS);
    const c = connector(clock);
    await c.start();
    await feed([c], clock);
    const { status, body } = why(c);
    expect(status).to.equal(200);
    expect(body).to.include({ count: 100, analysed: 100 });
    const n1 = body.n_plus_one[0];
    expect(n1).to.deep.include({ kind: 'db', fingerprint: ITEMS, repeats: 20, requests_share: 0.2, cost_ms: 200 });
    expect(body.statements.map((s) => [s.fingerprint, s.calls_per_request])).to.deep.equal([
      [ITEMS, 4],
      ['SELECT * FROM orders WHERE id = ?', 1],
    ]);
    const attr = body.slow_vs_fast.find((x) => x.kind === 'attribute');
    expect(attr).to.deep.include({ attribute: 'k8s.node.name', value: 'node-3', slow_count: 5, slow_requests: 5, fast_count: 0, ratio: null });
    expect(body.summary).to.match(/N\+1 on SELECT items\.id FROM items WHERE items\.order_id = \? × 20/);
    expect(c.analyzer?.stats()).to.include({ tracesInFlight: 0, spansInFlight: 0, lateSpans: 0, orphanSpans: 0 });
    await c.shutdown();
  });

  it('connectors merged as the primary merges workers answer exactly as one connector', async () => {
    const oneClock = new FakeClock(BASE_MS);
    const one = connector(oneClock);
    await feed([one], oneClock);
    const clock = new FakeClock(BASE_MS);
    const workers = [connector(clock), connector(clock)];
    await feed(workers, clock);
    const snapshots = workers.map((w) => JSON.parse(JSON.stringify(w.snapshotQueryState())) as RouteLatencySnapshot);
    const merged = mergeQueryStates(parse({}).config, snapshots, clock);
    const a = why(one).body;
    const b = why(merged).body;
    // examples may name another request of equal cost
    const strip = (x: WhyAnswer): unknown => ({
      ...x,
      statements: x.statements.map((s) => ({ ...s, example_trace_id: '' })),
      n_plus_one: x.n_plus_one.map((n) => ({ ...n, example_trace_id: '', example_span_ids: [] })),
    });
    expect(strip(b)).to.deep.equal(strip(a));
    expect(b.analysed).to.equal(100);
    expect(b.slow_vs_fast.length).to.be.greaterThan(0);
  });

  it('client errors: 400 for missing or unknown parameters, 404 for an unknown route, a method found when unique', async () => {
    const clock = new FakeClock(BASE_MS);
    const c = connector(clock);
    await feed([c], clock);
    expect(why(c, 'route=/orders/{id}').status).to.equal(400);
    expect(why(c, 'service=orders&route=/orders/{id}&bogus=1').status).to.equal(400);
    expect(why(c, 'service=orders&route=/orders/{id}&window=7m').status).to.equal(400);
    expect(why(c, 'service=orders&route=/nope').status).to.equal(404);
    const noMethod = why(c, 'service=orders&route=/orders/{id}');
    expect(noMethod.status).to.equal(200);
    expect(noMethod.body.method).to.equal('GET');
  });

  it('analysis.enabled: false copies nothing and answers 404 naming the setting', async () => {
    const clock = new FakeClock(BASE_MS);
    const c = connector(clock, { analysis: { enabled: false } });
    await feed([c], clock);
    expect(c.analyzer).to.equal(undefined);
    const r = why(c);
    expect(r.status).to.equal(404);
    expect(r.body.error).to.contain('analysis.enabled: false');
    expect(c.snapshotQueryState()).to.not.have.property('analysis');
  });

  it('config: defaults, and bad values named by their path', () => {
    expect(parse({}).config.analysis).to.deep.equal({
      enabled: true,
      decision_wait: 2000,
      max_trace_wait: 15_000,
      max_traces: 200_000,
      max_spans_per_trace: 1000,
      max_memory_mib: 64,
      max_clock_skew: 10_000,
      max_routes: 10_000,
      n_plus_one: { min_repeats: 5, min_total: 50 },
    });
    expect(parse({ analysis: { decision_wait: '11s', max_trace_wait: '1s', n_plus_one: { min_repeats: 1 }, bogus: 1 } }).issues).to.deep.equal([
      'connectors.routelatency.analysis.bogus: unknown key "bogus"; expected one of enabled, decision_wait, max_trace_wait, max_traces, max_spans_per_trace, max_memory_mib, max_clock_skew, max_routes, n_plus_one',
      'connectors.routelatency.analysis.n_plus_one.min_repeats: invalid value number 1; expected an integer >= 2',
      'connectors.routelatency.analysis.decision_wait: invalid value "11s"; expected at most 10s',
      'connectors.routelatency.analysis.max_trace_wait: invalid value "1s"; expected at least decision_wait (11s)',
    ]);
  });
});
