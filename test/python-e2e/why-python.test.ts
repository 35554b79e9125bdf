/**
 * "Why is this route slow", end to end with real Python: examples/python/orders_app.py (Flask + SQLAlchemy over
 * SQLite, no OpenTelemetry code) runs under `opentelemetry-instrument`, exporting over gRPC to routelens as a
 * user runs it (a child process, one worker per CPU). GET /orders lazy-loads each order's items (an N+1 over an
 * unindexed foreign key); GET /reports/top-skus runs one heavy GROUP BY. `GET /api/v1/why` and `routelens why`
 * must name both.
 */
import { expect } from 'chai';
import { waitFor } from '../support/free-port';
import { startZeroCodeApp, type PythonApp } from '../support/python';
import { cli, startRoutelensChild, type RoutelensChild } from '../support/python-e2e';

interface Why {
  count: number;
  analysed: number;
  breakdown: { category: string; target: string; share: number }[];
  statements: { fingerprint: string; db_system: string; calls_per_request: number; share: number; p95_ms: number; example_trace_id: string }[];
  n_plus_one: {
    kind: string;
    fingerprint: string;
    repeats: number;
    requests_share: number;
    cost_ms: number;
    example_trace_id: string;
    example_span_ids: string[];
  }[];
  summary: string;
}

async function why(rl: RoutelensChild, route: string): Promise<Why> {
  const res = await fetch(`${rl.queryUrl}/api/v1/why?service=orders-zero-code&method=GET&route=${encodeURIComponent(route)}&window=5m`);
  expect(res.status, route).to.equal(200);
  return (await res.json()) as Why;
}

describe('why is this route slow: Python zero-code end to end', function () {
  this.timeout(300_000);
  let rl: RoutelensChild;
  let app: PythonApp;

  before(async () => {
    rl = await startRoutelensChild({
      config: (p) => `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${p.grpc} }
      http: { endpoint: 127.0.0.1:${p.http} }
connectors:
  routelatency:
    # the N+1 floor's 50 ms would make the test depend on this machine's speed: 5 ms keeps every lazy load in
    analysis: { decision_wait: 1s, n_plus_one: { min_total: 5ms } }
exporters:
  debug: { verbosity: basic }
extensions:
  routequery: { endpoint: 127.0.0.1:${p.query} }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug, routelatency] }
`,
    });
    app = await startZeroCodeApp(
      {
        OTEL_SERVICE_NAME: 'orders-zero-code',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.grpcPort}`,
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
        OTEL_BSP_SCHEDULE_DELAY: '500',
        OTEL_RESOURCE_ATTRIBUTES: 'service.version=1.0.0',
      },
      { script: 'orders_app.py', readyTimeoutMs: 120_000 },
    );
  });

  after(async () => {
    await app?.stop();
    await rl?.stop();
  });

  it('names the N+1 of GET /orders and the slow statement of GET /reports/top-skus', async () => {
    const get = async (path: string): Promise<void> => {
      const res = await fetch(`${app.baseUrl}${path}`);
      expect(res.status, path).to.equal(200);
      await res.arrayBuffer();
    };
    for (let i = 0; i < 12; i++) {
      await get('/orders');
      await get('/reports/top-skus');
      await get(`/orders/${1 + i}`);
    }
    const orders = await waitFor(
      async () => {
        const w = await why(rl, '/orders');
        return w.analysed >= 12 ? w : undefined;
      },
      { timeoutMs: 60_000, what: 'the /orders requests analysed' },
    );
    // The N+1: SQLAlchemy's lazy load of each order's items, with `?` placeholders (no values): 30 sequential repeats.
    // Where the time goes: the DB first (its spans cover execute(), where SQLite finds and sorts the items).
    const n1 = orders.n_plus_one[0];
    expect(n1, JSON.stringify(orders.n_plus_one)).to.not.equal(undefined);
    expect(n1?.kind).to.equal('db');
    expect(n1?.fingerprint).to.equal(
      'SELECT order_items.id AS order_items_id, order_items.order_id AS order_items_order_id, order_items.sku AS order_items_sku, order_items.qty AS order_items_qty FROM order_items WHERE ? = order_items.order_id ORDER BY order_items.sku',
    );
    expect(n1?.repeats).to.equal(30);
    expect(n1?.requests_share).to.equal(1);
    expect(n1?.example_span_ids).to.have.length(10);
    expect(orders.summary).to.contain('N+1 on SELECT order_items.id');
    expect(orders.breakdown[0]).to.include({ category: 'db', target: 'sqlite' });
    const items = orders.statements.find((s) => s.fingerprint === n1?.fingerprint);
    expect(items?.calls_per_request).to.equal(30);

    const report = await waitFor(
      async () => {
        const w = await why(rl, '/reports/top-skus');
        return w.analysed >= 12 ? w : undefined;
      },
      { timeoutMs: 60_000, what: 'the report requests analysed' },
    );
    const top = report.statements[0];
    expect(top?.fingerprint).to.match(/^SELECT order_items\.sku, sum\(order_items\.qty\) AS sold FROM order_items GROUP BY order_items\.sku ORDER BY/);
    expect(top?.calls_per_request).to.equal(1);
    expect(top?.share).to.be.greaterThan(0.5);
    expect(report.n_plus_one).to.deep.equal([]);
    expect(report.summary).to.match(/SELECT order_items\.sku, sum\(order_items\.qty\) AS sold FROM order_items GROUP BY.* takes \d+ % of the time/);

    // The single-order route loads its items in one more query: no N+1.
    const one = await why(rl, '/orders/<int:order_id>');
    expect(one.n_plus_one).to.deep.equal([]);

    // And the command line says it to a person.
    const out = await cli('why', 'orders-zero-code', 'GET /orders', '--url', rl.queryUrl);
    expect(out.status, out.stderr).to.equal(0);
    expect(out.stdout).to.contain('N+1 on SELECT order_items.id');
    expect(out.stdout).to.match(/^N\+1 +KIND +REPEATS/m);
  });
});
