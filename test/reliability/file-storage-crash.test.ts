/**
 * The persistent queue end to end, with routelens as a child process: data a client was told is accepted
 * (HTTP 200 / gRPC OK) while the destination is down survives `kill -9` and a graceful stop, and is delivered
 * exactly once when routelens starts again with the destination up.
 */
import { expect } from 'chai';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { metricValue } from '../support/routelens';
import { startRoutelensChild, type RoutelensChild } from '../support/routelens-child';
import { grpcExport, sdkExport } from '../support/sdk-export';
import { postTraces, spanIds, traceRequest } from '../support/trace-requests';

function config(dir: string, sinkPort: number, extra = ''): string {
  return `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
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
${extra}
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`;
}

/** Send `requests` requests of `perRequest` spans (ids from `prefix`) over OTLP/HTTP and gRPC; every one must be acknowledged. */
async function sendAcknowledged(c: RoutelensChild, prefix: number, requests: number, perRequest: number): Promise<string[]> {
  const sent: string[] = [];
  for (let r = 0; r < requests; r++) {
    const ids = spanIds(prefix + r, perRequest);
    const body = traceRequest(ids, { service: 'persistent', padBytes: 200 });
    if (r % 2 === 0) {
      const res = await postTraces(`http://127.0.0.1:${c.endpoints['otlp/http']}/v1/traces`, body);
      expect(res.status, `request ${r}`).to.equal(200);
    } else {
      const res = await grpcExport(`127.0.0.1:${c.endpoints['otlp/grpc']}`, body);
      expect(res.code, `request ${r}: ${res.details}`).to.equal(grpc.status.OK);
    }
    sent.push(...ids);
  }
  return sent;
}

/** Wait until the child's queue is empty and nothing is in flight. */
async function drained(c: RoutelensChild): Promise<string> {
  return waitFor(
    async () => {
      const m = await c.metricsText();
      return metricValue(m, 'otelcol_exporter_queue_size') === 0 && metricValue(m, 'otelcol_exporter_in_flight_requests') === 0 ? m : undefined;
    },
    { timeoutMs: 30_000, what: 'the exporter queue to drain' },
  );
}

async function allDelivered(sink: OtlpSink, ids: readonly string[]): Promise<void> {
  const want = new Set(ids);
  await waitFor(async () => (sink.spans().filter((s) => want.has(s.spanId)).length >= want.size ? true : undefined), {
    timeoutMs: 60_000,
    what: `${want.size} spans at the destination`,
  });
}

describe('file_storage: persistent queue across kill -9 and restart (child process)', function () {
  this.timeout(180_000);
  let dir: string;
  let sink: OtlpSink;
  let child: RoutelensChild | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-persist-'));
    sink = new OtlpSink();
    sink.grpcPort = await freePort(); // down until the test starts it
  });

  afterEach(async () => {
    if (child?.proc.running) await child.proc.kill9();
    child = undefined;
    await sink.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every acknowledged span exactly once after kill -9, and never again after', async () => {
    const file = path.join(dir, 'config.yaml');
    const yaml = config(dir, sink.grpcPort);
    child = await startRoutelensChild(file, yaml, { name: 'routelens-run1' });
    const sent = await sendAcknowledged(child, 0x100, 30, 20);
    // The JS SDK exporter too: its export resolves only on an OK answer.
    const sdk = await sdkExport(new ProtoExporter({ url: `http://127.0.0.1:${child.endpoints['otlp/http']}/v1/traces` }), 'persistent-sdk', 7);
    expect(sdk.ok, sdk.error?.message).to.equal(true);
    sent.push(...sdk.spanIds);
    const m1 = await child.metricsText();
    expect(metricValue(m1, 'routelens_file_storage_bytes')).to.be.greaterThan(0);
    expect(metricValue(m1, 'otelcol_exporter_sent_spans_total')).to.equal(0);
    expect(fs.readdirSync(path.join(dir, 'queue', 'exporter_otlp')).some((f) => f.endsWith('.seg'))).to.equal(true);

    const exit = await child.proc.kill9();
    expect(exit.signal).to.equal('SIGKILL');

    await sink.start();
    child = await startRoutelensChild(file, yaml, { name: 'routelens-run2' });
    await allDelivered(sink, sent);
    const m2 = await drained(child);
    expect(metricValue(m2, 'routelens_file_storage_recovered_records_total')).to.equal(31);
    expect(metricValue(m2, 'routelens_file_storage_corrupt_records_total')).to.equal(0);
    const got = sink.spans().map((s) => s.spanId);
    expect(got.length, 'duplicates').to.equal(new Set(got).size);
    expect([...got].sort()).to.deep.equal([...sent].sort());
    expect(metricValue(m2, 'otelcol_exporter_sent_spans_total')).to.equal(sent.length);

    // A graceful stop and a third start: nothing left to send, nothing sent again.
    const stopped = await child.proc.stop(20_000);
    expect(stopped.code).to.equal(0);
    child = await startRoutelensChild(file, yaml, { name: 'routelens-run3' });
    const m3 = await drained(child);
    expect(metricValue(m3, 'routelens_file_storage_recovered_records_total')).to.equal(0);
    expect(metricValue(m3, 'otelcol_exporter_sent_spans_total')).to.equal(0);
    expect(sink.spanCount()).to.equal(sent.length);
  });

  it('survives a torn write at the tail: counts it, delivers everything acknowledged before it', async () => {
    const file = path.join(dir, 'config.yaml');
    const yaml = config(dir, sink.grpcPort);
    child = await startRoutelensChild(file, yaml, { name: 'routelens-torn1' });
    const sent = await sendAcknowledged(child, 0x300, 6, 10);
    await child.proc.kill9();
    // What a crash in the middle of appending a record leaves behind.
    const qdir = path.join(dir, 'queue', 'exporter_otlp');
    const seg = fs
      .readdirSync(qdir)
      .filter((f) => f.endsWith('.seg'))
      .sort()
      .pop() as string;
    fs.appendFileSync(path.join(qdir, seg), Buffer.concat([Buffer.from('RLQ1'), Buffer.alloc(40, 7)]));

    await sink.start();
    child = await startRoutelensChild(file, yaml, { name: 'routelens-torn2' });
    await allDelivered(sink, sent);
    const m = await drained(child);
    expect(metricValue(m, 'routelens_file_storage_corrupt_records_total')).to.equal(1);
    expect(metricValue(m, 'routelens_file_storage_recovered_records_total')).to.equal(6);
    expect(sink.spanCount()).to.equal(sent.length);
  });

  it('graceful shutdown with the destination down keeps the queue on disk within shutdown_timeout', async () => {
    const file = path.join(dir, 'config.yaml');
    const yaml = config(dir, sink.grpcPort, '  shutdown_timeout: 1s');
    child = await startRoutelensChild(file, yaml, { name: 'routelens-graceful1' });
    const sent = await sendAcknowledged(child, 0x400, 10, 10);
    const exit = await child.proc.stop(30_000);
    expect(exit.code).to.equal(0);
    const logs = child.logs();
    expect(logs.some((l) => l.msg === 'Queued data kept on disk for the next start' && l.records === 10)).to.equal(true);
    expect(logs.some((l) => l.msg === 'Shutdown complete')).to.equal(true);

    await sink.start();
    child = await startRoutelensChild(file, yaml, { name: 'routelens-graceful2' });
    await allDelivered(sink, sent);
    const m = await drained(child);
    expect(metricValue(m, 'routelens_file_storage_recovered_records_total')).to.equal(10);
    expect(sink.spanCount()).to.equal(sent.length);
  });

  it('graceful shutdown drains the queue when the destination recovers before shutdown_timeout', async () => {
    const file = path.join(dir, 'config.yaml');
    const yaml = config(dir, sink.grpcPort, '  shutdown_timeout: 20s');
    await sink.start();
    sink.failWith = { grpcCode: grpc.status.UNAVAILABLE, httpStatus: 503 };
    child = await startRoutelensChild(file, yaml, { name: 'routelens-drain1' });
    const sent = await sendAcknowledged(child, 0x500, 10, 10);
    const stopping = child.proc.stop(30_000);
    sink.failWith = undefined; // the destination recovers while routelens drains
    expect((await stopping).code).to.equal(0);
    expect(sink.spanCount()).to.equal(sent.length);

    child = await startRoutelensChild(file, yaml, { name: 'routelens-drain2' });
    const m = await drained(child);
    expect(metricValue(m, 'routelens_file_storage_recovered_records_total')).to.equal(0);
    expect(sink.spanCount()).to.equal(sent.length);
  });
});
