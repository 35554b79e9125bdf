/**
 * telemetrygen as the benchmark's second load source: built by scripts/build-telemetrygen.sh (the Collector's
 * release, from the Go module proxy), started as one or more processes on the harness CPU for the length of a run.
 * It reports nothing the harness can read while it runs, so a run's figures come from the sink (spans delivered,
 * requests) and from the collector's own count of accepted spans (its /metrics).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { telemetrygenPlan, type Scenario } from './scenarios';

export function buildTelemetrygen(root: string): string {
  const r = spawnSync('bash', [path.join(root, 'scripts', 'build-telemetrygen.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('scripts/build-telemetrygen.sh failed');
  const bin = r.stdout.trim().split('\n').pop() ?? '';
  if (!fs.existsSync(bin)) throw new Error(`build-telemetrygen.sh printed ${bin}, which does not exist`);
  return bin;
}

/** Starts `sc`'s telemetrygen processes against `target` (host:port); `spawn` pins and tracks them. */
export function startTelemetrygen(
  bin: string,
  sc: Scenario,
  target: string,
  spawn: (cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string) => ChildProcess,
  log: string,
): ChildProcess[] {
  const plan = telemetrygenPlan(sc);
  // One P each: the processes share the harness CPU with the sink.
  const env = { ...process.env, GOMAXPROCS: '1' };
  return Array.from({ length: plan.processes }, () => spawn(bin, plan.args(target), env, log));
}

/** Stops telemetrygen processes at once (what they still hold is not sent, and not counted as sent). */
export async function stopTelemetrygen(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/**
 * The sum of every `otelcol_receiver_accepted_spans` sample in a Prometheus text exposition (routelens renders the
 * counter with the text format's `_total` suffix, the Collector 0.161 without).
 */
export function acceptedSpansOf(metricsText: string): number | null {
  let total = 0;
  let found = false;
  for (const line of metricsText.split('\n')) {
    if (!/^otelcol_receiver_accepted_spans(?:_total)?[{ ]/.test(line)) continue;
    // name{labels} value [timestamp]
    const close = line.lastIndexOf('}');
    const v = Number(
      line
        .slice(close >= 0 ? close + 1 : line.indexOf(' '))
        .trim()
        .split(/\s+/)[0],
    );
    if (Number.isFinite(v)) {
      total += v;
      found = true;
    }
  }
  return found ? total : null;
}
