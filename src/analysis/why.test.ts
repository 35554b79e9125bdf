/**
 * The per-route analysis state and the "why" answer, with exact expected values, and the merge property:
 * snapshots of several stores merged give the same answer as one store that saw every request.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { db, server } from '../../test/support/span-records';
import type { SpanRecord } from './span-record';
import { RouteAnalysisStore, routeKeyOf } from './route-analysis';
import { analyzeTrace, type RequestAnalysis } from './trace';
import { buildWhy, type WhyAnswer } from './why';

const ROUTE = { service: 'orders', method: 'GET', route: '/orders/{id}' };
const KEY = routeKeyOf(ROUTE.service, ROUTE.method, ROUTE.route);
const ORDERS = 'SELECT orders.id, orders.user_id FROM orders WHERE orders.id = %(id_1)s';
const ITEMS = 'SELECT items.id, items.sku FROM items WHERE items.order_id = %(param_1)s';
const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);

function traceId(i: number): string {
  return i.toString(16).padStart(32, '0');
}

/** A fast request: 50 ms, one 10 ms query. */
function fast(i: number, node: string, version = '1.0'): RequestAnalysis {
  const opts = { route: KEY, service: 'orders', version, resourceAttrs: { 'k8s.node.name': node } };
  const spans = [server(1, 0, 50, opts), db(2, 1, 10, 20, ORDERS, { service: 'orders', version })];
  return analyzeTrace(traceId(i), spans).requests[0] as RequestAnalysis;
}

/** A slow request: 400 ms, the order (4 ms) then its 24 items one by one (10 ms each). */
function slow(i: number, node: string, version = '1.0'): RequestAnalysis {
  const opts = { route: KEY, service: 'orders', version, resourceAttrs: { 'k8s.node.name': node } };
  const spans: SpanRecord[] = [server(1, 0, 400, opts), db(2, 1, 1, 5, ORDERS, { service: 'orders', version })];
  for (let k = 0; k < 24; k++) spans.push(db(10 + k, 1, 10 + k * 11, 20 + k * 11, ITEMS, { service: 'orders', version }));
  return analyzeTrace(traceId(i), spans).requests[0] as RequestAnalysis;
}

interface Recorded {
  req: RequestAnalysis;
  at: number;
}

function workload(): Recorded[] {
  const out: Recorded[] = [];
  for (let i = 0; i < 80; i++) out.push({ req: fast(i, 'node-1'), at: T0 + i * 100 });
  for (let i = 0; i < 20; i++) out.push({ req: slow(100 + i, i < 15 ? 'node-3' : 'node-1'), at: T0 + i * 100 + 50 });
  return out;
}

/** The latency store's view of the window: slow is above 300 ms, fast at or under 60 ms. */
function answer(store: RouteAnalysisStore, now: number, latency = { count: 100, p50: 60, p95: 300, p99: 400 }): WhyAnswer {
  return buildWhy({ ...ROUTE, window: '5m', latency, errorCount: 0, data: store.aggregate(ROUTE, 300_000, now) });
}

describe('why: per-route analysis answers', () => {
  it('a route with an N+1 on its slow requests, exact figures', () => {
    const store = new RouteAnalysisStore({ windowsMs: [60_000, 300_000] });
    for (const r of workload()) store.record(r.req, r.at);
    const a = answer(store, T0 + 20_000);
    expect(a).to.include({
      service: 'orders',
      method: 'GET',
      route: '/orders/{id}',
      window: '5m',
      count: 100,
      p50_ms: 60,
      p95_ms: 300,
      p99_ms: 400,
      analysed: 100,
    });
    // 12000 ms in all: DB 80 × 10 + 20 × (4 + 240) = 5680
    expect(a.breakdown.map((b) => [b.category, b.target, b.share, b.critical_path_share, b.requests_share])).to.deep.equal([
      ['self', '', 0.5267, 0.5267, 1],
      ['db', 'sqlite', 0.4733, 0.4733, 1],
    ]);
    const dbRow = a.breakdown[1]!;
    expect(dbRow.p50_ms).to.be.closeTo(10, 10 * 0.0055);
    expect(dbRow.p95_ms).to.be.closeTo(244, 244 * 0.0055);
    expect(a.statements.map((s) => [s.fingerprint, s.db_system, s.summary, s.calls_per_request, s.share, s.requests_share])).to.deep.equal([
      ['SELECT items.id, items.sku FROM items WHERE items.order_id = ?', 'sqlite', 'SELECT items', 4.8, 0.4, 0.2],
      ['SELECT orders.id, orders.user_id FROM orders WHERE orders.id = ?', 'sqlite', 'SELECT orders', 1, 0.07333, 1],
    ]);
    expect(a.statements[0]!.p99_ms).to.equal(10);
    // the costliest example: every slow request costs the same, the first one recorded is kept
    expect(a.statements[0]!.example_trace_id).to.equal(traceId(100));
    expect(a.n_plus_one).to.have.length(1);
    expect(a.n_plus_one[0]).to.deep.include({
      kind: 'db',
      fingerprint: 'SELECT items.id, items.sku FROM items WHERE items.order_id = ?',
      repeats: 24,
      max_repeats: 24,
      requests_share: 0.2,
      slow_requests_share: 1,
      cost_ms: 240,
      example_trace_id: traceId(100),
    });
    expect(a.n_plus_one[0]!.example_span_ids).to.have.length(10);
    const sf = a.slow_vs_fast.map((x) =>
      x.kind === 'attribute'
        ? [x.kind, x.attribute, x.value, x.slow_count, x.slow_requests, x.fast_count, x.fast_requests, x.ratio]
        : [x.kind, x.fingerprint, x.slow_calls_per_request, x.fast_calls_per_request, x.ratio],
    );
    expect(sf).to.deep.equal([
      ['statement', 'SELECT items.id, items.sku FROM items WHERE items.order_id = ?', 24, 0, null],
      ['attribute', 'k8s.node.name', 'node-3', 15, 20, 0, 80, null],
    ]);
    expect(a.summary).to.equal(
      'p99 400 ms (p50 60 ms, 100 requests); 53 % in its own code, 47 % DB (sqlite); N+1 on SELECT items.id, items.sku FROM items WHERE items.order_id = ? × 24 in 100 % of slow requests; slow requests run on k8s.node.name=node-3 (15 of 20 slow, none of 80 fast).',
    );
  });

  it('windows: requests older than the window are out of it', () => {
    const store = new RouteAnalysisStore({ windowsMs: [60_000, 300_000] });
    store.record(fast(1, 'n'), T0);
    store.record(fast(2, 'n'), T0 + 200_000);
    expect(store.aggregate(ROUTE, 300_000, T0 + 200_000)?.requests).to.equal(2);
    expect(store.aggregate(ROUTE, 60_000, T0 + 200_000)?.requests).to.equal(1);
    expect(store.aggregate(ROUTE, 300_000, T0 + 600_000)?.requests).to.equal(0);
  });

  it('versions: a new version with a slower p95 and a new statement, against the one before it', () => {
    const store = new RouteAnalysisStore({ windowsMs: [300_000] });
    for (let i = 0; i < 40; i++) store.record(fast(i, 'n', '1.0'), T0 + i * 10);
    for (let i = 0; i < 40; i++) store.record(slow(100 + i, 'n', '1.1'), T0 + 1000 + i * 10);
    const a = answer(store, T0 + 2000);
    expect(a.versions.map((v) => [v.version, v.count])).to.deep.equal([
      ['1.1', 40],
      ['1.0', 40],
    ]);
    const vs = a.versions[0]!.vs_previous!;
    expect(vs.version).to.equal('1.0');
    expect(vs.p95_change).to.be.closeTo(400 / 50 - 1, 0.1);
    expect(vs.significant).to.equal(true);
    expect(vs.p_value).to.be.lessThan(1e-6);
    expect(vs.new_fingerprints).to.deep.equal(['SELECT items.id, items.sku FROM items WHERE items.order_id = ?']);
    expect(vs.vanished_fingerprints).to.deep.equal([]);
    expect(a.versions[1]!.vs_previous).to.equal(null);
    expect(a.summary).to.contain('p95 +700 % in 1.1 against 1.0');
  });

  it('a route with nothing analysed says so', () => {
    const store = new RouteAnalysisStore({ windowsMs: [300_000] });
    const a = answer(store, T0, { count: 3, p50: 5, p95: 6, p99: 7 });
    expect(a.analysed).to.equal(0);
    expect(a.breakdown).to.deep.equal([]);
    expect(a.summary).to.equal('p99 7 ms (p50 5 ms, 3 requests); no request analysed yet.');
  });

  it('snapshots of any split of the requests, merged (through JSON), answer exactly as one store (property)', () => {
    const all = workload();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: all.length, maxLength: all.length }), (owner) => {
        const one = new RouteAnalysisStore({ windowsMs: [60_000, 300_000] });
        const parts = [0, 1, 2].map(() => new RouteAnalysisStore({ windowsMs: [60_000, 300_000] }));
        all.forEach((r, i) => {
          one.record(r.req, r.at);
          parts[owner[i] as number]!.record(r.req, r.at);
        });
        const merged = new RouteAnalysisStore({ windowsMs: [60_000, 300_000] });
        for (const p of parts) merged.mergeSnapshot(JSON.parse(JSON.stringify(p.snapshot())) as ReturnType<typeof p.snapshot>);
        for (const w of [60_000, 300_000]) {
          const want = buildWhy({
            ...ROUTE,
            window: 'w',
            latency: { count: 1, p50: 1, p95: 1, p99: 1 },
            errorCount: 0,
            data: one.aggregate(ROUTE, w, T0 + 20_000),
          });
          const got = buildWhy({
            ...ROUTE,
            window: 'w',
            latency: { count: 1, p50: 1, p95: 1, p99: 1 },
            errorCount: 0,
            data: merged.aggregate(ROUTE, w, T0 + 20_000),
          });
          // Examples may come from another request with the same cost: compare them as sets of costly ones.
          expect(strip(got)).to.deep.equal(strip(want));
        }
      }),
      { numRuns: 25 },
    );
  });
});

/** The answer with example trace ids replaced by whether they name a request of the right kind. */
function strip(a: WhyAnswer): unknown {
  const slowIds = new Set(Array.from({ length: 20 }, (_, i) => traceId(100 + i)));
  const fastIds = new Set(Array.from({ length: 80 }, (_, i) => traceId(i)));
  const kindOf = (id: string): string => (slowIds.has(id) ? 'slow' : fastIds.has(id) ? 'fast' : id);
  return {
    ...a,
    statements: a.statements.map((s) => ({ ...s, example_trace_id: kindOf(s.example_trace_id) })),
    n_plus_one: a.n_plus_one.map((n) => ({ ...n, example_trace_id: kindOf(n.example_trace_id), example_span_ids: n.example_span_ids.length })),
  };
}
