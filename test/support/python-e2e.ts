/**
 * Helpers of the Python → routelens → Jaeger end-to-end tests:
 *
 * - startRoutelensChild(): routelens as a real child process (`node bin/routelens.js run --config FILE`), as a
 *   user runs it; its JSON log lines on stderr are parsed and kept, and the bound ports are read from the
 *   start-up line (so every endpoint can use port 0).
 * - spanCounter(): a file the test hook `pyhooks/sitecustomize.py` keeps up to date with what a Python app's
 *   span exporter exported (acknowledged or failed), and the environment that turns the hook on.
 * - jaegerSpans(): every span Jaeger's query API holds for a service, flattened with its process tags.
 * - cli(): the routelens CLI without blocking the event loop.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts, waitFor } from './free-port';
import { jaegerTraces, type JaegerKeyValue } from './jaeger';
import { repoRoot } from './python';

export { repoRoot };

export type LogLine = Record<string, unknown> & { level?: string; msg?: string };

export interface RoutelensChild {
  readonly pid: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Base URL of the routequery extension (query API, /metrics, /healthz). */
  readonly queryUrl: string;
  /** JSON log lines read from stderr so far. */
  logs(): LogLine[];
  /** Raw stderr and stdout (for failure messages). */
  stderr(): string;
  stdout(): string;
  /** Poll the logs until one line satisfies `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  metricsText(): Promise<string>;
  /** SIGTERM (drains queues) and wait; SIGKILL after `graceMs`. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface ChildPorts {
  grpc: number;
  http: number;
  query: number;
}

export interface StartChildOptions {
  /** The config: a file, or YAML text written to a temp file. `ports` are passed to it. */
  config: { file: string } | ((ports: ChildPorts) => string);
  /** Extra environment, given the ports (for a config that reads its addresses from the environment). */
  env?: (ports: ChildPorts) => NodeJS.ProcessEnv;
  /**
   * `--workers N`. When absent, routelens picks as it does for a user: one worker per CPU (ROUTELENS_WORKERS,
   * which test/setup.ts sets for in-process tests, is not passed on).
   */
  workers?: number;
  readyTimeoutMs?: number;
}

/**
 * Start routelens as a child process. Its receivers and query API get free 127.0.0.1 ports (chosen here, as a
 * user would write them in the config; with several workers the start-up line does not list receiver ports).
 * Resolves once the "Everything is ready" line is logged; retries with other ports if one was taken meanwhile.
 */
export async function startRoutelensChild(opts: StartChildOptions): Promise<RoutelensChild> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [grpc, http, query] = await freePorts(3);
    const ports: ChildPorts = { grpc: grpc as number, http: http as number, query: query as number };
    try {
      return await startOnce(opts, ports);
    } catch (err) {
      lastError = err;
      if (!/cannot listen|EADDRINUSE/.test(String((err as Error).message))) throw err;
    }
  }
  throw lastError;
}

async function startOnce(opts: StartChildOptions, ports: ChildPorts): Promise<RoutelensChild> {
  let configFile: string;
  if ('file' in opts.config) configFile = opts.config.file;
  else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-py-e2e-'));
    configFile = path.join(dir, 'otel-config.yaml');
    fs.writeFileSync(configFile, opts.config(ports));
  }
  const args = [path.join(repoRoot, 'bin', 'routelens.js'), 'run', '--config', configFile];
  if (opts.workers !== undefined) args.push('--workers', String(opts.workers));
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.env?.(ports) ?? {}) };
  if (opts.workers === undefined) delete env['ROUTELENS_WORKERS'];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const logs: LogLine[] = [];
  let stderr = '';
  let stdout = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 4 << 20) stderr = stderr.slice(-(2 << 20));
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 'unparsed', msg: line });
      }
    }
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      live.delete(child);
      exitCode = code;
      resolve(code);
    });
  });

  const waitForLog = async (pred: (l: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs.find(pred);
      if (hit !== undefined) return hit;
      if (exitCode !== undefined) throw new Error(`routelens exited (code ${exitCode}) before logging ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for routelens to log ${what}`);
      await sleep(50);
    }
  };

  try {
    await waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('Everything is ready'), 'start-up line', opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(err as Error).message}\n--- routelens stderr ---\n${stderr.slice(-8000)}`, { cause: err });
  }
  const queryUrl = `http://127.0.0.1:${ports.query}`;
  return {
    pid: child.pid ?? -1,
    grpcPort: ports.grpc,
    httpPort: ports.http,
    queryUrl,
    logs: () => logs,
    stderr: () => stderr,
    stdout: () => stdout,
    waitForLog,
    async metricsText() {
      const res = await fetch(`${queryUrl}/metrics`);
      if (res.status !== 200) throw new Error(`GET /metrics -> ${res.status}`);
      return res.text();
    },
    async stop(graceMs = 15_000) {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

// ---- Python exporter span counts (pyhooks/sitecustomize.py) ---------------------------------------------------

export interface ExportCounts {
  ok_spans: number;
  ok_calls: number;
  failed_spans: number;
  failed_calls: number;
}

export interface SpanCounter {
  /** Environment for startPythonApp: puts the hook on PYTHONPATH and names the file. */
  env: Record<string, string>;
  read(): ExportCounts;
}

const pyhooks = path.join(repoRoot, 'test', 'python-e2e', 'pyhooks');
let counterSeq = 0;

export function spanCounter(dir: string): SpanCounter {
  const file = path.join(dir, `spans-${process.pid}-${++counterSeq}.json`);
  return {
    env: { PYTHONPATH: pyhooks, ROUTELENS_SPAN_COUNT_FILE: file },
    read() {
      if (!fs.existsSync(file)) return { ok_spans: 0, ok_calls: 0, failed_spans: 0, failed_calls: 0 };
      return JSON.parse(fs.readFileSync(file, 'utf8')) as ExportCounts;
    },
  };
}

// ---- Jaeger ---------------------------------------------------------------------------------------------------

export interface FlatSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  /** µs */
  duration: number;
  tags: Record<string, unknown>;
  serviceName: string;
  process: Record<string, unknown>;
}

function tagMap(tags: readonly JaegerKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const t of tags ?? []) out[t.key] = t.value;
  return out;
}

/** Every span of `service` that Jaeger's query API returns (all its traces, spans of other services left out). */
export async function jaegerSpans(queryUrl: string, service: string): Promise<FlatSpan[]> {
  const res = await jaegerTraces(queryUrl, service, 5000);
  const out: FlatSpan[] = [];
  for (const t of res.data ?? []) {
    for (const s of t.spans) {
      const p = t.processes[s.processID];
      if (p === undefined || p.serviceName !== service) continue;
      out.push({
        traceID: s.traceID,
        spanID: s.spanID,
        operationName: s.operationName,
        duration: s.duration,
        tags: tagMap(s.tags),
        serviceName: p.serviceName,
        process: tagMap(p.tags),
      });
    }
  }
  return out;
}

/** SERVER spans per `http.route` (spans without one under `(none)`). */
export function serverSpansPerRoute(spans: readonly FlatSpan[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of spans) {
    if (s.tags['span.kind'] !== 'server') continue;
    const route = typeof s.tags['http.route'] === 'string' ? (s.tags['http.route'] as string) : '(none)';
    out[route] = (out[route] ?? 0) + 1;
  }
  return out;
}

/** Poll Jaeger until `service` has at least `expected` spans; callers then compare exact counts. */
export async function waitForJaegerSpans(queryUrl: string, service: string, expected: number, timeoutMs = 30_000): Promise<FlatSpan[]> {
  let last: FlatSpan[] = [];
  try {
    return await waitFor(
      async () => {
        last = await jaegerSpans(queryUrl, service);
        return last.length >= expected ? last : undefined;
      },
      { timeoutMs, intervalMs: 250, what: `${expected} spans of ${service} in Jaeger` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (have ${last.length}: ${JSON.stringify(serverSpansPerRoute(last))})`, { cause: err });
  }
}

// ---- CLI and metrics ------------------------------------------------------------------------------------------

export function cli(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'routelens.js'), ...args], { encoding: 'utf8', cwd: repoRoot }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

export { metricValue } from './routelens';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
