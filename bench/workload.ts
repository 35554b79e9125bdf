/**
 * The benchmark's workload: the pods the fake Kubernetes API serves, the Python services running in them, their
 * routes with known latency distributions, and the pre-encoded `ExportTraceServiceRequest` pool built from them.
 *
 * Span shapes follow what the Python instrumentations emit (see test/fixtures/python/*.json): a SERVER span from
 * opentelemetry-instrumentation-flask / -fastapi with the old http.* attributes plus the new semconv duplicates
 * (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup), ~20 attributes; sqlalchemy CLIENT db spans; FastAPI's two INTERNAL
 * "http send" spans. An /error route fails with status ERROR and an `exception` event.
 */
import { keyValue, MARKER_MAGIC, MARKER_SPAN_ID_PLACEHOLDER, PbWriter, traceIdOffsets, type AttrValue } from './wire';

/** The standard request: what the Python SDK's BatchSpanProcessor sends at its default size. */
export const SPANS_PER_REQUEST = 512;
/** At most this many spans per resource: a request of 512 spans carries 4 resources, an agent's 8192-span batch 64. */
const MAX_SPANS_PER_RESOURCE = 128;

/** How many resources a request of `spans` spans carries (one per pod it came from). */
export function resourcesPerRequest(spans: number): number {
  return Math.max(1, Math.ceil(spans / MAX_SPANS_PER_RESOURCE));
}

type Framework = 'flask' | 'fastapi';

export interface ServiceDef {
  name: string;
  framework: Framework;
  namespace: string;
  version: string;
}

export const SERVICES: readonly ServiceDef[] = [
  { name: 'users-api', framework: 'flask', namespace: 'shop', version: '1.8.2' },
  { name: 'orders-api', framework: 'flask', namespace: 'shop', version: '2.1.0' },
  { name: 'catalog', framework: 'flask', namespace: 'shop', version: '0.9.4' },
  { name: 'payments', framework: 'fastapi', namespace: 'payments', version: '3.0.1' },
  { name: 'search', framework: 'fastapi', namespace: 'search', version: '1.2.0' },
  { name: 'accounts', framework: 'fastapi', namespace: 'payments', version: '0.4.7' },
];

export const PODS_PER_SERVICE = 2;

export interface PodDef {
  service: ServiceDef;
  name: string;
  uid: string;
  ip: string;
  node: string;
  replicaSet: string;
  replicaSetUid: string;
  deploymentUid: string;
}

function hexUid(seed: number): string {
  const h = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
  const a = h(seed * 2654435761);
  const b = h(seed * 40503 + 7);
  const c = h(seed * 69069 + 1);
  return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-8${c.slice(1, 4)}-${c}${a.slice(0, 4)}`;
}

/** Every pod, deterministic names, uids and IPs (10.42.<service>.<10+i>). */
export const PODS: readonly PodDef[] = SERVICES.flatMap((service, si) =>
  Array.from({ length: PODS_PER_SERVICE }, (_, i): PodDef => {
    const rs = `${service.name}-7d4b9c${si}f`;
    return {
      service,
      name: `${rs}-${['x2k8p', 'q9w4z', 'm3n7v', 'c6b1r'][i] ?? `p${i}`}`,
      uid: hexUid(100 + si * 10 + i),
      ip: `10.42.${si + 1}.${10 + i}`,
      node: `node-${(si + i) % 3}`,
      replicaSet: rs,
      replicaSetUid: hexUid(500 + si),
      deploymentUid: hexUid(900 + si),
    };
  }),
);

interface RouteDef {
  method: string;
  /** Template as the framework writes it. */
  route: string;
  target: (rng: Rng) => string;
  status: number;
  /** Log-normal duration: median ms and sigma of ln. */
  medianMs: number;
  sigma: number;
  weight: number;
  db: 'select' | 'insert' | 'none';
}

function routesFor(fw: Framework): RouteDef[] {
  const id = fw === 'flask' ? '<int:user_id>' : '{user_id}';
  const item = fw === 'flask' ? '<int:item_id>' : '{item_id}';
  return [
    { method: 'GET', route: `/users/${id}`, target: (r) => `/users/${1 + r.int(5000)}`, status: 200, medianMs: 12, sigma: 0.5, weight: 40, db: 'select' },
    { method: 'GET', route: '/health', target: () => '/health', status: 200, medianMs: 0.8, sigma: 0.3, weight: 20, db: 'none' },
    { method: 'POST', route: `/items/${item}`, target: (r) => `/items/${1 + r.int(900)}`, status: 201, medianMs: 35, sigma: 0.6, weight: 20, db: 'insert' },
    { method: 'GET', route: '/slow', target: (r) => `/slow?ms=${200 + r.int(100)}`, status: 200, medianMs: 240, sigma: 0.35, weight: 10, db: 'select' },
    { method: 'GET', route: '/error', target: () => '/error', status: 500, medianMs: 6, sigma: 0.8, weight: 10, db: 'none' },
  ];
}

/** Key of a route as routelens reports it: service, method, route template. */
export function routeKey(service: string, method: string, route: string): string {
  return `${service} ${method} ${route}`;
}

/** Small deterministic PRNG (mulberry32) so every run offers the same spans. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

interface SpanSpec {
  traceId: Buffer;
  spanId: Buffer;
  parent?: Buffer;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attrs: [string, AttrValue][];
  error?: string;
  exception?: boolean;
  scope: 'server' | 'db';
}

/** A SERVER span the generator put in a request: the route key index and its exact duration. */
export interface ServerSample {
  route: number;
  durationNs: number;
}

/** One pre-encoded request and where to patch its marker. */
export interface PooledRequest {
  bytes: Buffer;
  traceIdOffset: number;
  spanIdOffset: number;
  samples: ServerSample[];
  /** Spans in the request. */
  spans: number;
  /** Where the trace ids of its spans are (all but the marker's), for fresh ids per send (StartArgs.freshTraceIds). */
  traceIds: number[];
}

export interface Pool {
  requests: PooledRequest[];
  spansPerRequest: number;
  /** Route keys, indexed by ServerSample.route. */
  routes: string[];
  spanBytes: number;
  attributesPerSpan: number;
}

function serverAttrs(svc: ServiceDef, pod: PodDef, r: RouteDef, target: string, rng: Rng): [string, AttrValue][] {
  const port = 8000;
  const host = `${pod.ip}:${port}`;
  const peerPort = 30000 + rng.int(30000);
  const ua = rng.next() < 0.5 ? 'python-requests/2.32.3' : 'Go-http-client/1.1';
  const path = target.split('?')[0] ?? target;
  const old: [string, AttrValue][] =
    svc.framework === 'flask'
      ? [
          ['http.method', r.method],
          ['http.server_name', pod.ip],
          ['http.scheme', 'http'],
          ['net.host.name', host],
          ['http.host', host],
          ['net.host.port', port],
          ['http.target', target],
          ['net.peer.ip', `10.42.0.${2 + rng.int(200)}`],
          ['net.peer.port', peerPort],
          ['http.user_agent', ua],
          ['http.flavor', '1.1'],
          ['http.route', r.route],
          ['http.status_code', r.status],
        ]
      : [
          ['http.scheme', 'http'],
          ['http.host', host],
          ['net.host.port', port],
          ['http.flavor', '1.1'],
          ['http.target', path],
          ['http.url', `http://${host}${target}`],
          ['http.method', r.method],
          ['http.server_name', host],
          ['http.user_agent', ua],
          ['net.peer.ip', `10.42.0.${2 + rng.int(200)}`],
          ['net.peer.port', peerPort],
          ['http.route', r.route],
          ['http.status_code', r.status],
          ['http.response_content_length', 64 + rng.int(4000)],
        ];
  const dup: [string, AttrValue][] = [
    ['http.request.method', r.method],
    ['url.scheme', 'http'],
    ['url.path', path],
    ['server.address', pod.ip],
    ['server.port', port],
    ['network.protocol.version', '1.1'],
    ['http.response.status_code', r.status],
  ];
  return svc.framework === 'flask' ? [...old, ...dup] : [...old, ...dup.slice(0, 6)];
}

function dbAttrs(svc: ServiceDef, op: 'connect' | 'SELECT' | 'INSERT'): [string, AttrValue][] {
  const db = svc.name.replace('-', '_');
  const base: [string, AttrValue][] = [
    ['db.system', 'postgresql'],
    ['db.name', db],
    ['db.user', 'app'],
    ['net.peer.name', `${svc.namespace}-postgres.${svc.namespace}.svc.cluster.local`],
    ['net.peer.port', 5432],
    ['net.transport', 'ip_tcp'],
  ];
  if (op === 'connect') return base;
  const stmt =
    op === 'SELECT'
      ? `SELECT ${db}.id, ${db}.name, ${db}.email, ${db}.created_at FROM ${db} WHERE ${db}.id = %(id_1)s`
      : `INSERT INTO ${db}_items (name, price, owner_id) VALUES (%(name)s, %(price)s, %(owner_id)s) RETURNING ${db}_items.id`;
  return [
    ...base,
    ['db.statement', stmt],
    ['db.operation', op],
    ['db.system.name', 'postgresql'],
    ['db.namespace', db],
    ['db.query.text', stmt],
    ['db.operation.name', op],
    ['server.address', `${svc.namespace}-postgres.${svc.namespace}.svc.cluster.local`],
    ['server.port', 5432],
  ];
}

function traceSpans(svc: ServiceDef, pod: PodDef, r: RouteDef, rng: Rng, baseNs: bigint, durNs: number): SpanSpec[] {
  const traceId = rng.bytes(16);
  const serverId = rng.bytes(8);
  const start = baseNs - BigInt(rng.int(1_000_000_000));
  const end = start + BigInt(durNs);
  const target = r.target(rng);
  const spans: SpanSpec[] = [];
  const server: SpanSpec = {
    traceId,
    spanId: serverId,
    name: `${r.method} ${r.route}`,
    kind: 2,
    startNs: start,
    endNs: end,
    attrs: serverAttrs(svc, pod, r, target, rng),
    scope: 'server',
  };
  if (r.status >= 500) {
    server.error = 'RuntimeError: boom: /error always fails';
    server.exception = true;
  }
  spans.push(server);
  const part = (from: number, to: number): [bigint, bigint] => [start + BigInt(Math.floor(durNs * from)), start + BigInt(Math.floor(durNs * to))];
  if (r.db !== 'none') {
    const [cs, ce] = part(0.05, 0.12);
    spans.push({
      traceId,
      spanId: rng.bytes(8),
      parent: serverId,
      name: 'connect',
      kind: 3,
      startNs: cs,
      endNs: ce,
      attrs: dbAttrs(svc, 'connect'),
      scope: 'db',
    });
    const op = r.db === 'select' ? 'SELECT' : 'INSERT';
    const [qs, qe] = part(0.15, 0.85);
    spans.push({
      traceId,
      spanId: rng.bytes(8),
      parent: serverId,
      name: `${op} ${svc.name.replace('-', '_')}`,
      kind: 3,
      startNs: qs,
      endNs: qe,
      attrs: dbAttrs(svc, op),
      scope: 'db',
    });
  }
  if (svc.framework === 'fastapi') {
    const [s1, e1] = part(0.9, 0.93);
    const [s2, e2] = part(0.94, 0.98);
    spans.push({
      traceId,
      spanId: rng.bytes(8),
      parent: serverId,
      name: `${r.method} ${r.route} http send`,
      kind: 1,
      startNs: s1,
      endNs: e1,
      attrs: [
        ['asgi.event.type', 'http.response.start'],
        ['http.status_code', r.status],
      ],
      scope: 'server',
    });
    spans.push({
      traceId,
      spanId: rng.bytes(8),
      parent: serverId,
      name: `${r.method} ${r.route} http send`,
      kind: 1,
      startNs: s2,
      endNs: e2,
      attrs: [['asgi.event.type', 'http.response.body']],
      scope: 'server',
    });
  }
  return spans;
}

function encodeSpan(s: SpanSpec): PbWriter {
  const w = new PbWriter().bytes(1, s.traceId).bytes(2, s.spanId);
  if (s.parent !== undefined) w.bytes(4, s.parent);
  w.string(5, s.name).uint(6, s.kind).fixed64(7, s.startNs).fixed64(8, s.endNs);
  for (const [k, v] of s.attrs) w.message(9, keyValue(k, v));
  if (s.exception === true) {
    const ev = new PbWriter()
      .fixed64(1, s.endNs - 1000n)
      .string(2, 'exception')
      .message(3, keyValue('exception.type', 'RuntimeError'))
      .message(3, keyValue('exception.message', 'boom: /error always fails'))
      .message(
        3,
        keyValue(
          'exception.stacktrace',
          'Traceback (most recent call last):\n  File "/app/app.py", line 41, in error\n    raise RuntimeError("boom: /error always fails")\nRuntimeError: boom: /error always fails\n',
        ),
      )
      .message(3, keyValue('exception.escaped', 'False'));
    w.message(11, ev);
  }
  w.fixed32(16, 0x101);
  if (s.error !== undefined) w.message(15, new PbWriter().string(2, s.error).uint(3, 2));
  return w;
}

function resourceAttrs(pod: PodDef): [string, AttrValue][] {
  return [
    ['service.name', pod.service.name],
    ['service.version', pod.service.version],
    ['service.instance.id', pod.uid],
    ['telemetry.sdk.language', 'python'],
    ['telemetry.sdk.name', 'opentelemetry'],
    ['telemetry.sdk.version', '1.38.0'],
    ['telemetry.auto.version', '0.59b0'],
    ['process.runtime.name', 'cpython'],
    ['process.runtime.version', '3.12.7'],
    ['process.pid', 1],
    ['host.name', pod.name],
    ['k8s.pod.ip', pod.ip],
  ];
}

/**
 * Build `count` distinct requests of `spansPerRequest` spans each: `resourcesPerRequest` pods per request
 * (rotating through all pods; a request of up to 128 spans comes from one pod, as an SDK sends it), traces of
 * the pods' service with routes drawn by weight and log-normal durations. The first span of every request is the
 * marker (see wire.ts).
 */
export function buildPool(count: number, seed = 42, spansPerRequest = SPANS_PER_REQUEST): Pool {
  const resources = resourcesPerRequest(spansPerRequest);
  const rng = new Rng(seed);
  const routes: string[] = [];
  const routeIndex = new Map<string, number>();
  const baseNs = BigInt(Date.now()) * 1_000_000n;
  const requests: PooledRequest[] = [];
  let podCursor = 0;
  let spanCount = 0;
  let attrCount = 0;
  for (let n = 0; n < count; n++) {
    const req = new PbWriter();
    const samples: ServerSample[] = [];
    for (let ri = 0; ri < resources; ri++) {
      // The spans are spread over the resources as evenly as they divide.
      const spansHere = Math.floor(spansPerRequest / resources) + (ri < spansPerRequest % resources ? 1 : 0);
      const pod = PODS[podCursor++ % PODS.length] as PodDef;
      const svc = pod.service;
      const defs = routesFor(svc.framework);
      const totalWeight = defs.reduce((a, d) => a + d.weight, 0);
      const spans: SpanSpec[] = [];
      while (spans.length < spansHere) {
        let pick = rng.next() * totalWeight;
        let r = defs[0] as RouteDef;
        for (const d of defs) {
          pick -= d.weight;
          if (pick < 0) {
            r = d;
            break;
          }
        }
        const durNs = Math.max(1000, Math.round(r.medianMs * 1e6 * Math.exp(r.sigma * rng.normal())));
        const trace = traceSpans(svc, pod, r, rng, baseNs, durNs);
        const room = spansHere - spans.length;
        spans.push(...trace.slice(0, room));
        const key = routeKey(svc.name, r.method, r.route);
        let idx = routeIndex.get(key);
        if (idx === undefined) {
          idx = routes.length;
          routes.push(key);
          routeIndex.set(key, idx);
        }
        samples.push({ route: idx, durationNs: durNs });
      }
      if (ri === 0) {
        // Marker on the first span of the request (a SERVER span: every trace starts with one).
        const first = spans[0] as SpanSpec;
        first.traceId = Buffer.concat([MARKER_MAGIC, Buffer.alloc(8)]);
        first.spanId = Buffer.from(MARKER_SPAN_ID_PLACEHOLDER);
      }
      const resource = new PbWriter();
      for (const [k, v] of resourceAttrs(pod)) resource.message(1, keyValue(k, v));
      const scopeName = svc.framework === 'flask' ? 'opentelemetry.instrumentation.flask' : 'opentelemetry.instrumentation.fastapi';
      const serverScope = new PbWriter().message(1, new PbWriter().string(1, scopeName).string(2, '0.59b0'));
      const dbScope = new PbWriter().message(1, new PbWriter().string(1, 'opentelemetry.instrumentation.sqlalchemy').string(2, '0.59b0'));
      for (const s of spans) {
        (s.scope === 'server' ? serverScope : dbScope).message(2, encodeSpan(s));
        attrCount += s.attrs.length;
      }
      spanCount += spans.length;
      serverScope.string(3, 'https://opentelemetry.io/schemas/1.11.0');
      const rs = new PbWriter().message(1, resource).message(2, serverScope).message(2, dbScope);
      rs.string(3, 'https://opentelemetry.io/schemas/1.11.0');
      req.message(1, rs);
    }
    const bytes = req.finish();
    const traceIdOffset = bytes.indexOf(MARKER_MAGIC);
    const spanIdOffset = bytes.indexOf(MARKER_SPAN_ID_PLACEHOLDER, traceIdOffset);
    if (traceIdOffset < 0 || spanIdOffset < 0 || bytes.indexOf(MARKER_MAGIC, traceIdOffset + 1) >= 0) {
      throw new Error('workload: marker not found exactly once');
    }
    requests.push({ bytes, traceIdOffset: traceIdOffset + 8, spanIdOffset, samples, spans: spansPerRequest, traceIds: traceIdOffsets(bytes) });
  }
  const totalBytes = requests.reduce((a, r) => a + r.bytes.length, 0);
  return { requests, spansPerRequest, routes, spanBytes: totalBytes / spanCount, attributesPerSpan: attrCount / spanCount };
}
