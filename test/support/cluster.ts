/**
 * Helpers of the cluster tests: a seeded workload of server spans over many routes, encoded as OTLP requests
 * that end about now, and the config of one replica of a routelens cluster.
 */
import { traceRequestFromJson } from '../../src/pdata/otlp-json';
import { distributions, rng } from './route-spans';

export interface WorkSpan {
  service: string;
  method: string;
  route: string;
  ms: number;
  status: number;
  traceId: string;
  spanId: string;
  /** Server span (2) or one of its client children (3). */
  kind: 2 | 3;
  parentSpanId?: string;
}

const hex = (r: () => number, digits: number): string => {
  let s = '';
  while (s.length < digits)
    s += Math.floor(r() * 0x100000000)
      .toString(16)
      .padStart(8, '0');
  return s.slice(0, digits);
};

/**
 * `traces` traces of one server span each (plus `clientsPerTrace` client children), over `routes` routes of
 * `services` services, with lognormal latencies and about 2 % 5xx. Deterministic for a seed.
 */
export function clusterWorkload(seed: number, o: { traces: number; routes: number; services?: number; clientsPerTrace?: number }): WorkSpan[] {
  const r = rng(seed);
  const services = o.services ?? 3;
  const out: WorkSpan[] = [];
  for (let t = 0; t < o.traces; t++) {
    const k = Math.floor(r() * o.routes);
    const service = `svc-${k % services}`;
    const method = k % 4 === 0 ? 'POST' : 'GET';
    const route = `/r${k}/{id}`;
    const ms = Math.round(distributions.lognormal!(r) * 1000) / 1000;
    const status = r() < 0.02 ? 503 : 200;
    const traceId = hex(r, 32);
    const spanId = hex(r, 16);
    out.push({ service, method, route, ms, status, traceId, spanId, kind: 2 });
    for (let c = 0; c < (o.clientsPerTrace ?? 0); c++) {
      out.push({ service, method: 'GET', route: `/downstream/${c}`, ms: ms / 4, status: 200, traceId, spanId: hex(r, 16), kind: 3, parentSpanId: spanId });
    }
  }
  return out;
}

/** One ExportTraceServiceRequest of `spans` (a resource per service), every span ending at `endMs`. */
export function encodeWorkload(spans: readonly WorkSpan[], endMs = Date.now()): Uint8Array {
  const byService = new Map<string, WorkSpan[]>();
  for (const s of spans) {
    let list = byService.get(s.service);
    if (list === undefined) byService.set(s.service, (list = []));
    list.push(s);
  }
  const endNs = BigInt(endMs) * 1_000_000n;
  const resourceSpans = [...byService].map(([service, list]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [
      {
        scope: { name: 'routelens-cluster-test' },
        spans: list.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId === undefined ? {} : { parentSpanId: s.parentSpanId }),
          name: s.kind === 2 ? `${s.method} ${s.route}` : `${s.method}`,
          kind: s.kind,
          startTimeUnixNano: String(endNs - BigInt(Math.round(s.ms * 1e6))),
          endTimeUnixNano: String(endNs),
          attributes: [
            ...(s.kind === 2
              ? [{ key: 'http.route', value: { stringValue: s.route } }]
              : [{ key: 'url.full', value: { stringValue: `http://down${s.route}` } }]),
            { key: 'http.request.method', value: { stringValue: s.method } },
            { key: 'http.response.status_code', value: { intValue: String(s.status) } },
          ],
        })),
      },
    ],
  }));
  return traceRequestFromJson(JSON.stringify({ resourceSpans }));
}

export interface ReplicaPorts {
  grpc: number;
  http: number;
  query: number;
}

/**
 * The config of one replica: OTLP receiver, the routelatency connector, the query extension with a static
 * `cluster` of `peers` (query `host:port`s). `extensions`/`auth` add a bearer token on the query endpoint.
 */
export function replicaYaml(
  ports: ReplicaPorts,
  o: { peers?: readonly string[]; token?: string; peerToken?: string; handoff?: boolean; clusterTimeout?: string; extra?: string } = {},
): string {
  const auth = o.token === undefined ? '' : `\n    auth: { authenticator: bearertokenauth }`;
  const peerAuth = o.peerToken === undefined ? '' : `\n      auth: { authenticator: bearertokenauth/peers }`;
  const cluster =
    o.peers === undefined
      ? ''
      : `\n    cluster:
      resolver: { static: { hostnames: [${o.peers.join(', ')}] } }
      timeout: ${o.clusterTimeout ?? '2s'}
      handoff: { enabled: ${o.handoff ?? true} }${peerAuth}`;
  const authExt = o.token === undefined ? '' : `\n  bearertokenauth: { token: ${o.token} }`;
  const peerAuthExt = o.peerToken === undefined ? '' : `\n  bearertokenauth/peers: { token: ${o.peerToken} }`;
  const enabled = ['routequery', ...(o.token === undefined ? [] : ['bearertokenauth']), ...(o.peerToken === undefined ? [] : ['bearertokenauth/peers'])];
  return `receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${ports.grpc} }
      http: { endpoint: 127.0.0.1:${ports.http} }
connectors:
  routelatency: {}
extensions:${authExt}${peerAuthExt}
  routequery:
    endpoint: 127.0.0.1:${ports.query}${auth}${cluster}
${o.extra ?? ''}service:
  extensions: [${enabled.join(', ')}]
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
`;
}
