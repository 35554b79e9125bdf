/**
 * Informers feeding {@link KubeMetadata}: for each resource, list (in pages, `limit`/`continue`), then watch
 * from the list's resourceVersion, the protocol client-go's reflector speaks:
 *
 * - **resume**: a watch the server ends (its timeout) or that breaks is re-opened from the last
 *   resourceVersion seen (an event or a bookmark); only 410 Gone ("too old resource version") relists, and a
 *   relist applies the deletes that happened meanwhile;
 * - **restart with backoff** after errors (a cut connection, a refused request), jittered and exponential;
 *   a watch that ended within a second without events is re-opened after a backoff delay too, so a
 *   misbehaving server is not hammered;
 * - **slim objects**: list items and watch events are reduced to the fields routelens reads at once;
 * - **bookmarks** requested, **watch timeouts** of 5–10 minutes so a silently dead connection is replaced;
 * - **sync tracking** for `wait_for_metadata`: a resource is synced once its first list has been applied.
 *
 * Why not @kubernetes/client-node's informers: loading that library costs ≈ 70 MiB of resident memory (its
 * 2,500 generated API models), more than the whole OpenTelemetry Collector uses on the same pipeline, while
 * what routelens needs of it is two GET requests and a line-delimited JSON stream (api-client.ts). client-node
 * stays in the tests as the reference: the fake API server is checked against its informer, and kubeconfig
 * resolution against its KubeConfig (docs/decisions/0004-own-kubernetes-client.md).
 */
import type { Logger } from 'pino';
import type { Needs } from '../config';
import { KubeApiClient, KubeApiError, type Query } from './api-client';
import { Backoff } from './backoff';
import type { ApiConnection } from './kubeconfig';
import type { KubeMetadata } from './metadata';
import { toLabelledInfo, toOwnedInfo, toPodInfo, type LabelledInfo, type OwnedInfo, type PodInfo, type SlimMeta } from './objects';
import { sleep } from '../../../core/sleep';

export type ResourceName = 'pods' | 'replicasets' | 'namespaces' | 'nodes' | 'jobs' | 'cluster-uid';

export type RestartReason = 'closed' | 'error' | 'gone';

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

interface ResourceSpec<T extends { metadata: SlimMeta }> {
  name: ResourceName;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/apps/v1/namespaces/shop/replicasets`. */
  path: string;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  transform(raw: unknown): T | undefined;
  upsert(o: T): void;
  remove(o: T): void;
}

/** Per-resource state, for tests and health. */
export interface ResourceStatus {
  name: ResourceName;
  synced: boolean;
  /** Restarts after errors. */
  errorRestarts: number;
  /** Lists made (the first, then relists). */
  lists: number;
  lastError: string | undefined;
}

/** The watch reported that its resourceVersion is too old: relist. */
class Gone extends Error {}

function errorText(err: unknown): string {
  if (err instanceof KubeApiError || err instanceof Error) return err.message.split('\n')[0] ?? '';
  return String(err);
}

const keyOf = (m: SlimMeta): string => (m.uid !== '' ? m.uid : `${m.namespace ?? ''}/${m.name}`);

function resourceVersionOf(raw: unknown): string | undefined {
  const rv = (raw as { metadata?: { resourceVersion?: unknown } } | null | undefined)?.metadata?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

/** One resource's list/watch loop. */
class ResourceInformer<T extends { metadata: SlimMeta }> {
  readonly status: ResourceStatus;
  readonly #spec: ResourceSpec<T>;
  readonly #owner: KubeWatcher;
  readonly #client: KubeApiClient;
  readonly #backoff: Backoff;
  readonly #pageSize: number;
  readonly #watchTimeout: { minSeconds: number; maxSeconds: number };
  readonly #signal: AbortSignal;
  /** What the last list and the events since say exists, by uid. */
  #known = new Map<string, T>();
  /** Where the next watch starts; undefined: list first. */
  #resourceVersion: string | undefined;

  constructor(
    spec: ResourceSpec<T>,
    owner: KubeWatcher,
    client: KubeApiClient,
    signal: AbortSignal,
    backoff: { initialMs: number; maxMs: number },
    pageSize: number,
    watchTimeout: { minSeconds: number; maxSeconds: number },
  ) {
    this.#spec = spec;
    this.#owner = owner;
    this.#client = client;
    this.#signal = signal;
    this.#backoff = new Backoff(backoff);
    this.#pageSize = pageSize;
    this.#watchTimeout = watchTimeout;
    this.status = { name: spec.name, synced: false, errorRestarts: 0, lists: 0, lastError: undefined };
  }

  /** Run until the signal aborts; `attempted` is called once the first list succeeded or failed. */
  async run(attempted: () => void): Promise<void> {
    const name = this.#spec.name;
    let pacingMs = 0;
    while (!this.#signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) {
          await this.#list();
          attempted();
        }
        if (pacingMs > 0) await sleep(pacingMs, this.#signal);
        if (this.#signal.aborted) break;
        const startedAt = performance.now();
        let events = 0;
        await this.#client.watch(
          this.#spec.path,
          this.#watchQuery(),
          (type, object) => {
            events++;
            this.#onEvent(type, object);
          },
          this.#signal,
        );
        if (this.#signal.aborted) break;
        // The server closed the watch (its timeout): resume from the last resourceVersion.
        const healthy = performance.now() - startedAt >= 1000 || events > 0;
        if (healthy) this.#backoff.reset();
        pacingMs = healthy ? 0 : this.#backoff.next();
        this.#owner.metrics?.restart(name, 'closed');
      } catch (err) {
        attempted();
        if (this.#signal.aborted) break;
        pacingMs = 0;
        if (err instanceof Gone || (err instanceof KubeApiError && err.statusCode === 410)) {
          this.#owner.metrics?.restart(name, 'gone');
          this.#owner.logger.debug({ resource: name }, 'Kubernetes watch expired (410 Gone); relisting');
          this.#resourceVersion = undefined;
          continue;
        }
        await sleep(this.#onError(err), this.#signal);
      }
    }
    attempted(); // stopped before the first attempt
  }

  #watchQuery(): Query {
    return {
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: this.#watchTimeout.minSeconds + Math.floor(Math.random() * (this.#watchTimeout.maxSeconds - this.#watchTimeout.minSeconds)),
      labelSelector: this.#spec.labelSelector,
      fieldSelector: this.#spec.fieldSelector,
    };
  }

  async #list(): Promise<void> {
    const spec = this.#spec;
    this.status.lists++;
    if (this.status.lists > 1) this.#owner.metrics?.relist(spec.name);
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const query: Query = { limit: this.#pageSize, continue: cont, labelSelector: spec.labelSelector, fieldSelector: spec.fieldSelector };
      const page = (await this.#client.get(spec.path, query, this.#signal)) as {
        metadata?: { resourceVersion?: unknown; continue?: unknown };
        items?: unknown;
      };
      if (!Array.isArray(page?.items)) throw new KubeApiError(undefined, `list of ${spec.path} has no items`);
      for (const raw of page.items) {
        const slim = spec.transform(raw);
        if (slim !== undefined) fresh.set(keyOf(slim.metadata), slim);
      }
      if (rv === undefined && typeof page.metadata?.resourceVersion === 'string') rv = page.metadata.resourceVersion;
      cont = typeof page.metadata?.continue === 'string' && page.metadata.continue !== '' ? page.metadata.continue : undefined;
    } while (cont !== undefined && !this.#signal.aborted);
    if (this.#signal.aborted) return;
    if (rv === undefined || rv === '') throw new KubeApiError(undefined, `list of ${spec.path} has no resourceVersion`);
    // Deletes first, so an IP or name that moved to a new object is released before the new one claims it.
    for (const [key, old] of this.#known) if (!fresh.has(key)) spec.remove(old);
    for (const [key, o] of fresh) {
      if (this.#known.get(key)?.metadata.resourceVersion !== o.metadata.resourceVersion) spec.upsert(o);
    }
    this.#known = fresh;
    this.#resourceVersion = rv;
    if (!this.status.synced) {
      this.status.synced = true;
      this.#owner.onSynced();
    }
  }

  #onEvent(type: string, raw: unknown): void {
    if (type === 'ERROR') {
      const st = raw as { code?: unknown; message?: unknown } | undefined;
      if (st?.code === 410) throw new Gone();
      throw new KubeApiError(
        typeof st?.code === 'number' ? st.code : undefined,
        `watch error: ${typeof st?.message === 'string' ? st.message : JSON.stringify(raw)}`,
      );
    }
    const rv = resourceVersionOf(raw);
    if (type === 'ADDED' || type === 'MODIFIED') {
      const slim = this.#spec.transform(raw);
      if (slim !== undefined) {
        this.#known.set(keyOf(slim.metadata), slim);
        this.#spec.upsert(slim);
      }
    } else if (type === 'DELETED') {
      const slim = this.#spec.transform(raw);
      if (slim !== undefined) {
        this.#known.delete(keyOf(slim.metadata));
        this.#spec.remove(slim);
      }
    }
    // ADDED/MODIFIED/DELETED and BOOKMARK all move the resume point.
    if (rv !== undefined) this.#resourceVersion = rv;
  }

  /** Count and log a failure; returns the delay before the next attempt. */
  #onError(err: unknown): number {
    const text = errorText(err);
    this.status.lastError = text;
    this.status.errorRestarts++;
    this.#owner.metrics?.restart(this.#spec.name, 'error');
    const attempt = this.#backoff.attempts;
    const delay = this.#backoff.next();
    // Log the first failure of a streak and then less and less often.
    if ((attempt & (attempt - 1)) === 0) {
      this.#owner.logger.warn({ resource: this.#spec.name, err: text, retryInMs: delay, attempt: attempt + 1 }, 'Kubernetes list/watch failed; restarting');
    }
    return delay;
  }
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
