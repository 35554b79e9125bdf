/**
 * memory_limiter end to end, in a child routelens (its own heap; started without --expose-gc, so the limiter's
 * forced collections go through the gc it gets from V8 at run time): clients flood it
 * while its exporter cannot deliver, so its queue grows; memory must stay under the hard limit, the excess
 * be refused retryably, and the real JS SDK exporter must get its spans through once memory falls.
 */
import { expect } from 'chai';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from '../support/free-port';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { metricValue } from '../support/routelens';
import { startRoutelensChild, type RoutelensChild } from '../support/routelens-child';
import { postTraces, spanIds, traceRequest } from '../support/trace-requests';
import { sdkExport } from '../support/sdk-export';

const MiB = 1024 * 1024;
const LIMIT_MIB = 64;
// A spike of half the limit: refused bodies are read (and are garbage) before the limiter can refuse them, so a
// flood grows memory between checks; the headroom must cover that on a busy CI machine.
const SPIKE_MIB = 32;

describe('memory_limiter under a flood with a blocked exporter (child process)', function () {
  this.timeout(180_000);
  let dir: string;
  let sink: OtlpSink;
  let child: RoutelensChild | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-memlimit-'));
    sink = new OtlpSink();
    sink.grpcPort = await freePort(); // the destination stays down until the test starts it
    child = await startRoutelensChild(
      path.join(dir, 'config.yaml'),
      `
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
      http: { endpoint: 127.0.0.1:0 }
processors:
  # Refused request bodies are garbage until collected, so memory grows between forced GCs even while data
  # is refused: the spike (32 MiB) must cover that growth. Checks and soft-band GCs every 20 ms keep it well
  # inside here (the Collector's 1s / 10s suit a real deployment with a proportionally larger spike).
  memory_limiter:
    check_interval: 20ms
    limit_mib: ${LIMIT_MIB}
    spike_limit_mib: ${SPIKE_MIB}
    min_gc_interval_when_soft_limited: 20ms
exporters:
  otlp:
    endpoint: 127.0.0.1:${sink.grpcPort}
    tls: { insecure: true }
    compression: none
    timeout: 2s
    sending_queue: { queue_size: 100000, num_consumers: 4 }
    retry_on_failure: { initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 0 }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
`,
      { name: 'routelens-memlimit' },
    );
  });

  after(async () => {
    await child?.proc.stop();
    await sink?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stays under the hard limit while refusing the excess with 503 + Retry-After', async () => {
    const c = child as RoutelensChild;
    const url = `http://127.0.0.1:${c.endpoints['otlp/http']}/v1/traces`;
    const body = traceRequest(spanIds(7, 50), { padBytes: 4000 }); // ~200 KB per request
    let accepted = 0;
    let refused = 0;
    const other: number[] = [];
    let retryAfter: string | undefined;
    let maxSeen = 0;
    let flooding = true;

    // Sample the child's memory as the limiter measures it, independently of its check interval.
    const sampler = (async () => {
      while (flooding) {
        const m = await c.metricsText();
        maxSeen = Math.max(maxSeen, metricValue(m, 'routelens_memory_limiter_used_bytes'));
      }
    })();
    const client = async (): Promise<void> => {
      while (flooding) {
        const r = await postTraces(url, body);
        if (r.status === 200) accepted++;
        else if (r.status === 503) {
          refused++;
          retryAfter = r.headers['retry-after'] as string | undefined;
        } else other.push(r.status);
        if (refused >= 200 || accepted + refused + other.length > 5000) flooding = false;
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    await sampler;

    const m = await c.metricsText();
    const peak = metricValue(m, 'routelens_memory_limiter_peak_bytes');
    const soft = metricValue(m, 'routelens_memory_limiter_limit_bytes', { limit: 'soft' });
    expect(other, 'unexpected statuses').to.deep.equal([]);
    expect(accepted).to.be.greaterThan(0);
    expect(refused).to.be.at.least(200);
    expect(retryAfter).to.equal('1');
    expect(soft).to.equal((LIMIT_MIB - SPIKE_MIB) * MiB);
    // The queue really grew to the soft limit (so the limiter, not luck, kept memory down) ...
    expect(peak).to.be.at.least(soft);
    // ... and memory never reached the hard limit, at the limiter's checks or between them.
    expect(peak, `peak ${(peak / MiB).toFixed(1)} MiB`).to.be.below(LIMIT_MIB * MiB);
    expect(maxSeen, `max sampled ${(maxSeen / MiB).toFixed(1)} MiB`).to.be.below(LIMIT_MIB * MiB);
    // Every refusal came from the memory limiter and was counted by the receiver and by the processor.
    expect(metricValue(m, 'otelcol_processor_refused_spans_total', { processor: 'memory_limiter' })).to.equal(refused * 50);
    expect(metricValue(m, 'otelcol_receiver_refused_spans_total')).to.equal(refused * 50);
    expect(metricValue(m, 'otelcol_receiver_accepted_spans_total')).to.equal(accepted * 50);
    expect(c.proc.running).to.equal(true);
  });

  it('the JS SDK exporter retries the refusal and its spans arrive once the exporter drains and memory falls', async () => {
    const c = child as RoutelensChild;
    // Fill the queue until even a forced GC leaves memory above the soft limit: from then on everything is
    // refused until the exporter drains.
    const url = `http://127.0.0.1:${c.endpoints['otlp/http']}/v1/traces`;
    const filler = traceRequest(spanIds(8, 50), { padBytes: 4000 });
    await waitFor(
      async () => {
        await postTraces(url, filler);
        const m = await c.metricsText();
        const soft = metricValue(m, 'routelens_memory_limiter_limit_bytes', { limit: 'soft' });
        return metricValue(m, 'routelens_memory_limiter_used_after_gc_bytes') >= soft && metricValue(m, 'routelens_memory_limiter_refusing') === 1
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1, what: 'memory above the soft limit after a forced GC' },
    );
    // Keep the pressure on while the SDK sends: memory could otherwise dip below the soft limit as refused bodies
    // are collected, and the SDK's first attempt would get through. Filler requests carry 50 spans, the SDK's 5,
    // so the refused-span count modulo 50 tells the SDK's refusals apart. An SDK export that slipped through a
    // dip proves nothing about retries: then try again with a new export (its spans still arrive, unchecked).
    let filling = true;
    const pressure = (async () => {
      while (filling) await postTraces(url, filler).catch(() => undefined);
    })();
    let exported: ReturnType<typeof sdkExport> | undefined;
    for (let attempt = 0; attempt < 5 && exported === undefined; attempt++) {
      const refusedBefore = metricValue(await c.metricsText(), 'otelcol_receiver_refused_spans_total');
      const exporter = new ProtoExporter({ url: `http://127.0.0.1:${c.endpoints['otlp/http']}/v1/traces`, timeoutMillis: 30_000 });
      const candidate = sdkExport(exporter, 'memlimit-sdk', 5);
      // The SDK's first attempt is refused ...
      const refused = await waitFor(
        async () => ((metricValue(await c.metricsText(), 'otelcol_receiver_refused_spans_total') - refusedBefore) % 50 >= 5 ? true : undefined),
        { timeoutMs: 5_000, intervalMs: 20, what: 'the SDK export to be refused' },
      ).catch(() => false);
      if (refused) exported = candidate;
    }
    filling = false;
    await pressure;
    expect(exported, 'an SDK export refused by the memory limiter within 5 tries').to.not.equal(undefined);
    // ... then the destination comes up, the queue drains, memory falls, and a retry gets through.
    await sink.start();
    const outcome = await (exported as ReturnType<typeof sdkExport>);
    expect(outcome.ok, outcome.error?.message).to.equal(true);
    const got = await waitFor(
      async () => {
        const want = new Set(outcome.spanIds);
        const spans = sink
          .spans()
          .filter((s) => attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue === 'memlimit-sdk' && want.has(s.spanId));
        return spans.length >= want.size ? spans : undefined;
      },
      { timeoutMs: 30_000, what: 'the SDK spans at the destination' },
    );
    // every span of the refused-then-retried export arrived, exactly once
    expect(got.map((s) => s.spanId).sort()).to.deep.equal([...outcome.spanIds].sort());
    const m = await c.metricsText();
    expect(metricValue(m, 'routelens_memory_limiter_refusing')).to.equal(0);
    expect(metricValue(m, 'routelens_memory_limiter_forced_gcs')).to.be.greaterThan(0);
  });
});
