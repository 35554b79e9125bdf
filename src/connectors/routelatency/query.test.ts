import { expect } from 'chai';
import fc from 'fast-check';
import { handleQuery, MAX_LIMIT, openapiDocument, QueryError, queryRoutes, routePath, SORT_KEYS, type RouteJson, type SortKey } from './query';
import type { CoverageResponse, RouteDetailResponse, RoutesResponse, ServiceDetailResponse, ServicesResponse } from './query';
import { RouteStore } from './store';
import { ObjectSpanInput, SpanKind } from './span-input';
import { FakeClock } from '../../../test/support/route-spans';

const T0 = 1_699_999_980_000;

function fixture(): { store: RouteStore; clock: FakeClock } {
  const clock = new FakeClock(T0);
  const store = new RouteStore({ clock });
  const add = (service: string, route: string, ms: number[], status = 200, attrs: Record<string, unknown> = {}): void => {
    for (const v of ms) {
      store.record(
        new ObjectSpanInput({
          service,
          kind: SpanKind.SERVER,
          name: `GET ${route}`,
          durationNs: v * 1e6,
          attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': status, ...attrs },
        }),
      );
    }
  };
  add('shop', '/fast', [1, 1, 2, 2, 3]);
  add('shop', '/slow', [100, 200, 300]);
  add('shop', '/slow', [900], 500);
  add('auth', '/login', [10, 20]);
  store.record(new ObjectSpanInput({ service: 'auth', kind: 'SERVER', name: 'auth.v1.Tokens/Issue', durationNs: 5e6 }));
  clock.advance(30_000);
  return { store, clock };
}

function get(store: RouteStore, path: string, query = ''): { status: number; body: unknown } {
  return handleQuery(store, path, new URLSearchParams(query));
}

describe('route query API', () => {
  describe('GET /api/v1/routes', () => {
    it('lists routes with the documented fields, sorted by p99 by default', () => {
      const { store } = fixture();
      const res = get(store, '/api/v1/routes');
      expect(res.status).to.equal(200);
      const body = res.body as RoutesResponse;
      expect(body.window).to.equal('5m');
      expect(body.generated_at).to.equal(new Date(T0 + 30_000).toISOString());
      expect(body.routes.map((r) => r.route)).to.deep.equal(['/slow', '/login', 'auth.v1.Tokens/Issue', '/fast']);
      const slow = body.routes[0];
      expect(slow).to.include({
        service: 'shop',
        method: 'GET',
        route: '/slow',
        route_source: 'http.route',
        count: 4,
        error_count: 1,
        error_rate: 0.25,
        min_ms: 100,
        max_ms: 900,
        mean_ms: 375,
        p99_ms: 900,
        p999_ms: 900,
      });
      expect(slow?.rate_per_s).to.be.closeTo(4 / 30, 1e-5);
      expect(slow?.status_classes).to.deep.equal({ '2xx': 3, '5xx': 1 });
      expect(slow?.p50_ms).to.be.closeTo(200, 200 * 0.0055);
      expect(slow?.p90_ms).to.equal(900);
      expect(Object.keys(slow ?? {})).to.deep.equal([
        'service',
        'method',
        'route',
        'route_source',
        'count',
        'rate_per_s',
        'error_rate',
        'error_count',
        'status_classes',
        'p50_ms',
        'p90_ms',
        'p95_ms',
        'p99_ms',
        'p999_ms',
        'min_ms',
        'max_ms',
        'mean_ms',
        'dimensions',
      ]);
      expect(JSON.parse(JSON.stringify(body))).to.deep.equal(body); // plain JSON
    });

    it('filters by service, sorts by any key and limits', () => {
      const { store } = fixture();
      const routes = (q: string): string[] => (get(store, '/api/v1/routes', q).body as RoutesResponse).routes.map((r) => `${r.service}${r.route}`);
      expect(routes('service=auth&sort=route')).to.deep.equal(['auth/login', 'authauth.v1.Tokens/Issue']);
      expect(routes('sort=count')).to.deep.equal(['shop/fast', 'shop/slow', 'auth/login', 'authauth.v1.Tokens/Issue']);
      expect(routes('sort=errors&limit=1')).to.deep.equal(['shop/slow']);
      expect(routes('sort=p50&limit=2')).to.deep.equal(['shop/slow', 'auth/login']);
      expect(routes('sort=route')).to.deep.equal(['auth/login', 'authauth.v1.Tokens/Issue', 'shop/fast', 'shop/slow']);
      expect(routes('service=nobody')).to.deep.equal([]);
      for (const key of ['p90', 'p95', 'p999', 'rate', 'error_rate']) expect(get(store, '/api/v1/routes', `sort=${key}`).status).to.equal(200);
    });

    it('sorts by impact (rate × p95), searches service, method and route, and pages with a total', () => {
      const { store } = fixture();
      const page = (q: string): RoutesResponse => get(store, '/api/v1/routes', q).body as RoutesResponse;
      const names = (q: string): string[] => page(q).routes.map((r) => r.service + r.route);
      // 5m window, 30 s covered: /slow 4/30 per s × 900 ms, /login 2/30 × 20, /fast 5/30 × 3, Issue 1/30 × 5
      expect(names('sort=impact')).to.deep.equal(['shop/slow', 'auth/login', 'shop/fast', 'authauth.v1.Tokens/Issue']);
      expect(names('search=LOG')).to.deep.equal(['auth/login']);
      expect(names('search=get%20/s')).to.deep.equal(['shop/slow']);
      expect(names('search=auth&sort=route')).to.deep.equal(['auth/login', 'authauth.v1.Tokens/Issue']);
      const p = page('sort=route&limit=2&offset=1');
      expect([p.total, p.offset, p.routes.map((r) => r.service + r.route)]).to.deep.equal([4, 1, ['authauth.v1.Tokens/Issue', 'shop/fast']]);
      expect([page('offset=9').total, page('offset=9').routes]).to.deep.equal([4, []]);
      expect(page('service=shop&search=fast').total).to.equal(1);
      const head = page('');
      expect([head.windows, head.relative_error, head.total, head.offset]).to.deep.equal([['1m', '5m', '15m', '1h'], 0.00541516, 4, 0]);
    });

    it('a page is the whole list of summaries sorted by the row field it names, for random stores and queries (property)', () => {
      // The documented order, read off the rows: descending by the sort field (a missing percentile lowest), then
      // by service, route, method and dimensions; `route` by those names alone.
      const field = (r: RouteJson, key: SortKey): number => {
        if (key === 'route') return 0;
        if (key === 'rate') return r.rate_per_s;
        if (key === 'count') return r.count;
        if (key === 'errors') return r.error_count;
        if (key === 'error_rate') return r.error_rate;
        if (key === 'impact') return r.p95_ms === null ? -1 : r.rate_per_s * r.p95_ms;
        const percentile = { p50: r.p50_ms, p90: r.p90_ms, p95: r.p95_ms, p99: r.p99_ms, p999: r.p999_ms }[key];
        return percentile ?? -1;
      };
      const name = (r: RouteJson): string[] => [r.service, r.route, r.method, JSON.stringify(r.dimensions)];
      const byName = (a: RouteJson, b: RouteJson): number => {
        const [x, y] = [name(a), name(b)];
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
        return 0;
      };
      // Bursts of spans of one route, so that some routes have enough spans for their percentiles to differ.
      const burst = fc.record({
        service: fc.constantFrom('shop', 'auth', 'cart'),
        route: fc.constantFrom('/a', '/b/{id}', '/c', '/d', '/e/{x}', '/f'),
        method: fc.constantFrom('GET', 'POST'),
        region: fc.option(fc.constantFrom('us', 'eu'), { nil: undefined }),
        // Few distinct durations among others: equal sort values, so ties are broken by name.
        ms: fc.array(fc.oneof(fc.constantFrom(1, 5, 20), fc.double({ min: 0.01, max: 5000, noNaN: true })), { minLength: 1, maxLength: 60, size: 'max' }),
        status: fc.constantFrom(200, 200, 404, 500),
        // Time before the burst: spans spread over slots, some routes out of the shorter windows.
        advanceMs: fc.constantFrom(0, 0, 500, 20_000, 200_000),
      });
      const query = fc.record({
        window: fc.constantFrom('1m', '5m', '1h'),
        sort: fc.constantFrom(...SORT_KEYS),
        limit: fc.integer({ min: 1, max: 12 }),
        offset: fc.integer({ min: 0, max: 15 }),
        service: fc.option(fc.constantFrom('shop', 'auth', 'nope'), { nil: undefined }),
        search: fc.option(fc.constantFrom('b', 'POST', 'SHOP /', '/e'), { nil: undefined }),
      });
      fc.assert(
        fc.property(fc.array(burst, { maxLength: 12 }), query, (bursts, q) => {
          const clock = new FakeClock(T0);
          const store = new RouteStore({ clock, dimensions: [{ name: 'region' }] });
          for (const x of bursts) {
            clock.advance(x.advanceMs);
            for (const ms of x.ms)
              store.record(
                new ObjectSpanInput({
                  service: x.service,
                  kind: SpanKind.SERVER,
                  name: `${x.method} ${x.route}`,
                  durationNs: ms * 1e6,
                  statusCode: x.status === 500 ? 2 : 0,
                  attributes: {
                    'http.route': x.route,
                    'http.request.method': x.method,
                    'http.response.status_code': x.status,
                    ...(x.region === undefined ? {} : { region: x.region }),
                  },
                }),
              );
          }
          const page = queryRoutes(store, q);
          const all = queryRoutes(store, { ...q, sort: 'route', limit: MAX_LIMIT, offset: 0 });
          expect(all.routes).to.have.length(all.total as number);
          const sorted = [...all.routes].sort((a, b) => field(b, q.sort) - field(a, q.sort) || byName(a, b));
          expect(page.total).to.equal(all.total);
          expect(page.routes).to.deep.equal(sorted.slice(q.offset, q.offset + q.limit));
        }),
        { numRuns: 300 },
      );
    });

    it('accepts any spelling of a configured window', () => {
      const { store } = fixture();
      expect((get(store, '/api/v1/routes', 'window=60s').body as RoutesResponse).window).to.equal('1m');
      expect((get(store, '/api/v1/routes', 'window=1h').body as RoutesResponse).window).to.equal('1h');
    });

    const bad: [string, string][] = [
      ['window=7m', 'unknown window "7m"; expected one of 1m, 5m, 15m, 1h'],
      ['window=soon', 'invalid window "soon"; expected one of 1m, 5m, 15m, 1h'],
      ['window=', 'invalid window ""'],
      ['sort=p42', 'unknown sort key "p42"; expected one of p50, p90, p95, p99, p999, rate, count, errors, error_rate, impact, route'],
      ['offset=-1', 'invalid offset "-1"'],
      ['offset=x', 'invalid offset "x"'],
      ['limit=0', 'invalid limit "0"; expected an integer from 1 to 10000'],
      ['limit=-1', 'invalid limit "-1"'],
      ['limit=2.5', 'invalid limit "2.5"'],
      ['limit=abc', 'invalid limit "abc"'],
      ['limit=10001', 'invalid limit "10001"'],
      ['service=', 'invalid service ""'],
      ['sort_by=p99', 'unknown parameter "sort_by"; expected one of window, service, sort, limit, offset, search'],
      ['window=1m&window=5m', 'parameter "window" given more than once'],
    ];
    for (const [query, message] of bad) {
      it(`400 for ${query}`, () => {
        const { store } = fixture();
        const res = get(store, '/api/v1/routes', query);
        expect(res.status).to.equal(400);
        expect((res.body as { error: string }).error).to.include(message);
      });
    }

    it('queryRoutes throws a QueryError for the server to turn into a 400', () => {
      const { store } = fixture();
      expect(() => queryRoutes(store, { window: '2m' }))
        .to.throw(QueryError, 'unknown window')
        .with.property('status', 400);
    });
  });

  describe('GET /api/v1/services', () => {
    it('gives route counts and totals per service', () => {
      const { store } = fixture();
      const body = get(store, '/api/v1/services', 'window=1m').body as ServicesResponse;
      expect(body.services).to.deep.equal([
        { service: 'auth', routes: 2, active_routes: 2, count: 3, rate_per_s: 0.1, error_count: 0, error_rate: 0, overflow_spans: 0 },
        { service: 'shop', routes: 2, active_routes: 2, count: 9, rate_per_s: 0.3, error_count: 1, error_rate: 0.111111, overflow_spans: 0 },
      ]);
    });

    it('known routes stay listed after they leave the window', () => {
      const { store, clock } = fixture();
      clock.advance(120_000);
      const body = get(store, '/api/v1/services', 'window=1m').body as ServicesResponse;
      expect(body.services.map((s) => [s.service, s.routes, s.active_routes, s.count])).to.deep.equal([
        ['auth', 2, 0, 0],
        ['shop', 2, 0, 0],
      ]);
      expect(get(store, '/api/v1/services', 'window=2m').status).to.equal(400);
      expect(get(store, '/api/v1/services', 'service=shop').status).to.equal(400);
    });
  });

  describe('GET /api/v1/routes/{service}/{method}/{route…}', () => {
    it('returns one route with a series per slot and exemplars', () => {
      const { store } = fixture();
      const res = get(store, '/api/v1/routes/shop/GET//slow', 'window=1m');
      expect(res.status).to.equal(200);
      const body = res.body as RouteDetailResponse;
      expect(body.route).to.include({ service: 'shop', route: '/slow', count: 4 });
      expect(body.slot_s).to.equal(10);
      expect(body.series.length).to.equal(6);
      // the 1m window at T0 + 30 s spans the slots starting at T0 − 20 s … T0 + 30 s
      expect(body.series.map((s) => s.count)).to.deep.equal([0, 0, 4, 0, 0, 0]);
      expect(body.series[2]).to.include({ start: new Date(T0).toISOString(), error_count: 1, max_ms: 900 });
      expect(body.series[0]?.p50_ms).to.equal(null);
      expect(body.series[2]?.status_classes).to.deep.equal({ '2xx': 3, '5xx': 1 });
      expect(body.series[0]?.status_classes).to.deep.equal({});
      expect(body.exemplars.map((e) => e.value_ms)).to.deep.equal([900, 300]);
      // the distribution: the window's sketch, one span in each of the buckets of 100, 200, 300 and 900 ms
      const d = body.distribution as NonNullable<RouteDetailResponse['distribution']>;
      expect([d.scale, d.zero_count, d.counts.reduce((a, b) => a + b, 0)]).to.deep.equal([6, 0, 4]);
      const filled = d.counts.flatMap((n, k) => (n > 0 ? [d.offset + k] : []));
      expect(filled).to.deep.equal([100, 200, 300, 900].map((ms) => Math.ceil(Math.log2(ms) * 64) - 1));
    });

    it('decodes percent-encoded segments; "-" is the empty method', () => {
      const { store } = fixture();
      const grpc = get(store, '/api/v1/routes/auth/-/auth.v1.Tokens%2FIssue');
      expect(grpc.status).to.equal(200);
      expect((grpc.body as RouteDetailResponse).route).to.include({ method: '', route: 'auth.v1.Tokens/Issue', route_source: 'span_name_fallback' });
      expect(get(store, '/api/v1/routes/auth/-/auth.v1.Tokens/Issue').status).to.equal(200);
    });

    it('routePath builds paths handleQuery resolves, for any service and route', () => {
      fc.assert(
        fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), fc.constantFrom('GET', 'POST', ''), (service, route, method) => {
          const clock = new FakeClock(T0);
          const store = new RouteStore({ clock });
          store.record(new ObjectSpanInput({ service, name: 'x', attributes: { 'http.route': route, ...(method ? { 'http.method': method } : {}) } }));
          const res = handleQuery(store, routePath(service, method, route), new URLSearchParams());
          expect(res.status, JSON.stringify([service, route, routePath(service, method, route)])).to.equal(200);
          const r = (res.body as RouteDetailResponse).route;
          return r.service === service && r.route === route && r.method === method && r.count === 1;
        }),
        { numRuns: 200 },
      );
    });

    it('merges dimension values unless narrowed', () => {
      const clock = new FakeClock(T0);
      const store = new RouteStore({ clock, dimensions: [{ name: 'region' }] });
      for (const region of ['eu', 'us', 'us']) {
        store.record(new ObjectSpanInput({ service: 's', name: 'x', attributes: { 'http.route': '/a', 'http.method': 'GET', region } }));
      }
      const all = get(store, '/api/v1/routes/s/GET//a').body as RouteDetailResponse;
      expect([all.entries, all.route.count, all.route.dimensions]).to.deep.equal([2, 3, {}]);
      const us = get(store, '/api/v1/routes/s/GET//a', 'dimension.region=us').body as RouteDetailResponse;
      expect([us.entries, us.route.count, us.route.dimensions]).to.deep.equal([1, 2, { region: 'us' }]);
    });

    it('404 for an unknown route, 400 for malformed paths and parameters', () => {
      const { store } = fixture();
      expect(get(store, '/api/v1/routes/shop/GET//nope').status).to.equal(404);
      expect(get(store, '/api/v1/routes/nobody/GET//slow').status).to.equal(404);
      expect(get(store, '/api/v1/routes/shop/GET').status).to.equal(400);
      expect(get(store, '/api/v1/routes/shop/GET/').status).to.equal(400);
      expect(get(store, '/api/v1/routes/shop//slow').status).to.equal(400);
      expect(get(store, '/api/v1/routes/shop/GET/%E0%A4%A').status).to.equal(400);
      expect(get(store, '/api/v1/routes/shop/GET//slow', 'window=3m').status).to.equal(400);
      expect(get(store, '/api/v1/routes/shop/GET//slow', 'sort=p99').status).to.equal(400);
    });
  });

  describe('GET /api/v1/services/{service}', () => {
    it('merges all routes of the service: totals, percentiles and a series', () => {
      const { store } = fixture();
      const res = get(store, '/api/v1/services/shop', 'window=1m');
      expect(res.status).to.equal(200);
      const body = res.body as ServiceDetailResponse;
      expect(body.service).to.include({ service: 'shop', routes: 2, active_routes: 2, count: 9, error_count: 1, rate_per_s: 0.3, p99_ms: 900, max_ms: 900 });
      expect(body.series.map((s) => s.count)).to.deep.equal([0, 0, 9, 0, 0, 0]);
      expect(get(store, '/api/v1/services/nobody').status).to.equal(404);
      expect(get(store, '/api/v1/services/shop/runtime').status).to.equal(404);
      expect(get(store, '/api/v1/services/shop', 'window=3m').status).to.equal(400);
    });
  });

  describe('GET /api/v1/coverage', () => {
    it('counts spans skipped by kind and counted spans by the source of their route, per service', () => {
      const { store } = fixture();
      store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.CLIENT, name: 'SELECT' }));
      store.recordSkipped('db-only', [0, 2, 0, 3, 0, 0, 0, 0]);
      store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.SERVER, name: 'GET', attributes: { 'url.path': '/items/42', 'http.method': 'GET' } }));
      const body = get(store, '/api/v1/coverage').body as CoverageResponse;
      expect(body.span_kinds).to.deep.equal(['SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER']);
      expect(body.since).to.equal(new Date(T0).toISOString());
      expect(body.totals).to.deep.equal({ spans_seen: 19, spans_counted: 13, spans_skipped: 6, overflow_spans: 0 });
      expect(body.services).to.deep.equal([
        {
          service: 'auth',
          counted_spans: 3,
          skipped_spans: {},
          route_sources: { 'http.route': 2, span_name_fallback: 1 },
          overflow_spans: 0,
          routes: 2,
          unmatched_routes: 0,
        },
        {
          service: 'db-only',
          counted_spans: 0,
          skipped_spans: { SPAN_KIND_INTERNAL: 2, SPAN_KIND_CLIENT: 3 },
          route_sources: {},
          overflow_spans: 0,
          routes: 0,
          unmatched_routes: 0,
        },
        {
          service: 'shop',
          counted_spans: 10,
          skipped_spans: { SPAN_KIND_CLIENT: 1 },
          route_sources: { 'http.route': 9, 'url.path': 1 },
          overflow_spans: 0,
          routes: 3,
          unmatched_routes: 0,
        },
      ]);
    });

    it('merges across stores as the routes do (a worker into the primary)', () => {
      const a = fixture().store;
      const b = fixture().store;
      b.recordSkipped('shop', [0, 0, 0, 7]);
      const merged = new RouteStore({ clock: new FakeClock(T0 + 60_000) });
      merged.mergeSnapshot(a.snapshot());
      merged.mergeSnapshot(b.snapshot());
      const body = get(merged, '/api/v1/coverage').body as CoverageResponse;
      expect(body.since).to.equal(new Date(T0).toISOString());
      expect(body.totals).to.deep.equal({ spans_seen: 31, spans_counted: 24, spans_skipped: 7, overflow_spans: 0 });
      expect(body.services.find((s) => s.service === 'shop')).to.deep.include({ counted_spans: 18, skipped_spans: { SPAN_KIND_CLIENT: 7 }, routes: 2 });
    });

    it('counts spans put into the __other__ route of a service over its cap', () => {
      const store = new RouteStore({ clock: new FakeClock(T0), maxRoutesPerService: 1 });
      for (const route of ['/a', '/b', '/c', '/b']) store.record(new ObjectSpanInput({ service: 's', name: 'x', attributes: { 'http.route': route } }));
      const body = get(store, '/api/v1/coverage').body as CoverageResponse;
      expect(body.services[0]).to.deep.include({ counted_spans: 4, overflow_spans: 3, route_sources: { 'http.route': 4 }, routes: 2 });
    });
  });

  describe('other paths', () => {
    it('404 for unknown paths', () => {
      const { store } = fixture();
      expect(get(store, '/api/v2/routes')).to.deep.equal({ status: 404, body: { error: 'not found: /api/v2/routes' } });
    });

    it('serves an OpenAPI 3 document whose references all resolve', () => {
      const { store } = fixture();
      const res = get(store, '/api/v1/openapi.json');
      expect(res.status).to.equal(200);
      const doc = res.body as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
      expect(doc.openapi).to.match(/^3\./);
      expect(Object.keys(doc.paths)).to.have.members([
        '/api/v1/routes',
        '/api/v1/routes/{service}/{method}/{route}',
        '/api/v1/services',
        '/api/v1/services/{service}',
        '/api/v1/services/{service}/runtime',
        '/api/v1/runtime',
        '/api/v1/coverage',
        '/api/v1/why',
      ]);
      const refs = JSON.stringify(openapiDocument()).match(/#\/components\/schemas\/\w+/g) ?? [];
      expect(refs.length).to.be.greaterThan(5);
      for (const ref of refs) expect(doc.components.schemas, ref).to.have.property(ref.split('/').pop() as string);
    });
  });
});
