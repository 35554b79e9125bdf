/**
 * file_storage inside a running pipeline: a full persistent queue refuses with 503 + Retry-After (the client
 * keeps its data), and a request is acknowledged only when every exporter's queue has stored it.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../support/free-port';
import { metricValue, startRoutelens } from '../support/routelens';
import { postTraces, spanIds, traceRequest } from '../support/trace-requests';

describe('file_storage in the pipeline', function () {
  this.timeout(60_000);

  it("refuses retryably once one exporter's queue reaches max_size_mib, though the other has room", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-fsfull-'));
    const down = await freePort();
    const rl = await startRoutelens(`
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
exporters:
  otlp/small:
    endpoint: 127.0.0.1:${down}
    tls: { insecure: true }
    sending_queue: { storage: file_storage/small, num_consumers: 1 }
    retry_on_failure: { initial_interval: 1s, max_elapsed_time: 0 }
  otlp/big:
    endpoint: 127.0.0.1:${down}
    tls: { insecure: true }
    sending_queue: { storage: file_storage/big, num_consumers: 1 }
    retry_on_failure: { initial_interval: 1s, max_elapsed_time: 0 }
extensions:
  file_storage/small: { directory: ${path.join(dir, 'small')}, max_size_mib: 0.05 }
  file_storage/big: { directory: ${path.join(dir, 'big')}, fsync: true }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  shutdown_timeout: 500ms
  extensions: [file_storage/small, file_storage/big, routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp/small, otlp/big] }
`);
    try {
      const url = `http://127.0.0.1:${rl.httpPort()}/v1/traces`;
      const statuses: number[] = [];
      let retryAfter: unknown;
      for (let i = 0; i < 20 && !statuses.includes(503); i++) {
        const r = await postTraces(url, traceRequest(spanIds(0x600 + i, 10), { padBytes: 1000 })); // ~11 KB
        statuses.push(r.status);
        retryAfter = r.headers['retry-after'];
      }
      // 0.05 MiB holds four of these requests; the fifth is refused and the client told to come back.
      expect(statuses).to.deep.equal([200, 200, 200, 200, 503]);
      expect(retryAfter).to.equal('5');
      const m = await rl.metricsText();
      expect(metricValue(m, 'otelcol_exporter_enqueue_failed_spans_total', { exporter: 'otlp/small' })).to.equal(10);
      expect(metricValue(m, 'otelcol_exporter_enqueue_failed_spans_total', { exporter: 'otlp/big' })).to.equal(0);
      expect(metricValue(m, 'otelcol_receiver_refused_spans_total')).to.equal(10);
      expect(metricValue(m, 'otelcol_receiver_accepted_spans_total')).to.equal(40);
      expect(metricValue(m, 'routelens_file_storage_bytes', { extension: 'file_storage/small' })).to.be.at.most(0.05 * 1024 * 1024);
    } finally {
      await rl.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a storage id that is not a running storage extension at start', async () => {
    const err = await startRoutelens(`
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
exporters:
  otlp: { endpoint: 127.0.0.1:1, tls: { insecure: true }, sending_queue: { storage: bearertokenauth } }
extensions:
  bearertokenauth: { token: x }
service:
  extensions: [bearertokenauth]
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp] }
`).then(
      async (rl) => {
        await rl.stop();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/sending_queue\.storage of otlp: extension "bearertokenauth" is not a running storage extension/);
  });

  it('reports a missing directory in the config with its path', async () => {
    const err = await startRoutelens(`
receivers:
  otlp: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
exporters:
  debug: {}
extensions:
  file_storage: { fsync: true }
service:
  extensions: [file_storage]
  pipelines:
    traces: { receivers: [otlp], exporters: [debug] }
`).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/extensions\.file_storage\.directory: is required/);
  });
});
