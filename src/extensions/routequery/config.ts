/** Config of the `routequery` extension: the HTTP endpoint for the route API, /metrics and /healthz. */
import { endpoint, obj, optional, optStr, url, type Infer } from '../../core/schema';

export const routeQueryConfigSchema = obj({
  endpoint: endpoint({ default: 'localhost:8888', doc: 'Listen address of the query API, /metrics and /healthz. Localhost by default.' }),
  auth: obj({ authenticator: optStr({ doc: 'Id of a bearertokenauth extension guarding /api/* and /metrics.' }) }),
  jaeger_url: optional(url({ doc: 'Base URL of a Jaeger UI, e.g. "http://jaeger:16686": the page links each slow trace to `<jaeger_url>/trace/<trace id>`.' })),
});
export type RouteQueryConfig = Infer<typeof routeQueryConfigSchema>;
