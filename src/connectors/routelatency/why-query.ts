/**
 * `GET /api/v1/why?service=S&method=GET&route=R&window=5m`: the route's latency from the latency store (every
 * span) and its analysis from the analysis store, as src/analysis/why.ts builds them.
 *
 * `service` and `route` are required. Without `method` the route must exist under exactly one method (else 400
 * listing them). 404 when neither store knows the route, or when analysis is turned off.
 */
import type { RouteAnalysisStore } from '../../analysis/route-analysis';
import { buildWhy, type WhyAnswer } from '../../analysis/why';
import { QueryError, readParams, resolveWindow } from './query';
import type { RouteStore } from './store';
import { formatDuration } from './window';

export function queryWhy(store: RouteStore, analysis: RouteAnalysisStore | undefined, params: URLSearchParams, nowMs: number): WhyAnswer {
  const p = readParams(params, ['service', 'method', 'route', 'window']);
  if (analysis === undefined) throw new QueryError(404, 'trace analysis is turned off (connectors.routelatency.analysis.enabled: false)');
  const service = p.get('service');
  const route = p.get('route');
  if (service === undefined || service === '') throw new QueryError(400, 'parameter "service" is required');
  if (route === undefined || route === '') throw new QueryError(400, 'parameter "route" is required');
  let method = p.get('method');
  if (method === '-') method = '';
  if (method === undefined) {
    const methods = new Set<string>();
    for (const e of store.entries()) if (e.service === service && e.route === route) methods.add(e.method);
    for (const r of analysis.routes()) if (r.service === service && r.route === route) methods.add(r.method);
    if (methods.size > 1)
      throw new QueryError(
        400,
        `route ${JSON.stringify(route)} of ${JSON.stringify(service)} has several methods (${[...methods].sort().join(', ')}); give one with "method"`,
      );
    method = [...methods][0] ?? '';
  }
  const win = resolveWindow(store, p.get('window'), nowMs);
  const entries = store.find(service, method, route);
  const data = analysis.aggregate({ service, method, route }, win.windowMs, nowMs);
  if (entries.length === 0 && data === undefined) {
    throw new QueryError(404, `unknown route ${JSON.stringify(`${method} ${route}`.trim())} of service ${JSON.stringify(service)}`);
  }
  const latency = { count: 0, p50: NaN, p95: NaN, p99: NaN };
  let errorCount = 0;
  if (entries.length > 0) {
    const s = store.summarize(entries, win);
    Object.assign(latency, { count: s.count, p50: s.p50, p95: s.p95, p99: s.p99 });
    errorCount = s.errorCount;
  }
  return buildWhy({ service, method, route, window: formatDuration(win.windowMs), latency, errorCount, data });
}

/** The why endpoint, as handleQuery answers the others (client errors as 400/404 bodies). */
export function handleWhy(store: RouteStore, analysis: RouteAnalysisStore | undefined, params: URLSearchParams): { status: number; body: unknown } {
  try {
    return { status: 200, body: queryWhy(store, analysis, params, store.clock.now()) };
  } catch (e) {
    if (e instanceof QueryError) return { status: e.status, body: { error: e.message } };
    if (e instanceof RangeError) return { status: 400, body: { error: e.message } };
    throw e;
  }
}

export const WHY_PATH = '/api/v1/why';
