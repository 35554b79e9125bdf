/**
 * Informers (client-node `ListWatch`: list, then watch from the list's resourceVersion) feeding
 * {@link KubeMetadata}, with what client-node leaves to its caller:
 *
 * - **restart with backoff**: an informer stops for good after an `error` (a cut connection, a failed list,
 *   a refused request); it is started again after a jittered exponential delay, resuming the watch from the
 *   last resourceVersion it saw (and relisting when that is too old: 410 Gone);
 * - **pacing**: a watch the server closes is re-opened at once by client-node; one that ended within a second
 *   without events is re-opened after a backoff delay instead, so a misbehaving server is not hammered;
 * - **slim objects**: list items and watch events are reduced to the fields routelens reads before the
 *   informer caches them;
 * - **paged lists** (`limit`/`continue`), **bookmarks** requested, **watch timeouts** of 5–10 minutes so a
 *   silently dead connection is replaced;
 * - **sync tracking** for `wait_for_metadata`: a resource is synced once its first list has been delivered.
 */
import type { Logger } from 'pino';
import type {
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import type { Needs } from '../config';
import { Backoff } from './backoff';
import { loadClientNode } from './kubeconfig';
import type { KubeMetadata } from './metadata';
import { toLabelledInfo, toOwnedInfo, toPodInfo, type LabelledInfo, type OwnedInfo, type PodInfo } from './objects';
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

/** The KubeMetadata methods informers call (forwarded one by one from the informer thread). */
export const METADATA_OPS = [
  'podUpserted',
  'podDeleted',
  'replicaSetUpserted',
  'replicaSetDeleted',
  'jobUpserted',
  'jobDeleted',
  'namespaceUpserted',
  'namespaceDeleted',
  'nodeUpserted',
  'nodeDeleted',
  'setClusterUid',
] as const;
export type MetadataOp = (typeof METADATA_OPS)[number];

/** Where informers deliver objects: KubeMetadata, or (in the informer thread) a forwarder to it. */
export type MetadataSink = Pick<KubeMetadata, MetadataOp> & { readonly keep: KubeMetadata['keep'] };

export interface KubeWatcherOptions {
  kubeConfig: KubeConfig;
  metadata: MetadataSink;
  needs: Needs;
  filter: WatchFilter;
  logger: Logger;
  metrics?: WatchMetrics;
  /** Restart backoff. @default { initialMs: 500, maxMs: 30000 } */
  backoff?: { initialMs: number; maxMs: number };
  /** Page size of lists. @default 500 */
  pageSize?: number;
  /** Called whenever a resource becomes synced. */
  onSynced?: () => void;
}

interface ListOpts {
  limit: number;
  _continue?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

type ListFn = (opts: ListOpts) => Promise<KubernetesListObject<KubernetesObject>>;

interface ResourceSpec<T> {
  name: ResourceName;
  path: string;
  list: ListFn;
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


function errorText(err: unknown): string {
  if (err === null || err === undefined) return 'unknown error';
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; body?: unknown };
  const code = e.statusCode ?? e.code;
  const msg = typeof e.message === 'string' ? e.message.split('\n')[0] : String(err);
  return code === undefined ? (msg ?? '') : `${String(code)}: ${msg ?? ''}`;
}

/** One informer plus its restart logic. */
class ResourceInformer<T> {
  readonly status: ResourceStatus;
  readonly #spec: ResourceSpec<T>;
  readonly #owner: KubeWatcher;
  readonly #backoff: Backoff;
  readonly #abort = new AbortController();
  readonly #pageSize: number;
  #informer: ListWatch<KubernetesObject> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #listedPending = false;
  #gone = false;
  #pacingMs = 0;
  #stopped = false;
  #current: AbortController | undefined;

  constructor(spec: ResourceSpec<T>, owner: KubeWatcher, backoff: { initialMs: number; maxMs: number }, pageSize: number) {
    this.#spec = spec;
    this.#owner = owner;
    this.#backoff = new Backoff(backoff);
    this.#pageSize = pageSize;
    this.status = { name: spec.name, synced: false, errorRestarts: 0, lists: 0, lastError: undefined };
  }

  async start(k8s: Awaited<ReturnType<typeof loadClientNode>>, kc: KubeConfig): Promise<void> {
    const inner = new k8s.Watch(kc);
    const paced = { config: kc, watch: this.#watch.bind(this, inner) } as unknown as Watch;
    const informer = new k8s.ListWatch<KubernetesObject>(
      this.#spec.path,
      paced,
      () => this.#list(),
      false,
      this.#spec.labelSelector,
      this.#spec.fieldSelector,
    );
    this.#informer = informer;
    informer.on('add', (o) => this.#spec.upsert(o as unknown as T));
    informer.on('update', (o) => this.#spec.upsert(o as unknown as T));
    informer.on('delete', (o) => this.#spec.remove(o as unknown as T));
    informer.on('error', (err) => this.#onError(err));
    await informer.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    await this.#informer?.stop();
    this.#current?.abort();
  }

  async #list(): Promise<KubernetesListObject<KubernetesObject>> {
    this.status.lists++;
    if (this.status.lists > 1) this.#owner.metrics?.relist(this.#spec.name);
    const items: KubernetesObject[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const opts: ListOpts = { limit: this.#pageSize };
      if (cont !== undefined) opts._continue = cont;
      if (this.#spec.labelSelector !== undefined) opts.labelSelector = this.#spec.labelSelector;
      if (this.#spec.fieldSelector !== undefined) opts.fieldSelector = this.#spec.fieldSelector;
      const page = await this.#spec.list(opts);
      for (const raw of page.items) {
        const slim = this.#spec.transform(raw);
        if (slim !== undefined) items.push(slim as unknown as KubernetesObject);
      }
      rv ??= page.metadata?.resourceVersion;
      cont = page.metadata?._continue;
      if (cont === '') cont = undefined;
    } while (cont !== undefined && !this.#stopped);
    this.#listedPending = true;
    return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: rv ?? '' }, items };
  }

  /** The Watch given to ListWatch: pacing, slim objects, bookmarks, timeouts, sync and restart accounting. */
  async #watch(
    inner: Watch,
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.#listedPending) {
      // ListWatch calls watch() right after it delivered the list: the resource is in sync.
      this.#listedPending = false;
      if (!this.status.synced) {
        this.status.synced = true;
        this.#owner.onSynced();
      }
    }
    const delay = this.#pacingMs;
    this.#pacingMs = 0;
    if (delay > 0) await sleep(delay, this.#abort.signal);
    if (this.#stopped) return new AbortController();
    const startedAt = performance.now();
    let events = 0;
    let ended = false;
    const query = {
      ...params,
      allowWatchBookmarks: true,
      timeoutSeconds: 300 + Math.floor(Math.random() * 300),
    };
    const controller = await inner.watch(
      path,
      query,
      (phase, obj, watchObj) => {
        if (phase === 'ERROR') {
          if ((obj as { code?: unknown } | undefined)?.code === 410) this.#gone = true;
          callback(phase, obj, watchObj);
          return;
        }
        events++;
        if (phase === 'BOOKMARK') {
          callback(phase, obj, watchObj);
          return;
        }
        const slim = this.#spec.transform(obj);
        if (slim !== undefined) callback(phase, slim, watchObj);
      },
      (err) => {
        if (ended) return;
        ended = true;
        const gone = this.#gone || (err as { statusCode?: unknown } | null)?.statusCode === 410;
        this.#gone = false;
        if (!this.#stopped) {
          const healthy = performance.now() - startedAt >= 1000 || events > 0;
          if (healthy) this.#backoff.reset();
          if (gone) {
            this.#owner.metrics?.restart(this.#spec.name, 'gone');
            this.#owner.logger.debug({ resource: this.#spec.name }, 'Kubernetes watch expired (410 Gone); relisting');
          } else if (err === null || err === undefined) {
            this.#owner.metrics?.restart(this.#spec.name, 'closed');
            if (!healthy) this.#pacingMs = this.#backoff.next();
          }
          // Errors are counted in #onError, which ListWatch calls next.
        }
        done(err);
      },
    );
    // ListWatch.stop() aborts only a watch it already holds: one still connecting when it stopped is ours to end.
    if (this.#stopped) controller.abort();
    else this.#current = controller;
    return controller;
  }

  #onError(err: unknown): void {
    if (this.#stopped) return;
    const text = errorText(err);
    this.status.lastError = text;
    this.status.errorRestarts++;
    this.#owner.metrics?.restart(this.#spec.name, 'error');
    const attempt = this.#backoff.attempts;
    const delay = this.#backoff.next();
    // Log the first failure of a streak and then less and less often.
    if ((attempt & (attempt - 1)) === 0) {
      this.#owner.logger.warn(
        { resource: this.#spec.name, err: text, retryInMs: delay, attempt: attempt + 1 },
        'Kubernetes list/watch failed; restarting',
      );
    }
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped || this.#informer === undefined) return;
      this.#informer.start().catch((e: unknown) => this.#onError(e));
    }, delay);
    this.#restartTimer.unref();
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
  readonly #informers: ResourceInformer<unknown>[] = [];
  readonly #syncWaiters = new Set<() => void>();
  readonly #abort = new AbortController();
  #clusterUidStatus: ResourceStatus | undefined;
  #started = false;
  /** The informers exist (start() got past loading client-node). */
  #created = false;

  constructor(opts: KubeWatcherOptions) {
    this.#opts = opts;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  /** Every needed resource has been listed. */
  get synced(): boolean {
    return this.#created && this.#informers.every((i) => i.status.synced) && (this.#clusterUidStatus?.synced ?? true);
  }

  statuses(): ResourceStatus[] {
    const out = this.#informers.map((i) => ({ ...i.status }));
    if (this.#clusterUidStatus !== undefined) out.push({ ...this.#clusterUidStatus });
    return out;
  }

  /** Start every informer. Resolves once each made its first attempt (not necessarily successful). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const k8s = await loadClientNode();
    if (this.#abort.signal.aborted) return; // stopped while loading
    const kc = this.#opts.kubeConfig;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const md = this.#opts.metadata;
    const keep = md.keep;
    const { needs, filter } = this.#opts;
    const ns = filter.namespace;
    const backoff = this.#opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const pageSize = this.#opts.pageSize ?? 500;
    const specs: ResourceSpec<unknown>[] = [];
    const nsPath = (group: string, plural: string): string =>
      ns === undefined ? `${group}/${plural}` : `${group}/namespaces/${encodeURIComponent(ns)}/${plural}`;
    const asList = (p: Promise<unknown>): Promise<KubernetesListObject<KubernetesObject>> =>
      p as Promise<KubernetesListObject<KubernetesObject>>;

    if (needs.pods) {
      specs.push({
        name: 'pods',
        path: nsPath('/api/v1', 'pods'),
        list: (o) => asList(ns === undefined ? core.listPodForAllNamespaces(o) : core.listNamespacedPod({ ...o, namespace: ns })),
        labelSelector: filter.labelSelector,
        fieldSelector: filter.fieldSelector,
        transform: (raw) => toPodInfo(raw, keep.pod),
        upsert: (p) => md.podUpserted(p as PodInfo),
        remove: (p) => md.podDeleted(p as PodInfo),
      });
    }
    if (needs.replicaSets) {
      specs.push({
        name: 'replicasets',
        path: nsPath('/apis/apps/v1', 'replicasets'),
        list: (o) =>
          asList(ns === undefined ? apps.listReplicaSetForAllNamespaces(o) : apps.listNamespacedReplicaSet({ ...o, namespace: ns })),
        labelSelector: undefined,
        fieldSelector: undefined,
        transform: toOwnedInfo,
        upsert: (r) => md.replicaSetUpserted(r as OwnedInfo),
        remove: (r) => md.replicaSetDeleted(r as OwnedInfo),
      });
    }
    if (needs.jobs) {
      specs.push({
        name: 'jobs',
        path: nsPath('/apis/batch/v1', 'jobs'),
        list: (o) => asList(ns === undefined ? batch.listJobForAllNamespaces(o) : batch.listNamespacedJob({ ...o, namespace: ns })),
        labelSelector: undefined,
        fieldSelector: undefined,
        transform: toOwnedInfo,
        upsert: (j) => md.jobUpserted(j as OwnedInfo),
        remove: (j) => md.jobDeleted(j as OwnedInfo),
      });
    }
    if (needs.namespaces) {
      const fieldSelector = ns === undefined ? undefined : `metadata.name=${ns}`;
      specs.push({
        name: 'namespaces',
        path: '/api/v1/namespaces',
        list: (o) => asList(core.listNamespace(o)),
        labelSelector: undefined,
        fieldSelector,
        transform: (raw) => toLabelledInfo(raw, keep.other),
        upsert: (n) => md.namespaceUpserted(n as LabelledInfo),
        remove: (n) => md.namespaceDeleted(n as LabelledInfo),
      });
    }
    if (needs.nodes) {
      const fieldSelector = filter.node === undefined ? undefined : `metadata.name=${filter.node}`;
      specs.push({
        name: 'nodes',
        path: '/api/v1/nodes',
        list: (o) => asList(core.listNode(o)),
        labelSelector: undefined,
        fieldSelector,
        transform: (raw) => toLabelledInfo(raw, keep.other),
        upsert: (n) => md.nodeUpserted(n as LabelledInfo),
        remove: (n) => md.nodeDeleted(n as LabelledInfo),
      });
    }
    for (const spec of specs) this.#informers.push(new ResourceInformer(spec, this, backoff, pageSize));
    if (needs.clusterUid) {
      this.#clusterUidStatus = { name: 'cluster-uid', synced: false, errorRestarts: 0, lists: 0, lastError: undefined };
      void this.#fetchClusterUid(() => core.readNamespace({ name: 'kube-system' }), backoff);
    }
    this.#created = true;
    await Promise.all(this.#informers.map((i) => i.start(k8s, kc)));
  }

  async #fetchClusterUid(read: () => Promise<{ metadata?: { uid?: string } }>, b: { initialMs: number; maxMs: number }): Promise<void> {
    const backoff = new Backoff(b);
    const status = this.#clusterUidStatus as ResourceStatus;
    while (!this.#abort.signal.aborted) {
      status.lists++;
      try {
        const ns = await read();
        const uid = ns.metadata?.uid;
        if (uid !== undefined && uid !== '') {
          this.#opts.metadata.setClusterUid(uid);
          status.synced = true;
          this.onSynced();
          return;
        }
        status.lastError = 'kube-system namespace has no uid';
      } catch (err) {
        status.lastError = errorText(err);
      }
      status.errorRestarts++;
      this.metrics?.restart('cluster-uid', 'error');
      const delay = backoff.next();
      if (backoff.attempts === 1) {
        this.logger.warn({ err: status.lastError, retryInMs: delay }, 'Cannot read the kube-system namespace for k8s.cluster.uid; retrying');
      }
      await sleep(delay, this.#abort.signal);
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
    this.#opts.onSynced?.();
    for (const w of [...this.#syncWaiters]) w();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#informers.map((i) => i.stop()));
  }
}
