/**
 * Test support for the Python example services in examples/python.
 *
 * - pythonBin(): the venv python made by scripts/setup-python.sh (run once per
 *   process; the first install takes minutes, later runs return at once).
 * - startPythonApp(): starts flask_app.py or fastapi_app.py on a free port of
 *   127.0.0.1 and waits until GET /healthz answers 200.
 * - runLoad(): runs examples/python/load.py and returns its JSON summary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

export type PythonAppKind = 'flask' | 'fastapi';
export type LoadRoute = 'users' | 'slow' | 'error' | 'call' | 'healthz' | 'notfound';

export interface PythonApp {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  readonly baseUrl: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, wait for the app to flush its spans and exit (SIGKILL after stopTimeoutMs). Idempotent. */
  stop(): Promise<void>;
  /** Everything the app wrote to stdout and stderr so far. */
  output(): string;
}

export interface StartOptions {
  /** How long to wait for /healthz (default 60 s). */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 30 s). */
  stopTimeoutMs?: number;
}

export interface LoadOptions {
  requestsPerRoute: number;
  /** Default (load.py's): users, slow, error, call. */
  routes?: readonly LoadRoute[];
  /** Server-side delay of /slow in ms (default 200). */
  slowMs?: number;
  /** Per-request timeout in seconds (default 30). */
  requestTimeoutS?: number;
}

export interface LoadRouteSummary {
  sent: number;
  /** HTTP status (as a string) -> count; "error" = no HTTP response. */
  statuses: Record<string, number>;
}

/** The JSON summary printed by load.py (keys as load.py writes them). */
export interface LoadSummary {
  base_url: string;
  requests_per_route: number;
  slow_ms: number;
  total: number;
  transport_errors: number;
  elapsed_s: number;
  routes: Partial<Record<LoadRoute, LoadRouteSummary>>;
}

const OUTPUT_LIMIT = 2 * 1024 * 1024;

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'scripts', 'setup-python.sh'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find scripts/setup-python.sh above ${start}`);
    dir = parent;
  }
}

/** The repository root (the directory holding scripts/setup-python.sh). */
export const repoRoot: string = findRepoRoot(__dirname);
export const examplesDir: string = path.join(repoRoot, 'examples', 'python');

// Children still running when the test process exits are killed.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > OUTPUT_LIMIT) stderr = stderr.slice(-OUTPUT_LIMIT);
    });
    child.on('error', (err) => {
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? '';
}

let pythonBinPromise: Promise<string> | undefined;

/**
 * Path of the venv python with examples/python/requirements.txt installed.
 * Runs scripts/setup-python.sh once per process (memoised; retried after a failure).
 */
export function pythonBin(): Promise<string> {
  if (!pythonBinPromise) {
    const p = (async () => {
      const res = await run('bash', [path.join(repoRoot, 'scripts', 'setup-python.sh')], process.env);
      const bin = lastLine(res.stdout);
      if (res.code !== 0 || !bin || !fs.existsSync(bin)) {
        throw new Error(`scripts/setup-python.sh failed (code ${res.code}, signal ${res.signal}):\n${res.stderr.slice(-8000)}`);
      }
      return bin;
    })();
    pythonBinPromise = p;
    p.catch(() => {
      if (pythonBinPromise === p) pythonBinPromise = undefined;
    });
  }
  return pythonBinPromise;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (bind :0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('unexpected server address'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** GET url without keep-alive; resolves with the status code (rejects on transport errors). */
export function httpGetStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The environment for a child python: ours without OTEL_* (so tests are hermetic), then defaults, then `env`. */
function childEnv(env: Record<string, string>, port: number): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('OTEL_') && v !== undefined) out[k] = v;
  }
  // Readiness polling would otherwise add one server span per probe.
  out['OTEL_PYTHON_EXCLUDED_URLS'] = 'healthz';
  out['PYTHONUNBUFFERED'] = '1';
  out['PYTHONDONTWRITEBYTECODE'] = '1';
  Object.assign(out, env);
  out['PORT'] = String(port);
  return out;
}

interface Started {
  app: PythonApp;
  child: ChildProcess;
}

/** What to run: the command line for a port, and a name for messages. */
interface Launch {
  name: string;
  argv(port: number): [string, ...string[]];
}

async function startOnce(launch: Launch, env: Record<string, string>, opts: Required<StartOptions>): Promise<Started> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const [file, ...args] = launch.argv(port);
  const child = spawn(file, args, {
    cwd: examplesDir,
    env: childEnv(env, port),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  let out = '';
  const append = (d: string) => {
    out += d;
    if (out.length > OUTPUT_LIMIT) out = out.slice(-OUTPUT_LIMIT);
  };
  child.stdout?.setEncoding('utf8').on('data', append);
  child.stderr?.setEncoding('utf8').on('data', append);

  let exited = false;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = (async () => {
        if (exited) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          if (!exited) {
            append(`\n[python.ts] no exit ${opts.stopTimeoutMs} ms after SIGTERM: SIGKILL\n`);
            child.kill('SIGKILL');
          }
        }, opts.stopTimeoutMs);
        await exitPromise;
        clearTimeout(timer);
      })();
    }
    return stopping;
  };

  const app: PythonApp = {
    baseUrl,
    port,
    pid: child.pid ?? -1,
    stop,
    output: () => out,
  };

  const deadline = Date.now() + opts.readyTimeoutMs;
  for (;;) {
    // Another process took the port between our probe and the app's bind. The app may not exit then (its SDK's
    // threads keep it alive): stop it, and let startWithRetry start it again on another port.
    if (!exited && /address already in use|errno 98/i.test(out)) {
      await stop();
      throw Object.assign(new Error(`${launch.name}: port ${port} taken before it bound:\n${out.slice(-8000)}`), { output: out });
    }
    if (exited) {
      const how = spawnError ? `failed to spawn: ${spawnError.message}` : `exited with ${child.exitCode ?? child.signalCode}`;
      throw Object.assign(new Error(`${launch.name} ${how} before /healthz answered:\n${out.slice(-8000)}`), {
        output: out,
      });
    }
    try {
      if ((await httpGetStatus(`${baseUrl}/healthz`, 1000)) === 200) return { app, child };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${launch.name} not healthy after ${opts.readyTimeoutMs} ms:\n${out.slice(-8000)}`);
    }
    await sleep(100);
  }
}

/**
 * Start examples/python/<app>_app.py with the venv python on a free 127.0.0.1 port.
 * `env` is applied over this process's environment with every OTEL_* variable removed,
 * over these defaults: OTEL_PYTHON_EXCLUDED_URLS=healthz (no spans for readiness probes;
 * pass '' to trace /healthz), PYTHONUNBUFFERED=1. PORT is always set by this function.
 * Resolves once GET /healthz returns 200.
 */
export async function startPythonApp(app: PythonAppKind, env: Record<string, string>, options: StartOptions = {}): Promise<PythonApp> {
  const py = await pythonBin();
  const script = path.join(examplesDir, `${app}_app.py`);
  return startWithRetry({ name: `${app}_app.py`, argv: () => [py, script] }, env, options);
}

export interface ZeroCodeOptions extends StartOptions {
  /** The app under examples/python to run (plain python only). @default 'runtime_app.py' */
  script?: string;
  /**
   * Serve with gunicorn and this many worker processes instead of the app's own threaded server, with
   * test/python-e2e/pyhooks/gunicorn_fork_safe.py as its config: a worker forked while the arbiter's metrics SDK
   * collects would never export (the SDK's locks are inherited held); the config makes each fork wait for that.
   */
  gunicornWorkers?: number;
  /**
   * Record every request the app's OTLP exporters send, and whether it was acknowledged, under this directory
   * (test/python-e2e/pyhooks/export_log.py; read with readExportLog). Plain python only. The app is then started
   * as `python export_log.py`, which initializes the zero-code instrumentation as opentelemetry-instrument does,
   * once the recording is in place (so the SDK's first exports are recorded too).
   */
  exportLogDir?: string;
}

export interface ExportLogEntry {
  ok: boolean;
  /** The encoded Export*ServiceRequest. */
  request: Buffer;
}

/** What a zero-code app started with `exportLogDir` exported of `signal`, in order. */
export function readExportLog(dir: string, signal: 'traces' | 'metrics' | 'logs'): ExportLogEntry[] {
  const file = path.join(dir, `${signal}.jsonl`);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const e = JSON.parse(l) as { ok: boolean; request: string };
      return { ok: e.ok, request: Buffer.from(e.request, 'base64') };
    });
}

/**
 * Start examples/python/runtime_app.py the zero-code way: `opentelemetry-instrument python runtime_app.py` (or
 * `opentelemetry-instrument gunicorn -c gunicorn_fork_safe.py --workers N runtime_app:app`) from the venv, so the distro configures
 * traces, metrics and logs from OTEL_* variables alone. The environment is startPythonApp's, with the venv's bin
 * first on PATH (opentelemetry-instrument runs the command it is given from PATH). Under plain python,
 * `pid` is the app's process (opentelemetry-instrument replaces itself with it).
 */
export async function startZeroCodeApp(env: Record<string, string>, options: ZeroCodeOptions = {}): Promise<PythonApp> {
  const py = await pythonBin();
  const bin = path.dirname(py);
  const instrument = path.join(bin, 'opentelemetry-instrument');
  const workers = options.gunicornWorkers;
  const hook = path.join(repoRoot, 'test', 'python-e2e', 'pyhooks', 'export_log.py');
  const forkSafe = path.join(repoRoot, 'test', 'python-e2e', 'pyhooks', 'gunicorn_fork_safe.py');
  const logged = options.exportLogDir;
  const script = options.script ?? 'runtime_app.py';
  const launch: Launch =
    workers === undefined
      ? logged === undefined
        ? { name: `opentelemetry-instrument python ${script}`, argv: () => [instrument, 'python', script] }
        : // export_log.py does what opentelemetry-instrument does (initialize() from its sitecustomize), its recording installed first.
          { name: `python export_log.py ${script} (zero-code, exports recorded)`, argv: () => [py, hook, script] }
      : {
          name: `opentelemetry-instrument gunicorn -c gunicorn_fork_safe.py --workers ${workers} runtime_app:app`,
          argv: (port) => [
            instrument,
            'gunicorn',
            '-c',
            forkSafe,
            '--workers',
            String(workers),
            '--bind',
            `127.0.0.1:${port}`,
            '--no-control-socket',
            'runtime_app:app',
          ],
        };
  const hookEnv: Record<string, string> = logged === undefined ? {} : { ROUTELENS_EXPORT_LOG_DIR: logged };
  return startWithRetry(launch, { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, ...hookEnv, ...env }, options);
}

async function startWithRetry(launch: Launch, env: Record<string, string>, options: StartOptions): Promise<PythonApp> {
  const opts: Required<StartOptions> = {
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
  };
  let lastError: unknown;
  // The free port can be taken between our probe and the app's bind: retry then.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return (await startOnce(launch, env, opts)).app;
    } catch (err) {
      lastError = err;
      const output = (err as { output?: unknown }).output;
      if (typeof output !== 'string' || !/address already in use|errno 98/i.test(output)) throw err;
    }
  }
  throw lastError;
}

function isLoadSummary(v: unknown): v is LoadSummary {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o['total'] === 'number' && typeof o['routes'] === 'object' && o['routes'] !== null;
}

/**
 * Run examples/python/load.py against baseUrl and return its JSON summary (its last stdout line).
 * Resolves even when some requests got no response (load.py exits 1 then): check
 * `transport_errors` and the per-route statuses.
 */
export async function runLoad(baseUrl: string, opts: LoadOptions): Promise<LoadSummary> {
  const py = await pythonBin();
  const args = [path.join(examplesDir, 'load.py'), '--base-url', baseUrl, '--requests-per-route', String(opts.requestsPerRoute)];
  if (opts.routes) args.push('--routes', opts.routes.join(','));
  if (opts.slowMs !== undefined) args.push('--slow-ms', String(opts.slowMs));
  if (opts.requestTimeoutS !== undefined) args.push('--timeout', String(opts.requestTimeoutS));

  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  const res = await run(py, args, env);
  const line = lastLine(res.stdout);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  if ((res.code !== 0 && res.code !== 1) || !isLoadSummary(parsed)) {
    throw new Error(`load.py failed (code ${res.code}, signal ${res.signal}):\nstdout:\n${res.stdout.slice(-4000)}\nstderr:\n${res.stderr.slice(-4000)}`);
  }
  return parsed;
}
