import { spawn, execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface StartProcessOptions {
  /** Extra environment; merged over process.env. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Short label used in error messages, e.g. "jaeger". */
  name: string;
  /** Max characters of combined stdout+stderr kept (the tail). Default 1 MiB. */
  maxOutputChars?: number;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all (e.g. ENOENT). */
  error?: Error;
}

export interface ProcessHandle {
  readonly name: string;
  readonly pid: number | undefined;
  /** Resolves (never rejects) when the process has exited or failed to spawn. */
  readonly exited: Promise<ProcessExit>;
  /** True until the process has exited. */
  readonly running: boolean;
  /** SIGTERM, then SIGKILL if still running after `graceMs` (default 5000). */
  stop(graceMs?: number): Promise<ProcessExit>;
  /**
   * SIGKILL and wait for the exit. By default also for the end of its output, which processes it started and
   * that outlive it (orphaned cluster workers) keep open; `{ output: false }` waits for the process alone, as a
   * supervisor does before restarting it.
   */
  kill9(opts?: { output?: boolean }): Promise<ProcessExit>;
  /** Captured stdout+stderr (interleaved as received; bounded, keeps the tail). */
  output(): string;
}

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // mocha runs with `exit: true`, which ends in process.exit(): 'exit' fires.
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      // If nobody else handles this signal, restore the default behaviour
      // (terminate) by re-raising it without our listener.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/**
 * Starts a long-running external process with captured output. It is killed
 * (SIGKILL) when this Node process exits, so a failed test run does not leave
 * servers behind.
 */
export function startProcess(cmd: string, args: readonly string[], opts: StartProcessOptions): ProcessHandle {
  installExitHooks();
  const maxChars = opts.maxOutputChars ?? 1 << 20;
  let buf = '';
  let dropped = false;
  const append = (chunk: Buffer | string): void => {
    buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (buf.length > maxChars) {
      buf = buf.slice(buf.length - maxChars);
      dropped = true;
    }
  };

  const child = spawn(cmd, [...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);

  let running = true;
  const processExited = new Promise<ProcessExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const exited = new Promise<ProcessExit>((resolve) => {
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      // 'error' without a following 'exit' happens when spawning fails.
      spawnError = err;
      if (child.pid === undefined) {
        running = false;
        live.delete(child);
        append(`[${opts.name}] failed to start ${cmd}: ${err.message}\n`);
        resolve({ code: null, signal: null, error: err });
      }
    });
    // 'close' (not 'exit'): all output has been read by then.
    child.once('close', (code, signal) => {
      running = false;
      live.delete(child);
      resolve(spawnError ? { code, signal, error: spawnError } : { code, signal });
    });
  });

  const kill9 = async (opts: { output?: boolean } = {}): Promise<ProcessExit> => {
    if (running) child.kill('SIGKILL');
    return opts.output === false && child.pid !== undefined ? processExited : exited;
  };

  const stop = async (graceMs = 5000): Promise<ProcessExit> => {
    if (!running) return exited;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), graceMs);
    });
    const res = await Promise.race([exited, timedOut]);
    if (timer) clearTimeout(timer);
    if (res === 'timeout') return kill9();
    return res;
  };

  return {
    name: opts.name,
    pid: child.pid,
    exited,
    get running() {
      return running;
    },
    stop,
    kill9,
    output: () => (dropped ? `[... earlier output dropped ...]\n${buf}` : buf),
  };
}

/** Pids of the live children of `pid` (Linux: read from /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === pid && state !== 'Z') out.push(Number(entry));
  }
  return out;
}

/** The repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'scripts'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no repository root above ${__dirname}`);
    dir = parent;
  }
}

const scriptResults = new Map<string, Promise<string>>();

/**
 * Runs `scripts/<script>` (bash) from the repo and returns the last line of
 * its stdout (the scripts print the binary's path last). Cached per process;
 * the scripts themselves return at once when their output is cached on disk.
 */
export function runSetupScript(script: string, timeoutMs = 30 * 60_000): Promise<string> {
  let p = scriptResults.get(script);
  if (!p) {
    p = new Promise<string>((resolve, reject) => {
      const file = path.join(repoRoot(), 'scripts', script);
      execFile('bash', [file], { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        const lines = stdout
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '');
        const last = lines[lines.length - 1];
        if (err || last === undefined) {
          const tail = stderr.split('\n').slice(-40).join('\n');
          reject(new Error(`scripts/${script} failed: ${err ? err.message : 'no output'}\n${tail}`));
          return;
        }
        resolve(last);
      });
    });
    // Don't cache failures: a later caller may retry.
    p.catch(() => scriptResults.delete(script));
    scriptResults.set(script, p);
  }
  return p;
}

/** The JSON log lines in a process's output (partial or non-JSON lines skipped). */
export function parseLogs(output: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a partial line */
    }
  }
  return out;
}

/** Run `routelens ARGS…` (bin/routelens.js) to completion; the exit status and both outputs. */
export function runRoutelensCli(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot(), 'bin/routelens.js'), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}
