/**
 * The loadbalancing exporter alone, in front of backends the test controls: the wait before a retry when the
 * backend sends a RetryInfo hint, and shutdown called twice. (Routing, ring changes and restarts run in a whole
 * routelens: test/cluster/loadbalancing.test.ts.)
 */
import { expect } from 'chai';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { capturedLogger } from '../../../test/support/captured-logs';
import { stateOf } from '../../../test/support/deferred';
import { until } from '../../../test/support/raw-clients';
import { OtlpSink } from '../../../test/support/otlp-sink';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import type { Host } from '../../core/component';
import { GrpcStatus } from '../../core/errors';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import { encodeRpcStatus } from '../../pdata/rpc-status';
import { TraceBatch } from '../../pdata/trace-batch';
import { loadBalancingConfigSchema } from './config';
import { LoadBalancingExporter } from './exporter';

const host: Host = { getExtension: () => undefined, components: () => new Map(), healthy: () => true };

async function exporter(backend: string, retry: Record<string, unknown>) {
  const issues = new ConfigErrorList();
  const config = loadBalancingConfigSchema.parse(
    { resolver: { static: { hostnames: [backend] } }, protocol: { otlp: { tls: { insecure: true }, timeout: '5s' } }, retry_on_failure: retry },
    'exporters.loadbalancing',
    issues,
  );
  expect(issues.items).to.deep.equal([]);
  const { logger, lines } = capturedLogger();
  const e = new LoadBalancingExporter({ id: 'loadbalancing', logger, telemetry: new Telemetry() }, config);
  await e.start(host);
  return { e, lines };
}

/** A gRPC backend answering the first `refusals` calls UNAVAILABLE with a RetryInfo of `hintMs`, then OK. */
async function refusingBackend(refusals: number, hintMs: number): Promise<{ endpoint: string; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      if (++calls <= refusals) {
        const details = Buffer.from(encodeRpcStatus(GrpcStatus.UNAVAILABLE, 'busy', hintMs)).toString('base64');
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'busy', 'grpc-status-details-bin': details },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `127.0.0.1:${(h2.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () => new Promise<void>((resolve) => h2.close(() => resolve())),
  };
}

describe('loadbalancing exporter', () => {
  it("waits its own back-off when the backend's RetryInfo asks for less (0 s), as the Collector's retry sender", async () => {
    const backend = await refusingBackend(1, 0);
    const { e, lines } = await exporter(backend.endpoint, { initial_interval: '300ms', randomization_factor: 0 });
    try {
      await e.consumeTraces(TraceBatch.decode(traceRequest(spanIds(1, 2))));
      await until(() => backend.calls() === 2, 'the retry after the refusal');
      const retries = lines.filter((l) => l.msg === 'Exporting to a backend failed; will retry, routed again').map((l) => l.retry_in_ms);
      expect(retries).to.deep.equal([300]);
    } finally {
      await e.shutdown();
      await backend.close();
    }
  });

  it('shuts down safely twice: the second call returns once what was queued is delivered, not before', async () => {
    const sink = await new OtlpSink().start();
    const { e } = await exporter(sink.grpcEndpoint, {});
    try {
      sink.pause();
      await e.consumeTraces(TraceBatch.decode(traceRequest(spanIds(2, 3))));
      await until(() => sink.heldCount === 1, 'the request held at the backend');
      const first = e.shutdown();
      const second = e.shutdown();
      expect(await stateOf(second)).to.equal('pending');
      sink.resume();
      await Promise.all([first, second]);
      expect(sink.spanCount()).to.equal(3);
    } finally {
      sink.resume();
      await sink.stop();
    }
  });
});
