/**
 * `--workers N`: each worker's connector sends `snapshotQueryState()` to the primary (as JSON over IPC), which
 * answers from `mergeQueryStates` (src/core/query.ts). The answers must equal, field for field, those of one
 * connector that saw every span: the sketches share a scale, slots have absolute periods, and the merged store
 * covers time from the earliest worker start, so rates agree too.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import pino from 'pino';
import { Telemetry } from '../../core/telemetry';
import { routeLatencyConfigSchema } from './config';
import { RouteLatencyConnector, mergeQueryStates } from './factory';
import { queryRoutes, routePath } from './query';
import { RouteStore } from './store';
import { ConfigErrorList } from '../../core/schema';
import { FakeClock, MutableSpan, spanIdOf, traceIdOf } from '../../../test/support/route-spans';

interface Rec {
  service: number;
  route: number;
  ms: number;
  at: number;
  worker: number;
  error: boolean;
  status: number;
}

const config = routeLatencyConfigSchema.parse({}, 'connectors.routelatency', new ConfigErrorList());
const connector = (clock: FakeClock): RouteLatencyConnector =>
  new RouteLatencyConnector(
    { id: 'routelatency', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
    config,
    { traces: undefined, metrics: undefined },
    clock,
  );

/** GET every endpoint the API has for this state: routes and services per window and sort, and each route. */
function answers(handle: (path: string, params: URLSearchParams) => { status: number; body: unknown }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ask = (path: string, query: string): unknown => {
    const r = handle(path, new URLSearchParams(query));
    out[`${path}?${query}`] = r;
    return r.body;
  };
  for (const window of ['1m', '5m', '15m', '1h']) {
    for (const sort of ['p99', 'rate', 'errors', 'route']) ask('/api/v1/routes', `window=${window}&sort=${sort}`);
    ask('/api/v1/services', `window=${window}`);
    const routes = (ask('/api/v1/routes', `window=${window}`) as { routes: { service: string; method: string; route: string }[] }).routes;
    for (const r of routes) ask(routePath(r.service, r.method, r.route), `window=${window}`);
  }
  return out;
}

/** Spans of `recs` recorded into one reference connector and into each worker's, as they would be received. */
function feed(recs: readonly Rec[], workers: number, startSpread: number, t0: number): { single: RouteLatencyConnector; parts: RouteLatencyConnector[] } {
  // Workers start a little apart, as forked processes do; the reference starts with the first.
  const clocks = Array.from({ length: workers }, (_, i) => new FakeClock(t0 + (i === 0 ? 0 : startSpread)));
  const single = connector(new FakeClock(t0));
  const parts = clocks.map((c) => connector(c));
  const span = new MutableSpan();
  let n = 0;
  for (const r of [...recs].sort((a, b) => a.at - b.at)) {
    span.service = `svc${r.service}`;
    span.resource.set('service.name', span.service);
    span.attrs.set('http.route', `/r${r.route}`);
    span.attrs.set('http.request.method', 'GET');
    span.attrs.set('http.response.status_code', r.status);
    span.durationNs = r.ms * 1e6;
    span.statusCode = r.error ? 2 : 0;
    span.traceId = traceIdOf(++n);
    span.spanId = spanIdOf(n);
    const now = t0 + startSpread + r.at;
    span.endTimeMs = now;
    single.store.record(span, now);
    (parts[r.worker] as RouteLatencyConnector).store.record(span, now);
  }
  return { single, parts };
}

const recsOf = (workers: number): fc.Arbitrary<Rec[]> =>
  fc.array(
    fc.record({
      service: fc.integer({ min: 0, max: 1 }),
      route: fc.integer({ min: 0, max: 3 }),
      ms: fc.double({ min: 0.01, max: 60_000, noNaN: true }),
      at: fc.integer({ min: 0, max: 20 * 60_000 }),
      worker: fc.integer({ min: 0, max: workers - 1 }),
      error: fc.boolean(),
      status: fc.constantFrom(200, 201, 404, 500, 503),
    }),
    { minLength: 1, maxLength: 200 },
  );

const roundTrip = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('routelatency query state merged across workers', () => {
  for (const workers of [1, 2, 4]) {
    it(`${workers} worker(s): every endpoint answers exactly as one connector fed every span, rates included (property)`, () => {
      fc.assert(
        fc.property(recsOf(workers), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 30 * 60_000 }), (recs, startSpread, queryAfter) => {
          const t0 = 1_700_000_000_000;
          const { single, parts } = feed(recs, workers, startSpread, t0);
          const queryAt = new FakeClock(t0 + startSpread + Math.max(...recs.map((r) => r.at)) + queryAfter);
          (single.store.clock as FakeClock).t = queryAt.t;
          const snapshots = parts.map((p) => roundTrip(p.snapshotQueryState()));
          const merged = mergeQueryStates(config, snapshots, queryAt);
          const want = answers((path, params) => single.routeQuery.handleQuery(path, params) as { status: number; body: unknown });
          const got = answers((path, params) => merged.routeQuery.handleQuery(path, params) as { status: number; body: unknown });
          expect(got).to.deep.equal(want);
        }),
        { numRuns: 25 },
      );
    });
  }

  for (const workers of [1, 3]) {
    it(`${workers} worker(s): snapshots for one query (a cluster query) merge to the same answer as whole snapshots, clocks skewed (property)`, () => {
      fc.assert(
        fc.property(
          recsOf(workers),
          fc.integer({ min: 0, max: 5_000 }),
          fc.integer({ min: 0, max: 30 * 60_000 }),
          // Each worker's clock against the asker's, and how long after asking the asker merges and answers.
          fc.array(fc.integer({ min: -180_000, max: 180_000 }), { minLength: workers, maxLength: workers }),
          fc.integer({ min: 0, max: 90_000 }),
          (recs, startSpread, queryAfter, skews, answerLag) => {
            const t0 = 1_700_000_000_000;
            const { parts } = feed(recs, workers, startSpread, t0);
            const askedAt = t0 + startSpread + Math.max(...recs.map((r) => r.at)) + queryAfter;
            const answerAt = new FakeClock(askedAt + answerLag);
            parts.forEach((p, i) => ((p.store.clock as FakeClock).t = askedAt + (skews[i] as number)));
            const whole = mergeQueryStates(
              config,
              parts.map((p) => roundTrip(p.snapshotQueryState())),
              answerAt,
            );
            const want = answers((path, params) => whole.routeQuery.handleQuery(path, params) as { status: number; body: unknown });
            const got = answers((path, params) => {
              const hint = { pathname: path, params: [...params], atMs: askedAt };
              const scoped = mergeQueryStates(
                config,
                parts.map((p) => roundTrip(p.snapshotQueryState(hint))),
                answerAt,
              );
              return scoped.routeQuery.handleQuery(path, params) as { status: number; body: unknown };
            });
            expect(got).to.deep.equal(want);
          },
        ),
        { numRuns: 20 },
      );
    });
  }

  it("a snapshot for a route list holds only the queried window's slots, and every route", () => {
    const t0 = 1_700_000_000_000;
    const recs: Rec[] = [0, 1, 2, 3].map((route) => ({ service: 0, route, ms: 5, at: route * 5 * 60_000, worker: 0, error: false, status: 200 }));
    const { parts } = feed(recs, 1, 0, t0);
    const w = parts[0] as RouteLatencyConnector;
    (w.store.clock as FakeClock).t = t0 + 15 * 60_000 + 1;
    const full = w.snapshotQueryState();
    const scoped = w.snapshotQueryState({ pathname: '/api/v1/routes', params: [['window', '1m']], atMs: t0 + 15 * 60_000 + 1 });
    const slots = (s: typeof full): number => s.store.routes.reduce((n, r) => n + r.rings.reduce((k, ring) => k + ring.length, 0), 0);
    expect(scoped.store.routes.map((r) => r.route)).to.deep.equal(full.store.routes.map((r) => r.route));
    // Only route 3's span, at 15 min, is in the last minute; the full snapshot holds every span in each tier.
    expect(slots(scoped)).to.equal(1);
    expect(slots(full)).to.be.at.least(4);
    expect(scoped).to.not.have.property('runtime');
    expect(scoped).to.not.have.property('analysis');
    // A query's snapshot codes its sketches compactly; a whole one (hand-offs, older askers) keeps the OTLP shape.
    const sketches = (s: typeof full): object[] => s.store.routes.flatMap((r) => r.rings.flatMap((ring) => ring.map((slot) => slot.sketch.positive)));
    expect(sketches(scoped).every((p) => 'counts' in p && !('bucketCounts' in p))).to.equal(true);
    expect(sketches(full).every((p) => 'bucketCounts' in p && !('counts' in p))).to.equal(true);
  });

  it('the rate divides by the time since the earliest worker started, not since the query', () => {
    const t0 = 1_700_000_000_000;
    const clock = new FakeClock(t0);
    const w = connector(clock);
    const span = new MutableSpan();
    span.attrs.set('http.route', '/orders/{id}');
    span.durationNs = 5e6;
    for (let i = 0; i < 20; i++) w.store.record(span, t0 + i * 300);
    const merged = mergeQueryStates(config, [JSON.parse(JSON.stringify(w.snapshotQueryState()))], new FakeClock(t0 + 6_000));
    const body = merged.routeQuery.handleQuery('/api/v1/routes', new URLSearchParams('window=5m')) as {
      body: { covered_s: number; routes: { count: number; rate_per_s: number }[] };
    };
    expect(body.body.covered_s).to.equal(6);
    expect(body.body.routes[0]?.count).to.equal(20);
    expect(body.body.routes[0]?.rate_per_s).to.be.closeTo(20 / 6, 1e-4);
  });

  it('keeps the per-service route cap when merging (extra routes go to __other__)', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const span = new MutableSpan();
    const workers = [0, 1].map(() => new RouteStore({ clock, maxRoutesPerService: 3 }));
    for (let r = 0; r < 6; r++) {
      span.attrs.set('http.route', `/r${r}`);
      span.durationNs = 5e6;
      (workers[r % 2] as RouteStore).record(span);
    }
    const merged = new RouteStore({ clock, maxRoutesPerService: 3 });
    for (const w of workers) merged.mergeSnapshot(w.snapshot());
    const routes = queryRoutes(merged, { window: '1m' }).routes;
    expect(routes.filter((r) => r.route !== '__other__')).to.have.length(3);
    expect(routes.reduce((n, r) => n + r.count, 0)).to.equal(6);
  });
});
