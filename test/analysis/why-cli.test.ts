/**
 * `routelens why` against a running routelens and `routelens analyze --why [--fail-on n+1]` over a capture, run as
 * a user runs them (the bin script in a child process).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { traceRequestFromJson } from '../../src/pdata/otlp-json';
import { splitMethod } from '../../src/cli/why';
import { waitFor } from '../support/free-port';
import { traceJson, type OtlpSpanSpec } from '../support/otlp-traces';
import { repoRoot } from '../support/process';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { postTraces } from '../support/trace-requests';

const ITEMS = 'SELECT items.sku FROM items WHERE items.order_id = %s';

/** GET /orders/{id}: a 5 ms query, then (with `nPlusOne`) 8 sequential 12 ms item queries. */
function orderTrace(t: number, nPlusOne: boolean): string {
  const spans: OtlpSpanSpec[] = [
    {
      id: 1,
      kind: 'server',
      name: 'GET /orders/{id}',
      start: 0,
      end: nPlusOne ? 120 + t : 20 + t / 10,
      attrs: { 'http.method': 'GET', 'http.route': '/orders/{id}', 'http.status_code': 200 },
    },
    {
      id: 2,
      parent: 1,
      kind: 'client',
      name: 'SELECT',
      start: 1,
      end: 6,
      attrs: { 'db.system': 'sqlite', 'db.statement': 'SELECT * FROM orders WHERE id = %s' },
    },
  ];
  if (nPlusOne)
    for (let i = 0; i < 8; i++)
      spans.push({
        id: 10 + i,
        parent: 1,
        kind: 'client',
        name: 'SELECT',
        start: 7 + i * 13,
        end: 19 + i * 13,
        attrs: { 'db.system': 'sqlite', 'db.statement': ITEMS },
      });
  return traceJson(t, [{ service: 'orders', spans }]);
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot(), 'bin/routelens.js'), ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('routelens why and analyze --why', function () {
  this.timeout(90_000);

  it('splits a method off the route', () => {
    expect(splitMethod('GET /orders/{id}')).to.deep.equal({ method: 'GET', route: '/orders/{id}' });
    expect(splitMethod('/orders/{id}')).to.deep.equal({ method: undefined, route: '/orders/{id}' });
    expect(splitMethod('post /x', undefined)).to.deep.equal({ method: 'POST', route: '/x' });
    expect(splitMethod('helloworld.Greeter/SayHello', undefined)).to.deep.equal({ method: undefined, route: 'helloworld.Greeter/SayHello' });
  });

  it('analyze --why over a capture names the N+1; --fail-on n+1 exits 3, and 0 on a capture without one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-why-cli-'));
    const withN1 = path.join(dir, 'n1.jsonl');
    const clean = path.join(dir, 'clean.jsonl');
    fs.writeFileSync(withN1, `${Array.from({ length: 40 }, (_, i) => orderTrace(i + 1, i % 2 === 0)).join('\n')}\n`);
    fs.writeFileSync(clean, `${Array.from({ length: 40 }, (_, i) => orderTrace(i + 1, false)).join('\n')}\n`);
    const failing = await run(['analyze', withN1, '--why', '--fail-on', 'n+1']);
    expect(failing.code, failing.stderr).to.equal(3);
    expect(failing.stdout).to.contain('orders GET /orders/{id} (window capture; 40 of 40 requests analysed)');
    expect(failing.stdout).to.match(/N\+1 on SELECT items\.sku FROM items WHERE items\.order_id = \? × 8 in/);
    expect(failing.stderr).to.contain('routelens: N+1 in orders GET /orders/{id}: SELECT items.sku FROM items WHERE items.order_id = ? × 8 (db, example trace');
    const json = await run(['analyze', withN1, '--why', '--json']);
    expect(json.code).to.equal(0);
    const answer = (JSON.parse(json.stdout) as { routes: { n_plus_one: { repeats: number; requests_share: number }[] }[] }).routes[0];
    expect(answer?.n_plus_one[0]).to.include({ repeats: 8, requests_share: 0.5 });
    const passing = await run(['analyze', clean, '--why', '--fail-on', 'n+1']);
    expect(passing.code, passing.stderr).to.equal(0);
    expect((await run(['analyze', clean, '--why', '--fail-on', 'slowness'])).code).to.equal(2);
  });

  describe('against a running routelens', () => {
    let rl: RunningRoutelens;
    before(async () => {
      rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
connectors:
  routelatency:
    analysis: { decision_wait: 200ms }
exporters:
  debug: { verbosity: basic }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug, routelatency] }
`);
    });
    after(() => rl.stop());

    it('routelens why prints the sentence and the tables; --json the API answer; an unknown route is an error', async () => {
      for (let t = 1; t <= 30; t++) {
        const r = await postTraces(`http://127.0.0.1:${rl.httpPort()}/v1/traces`, traceRequestFromJson(orderTrace(t, t % 3 === 0)));
        expect(r.status).to.equal(200);
      }
      const url = rl.queryUrl();
      await waitFor(
        async () => {
          const r = await run(['why', 'orders', 'GET /orders/{id}', '--url', url, '--json']);
          return r.code === 0 && (JSON.parse(r.stdout) as { analysed: number }).analysed === 30 ? true : undefined;
        },
        { timeoutMs: 20_000, what: 'every request analysed' },
      );
      const text = await run(['why', 'orders', '/orders/{id}', '--url', url]);
      expect(text.code, text.stderr).to.equal(0);
      const lines = text.stdout.split('\n');
      expect(lines[0]).to.equal('orders GET /orders/{id} (window 5m; 30 of 30 requests analysed)');
      expect(lines[1]).to.match(
        /^p99 \d+ ms \(p50 .* ms, 30 requests\); .*N\+1 on SELECT items\.sku FROM items WHERE items\.order_id = \? × 8 in 33 % of requests/,
      );
      expect(text.stdout).to.match(/^WHERE THE TIME GOES +SHARE +CRIT\.PATH +P50 +P95 +P99 +IN REQ\.$/m);
      expect(text.stdout).to.match(/^SELECT items\.sku FROM items WHERE items\.order_id = \? +sqlite +2\.67 /m);
      expect(text.stdout).to.match(/^N\+1 +KIND +REPEATS/m);
      const missing = await run(['why', 'orders', 'GET /nope', '--url', url]);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.contain('HTTP 404: unknown route "GET /nope" of service "orders"');
    });
  });
});
