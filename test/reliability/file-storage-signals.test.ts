/**
 * The persistent queue for metrics and logs pipelines, with routelens as a child process: every metrics and logs
 * request a client was told is accepted (HTTP 200 / gRPC OK) while the destination is down survives `kill -9`,
 * and is delivered exactly once, as the bytes that were accepted, when routelens starts again. Each signal has
 * its own queue on disk beside the traces one.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { queueDirName } from '../../src/extensions/filestorage/factory';
import { freePort, waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { LOGS_EXPORT, METRICS_EXPORT, RawGrpcClient } from '../support/raw-clients';
import { metricValue } from '../support/routelens';
import { startRoutelensChild, type RoutelensChild } from '../support/routelens-child';
import { logsRequest, metricsRequest } from '../support/signal-requests';
import { postTraces } from '../support/trace-requests';

function config(dir: string, sinkPort: number): string {
  return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  memory_limiter: { limit_mib: 1000 }
exporters:
  otlp:
    endpoint: 127.0.0.1:${sinkPort}
    tls: { insecure: true }
    timeout: 2s
    sending_queue: { storage: file_storage, queue_size: 10000, num_consumers: 4 }
    retry_on_failure: { initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0 }
extensions:
  file_storage: { directory: ${path.join(dir, 'queue')} }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [file_storage, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
    metrics: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
    logs: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
`;
}

const signals = [
  { signal: 'metrics', path: '/v1/metrics', method: METRICS_EXPORT, request: metricsRequest, unit: 'metric_points' },
  { signal: 'logs', path: '/v1/logs', method: LOGS_EXPORT, request: logsRequest, unit: 'log_records' },
] as const;

describe('file_storage: metrics and logs queues across kill -9 (child process)', function () {
  this.timeout(180_000);
  let dir: string;
  let sink: OtlpSink;
  let child: RoutelensChild | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-persist-signals-'));
    sink = new OtlpSink();
    sink.grpcPort = await freePort(); // down until the test starts it
  });

  afterEach(async () => {
    if (child?.proc.running) await child.proc.kill9();
    child = undefined;
    await sink.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every acknowledged metrics and logs request exactly once, byte for byte, after kill -9', async () => {
    const file = path.join(dir, 'config.yaml');
    const yaml = config(dir, sink.grpcPort);
    child = await startRoutelensChild(file, yaml, { name: 'routelens-signals-run1' });
    const grpcClient = new RawGrpcClient(child.endpoints['otlp/grpc'] as number);
    const accepted: Record<string, Buffer[]> = { metrics: [], logs: [] };
    const items: Record<string, number> = { metrics: 0, logs: 0 };
    try {
      for (const s of signals) {
        for (let r = 0; r < 12; r++) {
          const body = Buffer.from(s.request(r + 1, { service: `persist-${s.signal}-${r}` }));
          if (r % 2 === 0) {
            const res = await postTraces(`http://127.0.0.1:${child.endpoints['otlp/http']}${s.path}`, body);
            expect(res.status, `${s.signal} request ${r}`).to.equal(200);
          } else {
            const res = await grpcClient.export(body, 10_000, s.method);
            expect(res.code, `${s.signal} request ${r}: ${res.details}`).to.equal(grpc.status.OK);
          }
          accepted[s.signal]!.push(body);
          items[s.signal]! += r + 1;
        }
      }
    } finally {
      grpcClient.close();
    }
    const m1 = await child.metricsText();
    // Nothing delivered yet (the destination is down): all of it is on disk, waiting or being retried.
    expect(metricValue(m1, 'otelcol_exporter_sent_metric_points_total') + metricValue(m1, 'otelcol_exporter_sent_log_records_total')).to.equal(0);
    expect(metricValue(m1, 'otelcol_exporter_queue_size', { data_type: 'metrics' })).to.be.at.least(12 - 4);
    expect(metricValue(m1, 'otelcol_exporter_queue_size', { data_type: 'logs' })).to.be.at.least(12 - 4);
    for (const owner of ['otlp#metrics', 'otlp#logs']) {
      expect(
        fs.readdirSync(path.join(dir, 'queue', queueDirName(owner))).some((f) => f.endsWith('.seg')),
        owner,
      ).to.equal(true);
    }
    expect((await child.proc.kill9()).signal).to.equal('SIGKILL');

    await sink.start();
    child = await startRoutelensChild(file, yaml, { name: 'routelens-signals-run2' });
    const m2 = await waitFor(
      async () => {
        const m = await child!.metricsText();
        return metricValue(m, 'otelcol_exporter_queue_size') === 0 && metricValue(m, 'otelcol_exporter_in_flight_requests') === 0 && sink.requests.length >= 24
          ? m
          : undefined;
      },
      { timeoutMs: 60_000, what: 'the queues to drain into the sink' },
    );
    const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex')).sort();
    expect(hex(sink.metricsBodies()), 'metrics: each accepted request once, as accepted').to.deep.equal(hex(accepted.metrics!));
    expect(hex(sink.logsBodies()), 'logs: each accepted request once, as accepted').to.deep.equal(hex(accepted.logs!));
    expect(metricValue(m2, 'routelens_file_storage_recovered_records_total')).to.equal(24);
    expect(metricValue(m2, 'otelcol_exporter_sent_metric_points_total')).to.equal(items.metrics);
    expect(metricValue(m2, 'otelcol_exporter_sent_log_records_total')).to.equal(items.logs);
  });
});
