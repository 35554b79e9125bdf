/**
 * The container image, built from the repository's Dockerfile with podman (scripts/build-image.sh) and run as a
 * user would: ports published on the host, non-root, read-only root file system, no capabilities. OTLP arrives
 * over gRPC and HTTP from the host through the real OpenTelemetry JS SDK exporters; /api/v1/routes answers from
 * the container; SIGTERM drains what was accepted into the backend before the process exits.
 *
 * Skipped (with the reason) only where podman cannot run containers, never in CI (ROUTELENS_CI=1).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { V8_FLAGS } from '../../src/v8/flags';
import {
  podman,
  podmanOk,
  podmanRunOnce,
  removeStartedContainersSync,
  requireContainers,
  routelensImage,
  runContainer,
  type Container,
} from '../support/container';
import { freePorts, waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { makeSdkSpans, routesApi, type SpanSpec } from '../support/sdk-spans';

/** How the tests run the container: as a restricted Kubernetes pod would (chart securityContext). */
const RESTRICTED = ['--read-only', '--read-only-tmpfs=false', '--cap-drop=ALL', '--security-opt=no-new-privileges'];

/** Export `spans` in chunks with an SDK exporter; throws unless every export is acknowledged. */
async function exportAll(exporter: SpanExporter, spans: readonly ReadableSpan[], chunk: number): Promise<void> {
  try {
    for (let i = 0; i < spans.length; i += chunk) {
      const result = await new Promise<ExportResult>((resolve) => exporter.export(spans.slice(i, i + chunk), resolve));
      if (result.code !== ExportResultCode.SUCCESS) throw new Error(`SDK export failed: ${String(result.error)}`);
    }
  } finally {
    await exporter.shutdown();
  }
}

async function healthz(queryPort: number): Promise<true | undefined> {
  const res = await fetch(`http://127.0.0.1:${queryPort}/healthz`);
  return res.status === 200 ? true : undefined;
}

const specs = (n: number, f: (i: number) => SpanSpec): SpanSpec[] => Array.from({ length: n }, (_, i) => f(i));

describe('container image (podman)', function () {
  // The first build of a clean machine builds a base image too (debootstrap, several minutes).
  this.timeout(45 * 60_000);
  let image: string;
  const containers: Container[] = [];

  before(async function () {
    await requireContainers(this);
    image = await routelensImage();
  });

  afterEach(async () => {
    for (const c of containers.splice(0)) await c.remove();
  });

  after(() => removeStartedContainersSync());

  it('is configured as documented: uid 10001, ports, HEALTHCHECK, the V8 flags of bin/routelens.js, the default config', async () => {
    const [info] = JSON.parse(await podmanOk(['image', 'inspect', image])) as {
      Size: number;
      Config: { User: string; ExposedPorts: Record<string, unknown>; Entrypoint: string[]; Cmd: string[]; Env: string[] };
      Healthcheck?: { Test: string[] };
    }[];
    if (info === undefined) throw new Error(`no image ${image}`);
    expect(info.Config.User).to.equal('10001:10001');
    expect(Object.keys(info.Config.ExposedPorts).sort()).to.deep.equal(['4317/tcp', '4318/tcp', '8888/tcp']);
    expect(info.Config.Entrypoint).to.deep.equal(['node', ...V8_FLAGS, '/opt/routelens/bin/routelens.js']);
    expect(info.Config.Cmd).to.deep.equal(['run', '--config', '/etc/routelens/otel-config.yaml']);
    expect(info.Healthcheck?.Test[0]).to.equal('CMD');
    expect(info.Healthcheck?.Test.join(' ')).to.include('/healthz');
    // The shebang of bin/routelens.js is the other place the flags are written down.
    const shebang = fs.readFileSync(path.join(__dirname, '../../../bin/routelens.js'), 'utf8').split('\n')[0];
    expect(shebang).to.equal(`#!/usr/bin/env -S node ${V8_FLAGS.join(' ')}`);
    // The default config inside is the repository's otel-config.yaml.
    const r = await podmanRunOnce(image, ['--entrypoint', 'cat'], ['/etc/routelens/otel-config.yaml']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(fs.readFileSync(path.join(__dirname, '../../../otel-config.yaml'), 'utf8'));
    console.log(`      image ${image}: ${(info.Size / 1e6).toFixed(1)} MB`);
  });

  it('runs its default config restricted (read-only, no capabilities): OTLP/gRPC and OTLP/HTTP from the host, /api/v1/routes, HEALTHCHECK, SIGTERM exits 0', async () => {
    const [grpcPort, httpPort, queryPort] = (await freePorts(3)) as [number, number, number];
    const c = await runContainer({ image, publish: { [grpcPort]: 4317, [httpPort]: 4318, [queryPort]: 8888 }, extra: RESTRICTED });
    containers.push(c);
    await waitFor(() => healthz(queryPort), { timeoutMs: 60_000, what: `/healthz of ${c.name}` }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await c.logs()}`);
    });
    // The image's HEALTHCHECK, run the way the engine runs it.
    const hc = await podman(['healthcheck', 'run', c.name]);
    expect(hc.code, `${hc.stdout}${hc.stderr}`).to.equal(0);

    expect((await c.exec(['id', '-u'])).stdout.trim()).to.equal('10001');
    const cmdline = (await c.exec(['cat', '/proc/1/cmdline'])).stdout.split('\0').filter((a) => a !== '');
    expect(cmdline).to.deep.equal(['node', ...V8_FLAGS, '/opt/routelens/bin/routelens.js', 'run', '--config', '/etc/routelens/otel-config.yaml']);
    for (const dir of ['/opt/routelens', '/tmp', '/etc/routelens']) {
      const w = await c.exec(['touch', `${dir}/probe`]);
      expect(w.code, `${dir} must not be writable`).to.not.equal(0);
      expect(w.stderr).to.match(/Read-only file system|Permission denied/);
    }

    const orders = await makeSdkSpans(
      'orders',
      specs(30, (i) => ({ ms: 10 + i, route: '/orders/{id}' })),
    );
    const cart = await makeSdkSpans(
      'cart',
      specs(20, (i) => ({ ms: 5 + i, method: 'POST', route: '/cart/items', error: i < 3 })),
    );
    await exportAll(new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}` }), orders, 7);
    await exportAll(new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces` }), cart, 6);

    const queryUrl = `http://127.0.0.1:${queryPort}`;
    const rows = await waitFor(
      async () => {
        const r = await routesApi(queryUrl, { window: '5m', sort: 'route' });
        return r.reduce((n, x) => n + x.count, 0) === 50 ? r : undefined;
      },
      { timeoutMs: 30_000, what: '50 spans in /api/v1/routes' },
    );
    expect(
      rows.map((r) => ({ service: r.service, method: r.method, route: r.route, count: r.count, errors: r['error_count'], max: r['max_ms'] })),
    ).to.deep.equal([
      { service: 'cart', method: 'POST', route: '/cart/items', count: 20, errors: 3, max: 24 },
      { service: 'orders', method: 'GET', route: '/orders/{id}', count: 30, errors: 0, max: 39 },
    ]);
    // the page and its scripts are in the image (compiled by the page's own tsconfig)
    const page = await fetch(`${queryUrl}/`);
    expect([page.status, page.headers.get('content-security-policy')?.startsWith("default-src 'none'")]).to.deep.equal([200, true]);
    for (const asset of ['/ui/main.js', '/ui/uPlot.iife.min.js']) expect((await fetch(`${queryUrl}${asset}`)).status, asset).to.equal(200);

    expect(await c.stop(30)).to.equal(0, 'exit code after SIGTERM (137 would mean it was killed after the grace period)');
    const logs = await c.logs();
    expect(logs).to.match(/"signal":"SIGTERM"/);
    expect(logs).to.include('Shutdown complete');
  });

  it('SIGTERM drains: every span accepted before the signal reaches the backend, once', async () => {
    const sink = await new OtlpSink().start({ host: '0.0.0.0' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-image-'));
    try {
      const config = path.join(dir, 'otel-config.yaml');
      fs.writeFileSync(
        config,
        `receivers:
  otlp:
    protocols:
      grpc: { endpoint: 0.0.0.0:4317 }
      http: { endpoint: 0.0.0.0:4318 }
exporters:
  otlp:
    endpoint: host.containers.internal:${sink.grpcPort}
    tls: { insecure: true }
    timeout: 60s
extensions:
  routequery: { endpoint: 0.0.0.0:8888 }
service:
  shutdown_timeout: 60s
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
`,
      );
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(config, 0o644);
      const [grpcPort, httpPort, queryPort] = (await freePorts(3)) as [number, number, number];
      const c = await runContainer({
        image,
        publish: { [grpcPort]: 4317, [httpPort]: 4318, [queryPort]: 8888 },
        volumes: [`${config}:/etc/routelens/otel-config.yaml:ro`],
        extra: RESTRICTED,
      });
      containers.push(c);
      await waitFor(() => healthz(queryPort), { timeoutMs: 60_000, what: `/healthz of ${c.name}` }).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await c.logs()}`);
      });

      // The backend stalls: whatever routelens accepts stays in its queues until the signal has been sent.
      sink.pause();
      const viaGrpc = await makeSdkSpans(
        'drain-grpc',
        specs(600, (i) => ({ ms: 1 + (i % 50), route: `/grpc/${i % 7}` })),
      );
      const viaHttp = await makeSdkSpans(
        'drain-http',
        specs(600, (i) => ({ ms: 1 + (i % 50), route: `/http/${i % 5}` })),
      );
      await Promise.all([
        exportAll(new GrpcExporter({ url: `http://127.0.0.1:${grpcPort}` }), viaGrpc, 50),
        exportAll(new ProtoExporter({ url: `http://127.0.0.1:${httpPort}/v1/traces` }), viaHttp, 50),
      ]);
      expect(sink.requests.length).to.equal(0, 'nothing reached the backend before SIGTERM');

      await podmanOk(['kill', '--signal', 'TERM', c.name]);
      // Let the signal land while the backend still stalls, then let it answer.
      await waitFor(async () => ((await c.logs()).includes('"signal":"SIGTERM"') ? true : undefined), { timeoutMs: 30_000, what: 'SIGTERM logged' });
      sink.resume();
      expect(await c.wait()).to.equal(0, 'exit code after the drain');

      const sent = [...viaGrpc, ...viaHttp].map((s) => s.spanContext().spanId).sort();
      const received = sink.spans().map((s) => s.spanId);
      expect(received.length).to.equal(sent.length, 'each span exactly once');
      expect(received.sort()).to.deep.equal(sent);
      const logs = await c.logs();
      expect(logs).to.include('Shutdown complete');
      expect(logs).to.not.match(/"level":"(error|fatal)"/);
    } finally {
      sink.resume();
      await sink.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
