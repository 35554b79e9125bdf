import { expect } from 'chai';
import fc from 'fast-check';
import { ConfigErrorList } from '../../core/schema';
import { renderPrometheus } from '../../core/telemetry';
import { routeLatencyConfigSchema, SPANMETRICS_DEFAULT_BUCKETS_MS, type RouteLatencyConfig } from './config';
import { bucketOf, formatWindow, metricNames, promMetricName, RouteMetricsRecorder } from './metrics';
import { parseExposition, samplesOf, type ParsedExposition } from '../../../test/support/metrics-scrape';
import { ObjectSpanInput, SpanKind, type PlainSpan } from './span-input';
import { RouteStore, routeStoreOptions } from './store';
import { FakeClock, rng } from '../../../test/support/route-spans';

const PATH = 'connectors.routelatency';
/** On a 1-minute boundary. */
const T0 = 1_699_999_980_000;

function parse(raw: unknown): { config: RouteLatencyConfig; errors: string[] } {
  const issues = new ConfigErrorList();
  const config = routeLatencyConfigSchema.parse(raw, PATH, issues);
  return { config, errors: issues.items.map((i) => `${i.path}: ${i.message}`) };
}

function setup(
  raw: Record<string, unknown> = {},
  exportSketches = false,
): { store: RouteStore; rec: RouteMetricsRecorder; clock: FakeClock; config: RouteLatencyConfig } {
  const { config, errors } = parse(raw);
  expect(errors).to.deep.equal([]);
  const clock = new FakeClock(T0);
  const store = new RouteStore(routeStoreOptions(config, clock));
  const rec = new RouteMetricsRecorder(store, { config: config.metrics, exportSketches });
  return { store, rec, clock, config };
}

let idCounter = 0;
function span(route: string, ms: number, extra: Partial<PlainSpan> = {}, status = 200, method = 'GET'): ObjectSpanInput {
  idCounter++;
  return new ObjectSpanInput({
    service: 'shop',
    kind: SpanKind.SERVER,
    name: `${method} ${route}`,
    durationNs: ms * 1e6,
    endTimeMs: T0 + idCounter,
    attributes: { 'http.route': route, 'http.request.method': method, 'http.response.status_code': status },
    traceId: idCounter.toString(16).padStart(32, '0'),
    spanId: idCounter.toString(16).padStart(16, 'a'),
    ...extra,
  });
}

function record(store: RouteStore, rec: RouteMetricsRecorder, s: ObjectSpanInput, now = store.clock.now()): void {
  if (store.record(s, now)) rec.recordLast(s, now);
}

function scrape(rec: RouteMetricsRecorder, openMetrics = false): ParsedExposition {
  return parseExposition(renderPrometheus(rec.families(), openMetrics));
}

describe('route metrics', () => {
  describe('config (metrics section)', () => {
    it('has the spanmetrics defaults', () => {
      const { config, errors } = parse(undefined);
      expect(errors).to.deep.equal([]);
      expect(config.metrics).to.deep.equal({
        namespace: 'traces.span.metrics',
        unit: 'ms',
        explicit_buckets: [...SPANMETRICS_DEFAULT_BUCKETS_MS],
        route_buckets: [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10_000],
        summary_window: undefined,
        exemplars: true,
        flush_interval: 60_000,
        aggregation_temporality: 'AGGREGATION_TEMPORALITY_CUMULATIVE',
      });
    });

    it('reads every key', () => {
      const { config, errors } = parse({
        windows: ['1m', '15m'],
        metrics: {
          namespace: 'spans',
          unit: 's',
          explicit_buckets: ['500us', '1ms', '1.5s'],
          route_buckets: ['10ms', '1s'],
          summary_window: '15m',
          exemplars: false,
          flush_interval: '250ms',
          aggregation_temporality: 'AGGREGATION_TEMPORALITY_DELTA',
        },
      });
      expect(errors).to.deep.equal([]);
      expect(config.metrics).to.deep.equal({
        namespace: 'spans',
        unit: 's',
        explicit_buckets: [0.5, 1, 1500],
        route_buckets: [10, 1000],
        summary_window: 900_000,
        exemplars: false,
        flush_interval: 250,
        aggregation_temporality: 'AGGREGATION_TEMPORALITY_DELTA',
      });
    });

    it('reports bad values with their paths', () => {
      const { errors } = parse({
        dimensions: [{ name: 'service.name' }, { name: 'a.b' }, { name: 'a_b' }],
        metrics: {
          unit: 'us',
          explicit_buckets: ['2ms', '2ms', '1ms', 0],
          summary_window: '10m',
          flush_interval: '10ms',
          aggregation_temporality: 'DELTA',
          nope: 1,
        },
      });
      expect(errors).to.have.members([
        `${PATH}.metrics.nope: unknown key "nope"; expected one of namespace, unit, explicit_buckets, route_buckets, summary_window, exemplars, flush_interval, aggregation_temporality`,
        `${PATH}.metrics.unit: invalid value "us"; expected one of "ms", "s"`,
        `${PATH}.metrics.explicit_buckets[1]: invalid bucket bound "2ms"; bounds must be strictly ascending`,
        `${PATH}.metrics.explicit_buckets[2]: invalid bucket bound "1ms"; bounds must be strictly ascending`,
        `${PATH}.metrics.explicit_buckets[3]: invalid bucket bound 0; expected a positive duration`,
        `${PATH}.metrics.flush_interval: invalid value "10ms"; expected a duration of at least 100ms`,
        `${PATH}.metrics.aggregation_temporality: invalid value "DELTA"; expected one of "AGGREGATION_TEMPORALITY_CUMULATIVE", "AGGREGATION_TEMPORALITY_DELTA"`,
        `${PATH}.metrics.summary_window: invalid value "10m"; expected one of the windows (1m, 5m, 15m, 1h)`,
        `${PATH}.dimensions[0].name: dimension "service.name" would be the metric label "service_name", which routelens sets itself`,
        `${PATH}.dimensions[2].name: dimensions "a.b" and "a_b" would both be the metric label "a_b"`,
      ]);
    });
  });

  describe('names and buckets', () => {
    it('derives Prometheus names from namespace and unit', () => {
      expect(metricNames({ namespace: 'traces.span.metrics', unit: 'ms' })).to.deep.equal({
        calls: 'traces_span_metrics_calls',
        duration: 'traces_span_metrics_duration_milliseconds',
        durationUnit: 'milliseconds',
      });
      expect(metricNames({ namespace: '', unit: 's' })).to.deep.equal({ calls: 'calls', duration: 'duration_seconds', durationUnit: 'seconds' });
      expect(promMetricName('my-ns.v2')).to.equal('my_ns_v2');
      expect(formatWindow(300_000)).to.equal('5m');
      expect(formatWindow(3_600_000)).to.equal('1h');
      expect(formatWindow(90_000)).to.equal('90s');
    });

    it('bucketOf is the first upper-inclusive bound holding the value (property)', () => {
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 30 }),
          fc.double({ min: 0, max: 200_000, noNaN: true }),
          (raw, v) => {
            const bounds = Float64Array.from(raw.sort((a, b) => a - b));
            let expected = bounds.length;
            for (let i = 0; i < bounds.length; i++) {
              if (v <= (bounds[i] as number)) {
                expected = i;
                break;
              }
            }
            expect(bucketOf(bounds, v)).to.equal(expected);
          },
        ),
      );
    });
  });

  it('RouteStore.last describes the span the last record() counted; skipped spans leave it alone', () => {
    const { store } = setup();
    expect(store.record(span('/a', 600, {}, 503), T0)).to.equal(true);
    const a = store.last.entry;
    expect(a?.route).to.equal('/a');
    expect({ ...store.last, entry: undefined }).to.deep.equal({ entry: undefined, valueMs: 600, bucket: store.last.bucket, statusClass: 4, isError: true });
    expect(Math.pow(2, (store.last.bucket + 1) / 64)).to.be.at.least(600);
    expect(Math.pow(2, store.last.bucket / 64)).to.be.below(600);
    expect(store.record(new ObjectSpanInput({ service: 'shop', kind: SpanKind.CLIENT, name: 'GET' }), T0)).to.equal(false);
    expect(store.last.entry).to.equal(a);
    expect(store.record(span('/b', 0, {}, 204), T0)).to.equal(true);
    expect([store.last.entry?.route, store.last.valueMs, store.last.bucket, store.last.statusClass, store.last.isError]).to.deep.equal([
      '/b',
      0,
      NaN,
      1,
      false,
    ]);
  });

  describe('Prometheus series', () => {
    it('spanmetrics-compatible series per route, span kind and status code', () => {
      const { store, rec } = setup();
      record(store, rec, span('/users/{id}', 3));
      record(store, rec, span('/users/{id}', 7, { statusCode: 'ERROR' }, 500));
      record(store, rec, span('/users/{id}', 7, { statusCode: 'OK' }));
      record(store, rec, new ObjectSpanInput({ service: 'shop', kind: SpanKind.CONSUMER, name: 'orders process', durationNs: 20e6 }));
      record(store, rec, new ObjectSpanInput({ service: 'shop', kind: SpanKind.CLIENT, name: 'GET', durationNs: 1e6 })); // not counted
      const p = scrape(rec);
      expect(p.types.get('traces_span_metrics_calls_total')).to.equal('counter');
      expect(p.types.get('traces_span_metrics_duration_milliseconds')).to.equal('histogram');
      const calls = samplesOf(p, 'traces_span_metrics_calls_total');
      expect(calls.map((s) => [s.labels, s.value])).to.have.deep.members([
        [{ service_name: 'shop', span_name: 'GET /users/{id}', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_UNSET' }, 1],
        [{ service_name: 'shop', span_name: 'GET /users/{id}', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_ERROR' }, 1],
        [{ service_name: 'shop', span_name: 'GET /users/{id}', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_OK' }, 1],
        [{ service_name: 'shop', span_name: 'orders process', span_kind: 'SPAN_KIND_CONSUMER', status_code: 'STATUS_CODE_UNSET' }, 1],
      ]);
      const err = { span_name: 'GET /users/{id}', status_code: 'STATUS_CODE_ERROR' };
      const buckets = samplesOf(p, 'traces_span_metrics_duration_milliseconds_bucket', err);
      expect(buckets.map((b) => b.labels.le)).to.deep.equal([...SPANMETRICS_DEFAULT_BUCKETS_MS.map(String), '+Inf']);
      expect(buckets.map((b) => b.value)).to.deep.equal([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
      expect(samplesOf(p, 'traces_span_metrics_duration_milliseconds_sum', err)[0]?.value).to.equal(7);
      expect(samplesOf(p, 'traces_span_metrics_duration_milliseconds_count', err)[0]?.value).to.equal(1);
    });

    it('bucket counts are cumulative and equal a brute-force count, in ms and in s (property)', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 200 }), fc.boolean(), (values, seconds) => {
          const { store, rec } = setup({ metrics: { unit: seconds ? 's' : 'ms', namespace: 'x' } });
          for (const v of values) record(store, rec, span('/a', v));
          const p = scrape(rec);
          const name = seconds ? 'x_duration_seconds' : 'x_duration_milliseconds';
          const buckets = samplesOf(p, `${name}_bucket`);
          const bounds = [...SPANMETRICS_DEFAULT_BUCKETS_MS, Infinity];
          expect(buckets.map((b) => b.labels.le)).to.deep.equal(bounds.map((b) => (b === Infinity ? '+Inf' : String(seconds ? b / 1000 : b))));
          expect(buckets.map((b) => b.value)).to.deep.equal(bounds.map((b) => values.filter((v) => v <= b).length));
          const sum = values.reduce((a, b) => a + b, 0);
          expect(samplesOf(p, `${name}_sum`)[0]?.value).to.be.closeTo(seconds ? sum / 1000 : sum, 1e-9 * (sum + 1));
          const own = samplesOf(p, 'routelens_route_duration_seconds_bucket');
          expect(own.map((b) => b.value)).to.deep.equal(
            [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10_000, Infinity].map((b) => values.filter((v) => v <= b).length),
          );
        }),
        { numRuns: 50 },
      );
    });

    it('routelens series: seconds histogram, requests by status class, errors, windowed quantiles', () => {
      const { store, rec, clock } = setup({ metrics: { route_buckets: ['10ms', '100ms', '1s'] } });
      const r = rng(7);
      const values: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const v = Math.round(1 + r() * 300);
        values.push(v);
        record(store, rec, span('/orders/{id}', v, {}, i % 10 === 0 ? 503 : i % 10 === 1 ? 404 : 200, 'POST'));
      }
      record(store, rec, new ObjectSpanInput({ service: 'shop', kind: SpanKind.SERVER, name: 'helloworld.Greeter/SayHello', durationNs: 2e6 }));
      const p = scrape(rec);
      const route = { service_name: 'shop', http_method: 'POST', http_route: '/orders/{id}' };
      const b = samplesOf(p, 'routelens_route_duration_seconds_bucket', route);
      expect(b.map((s) => s.labels.le)).to.deep.equal(['0.01', '0.1', '1', '+Inf']);
      expect(b.map((s) => s.value)).to.deep.equal([10, 100, 1000, Infinity].map((x) => values.filter((v) => v <= x).length));
      expect(samplesOf(p, 'routelens_route_duration_seconds_count', route)[0]?.value).to.equal(1000);
      const req = samplesOf(p, 'routelens_route_requests_total', route);
      expect(Object.fromEntries(req.map((s) => [s.labels.status_class, s.value]))).to.deep.equal({ '2xx': 800, '4xx': 100, '5xx': 100 });
      expect(samplesOf(p, 'routelens_route_errors_total', route)[0]?.value).to.equal(100);
      // a route without HTTP information: no http_method label, status_class "none"
      const grpc = { service_name: 'shop', http_route: 'helloworld.Greeter/SayHello' };
      expect(samplesOf(p, 'routelens_route_requests_total', grpc).map((s) => [s.labels, s.value])).to.deep.equal([[{ ...grpc, status_class: 'none' }, 1]]);
      // quantiles: the store's window summary, in seconds
      const win = store.resolveWindow(300_000, clock.now());
      const sum = store.summarize(store.find('shop', 'POST', '/orders/{id}'), win);
      const q = samplesOf(p, 'routelens_route_latency_seconds', { ...route, window: '5m' });
      expect(q.map((s) => [s.labels.quantile, s.value])).to.deep.equal([
        ['0.5', sum.p50 / 1000],
        ['0.9', sum.p90 / 1000],
        ['0.95', sum.p95 / 1000],
        ['0.99', sum.p99 / 1000],
        ['0.999', sum.p999 / 1000],
      ]);
      const sorted = [...values].sort((a, c) => a - c);
      expect(q[2]?.value).to.be.closeTo((sorted[949] as number) / 1000, (0.0055 * (sorted[949] as number)) / 1000);
      expect(p.types.get('routelens_route_latency_seconds')).to.equal('summary');
      // the window moves on: quantiles become NaN, cumulative counts stay
      clock.advance(400_000);
      const later = scrape(rec);
      expect(Number.isNaN(samplesOf(later, 'routelens_route_latency_seconds', { ...route, quantile: '0.5' })[0]?.value)).to.equal(true);
      expect(samplesOf(later, 'routelens_route_latency_seconds_count', route)[0]?.value).to.equal(1000);
      expect(samplesOf(later, 'routelens_route_duration_seconds_count', route)[0]?.value).to.equal(1000);
    });

    it('dimensions become sanitised labels; absent ones are left out', () => {
      const { store, rec } = setup({ dimensions: [{ name: 'deployment.environment' }, { name: 'region', default: 'none' }] });
      record(store, rec, span('/a', 1, { resource: { 'deployment.environment': 'prod' } }));
      record(store, rec, span('/a', 1));
      const p = scrape(rec);
      expect(samplesOf(p, 'traces_span_metrics_calls_total').map((s) => s.labels)).to.have.deep.members([
        {
          service_name: 'shop',
          span_name: 'GET /a',
          deployment_environment: 'prod',
          region: 'none',
          span_kind: 'SPAN_KIND_SERVER',
          status_code: 'STATUS_CODE_UNSET',
        },
        { service_name: 'shop', span_name: 'GET /a', region: 'none', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_UNSET' },
      ]);
      expect(samplesOf(p, 'routelens_route_errors_total').map((s) => s.labels)).to.have.deep.members([
        { service_name: 'shop', http_method: 'GET', http_route: '/a', deployment_environment: 'prod', region: 'none' },
        { service_name: 'shop', http_method: 'GET', http_route: '/a', region: 'none' },
      ]);
    });

    it('exemplars: only in OpenMetrics, ids of recorded spans, refreshed at most once a second per bucket', () => {
      const { store, rec, clock } = setup();
      const first = span('/a', 3);
      const second = span('/a', 3.5);
      const slow = span('/a', 700);
      record(store, rec, first);
      record(store, rec, second); // same bucket, same second: the first stays
      record(store, rec, slow);
      expect(renderPrometheus(rec.families(), false)).to.not.include('trace_id');
      const om = scrape(rec, true);
      expect(om.eof).to.equal(true);
      const b4 = samplesOf(om, 'traces_span_metrics_duration_milliseconds_bucket', { le: '4' })[0];
      expect(b4?.exemplar).to.deep.equal({
        labels: { trace_id: first.traceIdHex(), span_id: first.spanIdHex() },
        value: 3,
        timestampS: first.endTimeMs / 1000,
      });
      const b800 = samplesOf(om, 'traces_span_metrics_duration_milliseconds_bucket', { le: '800' })[0];
      expect(b800?.exemplar?.labels.trace_id).to.equal(slow.traceIdHex());
      expect(samplesOf(om, 'traces_span_metrics_duration_milliseconds_bucket', { le: '2' })[0]?.exemplar).to.equal(undefined);
      const own = samplesOf(om, 'routelens_route_duration_seconds_bucket', { le: '0.75' })[0];
      expect(own?.exemplar).to.deep.include({ labels: { trace_id: slow.traceIdHex(), span_id: slow.spanIdHex() }, value: 0.7 });
      expect(om.units.get('routelens_route_duration_seconds')).to.equal('seconds');
      clock.advance(1000);
      record(store, rec, second);
      const later = scrape(rec, true);
      expect(samplesOf(later, 'traces_span_metrics_duration_milliseconds_bucket', { le: '4' })[0]?.exemplar?.labels.trace_id).to.equal(second.traceIdHex());
      // turned off
      const off = setup({ metrics: { exemplars: false } });
      record(off.store, off.rec, span('/a', 3));
      expect(renderPrometheus(off.rec.families(), true)).to.not.include('trace_id');
    });

    it('10 000 distinct raw paths give a bounded number of series with one overflow series, and no raw path', () => {
      const { store, rec } = setup({ max_routes_per_service: 20 });
      const word = (i: number): string => {
        let s = '';
        for (let n = i; ; n = Math.floor(n / 26) - 1) {
          s = String.fromCharCode(97 + (n % 26)) + s;
          if (n < 26) break;
        }
        return s;
      };
      for (let i = 0; i < 10_000; i++) {
        // half id-like (templated to one route), half distinct words (one route each until the cap)
        const path = i % 2 === 0 ? `/users/${i}/orders` : `/pages/${word(i)}`;
        const s = new ObjectSpanInput({
          service: 'shop',
          kind: SpanKind.SERVER,
          name: 'GET',
          durationNs: 1e6,
          attributes: { 'http.request.method': 'GET', 'url.path': path, 'http.response.status_code': 200 },
        });
        record(store, rec, s);
      }
      const p = scrape(rec);
      const calls = samplesOf(p, 'traces_span_metrics_calls_total');
      expect(calls).to.have.length(21); // 20 routes + __other__
      const other = calls.filter((s) => s.labels.span_name === '__other__');
      expect(other).to.have.length(1);
      expect(calls.find((s) => s.labels.span_name === 'GET /users/{id}/orders')?.value).to.equal(5000);
      expect(other[0]?.value).to.equal(10_000 - 5000 - 19);
      for (const s of p.samples) {
        for (const v of Object.values(s.labels)) expect(v).to.not.match(/\/users\/\d/);
      }
      const series = new Set(p.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`));
      expect(series.size).to.equal(p.samples.length);
      // per route: calls 1 + buckets 17 + sum + count; own histogram 15 + 2; requests 1; errors 1; summary 5 + 2
      expect(p.samples.length).to.equal(21 * (1 + 19 + 17 + 1 + 1 + 7));
    });

    it('series are dropped when the store expires their route', () => {
      const { store, rec, clock } = setup({ route_expiry: '1h' });
      record(store, rec, span('/old', 5));
      clock.advance(30 * 60_000);
      record(store, rec, span('/new', 5));
      clock.advance(31 * 60_000);
      store.sweep();
      const p = scrape(rec);
      expect(samplesOf(p, 'traces_span_metrics_calls_total').map((s) => s.labels.span_name)).to.deep.equal(['GET /new']);
      expect(samplesOf(p, 'routelens_route_errors_total').map((s) => s.labels.http_route)).to.deep.equal(['/new']);
      // a route that comes back starts again from zero
      record(store, rec, span('/old', 5));
      expect(samplesOf(scrape(rec), 'traces_span_metrics_calls_total', { span_name: 'GET /old' })[0]?.value).to.equal(1);
    });
  });
});
