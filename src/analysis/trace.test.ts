/** Known-answer tests of one trace's analysis: breakdowns, concurrency, truncation, clock skew, orphans, double spans. */
import { expect } from 'chai';
import { db, http, rec, server } from '../../test/support/span-records';
import { analyzeTrace, type RequestAnalysis, type TargetTime } from './trace';

const T = '0af7651916cd43dd8448eb211c80319c';

function only(spans: Parameters<typeof analyzeTrace>[1], options?: Parameters<typeof analyzeTrace>[2]): RequestAnalysis {
  const a = analyzeTrace(T, spans, options);
  expect(a.requests).to.have.length(1);
  return a.requests[0] as RequestAnalysis;
}

/** `category target` → [union, split, critical path] */
function table(targets: readonly TargetTime[]): Record<string, [number, number, number]> {
  const out: Record<string, [number, number, number]> = {};
  for (const t of targets) out[`${t.category} ${t.target}`.trim()] = [t.unionMs, t.splitMs, t.cpMs];
  return out;
}

describe('trace analysis: where a request’s time goes', () => {
  it('sequential DB and HTTP children: self is what they leave', () => {
    const r = only([
      server(1, 0, 100),
      db(2, 1, 10, 30, 'SELECT id FROM users WHERE id = %s', { attrs: { 'net.peer.name': 'pg', 'net.peer.port': 5432 }, system: 'postgresql' }),
      http(3, 1, 40, 70, 'http://users:8000/users/7'),
    ]);
    expect(r.durationMs).to.equal(100);
    expect(table(r.targets)).to.deep.equal({
      self: [50, 50, 50],
      'db postgresql pg:5432': [20, 20, 20],
      'http users:8000': [30, 30, 30],
    });
    expect(r.calls.map((c) => [c.kind, c.key, c.durations])).to.deep.equal([
      ['db', 'SELECT id FROM users WHERE id = ?', [20]],
      ['http', 'GET users:8000 /users/{id}', [30]],
    ]);
  });

  it('concurrent children (asyncio.gather): unions count once, the equal split shares overlap, the critical path follows the last to finish', () => {
    const r = only([server(1, 0, 100), http(2, 1, 10, 60, 'http://a/x'), http(3, 1, 20, 80, 'http://b/y')]);
    // a alone 10–20, both 20–60 (split), b alone 60–80; the path: self 80–100, b 20–80, self 0–20
    expect(table(r.targets)).to.deep.equal({ self: [30, 30, 40], 'http a': [50, 30, 0], 'http b': [60, 40, 60] });
    const split = r.targets.reduce((n, t) => n + t.splitMs, 0);
    const cp = r.targets.reduce((n, t) => n + t.cpMs, 0);
    expect([split, cp]).to.deep.equal([100, 100]);
  });

  it('overlapping calls to one target are one union; nested own spans are walked through', () => {
    const r = only([
      server(1, 0, 100),
      rec({ id: 2, parent: 1, start: 5, end: 95, name: 'handler' }),
      db(3, 2, 10, 50, 'SELECT 1 FROM a'),
      db(4, 2, 30, 60, 'SELECT 1 FROM b'),
    ]);
    // the path takes the later DB call (30–60) and the handler's time around it
    expect(table(r.targets)).to.deep.equal({ self: [50, 50, 70], 'db sqlite': [50, 50, 30] });
  });

  it('a child outliving its parent is truncated; one wholly outside is dropped with its subtree (both counted)', () => {
    const r = only([
      server(1, 0, 100),
      db(2, 1, 80, 150, 'SELECT 1 FROM a'),
      rec({ id: 3, parent: 1, start: 120, end: 130, name: 'after' }),
      db(4, 3, 121, 129, 'SELECT 1 FROM b'),
    ]);
    expect(table(r.targets)).to.deep.equal({ self: [80, 80, 80], 'db sqlite': [20, 20, 20] });
    expect(r.quality).to.include({ truncated: 1, outside: 1 });
    expect(r.calls[0]?.durations).to.deep.equal([20]);
  });

  it('clock skew: a child from another host that does not fit is centred in its parent, its subtree with it (Jaeger)', () => {
    const spans = (): Parameters<typeof analyzeTrace>[1] => [
      server(1, 0, 100, { clock: 'host-a' }),
      rec({ id: 2, parent: 1, start: 200, end: 260, name: 'remote work', clock: 'host-b' }),
      db(3, 2, 210, 250, 'SELECT 1 FROM t', { clock: 'host-b' }),
    ];
    // delta = 0 + (100 − 60)/2 − 200 = −180: the child runs 20–80, its DB span 30–70
    const r = only(spans());
    expect(table(r.targets)).to.deep.equal({ self: [60, 60, 60], 'db sqlite': [40, 40, 40] });
    expect(r.quality.skewAdjusted).to.equal(2);
    // beyond the maximum the correction is refused and the child falls outside its parent
    const a = analyzeTrace(T, spans(), { maxClockSkewMs: 100 });
    expect(a.skewRefused).to.equal(1);
    expect(table(a.requests[0]!.targets)).to.deep.equal({ self: [100, 100, 100] });
    expect(a.requests[0]!.quality.outside).to.equal(1);
  });

  it('clock skew: a longer child only moves to its parent’s start; spans on one clock never move', () => {
    const r = only([
      server(1, 100, 200, { clock: 'a' }),
      rec({ id: 2, parent: 1, start: 50, end: 300, clock: 'b' }),
      db(3, 1, 90, 120, 'SELECT 1 FROM t', { clock: 'a' }),
    ]);
    // child 2 → 100..350, truncated to 100..200 (all own time, and the whole critical path); the DB span is on the
    // request's clock: it stays at 90..120, clipped to 100..120, concurrent with child 2
    expect(table(r.targets)).to.deep.equal({ self: [80, 80, 100], 'db sqlite': [20, 20, 0] });
    expect(r.quality).to.include({ skewAdjusted: 1, truncated: 2 });
  });

  it('missing parents: orphans are counted, not analysed; a request with a remote parent is a request', () => {
    const a = analyzeTrace(
      T,
      [
        server(1, 0, 50, { route: 'svc GET /a' }),
        rec({ id: 9, kind: 'server', parent: 77, start: 0, end: 40, route: 'svc GET /b' }),
        db(10, 88, 5, 10, 'SELECT 1 FROM t', { service: 'worker' }),
      ],
      {},
      { countOrphans: true },
    );
    expect(a.requests.map((r) => r.route).sort()).to.deep.equal(['svc GET /a', 'svc GET /b']);
    expect(a.orphans).to.equal(1);
    expect(a.orphanServices).to.deep.equal(['worker']);
    expect(a.used.size).to.equal(2);
  });

  it('only the selected requests are analysed; their subtrees (not nested requests) are reported used', () => {
    const spans = [
      server(1, 0, 100, { route: 'front GET /' }),
      http(2, 1, 10, 90, 'http://back/x'),
      server(3, 20, 80, { route: 'back GET /x', parent: 2, service: 'back' }),
      db(4, 3, 30, 40, 'SELECT 1 FROM t'),
    ];
    const onlyBack = analyzeTrace(T, spans, {}, { requests: new Set([spans[2]!]) });
    expect(onlyBack.requests.map((r) => r.route)).to.deep.equal(['back GET /x']);
    expect([...onlyBack.used].map((s) => s.idLo).sort()).to.deep.equal([3, 4]);
    const all = analyzeTrace(T, spans);
    expect([...all.used].map((s) => s.idLo).sort()).to.deep.equal([1, 2, 3, 4]);
  });

  it('duplicate span ids (a retried export) are counted once', () => {
    const a = analyzeTrace(T, [server(1, 0, 100), db(2, 1, 10, 20, 'SELECT 1 FROM t'), db(2, 1, 10, 20, 'SELECT 1 FROM t')]);
    expect(a.duplicates).to.equal(1);
    expect(a.requests[0]!.calls[0]!.durations).to.deep.equal([10]);
  });

  it('SQLAlchemy + driver siblings for one execution count once (the inner span is kept)', () => {
    const stmt = 'SELECT * FROM items WHERE order_id = %s';
    const r = only([
      server(1, 0, 100),
      db(2, 1, 10, 40, stmt, { scope: 'opentelemetry.instrumentation.sqlalchemy' }),
      db(3, 1, 12, 38, stmt, { scope: 'opentelemetry.instrumentation.psycopg2' }),
      db(4, 1, 50, 60, stmt, { scope: 'opentelemetry.instrumentation.sqlalchemy' }),
    ]);
    expect(r.quality.doubleSpans).to.equal(1);
    expect(r.calls).to.have.length(1);
    expect(r.calls[0]!.durations).to.deep.equal([26, 10]);
    expect(table(r.targets)['db sqlite']).to.deep.equal([36, 36, 36]);
  });

  it('a downstream request span without a client span in between is an HTTP call to that service; a CONSUMER child is off the critical path', () => {
    const r = only([
      server(1, 0, 100, { service: 'front', route: 'front GET /' }),
      rec({ id: 2, parent: 1, kind: 'server', start: 10, end: 50, service: 'back', route: '' }),
      rec({ id: 3, parent: 1, kind: 'consumer', start: 60, end: 90, service: 'worker', route: '' }),
    ]);
    expect(table(r.targets)).to.deep.equal({ self: [30, 30, 60], 'http back': [40, 40, 40], 'messaging worker': [30, 30, 0] });
  });

  it('unknown client spans and ASGI send/receive are unattributed; the request span’s status and HTTP 5xx are errors', () => {
    const r = only([
      server(1, 0, 100, { error: false, attrs: { 'http.status_code': 503 } }),
      rec({ id: 2, parent: 1, kind: 'client', start: 10, end: 20, name: 'mystery' }),
      rec({ id: 3, parent: 1, start: 90, end: 95, name: 'GET /r http send' }),
    ]);
    expect(table(r.targets)).to.deep.equal({ self: [85, 85, 85], 'unattributed mystery': [10, 10, 10], 'unattributed asgi http send': [5, 5, 5] });
    expect(r.isError).to.equal(true);
  });

  it('a DB span without statement is DB time but not a catalogued statement (counted)', () => {
    const r = only([server(1, 0, 100), rec({ id: 2, parent: 1, kind: 'client', start: 0, end: 10, name: 'connect', attrs: { 'db.system': 'sqlite' } })]);
    expect(table(r.targets)['db sqlite']).to.deep.equal([10, 10, 10]);
    expect(r.calls).to.deep.equal([]);
    expect(r.quality.dbWithoutStatement).to.equal(1);
  });

  it('redis is cache, a PRODUCER is messaging', () => {
    const r = only([
      server(1, 0, 100),
      rec({ id: 2, parent: 1, kind: 'client', start: 0, end: 10, attrs: { 'db.system': 'redis', 'db.statement': 'GET ?', 'net.peer.name': 'cache' } }),
      rec({ id: 3, parent: 1, kind: 'producer', start: 20, end: 25, attrs: { 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'celery' } }),
    ]);
    expect(table(r.targets)).to.deep.equal({ self: [85, 85, 85], 'cache redis cache': [10, 10, 10], 'messaging rabbitmq celery': [5, 5, 5] });
    expect(r.calls.map((c) => c.key)).to.deep.equal(['GET']);
  });
});
