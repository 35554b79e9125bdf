/**
 * The pod index: pods by UID, by IP, by namespace/name and by container id.
 *
 * - **Deleted pods** stay findable for a grace period (spans arrive after their pod is gone), at most
 *   `maxDeleted` of them (the oldest deleted go first), so the index never grows without bound under churn.
 * - **A reused key** (an IP handed to a new pod, a StatefulSet pod recreated under the same name) belongs to
 *   the pod that most plausibly holds it now: a live pod beats a deleted one, a running pod beats a finished
 *   one (a Succeeded/Failed pod keeps `status.podIP` after its IP is freed), then the newer pod wins.
 *   Deleting or expiring a pod never removes a key another pod holds.
 * - **hostNetwork pods** are not indexed by IP: their IP is the node's.
 */
import { isTerminal, type PodInfo } from './objects';

/** One pod in the index. `attrs` is a cache owned by the metadata layer. */
export interface PodEntry {
  pod: PodInfo;
  /** Monotonic time (ms) of deletion; undefined while the pod exists. */
  deletedAt: number | undefined;
  /** Cached extraction result, valid for `attrsGeneration`. */
  attrs: ReadonlyArray<readonly [string, string]> | undefined;
  attrsGeneration: number;
  /** Owner names resolved once (deployment from the ReplicaSet, cronjob from the Job), kept after the owner goes. */
  resolved: Record<string, string> | undefined;
  /** Keys under which the entry is indexed. */
  ips: readonly string[];
  nameKey: string;
  containerIds: readonly string[];
}

export interface PodIndexOptions {
  /** How long a deleted pod stays findable. @default 120000 */
  deleteGraceMs?: number;
  /** At most this many deleted pods are kept. @default 5000 */
  maxDeleted?: number;
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number;
}

const NO_STRINGS: readonly string[] = Object.freeze([]);

export class PodIndex {
  readonly #byUid = new Map<string, PodEntry>();
  readonly #byIp = new Map<string, PodEntry>();
  readonly #byName = new Map<string, PodEntry>();
  readonly #byContainerId = new Map<string, PodEntry>();
  /** Deleted entries in deletion order. */
  readonly #deleted = new Map<string, PodEntry>();
  readonly #graceMs: number;
  readonly #maxDeleted: number;
  readonly #now: () => number;
  /** Bumped whenever an entry changes or leaves: lets callers cache lookups. */
  generation = 0;

  constructor(opts: PodIndexOptions = {}) {
    this.#graceMs = opts.deleteGraceMs ?? 120_000;
    this.#maxDeleted = opts.maxDeleted ?? 5000;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Pods in the index, live and deleted. */
  get size(): number {
    return this.#byUid.size;
  }

  /** Pods that exist (not deleted). */
  get liveCount(): number {
    return this.#byUid.size - this.#deleted.size;
  }

  /** Deleted pods still kept for late spans. */
  get deletedCount(): number {
    return this.#deleted.size;
  }

  /** Sizes of the secondary indexes (for tests of boundedness). */
  get indexSizes(): { uid: number; ip: number; name: number; containerId: number; deleted: number } {
    return {
      uid: this.#byUid.size,
      ip: this.#byIp.size,
      name: this.#byName.size,
      containerId: this.#byContainerId.size,
      deleted: this.#deleted.size,
    };
  }

  /** Add or update a pod (ADDED / MODIFIED, or seen in a relist). */
  upsert(pod: PodInfo): PodEntry {
    const uid = pod.metadata.uid;
    let entry = this.#byUid.get(uid);
    if (entry === undefined) {
      entry = {
        pod,
        deletedAt: undefined,
        attrs: undefined,
        attrsGeneration: -1,
        resolved: undefined,
        ips: NO_STRINGS,
        nameKey: '',
        containerIds: NO_STRINGS,
      };
      this.#byUid.set(uid, entry);
    } else {
      if (entry.deletedAt !== undefined) {
        // Seen again after a delete (a relist after a missed event): it exists after all.
        entry.deletedAt = undefined;
        this.#deleted.delete(uid);
      }
      entry.pod = pod;
      entry.attrs = undefined;
    }
    this.#reindex(entry);
    this.generation++;
    this.sweep();
    return entry;
  }

  /** A pod was deleted: keep it findable for the grace period, within the cap. */
  markDeleted(pod: PodInfo): void {
    const entry = this.#byUid.get(pod.metadata.uid);
    if (entry === undefined) return;
    entry.pod = pod;
    entry.attrs = undefined;
    entry.deletedAt = this.#now();
    this.#deleted.delete(pod.metadata.uid);
    this.#deleted.set(pod.metadata.uid, entry);
    this.#reindex(entry);
    this.generation++;
    this.sweep();
  }

  /** Forget deleted pods past their grace period or beyond the cap. */
  sweep(now = this.#now()): void {
    for (const [uid, e] of this.#deleted) {
      const expired = (e.deletedAt as number) + this.#graceMs <= now;
      if (!expired && this.#deleted.size <= this.#maxDeleted) break;
      this.#deleted.delete(uid);
      this.#purge(e);
    }
  }

  /** Remove everything (a processor shutting down). */
  clear(): void {
    this.#byUid.clear();
    this.#byIp.clear();
    this.#byName.clear();
    this.#byContainerId.clear();
    this.#deleted.clear();
    this.generation++;
  }

  byUid(uid: string): PodEntry | undefined {
    return this.#byUid.get(uid);
  }

  byIp(ip: string): PodEntry | undefined {
    return this.#byIp.get(ip);
  }

  byName(namespace: string, name: string): PodEntry | undefined {
    return this.#byName.get(`${namespace}/${name}`);
  }

  byContainerId(id: string): PodEntry | undefined {
    return this.#byContainerId.get(id);
  }

  /** Every entry (live and deleted). */
  entries(): IterableIterator<PodEntry> {
    return this.#byUid.values();
  }

  #reindex(entry: PodEntry): void {
    const pod = entry.pod;
    const ips = pod.hostNetwork ? NO_STRINGS : pod.ips;
    const nameKey = `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
    const cids: string[] = [];
    for (const c of pod.containers) if (c.id !== undefined) cids.push(c.id);

    for (const ip of entry.ips) if (!ips.includes(ip)) release(this.#byIp, ip, entry);
    if (entry.nameKey !== '' && entry.nameKey !== nameKey) release(this.#byName, entry.nameKey, entry);
    for (const id of entry.containerIds) if (!cids.includes(id)) release(this.#byContainerId, id, entry);

    entry.ips = ips;
    entry.nameKey = nameKey;
    entry.containerIds = cids.length === 0 ? NO_STRINGS : cids;
    for (const ip of ips) claim(this.#byIp, ip, entry);
    claim(this.#byName, nameKey, entry);
    for (const id of cids) claim(this.#byContainerId, id, entry);
  }

  #purge(entry: PodEntry): void {
    this.#byUid.delete(entry.pod.metadata.uid);
    for (const ip of entry.ips) release(this.#byIp, ip, entry);
    release(this.#byName, entry.nameKey, entry);
    for (const id of entry.containerIds) release(this.#byContainerId, id, entry);
    this.generation++;
  }
}

function release(map: Map<string, PodEntry>, key: string, entry: PodEntry): void {
  if (map.get(key) === entry) map.delete(key);
}

/** Give `key` to `entry` unless its current holder more plausibly owns it. */
function claim(map: Map<string, PodEntry>, key: string, entry: PodEntry): void {
  const holder = map.get(key);
  if (holder === undefined || holder === entry || outranks(entry, holder)) map.set(key, entry);
}

/** Does `a` have a better claim than `b` on a shared key? */
function outranks(a: PodEntry, b: PodEntry): boolean {
  const aLive = a.deletedAt === undefined;
  const bLive = b.deletedAt === undefined;
  if (aLive !== bLive) return aLive;
  if (!aLive) return (a.deletedAt as number) >= (b.deletedAt as number);
  const aRunning = !isTerminal(a.pod);
  const bRunning = !isTerminal(b.pod);
  if (aRunning !== bRunning) return aRunning;
  const at = a.pod.creationTimestamp ?? '';
  const bt = b.pod.creationTimestamp ?? '';
  // RFC 3339 timestamps in UTC compare as strings; on a tie the latest event wins.
  return at >= bt;
}
