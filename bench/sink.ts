/**
 * The counting OTLP sink both collectors export to (a child process of bench/run.ts, pinned to the load
 * generator's core). gRPC TraceService/Export, MetricsService/Export and LogsService/Export on a bare HTTP/2
 * server: a trace request is walked once by `countSpans` (tags and lengths only) to count spans exactly and find
 * the marker spans whose send time gives the end-to-end latency; a metrics or logs request (the app-signal
 * scenarios) is counted by routelens's own validating reader (data points, log records), which the `spans`
 * figures then stand for; every 16th request is also checked for k8s enrichment.
 *
 * IPC commands: reset ({ appSignalsApart: true }: metrics and logs items are counted as `appItems`, not as spans,
 * for the traces-beside-metrics-and-logs scenarios), windowStart, windowEnd (→ latencies of markers that arrived
 * in the window), stats.
 */
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { serveIpc } from './ipc';
import { LogsBatch } from '../src/pdata/logs-batch';
import { MetricsBatch } from '../src/pdata/metrics-batch';
import type { OtlpBatch } from '../src/pdata/otlp-batch';
import { countSpans, LOGS_EXPORT_PATH, METRICS_EXPORT_PATH, TRACE_EXPORT_PATH } from './wire';

export interface SinkStats {
  requests: number;
  spans: number;
  bytes: number;
  /** Requests the span walk could not parse (should stay 0). */
  malformed: number;
  markers: number;
  duplicateMarkers: number;
  sampledResources: number;
  enrichedResources: number;
  metricsRequests: number;
  metricsBytes: number;
  /** Data points and log records when they are counted apart from spans (reset with appSignalsApart). */
  appItems: number;
  /** hrtime ns of the last trace request. */
  lastArrivalNs: number;
}

export interface WindowResult {
  /** End-to-end latencies (ms) of markers that arrived inside the window. */
  latenciesMs: number[];
  spans: number;
  requests: number;
  /** Data points and log records in the window, when counted apart. */
  appItems: number;
}

function zero(): SinkStats {
  return {
    requests: 0,
    spans: 0,
    bytes: 0,
    malformed: 0,
    markers: 0,
    duplicateMarkers: 0,
    sampledResources: 0,
    enrichedResources: 0,
    metricsRequests: 0,
    metricsBytes: 0,
    appItems: 0,
    lastArrivalNs: 0,
  };
}

let stats = zero();
let seen = new Set<number>();
let inWindow = false;
let windowLatencies: number[] = [];
let windowSpans = 0;
let windowRequests = 0;
let windowAppItems = 0;
let appSignalsApart = false;

function onTraces(buf: Buffer): void {
  const now = Number(process.hrtime.bigint());
  stats.requests++;
  stats.bytes += buf.length;
  stats.lastArrivalNs = now;
  const check = stats.requests % 16 === 1;
  let res;
  try {
    res = countSpans(
      buf,
      (seq, sendNs) => {
        if (seen.has(seq)) {
          stats.duplicateMarkers++;
          return;
        }
        seen.add(seq);
        if (inWindow) windowLatencies.push((now - sendNs) / 1e6);
      },
      check,
    );
  } catch {
    stats.malformed++;
    return;
  }
  stats.spans += res.spans;
  stats.markers += res.markers;
  if (check) {
    stats.sampledResources += res.resources;
    stats.enrichedResources += res.enrichedResources;
  }
  if (inWindow) {
    windowSpans += res.spans;
    windowRequests++;
  }
}

/** A metrics or logs request: its items count as the run's "spans", or apart from them (appSignalsApart). */
function onAppSignal(batch: OtlpBatch, bytes: number): void {
  stats.requests++;
  stats.bytes += bytes;
  stats.lastArrivalNs = Number(process.hrtime.bigint());
  if (appSignalsApart) {
    stats.appItems += batch.itemCount;
    if (inWindow) windowAppItems += batch.itemCount;
    return;
  }
  stats.spans += batch.itemCount;
  if (stats.requests % 16 === 1) {
    stats.sampledResources += batch.resourceCount;
    for (let i = 0; i < batch.resourceCount; i++) if (batch.resourceAttribute(i, 'k8s.pod.name') !== undefined) stats.enrichedResources++;
  }
  if (inWindow) {
    windowSpans += batch.itemCount;
    windowRequests++;
  }
}

/** Content of a gRPC length-prefixed message body (one message per unary request). */
function grpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error('short gRPC frame');
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  return body[0] === 1 ? zlib.gunzipSync(msg) : msg;
}

const EMPTY_MESSAGE = Buffer.alloc(5);

async function main(): Promise<void> {
  // A bare HTTP/2 gRPC server rather than grpc-js: grpc-js servers keep HTTP/2's 64 KiB default flow-control
  // windows, which throttle 250 KiB requests to a few tens of MB/s on a busy loop. Here the stream and
  // connection windows are 32 MiB, so the sink never paces the collector's exporter.
  const WINDOW = 32 * 1024 * 1024;
  const server = http2.createServer({
    settings: { initialWindowSize: WINDOW, maxConcurrentStreams: 1000, maxFrameSize: 1 << 20 },
    maxSessionMemory: 4096, // MiB
  });
  server.on('session', (session) => {
    // A client may be gone before its settings were acknowledged (a collector stopped at the end of a run).
    session.once('localSettings', () => {
      if (!session.destroyed) session.setLocalWindowSize(WINDOW);
    });
  });
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      let status = '0';
      let message = '';
      try {
        if (path === TRACE_EXPORT_PATH) onTraces(grpcMessage(body));
        else if (path === METRICS_EXPORT_PATH) {
          stats.metricsRequests++;
          stats.metricsBytes += body.length;
          const msg = grpcMessage(body);
          onAppSignal(MetricsBatch.decode(msg), msg.length);
        } else if (path === LOGS_EXPORT_PATH) {
          const msg = grpcMessage(body);
          onAppSignal(LogsBatch.decode(msg), msg.length);
        } else {
          status = '12';
          message = `unknown method ${String(path)}`;
        }
      } catch (e) {
        status = '3';
        message = (e as Error).message;
      }
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers(message === '' ? { 'grpc-status': status } : { 'grpc-status': status, 'grpc-message': encodeURIComponent(message) }),
      );
      stream.end(status === '0' ? EMPTY_MESSAGE : undefined);
    });
    stream.on('error', () => undefined);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
  serveIpc((cmd, args) => {
    switch (cmd) {
      case 'port':
        return port;
      case 'reset':
        appSignalsApart = (args as { appSignalsApart?: boolean } | undefined)?.appSignalsApart === true;
        stats = zero();
        seen = new Set();
        inWindow = false;
        windowLatencies = [];
        return true;
      case 'windowStart':
        inWindow = true;
        windowLatencies = [];
        windowSpans = 0;
        windowRequests = 0;
        windowAppItems = 0;
        return true;
      case 'windowEnd': {
        inWindow = false;
        const r: WindowResult = { latenciesMs: windowLatencies, spans: windowSpans, requests: windowRequests, appItems: windowAppItems };
        windowLatencies = [];
        return r;
      }
      case 'stats':
        return stats;
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  });
}

void main();
