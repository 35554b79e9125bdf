/**
 * The real `routelens run` process on the repository's default otel-config.yaml, with its endpoints moved to
 * free ports through the documented environment overrides: it becomes healthy, the debug exporter logs a
 * span sent to it, and SIGTERM makes it shut down cleanly with exit code 0.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as path from 'node:path';
import { freePorts, waitFor } from '../support/free-port';
import { parseLogs, repoRoot, startProcess, type ProcessHandle } from '../support/process';
import { metricValue } from '../support/routelens';
import { RawGrpcClient, buildRequest, httpRequest } from '../support/raw-clients';

interface Started {
  proc: ProcessHandle;
  grpcPort: number;
  httpPort: number;
  queryPort: number;
}

async function startOnFreePorts(extraEnv: Record<string, string>): Promise<Started> {
  const root = repoRoot();
  let lastOutput = '';
  // Another process may grab a port between choosing and binding it: try again with fresh ones.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [grpcPort, httpPort, queryPort] = (await freePorts(3)) as [number, number, number];
    const proc = startProcess(process.execPath, [path.join(root, 'bin', 'routelens.js'), 'run', '--config', path.join(root, 'otel-config.yaml')], {
      name: 'routelens',
      cwd: root,
      env: {
        ROUTELENS_GRPC_ENDPOINT: `127.0.0.1:${grpcPort}`,
        ROUTELENS_HTTP_ENDPOINT: `127.0.0.1:${httpPort}`,
        ROUTELENS_QUERY_ENDPOINT: `127.0.0.1:${queryPort}`,
        ROUTELENS_LOG_LEVEL: 'info',
        ...extraEnv,
      },
    });
    const healthy = await waitFor(
      async () => {
        if (!proc.running) return 'exited' as const;
        const res = await fetch(`http://127.0.0.1:${queryPort}/healthz`);
        return res.status === 200 ? ('up' as const) : undefined;
      },
      { timeoutMs: 20_000, what: 'routelens /healthz' },
    ).catch((err: unknown) => {
      lastOutput = proc.output();
      throw new Error(`${String(err)}\n${lastOutput}`);
    });
    if (healthy === 'up') return { proc, grpcPort, httpPort, queryPort };
    lastOutput = proc.output();
    if (!/cannot listen|EADDRINUSE/.test(lastOutput)) break;
  }
  throw new Error(`routelens did not start:\n${lastOutput}`);
}

describe('the routelens process on otel-config.yaml', function () {
  this.timeout(60_000);
  let s: Started | undefined;
  afterEach(async () => {
    await s?.proc.kill9();
    s = undefined;
  });

  const modes: [string, Record<string, string>][] = [
    ['one process (ROUTELENS_WORKERS=1)', { ROUTELENS_WORKERS: '1' }],
    ['the default worker count', {}],
  ];
  for (const [mode, env] of modes) {
    it(`${mode}: starts with env-overridden endpoints, serves /healthz, logs received spans with the debug exporter, exits 0 on SIGTERM`, async () => {
      const testStart = performance.now();
      s = await startOnFreePorts(env);
      const { proc } = s;
      const started = s;
      const ready = parseLogs(proc.output()).find((l) => l.msg === 'Everything is ready. Begin running and processing data.');
      expect(ready, proc.output()).to.not.equal(undefined);
      const endpoints = ready?.endpoints as Record<string, number>;
      expect(endpoints.routequery).to.equal(s.queryPort);
      const singleProcess = ready?.workers === undefined || ready.workers === 1;
      if (singleProcess) expect(endpoints).to.deep.equal({ 'otlp/grpc': s.grpcPort, 'otlp/http': s.httpPort, routequery: s.queryPort });

      const health = await fetch(`http://127.0.0.1:${s.queryPort}/healthz`);
      expect(health.status).to.equal(200);
      expect(await health.json()).to.deep.equal({ status: 'ok' });

      const overHttp = buildRequest('process-test-http', 1);
      expect((await httpRequest(s.httpPort, '/v1/traces', overHttp.bytes, { 'content-type': 'application/x-protobuf' })).status).to.equal(200);
      const client = new RawGrpcClient(s.grpcPort);
      try {
        expect((await client.export(buildRequest('process-test-grpc', 2).bytes)).code).to.equal(grpc.status.OK);
      } finally {
        client.close();
      }
      const tracesLogged = (): Record<string, unknown>[] => parseLogs(proc.output()).filter((l) => l.msg === 'Traces' && l.exporter === 'debug');
      await waitFor(async () => (tracesLogged().length >= 2 ? true : undefined), { timeoutMs: 10_000, what: 'the debug exporter to log both batches' });
      expect(
        tracesLogged()
          .map((l) => [l.resource_spans, l.spans])
          .sort(),
      ).to.deep.equal([
        [1, 1],
        [1, 2],
      ]);
      // The counters (summed over workers, if any) see both requests.
      await waitFor(
        async () => {
          const m = await (await fetch(`http://127.0.0.1:${started.queryPort}/metrics`)).text();
          return metricValue(m, 'otelcol_receiver_accepted_spans_total', { transport: 'http' }) === 1 &&
            metricValue(m, 'otelcol_receiver_accepted_spans_total', { transport: 'grpc' }) === 2
            ? true
            : undefined;
        },
        { timeoutMs: 10_000, what: 'accepted span counters of 1 (HTTP) and 2 (gRPC)' },
      );
      // The Collector's process metrics, once each (summed over workers, uptime from the primary).
      const m = await (await fetch(`http://127.0.0.1:${started.queryPort}/metrics`)).text();
      for (const name of [
        'otelcol_process_memory_rss_bytes',
        'otelcol_process_cpu_seconds_total',
        'otelcol_process_uptime_seconds_total',
        'otelcol_process_runtime_heap_alloc_bytes',
      ]) {
        expect(
          m.split('\n').filter((l) => l.startsWith(`# TYPE ${name} `)),
          name,
        ).to.have.length(1);
      }
      expect(
        m.split('\n').filter((l) => l.startsWith('# TYPE routelens_process_heap_trims_total ')),
        'heap trims',
      ).to.have.length(1);
      const workers = singleProcess ? 1 : (ready?.workers as number);
      expect(metricValue(m, 'otelcol_process_memory_rss_bytes')).to.be.within(workers * 20e6, workers * 1e9);
      expect(metricValue(m, 'otelcol_process_runtime_heap_alloc_bytes')).to.be.within(1e6, metricValue(m, 'otelcol_process_runtime_total_sys_memory_bytes'));
      expect(metricValue(m, 'otelcol_process_cpu_seconds_total')).to.be.greaterThan(0.05);
      expect(metricValue(m, 'otelcol_process_uptime_seconds_total')).to.be.within(0.1, (performance.now() - testStart) / 1000);

      // SIGTERM, with a grace period after which stop() would SIGKILL (and the exit code would not be 0).
      const exit = await proc.stop(10_000);
      expect(exit, proc.output()).to.deep.equal({ code: 0, signal: null });
      const lines = parseLogs(proc.output());
      if (singleProcess) {
        expect(lines.some((l) => l.msg === 'Received signal; shutting down' && l.signal === 'SIGTERM')).to.equal(true);
        expect(lines.at(-1)?.msg).to.equal('Shutdown complete');
      }
      expect(lines.filter((l) => l.level === 'error' || l.level === 'fatal')).to.deep.equal([]);
    });
  }
});
