/** Tests of src/cli/routes-table.ts (kept here: this folder is where the route engine's tests live). */
import { expect } from 'chai';
import { formatMs, formatRoutesTable, truncate } from '../../cli/routes-table';
import type { RouteJson, RoutesResponse } from './query';

function route(over: Partial<RouteJson>): RouteJson {
  return {
    service: 'checkout',
    method: 'GET',
    route: '/users/{id}',
    route_source: 'http.route',
    count: 1204,
    rate_per_s: 20.0667,
    error_rate: 0.00166113,
    error_count: 2,
    status_classes: { '2xx': 1202, '5xx': 2 },
    p50_ms: 12.3456,
    p90_ms: 40.1,
    p95_ms: 48.02,
    p99_ms: 95.13,
    p999_ms: 201.4,
    min_ms: 0.84,
    max_ms: 1203.7,
    mean_ms: 17.2,
    dimensions: {},
    ...over,
  };
}

const FIXTURE: RoutesResponse = {
  window: '5m',
  generated_at: '2026-11-25T08:00:00.000Z',
  covered_s: 300,
  routes: [
    route({}),
    route({
      service: 'inventory-service-with-a-very-long-name',
      method: 'POST',
      route: '/api/v1/warehouses/{warehouse_id}/shelves/{shelf_id}/items/{item_id}/reservations',
      count: 37,
      rate_per_s: 0.123,
      error_rate: 0.135,
      error_count: 5,
      p50_ms: 0.4321,
      p95_ms: 3.2,
      p99_ms: 7.777,
      p999_ms: 7.9,
      max_ms: 8,
    }),
    route({
      service: 'auth',
      method: '',
      route: 'auth.v1.Tokens/Issue',
      route_source: 'span_name_fallback',
      count: 3,
      rate_per_s: 0.01,
      error_rate: 0,
      error_count: 0,
      p50_ms: 5,
      p95_ms: 5,
      p99_ms: 5,
      p999_ms: 5,
      max_ms: 5,
    }),
    route({
      route: '__other__',
      method: '',
      route_source: 'overflow',
      count: 99_000,
      rate_per_s: 330,
      error_rate: 0,
      p50_ms: 150_000,
      p95_ms: 200_000,
      p99_ms: 250_000,
      p999_ms: 300_000,
      max_ms: 310_000,
    }),
  ],
};

const EXPECTED = [
  'routes over the last 5m (generated 2026-11-25T08:00:00.000Z)',
  'SERVICE                   METHOD  ROUTE                                             COUNT  RATE/S  ERR%     P50     P95     P99   P99.9     MAX',
  'checkout                  GET     /users/{id}                                        1204    20.1  0.2%  12.3ms  48.0ms  95.1ms   201ms   1.20s',
  'inventory-service-with-…  POST    /api/v1/warehouses/{warehouse_id}/shelves/{shel…     37    0.12   14%   432µs  3.20ms  7.78ms  7.90ms  8.00ms',
  'auth                      -       auth.v1.Tokens/Issue                                  3    0.01    0%  5.00ms  5.00ms  5.00ms  5.00ms  5.00ms',
  'checkout                  -       __other__                                         99000     330    0%   2.50m   3.33m   4.17m   5.00m   5.17m',
  '',
].join('\n');

describe('formatRoutesTable', () => {
  it('renders the fixture as an aligned table', () => {
    expect(formatRoutesTable(FIXTURE)).to.equal(EXPECTED);
  });

  it('aligns every row to the header width (no colour)', () => {
    const lines = formatRoutesTable(FIXTURE).trimEnd().split('\n').slice(1);
    const widths = new Set(lines.map((l) => [...l].length));
    expect(widths.size).to.equal(1);
  });

  it('with colour: the same text plus ANSI codes (bold header, red error rate ≥ 1 %, dim synthetic routes)', () => {
    const colored = formatRoutesTable(FIXTURE, { color: true });
    // eslint-disable-next-line no-control-regex
    expect(colored.replace(/\u001b\[\d+m/g, '')).to.equal(EXPECTED);
    expect(colored).to.include('\u001b[1mSERVICE');
    expect(colored).to.include('\u001b[31m 14%\u001b[0m');
    expect(colored).to.include('\u001b[2mcheckout                  -       __other__');
    expect(colored).not.to.include('\u001b[31m0.2%');
  });

  it('a custom route width', () => {
    const out = formatRoutesTable(FIXTURE, { maxRouteWidth: 12 });
    expect(out).to.include(' /api/v1/war… ');
  });

  it('an empty response gives a one-line note', () => {
    expect(formatRoutesTable({ ...FIXTURE, routes: [] })).to.equal(
      'routes over the last 5m (generated 2026-11-25T08:00:00.000Z)\nno routes with spans in the last 5m\n',
    );
  });

  it('shows dimensions when any route has them', () => {
    const out = formatRoutesTable({ ...FIXTURE, routes: [route({ dimensions: { region: 'eu', tier: 'pro' } }), route({})] });
    expect(out.split('\n')[1]).to.include('DIMENSIONS');
    expect(out).to.include('region=eu,tier=pro');
  });

  it('formatMs picks a unit and 3 significant digits', () => {
    expect([0.000512, 0.4321, 0.99951, 1, 9.999, 12.34, 123.4, 999.4, 999.6, 1000, 12_345, 99_999, 150_000, null].map(formatMs)).to.deep.equal([
      '0.512µs',
      '432µs',
      '1.00ms',
      '1.00ms',
      '10.0ms',
      '12.3ms',
      '123ms',
      '999ms',
      '1.00s',
      '1.00s',
      '12.3s',
      '1.67m',
      '2.50m',
      '-',
    ]);
  });

  it('truncate cuts with an ellipsis', () => {
    expect(truncate('abcdef', 4)).to.equal('abc…');
    expect(truncate('abc', 3)).to.equal('abc');
  });
});
