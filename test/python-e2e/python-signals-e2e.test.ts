/**
 * Metrics and logs of real Python services instrumented the zero-code way (examples/python/runtime_app.py under
 * `opentelemetry-instrument`, system metrics and logging instrumentations, the SDK's defaults) through routelens
 * run as a user runs it (a child process), to an OTLP destination.
 *
 * A test-only launcher (pyhooks/export_log.py) records each request the apps' OTLP exporters sent and whether it
 * was acknowledged; it wraps the exporters before it initializes the instrumentation as opentelemetry-instrument
 * does, so the SDK's first exports are recorded too. The accounting is exact: every acknowledged metrics and logs
 * request arrives downstream
 * once, with the k8s.* attributes of its pod added and everything else as the SDK wrote it (data points and their
 * temporality and start times, log bodies, severities, trace and span ids).
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LogsBatch } from '../../src/pdata/logs-batch';
import { MetricsBatch } from '../../src/pdata/metrics-batch';
import { toOtlpJsonObject } from '../../src/pdata/otlp-json';
import { TYPES } from '../../src/pdata/proto';
import { FakeKubeApi, makeNamespace, makePod, makeReplicaSet } from '../support/fake-kube-api';
import { freePorts, waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { pythonBin, readExportLog, startZeroCodeApp, type ExportLogEntry, type PythonApp } from '../support/python';
import { LOGS_EXPORT, METRICS_EXPORT, RawGrpcClient, httpRequest } from '../support/raw-clients';
import { metricValue } from '../support/routelens';
import { startRoutelensChild, type RoutelensChild } from '../support/routelens-child';

type Json = Record<string, unknown>;
type Signal = 'traces' | 'metrics' | 'logs';

const NAMESPACE = 'shop';
/** The pods the apps say they are (OTEL_RESOURCE_ATTRIBUTES=k8s.pod.ip=…) and what k8sattributes adds for them. */
const PODS = {
  grpc: {
    ip: '10.42.7.11',
    name: 'orders-grpc-5c9d7b6f4-q2x8z',
    uid: 'pod-uid-grpc',
    node: 'worker-a',
    deployment: 'orders-grpc',
    rs: 'orders-grpc-5c9d7b6f4',
  },
  http: {
    ip: '10.42.7.12',
    name: 'orders-http-7f8b9c5d6-m4n5p',
    uid: 'pod-uid-http',
    node: 'worker-b',
    deployment: 'orders-http',
    rs: 'orders-http-7f8b9c5d6',
  },
} as const;

const REQUEST_TYPE: Record<Signal, string> = { traces: TYPES.exportTraceRequest, metrics: TYPES.exportMetricsRequest, logs: TYPES.exportLogsRequest };
const RESOURCE_KEY: Record<Signal, string> = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function resources(signal: Signal, request: Json): Json[] {
  return (request[RESOURCE_KEY[signal]] as Json[] | undefined) ?? [];
}

function attributesOf(resource: Json): Record<string, string> {
  const attrs = ((resource.resource as Json | undefined)?.attributes as { key: string; value: { stringValue?: string } }[] | undefined) ?? [];
  return Object.fromEntries(attrs.map((a) => [a.key, String(a.value.stringValue ?? JSON.stringify(a.value))]));
}

/** A request as OTLP/JSON with the k8s.* resource attributes routelens added taken out, and those attributes. */
function withoutAdded(signal: Signal, body: Uint8Array, sent: ReadonlySet<string>): { request: string; added: Record<string, string>[] } {
  const json = toOtlpJsonObject(REQUEST_TYPE[signal], body);
  const added: Record<string, string>[] = [];
  for (const r of resources(signal, json)) {
    const res = r.resource as { attributes: { key: string; value: Json }[] };
    const mine: Record<string, string> = {};
    res.attributes = res.attributes.filter((a) => {
      if (!a.key.startsWith('k8s.') || sent.has(a.key)) return true;
      mine[a.key] = String(a.value.stringValue);
      return false;
    });
    added.push(mine);
  }
  return { request: JSON.stringify(json), added };
}

function serviceOf(signal: Signal, body: Uint8Array): string {
  return resources(signal, toOtlpJsonObject(REQUEST_TYPE[signal], body))
    .map((r) => attributesOf(r)['service.name'])
    .join(',');
}

function itemCount(signal: 'metrics' | 'logs', body: Uint8Array): number {
  return signal === 'metrics' ? MetricsBatch.decode(body).dataPointCount : LogsBatch.decode(body).logRecordCount;
}

async function get(app: PythonApp, p: string): Promise<number> {
  const res = await fetch(`${app.baseUrl}${p}`);
  await res.arrayBuffer();
  return res.status;
}

/** Requests that exercise the app: routes (HTTP server metrics), errors (ERROR log records inside a span), CPU. */
async function drive(app: PythonApp): Promise<void> {
  for (let i = 1; i <= 10; i++) expect(await get(app, `/orders/${i}`)).to.equal(200);
  for (let i = 0; i < 4; i++) expect(await get(app, '/error')).to.equal(500);
  for (let i = 0; i < 3; i++) expect(await get(app, '/cpu?ms=30')).to.equal(200);
}

/** Wait until the app's exporter has sent at least `n` metrics requests after the ones it had sent at `from`. */
async function metricExports(dir: string, n: number, from = readExportLog(dir, 'metrics').length): Promise<void> {
  await waitFor(async () => (readExportLog(dir, 'metrics').length >= from + n ? true : undefined), { timeoutMs: 30_000, what: `${n} metrics exports` });
}

describe('Python zero-code services: metrics and logs through routelens (opentelemetry-instrument, real SDK)', function () {
  this.timeout(300_000);
  let tmp: string;
  let kube: FakeKubeApi;
  let sink: OtlpSink;
  const apps: PythonApp[] = [];
  const routelens: RoutelensChild[] = [];

  before(async function () {
    this.timeout(30 * 60_000); // a cold venv takes minutes
    await pythonBin();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-py-signals-'));
    kube = await FakeKubeApi.start();
    kube.add('namespaces', makeNamespace({ name: NAMESPACE }));
    for (const [i, p] of Object.values(PODS).entries()) {
      kube.add('replicasets', makeReplicaSet({ name: p.rs, namespace: NAMESPACE, uid: `rs-${i}`, deployment: { name: p.deployment, uid: `dep-${i}` } }));
      kube.addPod(
        makePod({ name: p.name, namespace: NAMESPACE, uid: p.uid, ip: p.ip, node: p.node, owner: { kind: 'ReplicaSet', name: p.rs, uid: `rs-${i}` } }),
      );
    }
  });

  afterEach(async function () {
    this.timeout(60_000);
    for (const a of apps.splice(0)) await a.stop();
    for (const r of routelens.splice(0)) if (r.proc.running) await r.proc.kill9();
    await sink?.stop();
  });

  after(async () => {
    await kube?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function startRoutelens(name: string, yaml: string): Promise<RoutelensChild> {
    const r = await startRoutelensChild(path.join(tmp, `${name}.yaml`), yaml, { name });
    routelens.push(r);
    return r;
  }

  function appEnv(service: string, pod: (typeof PODS)[keyof typeof PODS], transport: Record<string, string>): Record<string, string> {
    return {
      OTEL_SERVICE_NAME: service,
      OTEL_RESOURCE_ATTRIBUTES: `k8s.pod.ip=${pod.ip}`,
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      ...transport,
    };
  }

  async function startApp(service: string, env: Record<string, string>): Promise<{ app: PythonApp; dir: string }> {
    const dir = fs.mkdtempSync(path.join(tmp, `${service}-`));
    const app = await startZeroCodeApp(env, { exportLogDir: dir });
    apps.push(app);
    return { app, dir };
  }

  it('a gRPC and an http/protobuf app: every acknowledged metrics and logs request arrives once, k8s.* added, the rest as the SDK wrote it; a hostile client is refused alone', async () => {
    sink = await new OtlpSink().start();
    const rl = await startRoutelens(
      'routelens-signals',
      `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  memory_limiter: { limit_mib: 1000 }
  k8sattributes:
    auth_type: kubeConfig
    kube_config_path: ${kube.writeKubeconfig()}
    wait_for_metadata: true
    pod_association:
      - sources: [{ from: resource_attribute, name: k8s.pod.ip }]
    extract:
      metadata: [k8s.namespace.name, k8s.pod.name, k8s.pod.uid, k8s.deployment.name, k8s.node.name]
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter, k8sattributes], exporters: [otlp] }
    metrics: { receivers: [otlp], processors: [memory_limiter, k8sattributes], exporters: [otlp] }
    logs: { receivers: [otlp], processors: [memory_limiter, k8sattributes], exporters: [otlp] }
`,
    );
    const grpcPort = rl.endpoints['otlp/grpc'] as number;
    const httpPort = rl.endpoints['otlp/http'] as number;
    const viaGrpc = await startApp(
      'orders-grpc',
      appEnv('orders-grpc', PODS.grpc, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${grpcPort}`, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }),
    );
    const viaHttp = await startApp(
      'orders-http',
      appEnv('orders-http', PODS.http, {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${httpPort}`,
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'DELTA',
      }),
    );

    // A hostile client sends malformed metrics and logs the whole time.
    let hostileRunning = true;
    const refused: number[] = [];
    const hostile = (async () => {
      const client = new RawGrpcClient(grpcPort);
      const garbage = [Buffer.from([0x0a, 0x05, 0x12, 0x03, 0x0a, 0x7f, 0x00]), Buffer.from('{"resourceMetrics": 1}'), Buffer.from([0x0a, 0x02, 0x12, 0x09])];
      try {
        for (let i = 0; hostileRunning; i++) {
          const body = garbage[i % garbage.length] as Buffer;
          const r =
            i % 2 === 0
              ? (await httpRequest(httpPort, i % 4 === 0 ? '/v1/metrics' : '/v1/logs', body, { 'content-type': 'application/x-protobuf' })).status
              : (await client.export(body, 10_000, i % 4 === 1 ? METRICS_EXPORT : LOGS_EXPORT)).code;
          refused.push(r);
          await sleep(20);
        }
      } finally {
        client.close();
      }
    })();

    await Promise.all([metricExports(viaGrpc.dir, 2, 0), metricExports(viaHttp.dir, 2, 0)]);
    await Promise.all([drive(viaGrpc.app), drive(viaHttp.app)]);
    await Promise.all([metricExports(viaGrpc.dir, 2), metricExports(viaHttp.dir, 2)]);
    hostileRunning = false;
    await hostile;
    // SIGTERM: the SDK flushes what it holds.
    for (const a of apps.splice(0)) await a.stop();

    expect(refused.length).to.be.greaterThan(10);
    expect(new Set(refused)).to.deep.equal(new Set([400, grpc.status.INVALID_ARGUMENT]));

    const sent: Record<'metrics' | 'logs', ExportLogEntry[]> = {
      metrics: [...readExportLog(viaGrpc.dir, 'metrics'), ...readExportLog(viaHttp.dir, 'metrics')],
      logs: [...readExportLog(viaGrpc.dir, 'logs'), ...readExportLog(viaHttp.dir, 'logs')],
    };
    // No export error in either app: none logged, and every request it sent was acknowledged.
    for (const a of [viaGrpc.app, viaHttp.app]) expect(a.output()).not.to.match(/Failed to export|Exception while exporting|Transient error/);
    for (const s of ['metrics', 'logs'] as const)
      expect(
        sent[s].filter((e) => !e.ok),
        `failed ${s} exports`,
      ).to.deep.equal([]);
    expect(readExportLog(viaGrpc.dir, 'logs').length, 'the gRPC app exported log records').to.be.greaterThan(0);
    expect(readExportLog(viaHttp.dir, 'logs').length, 'the http/protobuf app exported log records').to.be.greaterThan(0);
    const items = (s: 'metrics' | 'logs'): number => sent[s].reduce((n, e) => n + itemCount(s, e.request), 0);
    expect(items('metrics')).to.be.greaterThan(100);

    const ours = (signal: 'metrics' | 'logs'): Buffer[] =>
      (signal === 'metrics' ? sink.metricsBodies() : sink.logsBodies()).filter((b) => /^orders-(grpc|http)$/.test(serviceOf(signal, b)));
    await waitFor(async () => (ours('metrics').length >= sent.metrics.length && ours('logs').length >= sent.logs.length ? true : undefined), {
      timeoutMs: 30_000,
      what: 'every acknowledged request at the destination',
    });
    const expectedAdded = (pod: (typeof PODS)[keyof typeof PODS]): Record<string, string> => ({
      'k8s.namespace.name': NAMESPACE,
      'k8s.pod.name': pod.name,
      'k8s.pod.uid': pod.uid,
      'k8s.deployment.name': pod.deployment,
      'k8s.node.name': pod.node,
    });
    for (const signal of ['metrics', 'logs'] as const) {
      const arrived = ours(signal).map((b) => withoutAdded(signal, b, new Set(['k8s.pod.ip'])));
      // Each acknowledged request once, and nothing else; with the pod's attributes added to every resource.
      expect(arrived.map((a) => a.request).sort(), `${signal}: what arrived, less the added attributes`).to.deep.equal(
        sent[signal].map((e) => JSON.stringify(toOtlpJsonObject(REQUEST_TYPE[signal], e.request))).sort(),
      );
      for (const a of arrived) {
        const service = /"orders-(grpc|http)"/.exec(a.request)?.[1] as 'grpc' | 'http';
        for (const added of a.added) expect(added).to.deep.equal(expectedAdded(PODS[service]));
      }
      expect(ours(signal).reduce((n, b) => n + itemCount(signal, b), 0)).to.equal(items(signal));
    }

    // What "intact" means for the data the SDK wrote, spelled out.
    const metricsOf = (service: string): Json[] =>
      ours('metrics')
        .map((b) => toOtlpJsonObject(TYPES.exportMetricsRequest, b))
        .filter((r) => JSON.stringify(r).includes(`"${service}"`))
        .flatMap((r) =>
          resources('metrics', r).flatMap((rm) => ((rm.scopeMetrics as Json[] | undefined) ?? []).flatMap((sm) => (sm.metrics as Json[] | undefined) ?? [])),
        );
    const cpu = metricsOf('orders-grpc').filter((m) => m.name === 'process.cpu.time');
    expect(cpu.length).to.be.greaterThan(2);
    for (const m of cpu) expect((m.sum as Json).aggregationTemporality).to.equal(2); // cumulative, the SDK's default
    // A cumulative stream (one per `type`) keeps its start time from export to export.
    const starts = new Map<string, Set<unknown>>();
    for (const m of cpu)
      for (const p of (m.sum as { dataPoints: Json[] }).dataPoints) {
        const stream = JSON.stringify(p.attributes);
        starts.set(stream, (starts.get(stream) ?? new Set()).add(p.startTimeUnixNano));
      }
    expect(starts.size, 'user and system streams').to.equal(2);
    for (const [stream, s] of starts) expect(s.size, `start times of ${stream}`).to.equal(1);
    const durations = metricsOf('orders-http').filter((m) => m.name === 'http.server.duration');
    expect(durations.length).to.be.greaterThan(0);
    for (const m of durations) expect((m.histogram as Json).aggregationTemporality).to.equal(1); // DELTA asked for
    const records = ours('logs')
      .map((b) => toOtlpJsonObject(TYPES.exportLogsRequest, b))
      .flatMap((r) =>
        resources('logs', r).flatMap((rl) => ((rl.scopeLogs as Json[] | undefined) ?? []).flatMap((sl) => (sl.logRecords as Json[] | undefined) ?? [])),
      );
    const errors = records.filter((r) => JSON.stringify(r.body ?? '').includes('Exception on /error'));
    expect(errors.length, 'one ERROR record per /error request').to.equal(8);
    for (const r of errors) {
      expect(r.traceId).to.match(/^[0-9a-f]{32}$/);
      expect(r.spanId).to.match(/^[0-9a-f]{16}$/);
      expect(r.severityText).to.equal('ERROR');
    }
    // The log records' trace ids are those of the apps' /error server spans: the correlation survives.
    const spanTraces = new Set(
      sink
        .spans()
        .filter((s) => s.name === 'GET /error')
        .map((s) => s.traceId),
    );
    for (const r of errors) expect(spanTraces.has(r.traceId as string), `trace ${String(r.traceId)}`).to.equal(true);

    const m = await rl.metricsText();
    expect(metricValue(m, 'otelcol_receiver_accepted_metric_points_total')).to.equal(items('metrics'));
    expect(metricValue(m, 'otelcol_receiver_accepted_log_records_total')).to.equal(items('logs'));
    expect(metricValue(m, 'otelcol_exporter_sent_metric_points_total')).to.equal(items('metrics'));
    expect(metricValue(m, 'otelcol_exporter_sent_log_records_total')).to.equal(items('logs'));
    expect(metricValue(m, 'routelens_receiver_malformed_requests_total')).to.equal(refused.length);
  });

  it('kill -9 with file_storage on the metrics and logs pipelines loses nothing acknowledged', async () => {
    const [grpcPort, httpPort, queryPort, sinkPort] = await freePorts(4);
    sink = new OtlpSink();
    sink.grpcPort = sinkPort as number; // down until routelens has been killed
    const yaml = `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${grpcPort} }
      http: { endpoint: 127.0.0.1:${httpPort} }
exporters:
  otlp:
    endpoint: 127.0.0.1:${sinkPort}
    tls: { insecure: true }
    timeout: 2s
    sending_queue: { storage: file_storage, queue_size: 10000 }
    retry_on_failure: { initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0 }
extensions:
  file_storage: { directory: ${path.join(tmp, 'queue')} }
  routequery: { endpoint: 127.0.0.1:${queryPort} }
service:
  extensions: [file_storage, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
    metrics: { receivers: [otlp], exporters: [otlp] }
    logs: { receivers: [otlp], exporters: [otlp] }
`;
    await startRoutelens('routelens-persist-1', yaml);
    const { app, dir } = await startApp(
      'orders-persist',
      appEnv('orders-persist', PODS.grpc, {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${httpPort}`,
      }),
    );
    await metricExports(dir, 2, 0);
    await drive(app);
    await metricExports(dir, 1);
    // Killed while the app keeps exporting: what it sends now fails and is retried by the SDK, or dropped.
    expect((await (routelens[0] as RoutelensChild).proc.kill9()).signal).to.equal('SIGKILL');
    await sleep(1500);
    await startRoutelens('routelens-persist-2', yaml);
    await sink.start();
    await drive(app);
    await metricExports(dir, 2);
    await app.stop();
    apps.splice(0);

    for (const signal of ['metrics', 'logs'] as const) {
      const log = readExportLog(dir, signal);
      const acked = log.filter((e) => e.ok).map((e) => e.request.toString('hex'));
      expect(acked.length, `${signal} acknowledged`).to.be.greaterThan(signal === 'metrics' ? 3 : 0);
      const bodies = (): string[] => (signal === 'metrics' ? sink.metricsBodies() : sink.logsBodies()).map((b) => b.toString('hex'));
      await waitFor(async () => (acked.every((a) => bodies().includes(a)) ? true : undefined), {
        timeoutMs: 60_000,
        what: `every acknowledged ${signal} request at the destination`,
      });
      // Each acknowledged request exactly once, the bytes the SDK sent (no processor changed them).
      for (const a of new Set(acked))
        expect(bodies().filter((b) => b === a).length, `${signal} request delivered once`).to.equal(acked.filter((x) => x === a).length);
    }
    const recovered = metricValue(await (routelens[1] as RoutelensChild).metricsText(), 'routelens_file_storage_recovered_records_total');
    expect(recovered, 'the second routelens sent what the first had queued').to.be.greaterThan(0);
  });

  it('a signal without a pipeline: the app is told the fix, and routelens logs it once with the client address', async () => {
    sink = await new OtlpSink().start();
    const rl = await startRoutelens(
      'routelens-traces-only',
      `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`,
    );
    const { app, dir } = await startApp(
      'orders-traces-only',
      appEnv('orders-traces-only', PODS.grpc, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.endpoints['otlp/grpc'] as number}` }),
    );
    await metricExports(dir, 3, 0);
    await drive(app);
    await app.stop();
    apps.splice(0);
    console.log(
      'APP OUTPUT>>>',
      app
        .output()
        .split('\n')
        .filter((l) => /metric|export/i.test(l))
        .join('\n'),
    );
    // The exporter got UNIMPLEMENTED for every metrics request (and did not retry); traces went through.
    const metrics = readExportLog(dir, 'metrics');
    expect(metrics.length).to.be.greaterThan(2);
    expect(metrics.every((e) => !e.ok)).to.equal(true);
    expect(readExportLog(dir, 'traces').every((e) => e.ok)).to.equal(true);
    const m = await rl.metricsText();
    expect(metricValue(m, 'routelens_receiver_unimplemented_requests_total', { signal: 'metrics' })).to.equal(metrics.length);
    expect(metricValue(m, 'routelens_receiver_unimplemented_requests_total', { signal: 'logs' })).to.equal(readExportLog(dir, 'logs').length);
    const hints = rl.logs().filter((l) => l.signal === 'metrics' && l.level === 'warn');
    expect(hints, 'one line per client and signal').to.have.length(1);
    expect(hints[0]).to.include({ client: '127.0.0.1', transport: 'grpc' });
    expect(String(hints[0]?.msg)).to.contain('Add a metrics pipeline (service.pipelines.metrics with receivers: [otlp] and an exporter)');
  });
});
