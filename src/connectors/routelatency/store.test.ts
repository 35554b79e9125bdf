import { expect } from 'chai';
import { RouteStore } from './store';
import type { RouteStoreOptions } from './store';
import { distributions, exactQuantile, FakeClock, MutableSpan, rng, spanIdOf, traceIdOf } from '../../../test/support/route-spans';
import { ObjectSpanInput, SpanKind } from './span-input';
import type { PlainSpan } from './span-input';
import { queryRoutes } from './query';
import type { RouteJson } from './query';

/** An epoch time on a 1-minute boundary (so 10 s and 1 min slots start together). */
const T0 = 1_699_999_980_000;

function setup(options: Omit<RouteStoreOptions, 'clock'> = {}): { store: RouteStore; clock: FakeClock } {
  const clock = new FakeClock(T0);
  return { store: new RouteStore({ ...options, clock }), clock };
}

function httpSpan(route: string, ms: number, extra: Partial<PlainSpan> = {}, status = 200): ObjectSpanInput {
  return new ObjectSpanInput({
    service: 'shop',
    kind: SpanKind.SERVER,
    name: `GET ${route}`,
    durationNs: ms * 1e6,
    attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': status },
    ...extra,
  });
}

function routes(store: RouteStore, window = '5m'): RouteJson[] {
  return queryRoutes(store, { window, sort: 'route' }).routes;
}

describe('RouteStore', () => {
  describe('span selection', () => {
    it('counts SERVER and CONSUMER spans only by default', () => {
      const { store } = setup();
      expect(store.record(httpSpan('/a', 1))).to.equal(true);
      expect(store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.CONSUMER, name: 'orders process' }))).to.equal(true);
      expect(
        store.record(
          new ObjectSpanInput({ service: 'shop', kind: SpanKind.CLIENT, name: 'GET', attributes: { 'http.method': 'GET', 'http.url': 'http://x/a' } }),
        ),
      ).to.equal(false);
      expect(store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.INTERNAL, name: 'GET /a http send' }))).to.equal(false);
      expect(store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.PRODUCER, name: 'orders publish' }))).to.equal(false);
      const s = store.stats();
      expect([s.spansSeen, s.spansRecorded, s.spansSkipped, s.routes]).to.deep.equal([5, 2, 3, 2]);
    });

    it('ASGI send/receive INTERNAL spans never count, even with INTERNAL configured', () => {
      const { store } = setup({ spanKinds: ['SERVER', 'SPAN_KIND_INTERNAL'] });
      expect(
        store.record(new ObjectSpanInput({ service: 's', kind: 'INTERNAL', name: 'GET /users/{user_id} http send', attributes: { 'http.status_code': 200 } })),
      ).to.equal(false);
      expect(store.record(new ObjectSpanInput({ service: 's', kind: 'INTERNAL', name: 'GET /users/{user_id} http receive' }))).to.equal(false);
      expect(store.record(new ObjectSpanInput({ service: 's', kind: 'INTERNAL', name: 'render template' }))).to.equal(true);
    });

    it('rejects unknown span kind names', () => {
      expect(() => new RouteStore({ spanKinds: ['SERVERS'] })).to.throw(RangeError, 'span kind "SERVERS" is unknown');
    });
  });

  describe('aggregates', () => {
    it('count, errors (status ERROR or HTTP >= 500), status classes, min/max/mean', () => {
      const { store } = setup();
      store.record(httpSpan('/a', 10));
      store.record(httpSpan('/a', 20, {}, 404));
      store.record(httpSpan('/a', 30, {}, 503));
      store.record(httpSpan('/a', 40, { statusCode: 'STATUS_CODE_ERROR' }));
      store.record(httpSpan('/a', 50, {}, 302));
      const [r] = routes(store);
      expect(r).to.include({ service: 'shop', method: 'GET', route: '/a', route_source: 'http.route', count: 5, error_count: 2, error_rate: 0.4 });
      expect(r?.status_classes).to.deep.equal({ '2xx': 2, '3xx': 1, '4xx': 1, '5xx': 1 });
      expect([r?.min_ms, r?.max_ms, r?.mean_ms]).to.deep.equal([10, 50, 30]);
    });

    it('negative and NaN durations count as 0 (counts and error counts stay consistent)', () => {
      const { store } = setup();
      store.record(httpSpan('/a', -5, {}, 500));
      store.record(httpSpan('/a', NaN, {}, 500));
      store.record(httpSpan('/a', 10));
      const [r] = routes(store);
      expect(r).to.include({ count: 3, error_count: 2, min_ms: 0, max_ms: 10, p50_ms: 0 });
    });

    for (const [name, draw] of Object.entries(distributions)) {
      it(`${name}: percentiles from merged slots are within 1 % of exact ones`, () => {
        const { store, clock } = setup();
        const r = rng(99 + name.length);
        const values: number[] = [];
        const span = new MutableSpan();
        span.attrs.set('http.route', '/x').set('http.request.method', 'GET');
        for (let i = 0; i < 5000; i++) {
          const v = Math.round(draw(r) * 1e6) / 1e6; // whole ns, as spans carry them
          values.push(v);
          span.durationNs = v * 1e6;
          clock.advance(50); // 250 s in total: spread over 26 slots of 10 s and 5 of 1 min
          store.record(span);
        }
        values.sort((a, b) => a - b);
        for (const window of ['5m', '15m']) {
          const [row] = routes(store, window);
          expect(row?.count).to.equal(5000);
          const pairs: [number | null | undefined, number][] = [
            [row?.p50_ms, 0.5],
            [row?.p90_ms, 0.9],
            [row?.p95_ms, 0.95],
            [row?.p99_ms, 0.99],
            [row?.p999_ms, 0.999],
          ];
          for (const [got, q] of pairs) {
            const exact = exactQuantile(values, q);
            expect(Math.abs((got as number) - exact) / exact, `${window} q=${q}`).to.be.at.most(0.01);
          }
        }
      });
    }
  });

  describe('windows (injected clock)', () => {
    it('old slots leave the window', () => {
      const { store, clock } = setup();
      for (let i = 0; i < 10; i++) store.record(httpSpan('/a', 5));
      clock.advance(30_000);
      expect(routes(store, '1m')[0]?.count).to.equal(10);
      clock.advance(40_000); // 70 s later: out of 1m, still in 5m
      expect(routes(store, '1m')).to.deep.equal([]);
      expect(routes(store, '5m')[0]?.count).to.equal(10);
      clock.advance(5 * 60_000);
      expect(routes(store, '5m')).to.deep.equal([]);
      expect(routes(store, '15m')[0]?.count).to.equal(10);
      expect(routes(store, '1h')[0]?.count).to.equal(10);
      clock.advance(3_600_000);
      expect(routes(store, '1h')).to.deep.equal([]);
    });

    it('rate_per_s divides by the time the window covers since the store started', () => {
      const { store, clock } = setup();
      // 2 spans/s for 30 s after start
      for (let i = 0; i < 60; i++) {
        clock.advance(500);
        store.record(httpSpan('/a', 5));
      }
      const res = queryRoutes(store, { window: '1m' });
      expect(res.covered_s).to.equal(30);
      expect(res.routes[0]?.rate_per_s).to.equal(2);
      // 5 minutes later, steady 1 span/s: the 5m window covers (4m50s, 5m] of wall time
      clock.advance(600_000 - 30_000);
      for (let i = 0; i < 600; i++) {
        clock.advance(1000);
        store.record(httpSpan('/a', 5));
      }
      clock.advance(5000); // mid-slot: the window is 29 full slots + 5 s = 295 s
      const five = queryRoutes(store, { window: '5m' });
      expect(five.covered_s).to.equal(295);
      // spans at +910 s … +1200 s (one a second) are inside
      expect(five.routes[0]?.count).to.equal(291);
      expect(five.routes[0]?.rate_per_s).to.be.closeTo(291 / 295, 1e-5);
    });

    it('a time series per slot for one route', () => {
      const { store, clock } = setup();
      for (let s = 0; s < 6; s++) {
        for (let i = 0; i < s; i++) store.record(httpSpan('/a', 10 * (s + 1)));
        clock.advance(10_000);
      }
      clock.advance(-1); // stay in the 6th slot
      const entries = store.find('shop', 'GET', '/a');
      const win = store.resolveWindow(60_000);
      const series = store.series(entries, win);
      expect(series.map((x) => x.count)).to.deep.equal([0, 1, 2, 3, 4, 5]);
      expect(series.map((x) => x.p50)).to.deep.equal([NaN, 20, 30, 40, 50, 60]);
      expect(series[1]?.ratePerS).to.equal(0.1);
      expect(series[0]?.startMs).to.equal(T0);
    });

    it('time never goes backwards: an earlier clock reading records into the latest slot', () => {
      const { store, clock } = setup();
      clock.advance(120_000);
      store.record(httpSpan('/a', 5));
      clock.advance(-100_000);
      store.record(httpSpan('/a', 5));
      clock.advance(100_000);
      expect(routes(store, '1m')[0]?.count).to.equal(2);
    });

    it('an explicit receive time per batch is honoured', () => {
      const { store } = setup();
      store.record(httpSpan('/a', 5), T0 + 200_000);
      expect(queryRoutes(store, { window: '1m' }, T0 + 210_000).routes[0]?.count).to.equal(1);
    });
  });

  describe('exemplars', () => {
    it('keeps the slowest spans per slot and lists the slowest first', () => {
      const { store, clock } = setup();
      for (let i = 1; i <= 100; i++) {
        store.record(httpSpan('/a', i, { traceId: traceIdOf(i), spanId: spanIdOf(i), endTimeMs: T0 + i }));
        if (i % 25 === 0) clock.advance(10_000);
      }
      const entries = store.find('shop', 'GET', '/a');
      const ex = store.exemplars(entries, store.resolveWindow(300_000), 3);
      expect(ex.map((e) => [e.traceId, e.valueMs])).to.deep.equal([
        [traceIdOf(100), 100],
        [traceIdOf(99), 99],
        [traceIdOf(75), 75],
      ]);
    });
  });

  describe('dimensions', () => {
    it('splits routes by span then resource attribute, with defaults; absent ones are left out', () => {
      const { store } = setup({ dimensions: [{ name: 'region' }, { name: 'tier', default: 'free' }] });
      store.record(httpSpan('/a', 1, { attributes: { 'http.route': '/a', region: 'eu' } }));
      store.record(httpSpan('/a', 1, { attributes: { 'http.route': '/a' }, resource: { region: 'us', tier: 'pro' } }));
      store.record(httpSpan('/a', 1, { attributes: { 'http.route': '/a', region: 'us' }, resource: { region: 'ignored', tier: 'pro' } }));
      store.record(httpSpan('/a', 1, { attributes: { 'http.route': '/a' } }));
      const dims = routes(store).map((r) => [r.dimensions, r.count]);
      expect(dims).to.have.deep.members([
        [{ region: 'eu', tier: 'free' }, 1],
        [{ region: 'us', tier: 'pro' }, 2],
        [{ tier: 'free' }, 1],
      ]);
      expect(store.find('shop', 'GET', '/a').length).to.equal(3);
      expect(store.find('shop', 'GET', '/a', { region: 'us' }).length).to.equal(1);
    });
  });

  describe('cardinality and memory', () => {
    it('100 000 distinct raw paths without http.route stay within the cap, overflow is counted, memory bounded', () => {
      const { store, clock } = setup();
      const span = new MutableSpan();
      span.service = 'crawler-target';
      span.name = 'GET';
      span.durationNs = 2e6;
      span.attrs.set('http.request.method', 'GET').set('http.response.status_code', 200);
      const word = (i: number): string => {
        let s = '';
        for (let n = i; n > 0 || s === ''; n = Math.floor(n / 26)) s += String.fromCharCode(97 + (n % 26));
        return s;
      };
      const run = (from: number, to: number): void => {
        for (let i = from; i < to; i++) {
          span.attrs.set('url.path', `/search/${word(i)}`); // letters only: not templated
          if (i % 1000 === 0) clock.advance(1000);
          store.record(span);
        }
      };
      run(0, 100_000);
      const s1 = store.stats();
      expect(s1.routes).to.equal(1001); // 1000 routes + __other__
      expect(s1.overflowRoutes).to.equal(1);
      expect(s1.overflowSpans).to.equal(99_000);
      expect(s1.spansRecorded).to.equal(100_000);
      // ~3.5 kB per quiet route (measured heap agrees within a few %)
      expect(s1.memoryBytes).to.be.lessThan(1001 * 6_000);
      const other = store.find('crawler-target', '', '__other__');
      expect(other.length).to.equal(1);
      expect(queryRoutes(store, { window: '5m', sort: 'count', limit: 1 }).routes[0]).to.include({
        route: '__other__',
        count: 99_000,
        route_source: 'overflow',
        method: '',
      });
      run(100_000, 200_000);
      const s2 = store.stats();
      expect(s2.routes).to.equal(1001);
      expect(s2.overflowSpans).to.equal(199_000);
      expect(s2.memoryBytes).to.be.lessThan(s1.memoryBytes * 1.2);
    });

    it('100 000 ids in paths collapse into one templated route', () => {
      const { store } = setup();
      const span = new MutableSpan();
      span.name = 'GET';
      span.attrs.set('http.method', 'GET');
      for (let i = 0; i < 100_000; i++) {
        span.attrs.set('http.target', `/users/${i}/orders?page=${i}`);
        store.record(span);
      }
      expect(store.stats().routes).to.equal(1);
      expect(routes(store)[0]).to.include({ route: '/users/{id}/orders', count: 100_000, route_source: 'http.target' });
    });

    it('the total route cap and the service cap send spans to __other__', () => {
      const { store } = setup({ maxRoutes: 3, maxServices: 2 });
      for (const r of ['/a', '/b', '/c', '/d']) store.record(httpSpan(r, 1));
      store.record(httpSpan('/a', 1, { service: 'second' }));
      store.record(httpSpan('/a', 1, { service: 'third' }));
      const keys = routes(store).map((r) => `${r.service} ${r.route} ${r.count}`);
      expect(keys).to.deep.equal(['__other__ __other__ 1', 'second __other__ 1', 'shop /a 1', 'shop /b 1', 'shop /c 1', 'shop __other__ 1']);
      expect(store.stats().overflowSpans).to.equal(3);
    });

    it('idle routes expire and free their slot in the cap', () => {
      const { store, clock } = setup({ maxRoutesPerService: 2, routeExpiryMs: 3_600_000 });
      store.record(httpSpan('/a', 1));
      store.record(httpSpan('/b', 1));
      clock.advance(1_800_000);
      store.record(httpSpan('/b', 1));
      clock.advance(1_900_000); // /a idle for 61 min 40 s, /b for 31 min 40 s
      store.record(httpSpan('/c', 1));
      const s = store.stats();
      expect(s.expiredRoutes).to.equal(1);
      expect(store.find('shop', 'GET', '/a')).to.deep.equal([]);
      expect(store.find('shop', 'GET', '/c').length).to.equal(1);
      expect(s.overflowSpans).to.equal(0);
      clock.advance(4 * 3_600_000);
      expect(store.sweep()).to.equal(2);
      expect(store.stats()).to.include({ routes: 0, services: 0 });
    });

    it('memory per route is reported and bounded for a busy route', () => {
      const { store, clock } = setup();
      const r = rng(5);
      const span = new MutableSpan();
      span.attrs.set('http.route', '/busy');
      for (let i = 0; i < 200_000; i++) {
        span.durationNs = distributions.lognormal!(r) * 1e6;
        clock.advance(20); // 4000 s: every slot of both tiers filled
        store.record(span);
      }
      const s = store.stats();
      expect(s.routes).to.equal(1);
      expect(s.maxRouteBytes).to.equal(s.memoryBytes);
      // 90 slots × (sketch ≈ 1.5–2 kB for a lognormal spanning ~7 octaves, slot object, exemplars): ~200 kB,
      // far below the hard bound of 90 × (3584 buckets × 4 B + overhead) ≈ 1.4 MB
      expect(s.memoryBytes).to.be.within(50_000, 300_000);
    });
  });
});
