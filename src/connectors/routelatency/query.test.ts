import { expect } from 'chai';
import fc from 'fast-check';
import { handleQuery, openapiDocument, QueryError, queryRoutes, routePath } from './query';
import type { RouteDetailResponse, RoutesResponse, ServicesResponse } from './query';
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

    it('accepts any spelling of a configured window', () => {
      const { store } = fixture();
      expect((get(store, '/api/v1/routes', 'window=60s').body as RoutesResponse).window).to.equal('1m');
      expect((get(store, '/api/v1/routes', 'window=1h').body as RoutesResponse).window).to.equal('1h');
    });

    const bad: [string, string][] = [
      ['window=7m', 'unknown window "7m"; expected one of 1m, 5m, 15m, 1h'],
      ['window=soon', 'invalid window "soon"; expected one of 1m, 5m, 15m, 1h'],
      ['window=', 'invalid window ""'],
      ['sort=p42', 'unknown sort key "p42"; expected one of p50, p90, p95, p99, p999, rate, count, errors, error_rate, route'],
      ['limit=0', 'invalid limit "0"; expected an integer from 1 to 10000'],
      ['limit=-1', 'invalid limit "-1"'],
      ['limit=2.5', 'invalid limit "2.5"'],
      ['limit=abc', 'invalid limit "abc"'],
      ['limit=10001', 'invalid limit "10001"'],
      ['service=', 'invalid service ""'],
      ['sort_by=p99', 'unknown parameter "sort_by"; expected one of window, service, sort, limit'],
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
      expect(body.exemplars.map((e) => e.value_ms)).to.deep.equal([900, 300]);
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
      expect(Object.keys(doc.paths)).to.have.members(['/api/v1/routes', '/api/v1/routes/{service}/{method}/{route}', '/api/v1/services']);
      const refs = JSON.stringify(openapiDocument()).match(/#\/components\/schemas\/\w+/g) ?? [];
      expect(refs.length).to.be.greaterThan(5);
      for (const ref of refs) expect(doc.components.schemas, ref).to.have.property(ref.split('/').pop() as string);
    });
  });
});
