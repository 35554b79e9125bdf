/**
 * The OpenAPI document /api/v1/openapi.json against the server that serves it, in a running service (otlp
 * receiver, routelatency connector fed spans and a process's runtime metrics, routequery with a one-replica
 * cluster): every documented path answers, its 200 body conforms to the documented schema, and every path the
 * extension and its connector serve falls under a documented template.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../../../test/support/free-port';
import { metricsRequest, processMetrics } from '../../../test/support/otlp-metrics';
import { schemaErrors, templateOf, type OpenApiDocument } from '../../../test/support/openapi';
import { buildRequest, httpRequest } from '../../../test/support/raw-clients';
import { startRoutelens, type RunningRoutelens } from '../../../test/support/routelens';
import { HANDOFF_PATH, STATES_PATH } from './cluster';
import { pageAssets } from './page-assets';

const TOKEN = 'openapi-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SERVICE = 'shop api';

/** The answer of a GET (or POST), with its body as JSON when it is JSON. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; type: string; json: unknown; text: string }> {
  const res = await fetch(url, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string> | undefined) } });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, type, text, json: type.startsWith('application/json') ? (JSON.parse(text) as unknown) : undefined };
}

/**
 * Path literals of the routers' sources: `'/api/v1/…'`, `'/internal/…'`, `'/healthz'`, `'/metrics'`. Each is a
 * path the code compares a request's path with (or a prefix of such paths), so a path added to a router comes
 * into the check below without the test naming it.
 */
function pathLiterals(): string[] {
  const root = path.join(__dirname, '..', '..', '..', '..', 'src');
  const files = ['extensions/routequery/factory.ts', 'extensions/routequery/cluster.ts', 'connectors/routelatency/query.ts', 'runtimeview/query.ts'];
  const out = new Set<string>();
  for (const f of files) {
    const text = fs.readFileSync(path.join(root, f), 'utf8');
    for (const m of text.matchAll(/'(\/(?:api\/v1|internal\/v1)\/[A-Za-z0-9_./-]*|\/healthz|\/metrics)'/g)) out.add(m[1] as string);
  }
  return [...out];
}

describe('the OpenAPI document of the routequery API', function () {
  this.timeout(60_000);
  let rl: RunningRoutelens;
  let base: string;
  let doc: OpenApiDocument;

  before(async () => {
    const port = await freePort();
    rl = await startRoutelens(`
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
exporters: { debug: {} }
connectors: { routelatency: {} }
extensions:
  bearertokenauth: { token: ${TOKEN} }
  routequery:
    endpoint: 127.0.0.1:${port}
    auth: { authenticator: bearertokenauth }
    jaeger_url: http://jaeger.example:16686
    cluster: { resolver: { static: { hostnames: ['127.0.0.1:${port}'] } } }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
    metrics/runtime: { receivers: [otlp], exporters: [routelatency] }
    metrics: { receivers: [routelatency], exporters: [debug] }
`);
    base = rl.queryUrl();
    const spans = await httpRequest(rl.httpPort(), '/v1/traces', buildRequest(SERVICE, 20).bytes, { 'content-type': 'application/x-protobuf' });
    expect(spans.status).to.equal(200);
    const now = Date.now();
    for (const [i, time] of [now - 2000, now - 1000].entries()) {
      const body = metricsRequest([
        {
          attrs: { 'service.name': SERVICE, 'service.instance.id': 'i-1', 'process.pid': 4242 },
          metrics: processMetrics({ time, start: now - 60_000, cpuUser: 1 + i, cpuSystem: 0.5, rss: 5e7, threads: 4, fds: 9, gc: [i, 0, 0] }),
        },
      ]);
      expect((await httpRequest(rl.httpPort(), '/v1/metrics', body, { 'content-type': 'application/x-protobuf' })).status).to.equal(200);
    }
    doc = (await call(`${base}/api/v1/openapi.json`)).json as OpenApiDocument;
  });
  after(() => rl.stop());

  /** A request path for a template, its parameters filled with what the service holds. */
  const fill = (template: string): string =>
    template
      .replace('{service}', encodeURIComponent(SERVICE))
      .replace('{method}', 'GET')
      .replace('{route}', '/items/{id}'.split('/').map(encodeURIComponent).join('/'))
      .replace('{asset}', 'main.js');
  /** Required query parameters of an operation, filled the same way. */
  const query = (template: string, method: string): string => {
    const params = (doc.paths[template]?.[method]?.parameters ?? []).filter((p) => p.in === 'query' && p.required === true);
    const value = (name: string): string => ({ service: SERVICE, route: '/items/{id}' })[name] ?? 'x';
    return params.length === 0 ? '' : `?${new URLSearchParams(params.map((p) => [p.name, value(p.name)])).toString()}`;
  };

  it('describes /api/v1/settings and /api/v1/intake with schemas their answers conform to', async () => {
    for (const [p, schema] of [
      ['/api/v1/settings', 'Settings'],
      ['/api/v1/intake', 'Intake'],
    ] as const) {
      expect(doc.paths[p]?.get?.responses['200']?.content?.['application/json']?.schema).to.deep.equal({ $ref: `#/components/schemas/${schema}` });
    }
    expect((await call(`${base}/api/v1/settings`)).json).to.deep.equal({ jaeger_url: 'http://jaeger.example:16686' });
    const intake = (await call(`${base}/api/v1/intake`)).json as { receivers: { receiver: string; transport: string; accepted_spans: number }[] };
    expect(intake.receivers.map((r) => [r.receiver, r.transport, r.accepted_spans])).to.deep.equal([['otlp', 'http', 20]]);
    // A schema that does not describe an answer is caught: the check is not vacuous.
    expect(schemaErrors(doc, { $ref: '#/components/schemas/Intake' }, { receivers: [{ receiver: 'otlp', accepted_spans: -1 }] })).to.have.members([
      '$: missing required processors',
      '$: missing required exporters',
      '$.receivers[0]: missing required transport',
      '$.receivers[0]: missing required refused_spans',
      '$.receivers[0]: missing required failed_spans',
      '$.receivers[0]: missing required malformed_requests',
      '$.receivers[0]: missing required unauthenticated_requests',
      '$.receivers[0].accepted_spans: -1 < minimum 0',
    ]);
  });

  it('every documented operation answers 200 with the documented media type, its JSON body conforming to the schema', async () => {
    const checked: string[] = [];
    const states = (await call(`${base}${STATES_PATH}`)).json as { sources: unknown[] };
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const url = `${base}${fill(template)}${query(template, method)}`;
        const init: RequestInit =
          method === 'post'
            ? { method: 'POST', body: JSON.stringify({ from: 'a-peer-leaving', sources: states.sources }), headers: { 'content-type': 'application/json' } }
            : {};
        const r = await call(url, init);
        const what = `${method.toUpperCase()} ${template}`;
        expect(r.status, `${what}: ${r.text.slice(0, 300)}`).to.equal(200);
        const media = Object.entries(op.responses['200']?.content ?? {});
        const documented = media.find(([type]) => r.type.split(';')[0] === type.split(';')[0]);
        expect(documented, `${what} answered ${r.type}; documented ${media.map(([t]) => t).join(', ')}`).to.not.equal(undefined);
        const schema = documented?.[1].schema;
        if (r.json !== undefined && schema !== undefined) expect(schemaErrors(doc, schema, r.json), what).to.deep.equal([]);
        checked.push(what);
      }
    }
    expect(checked).to.include.members(['GET /api/v1/settings', 'GET /api/v1/intake', 'GET /api/v1/services/{service}/runtime', `POST ${HANDOFF_PATH}`]);
  });

  it('every path the extension and its connector serve falls under a documented template', async () => {
    // The page's files, the paths the routers compare with, and each of those with a segment added and with a
    // trailing slash. A path the routers do not serve gets their not-found answer, and one that does not fit a
    // resource's shape a 400; any other answer means the path is served.
    const literals = pathLiterals();
    expect(literals).to.include.members(['/api/v1/settings', '/api/v1/intake', '/api/v1/runtime', '/healthz', '/metrics', STATES_PATH, HANDOFF_PATH]);
    const probes = new Set([...pageAssets().keys(), ...literals.flatMap((p) => [p, `${p.replace(/\/$/, '')}/x`, p.endsWith('/') ? p.slice(0, -1) : `${p}/`])]);
    const notServed = (r: { status: number; json: unknown }): boolean => {
      const error = (r.json as { error?: unknown } | undefined)?.error;
      return r.status === 400 || (r.status === 404 && typeof error === 'string' && /^(not found: |no such path )/.test(error));
    };
    const served: string[] = [];
    for (const p of probes) {
      const r = await call(`${base}${p}`);
      if (notServed(r)) continue;
      served.push(p);
      // A trailing slash is the same resource to the routers (the connector answers /api/v1/routes/ as /api/v1/routes).
      const documented = templateOf(doc, p) ?? templateOf(doc, p.replace(/(.)\/$/, '$1'));
      expect(documented, `${p} answers ${r.status} but is not in the document`).to.not.equal(undefined);
    }
    expect(served).to.include.members(['/', '/ui/main.js', '/api/v1/settings', '/api/v1/intake', '/metrics', '/healthz']);
  });
});
