/**
 * routelens as a child process (`node bin/routelens.js run --config FILE`), for tests that kill it. Listen
 * ports are 0 in the config; the bound ports are read from the start-up log line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitFor } from './free-port';
import { parseLogs, repoRoot, startProcess, type ProcessHandle } from './process';

export interface RoutelensChild {
  proc: ProcessHandle;
  /** Bound ports by component: `otlp/grpc`, `otlp/http`, `routequery`… */
  endpoints: Record<string, number>;
  metricsText(): Promise<string>;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
}

/**
 * Start routelens on `yaml` (written to `configFile`) and wait until it logs that it is ready. By default with
 * `--workers 1`: one process that holds the pipeline, so killing it is a crash of the data path (with several
 * workers, killing the primary lets the workers shut down gracefully).
 */
export async function startRoutelensChild(
  configFile: string,
  yaml: string,
  opts: { nodeArgs?: string[]; name?: string; workers?: number } = {},
): Promise<RoutelensChild> {
  fs.writeFileSync(configFile, yaml);
  const root = repoRoot();
  const args = [...(opts.nodeArgs ?? []), path.join(root, 'bin/routelens.js'), 'run', '--config', configFile, '--workers', String(opts.workers ?? 1)];
  const proc = startProcess(process.execPath, args, { name: opts.name ?? 'routelens', cwd: root });
  const ready = await waitFor(
    async () => {
      if (!proc.running) throw new Error(`routelens exited early:\n${proc.output()}`);
      return parseLogs(proc.output()).find((l) => typeof l.msg === 'string' && l.msg.startsWith('Everything is ready'));
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'routelens to start' },
  ).catch((err: unknown) => {
    if (proc.running) void proc.kill9();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${proc.output()}`);
  });
  const endpoints = ready.endpoints as Record<string, number>;
  return {
    proc,
    endpoints,
    async metricsText() {
      const res = await fetch(`http://127.0.0.1:${endpoints.routequery}/metrics`);
      return res.text();
    },
    logs: () => parseLogs(proc.output()),
  };
}
