import { expect } from 'chai';
import * as os from 'node:os';
import { Writable } from 'node:stream';
import { ConfigErrorList } from '../../core/schema';
import type { MetricsConsumer } from '../../consumer/consumer';
import { protoType, TYPES } from '../../pdata/proto';
import { TraceBatch } from '../../pdata/trace-batch';
import { createLogger } from '../../telemetry/logger';
import { Telemetry } from '../../core/telemetry';
import { routeLatencyConfigSchema, type RouteLatencyConfig } from './config';
import { bucketIndex, ExpoHistogram } from '../../pdata/expo-histogram';
import { RouteLatencyConnector } from './factory';
import { RouteMetricsRecorder } from './metrics';
import { decodeMetricsRequest, type DecodedMetricsRequest } from '../../../test/support/metrics-scrape';
import { collectMetricsRequest, encodeMetricsRequest, OTLP_METRIC_NAMES, PROCESS_INSTANCE_ID } from './otlp-metrics';
import { ObjectSpanInput, SpanKind } from './span-input';
import { RouteStore, routeStoreOptions } from './store';
import { FakeClock, rng } from '../../../test/support/route-spans';

const T0 = 1_699_999_980_000;

function config(metrics: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): RouteLatencyConfig {
  const issues = new ConfigErrorList();
  const c = routeLatencyConfigSchema.parse({ ...extra, metrics }, 'connectors.routelatency', issues);
  expect(issues.items).to.deep.equal([]);
  return c;
}

function setup(metrics: Record<string, unknown> = {}): { store: RouteStore; rec: RouteMetricsRecorder; clock: FakeClock } {
  const c = config(metrics);
  const clock = new FakeClock(T0);
  const store = new RouteStore(routeStoreOptions(c, clock));
  return { store, rec: new RouteMetricsRecorder(store, { config: c.metrics, exportSketches: true }), clock };
}

function span(route: string, ms: number, status = 200): ObjectSpanInput {
  return new ObjectSpanInput({
    service: 'shop',
    kind: SpanKind.SERVER,
    name: `GET ${route}`,
    durationNs: ms * 1e6,
    attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': status },
  });
}

function record(store: RouteStore, rec: RouteMetricsRecorder, s: ObjectSpanInput): void {
  const now = store.clock.now();
  if (store.record(s, now)) rec.recordLast(s, now);
}

function collect(rec: RouteMetricsRecorder, nowMs: number): DecodedMetricsRequest | undefined {
  const req = collectMetricsRequest(rec, nowMs, 'routelatency');
  if (req === undefined) return undefined;
  const decoded = decodeMetricsRequest(encodeMetricsRequest(req));
  expect(decoded).to.have.length(1);
  return decoded[0];
}

function metric(req: DecodedMetricsRequest | undefined, name: string): DecodedMetricsRequest['metrics'][number] {
  const m = req?.metrics.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  return m;
}

function pointOf(req: DecodedMetricsRequest | undefined, route: string): ExpoHistogram {
  const p = metric(req, OTLP_METRIC_NAMES.duration).expo.find((x) => x.attributes['http.route'] === route);
  if (p === undefined) throw new Error(`no point for ${route}`);
  return p.sketch;
}

describe('route metrics over OTLP', () => {
  it('cumulative: one exponential histogram point and call/error sums per route, identified by the resource', () => {
    const { store, rec, clock } = setup();
    const r = rng(3);
    const values: number[] = [];
    for (let i = 0; i < 500; i++) {
      const v = 1 + r() * 400;
      values.push(v);
      record(store, rec, span('/a', v, i % 50 === 0 ? 500 : 200));
    }
    clock.advance(5000);
    record(store, rec, span('/b', 12));
    const req = collect(rec, clock.now());
    expect(req?.resource).to.deep.include({ 'service.name': 'routelens', 'service.instance.id': PROCESS_INSTANCE_ID, 'host.name': os.hostname() });
    expect(PROCESS_INSTANCE_ID).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(req?.scope.name).to.equal('routelens/connector/routelatency');
    const d = metric(req, OTLP_METRIC_NAMES.duration);
    expect([d.kind, d.unit, d.temporality]).to.deep.equal(['exponentialHistogram', 'ms', 2]);
    expect(d.expo.map((p) => p.attributes)).to.deep.equal([
      { 'service.name': 'shop', 'http.request.method': 'GET', 'http.route': '/a' },
      { 'service.name': 'shop', 'http.request.method': 'GET', 'http.route': '/b' },
    ]);
    expect(d.expo.map((p) => [p.startMs, p.timeMs])).to.deep.equal([
      [T0, T0 + 5000],
      [T0 + 5000, T0 + 5000],
    ]);
    // the point is the sketch: the same quantiles as a sketch fed the same values
    const direct = new ExpoHistogram();
    for (const v of values) direct.record(v);
    const a = pointOf(req, '/a');
    expect(a.scale).to.equal(6);
    expect(a.toOtlp()).to.deep.equal({ ...direct.toOtlp(), sum: a.sum });
    expect(a.sum).to.be.closeTo(direct.sum, 1e-9 * direct.sum);
    expect(a.quantiles([0.5, 0.95, 0.99])).to.deep.equal(direct.quantiles([0.5, 0.95, 0.99]));
    const calls = metric(req, OTLP_METRIC_NAMES.requests);
    expect([calls.kind, calls.temporality, calls.monotonic, calls.unit]).to.deep.equal(['sum', 2, true, '{request}']);
    expect(calls.sums.map((s) => s.value)).to.deep.equal([500, 1]);
    expect(metric(req, OTLP_METRIC_NAMES.errors).sums.map((s) => s.value)).to.deep.equal([10, 0]);
    // keeps accumulating
    record(store, rec, span('/b', 14));
    clock.advance(1000);
    const again = collect(rec, clock.now());
    expect(metric(again, OTLP_METRIC_NAMES.requests).sums.map((s) => [s.value, s.startMs])).to.deep.equal([
      [500, T0],
      [2, T0 + 5000],
    ]);
  });

  it('delta: only routes with new spans, each interval once; the deltas merge into the cumulative sketch', () => {
    const d = setup({ aggregation_temporality: 'AGGREGATION_TEMPORALITY_DELTA' });
    const c = setup();
    const r = rng(11);
    const merged = new ExpoHistogram();
    let cumulative: DecodedMetricsRequest | undefined;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 100; i++) {
        const v = 0.5 + r() * 2000;
        const s = span(round === 2 ? '/only-b' : '/a', v);
        record(d.store, d.rec, s);
        record(c.store, c.rec, s);
      }
      d.clock.advance(10_000);
      c.clock.advance(10_000);
      const delta = collect(d.rec, d.clock.now());
      cumulative = collect(c.rec, c.clock.now());
      const h = metric(delta, OTLP_METRIC_NAMES.duration);
      expect(h.temporality).to.equal(1);
      expect(h.expo).to.have.length(1); // only the route that had spans
      const p = h.expo[0]!;
      expect(p.attributes['http.route']).to.equal(round === 2 ? '/only-b' : '/a');
      expect(p.sketch.count).to.equal(100);
      expect(metric(delta, OTLP_METRIC_NAMES.requests).sums[0]?.value).to.equal(100);
      if (round !== 2) merged.merge(p.sketch);
      // start: the previous flush that reported the route (no gap across an empty interval), or its creation
      if (round > 0) expect(p.startMs).to.equal(T0 + (round === 3 ? 20_000 : 10_000 * round));
    }
    expect(collect(d.rec, d.clock.now() + 1000)).to.equal(undefined);
    const cum = pointOf(cumulative, '/a');
    expect(merged.toOtlp().positive).to.deep.equal(cum.toOtlp().positive);
    expect(merged.quantiles([0.5, 0.9, 0.99, 0.999])).to.deep.equal(cum.quantiles([0.5, 0.9, 0.99, 0.999]));
  });

  it('unit s: the sketch records seconds, so buckets are exact in seconds', () => {
    const { store, rec, clock } = setup({ unit: 's' });
    for (const ms of [1500, 1500, 3, 250]) record(store, rec, span('/a', ms));
    const req = collect(rec, clock.now());
    expect(metric(req, OTLP_METRIC_NAMES.duration).unit).to.equal('s');
    const h = pointOf(req, '/a');
    expect([h.min, h.max, h.count]).to.deep.equal([0.003, 1.5, 4]);
    expect(h.sum).to.be.closeTo(3.253, 1e-12);
    const buckets: [number, number][] = [];
    h.forEachBucket((i, n) => buckets.push([i, n]));
    expect(buckets).to.deep.equal([
      [bucketIndex(0.003, 6), 1],
      [bucketIndex(0.25, 6), 1],
      [bucketIndex(1.5, 6), 2],
    ]);
  });

  describe('connector', () => {
    function connector(metricsCfg: Record<string, unknown>, consumer: MetricsConsumer): { conn: RouteLatencyConnector; telemetry: Telemetry; logs: string[] } {
      const logs: string[] = [];
      const logger = createLogger({ level: 'warn', destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) });
      const telemetry = new Telemetry();
      const conn = new RouteLatencyConnector({ id: 'routelatency', logger, telemetry }, config(metricsCfg), { traces: undefined, metrics: consumer });
      return { conn, telemetry, logs };
    }

    function batch(n: number, ms: number): TraceBatch {
      const T = protoType(TYPES.exportTraceRequest);
      const spans = Array.from({ length: n }, (_, i) => ({
        traceId: Buffer.alloc(16, i + 1),
        spanId: Buffer.alloc(8, i + 1),
        name: 'GET /x',
        kind: 2,
        startTimeUnixNano: '1700000000000000000',
        endTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(ms * 1e6)),
        attributes: [{ key: 'http.route', value: { stringValue: '/x' } }],
      }));
      const obj = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] }, scopeSpans: [{ spans }] }] };
      return TraceBatch.decode(T.encode(T.fromObject(obj)).finish());
    }

    async function until(cond: () => boolean, what: string): Promise<void> {
      for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
      if (!cond()) throw new Error(`timed out waiting for ${what}`);
    }

    it('sends every flush_interval and once more on shutdown; nothing when no route has data', async () => {
      const got: Uint8Array[] = [];
      const { conn, telemetry } = connector(
        { flush_interval: '100ms', aggregation_temporality: 'AGGREGATION_TEMPORALITY_DELTA' },
        { consumeMetrics: async (b) => void got.push(b.encode()) },
      );
      await conn.start();
      try {
        await conn.consumeTraces(batch(3, 7), {});
        await until(() => got.length >= 1, 'a flush');
        const first = decodeMetricsRequest(got[0]!)[0];
        expect(metric(first, OTLP_METRIC_NAMES.requests).sums.map((s) => s.value)).to.deep.equal([3]);
        expect(pointOf(first, '/x').max).to.equal(7);
        // nothing new: delta flushes send nothing
        const before = got.length;
        await conn.flush();
        expect(got.length).to.equal(before);
        await conn.consumeTraces(batch(2, 9), {});
      } finally {
        await conn.shutdown();
      }
      const total = got.flatMap((b) => metric(decodeMetricsRequest(b)[0], OTLP_METRIC_NAMES.requests).sums.map((s) => s.value)).reduce((a, b) => a + b, 0);
      expect(total).to.equal(5); // the last 2 went out by a timer flush or the shutdown flush
      expect(telemetry.counterValue('routelens_route_metrics_flushes', { outcome: 'sent' })).to.equal(got.length);
      const n = got.length;
      await conn.shutdown(); // safe twice, no second final flush
      expect(got.length).to.equal(n);
    });

    it('shutdown flushes what the timer has not sent yet', async () => {
      const got: Uint8Array[] = [];
      const { conn } = connector({ flush_interval: '1h' }, { consumeMetrics: async (b) => void got.push(b.encode()) });
      await conn.start();
      await conn.consumeTraces(batch(4, 3), {});
      expect(got).to.have.length(0);
      await conn.shutdown();
      expect(got).to.have.length(1);
      expect(metric(decodeMetricsRequest(got[0]!)[0], OTLP_METRIC_NAMES.requests).sums[0]?.value).to.equal(4);
    });

    it('a refused request is logged and counted, never thrown', async () => {
      const { conn, telemetry, logs } = connector({ flush_interval: '1h' }, { consumeMetrics: async () => Promise.reject(new Error('queue is full')) });
      await conn.start();
      await conn.consumeTraces(batch(1, 3), {});
      await conn.flush();
      expect(telemetry.counterValue('routelens_route_metrics_flushes', { outcome: 'failed' })).to.equal(1);
      expect(logs.join('')).to.include('queue is full');
      await conn.shutdown();
      expect(telemetry.counterValue('routelens_route_metrics_flushes', { outcome: 'failed' })).to.equal(2);
    });
  });
});
