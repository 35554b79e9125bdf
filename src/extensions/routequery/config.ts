/** Config of the `routequery` extension: the HTTP endpoint for the route API, /metrics and /healthz. */
import { resolverSchema } from '../../discovery/config';
import { bool, duration, endpoint, obj, optional, optStr, url, type Infer } from '../../core/schema';

export const clusterConfigSchema = obj(
  {
    resolver: resolverSchema({
      defaultPort: undefined,
      portDoc: "Port of the peers' routequery endpoint. Default this extension's own port.",
    }),
    timeout: duration({
      default: '2s',
      min: '1ms',
      doc: 'Per-peer deadline of a cluster-wide query; a peer that does not answer in time is reported in `peers` and makes the answer `partial`.',
    }),
    auth: obj({
      authenticator: optStr({
        doc: 'Id of a client authenticator extension whose credentials are sent to the peers. Default `auth.authenticator` (the peers are guarded as this one is).',
      }),
    }),
    handoff: obj({
      enabled: bool({
        default: true,
        doc: "On shutdown, send the open windows (every component's query state) to a peer, which merges them into its cluster-wide answers.",
      }),
      timeout: duration({ default: '10s', min: '1ms', doc: 'How long shutdown may spend handing the windows off.' }),
      retention: duration({ default: '1h', min: '1s', doc: 'How long a peer keeps windows handed to it: the largest window of the routelatency connector.' }),
    }),
  },
  { doc: "Cluster-wide answers (`scope=cluster`) merged from the peers this resolver finds. Absent: every answer is this process's own." },
);

export const routeQueryConfigSchema = obj({
  endpoint: endpoint({ default: 'localhost:8888', doc: 'Listen address of the query API, /metrics and /healthz. Localhost by default.' }),
  auth: obj({ authenticator: optStr({ doc: 'Id of a bearertokenauth extension guarding /api/* and /metrics.' }) }),
  jaeger_url: optional(url({ doc: 'Base URL of a Jaeger UI, e.g. "http://jaeger:16686": the page links each slow trace to `<jaeger_url>/trace/<trace id>`.' })),
  cluster: optional(clusterConfigSchema),
});
export type RouteQueryConfig = Infer<typeof routeQueryConfigSchema>;
export type ClusterConfig = Infer<typeof clusterConfigSchema>;
