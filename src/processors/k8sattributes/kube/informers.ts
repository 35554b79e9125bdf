/**
 * The informers feeding {@link KubeMetadata}: one list/watch loop (src/kube/informer.ts) per resource the
 * configured extraction needs, plus the one-off read of the kube-system namespace for `k8s.cluster.uid`. A
 * resource is synced (for `wait_for_metadata`) once its first list has been applied.
 */
import type { Logger } from 'pino';
import type { Needs } from '../config';
import { KubeApiClient } from '../../../kube/api-client';
import { Backoff } from '../../../kube/backoff';
import { errorText, ResourceInformer, type ResourceSpec, type ResourceStatus, type RestartReason } from '../../../kube/informer';
import type { ApiConnection } from '../../../kube/kubeconfig';
import type { KubeMetadata } from './metadata';
import { toLabelledInfo, toOwnedInfo, toPodInfo, type LabelledInfo, type OwnedInfo, type PodInfo, type SlimMeta } from './objects';
import { sleep } from '../../../core/sleep';

export type { ResourceStatus, RestartReason } from '../../../kube/informer';

export type ResourceName = 'pods' | 'replicasets' | 'namespaces' | 'nodes' | 'jobs' | 'cluster-uid';

/** Hooks for self-telemetry. */
export interface WatchMetrics {
  /** A watch ended and is being re-established (`closed` by the server, an `error`, 410 `gone`). */
  restart(resource: ResourceName, reason: RestartReason): void;
  /** A full list after the first one (after 410 Gone or an error). */
  relist(resource: ResourceName): void;
}

/** The resolved `filter` section. */
export interface WatchFilter {
  node: string | undefined;
  namespace: string | undefined;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
}

export interface KubeWatcherOptions {
  connection: ApiConnection;
  metadata: KubeMetadata;
  needs: Needs;
  filter: WatchFilter;
  logger: Logger;
  metrics?: WatchMetrics;
  /** Restart backoff. @default { initialMs: 500, maxMs: 30000 } */
  backoff?: { initialMs: number; maxMs: number };
  /** Page size of lists. @default 500 */
  pageSize?: number;
  /**
   * Server-side timeout of each watch, drawn uniformly from [minSeconds, maxSeconds), after which the server ends
   * the watch and it is resumed (the API server sends a bookmark 2 s before). @default { minSeconds: 300, maxSeconds: 600 }
   */
  watchTimeout?: { minSeconds: number; maxSeconds: number };
}

/** Build the label and field selectors of the pod informer from the `filter` section. */
export function podSelectors(
  filter: {
    labels: readonly { key: string; value?: string | undefined; op: 'equals' | 'not-equals' | 'exists' | 'does-not-exist' }[];
    fields: readonly { key: string; value: string; op: 'equals' | 'not-equals' }[];
  },
  node: string | undefined,
): { labelSelector: string | undefined; fieldSelector: string | undefined } {
  const labels = filter.labels.map((l) => {
    switch (l.op) {
      case 'equals':
        return `${l.key}=${l.value ?? ''}`;
      case 'not-equals':
        return `${l.key}!=${l.value ?? ''}`;
      case 'exists':
        return l.key;
      case 'does-not-exist':
        return `!${l.key}`;
    }
  });
  const fields = filter.fields.map((f) => `${f.key}${f.op === 'equals' ? '=' : '!='}${f.value}`);
  if (node !== undefined) fields.unshift(`spec.nodeName=${node}`);
  return {
    labelSelector: labels.length === 0 ? undefined : labels.join(','),
    fieldSelector: fields.length === 0 ? undefined : fields.join(','),
  };
}

/** The set of informers a processor needs, started and stopped together. */
export class KubeWatcher {
  readonly logger: Logger;
  readonly metrics: WatchMetrics | undefined;
  readonly #opts: KubeWatcherOptions;
  readonly #client: KubeApiClient;
  readonly #informers: ResourceInformer<{ metadata: SlimMeta }>[] = [];
  readonly #syncWaiters = new Set<() => void>();
  readonly #abort = new AbortController();
  readonly #running: Promise<void>[] = [];
  #clusterUidStatus: ResourceStatus | undefined;
  #started = false;

  constructor(opts: KubeWatcherOptions) {
    this.#opts = opts;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.#client = new KubeApiClient(opts.connection);
  }

  /** API server URL. */
  get server(): string {
    return this.#client.server;
  }

  /** Every needed resource has been listed. */
  get synced(): boolean {
    return this.#started && this.#informers.every((i) => i.status.synced) && (this.#clusterUidStatus?.synced ?? true);
  }

  statuses(): ResourceStatus[] {
    const out = this.#informers.map((i) => ({ ...i.status }));
    if (this.#clusterUidStatus !== undefined) out.push({ ...this.#clusterUidStatus });
    return out;
  }

  /** Start every informer. Resolves once each made its first list attempt (not necessarily successful). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const md = this.#opts.metadata;
    const keep = md.keep;
    const { needs, filter } = this.#opts;
    const ns = filter.namespace;
    const backoff = this.#opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const pageSize = this.#opts.pageSize ?? 500;
    const watchTimeout = this.#opts.watchTimeout ?? { minSeconds: 300, maxSeconds: 600 };
    const nsPath = (group: string, plural: string): string =>
      ns === undefined ? `${group}/${plural}` : `${group}/namespaces/${encodeURIComponent(ns)}/${plural}`;
    const add = <T extends { metadata: SlimMeta }>(spec: ResourceSpec<T>): void => {
      this.#informers.push(
        new ResourceInformer(spec, this, this.#client, this.#abort.signal, backoff, pageSize, watchTimeout) as unknown as ResourceInformer<{
          metadata: SlimMeta;
        }>,
      );
    };

    if (needs.pods) {
      add<PodInfo>({
        name: 'pods',
        path: nsPath('/api/v1', 'pods'),
        labelSelector: filter.labelSelector,
        fieldSelector: filter.fieldSelector,
        transform: (raw) => toPodInfo(raw, keep.pod),
        upsert: (p) => md.podUpserted(p),
        remove: (p) => md.podDeleted(p),
      });
    }
    if (needs.replicaSets) {
      add<OwnedInfo>({
        name: 'replicasets',
        path: nsPath('/apis/apps/v1', 'replicasets'),
        labelSelector: undefined,
        fieldSelector: undefined,
        transform: toOwnedInfo,
        upsert: (r) => md.replicaSetUpserted(r),
        remove: (r) => md.replicaSetDeleted(r),
      });
    }
    if (needs.jobs) {
      add<OwnedInfo>({
        name: 'jobs',
        path: nsPath('/apis/batch/v1', 'jobs'),
        labelSelector: undefined,
        fieldSelector: undefined,
        transform: toOwnedInfo,
        upsert: (j) => md.jobUpserted(j),
        remove: (j) => md.jobDeleted(j),
      });
    }
    if (needs.namespaces) {
      add<LabelledInfo>({
        name: 'namespaces',
        path: '/api/v1/namespaces',
        labelSelector: undefined,
        fieldSelector: ns === undefined ? undefined : `metadata.name=${ns}`,
        transform: (raw) => toLabelledInfo(raw, keep.other),
        upsert: (n) => md.namespaceUpserted(n),
        remove: (n) => md.namespaceDeleted(n),
      });
    }
    if (needs.nodes) {
      add<LabelledInfo>({
        name: 'nodes',
        path: '/api/v1/nodes',
        labelSelector: undefined,
        fieldSelector: filter.node === undefined ? undefined : `metadata.name=${filter.node}`,
        transform: (raw) => toLabelledInfo(raw, keep.other),
        upsert: (n) => md.nodeUpserted(n),
        remove: (n) => md.nodeDeleted(n),
      });
    }
    if (needs.clusterUid) {
      this.#clusterUidStatus = { name: 'cluster-uid', synced: false, errorRestarts: 0, lists: 0, lastError: undefined };
      this.#running.push(this.#fetchClusterUid(backoff));
    }
    await Promise.all(
      this.#informers.map(
        (i) =>
          new Promise<void>((attempted) => {
            this.#running.push(i.run(attempted));
          }),
      ),
    );
  }

  async #fetchClusterUid(b: { initialMs: number; maxMs: number }): Promise<void> {
    const backoff = new Backoff(b);
    const status = this.#clusterUidStatus as ResourceStatus;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      status.lists++;
      try {
        const ns = (await this.#client.get('/api/v1/namespaces/kube-system', {}, signal)) as { metadata?: { uid?: unknown } };
        const uid = ns.metadata?.uid;
        if (typeof uid === 'string' && uid !== '') {
          this.#opts.metadata.setClusterUid(uid);
          status.synced = true;
          this.onSynced();
          return;
        }
        status.lastError = 'kube-system namespace has no uid';
      } catch (err) {
        if (signal.aborted) return;
        status.lastError = errorText(err);
      }
      status.errorRestarts++;
      this.metrics?.restart('cluster-uid', 'error');
      const delay = backoff.next();
      if (backoff.attempts === 1) {
        this.logger.warn({ err: status.lastError, retryInMs: delay }, 'Cannot read the kube-system namespace for k8s.cluster.uid; retrying');
      }
      await sleep(delay, signal);
    }
  }

  /** Resolve true once synced, false after `timeoutMs` (or when stopped). */
  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (v: boolean): void => {
        clearTimeout(timer);
        this.#syncWaiters.delete(check);
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const check = (): void => {
        if (this.synced) finish(true);
      };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(this.synced), timeoutMs);
      this.#syncWaiters.add(check);
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** @internal called by informers. */
  onSynced(): void {
    for (const w of [...this.#syncWaiters]) w();
  }

  /** Stop every informer: open watches and requests are aborted. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#running);
    this.#client.close();
  }
}
