/**
 * A Kubernetes informer: list (in pages, `limit`/`continue`), then watch from the list's resourceVersion, the
 * protocol client-go's reflector speaks:
 *
 * - **resume**: a watch the server ends (its timeout) or that breaks is re-opened from the last
 *   resourceVersion seen (an event or a bookmark); only 410 Gone ("too old resource version") relists, and a
 *   relist applies the deletes that happened meanwhile;
 * - **restart with backoff** after errors (a cut connection, a refused request), jittered and exponential;
 *   a watch that ended within a second without events is re-opened after a backoff delay too, so a
 *   misbehaving server is not hammered;
 * - **slim objects**: list items and watch events are reduced by `transform` to the fields the user reads;
 * - **bookmarks** requested, **watch timeouts** of 5–10 minutes so a silently dead connection is replaced;
 * - **sync tracking**: a resource is synced once its first list has been applied.
 *
 * Why not @kubernetes/client-node's informers: docs/decisions/0004-own-kubernetes-client.md.
 */
import type { Logger } from 'pino';
import { sleep } from '../core/sleep';
import { KubeApiError, type KubeApiClient, type Query } from './api-client';
import { Backoff } from './backoff';

export type RestartReason = 'closed' | 'error' | 'gone';

/** The metadata an informer keys and resumes by. */
export interface ObjectMeta {
  name: string;
  namespace?: string | undefined;
  uid: string;
  resourceVersion: string;
}

/** What an informer reports to whoever runs it. */
export interface InformerOwner {
  readonly logger: Logger;
  readonly metrics?:
    | {
        /** A watch ended and is being re-established (`closed` by the server, an `error`, 410 `gone`). */
        restart(resource: string, reason: RestartReason): void;
        /** A full list after the first one (after 410 Gone or an error). */
        relist(resource: string): void;
      }
    | undefined;
  /** A resource finished its first list. */
  onSynced(): void;
}

export interface ResourceSpec<T extends { metadata: ObjectMeta }> {
  /** Name in logs and metrics, e.g. `pods`. */
  name: string;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/apps/v1/namespaces/shop/replicasets`. */
  path: string;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  transform(raw: unknown): T | undefined;
  upsert(o: T): void;
  remove(o: T): void;
  /** Deadline of each list page (default: the client's, 60 s). */
  listTimeoutMs?: number | undefined;
}

/** Per-resource state, for tests and health. */
export interface ResourceStatus {
  name: string;
  synced: boolean;
  /** Restarts after errors. */
  errorRestarts: number;
  /** Lists made (the first, then relists). */
  lists: number;
  lastError: string | undefined;
}

/** The watch reported that its resourceVersion is too old: relist. */
class Gone extends Error {}

export function errorText(err: unknown): string {
  if (err instanceof KubeApiError || err instanceof Error) return err.message.split('\n')[0] ?? '';
  return String(err);
}

const keyOf = (m: ObjectMeta): string => (m.uid !== '' ? m.uid : `${m.namespace ?? ''}/${m.name}`);

function resourceVersionOf(raw: unknown): string | undefined {
  const rv = (raw as { metadata?: { resourceVersion?: unknown } } | null | undefined)?.metadata?.resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

/** One resource's list/watch loop. */
export class ResourceInformer<T extends { metadata: ObjectMeta }> {
  readonly status: ResourceStatus;
  readonly #spec: ResourceSpec<T>;
  readonly #owner: InformerOwner;
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
    owner: InformerOwner,
    client: KubeApiClient,
    signal: AbortSignal,
    backoff: { initialMs: number; maxMs: number },
    pageSize: number,
    /** Server-side timeout of each watch, drawn uniformly from [minSeconds, maxSeconds) (the server sends a bookmark 2 s before). */
    watchTimeout: { minSeconds: number; maxSeconds: number } = { minSeconds: 300, maxSeconds: 600 },
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
      const page = (await this.#client.get(spec.path, query, this.#signal, spec.listTimeoutMs)) as {
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
