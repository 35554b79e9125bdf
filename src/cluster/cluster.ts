/**
 * `routelens run --workers N`: one process per core. Node runs JavaScript on one thread, so to use several cores
 * routelens forks N workers that each run the whole pipeline (receivers, processors, exporters with their own
 * queues) on the shared listening sockets (the primary hands out connections round-robin). The primary serves the
 * routequery extension: /api/v1 answers from the workers' route sketches merged exactly (same scale, absolute
 * slot periods), /metrics sums the workers' counters, gauges and histogram buckets and computes summary quantiles
 * from the merged sketches.
 *
 * Per worker: its own Kubernetes watches, its own exporter connections and queues, for file_storage its own
 * sub-directory `worker-<i>` (so restart with the same --workers to resume persisted queues), and 1/N of each
 * memory_limiter limit.
 */
import cluster, { type Worker } from 'node:cluster';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Component, ComponentKind, Host } from '../core/component';
import type { ServiceConfig } from '../config/load';
import type { RouteLatencyConfig } from '../connectors/routelatency/config';
import { handleQuery } from '../connectors/routelatency/query';
import { RouteMetricsRecorder, SUMMARY_QUANTILES, formatWindow } from '../connectors/routelatency/metrics';
import { RouteStore, routeStoreOptions, type RouteSnapshot } from '../connectors/routelatency/store';
import { Service } from '../pipeline/service';
import { startHeapTrim } from '../core/heap-trim';
import { registerProcessMetrics } from '../telemetry/process-metrics';
import { Telemetry, labelKey, type MetricFamily, type MetricSample } from '../telemetry/telemetry';

/**
 * The V8 flags routelens is meant to run with (bin/routelens.js's shebang, `npm start`, the cluster workers);
 * measured in BENCHMARKS.md. They cannot be set at run time (V8 aborts) and NODE_OPTIONS refuses them.
 * - `--single-threaded-gc`: one routelens process is sized for one core; V8's parallel and concurrent GC helper
 *   threads would compete with the pipeline for it (≈ 15 % more CPU per span, ≈ 20 % less throughput).
 * - `--initial-heap-size=8` (MB): the old generation's first collection limit. Objects alive at a scavenge
 *   (in-flight requests, node:http2's per-request state) are promoted and die there; the limit decides how much
 *   of that garbage waits for a full collection. Measured with `--trace-gc` (bench, 40–90 s runs): at 64 the old
 *   generation swung 11 → 45 MB (RSS 137–149 MiB at 50k spans/s and saturation), without the flag RSS was
 *   103–111 MiB, at 8 it is 82–105 MiB; full collections (≈ 15 ms for the ≈ 11 MB live heap) cost ≈ 5 % of a
 *   core at saturation instead of 1–3 %, nothing measurable at 10k–50k spans/s.
 * - `--max-semi-space-size=1` (MB; V8's default grows to 16): the chunks node:http2 delivers a request in are
 *   malloc'ed buffers freed only when a scavenge finds them dead. With a 16 MB young generation scavenges came
 *   every ≈ 1.4 s at 50k spans/s, and ≈ 35 MB of dead chunks waited for each: RSS −30 to −35 MiB at 10k, 50k
 *   spans/s and saturation. 1 MB rather than 2 since the exporter stopped promoting every request's stream
 *   (core/async-resource-bind.ts), which made scavenges cheap: 3 pairs each, CPU per span −13 % at 10k spans/s,
 *   within noise at 50k, +10 % at saturation; RSS −1.5 MiB at 10k, −3 MiB at 50k, −10 MiB at saturation.
 * - `--v8-pool-size=1`: one background thread for V8's compile jobs instead of Node's default four: on a
 *   core of its own the process gains nothing from more, and each thread keeps a malloc arena (RSS −3.5 MiB at
 *   50k spans/s).
 * - `--no-memory-reducer`: at a light load (10k spans/s, 20 requests a second) V8 takes the process for idle
 *   and runs memory-reducing full collections, which do not retain the maps of objects that have no instance
 *   alive at that moment (most per-request objects between two requests). Every optimised function that checks
 *   such a map is thrown away and compiled again: 36 of them at once in a 48 s run, 697 ms of compiling against
 *   504 ms without the reducer; CPU per span at 10k spans/s −14 % (8 pairs), p99 lower, RSS +1 MiB, no change
 *   at 50k spans/s and saturation, where the reducer does not run. The price: after a burst, an idle process
 *   keeps its heap (RSS 77 MiB a minute after a 15 s burst instead of 71).
 */
export const V8_FLAGS: readonly string[] = [
  '--single-threaded-gc',
  '--initial-heap-size=8',
  '--max-semi-space-size=1',
  '--v8-pool-size=1',
  '--no-memory-reducer',
];

/**
 * The CPUs this process may use: the cgroup CPU limit when there is one (a Kubernetes `limits.cpu`: cgroup v2
 * `cpu.max` "QUOTA PERIOD", cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up, else the CPUs the
 * affinity mask allows. Node 20's `os.availableParallelism()` sees only the latter, so a pod limited to one CPU on
 * a 32-core node would otherwise fork 32 workers.
 */
export function availableCpus(
  files: { v2: string; v1Quota: string; v1Period: string } = {
    v2: '/sys/fs/cgroup/cpu.max',
    v1Quota: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
    v1Period: '/sys/fs/cgroup/cpu/cpu.cfs_period_us',
  },
  affinity = os.availableParallelism(),
): { cpus: number; source: string } {
  const read = (f: string): string | undefined => {
    try {
      return fs.readFileSync(f, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  let limit: number | undefined;
  let source = 'CPU affinity';
  const v2 = read(files.v2)?.split(/\s+/);
  if (v2 !== undefined && v2.length === 2 && /^\d+$/.test(v2[0] as string) && /^\d+$/.test(v2[1] as string)) {
    limit = Number(v2[0]) / Number(v2[1]);
    source = files.v2;
  } else {
    const quota = Number(read(files.v1Quota));
    const period = Number(read(files.v1Period));
    if (Number.isInteger(quota) && quota > 0 && Number.isInteger(period) && period > 0) {
      limit = quota / period;
      source = files.v1Quota;
    }
  }
  if (limit === undefined || !Number.isFinite(limit) || limit <= 0 || Math.ceil(limit) >= affinity) return { cpus: affinity, source: 'CPU affinity' };
  return { cpus: Math.max(1, Math.ceil(limit)), source };
}

/** V8_FLAGS the current process was started without. */
export function missingV8Flags(): string[] {
  return V8_FLAGS.filter((f) => !process.execArgv.includes(f));
}

/** Extension types the primary runs (the query endpoint and what it may authenticate with). */
const PRIMARY_EXTENSIONS = new Set(['routequery', 'bearertokenauth']);

interface SnapshotReply {
  type: 'snapshot';
  id: number;
  families: MetricFamily[];
  routes: Record<string, RouteSnapshot[]>;
  healthy: boolean;
}

// ---- worker -----------------------------------------------------------------------------------------------

/**
 * Adapt the config for worker `index` of `count`: no query endpoint, per-worker storage directories, and the
 * memory limits shared out (each worker is its own process with its own heap; together they must stay within
 * what was configured for routelens).
 */
export function workerConfig(config: ServiceConfig, index: number, count: number): ServiceConfig {
  for (const cc of config.processors.values()) {
    if (cc.type !== 'memory_limiter' || count <= 1) continue;
    const c = cc.config as { limit_mib: number; spike_limit_mib: number; limit_percentage: number; spike_limit_percentage: number };
    if (c.limit_mib > 0) c.limit_mib = Math.max(1, Math.floor(c.limit_mib / count));
    c.spike_limit_mib = Math.floor(c.spike_limit_mib / count);
    c.limit_percentage /= count;
    c.spike_limit_percentage /= count;
  }
  for (const cc of config.extensions.values()) {
    if (cc.type === 'file_storage') {
      const c = cc.config as { directory: string };
      c.directory = path.join(c.directory, `worker-${index}`);
    }
  }
  return { ...config, enabledExtensions: config.enabledExtensions.filter((id) => config.extensions.get(id)?.type !== 'routequery') };
}

/** Run the pipeline in a worker process until the primary (or a signal) stops it. Resolves with the exit code. */
export async function runWorker(config: ServiceConfig, index: number, logger: Logger): Promise<number> {
  const count = Number(process.env.ROUTELENS_WORKER_COUNT ?? 1);
  const service = new Service(workerConfig(config, index, count), { logger: logger.child({ worker: index }) });
  startHeapTrim();
  registerProcessMetrics(service.telemetry, { resources: true, uptime: false });
  await service.start();
  const onMessage = (m: { type?: string; id?: number }): void => {
    if (m.type !== 'snapshot' || typeof m.id !== 'number') return;
    const id = m.id;
    void service.telemetry.scrape().then((families) => {
      const routes: Record<string, RouteSnapshot[]> = {};
      for (const [cid, c] of service.components('connector')) {
        const store = (c as { store?: RouteStore }).store;
        if (store instanceof RouteStore) routes[cid] = store.snapshot();
      }
      const reply: SnapshotReply = { type: 'snapshot', id, families, routes, healthy: service.healthy() };
      process.send?.(reply);
    });
  };
  process.on('message', onMessage);
  process.send?.({ type: 'ready' });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
    process.once('disconnect', () => resolve()); // the primary died
  });
  process.off('message', onMessage);
  await service.shutdown();
  return 0;
}

// ---- primary ----------------------------------------------------------------------------------------------

/**
 * Sum samples with the same name, suffix and labels. Quantiles of summaries cannot be summed: `quantileOf` gives
 * their value from the merged sketches (a sample it cannot place is dropped).
 */
export function mergeFamilies(
  perWorker: readonly MetricFamily[][],
  quantileOf: (labels: Readonly<Record<string, string>>) => number | undefined = () => undefined,
): MetricFamily[] {
  const out = new Map<string, MetricFamily & { index: Map<string, MetricSample> }>();
  for (const families of perWorker) {
    for (const f of families) {
      let m = out.get(f.name);
      if (m === undefined) {
        m = { name: f.name, help: f.help, type: f.type, ...(f.unit === undefined ? {} : { unit: f.unit }), samples: [], index: new Map() };
        out.set(f.name, m);
      }
      for (const s of f.samples) {
        const key = `${s.suffix}\u0001${labelKey(s.labels)}`;
        const prev = m.index.get(key);
        if (prev === undefined) {
          const copy: MetricSample = { ...s };
          m.index.set(key, copy);
          m.samples.push(copy);
        } else {
          prev.value += s.value;
          if (s.exemplar !== undefined && (prev.exemplar === undefined || s.exemplar.value > prev.exemplar.value)) prev.exemplar = s.exemplar;
        }
      }
    }
  }
  return [...out.values()].map(({ index: _index, ...f }) => {
    if (f.type !== 'summary') return f;
    const samples: MetricSample[] = [];
    for (const sample of f.samples) {
      if (sample.suffix !== '') samples.push(sample);
      else {
        const v = quantileOf(sample.labels);
        if (v !== undefined) samples.push({ ...sample, value: v });
      }
    }
    return { ...f, samples };
  });
}

/** Quantile values (seconds) of every route of merged stores, by their summary sample's label key. */
function summaryQuantiles(stores: ReadonlyMap<string, { store: RouteStore; config: RouteLatencyConfig }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const { store, config } of stores.values()) {
    const recorder = new RouteMetricsRecorder(store, { config: config.metrics, exportSketches: false });
    const win = store.resolveWindow(recorder.summaryWindowMs);
    const window = formatWindow(recorder.summaryWindowMs);
    for (const entry of store.entries()) {
      const s = store.summarize([entry], win);
      const qs = [s.p50, s.p90, s.p95, s.p99, s.p999];
      const route = recorder.labelsOf(entry).route;
      SUMMARY_QUANTILES.forEach((q, i) => out.set(labelKey({ ...route, window, quantile: String(q) }), (qs[i] as number) / 1000));
    }
  }
  return out;
}

export interface PrimaryOptions {
  config: ServiceConfig;
  workers: number;
  logger: Logger;
  /** Called once every worker is ready (with their count). */
  onReady?: (summary: { workers: number; endpoints: Record<string, number> }) => void;
}

/** Fork the workers, serve the query endpoint, restart crashed workers, stop everything on SIGTERM/SIGINT. */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const { config, logger } = o;
  const telemetry = new Telemetry();
  let merged: MetricFamily[] = [];
  const workers = new Map<number, Worker>();
  const healthy = new Map<number, boolean>();
  let stopping = false;
  let nextId = 0;
  const pending = new Map<number, { replies: SnapshotReply[]; want: number; done: () => void }>();

  const gather = async (): Promise<SnapshotReply[]> => {
    const id = nextId++;
    const live = [...workers.values()].filter((w) => w.isConnected());
    if (live.length === 0) return [];
    const replies: SnapshotReply[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      pending.set(id, { replies, want: live.length, done: () => (clearTimeout(timer), resolve()) });
      for (const w of live) w.send({ type: 'snapshot', id });
    });
    pending.delete(id);
    return replies;
  };

  telemetry.collector(() => merged);
  registerProcessMetrics(telemetry, { resources: false, uptime: true });
  const mergedStores = (replies: readonly SnapshotReply[]): Map<string, { store: RouteStore; config: RouteLatencyConfig }> => {
    const out = new Map<string, { store: RouteStore; config: RouteLatencyConfig }>();
    for (const [id, cc] of config.connectors) {
      if (cc.type !== 'routelatency') continue;
      const cfg = cc.config as RouteLatencyConfig;
      const store = new RouteStore(routeStoreOptions(cfg));
      for (const r of replies) store.mergeSnapshot(r.routes[id] ?? []);
      out.set(id, { store, config: cfg });
    }
    return out;
  };
  telemetry.beforeScrape(async () => {
    const replies = await gather();
    for (const r of replies) healthy.set(r.id, r.healthy);
    const quantiles = summaryQuantiles(mergedStores(replies));
    merged = mergeFamilies(
      replies.map((r) => r.families),
      (labels) => quantiles.get(labelKey(labels)),
    );
  });

  // Connectors as seen by the query extension: their stores are the workers' stores merged on each query.
  const connectors = new Map<string, Component>();
  for (const [id, cc] of config.connectors) {
    if (cc.type !== 'routelatency') continue;
    const cfg = cc.config as RouteLatencyConfig;
    connectors.set(id, {
      start: async () => undefined,
      shutdown: async () => undefined,
      routeQuery: {
        handleQuery: async (pathname: string, params: URLSearchParams) => {
          const merged = mergedStores(await gather()).get(id);
          return handleQuery(merged?.store ?? new RouteStore(routeStoreOptions(cfg)), pathname, params);
        },
      },
    } as Component);
  }

  const extensions = new Map<string, Component>();
  const host: Host = {
    getExtension: (id) => extensions.get(id),
    components: (kind: ComponentKind) => (kind === 'connector' ? connectors : kind === 'extension' ? extensions : new Map()),
    healthy: () => !stopping && workers.size === o.workers && [...workers.keys()].every((i) => healthy.get(i) !== false),
  };
  for (const id of config.enabledExtensions) {
    const cc = config.extensions.get(id);
    if (cc === undefined || !PRIMARY_EXTENSIONS.has(cc.type) || cc.factory.kind !== 'extension') continue;
    extensions.set(id, cc.factory.create({ id, logger: logger.child({ extension: id }), telemetry }, cc.config));
  }

  // Each worker is meant to have a core of its own (V8_FLAGS).
  const missing = missingV8Flags();
  if (missing.length > 0) cluster.setupPrimary({ execArgv: [...process.execArgv, ...missing] });
  const fork = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ ROUTELENS_WORKER_ID: String(index), ROUTELENS_WORKER_COUNT: String(o.workers) });
      workers.set(index, w);
      w.on('message', (m: { type?: string; id?: number }) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'snapshot' && typeof m.id === 'number') {
          const p = pending.get(m.id);
          if (p !== undefined) {
            p.replies.push({ ...(m as SnapshotReply), id: index });
            if (p.replies.length >= p.want) p.done();
          }
        }
      });
      w.on('exit', (code, signal) => {
        workers.delete(index);
        if (stopping) return;
        logger.error({ worker: index, code, signal }, 'Worker exited; restarting it');
        reject(new Error(`worker ${index} exited with code ${code ?? signal}`));
        setTimeout(() => void fork(index).catch(() => undefined), 1000);
      });
    });

  try {
    await Promise.all(Array.from({ length: o.workers }, (_, i) => fork(i)));
  } catch (err) {
    stopping = true;
    for (const w of workers.values()) w.kill('SIGTERM');
    logger.error({ err: err instanceof Error ? err.message : String(err) }, 'Failed to start workers');
    return 1;
  }
  for (const e of extensions.values()) await e.start(host);
  const endpoints: Record<string, number> = {};
  for (const [id, e] of extensions) {
    const port = (e as { port?: number }).port;
    if (typeof port === 'number' && port > 0) endpoints[id] = port;
  }
  o.onReady?.({ workers: o.workers, endpoints });

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  stopping = true;
  logger.info({ signal, workers: workers.size }, 'Received signal; shutting down workers');
  const exits = [...workers.values()].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
  for (const w of workers.values()) w.process.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const w of workers.values()) w.process.kill('SIGKILL');
  }, config.shutdownTimeoutMs + 5000);
  await Promise.all(exits);
  clearTimeout(force);
  for (const e of extensions.values()) await e.shutdown();
  logger.info('Shutdown complete');
  return 0;
}

export const isPrimary = (): boolean => cluster.isPrimary;
export const workerIndex = (): number => Number(process.env.ROUTELENS_WORKER_ID ?? 0);
