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
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Component, ComponentKind, Host } from '../core/component';
import type { ComponentConfig, ServiceConfig } from '../config/load';
import type { MergedQueryState, QueryHint, QueryStateHost, QueryStateSnapshot } from '../core/query';
import { Service } from '../pipeline/service';
import { missingV8Flags } from '../v8/flags';
import { startHeapTrim } from '../v8/heap-trim';
import { registerProcessMetrics } from '../telemetry/process-metrics';
import { Telemetry, labelKey, type MetricFamily, type MetricSample } from '../core/telemetry';

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

/** Extension types the primary runs (the query endpoint and what it may authenticate with). */
const PRIMARY_EXTENSIONS = new Set(['routequery', 'bearertokenauth']);

interface SnapshotReply {
  type: 'snapshot';
  id: number;
  families: MetricFamily[];
  /** Query states by component id (QueryStateSource), in the component's own format. */
  states: Record<string, unknown>;
  /** The worker's Service instance: the source of its states. */
  source: string;
  takenAtMs: number;
  healthy: boolean;
}

/** A worker's query state after its shutdown. */
interface FinalState {
  type: 'final';
  states: Record<string, unknown>;
  source: string;
  takenAtMs: number;
}

// ---- worker -----------------------------------------------------------------------------------------------

/**
 * The config for worker `index` of `count`: no query endpoint, per-worker storage directories, and the memory
 * limits shared out (each worker is its own process with its own heap; together they must stay within what was
 * configured for routelens). A new config: `config` is left as it is.
 */
export function workerConfig(config: ServiceConfig, index: number, count: number): ServiceConfig {
  const processors = new Map(
    [...config.processors].map(([id, cc]): [string, ComponentConfig] => {
      if (cc.type !== 'memory_limiter' || count <= 1) return [id, cc];
      const c = cc.config as { limit_mib: number; spike_limit_mib: number; limit_percentage: number; spike_limit_percentage: number };
      const shared = {
        ...c,
        limit_mib: c.limit_mib > 0 ? Math.max(1, Math.floor(c.limit_mib / count)) : c.limit_mib,
        spike_limit_mib: Math.floor(c.spike_limit_mib / count),
        limit_percentage: c.limit_percentage / count,
        spike_limit_percentage: c.spike_limit_percentage / count,
      };
      return [id, { ...cc, config: shared }];
    }),
  );
  const extensions = new Map(
    [...config.extensions].map(([id, cc]): [string, ComponentConfig] => {
      if (cc.type !== 'file_storage') return [id, cc];
      const c = cc.config as { directory: string };
      return [id, { ...cc, config: { ...c, directory: path.join(c.directory, `worker-${index}`) } }];
    }),
  );
  return {
    ...config,
    processors,
    extensions,
    enabledExtensions: config.enabledExtensions.filter((id) => config.extensions.get(id)?.type !== 'routequery'),
  };
}

/** Run the pipeline in a worker process until the primary (or a signal) stops it. Resolves with the exit code. */
export async function runWorker(config: ServiceConfig, index: number, logger: Logger): Promise<number> {
  const count = Number(process.env.ROUTELENS_WORKER_COUNT ?? 1);
  const service = new Service(workerConfig(config, index, count), { logger: logger.child({ worker: index }) });
  // When the primary dies (kill -9, OOM kill), the worker exits at once, as after a crash: it must not drain
  // or keep acknowledging while a supervisor starts routelens again, whose workers take over the persistent
  // queues (file_storage waits for an orphan still exiting: extensions/filestorage/lock.ts). Node's cluster
  // module does this already (its own 'disconnect' listener, which runs first, calls process.exit); this
  // listener states it, from before start, and keeps it so should that change.
  process.once('disconnect', () => process.exit(0));
  startHeapTrim();
  registerProcessMetrics(service.telemetry, { resources: true, uptime: false });
  await service.start();
  const onMessage = (m: { type?: string; id?: number; query?: QueryHint }): void => {
    if (m.type !== 'snapshot' || typeof m.id !== 'number') return;
    const id = m.id;
    const query = m.query;
    void service.telemetry.scrape().then((families) => {
      const states = service.snapshotQueryStates(query);
      const reply: SnapshotReply = { type: 'snapshot', id, families, states, source: service.instance, takenAtMs: Date.now(), healthy: service.healthy() };
      process.send?.(reply);
    });
  };
  process.on('message', onMessage);
  process.send?.({ type: 'ready' });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  process.off('message', onMessage);
  await service.shutdown();
  // The windows as they are after the pipelines drained: what the primary hands to a peer (routequery cluster).
  const final: FinalState = { type: 'final', states: service.snapshotQueryStates(), source: service.instance, takenAtMs: Date.now() };
  if (process.connected) await new Promise<void>((resolve) => process.send?.(final, undefined, {}, () => resolve()));
  return 0;
}

// ---- primary ----------------------------------------------------------------------------------------------

/**
 * Sum samples with the same name, suffix and labels. `recomputed` samples (from merged query states) replace the
 * sum of the same name, suffix and labels; quantiles of summaries cannot be summed, so one not recomputed is
 * dropped.
 */
export function mergeFamilies(perWorker: readonly MetricFamily[][], recomputed: readonly MetricFamily[] = []): MetricFamily[] {
  const keyOf = (name: string, s: MetricSample): string => `${name}\u0001${s.suffix}\u0001${labelKey(s.labels)}`;
  const replacements = new Map<string, MetricSample>();
  for (const f of recomputed) for (const s of f.samples) replacements.set(keyOf(f.name, s), s);
  const out = new Map<string, MetricFamily & { index: Map<string, MetricSample> }>();
  for (const families of perWorker) {
    for (const f of families) {
      let m = out.get(f.name);
      if (m === undefined) {
        m = { name: f.name, help: f.help, type: f.type, ...(f.unit === undefined ? {} : { unit: f.unit }), samples: [], index: new Map() };
        out.set(f.name, m);
      }
      for (const s of f.samples) {
        const key = keyOf(f.name, s);
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
    const samples: MetricSample[] = [];
    for (const sample of f.samples) {
      const replacement = replacements.get(keyOf(f.name, sample));
      if (replacement !== undefined) samples.push({ ...sample, value: replacement.value });
      else if (f.type !== 'summary' || sample.suffix !== '') samples.push(sample);
    }
    return { ...f, samples };
  });
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
  /** Query states of workers that shut down (by index), for the hand-off once all have stopped. */
  const finals = new Map<number, QueryStateSnapshot>();
  let stopping = false;
  let nextId = 0;
  const pending = new Map<number, { replies: SnapshotReply[]; want: number; done: () => void }>();

  /** Every worker's snapshot (for `query` only, when given: see QueryStateSource). */
  const gather = async (query?: QueryHint): Promise<SnapshotReply[]> => {
    const id = nextId++;
    const live = [...workers.values()].filter((w) => w.isConnected());
    if (live.length === 0) return [];
    const replies: SnapshotReply[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      pending.set(id, { replies, want: live.length, done: () => (clearTimeout(timer), resolve()) });
      for (const w of live) w.send({ type: 'snapshot', id, ...(query === undefined ? {} : { query }) });
    });
    pending.delete(id);
    return replies;
  };

  telemetry.collector(() => merged);
  registerProcessMetrics(telemetry, { resources: false, uptime: true });
  /** Each connector's query state merged from the workers' snapshots (src/core/query.ts). */
  const mergedStates = (replies: readonly SnapshotReply[]): Map<string, MergedQueryState> => {
    const out = new Map<string, MergedQueryState>();
    for (const [id, cc] of config.connectors) {
      if (cc.factory.kind !== 'connector' || cc.factory.mergeQueryStates === undefined) continue;
      const snapshots = replies.flatMap((r) => (r.states[id] === undefined ? [] : [r.states[id]]));
      out.set(id, cc.factory.mergeQueryStates(cc.config, snapshots));
    }
    return out;
  };
  telemetry.beforeScrape(async () => {
    const replies = await gather();
    for (const r of replies) healthy.set(r.id, r.healthy);
    const recomputed = [...mergedStates(replies).values()].flatMap((m) => m.metricFamilies());
    merged = mergeFamilies(
      replies.map((r) => r.families),
      recomputed,
    );
  });

  // Connectors as seen by the query extension: each query is answered from the workers' states merged.
  const connectors = new Map<string, Component>();
  for (const [id, cc] of config.connectors) {
    if (cc.factory.kind !== 'connector' || cc.factory.mergeQueryStates === undefined) continue;
    connectors.set(id, {
      start: async () => undefined,
      shutdown: async () => undefined,
      routeQuery: {
        handleQuery: async (pathname: string, params: URLSearchParams) => {
          const state = mergedStates(await gather({ pathname, params: [...params], atMs: Date.now() })).get(id) as MergedQueryState;
          return state.routeQuery.handleQuery(pathname, params);
        },
      },
    } as Component);
  }

  const extensions = new Map<string, Component>();
  const host: Host & QueryStateHost = {
    getExtension: (id) => extensions.get(id),
    components: (kind: ComponentKind) => (kind === 'connector' ? connectors : kind === 'extension' ? extensions : new Map()),
    healthy: () => !stopping && workers.size === o.workers && [...workers.keys()].every((i) => healthy.get(i) !== false),
    // Cluster-wide queries (routequery `cluster`): each worker is a source of its own.
    instance: randomUUID(),
    localQueryStates: async (query?: QueryHint): Promise<QueryStateSnapshot[]> => {
      const live = (await gather(query)).map((r) => ({ index: r.id, snapshot: { source: r.source, takenAtMs: r.takenAtMs, states: r.states } }));
      const answered = new Set(live.map((l) => l.index));
      return [...live.map((l) => l.snapshot), ...[...finals].filter(([i]) => !answered.has(i)).map(([, f]) => f)];
    },
    mergeQueryStates: (id, snapshots) => {
      const cc = config.connectors.get(id);
      if (cc?.factory.kind !== 'connector' || cc.factory.mergeQueryStates === undefined) return undefined;
      return cc.factory.mergeQueryStates(cc.config, snapshots);
    },
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
        if (m.type === 'final') {
          const f = m as unknown as FinalState;
          finals.set(index, { source: f.source, takenAtMs: f.takenAtMs, states: f.states });
        }
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
