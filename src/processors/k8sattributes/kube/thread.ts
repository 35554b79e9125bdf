/**
 * Runs the Kubernetes informers (client-node) in a worker thread and applies what they deliver to the
 * processor's {@link KubeMetadata} on the main thread.
 *
 * Why a thread: loading @kubernetes/client-node puts ≈ 27 MB of objects (its generated API models) on the V8
 * heap it is loaded into. On the main thread every full garbage collection had to mark them again, and the
 * forwarding path triggers several full collections a second at high load (its request buffers are external
 * memory), so the client's mere presence made every span more expensive. In its own isolate it costs memory, not
 * hot-path CPU. The cache and the lookups stay on the main thread: messages carry only the slim objects the
 * informers already reduce watch events to, in order, so a resource reported synced has been applied.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Needs } from '../config';
import type { KubeWatcherOptions, MetadataOp, ResourceName, ResourceStatus, RestartReason, WatchFilter } from './informers';
import { KubeConfigError, type AuthSettings } from './kubeconfig';
import type { KubeMetadata } from './metadata';

/** What the thread starts with (structured-cloned). */
export interface InformerThreadData {
  auth: AuthSettings;
  env: Record<string, string | undefined>;
  keep: KubeMetadata['keep'];
  needs: Needs;
  filter: WatchFilter;
  backoff: { initialMs: number; maxMs: number } | undefined;
  pageSize: number | undefined;
}

/** Thread → main thread. */
export type InformerThreadMessage =
  | { t: 'ready'; server: string | undefined }
  | { t: 'fatal'; message: string; configError: boolean }
  | { t: 'md'; op: MetadataOp; arg: unknown }
  | { t: 'status'; synced: boolean; statuses: ResourceStatus[] }
  | { t: 'restart'; resource: ResourceName; reason: RestartReason }
  | { t: 'relist'; resource: ResourceName }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string }
  | { t: 'stopped' };

/** KubeWatcher's options, with the client settings to load in the thread instead of a loaded KubeConfig. */
export type KubeWatcherThreadOptions = Omit<KubeWatcherOptions, 'kubeConfig' | 'metadata' | 'onSynced'> & {
  auth: AuthSettings;
  env: NodeJS.ProcessEnv;
  metadata: KubeMetadata;
};

export class KubeWatcherThread {
  readonly #o: KubeWatcherThreadOptions;
  #worker: Worker | undefined;
  #synced = false;
  #statuses: ResourceStatus[] = [];
  readonly #syncWaiters = new Set<() => void>();
  #stopped = false;
  #onStopped: (() => void) | undefined;
  /** API server URL of the loaded kubeconfig (after start). */
  server: string | undefined;

  constructor(o: KubeWatcherThreadOptions) {
    this.#o = o;
  }

  /** Every needed resource has been listed and applied. */
  get synced(): boolean {
    return this.#synced;
  }

  statuses(): ResourceStatus[] {
    return this.#statuses.map((s) => ({ ...s }));
  }

  /**
   * Start the thread. Resolves once it has loaded the Kubernetes client settings and started the informers;
   * rejects with KubeConfigError when the settings are unusable.
   */
  start(): Promise<void> {
    const o = this.#o;
    const data: InformerThreadData = {
      auth: { auth_type: o.auth.auth_type, kube_config_path: o.auth.kube_config_path, context: o.auth.context },
      env: { ...o.env },
      keep: o.metadata.keep,
      needs: o.needs,
      filter: o.filter,
      backoff: o.backoff,
      pageSize: o.pageSize,
    };
    const worker = new Worker(path.join(__dirname, 'informer-thread.js'), { workerData: data, env: data.env });
    this.#worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: InformerThreadMessage) => {
        switch (m.t) {
          case 'ready':
            ready = true;
            this.server = m.server;
            resolve();
            break;
          case 'fatal':
            reject(m.configError ? new KubeConfigError(m.message) : new Error(m.message));
            void worker.terminate();
            break;
          case 'md':
            (o.metadata[m.op] as (arg: unknown) => void).call(o.metadata, m.arg);
            break;
          case 'status':
            this.#statuses = m.statuses;
            this.#synced = m.synced;
            if (m.synced) for (const w of [...this.#syncWaiters]) w();
            break;
          case 'restart':
            o.metrics?.restart(m.resource, m.reason);
            break;
          case 'relist':
            o.metrics?.relist(m.resource);
            break;
          case 'log':
            o.logger[m.level](m.obj, m.msg);
            break;
          case 'stopped':
            this.#onStopped?.();
            break;
        }
      });
      worker.on('error', (err) => {
        o.logger.error({ err: err.message }, 'Kubernetes informer thread failed; the pod cache is no longer updated');
        if (!ready) reject(err);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new Error(`Kubernetes informer thread exited (code ${code}) before it started`));
        else if (!this.#stopped) o.logger.error({ code }, 'Kubernetes informer thread exited; the pod cache is no longer updated');
        for (const w of [...this.#syncWaiters]) w();
      });
    });
  }

  /** Resolve true once synced, false after `timeoutMs` (or when the thread ends). */
  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#syncWaiters.delete(finish);
        resolve(this.#synced);
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#syncWaiters.add(finish);
    });
  }

  /** Stop the informers (closing their watches), then the thread. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const w of [...this.#syncWaiters]) w();
    const worker = this.#worker;
    if (worker === undefined) return;
    const stopped = new Promise<void>((r) => {
      this.#onStopped = r;
      worker.once('exit', () => r());
    });
    worker.postMessage({ t: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    await worker.terminate();
  }
}
