import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from './free-port';
import { runSetupScript, startProcess } from './process';

export interface StartPrometheusOptions {
  /** host:port targets scraped at /metrics (job "routelens"). */
  scrapeTargets: string[];
  /** Scrape (and rule evaluation) interval in seconds; default 1. */
  scrapeIntervalS?: number;
  /** Also scrape Prometheus' own /metrics (job "prometheus"). */
  scrapeSelf?: boolean;
  /**
   * Also wait until every target has been scraped once (up or down). Prometheus
   * 2.x applies new targets only every 5 s, so the first scrape lands ~5 s
   * after start. Default false.
   */
  waitForFirstScrape?: boolean;
  /** Readiness timeout; default 60 s. */
  startTimeoutMs?: number;
}

export interface PrometheusInstance {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /**
   * Instant query via /api/v1/query; returns the response's `data`
   * (`{ resultType, result }`). Throws if Prometheus reports an error.
   */
  query(promql: string): Promise<any>;
  output(): string;
  stop(): Promise<void>;
}

/** Path of the prometheus binary: $PROMETHEUS_BIN, else scripts/install-prometheus.sh. */
export async function prometheusBinary(): Promise<string> {
  const env = process.env['PROMETHEUS_BIN'];
  if (env) return env;
  return runSetupScript('install-prometheus.sh');
}

/**
 * Starts a throwaway Prometheus (temp config + temp TSDB dir, free loopback
 * port) and waits for /-/ready.
 */
export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusInstance> {
  const bin = await prometheusBinary();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const interval = `${opts.scrapeIntervalS ?? 1}s`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  const dataDir = path.join(dir, 'data');

  const jobs: Array<{ name: string; targets: string[] }> = [];
  if (opts.scrapeTargets.length > 0) jobs.push({ name: 'routelens', targets: opts.scrapeTargets });
  if (opts.scrapeSelf) jobs.push({ name: 'prometheus', targets: [`127.0.0.1:${port}`] });
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    'scrape_configs:',
    ...jobs.flatMap((j) => [`  - job_name: ${JSON.stringify(j.name)}`, '    static_configs:', `      - targets: ${JSON.stringify(j.targets)}`]),
    '',
  ].join('\n');
  fs.writeFileSync(configFile, config);

  const proc = startProcess(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
      '--log.level=warn',
    ],
    { name: 'prometheus', cwd: dir },
  );

  const cleanup = async (): Promise<void> => {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`prometheus exited early: ${JSON.stringify(await proc.exited)}`);
        const res = await fetch(`${url}/-/ready`);
        await res.arrayBuffer();
        return res.status === 200 ? true : undefined;
      },
      { timeoutMs: opts.startTimeoutMs ?? 60_000, intervalMs: 200, what: `prometheus ready (${url}/-/ready)` },
    );
    if (opts.waitForFirstScrape) {
      const expected = jobs.reduce((n, j) => n + j.targets.length, 0);
      await waitFor(
        async () => {
          const res = await fetch(`${url}/api/v1/targets?state=active`);
          const body = (await res.json()) as { data?: { activeTargets?: Array<{ health: string }> } };
          const targets = body.data?.activeTargets ?? [];
          return targets.length >= expected && targets.every((t) => t.health !== 'unknown') ? true : undefined;
        },
        { timeoutMs: opts.startTimeoutMs ?? 60_000, intervalMs: 250, what: `prometheus first scrape of ${expected} target(s)` },
      );
    }
  } catch (e: unknown) {
    const out = proc.output().slice(-8000);
    await cleanup();
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg}\n--- prometheus output (tail) ---\n${out}`, { cause: e });
  }

  return {
    url,
    async query(promql: string) {
      const u = new URL('/api/v1/query', url);
      u.searchParams.set('query', promql);
      const res = await fetch(u);
      const body = await res.text();
      let parsed: { status?: string; data?: unknown; error?: string; errorType?: string };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        throw new Error(`prometheus query ${promql} -> ${res.status}: ${body.slice(0, 500)}`);
      }
      if (res.status !== 200 || parsed.status !== 'success') {
        throw new Error(`prometheus query ${promql} -> ${res.status} ${parsed.errorType ?? ''}: ${parsed.error ?? body.slice(0, 500)}`);
      }
      return parsed.data;
    },
    output: () => proc.output(),
    stop: cleanup,
  };
}
