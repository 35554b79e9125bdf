/**
 * Worker stores merged through snapshot/mergeSnapshot must answer exactly as one store that saw every span
 * (the sketches share a scale and slots have absolute periods) — what `--workers N` relies on.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { queryRoutes } from './query';
import { RouteStore } from './store';
import { FakeClock, MutableSpan } from './testing';

interface Rec {
  route: number;
  ms: number;
  at: number;
  worker: number;
  error: boolean;
}

describe('RouteStore snapshot and merge', () => {
  it('merging per-worker stores equals one store fed every span (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            route: fc.integer({ min: 0, max: 4 }),
            ms: fc.double({ min: 0.01, max: 60_000, noNaN: true }),
            at: fc.integer({ min: 0, max: 20 * 60_000 }),
            worker: fc.integer({ min: 0, max: 2 }),
            error: fc.boolean(),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        (recs: Rec[]) => {
          const t0 = 1_700_000_000_000;
          const clocks = [0, 1, 2, 3].map(() => new FakeClock(t0));
          const stores = clocks.map((c) => new RouteStore({ clock: c }));
          const span = new MutableSpan();
          for (const r of [...recs].sort((a, b) => a.at - b.at)) {
            span.attrs.set('http.route', `/r${r.route}`);
            span.attrs.set('http.request.method', 'GET');
            span.durationNs = r.ms * 1e6;
            span.statusCode = r.error ? 2 : 0;
            for (const i of [3, r.worker]) (stores[i] as RouteStore).record(span, t0 + r.at);
          }
          const last = t0 + Math.max(...recs.map((r) => r.at));
          for (const c of clocks) c.t = last;
          const merged = new RouteStore({ clock: clocks[3] as FakeClock });
          for (const s of stores.slice(0, 3)) merged.mergeSnapshot(JSON.parse(JSON.stringify(s.snapshot())));
          for (const window of ['1m', '5m', '15m', '1h']) {
            const want = queryRoutes(stores[3] as RouteStore, { window, sort: 'route' }, last);
            const got = queryRoutes(merged, { window, sort: 'route' }, last);
            const strip = (r: typeof want): unknown => r.routes.map(({ rate_per_s: _rate, ...rest }) => rest);
            expect(strip(got), window).to.deep.equal(strip(want));
          }
        },
      ),
      { numRuns: 60 },
    );
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
