/**
 * The `routequery` extension: one HTTP server for people and scrapers.
 * - GET /metrics: self-telemetry and route metrics (Prometheus text; OpenMetrics with exemplars on request)
 * - GET /healthz: 200 when every pipeline runs, else 503
 * - GET /api/v1/*: the route latency API of the routelatency connector
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Component, Host } from '../../core/component';
import type { ExtensionFactory } from '../../consumer/factory';
import { splitHostPort } from '../../core/schema';
import { renderPrometheus } from '../../core/telemetry';
import { routeQueryConfigSchema, type RouteQueryConfig } from './config';
import { isRouteQueryProvider, type RouteQueryProvider } from '../../core/query';

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

  constructor(settings: Parameters<ExtensionFactory<RouteQueryConfig>['create']>[0], config: RouteQueryConfig) {
    this.#settings = settings;
    this.#config = config;
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
    this.#server = http.createServer((req, res) => void this.#handle(req, res, host, auth, rejected));
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    const hp = splitHostPort(this.#config.endpoint) as { host: string; port: number };
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen on ${this.#config.endpoint} (routequery): ${err.message}`)));
      server.listen(hp.port, hp.host === '' ? undefined : hp.host, () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
  }

  async #handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    host: Host,
    auth: HttpAuthenticator | undefined,
    rejected: { add(n?: number): void },
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'application/json', JSON.stringify({ error: `method ${req.method} not allowed` }));
    if (url.pathname === '/healthz') {
      const ok = host.healthy();
      return send(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'unavailable' }));
    }
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
    if (url.pathname.startsWith('/api/v1/') || url.pathname === '/api/v1') {
      const provider = this.#provider();
      if (provider === undefined)
        return send(404, 'application/json', JSON.stringify({ error: 'no routelatency connector is configured in a running pipeline' }));
      try {
        const r = await provider.handleQuery(url.pathname, url.searchParams);
        return send(r.status, 'application/json', JSON.stringify(r.body));
      } catch (err) {
        this.#settings.logger.error({ err: String(err), path: url.pathname }, 'Query failed');
        return send(500, 'application/json', JSON.stringify({ error: 'internal error' }));
      }
    }
    if (url.pathname === '/') {
      return send(
        200,
        'text/plain; charset=utf-8',
        'routelens\n\nGET /api/v1/routes?window=5m  per-route latency\nGET /api/v1/services\nGET /api/v1/openapi.json\nGET /metrics\nGET /healthz\n',
      );
    }
    return send(404, 'application/json', JSON.stringify({ error: `no such path ${url.pathname}` }));
  }

  async shutdown(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s === undefined) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}

export const routeQueryExtensionFactory: ExtensionFactory<RouteQueryConfig> = {
  kind: 'extension',
  type: 'routequery',
  configSchema: routeQueryConfigSchema,
  create: (settings, config) => new RouteQueryExtension(settings, config),
};
