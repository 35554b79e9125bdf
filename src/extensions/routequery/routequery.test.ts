/**
 * The routequery HTTP server through its public surface: /healthz, bearer auth in front of /api and /metrics,
 * 404, 405 and 400 answers, /metrics content negotiation, and the provider it answers /api/v1 from. Most tests run
 * it in a real service (routelatency connector, bearertokenauth); a hand-made host covers what a real one cannot
 * be made to do on demand (turn unhealthy, throw).
 */
import { expect } from 'chai';
import * as net from 'node:net';
import pino from 'pino';
import { capturedLogger } from '../../../test/support/captured-logs';
import { defaultRegistry } from '../../components';
import { parseConfig } from '../../config/load';
import type { Component, ComponentKind, Host } from '../../core/component';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import { Service } from '../../pipeline/service';
import { routeQueryConfigSchema } from './config';
import { RouteQueryExtension } from './factory';

const TOKEN = 'unit-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

function yaml(opts: { auth: boolean }): string {
  return `
receivers: { otlp: { protocols: { http: { endpoint: 127.0.0.1:0 } } } }
exporters: { debug: {} }
connectors: { routelatency: {} }
extensions:
  bearertokenauth: { token: ${TOKEN} }
  routequery: { endpoint: 127.0.0.1:0${opts.auth ? ', auth: { authenticator: bearertokenauth }' : ''} }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
    metrics: { receivers: [routelatency], exporters: [debug] }
`;
}

async function running(opts: { auth: boolean }): Promise<{ service: Service; url: string }> {
  const service = new Service(parseConfig(yaml(opts), defaultRegistry(), {}), { logger: pino({ level: 'silent' }) });
  await service.start();
  return { service, url: `http://127.0.0.1:${(service.getExtension('routequery') as RouteQueryExtension).port}` };
}

/** The extension alone, in front of a host the test controls. */
async function alone(host: Partial<Host> & { connectors?: Map<string, Component> }) {
  const issues = new ConfigErrorList();
  const config = routeQueryConfigSchema.parse({ endpoint: '127.0.0.1:0' }, 'extensions.routequery', issues);
  const { logger, lines } = capturedLogger();
  const telemetry = new Telemetry();
  const ext = new RouteQueryExtension({ id: 'routequery', logger, telemetry }, config);
  await ext.start({
    getExtension: () => undefined,
    components: (kind: ComponentKind) => (kind === 'connector' ? (host.connectors ?? new Map()) : new Map()),
    healthy: () => true,
    ...host,
  });
  return { ext, url: `http://127.0.0.1:${ext.port}`, lines, telemetry };
}

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text(), headers: res.headers };
}

/** Send raw bytes and return the status line of the answer ('' when the connection closed without one). */
function rawStatusLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy());
  });
}

describe('routequery extension', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  describe('in a running service with bearer auth', () => {
    let url = '';
    let service: Service;
    beforeEach(async () => {
      ({ service, url } = await running({ auth: true }));
      stops.push(() => service.shutdown());
    });

    it('answers /healthz without credentials', async () => {
      const r = await get(`${url}/healthz`);
      expect([r.status, r.type, JSON.parse(r.text)]).to.deep.equal([200, 'application/json', { status: 'ok' }]);
      expect(r.headers.get('cache-control')).to.equal('no-store');
    });

    it('refuses /metrics and every /api path without the token, with 401 and a Bearer challenge, and counts each refusal', async () => {
      const paths = ['/metrics', '/api/v1/routes', '/api/v1/services', '/api/v1/settings', '/api/v1/intake', '/api/v1/nope'];
      for (const p of paths) {
        const r = await get(`${url}${p}`);
        expect([p, r.status, r.type, r.headers.get('www-authenticate')]).to.deep.equal([p, 401, 'application/json', 'Bearer']);
        expect(JSON.parse(r.text)).to.have.property('error').that.is.a('string');
      }
      const wrong = await get(`${url}/metrics`, { headers: { authorization: 'Bearer not-it' } });
      expect(wrong.status).to.equal(401);
      expect(service.telemetry.counterValue('routelens_query_unauthenticated_requests', { extension: 'routequery' })).to.equal(paths.length + 1);
      const ok = await get(`${url}/metrics`, { headers: AUTH });
      expect(ok.status).to.equal(200);
      expect(ok.text).to.include(`routelens_query_unauthenticated_requests_total{extension="routequery"} ${paths.length + 1}\n`);
    });

    it('serves the page at / without credentials (it holds no data)', async () => {
      const r = await get(`${url}/`);
      expect(r.status).to.equal(200);
      expect(r.type).to.match(/^text\/html/);
    });

    it('answers /api/v1 from the routelatency connector, passing its 400 and 404 answers on', async () => {
      const routes = await get(`${url}/api/v1/routes?window=5m`, { headers: AUTH });
      expect([routes.status, routes.type]).to.deep.equal([200, 'application/json']);
      expect(JSON.parse(routes.text)).to.have.property('routes').that.deep.equals([]);
      const bad = await get(`${url}/api/v1/routes?window=7parsecs`, { headers: AUTH });
      expect(bad.status).to.equal(400);
      expect(JSON.parse(bad.text).error)
        .to.be.a('string')
        .and.match(/window/);
      const missing = await get(`${url}/api/v1/no-such-thing`, { headers: AUTH });
      expect([missing.status, JSON.parse(missing.text)]).to.deep.equal([404, { error: 'not found: /api/v1/no-such-thing' }]);
    });

    it('renders /metrics as Prometheus text, or OpenMetrics when the scraper asks for it', async () => {
      const text = await get(`${url}/metrics`, { headers: AUTH });
      expect(text.type).to.equal('text/plain; version=0.0.4; charset=utf-8');
      expect(text.text).to.match(/^# HELP otelcol_receiver_accepted_spans_total /m);
      expect(text.text).to.not.include('# EOF');
      // What Prometheus sends: OpenMetrics preferred, the text format as a fallback.
      const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
      const om = await get(`${url}/metrics`, { headers: { ...AUTH, accept } });
      expect(om.type).to.equal('application/openmetrics-text; version=1.0.0; charset=utf-8');
      expect(om.text).to.match(/^# HELP otelcol_receiver_accepted_spans /m);
      expect(om.text.endsWith('# EOF\n')).to.equal(true);
    });

    it('refuses other methods than GET and HEAD with 405 and Allow, on any path, before auth', async () => {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        for (const p of ['/healthz', '/metrics', '/api/v1/routes', '/', '/internal/v1/states']) {
          const r = await get(`${url}${p}`, { method });
          expect([method, p, r.status, r.headers.get('allow'), JSON.parse(r.text)]).to.deep.equal([
            method,
            p,
            405,
            'GET, HEAD',
            { error: `method ${method} not allowed` },
          ]);
        }
      }
      const head = await get(`${url}/healthz`, { method: 'HEAD' });
      expect([head.status, head.text]).to.deep.equal([200, '']);
    });

    it('takes only POST on the hand-off path: 405 with Allow: POST for any other method, before auth', async () => {
      for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
        const r = await get(`${url}/internal/v1/handoff`, { method, headers: AUTH });
        expect([method, r.status, r.headers.get('allow')]).to.deep.equal([method, 405, 'POST']);
        if (method !== 'HEAD') expect(JSON.parse(r.text)).to.deep.equal({ error: `method ${method} not allowed` });
      }
      // POST gets past the method check: to auth, then to "no cluster is configured".
      const unauthenticated = await get(`${url}/internal/v1/handoff`, { method: 'POST', body: '{}' });
      expect(unauthenticated.status).to.equal(401);
      const post = await get(`${url}/internal/v1/handoff`, { method: 'POST', body: '{}', headers: AUTH });
      expect([post.status, JSON.parse(post.text)]).to.deep.equal([404, { error: 'no cluster is configured (extensions.routequery.cluster)' }]);
    });

    it('answers 404 naming the path for anything else', async () => {
      for (const p of ['/nope', '/metrics/extra', '/ui/no-such-asset.js']) {
        const r = await get(`${url}${p}`, { headers: AUTH });
        expect([r.status, JSON.parse(r.text)]).to.deep.equal([404, { error: `no such path ${p}` }]);
      }
    });

    it('answers 400 to a request target it cannot parse, and keeps serving', async () => {
      const port = Number(new URL(url).port);
      expect(await rawStatusLine(port, 'GET //[ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')).to.equal('HTTP/1.1 400 Bad Request');
      expect((await get(`${url}/healthz`)).status).to.equal(200);
    });
  });

  it('without auth, serves /metrics and /api to anyone', async () => {
    const { service, url } = await running({ auth: false });
    stops.push(() => service.shutdown());
    expect((await get(`${url}/metrics`)).status).to.equal(200);
    expect((await get(`${url}/api/v1/routes`)).status).to.equal(200);
  });

  it('fails to start when auth.authenticator names no enabled authenticator', async () => {
    const issues = new ConfigErrorList();
    const config = routeQueryConfigSchema.parse(
      { endpoint: '127.0.0.1:0', auth: { authenticator: 'bearertokenauth/missing' } },
      'extensions.routequery',
      issues,
    );
    const ext = new RouteQueryExtension({ id: 'routequery', logger: pino({ level: 'silent' }), telemetry: new Telemetry() }, config);
    const err = await ext.start({ getExtension: () => undefined, components: () => new Map(), healthy: () => true }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.equal('extensions.routequery.auth.authenticator: "bearertokenauth/missing" is not an enabled authenticator extension');
    await ext.shutdown();
  });

  it('answers /healthz 503 while the host is not healthy', async () => {
    let healthy = false;
    const { ext, url } = await alone({ healthy: () => healthy });
    stops.push(() => ext.shutdown());
    const down = await get(`${url}/healthz`);
    expect([down.status, JSON.parse(down.text)]).to.deep.equal([503, { status: 'unavailable' }]);
    healthy = true;
    expect((await get(`${url}/healthz`)).status).to.equal(200);
  });

  it('answers /api/v1 from the first connector that provides queries, with what it was asked', async () => {
    const asked: [string, Record<string, string>][] = [];
    const connectors = new Map<string, Component>([
      ['spancount', { start: async () => undefined, shutdown: async () => undefined }],
      [
        'routelatency/b',
        {
          start: async () => undefined,
          shutdown: async () => undefined,
          routeQuery: {
            handleQuery: (pathname: string, params: URLSearchParams) => {
              asked.push([pathname, Object.fromEntries(params)]);
              return { status: 207, body: { from: 'b' } };
            },
          },
        } as Component,
      ],
    ]);
    const { ext, url } = await alone({ connectors });
    stops.push(() => ext.shutdown());
    const r = await get(`${url}/api/v1/routes/checkout/GET/%2Fcart?window=1h&sort=p99`);
    expect([r.status, r.type, JSON.parse(r.text)]).to.deep.equal([207, 'application/json', { from: 'b' }]);
    expect(asked).to.deep.equal([['/api/v1/routes/checkout/GET/%2Fcart', { window: '1h', sort: 'p99' }]]);
  });

  it('answers 404 on /api/v1 without a query provider, and 500 (logged) when the provider throws', async () => {
    const none = await alone({});
    stops.push(() => none.ext.shutdown());
    const r = await get(`${none.url}/api/v1/routes`);
    expect([r.status, JSON.parse(r.text)]).to.deep.equal([404, { error: 'no routelatency connector is configured in a running pipeline' }]);

    const throwing = new Map<string, Component>([
      [
        'routelatency',
        {
          start: async () => undefined,
          shutdown: async () => undefined,
          routeQuery: {
            handleQuery: () => {
              throw new Error('sketch corrupted');
            },
          },
        } as Component,
      ],
    ]);
    const bad = await alone({ connectors: throwing });
    stops.push(() => bad.ext.shutdown());
    const e = await get(`${bad.url}/api/v1/routes`);
    expect([e.status, JSON.parse(e.text)]).to.deep.equal([500, { error: 'internal error' }]);
    expect(bad.lines.filter((l) => l.msg === 'Query failed').map((l) => [l.err, l.path])).to.deep.equal([['Error: sketch corrupted', '/api/v1/routes']]);
  });

  it('runs the before-scrape hooks for each /metrics, and answers 500 (logged) when one fails, then keeps serving', async () => {
    const { ext, url, telemetry, lines } = await alone({});
    stops.push(() => ext.shutdown());
    let scrapes = 0;
    let fail = false;
    telemetry.beforeScrape(async () => {
      scrapes++;
      if (fail) throw new Error('worker gone');
    });
    telemetry.gauge('scrapes', 'Scrapes so far.', {}, () => scrapes);
    expect((await get(`${url}/metrics`)).text).to.include('\nscrapes 1\n');
    expect((await get(`${url}/metrics`)).text).to.include('\nscrapes 2\n');
    fail = true;
    const r = await get(`${url}/metrics`);
    expect([r.status, JSON.parse(r.text)]).to.deep.equal([500, { error: 'internal error' }]);
    expect(lines.some((l) => l.msg === 'Request failed' && l.err === 'Error: worker gone')).to.equal(true);
    fail = false;
    expect((await get(`${url}/healthz`)).status).to.equal(200);
  });

  it('stops listening at shutdown, and shuts down safely twice or before start', async () => {
    const { ext, url } = await alone({});
    await ext.shutdown();
    await ext.shutdown();
    const err = await fetch(`${url}/healthz`).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).to.be.instanceOf(Error);
    const never = new RouteQueryExtension({ id: 'routequery', logger: pino({ level: 'silent' }), telemetry: new Telemetry() }, {
      endpoint: '127.0.0.1:0',
      auth: {},
    } as never);
    await never.shutdown();
  });
});
