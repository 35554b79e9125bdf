/**
 * Micro-benchmark of the route engine (not a test): ns per sketch record, ns per RouteStore.record, bytes per
 * route. Run: `npx tsc -p tsconfig.json && node dist/bench/sketch.js`
 * (add `--expose-gc` to also measure the heap, not only the store's own estimate).
 */
import { ExpoHistogram } from '../src/pdata/expo-histogram';
import { queryRoutes } from '../src/connectors/routelatency/query';
import { RouteStore } from '../src/connectors/routelatency/store';
import { distributions, FakeClock, MutableSpan, rng } from '../test/support/route-spans';

const T0 = 1_699_999_980_000;
const gc = (globalThis as { gc?: () => void }).gc;

function heap(): number | undefined {
  if (gc === undefined) return undefined;
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** CPU time (user + system) per operation in ns: steadier than wall time on a shared machine. */
function nsPer(n: number, fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

function best(runs: number, n: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, nsPer(n, fn));
  return b;
}

function lognormalValues(n: number): Float64Array {
  const r = rng(42);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = distributions.lognormal!(r);
  return out;
}

const rows: [string, string][] = [];
const row = (name: string, value: string): void => {
  rows.push([name, value]);
};

// 1. sketch record
{
  const N = 2_000_000;
  const values = lognormalValues(N);
  const h = new ExpoHistogram();
  const ns = best(5, N, () => {
    h.reset();
    for (let i = 0; i < N; i++) h.record(values[i] as number);
  });
  row('ExpoHistogram.record (lognormal ms)', `${ns.toFixed(1)} ns`);
  row('  buckets used / allocated, bytes', `${h.toOtlp().positive.bucketCounts.length} / ${h.capacity}, ${h.memoryBytes()} B`);
  const qs = [0.5, 0.9, 0.95, 0.99, 0.999];
  const qns = best(5, 1000, () => {
    for (let i = 0; i < 1000; i++) h.quantiles(qs);
  });
  row('ExpoHistogram.quantiles (5 qs)', `${(qns / 1000).toFixed(2)} µs`);
  const other = h.clone();
  const mns = best(5, 1000, () => {
    const m = new ExpoHistogram({ wide: true });
    for (let i = 0; i < 1000; i++) m.merge(other);
  });
  row('ExpoHistogram.merge (one slot-sized sketch)', `${(mns / 1000).toFixed(2)} µs`);
}

// 2. store record: cold (first hour: every slot allocated and grown once) and warm (slots reused)
function cpuNsPer(n: number, fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

function storeBench(label: string, routes: number, setRoute: (span: MutableSpan, i: number) => void): void {
  const N = 1_000_000;
  const values = lognormalValues(N);
  const clock = new FakeClock(T0);
  const store = new RouteStore({ clock });
  const views = Array.from({ length: routes }, (_, i) => {
    const s = new MutableSpan();
    s.name = 'GET';
    s.attrs.set('http.request.method', 'GET').set('http.response.status_code', 200);
    setRoute(s, i);
    return s;
  });
  // 1000 spans/s in total (5/s per route): 1 M spans = 1000 s of traffic
  const pass = (): void => {
    for (let i = 0; i < N; i++) {
      const s = views[i % routes] as MutableSpan;
      s.durationNs = (values[i] as number) * 1e6;
      clock.advance(1);
      store.record(s, clock.t);
    }
  };
  const cold = cpuNsPer(N, pass);
  for (let k = 0; k < 3; k++) pass(); // past one hour: every ring has come round
  let warm = Infinity;
  for (let k = 0; k < 3; k++) warm = Math.min(warm, cpuNsPer(N, pass));
  row(`RouteStore.record, ${label}`, `${warm.toFixed(0)} ns warm, ${cold.toFixed(0)} ns cold (CPU time)`);
}

storeBench('200 routes via http.route', 200, (s, i) => {
  s.attrs.set('http.route', `/api/r${i}/{id}`);
});
storeBench('200 routes via url.path templating', 200, (s, i) => {
  s.attrs.set('url.path', `/api/r${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}x/${1000 + i}/items`);
});

// 3. bytes per route
{
  const clock = new FakeClock(T0);
  const before = heap();
  const store = new RouteStore({ clock });
  const span = new MutableSpan();
  span.attrs.set('http.route', '/busy/{id}');
  const r = rng(7);
  for (let i = 0; i < 400_000; i++) {
    span.durationNs = distributions.lognormal!(r) * 1e6;
    clock.advance(10); // 100 spans/s for 4000 s: every slot of every tier filled
    store.record(span);
  }
  const s = store.stats();
  const after = heap();
  row(
    'bytes per busy route (all 90 slots filled, lognormal σ=0.8)',
    `${s.memoryBytes} B estimated${after === undefined || before === undefined ? '' : `, ${after - before} B measured`}`,
  );
}
{
  const clock = new FakeClock(T0);
  const before = heap();
  const store = new RouteStore({ clock, maxRoutesPerService: 1e9, maxRoutes: 1e9 });
  const span = new MutableSpan();
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    span.attrs.set('http.route', `/quiet/${i.toString(36)}x`);
    span.durationNs = 5e6;
    store.record(span);
  }
  const s = store.stats();
  const after = heap();
  row(
    'bytes per quiet route (one span)',
    `${Math.round(s.memoryBytes / s.routes)} B estimated${after === undefined || before === undefined ? '' : `, ${Math.round((after - before) / s.routes)} B measured`}`,
  );
  const qns = best(3, 1, () => {
    queryRoutes(store, { window: '5m', limit: 100 });
  });
  row(`queryRoutes over ${s.routes} quiet routes`, `${(qns / 1e6).toFixed(1)} ms`);
}

const w = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
