/**
 * The `k8sattributes` processor: associates each resource of a batch with a pod (by the client's connection
 * address or by resource attributes, per `pod_association`) and adds the pod's metadata as resource
 * attributes. Attributes a client sent are never overwritten. A resource that matches no pod passes
 * unchanged and is counted as a miss.
 *
 * It must run before anything that merges batches from several clients (`batch`), since the connection
 * address is per request. It works on traces, metrics and logs alike, with the same association rules; the
 * pipelines that list one processor id share one pod cache and one set of informers (K8sMetadataSource).
 */
import type { Component, CreateSettings, Host, PipelineContext } from '../../core/component';
import { AnySignalConsumer, forward, type AnyConsumer } from '../../consumer/consumer';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import type { Counter, Telemetry } from '../../core/telemetry';
import { needs, requiredRbac, type K8sAttributesConfig } from './config';
import { podIpCandidate } from './kube/ip';
import { podSelectors, type ResourceName, type RestartReason, type WatchFilter } from './kube/informers';
import { KubeWatcher } from './kube/informers';
import { KubeConfigError, resolveConnection } from '../../kube/kubeconfig';
import { KubeMetadata, type Attr } from './kube/metadata';

/** What enrichment needs of a batch (every OtlpBatch implements it; tests may use a fake). */
export interface ResourceBatch {
  readonly resourceCount: number;
  resourceAttribute(i: number, key: string): string | number | boolean | undefined;
  hasResourceAttribute(i: number, key: string): boolean;
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void;
}

export interface K8sAttributesOptions {
  /** Environment for in-cluster settings and `node_from_env_var`. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Informer restart backoff. @default { initialMs: 500, maxMs: 30000 } */
  backoff?: { initialMs: number; maxMs: number };
  /** Server-side timeout of each watch (KubeWatcherOptions.watchTimeout). @default 300–600 s */
  watchTimeout?: { minSeconds: number; maxSeconds: number };
  /** Monotonic clock (ms), for the deleted-pod grace period. */
  now?: () => number;
  /** Interval of the sweep of expired deleted pods. @default 10000 */
  sweepIntervalMs?: number;
}

function str(v: string | number | boolean | undefined): string | undefined {
  return v === undefined ? undefined : String(v);
}

/**
 * The pod metadata of one processor id and the informers that keep it: shared by the pipelines (signals) that
 * list the processor, started by the first of them and stopped when the last shuts down.
 */
export class K8sMetadataSource {
  readonly metadata: KubeMetadata;
  /** Processors using this source and not shut down yet. */
  users = 0;
  readonly #cfg: K8sAttributesConfig;
  readonly #settings: CreateSettings;
  readonly #opts: K8sAttributesOptions;
  readonly #lookups = new Map<string, Counter>();
  readonly #restarts = new Map<string, Counter>();
  readonly #relists = new Map<string, Counter>();
  readonly #ipMiss: Counter;
  /** Lookup counters per association rule (by `rule.index`) and for resources no rule applied to. */
  readonly #ruleLookups: readonly { hit: Counter; miss: Counter }[];
  readonly #noRuleMiss: Counter;
  readonly #gauges: (() => void)[];
  #watcher: KubeWatcher | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;
  /** Called when the last processor using the source shuts down (the registry forgets it). */
  onLastRelease: (() => void) | undefined;

  constructor(settings: CreateSettings, cfg: K8sAttributesConfig, opts: K8sAttributesOptions = {}) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#opts = opts;
    const t = settings.telemetry;
    const id = settings.id;
    const podEvents = {
      added: t.counter('otelcol_otelsvc_k8s_pod_added', 'Pods added to the k8sattributes cache'),
      updated: t.counter('otelcol_otelsvc_k8s_pod_updated', 'Pod updates seen by k8sattributes'),
      deleted: t.counter('otelcol_otelsvc_k8s_pod_deleted', 'Pods deleted from the k8sattributes cache'),
    };
    this.metadata = new KubeMetadata(cfg, {
      ...(opts.now === undefined ? {} : { now: opts.now }),
      onPodEvent: (what) => podEvents[what].add(),
    });
    this.#ipMiss = t.counter('otelcol_otelsvc_k8s_ip_lookup_miss', 'Pod lookups by IP that found no pod');
    // Resolved once: enrich counts every resource of every request.
    this.#ruleLookups = this.metadata.rules.map((rule) => ({ hit: this.#lookup(rule.label, 'hit'), miss: this.#lookup(rule.label, 'miss') }));
    this.#noRuleMiss = this.#lookup('none', 'miss');
    const pods = this.metadata.pods;
    // Removed at shutdown: the id's next source (its pipelines started again) registers its own.
    this.#gauges = [
      t.gauge('otelcol_otelsvc_k8s_pod_table_size', 'Pods in the k8sattributes cache', { processor: id }, () => pods.size),
      t.gauge('routelens_k8sattributes_pods_cached', 'Pods in the k8sattributes cache by state', { processor: id, state: 'live' }, () => pods.liveCount),
      t.gauge('routelens_k8sattributes_pods_cached', 'Pods in the k8sattributes cache by state', { processor: id, state: 'deleted' }, () => pods.deletedCount),
      t.gauge('routelens_k8sattributes_synced', 'Whether the Kubernetes metadata has been listed (1) or not yet (0)', { processor: id }, () =>
        this.synced ? 1 : 0,
      ),
    ];
  }

  /** All needed Kubernetes resources have been listed (always true in passthrough mode). */
  get synced(): boolean {
    return this.#cfg.passthrough || (this.#watcher?.synced ?? false);
  }

  /** The informers (undefined before start and in passthrough mode). */
  get watcher(): KubeWatcher | undefined {
    return this.#watcher;
  }

  #lookup(source: string, result: 'hit' | 'miss'): Counter {
    const key = `${source}\u0000${result}`;
    let c = this.#lookups.get(key);
    if (c === undefined) {
      c = this.#settings.telemetry.counter('routelens_k8sattributes_lookups', 'Pod lookups by association source and result', {
        processor: this.#settings.id,
        source,
        result,
      });
      this.#lookups.set(key, c);
    }
    return c;
  }

  #restart(resource: ResourceName, reason: RestartReason): void {
    const key = `${resource}\u0000${reason}`;
    let c = this.#restarts.get(key);
    if (c === undefined) {
      c = this.#settings.telemetry.counter('routelens_k8sattributes_watch_restarts', 'Kubernetes watches re-established, by resource and reason', {
        processor: this.#settings.id,
        resource,
        reason,
      });
      this.#restarts.set(key, c);
    }
    c.add();
  }

  #relist(resource: ResourceName): void {
    let c = this.#relists.get(resource);
    if (c === undefined) {
      c = this.#settings.telemetry.counter('routelens_k8sattributes_relists', 'Full Kubernetes lists after the first (410 Gone, errors)', {
        processor: this.#settings.id,
        resource,
      });
      this.#relists.set(resource, c);
    }
    c.add();
  }

  /** The resolved `filter` (node from the environment). */
  resolveFilter(): WatchFilter {
    const f = this.#cfg.filter;
    const env = this.#opts.env ?? process.env;
    let node = f.node;
    if (f.node_from_env_var !== undefined) {
      node = env[f.node_from_env_var];
      if (node === undefined || node === '') {
        throw new KubeConfigError(
          `filter.node_from_env_var: environment variable ${f.node_from_env_var} is not set (set it from the downward API: fieldRef spec.nodeName)`,
        );
      }
    }
    const sel = podSelectors(f, node);
    return { node, namespace: f.namespace, ...sel };
  }

  async start(_host?: Host): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#cfg.passthrough) return;
    const log = this.#settings.logger;
    const filter = this.resolveFilter();
    const pods = this.metadata.pods;
    this.#sweepTimer = setInterval(() => pods.sweep(), this.#opts.sweepIntervalMs ?? 10_000);
    this.#sweepTimer.unref();
    let watcher: KubeWatcher;
    try {
      watcher = new KubeWatcher({
        connection: resolveConnection(this.#cfg, this.#opts.env ?? process.env),
        metadata: this.metadata,
        needs: needs(this.#cfg),
        filter,
        logger: log,
        metrics: { restart: (r, why) => this.#restart(r, why), relist: (r) => this.#relist(r) },
        ...(this.#opts.backoff === undefined ? {} : { backoff: this.#opts.backoff }),
        ...(this.#opts.watchTimeout === undefined ? {} : { watchTimeout: this.#opts.watchTimeout }),
      });
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    this.#watcher = watcher;
    void watcher.start();
    log.info(
      {
        server: watcher.server,
        resources: requiredRbac(this.#cfg).map((r) => r.resource),
        node: filter.node,
        namespace: filter.namespace,
      },
      'Starting Kubernetes metadata informers',
    );
    if (!this.#cfg.wait_for_metadata) return;
    const ok = await watcher.whenSynced(this.#cfg.wait_for_metadata_timeout);
    if (!ok) {
      const problems = watcher
        .statuses()
        .filter((s) => !s.synced)
        .map((s) => `${s.name}${s.lastError === undefined ? '' : ` (${s.lastError})`}`)
        .join(', ');
      await this.shutdown();
      throw new Error(
        `k8sattributes: Kubernetes metadata not synced within wait_for_metadata_timeout (${this.#cfg.wait_for_metadata_timeout} ms): ${problems}`,
      );
    }
    log.info({ pods: this.metadata.pods.liveCount }, 'Kubernetes metadata synced');
  }

  async shutdown(_signal?: AbortSignal): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const remove of this.#gauges) remove();
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    await this.#watcher?.stop();
  }

  /** Add the attributes of each resource's pod to `batch`, in place. */
  enrich(batch: ResourceBatch, ctx: PipelineContext): void {
    const n = batch.resourceCount;
    if (this.#cfg.passthrough) {
      const ip = podIpCandidate(ctx.clientAddress);
      if (ip === undefined) return;
      for (let i = 0; i < n; i++) {
        if (!batch.hasResourceAttribute(i, 'k8s.pod.ip')) batch.addResourceAttributes(i, [['k8s.pod.ip', ip]]);
      }
      return;
    }
    let current = 0;
    const read = (key: string): string | number | boolean | undefined => batch.resourceAttribute(current, key);
    const withContainer = this.metadata.usesContainerHint;
    for (let i = 0; i < n; i++) {
      current = i;
      const assoc = this.metadata.associate(read, ctx.clientAddress);
      if (assoc.rule === undefined) {
        this.#noRuleMiss.add();
        continue;
      }
      const counters = this.#ruleLookups[assoc.rule.index] as { hit: Counter; miss: Counter };
      const entry = assoc.entry;
      if (entry === undefined) {
        counters.miss.add();
        if (assoc.rule.byIp) this.#ipMiss.add();
        continue;
      }
      counters.hit.add();
      const attrs = withContainer
        ? this.metadata.attributesFor(entry, { id: str(read('container.id')), name: str(read('k8s.container.name')) })
        : this.metadata.attributesFor(entry);
      const add: Attr[] = [];
      if (assoc.connectionIp !== undefined && !batch.hasResourceAttribute(i, 'k8s.pod.ip')) add.push(['k8s.pod.ip', assoc.connectionIp]);
      for (const a of attrs) {
        if (a[0] === 'k8s.pod.ip' && add.length > 0 && add[0]?.[0] === 'k8s.pod.ip') continue;
        if (!batch.hasResourceAttribute(i, a[0])) add.push(a);
      }
      if (add.length > 0) batch.addResourceAttributes(i, add);
    }
  }
}

/** The sources of the processors a factory made, by telemetry (one per service) and processor id. */
export class K8sMetadataSources {
  readonly #byService = new WeakMap<Telemetry, Map<string, K8sMetadataSource>>();

  /** The source of `settings.id` in its service, made on first use (the first pipeline's config and options). */
  acquire(settings: CreateSettings, cfg: K8sAttributesConfig, opts: K8sAttributesOptions): K8sMetadataSource {
    let byId = this.#byService.get(settings.telemetry);
    if (byId === undefined) this.#byService.set(settings.telemetry, (byId = new Map()));
    let source = byId.get(settings.id);
    if (source === undefined) {
      source = new K8sMetadataSource(settings, cfg, opts);
      const sources = byId;
      const id = settings.id;
      source.onLastRelease = () => {
        if (sources.get(id) === source) sources.delete(id);
      };
      byId.set(settings.id, source);
    }
    return source;
  }
}

/** The processor of one pipeline: enriches each batch from its (possibly shared) metadata source, then hands it on. */
export class K8sAttributesProcessor extends AnySignalConsumer implements Component {
  readonly source: K8sMetadataSource;
  readonly #next: AnyConsumer;
  #released = false;

  constructor(settings: CreateSettings, cfg: K8sAttributesConfig, next: AnyConsumer, opts: K8sAttributesOptions = {}, sources?: K8sMetadataSources) {
    super();
    this.#next = next;
    this.source = sources === undefined ? new K8sMetadataSource(settings, cfg, opts) : sources.acquire(settings, cfg, opts);
    this.source.users++;
  }

  get metadata(): KubeMetadata {
    return this.source.metadata;
  }

  /** All needed Kubernetes resources have been listed (always true in passthrough mode). */
  get synced(): boolean {
    return this.source.synced;
  }

  /** The informers (undefined before start and in passthrough mode). */
  get watcher(): KubeWatcher | undefined {
    return this.source.watcher;
  }

  resolveFilter(): WatchFilter {
    return this.source.resolveFilter();
  }

  start(host?: Host): Promise<void> {
    return this.source.start(host);
  }

  async shutdown(signal?: AbortSignal): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (--this.source.users > 0) return;
    this.source.onLastRelease?.();
    await this.source.shutdown(signal);
  }

  healthy(): boolean {
    return true;
  }

  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    this.source.enrich(batch, ctx);
    await forward(this.#next, batch, ctx);
  }

  /** Add the attributes of each resource's pod to `batch`, in place. */
  enrich(batch: ResourceBatch, ctx: PipelineContext): void {
    this.source.enrich(batch, ctx);
  }
}
