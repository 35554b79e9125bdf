/**
 * The `routequery` extension: one HTTP server for people and scrapers.
 * - GET /: the page (and its assets under /ui/), which reads everything from /api/v1
 * - GET /metrics: self-telemetry and route metrics (Prometheus text; OpenMetrics with exemplars on request)
 * - GET /healthz: 200 when every pipeline runs, else 503
 * - GET /api/v1/*: the route latency API of the routelatency connector, plus /api/v1/settings (what the page
 *   needs to know of this config) and /api/v1/intake (requests refused before routing, from self-telemetry)
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Component, Host } from '../../core/component';
import type { ExtensionFactory } from '../../consumer/factory';
import { splitHostPort } from '../../core/schema';
import { renderPrometheus, type MetricFamily } from '../../core/telemetry';
import { PAGE_CSP, pageAssets } from './page-assets';
import { routeQueryConfigSchema, type RouteQueryConfig } from './config';
import { isRouteQueryProvider, type RouteQueryProvider } from '../../core/query';
import { ClusterView, HANDOFF_PATH, queryOfStatesRequest, queryScope, sendJson, STATES_PATH, withoutScope } from './cluster';
import { routeQueryOpenapi } from './openapi';

/** Authenticates a request; returns an error message or undefined when allowed. */
export interface HttpAuthenticator {
  authenticateHttp(headers: http.IncomingHttpHeaders): string | undefined;
}

export class RouteQueryExtension implements Component {
  readonly #config: RouteQueryConfig;
  readonly #settings: Parameters<ExtensionFactory<RouteQueryConfig>['create']>[0];
  #server: http.Server | undefined;
  #host: Host | undefined;
  #port = 0;
  readonly #cluster: ClusterView | undefined;

  constructor(settings: Parameters<ExtensionFactory<RouteQueryConfig>['create']>[0], config: RouteQueryConfig) {
    this.#settings = settings;
    this.#config = config;
    this.#cluster = config.cluster === undefined ? undefined : new ClusterView(settings, config.cluster);
  }

  get port(): number {
    return this.#port;
  }

  #provider(): RouteQueryProvider | undefined {
    for (const c of this.#host?.components('connector').values() ?? []) if (isRouteQueryProvider(c)) return c.routeQuery;
    return undefined;
  }

  #auth(): HttpAuthenticator | undefined {
    const id = this.#config.auth.authenticator;
    if (id === undefined) return undefined;
    const ext = this.#host?.getExtension(id) as Partial<HttpAuthenticator> | undefined;
    if (typeof ext?.authenticateHttp !== 'function')
      throw new Error(`extensions.${this.#settings.id}.auth.authenticator: ${JSON.stringify(id)} is not an enabled authenticator extension`);
    return ext as HttpAuthenticator;
  }

  async start(host: Host): Promise<void> {
    this.#host = host;
    const auth = this.#auth();
    const rejected = this.#settings.telemetry.counter(
      'routelens_query_unauthenticated_requests',
      'Query API requests refused for missing or bad credentials.',
      { extension: this.#settings.id },
    );
    this.#server = http.createServer((req, res) => {
      // A failing scrape or query costs one request: left unhandled, the rejection would end the process.
      this.#handle(req, res, host, auth, rejected).catch((err: unknown) => {
        this.#settings.logger.error({ err: String(err), path: req.url }, 'Request failed');
        if (res.headersSent) return void res.destroy();
        res.writeHead(500, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ error: 'internal error' }));
      });
    });
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    const hp = splitHostPort(this.#config.endpoint) as { host: string; port: number };
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen on ${this.#config.endpoint} (routequery): ${err.message}`)));
      server.listen(hp.port, hp.host === '' ? undefined : hp.host, () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    await this.#cluster?.start(host, this.#port, this.#config.endpoint, this.#config.auth.authenticator);
  }

  async #handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    host: Host,
    auth: HttpAuthenticator | undefined,
    rejected: { add(n?: number): void },
  ): Promise<void> {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return send(400, 'application/json', JSON.stringify({ error: `cannot parse the request target ${JSON.stringify(req.url)}` }));
    }
    // The hand-off is the one path that takes a body; everything else is read-only.
    const post = url.pathname === HANDOFF_PATH;
    const allowed = post ? ['POST'] : ['GET', 'HEAD'];
    if (!allowed.includes(req.method ?? '')) {
      res.setHeader('allow', allowed.join(', '));
      return send(405, 'application/json', JSON.stringify({ error: `method ${req.method} not allowed` }));
    }
    if (url.pathname === '/healthz') {
      const ok = host.healthy();
      return send(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'unavailable' }));
    }
    // The page holds no data (it asks /api/v1, with the token the user gives it), so it is served without auth.
    if (url.pathname === '/' || url.pathname.startsWith('/ui/')) return this.#servePage(req, res, url.pathname, send);
    if (auth !== undefined) {
      const err = auth.authenticateHttp(req.headers);
      if (err !== undefined) {
        rejected.add();
        res.setHeader('www-authenticate', 'Bearer');
        return send(401, 'application/json', JSON.stringify({ error: err }));
      }
    }
    if (url.pathname === '/metrics') {
      const om = /application\/openmetrics-text/.test(String(req.headers.accept ?? ''));
      const body = renderPrometheus(await this.#settings.telemetry.scrape(), om);
      return send(200, om ? 'application/openmetrics-text; version=1.0.0; charset=utf-8' : 'text/plain; version=0.0.4; charset=utf-8', body);
    }
    if (url.pathname === '/api/v1/settings') return send(200, 'application/json', JSON.stringify({ jaeger_url: this.#config.jaeger_url ?? null }));
    if (url.pathname === '/api/v1/intake') return send(200, 'application/json', JSON.stringify(intakeJson(await this.#settings.telemetry.scrape())));
    if (url.pathname === STATES_PATH || url.pathname === HANDOFF_PATH) {
      const cluster = this.#cluster;
      if (cluster === undefined)
        return send(404, 'application/json', JSON.stringify({ error: `no cluster is configured (extensions.${this.#settings.id}.cluster)` }));
      try {
        if (post) {
          const r = await cluster.receiveHandoff(req);
          return await sendJson(req, res, r.status, r.body);
        }
        return await sendJson(req, res, 200, await cluster.states(queryOfStatesRequest(url.searchParams)));
      } catch (err) {
        this.#settings.logger.error({ err: String(err), path: url.pathname }, 'Cluster request failed');
        return send(500, 'application/json', JSON.stringify({ error: 'internal error' }));
      }
    }
    if (url.pathname.startsWith('/api/v1/') || url.pathname === '/api/v1') {
      const provider = this.#provider();
      if (provider === undefined)
        return send(404, 'application/json', JSON.stringify({ error: 'no routelatency connector is configured in a running pipeline' }));
      const scope = queryScope(url.searchParams);
      if (scope === undefined) return send(400, 'application/json', JSON.stringify({ error: 'invalid scope; expected "local" or "cluster"' }));
      if (scope === 'cluster' && this.#cluster === undefined)
        return send(
          400,
          'application/json',
          JSON.stringify({ error: `scope=cluster needs a cluster: configure extensions.${this.#settings.id}.cluster.resolver` }),
        );
      try {
        const r =
          scope === 'cluster'
            ? await (this.#cluster as ClusterView).query(url.pathname, url.searchParams)
            : await provider.handleQuery(url.pathname, withoutScope(url.searchParams));
        if (url.pathname === '/api/v1/openapi.json' && r.status === 200) return send(200, 'application/json', JSON.stringify(routeQueryOpenapi(r.body)));
        return send(r.status, 'application/json', JSON.stringify(r.body));
      } catch (err) {
        this.#settings.logger.error({ err: String(err), path: url.pathname }, 'Query failed');
        return send(500, 'application/json', JSON.stringify({ error: 'internal error' }));
      }
    }
    return send(404, 'application/json', JSON.stringify({ error: `no such path ${url.pathname}` }));
  }

  #servePage(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, send: (status: number, type: string, body: string) => void): void {
    let assets;
    try {
      assets = pageAssets();
    } catch (err) {
      this.#settings.logger.error({ err: String(err) }, 'Cannot serve the page');
      return send(500, 'text/plain; charset=utf-8', `${String(err instanceof Error ? err.message : err)}\n`);
    }
    const a = assets.get(pathname);
    if (a === undefined) return send(404, 'application/json', JSON.stringify({ error: `no such path ${pathname}` }));
    const headers: http.OutgoingHttpHeaders = {
      'content-type': a.type,
      'cache-control': 'no-cache',
      etag: a.etag,
      vary: 'accept-encoding',
      'content-security-policy': PAGE_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? a.gzip : a.body;
    res.writeHead(200, { ...headers, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async shutdown(): Promise<void> {
    // Extensions stop last: the connectors' windows are complete, and this server still answers meanwhile.
    if (this.#cluster !== undefined) {
      await this.#cluster.handOff().catch((err: unknown) => this.#settings.logger.warn({ err: String(err) }, 'Hand-off failed'));
      await this.#cluster.stop();
    }
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}

/** Sum of a counter family's samples by the values of `keys`. */
function sumBy(families: readonly MetricFamily[], name: string, keys: readonly string[]): Map<string, { labels: Record<string, string>; value: number }> {
  const out = new Map<string, { labels: Record<string, string>; value: number }>();
  for (const f of families) {
    if (f.name !== name) continue;
    for (const s of f.samples) {
      const labels: Record<string, string> = {};
      for (const k of keys) labels[k] = s.labels[k] ?? '';
      const key = keys.map((k) => labels[k]).join('\u0000');
      const prev = out.get(key);
      if (prev === undefined) out.set(key, { labels, value: s.value });
      else prev.value += s.value;
    }
  }
  return out;
}

/** GET /api/v1/intake: spans and requests refused before any route saw them, per receiver, processor and exporter. */
export function intakeJson(families: readonly MetricFamily[]): {
  receivers: {
    receiver: string;
    transport: string;
    accepted_spans: number;
    refused_spans: number;
    failed_spans: number;
    malformed_requests: number;
    unauthenticated_requests: number;
  }[];
  processors: { processor: string; refused_spans: number }[];
  exporters: { exporter: string; enqueue_failed_spans: number }[];
} {
  const rk = ['receiver', 'transport'];
  const series = {
    accepted_spans: sumBy(families, 'otelcol_receiver_accepted_spans', rk),
    refused_spans: sumBy(families, 'otelcol_receiver_refused_spans', rk),
    failed_spans: sumBy(families, 'otelcol_receiver_failed_spans', rk),
    malformed_requests: sumBy(families, 'routelens_receiver_malformed_requests', rk),
    unauthenticated_requests: sumBy(families, 'routelens_receiver_unauthenticated_requests', rk),
  };
  const keys = new Map<string, Record<string, string>>();
  for (const m of Object.values(series)) for (const [k, v] of m) keys.set(k, v.labels);
  const receivers = [...keys].map(([k, l]) => ({
    receiver: l.receiver ?? '',
    transport: l.transport ?? '',
    accepted_spans: series.accepted_spans.get(k)?.value ?? 0,
    refused_spans: series.refused_spans.get(k)?.value ?? 0,
    failed_spans: series.failed_spans.get(k)?.value ?? 0,
    malformed_requests: series.malformed_requests.get(k)?.value ?? 0,
    unauthenticated_requests: series.unauthenticated_requests.get(k)?.value ?? 0,
  }));
  receivers.sort((a, b) => (a.receiver + a.transport < b.receiver + b.transport ? -1 : 1));
  const processors = [...sumBy(families, 'otelcol_processor_refused_spans', ['processor']).values()].map((v) => ({
    processor: v.labels.processor ?? '',
    refused_spans: v.value,
  }));
  const exporters = [...sumBy(families, 'otelcol_exporter_enqueue_failed_spans', ['exporter']).values()].map((v) => ({
    exporter: v.labels.exporter ?? '',
    enqueue_failed_spans: v.value,
  }));
  return { receivers, processors, exporters };
}

export const routeQueryExtensionFactory: ExtensionFactory<RouteQueryConfig> = {
  kind: 'extension',
  type: 'routequery',
  configSchema: routeQueryConfigSchema,
  create: (settings, config) => new RouteQueryExtension(settings, config),
};
