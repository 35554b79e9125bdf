/**
 * End to end, as a user runs it: the Python example services (examples/python) export to routelens, running as
 * a child process (`node bin/routelens.js run --config …`) with k8sattributes (against the fake Kubernetes API),
 * routelatency and an `otlp` exporter to a real Jaeger v2 started from examples/jaeger/jaeger.yaml.
 *
 * - Flask exports over gRPC with gzip, FastAPI over http/protobuf; both say which pod they are with
 *   OTEL_RESOURCE_ATTRIBUTES=k8s.pod.ip=<the pod's IP in the fake API>.
 * - Exact accounting: a test-only sitecustomize (pyhooks/) counts the spans each app's exporter got
 *   acknowledged; routelens must have accepted exactly those, sent exactly those, and Jaeger must hold exactly
 *   those, with one SERVER span per request (per route).
 * - Jaeger is stopped while traffic flows and started again: the exporter's queue and retries deliver it all.
 * - The mistakes Python users make (TLS on the plaintext port, http/protobuf on the gRPC port, gRPC on the HTTP
 *   port, a JSON body sent as protobuf) each give a clear log line; garbage from one client never costs another
 *   client a span.
 * - The example config (examples/jaeger/otel-config.yaml) works as shipped.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RoutesResponse } from '../../src/connectors/routelatency/query';
import { TRACE_EXPORT_PATH } from '../../src/receivers/otlp/grpc';
import { decodeRpcStatus } from '../../src/pdata/rpc-status';
import { FakeKubeApi, makeNamespace, makePod, makeReplicaSet } from '../support/fake-kube-api';
import { waitFor } from '../support/free-port';
import { pythonBin, runLoad, startPythonApp, type LoadRoute, type LoadSummary, type PythonApp } from '../support/python';
import {
  cli,
  jaegerSpans,
  metricValue,
  repoRoot,
  serverSpansPerRoute,
  spanCounter,
  startRoutelensChild,
  waitForJaegerSpans,
  type FlatSpan,
  type ChildPorts,
  type LogLine,
  type RoutelensChild,
  type SpanCounter,
} from '../support/python-e2e';
import { startExampleJaeger, type ExampleJaeger } from '../support/jaeger-example';

const EXPORTER = 'otlp/jaeger';
/**
 * routelens worker processes (`--workers`). By default none is given, as a user runs it: one worker per CPU
 * (2 on the project's machines), so counters and route tables are the primary's merge of the workers'.
 */
const WORKERS = process.env['ROUTELENS_E2E_WORKERS'] === undefined ? undefined : Number(process.env['ROUTELENS_E2E_WORKERS']);
const ROUTES: readonly LoadRoute[] = ['users', 'slow', 'error', 'call'];

/** The pods the Python apps claim to be (k8s.pod.ip) and what k8sattributes must add for them. */
const PODS = {
  flask: {
    ip: '10.42.1.17',
    name: 'users-flask-6f7d8c9b5-x7k2p',
    replicaSet: 'users-flask-6f7d8c9b5',
    deployment: 'users-flask',
    node: 'worker-a',
  },
  fastapi: {
    ip: '10.42.2.23',
    name: 'users-fastapi-54c9d7f8b6-q9m4z',
    replicaSet: 'users-fastapi-54c9d7f8b6',
    deployment: 'users-fastapi',
    node: 'worker-b',
  },
} as const;
const NAMESPACE = 'shop';

type Kind = keyof typeof PODS;

/** Flask's and FastAPI's own route templates, per load.py route. /call calls the app's own /users/1. */
const TEMPLATES: Record<Kind, Record<LoadRoute, string>> = {
  flask: { users: '/users/<int:user_id>', slow: '/slow', error: '/error', call: '/call', healthz: '/healthz', notfound: '(none)' },
  fastapi: { users: '/users/{user_id}', slow: '/slow', error: '/error', call: '/call', healthz: '/healthz', notfound: '(none)' },
};

/** SERVER spans per route template that `n` requests per route (ROUTES) produce. */
function expectedServerSpans(kind: Kind, n: number): Record<string, number> {
  const t = TEMPLATES[kind];
  return { [t.users]: 2 * n, [t.slow]: n, [t.error]: n, [t.call]: n };
}

interface RunningApp {
  kind: Kind;
  service: string;
  app: PythonApp;
  counter: SpanCounter;
}

function sumAccepted(metrics: string, transport?: 'grpc' | 'http'): number {
  return metricValue(metrics, 'otelcol_receiver_accepted_spans_total', transport === undefined ? {} : { transport });
}

interface Snapshot {
  acceptedGrpc: number;
  acceptedHttp: number;
  sent: number;
  sendFailed: number;
  enqueueFailed: number;
  malformedGrpc: number;
  malformedHttp: number;
}

function snapshot(metrics: string): Snapshot {
  return {
    acceptedGrpc: sumAccepted(metrics, 'grpc'),
    acceptedHttp: sumAccepted(metrics, 'http'),
    sent: metricValue(metrics, 'otelcol_exporter_sent_spans_total', { exporter: EXPORTER }),
    sendFailed: metricValue(metrics, 'otelcol_exporter_send_failed_spans_total', { exporter: EXPORTER }),
    enqueueFailed: metricValue(metrics, 'otelcol_exporter_enqueue_failed_spans_total', { exporter: EXPORTER }),
    malformedGrpc: metricValue(metrics, 'routelens_receiver_malformed_requests_total', { transport: 'grpc' }),
    malformedHttp: metricValue(metrics, 'routelens_receiver_malformed_requests_total', { transport: 'http' }),
  };
}

/** A small seeded PRNG (xorshift32), so the garbage is the same on every run. */
function prng(seed: number): (n: number) => Buffer {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[i] = x & 0xff;
    }
    return b;
  };
}

describe('Python apps → routelens (child process) → Jaeger', function () {
  this.timeout(180_000);

  let tmp: string;
  let jaeger: ExampleJaeger;
  let kube: FakeKubeApi;
  let rl: RoutelensChild;
  const apps: RunningApp[] = [];

  function routelensConfig(ports: ChildPorts): string {
    return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:${ports.grpc}" }
      http: { endpoint: "127.0.0.1:${ports.http}" }
processors:
  k8sattributes:
    auth_type: kubeConfig
    kube_config_path: ${kube.writeKubeconfig()}
    wait_for_metadata: true
    wait_for_metadata_timeout: 20s
    pod_association:
      - sources: [{ from: resource_attribute, name: k8s.pod.ip }]
    extract:
      metadata: [k8s.namespace.name, k8s.pod.name, k8s.pod.uid, k8s.deployment.name, k8s.node.name]
      labels:
        - { from: namespace, key: team }
connectors:
  routelatency:
    windows: [1m, 5m, 15m]
    dimensions:
      - name: k8s.deployment.name
exporters:
  ${EXPORTER}:
    endpoint: ${jaeger.otlpGrpcEndpoint}
    tls: { insecure: true }
    timeout: 2s
    sending_queue: { queue_size: 5000, num_consumers: 4 }
    retry_on_failure: { initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 120s, randomization_factor: 0.2 }
extensions:
  routequery: { endpoint: "127.0.0.1:${ports.query}" }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [${EXPORTER}, routelatency]
`;
  }

  /** Start a Python example app exporting to routelens (protocol per framework unless overridden). */
  async function startApp(kind: Kind, service: string, overrides: Record<string, string> = {}): Promise<RunningApp> {
    const counter = spanCounter(tmp);
    const transport: Record<string, string> =
      kind === 'flask'
        ? {
            OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
            OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.grpcPort}`,
            OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
          }
        : {
            OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
            OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.httpPort}`,
          };
    const app = await startPythonApp(kind, {
      ...counter.env,
      OTEL_SERVICE_NAME: service,
      OTEL_RESOURCE_ATTRIBUTES: `k8s.pod.ip=${PODS[kind].ip},deployment.environment=e2e`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      ...transport,
      ...overrides,
    });
    const running = { kind, service, app, counter };
    apps.push(running);
    return running;
  }

  async function stopApp(a: RunningApp, hard = false): Promise<void> {
    if (hard) {
      try {
        process.kill(a.app.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await a.app.stop();
    apps.splice(apps.indexOf(a), 1);
  }

  async function metrics(): Promise<Snapshot> {
    return snapshot(await rl.metricsText());
  }

  /** Wait until the exporter has sent everything routelens accepted (the queue is drained). */
  async function drained(): Promise<Snapshot> {
    return waitFor(
      async () => {
        const m = await metrics();
        return m.sent === m.acceptedGrpc + m.acceptedHttp ? m : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `exporter ${EXPORTER} sent == receiver accepted` },
    );
  }

  async function routes(service: string): Promise<RoutesResponse> {
    const out = await cli('routes', '--json', '--url', rl.queryUrl, '--window', '15m', '--service', service, '--limit', '100');
    expect(out.status, out.stderr).to.equal(0);
    return JSON.parse(out.stdout) as RoutesResponse;
  }

  /** Wait until routelens's route table counts `want` SERVER spans per route for `service`. */
  async function routeCounts(service: string, want: Record<string, number>): Promise<RoutesResponse> {
    let last: Record<string, number> = {};
    try {
      return await waitFor(
        async () => {
          const r = await routes(service);
          last = Object.fromEntries(r.routes.map((x) => [x.route, x.count]));
          return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(want).sort()) ? r : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `routes of ${service} = ${JSON.stringify(want)}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last ${JSON.stringify(last)}`, { cause: err });
    }
  }

  function logsAfter(n: number, pred: (l: LogLine) => boolean): LogLine[] {
    return rl.logs().slice(n).filter(pred);
  }

  before(async function () {
    // Cold caches: the venv (pip) and the Jaeger build (Go) take minutes the first time.
    this.timeout(30 * 60_000);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-py-jaeger-'));
    const [j] = await Promise.all([startExampleJaeger(), pythonBin()]);
    jaeger = j;
    kube = await FakeKubeApi.start();
    kube.add('namespaces', makeNamespace({ name: NAMESPACE, labels: { team: 'checkout' } }));
    kube.add('namespaces', makeNamespace({ name: 'default' }));
    for (const [i, p] of Object.values(PODS).entries()) {
      const rsUid = `rs-uid-${i}`;
      kube.add(
        'replicasets',
        makeReplicaSet({ name: p.replicaSet, namespace: NAMESPACE, uid: rsUid, deployment: { name: p.deployment, uid: `dep-uid-${i}` } }),
      );
      kube.addPod(
        makePod({
          name: p.name,
          namespace: NAMESPACE,
          uid: `pod-uid-${i}`,
          ip: p.ip,
          node: p.node,
          owner: { kind: 'ReplicaSet', name: p.replicaSet, uid: rsUid },
        }),
      );
    }
    // A pod that matches nobody: its attributes must not leak onto the apps' spans.
    kube.addPod(
      makePod({ name: 'decoy-0', namespace: 'default', ip: '10.42.9.9', node: 'worker-z', owner: { kind: 'StatefulSet', name: 'decoy', uid: 'ss' } }),
    );
    rl = await startRoutelensChild({ config: routelensConfig, ...(WORKERS === undefined ? {} : { workers: WORKERS }) });
  });

  after(async function () {
    this.timeout(120_000);
    for (const a of [...apps]) await stopApp(a, true).catch(() => undefined);
    const code = await rl?.stop();
    await jaeger?.stop();
    await kube?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    // routelens drains and exits 0 on SIGTERM.
    if (rl !== undefined) expect(code, rl.stderr().slice(-4000)).to.equal(0);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && rl !== undefined) {
      process.stderr.write(`--- routelens stderr (tail) ---\n${rl.stderr().slice(-6000)}\n`);
      for (const a of apps) process.stderr.write(`--- ${a.service} output (tail) ---\n${a.app.output().slice(-3000)}\n`);
    }
  });

  describe('steady traffic: Flask over gRPC+gzip, FastAPI over http/protobuf', () => {
    const N = 6;
    const SLOW_MS = 250;
    const sent: Partial<Record<Kind, { counts: ReturnType<SpanCounter['read']>; load: LoadSummary }>> = {};
    const spans: Partial<Record<Kind, FlatSpan[]>> = {};
    const service: Record<Kind, string> = { flask: 'users-flask', fastapi: 'users-fastapi' };

    before(async function () {
      this.timeout(120_000);
      const started = await Promise.all([startApp('flask', service.flask), startApp('fastapi', service.fastapi)]);
      const loads = await Promise.all(started.map((a) => runLoad(a.app.baseUrl, { requestsPerRoute: N, routes: ROUTES, slowMs: SLOW_MS })));
      // SIGTERM: the apps shut their TracerProvider down, which exports every span still queued.
      await Promise.all(started.map((a) => stopApp(a)));
      started.forEach((a, i) => {
        sent[a.kind] = { counts: a.counter.read(), load: loads[i] as LoadSummary };
      });
      for (const kind of ['flask', 'fastapi'] as const) {
        spans[kind] = await waitForJaegerSpans(jaeger.queryUrl, service[kind], sent[kind]?.counts.ok_spans ?? 0);
      }
    });

    it('every request was answered and every export acknowledged by routelens', () => {
      for (const kind of ['flask', 'fastapi'] as const) {
        const s = sent[kind];
        expect(s?.load.transport_errors, kind).to.equal(0);
        expect(s?.load.routes.users?.statuses).to.deep.equal({ '200': N });
        expect(s?.load.routes.error?.statuses).to.deep.equal({ '500': N });
        expect(s?.counts.failed_spans, `${kind}: exports routelens refused`).to.equal(0);
        // users + slow + error + call, /call adding a second server span and a client span: far more than 4N.
        expect(s?.counts.ok_spans, kind).to.be.greaterThan(6 * N);
      }
    });

    it('Jaeger holds exactly the spans each app exported: one SERVER span per request and route, no duplicate', async () => {
      for (const kind of ['flask', 'fastapi'] as const) {
        const all = await jaegerSpans(jaeger.queryUrl, service[kind]);
        expect(all.length, `${kind}: spans in Jaeger vs spans the Python exporter sent`).to.equal(sent[kind]?.counts.ok_spans);
        expect(new Set(all.map((s) => `${s.traceID}/${s.spanID}`)).size, `${kind}: duplicate span ids`).to.equal(all.length);
        expect(serverSpansPerRoute(all), kind).to.deep.equal(expectedServerSpans(kind, N));
        // traces: one per request sent by load.py (/call's downstream request joins its caller's trace)
        expect(new Set(all.map((s) => s.traceID)).size, kind).to.equal(ROUTES.length * N);
      }
    });

    it('spans carry the k8s.* attributes routelens added and the attributes the app sent, unchanged', () => {
      for (const kind of ['flask', 'fastapi'] as const) {
        const pod = PODS[kind];
        for (const s of spans[kind] ?? []) {
          expect(s.serviceName).to.equal(service[kind]);
          expect(s.process, `${kind} ${s.operationName}`).to.deep.include({
            'k8s.namespace.name': NAMESPACE,
            'k8s.pod.name': pod.name,
            'k8s.pod.uid': `pod-uid-${kind === 'flask' ? 0 : 1}`,
            'k8s.deployment.name': pod.deployment,
            'k8s.node.name': pod.node,
            'k8s.namespace.labels.team': 'checkout',
            // sent by the app
            'k8s.pod.ip': pod.ip,
            'deployment.environment': 'e2e',
            'telemetry.sdk.language': 'python',
          });
        }
        const server = (spans[kind] ?? []).filter((s) => s.tags['span.kind'] === 'server');
        const users = server.filter((s) => s.tags['http.route'] === TEMPLATES[kind].users);
        expect(users).to.have.length(2 * N);
        for (const s of users) {
          expect(s.operationName).to.equal(`GET ${TEMPLATES[kind].users}`);
          expect(s.tags).to.deep.include({ 'http.method': 'GET', 'http.status_code': 200 });
          expect(s.tags['http.target']).to.match(/^\/users\/[1-5]$/);
        }
        const errors = server.filter((s) => s.tags['http.route'] === '/error');
        for (const s of errors) {
          expect(s.tags).to.deep.include({ 'http.method': 'GET', 'http.status_code': 500, error: true });
        }
        const slow = server.filter((s) => s.tags['http.route'] === '/slow');
        for (const s of slow) expect(s.duration, 'µs').to.be.at.least(SLOW_MS * 1000);
        // database spans (CLIENT, from SQLAlchemy) travel too: one SELECT per /users request
        expect((spans[kind] ?? []).filter((s) => s.tags['span.kind'] === 'client' && s.operationName.startsWith('SELECT'))).to.have.length(2 * N);
      }
      // FastAPI's ASGI `http send` INTERNAL spans are forwarded as sent (only the route table skips them).
      expect((spans.fastapi ?? []).some((s) => s.tags['span.kind'] === 'internal' && s.operationName.endsWith(' http send'))).to.equal(true);
    });

    it("`routelens routes --json` lists each framework's own route templates with exact counts; /slow p95 matches the delay", async () => {
      for (const kind of ['flask', 'fastapi'] as const) {
        const r = await routeCounts(service[kind], expectedServerSpans(kind, N));
        for (const route of r.routes) {
          expect(route.service).to.equal(service[kind]);
          expect(route.method).to.equal('GET');
          expect(route.route_source, route.route).to.equal('http.route');
          // k8sattributes runs before the fan-out: the route table sees its attributes too
          expect(route.dimensions).to.deep.equal({ 'k8s.deployment.name': PODS[kind].deployment });
        }
        const byRoute = new Map(r.routes.map((x) => [x.route, x]));
        expect(byRoute.get('/error')?.error_count).to.equal(N);
        expect(byRoute.get('/error')?.status_classes).to.deep.equal({ '5xx': N });
        expect(byRoute.get(TEMPLATES[kind].users)?.status_classes).to.deep.equal({ '2xx': 2 * N });
        const slow = byRoute.get('/slow');
        expect(slow?.p95_ms, `${kind} /slow p95`).to.be.at.least(SLOW_MS);
        expect(slow?.p95_ms, `${kind} /slow p95`).to.be.below(SLOW_MS + 1500);
        expect(slow?.min_ms, `${kind} /slow min`).to.be.at.least(SLOW_MS);
        // /users is a fast in-memory SQLite read: far below the /slow delay
        expect(byRoute.get(TEMPLATES[kind].users)?.p50_ms).to.be.below(SLOW_MS);
      }
      const table = await cli('routes', '--url', rl.queryUrl, '--window', '15m', '--service', service.flask);
      expect(table.status, table.stderr).to.equal(0);
      expect(table.stdout).to.include('/users/<int:user_id>');
    });

    it('/metrics: accepted spans = spans the apps sent, per transport; exporter sent = accepted; nothing dropped', async () => {
      const m = await drained();
      expect(m.acceptedGrpc, 'gRPC (Flask)').to.equal(sent.flask?.counts.ok_spans);
      expect(m.acceptedHttp, 'HTTP (FastAPI)').to.equal(sent.fastapi?.counts.ok_spans);
      expect(m.sent).to.equal(m.acceptedGrpc + m.acceptedHttp);
      expect(m.sendFailed).to.equal(0);
      expect(m.enqueueFailed).to.equal(0);
      expect(m.malformedGrpc + m.malformedHttp).to.equal(0);
      const text = await rl.metricsText();
      expect(metricValue(text, 'routelens_k8sattributes_lookups_total', { source: 'k8s.pod.ip', result: 'hit' })).to.be.greaterThan(0);
      expect(metricValue(text, 'routelens_k8sattributes_lookups_total', { result: 'miss' })).to.equal(0);
      expect(rl.logs().filter((l) => l.level === 'error')).to.deep.equal([]);
    });
  });

  describe('Jaeger outage', () => {
    it('spans sent while Jaeger is down are queued and retried; after its restart every span sent since it went down arrives', async function () {
      this.timeout(180_000);
      const service: Record<Kind, string> = { flask: 'outage-flask', fastapi: 'outage-fastapi' };
      const [flask, fastapi] = await Promise.all([startApp('flask', service.flask), startApp('fastapi', service.fastapi)]);
      const pair = [flask, fastapi] as RunningApp[];
      const before = await drained();
      const logMark = rl.logs().length;

      await jaeger.stop();
      // Traffic during the outage: routelens accepts it (into the exporter's queue).
      const NB = 4;
      await Promise.all(pair.map((a) => runLoad(a.app.baseUrl, { requestsPerRoute: NB, routes: ROUTES, slowMs: 20 })));
      for (const a of pair) await routeCounts(a.service, expectedServerSpans(a.kind, NB));
      const during = await waitFor(
        async () => {
          const m = await metrics();
          const py = pair.reduce((s, a) => s + a.counter.read().ok_spans, 0);
          return m.acceptedGrpc + m.acceptedHttp - (before.acceptedGrpc + before.acceptedHttp) === py ? m : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'routelens accepted every span the apps exported during the outage' },
      );
      expect(during.acceptedGrpc + during.acceptedHttp).to.be.greaterThan(before.acceptedGrpc + before.acceptedHttp);
      // ...but could deliver none of it: it is held and retried.
      expect(during.sent, 'sent while Jaeger is down').to.equal(before.sent);
      await rl.waitForLog((l) => l.msg === 'Exporting failed; will retry' && l['exporter'] === EXPORTER, 'export retries during the outage');

      await jaeger.start();
      const NC = 4;
      await Promise.all(pair.map((a) => runLoad(a.app.baseUrl, { requestsPerRoute: NC, routes: ROUTES, slowMs: 20 })));
      await Promise.all(pair.map((a) => stopApp(a)));

      const after = await drained();
      expect(after.sendFailed, 'spans dropped').to.equal(before.sendFailed);
      expect(after.enqueueFailed).to.equal(before.enqueueFailed);
      for (const a of pair) {
        const counts = a.counter.read();
        expect(counts.failed_spans, a.service).to.equal(0);
        // Jaeger's memory storage restarted empty: all it holds for these services was sent after it went down.
        const all = await waitForJaegerSpans(jaeger.queryUrl, a.service, counts.ok_spans);
        expect(all.length, `${a.service}: spans in Jaeger vs spans exported since the outage began`).to.equal(counts.ok_spans);
        expect(new Set(all.map((s) => `${s.traceID}/${s.spanID}`)).size).to.equal(all.length);
        expect(serverSpansPerRoute(all), a.service).to.deep.equal(expectedServerSpans(a.kind, NB + NC));
        for (const s of all) expect(s.process['k8s.pod.name']).to.equal(PODS[a.kind].name);
      }
      const exported = pair.reduce((s, a) => s + a.counter.read().ok_spans, 0);
      expect(after.acceptedGrpc + after.acceptedHttp - (before.acceptedGrpc + before.acceptedHttp)).to.equal(exported);
      expect(after.sent - before.sent).to.equal(exported);
      expect(
        logsAfter(logMark, (l) => l.level === 'error'),
        'error lines (a drop would log one)',
      ).to.deep.equal([]);
    });
  });

  describe("mistakes Python users make: a clear line in routelens's log", () => {
    // The receiver's warnings are rate-limited per client and kind of problem; every test here makes a
    // different one. The JSON-body test runs first: its "Rejected an export request" line shares its key
    // with the one the gRPC-on-HTTP-port test also produces.

    it('a JSON body sent as application/x-protobuf gets 400 with a message naming the JSON content type', async () => {
      const mark = rl.logs().length;
      const before = await metrics();
      const body = JSON.stringify({
        resourceSpans: [
          {
            resource: {
              attributes: [
                { key: 'service.name', value: { stringValue: 'json-client' } },
                { key: 'k8s.pod.ip', value: { stringValue: PODS.flask.ip } },
              ],
            },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: '5b8efff798038103d269b633813fc60c',
                    spanId: 'eee19b7ec3c1b174',
                    name: 'GET /orders/{id}',
                    kind: 2,
                    startTimeUnixNano: String(BigInt(Date.now() - 50) * 1_000_000n),
                    endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                    attributes: [{ key: 'http.route', value: { stringValue: '/orders/{id}' } }],
                  },
                ],
              },
            ],
          },
        ],
      });
      const wrong = await fetch(`http://127.0.0.1:${rl.httpPort}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
      expect(wrong.status).to.equal(400);
      expect(wrong.headers.get('content-type')).to.equal('application/x-protobuf');
      const status = decodeRpcStatus(new Uint8Array(await wrong.arrayBuffer()));
      expect(status?.code).to.equal(3); // INVALID_ARGUMENT
      expect(status?.message).to.include('looks like JSON').and.to.include('Content-Type: application/json');
      const line = await rl.waitForLog((l) => l.msg === 'Rejected an export request' && l['transport'] === 'http', 'rejected JSON body');
      expect(rl.logs().indexOf(line)).to.be.at.least(mark);
      expect(line).to.deep.include({ level: 'warn', client: '127.0.0.1', code: 'malformed' });
      expect(String(line['err'])).to.include('Content-Type: application/json');
      // The fix the message names works, and the span is enriched like any other.
      const right = await fetch(`http://127.0.0.1:${rl.httpPort}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(right.status).to.equal(200);
      const [span] = await waitForJaegerSpans(jaeger.queryUrl, 'json-client', 1);
      expect(span?.operationName).to.equal('GET /orders/{id}');
      expect(span?.process['k8s.pod.name']).to.equal(PODS.flask.name);
      const after = await metrics();
      expect(after.malformedHttp - before.malformedHttp).to.equal(1);
      expect(after.acceptedHttp - before.acceptedHttp).to.equal(1);
    });

    it('a gRPC exporter with a scheme-less endpoint (so TLS) on the plaintext port: "TLS handshake on the plaintext port" with the fix', async () => {
      const mark = rl.logs().length;
      const before = await metrics();
      // 127.0.0.1:PORT without http:// and without OTEL_EXPORTER_OTLP_INSECURE: the Python gRPC exporter uses TLS.
      const a = await startApp('flask', 'tls-mistake', { OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${rl.grpcPort}` });
      try {
        await runLoad(a.app.baseUrl, { requestsPerRoute: 1, routes: ['slow'], slowMs: 0 });
        const line = await rl.waitForLog(
          (l) => rl.logs().indexOf(l) >= mark && typeof l.msg === 'string' && l.msg.includes('TLS handshake on the plaintext OTLP/gRPC port'),
          'TLS-on-plaintext warning',
        );
        expect(line).to.deep.include({ level: 'warn', client: '127.0.0.1' });
        expect(line.msg).to.include('OTEL_EXPORTER_OTLP_ENDPOINT=http://').and.to.include('OTEL_EXPORTER_OTLP_INSECURE=true');
        const after = await metrics();
        expect(after.malformedGrpc).to.be.greaterThan(before.malformedGrpc);
        expect(after.acceptedGrpc, 'no span got through').to.equal(before.acceptedGrpc);
      } finally {
        // Its exporter keeps retrying the handshake until its timeout: no need to wait for that.
        await stopApp(a, true);
      }
    });

    it('an http/protobuf exporter pointed at the gRPC port: "HTTP/1.1 request on the OTLP/gRPC port", and the exporter sees a 400', async () => {
      const mark = rl.logs().length;
      const a = await startApp('fastapi', 'http-on-grpc-mistake', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.grpcPort}` });
      try {
        await runLoad(a.app.baseUrl, { requestsPerRoute: 1, routes: ['slow'], slowMs: 0 });
        const line = await rl.waitForLog(
          (l) => rl.logs().indexOf(l) >= mark && typeof l.msg === 'string' && l.msg.includes('HTTP/1.1 request arrived on the OTLP/gRPC port'),
          'HTTP/1.1-on-gRPC warning',
        );
        expect(line).to.deep.include({ level: 'warn', client: '127.0.0.1', request: 'POST /v1/traces HTTP/1.1' });
        expect(line.msg).to.include('4318').and.to.include('OTEL_EXPORTER_OTLP_PROTOCOL=grpc');
        // A 400 is final for the Python exporter: the batch is dropped on its side (and it says so).
        await waitFor(async () => (a.counter.read().failed_spans > 0 ? true : undefined), {
          timeoutMs: 20_000,
          what: 'the Python exporter reporting the failed export',
        });
        expect(a.counter.read().ok_spans).to.equal(0);
        // The counter can be read before the exporter's log line has come through the app's stderr pipe.
        await waitFor(async () => (/Failed to export span.*\b400\b/.test(a.app.output()) ? true : undefined), {
          timeoutMs: 10_000,
          what: 'the Python exporter logging "Failed to export span … 400"',
        });
      } finally {
        await stopApp(a, true);
      }
    });

    it('a gRPC exporter pointed at the HTTP port: "HTTP/2 (gRPC) client on the OTLP/HTTP port"', async () => {
      const mark = rl.logs().length;
      const a = await startApp('flask', 'grpc-on-http-mistake', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.httpPort}` });
      try {
        await runLoad(a.app.baseUrl, { requestsPerRoute: 1, routes: ['slow'], slowMs: 0 });
        const line = await rl.waitForLog(
          (l) => rl.logs().indexOf(l) >= mark && typeof l.msg === 'string' && l.msg.includes('HTTP/2 (gRPC) client connected to the OTLP/HTTP port'),
          'gRPC-on-HTTP warning',
        );
        expect(line).to.deep.include({ level: 'warn', client: '127.0.0.1' });
        expect(line.msg).to.include('4317');
      } finally {
        await stopApp(a, true);
      }
    });
  });

  describe('bad input stays contained', () => {
    it('garbage sent to both ports while two well-behaved apps export: every span of theirs arrives, every garbage request is refused', async function () {
      this.timeout(120_000);
      const service: Record<Kind, string> = { flask: 'neighbour-flask', fastapi: 'neighbour-fastapi' };
      const pair = await Promise.all([startApp('flask', service.flask), startApp('fastapi', service.fastapi)]);
      const before = await drained();
      const random = prng(0x5eed);
      const outcomes = { rawGrpc: 0, rawHttp: 0, httpPosts: new Map<number, number>(), grpcCalls: new Map<string, number>() };
      let stop = false;

      const rawSend = (port: number, bytes: Buffer): Promise<void> =>
        new Promise((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port }, () => s.end(bytes));
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.setTimeout(5000, () => s.destroy());
          s.resume();
        });
      const post = (body: Buffer, headers: Record<string, string>): Promise<number> =>
        new Promise((resolve) => {
          const req = http.request(
            { host: '127.0.0.1', port: rl.httpPort, method: 'POST', path: '/v1/traces', agent: false, headers: { ...headers, 'content-length': body.length } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', () => resolve(-1));
          req.end(body);
        });
      const grpcCall = (frame: Buffer, encoding?: string): Promise<string> =>
        new Promise((resolve) => {
          const session = http2.connect(`http://127.0.0.1:${rl.grpcPort}`);
          session.on('error', () => resolve('session-error'));
          const req = session.request({
            ':method': 'POST',
            ':path': TRACE_EXPORT_PATH,
            'content-type': 'application/grpc',
            te: 'trailers',
            ...(encoding === undefined ? {} : { 'grpc-encoding': encoding }),
          });
          let status = 'none';
          req.on('response', (h) => {
            if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
          });
          req.on('trailers', (t) => {
            if (t['grpc-status'] !== undefined) status = String(t['grpc-status']);
          });
          req.on('error', () => undefined);
          req.on('close', () => {
            session.close();
            resolve(status);
          });
          req.resume();
          req.end(frame);
        });
      const framed = (payload: Buffer, compressed = 0): Buffer => {
        const head = Buffer.alloc(5);
        head[0] = compressed;
        head.writeUInt32BE(payload.length, 1);
        return Buffer.concat([head, payload]);
      };
      const count = <K>(m: Map<K, number>, k: K): void => {
        m.set(k, (m.get(k) ?? 0) + 1);
      };

      let rounds = 0;
      const garbage = (async () => {
        // At least 20 rounds, then on until the load is done (at most 300).
        for (let i = 0; i < 300 && (!stop || i < 20); i++, rounds++) {
          const size = 32 + (random(2).readUInt16BE(0) % 2048);
          const bytes = random(size);
          // First byte 0x16 would read as a TLS handshake: another (also handled) case, tested above.
          if (bytes[0] === 0x16) bytes[0] = 0x17;
          await Promise.all([
            rawSend(rl.grpcPort, bytes).then(() => outcomes.rawGrpc++),
            rawSend(rl.httpPort, bytes).then(() => outcomes.rawHttp++),
            post(bytes, { 'content-type': 'application/x-protobuf' }).then((s) => count(outcomes.httpPosts, s)),
            post(bytes, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }).then((s) => count(outcomes.httpPosts, s)),
            post(bytes, { 'content-type': 'application/json' }).then((s) => count(outcomes.httpPosts, s)),
            grpcCall(framed(bytes)).then((s) => count(outcomes.grpcCalls, s)),
            grpcCall(framed(bytes, 1), 'gzip').then((s) => count(outcomes.grpcCalls, s)),
            grpcCall(bytes.subarray(0, 3)).then((s) => count(outcomes.grpcCalls, s)),
          ]);
        }
      })();
      const N = 5;
      let loads: LoadSummary[];
      await waitFor(async () => (rounds > 0 ? true : undefined), { timeoutMs: 20_000, what: 'a first round of garbage' });
      try {
        loads = await Promise.all(pair.map((a) => runLoad(a.app.baseUrl, { requestsPerRoute: N, routes: ROUTES, slowMs: 20 })));
      } finally {
        stop = true;
        await garbage;
      }
      await Promise.all(pair.map((a) => stopApp(a)));
      for (const l of loads) expect(l.transport_errors).to.equal(0);

      // The garbage was really sent, and refused request by request: 400 / INVALID_ARGUMENT, never a 5xx or a hang.
      expect(rounds).to.be.at.least(20);
      expect(outcomes.rawGrpc).to.equal(rounds);
      expect(outcomes.rawHttp).to.equal(rounds);
      const posts = [...outcomes.httpPosts.values()].reduce((a, b) => a + b, 0);
      expect(Object.fromEntries(outcomes.httpPosts)).to.deep.equal({ 400: posts });
      const calls = [...outcomes.grpcCalls.values()].reduce((a, b) => a + b, 0);
      expect(Object.fromEntries(outcomes.grpcCalls)).to.deep.equal({ 3: calls });

      const after = await drained();
      const exported = pair.reduce((s, a) => s + a.counter.read().ok_spans, 0);
      for (const a of pair) {
        const counts = a.counter.read();
        expect(counts.failed_spans, a.service).to.equal(0);
        const all = await waitForJaegerSpans(jaeger.queryUrl, a.service, counts.ok_spans);
        expect(all.length, a.service).to.equal(counts.ok_spans);
        expect(serverSpansPerRoute(all), a.service).to.deep.equal(expectedServerSpans(a.kind, N));
      }
      // Only the neighbours' spans were accepted; every garbage request was counted as malformed.
      expect(after.acceptedGrpc + after.acceptedHttp - (before.acceptedGrpc + before.acceptedHttp)).to.equal(exported);
      expect(after.malformedHttp - before.malformedHttp).to.be.at.least(posts);
      expect(after.malformedGrpc - before.malformedGrpc).to.be.at.least(calls);
      expect((await fetch(`${rl.queryUrl}/healthz`)).status).to.equal(200);
    });
  });

  describe('examples/jaeger as shipped', () => {
    it('otel-config.yaml runs unchanged (addresses from the environment) and forwards Python spans to Jaeger', async function () {
      this.timeout(120_000);
      const example = await startRoutelensChild({
        config: { file: path.join(repoRoot, 'examples', 'jaeger', 'otel-config.yaml') },
        env: (ports) => ({
          ROUTELENS_GRPC_ENDPOINT: `127.0.0.1:${ports.grpc}`,
          ROUTELENS_HTTP_ENDPOINT: `127.0.0.1:${ports.http}`,
          ROUTELENS_QUERY_ENDPOINT: `127.0.0.1:${ports.query}`,
          JAEGER_OTLP_ENDPOINT: jaeger.otlpGrpcEndpoint,
        }),
      });
      try {
        const counter = spanCounter(tmp);
        const app = await startPythonApp('fastapi', {
          ...counter.env,
          OTEL_SERVICE_NAME: 'example-fastapi',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${example.grpcPort}`,
          OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
          OTEL_BSP_SCHEDULE_DELAY: '200',
        });
        const N = 3;
        try {
          await runLoad(app.baseUrl, { requestsPerRoute: N, routes: ROUTES, slowMs: 20 });
        } finally {
          await app.stop();
        }
        const counts = counter.read();
        const all = await waitForJaegerSpans(jaeger.queryUrl, 'example-fastapi', counts.ok_spans);
        expect(all.length).to.equal(counts.ok_spans);
        expect(serverSpansPerRoute(all)).to.deep.equal(expectedServerSpans('fastapi', N));
        const out = await cli('routes', '--json', '--url', example.queryUrl, '--service', 'example-fastapi');
        expect(out.status, out.stderr).to.equal(0);
        const r = JSON.parse(out.stdout) as RoutesResponse;
        expect(Object.fromEntries(r.routes.map((x) => [x.route, x.count]))).to.deep.equal(expectedServerSpans('fastapi', N));
        // SIGTERM drains and exits 0
        expect(await example.stop()).to.equal(0);
      } finally {
        await example.stop();
      }
    });

    it('otel-config.yaml with its k8sattributes block uncommented is valid', async () => {
      const text = fs.readFileSync(path.join(repoRoot, 'examples', 'jaeger', 'otel-config.yaml'), 'utf8');
      const lines = text.split('\n');
      const begin = lines.findIndex((l) => l.startsWith('# BEGIN k8sattributes'));
      const end = lines.findIndex((l) => l.startsWith('# END k8sattributes'));
      expect(begin).to.be.at.least(0);
      expect(end).to.be.greaterThan(begin);
      const uncommented = lines.map((l, i) => {
        if (i > begin && i < end) return l.replace(/^# ?/, '');
        return l.replace(/^(\s*)# (processors: \[k8sattributes\])/, '$1$2');
      });
      expect(uncommented.filter((l) => /^\s+processors: \[k8sattributes\]/.test(l))).to.have.length(1);
      const file = path.join(tmp, 'jaeger-k8s.yaml');
      fs.writeFileSync(file, uncommented.join('\n'));
      const out = await cli('validate', '--config', file);
      expect(out.status, out.stdout + out.stderr).to.equal(0);
      const plain = await cli('validate', '--config', path.join(repoRoot, 'examples', 'jaeger', 'otel-config.yaml'));
      expect(plain.status, plain.stderr).to.equal(0);
    });
  });
});
