import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts, waitFor } from './free-port';
import { runSetupScript, startProcess, type ProcessHandle } from './process';

export interface StartJaegerOptions {
  /**
   * Base URL of a Prometheus holding span-metrics (e.g. "http://127.0.0.1:9090").
   * When set, Jaeger's metrics storage is Prometheus, so /api/metrics/* (the
   * Monitor tab, "SPM") works.
   */
  prometheusUrl?: string;
  /**
   * SPM metric names. Defaults match the collector's spanmetrics connector
   * scraped through its prometheus exporter: namespace "traces_span_metrics",
   * unit ms, i.e. `traces_span_metrics_calls_total` and
   * `traces_span_metrics_duration_milliseconds_bucket` (normalize = true: Jaeger
   * adds the `_total` and `_milliseconds` suffixes to the names it queries).
   */
  spm?: { metricNamespace?: string; latencyUnit?: 'ms' | 's'; normalize?: boolean };
  /** Readiness timeout per start; default 60 s (not counting the build). */
  startTimeoutMs?: number;
}

export interface JaegerInstance {
  /** host:port of the OTLP/gRPC receiver. */
  otlpGrpcEndpoint: string;
  /** Base URL of the OTLP/HTTP receiver (POST `${otlpHttpUrl}/v1/traces`). */
  otlpHttpUrl: string;
  /** Base URL of the query service (HTTP API and UI). */
  queryUrl: string;
  /** Captured Jaeger output (current run). */
  output(): string;
  stop(): Promise<void>;
  /** Stops and starts again on the same ports; in-memory traces are lost. */
  restart(): Promise<void>;
}

/** Path of the Jaeger v2 binary: $JAEGER_BIN, else built/cached by scripts/build-jaeger.sh. */
export async function jaegerBinary(): Promise<string> {
  const env = process.env['JAEGER_BIN'];
  if (env) return env;
  return runSetupScript('build-jaeger.sh');
}

function jaegerConfig(p: { grpc: number; http: number; query: number; queryGrpc: number; opts: StartJaegerOptions }): string {
  const spm = p.opts.spm ?? {};
  const withMetrics = p.opts.prometheusUrl !== undefined;
  const lines = [
    'service:',
    '  extensions: [jaeger_storage, jaeger_query]',
    '  pipelines:',
    '    traces:',
    '      receivers: [otlp]',
    '      processors: [batch]',
    '      exporters: [jaeger_storage_exporter]',
    '  telemetry:',
    // No internal-metrics server: its default port (8888) would collide
    // between concurrent instances.
    '    metrics:',
    '      level: none',
    '    logs:',
    '      level: info',
    '',
    'extensions:',
    '  jaeger_query:',
    // Defaults to true in v2: Jaeger then exports its own query spans over
    // OTLP/gRPC to localhost:4317 (i.e. possibly into the system under test)
    // and its shutdown stalls ~5 s retrying that export.
    '    enable_tracing: false',
    '    storage:',
    '      traces: mem',
    ...(withMetrics ? ['      metrics: prom'] : []),
    '    http:',
    `      endpoint: 127.0.0.1:${p.query}`,
    '    grpc:',
    `      endpoint: 127.0.0.1:${p.queryGrpc}`,
    '  jaeger_storage:',
    '    backends:',
    '      mem:',
    '        memory:',
    '          max_traces: 100000',
    ...(withMetrics
      ? [
          '    metric_backends:',
          '      prom:',
          '        prometheus:',
          `          endpoint: ${JSON.stringify(p.opts.prometheusUrl)}`,
          `          metric_namespace: ${JSON.stringify(spm.metricNamespace ?? 'traces_span_metrics')}`,
          `          latency_unit: ${spm.latencyUnit ?? 'ms'}`,
          `          normalize_calls: ${spm.normalize ?? true}`,
          `          normalize_duration: ${spm.normalize ?? true}`,
        ]
      : []),
    '',
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      grpc:',
    `        endpoint: 127.0.0.1:${p.grpc}`,
    '      http:',
    `        endpoint: 127.0.0.1:${p.http}`,
    '',
    'processors:',
    '  batch:',
    '    timeout: 100ms',
    '',
    'exporters:',
    '  jaeger_storage_exporter:',
    '    trace_storage: mem',
    '',
  ];
  return lines.join('\n');
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

/**
 * Starts a Jaeger v2 all-in-one (memory storage) on free loopback ports and
 * waits until the query API answers and both OTLP receivers accept
 * connections. Builds the binary on first use (minutes).
 */
export async function startJaeger(opts: StartJaegerOptions = {}): Promise<JaegerInstance> {
  const bin = await jaegerBinary();
  const [grpc, http, query, queryGrpc] = await freePorts(4);
  if (grpc === undefined || http === undefined || query === undefined || queryGrpc === undefined) {
    throw new Error('freePorts returned too few ports');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-jaeger-'));
  const configFile = path.join(dir, 'config.yaml');
  fs.writeFileSync(configFile, jaegerConfig({ grpc, http, query, queryGrpc, opts }));

  const queryUrl = `http://127.0.0.1:${query}`;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let proc: ProcessHandle | undefined;

  const start = async (): Promise<void> => {
    const p = startProcess(bin, [`--config=file:${configFile}`], { name: 'jaeger', cwd: dir });
    proc = p;
    try {
      await waitFor(
        async () => {
          if (!p.running) {
            throw new Error(`jaeger exited early: ${JSON.stringify(await p.exited)}`);
          }
          const res = await fetch(`${queryUrl}/api/services`);
          if (res.status !== 200) return undefined;
          await res.arrayBuffer();
          // Extensions (query) start before pipelines (receivers).
          return (await tcpOpen(grpc)) && (await tcpOpen(http)) ? true : undefined;
        },
        { timeoutMs, intervalMs: 200, what: `jaeger ready (${queryUrl}/api/services + OTLP ports)` },
      );
    } catch (e: unknown) {
      await p.kill9();
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`${msg}\n--- jaeger output (tail) ---\n${p.output().slice(-8000)}`, { cause: e });
    }
  };

  const stop = async (): Promise<void> => {
    if (proc) await proc.stop();
  };

  await start();
  return {
    otlpGrpcEndpoint: `127.0.0.1:${grpc}`,
    otlpHttpUrl: `http://127.0.0.1:${http}`,
    queryUrl,
    output: () => proc?.output() ?? '',
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      await start();
    },
  };
}

export interface JaegerKeyValue {
  key: string;
  type: string;
  value: unknown;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: string; traceID: string; spanID: string }>;
  /** Unix µs. */
  startTime: number;
  /** µs. */
  duration: number;
  tags: JaegerKeyValue[];
  processID: string;
  warnings: string[] | null;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: JaegerKeyValue[] }>;
}

export interface JaegerTracesResponse {
  data: JaegerTrace[] | null;
  total: number;
  errors: unknown;
}

export interface JaegerTracesQuery {
  /** Search window ending now; default 1 h. Sent as `lookback` and as explicit `start`/`end` (µs). */
  lookbackMs?: number;
  operation?: string;
  /** Span/resource tag filter, e.g. { "http.route": "/users/{id}" }. */
  tags?: Record<string, string>;
}

/**
 * GET /api/traces?service=…&limit=…&lookback=1h (Jaeger's internal JSON API).
 * The API itself ignores `lookback` (a UI parameter) and defaults to a 2-day
 * window, so the window is also sent as `start`/`end` in Unix µs.
 */
export async function jaegerTraces(queryUrl: string, service: string, limit = 100, query: JaegerTracesQuery = {}): Promise<JaegerTracesResponse> {
  const lookbackMs = query.lookbackMs ?? 3_600_000;
  const nowMs = Date.now();
  const u = new URL('/api/traces', queryUrl);
  u.searchParams.set('service', service);
  u.searchParams.set('limit', String(limit));
  u.searchParams.set('lookback', lookbackMs === 3_600_000 ? '1h' : `${lookbackMs}ms`);
  u.searchParams.set('start', String((nowMs - lookbackMs) * 1000));
  // A little slack for spans stamped slightly in the future.
  u.searchParams.set('end', String((nowMs + 60_000) * 1000));
  if (query.operation !== undefined) u.searchParams.set('operation', query.operation);
  if (query.tags !== undefined) u.searchParams.set('tags', JSON.stringify(query.tags));
  const res = await fetch(u);
  const body = await res.text();
  if (res.status !== 200) {
    throw new Error(`GET ${u.toString()} -> ${res.status}: ${body.slice(0, 500)}`);
  }
  return JSON.parse(body) as JaegerTracesResponse;
}

/** GET /api/services → list of service names. */
export async function jaegerServices(queryUrl: string): Promise<string[]> {
  const res = await fetch(new URL('/api/services', queryUrl));
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/services -> ${res.status}: ${body.slice(0, 500)}`);
  const parsed = JSON.parse(body) as { data: string[] | null };
  return parsed.data ?? [];
}
