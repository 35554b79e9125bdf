/**
 * The metadata layer: what the informers learned (pods, ReplicaSets, Jobs, namespaces, nodes, the cluster
 * uid), how a resource is associated with a pod (`pod_association`), and which attributes to add
 * (`extract`). Independent of the API client: informers feed it, the processor queries it, tests drive it
 * directly.
 */
import type { K8sAttributesConfig, MetadataAttribute } from '../config';
import { podIpCandidate } from './ip';
import { parseImage, stripContainerId, type LabelledInfo, type OwnedInfo, type PodInfo } from './objects';
import { PodIndex, type PodEntry } from './pod-index';

export type Attr = readonly [string, string];

/** Reads a resource attribute of the resource being enriched. */
export type AttributeReader = (key: string) => string | number | boolean | undefined;

type SourceKind = 'connection' | 'k8s.pod.ip' | 'k8s.pod.uid' | 'k8s.pod.name' | 'k8s.namespace.name' | 'container.id';

/** A `pod_association` rule, compiled. */
export interface AssociationRule {
  /** Metric label: the sources joined with `+`, e.g. `k8s.pod.name+k8s.namespace.name`. */
  readonly label: string;
  /** Position in the configured order. */
  readonly index: number;
  readonly sources: readonly SourceKind[];
  readonly primary: 'uid' | 'containerId' | 'name' | 'ip';
  /** Whether an IP (connection or k8s.pod.ip) is part of the rule: misses count as IP lookup misses. */
  readonly byIp: boolean;
}

export interface Association {
  /** The rule whose sources all had values (undefined: no rule applied, nothing to look up). */
  rule: AssociationRule | undefined;
  /** The pod found, if any. */
  entry: PodEntry | undefined;
  /** The connection address, when the deciding rule used it and it can be a pod IP. */
  connectionIp: string | undefined;
}

export interface ContainerHint {
  id?: string | undefined;
  name?: string | undefined;
}

interface FieldRule {
  from: 'pod' | 'namespace' | 'node';
  what: 'labels' | 'annotations';
  key: string | undefined;
  regex: RegExp | undefined;
  tagName: string | undefined;
}

const CONTAINER_ATTRS: ReadonlySet<MetadataAttribute> = new Set<MetadataAttribute>([
  'k8s.container.name',
  'container.id',
  'container.image.name',
  'container.image.tag',
]);

export function compileAssociation(cfg: K8sAttributesConfig): AssociationRule[] {
  const rules = cfg.pod_association.length > 0 ? cfg.pod_association : [{ sources: [{ from: 'connection' as const, name: undefined }] }];
  return rules.map((r, index) => {
    const sources = r.sources.map((s) => (s.from === 'connection' ? 'connection' : (s.name as SourceKind)));
    const has = (k: SourceKind): boolean => sources.includes(k);
    const primary = has('k8s.pod.uid') ? 'uid' : has('container.id') ? 'containerId' : has('k8s.pod.name') && has('k8s.namespace.name') ? 'name' : 'ip';
    return { label: sources.join('+'), index, sources, primary, byIp: has('connection') || has('k8s.pod.ip') };
  });
}

function compileFieldRules(cfg: K8sAttributesConfig): FieldRule[] {
  const out: FieldRule[] = [];
  for (const what of ['labels', 'annotations'] as const) {
    for (const f of cfg.extract[what]) {
      out.push({
        from: f.from,
        what,
        key: f.key,
        regex: f.key_regex === undefined ? undefined : new RegExp(`^(?:${f.key_regex})$`),
        tagName: f.tag_name,
      });
    }
  }
  return out;
}

/** `$1`, `${1}` in a tag name → capture group 1 (`$$` → `$`). */
function expandTag(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(\$|\d+|\{\d+\})/g, (_all, g: string) => {
    if (g === '$') return '$';
    const n = Number(g.replace(/[{}]/g, ''));
    return m[n] ?? '';
  });
}

export interface KubeMetadataOptions {
  /** Monotonic clock (ms) for the deleted-pod grace period. */
  now?: () => number;
  /** Called with the outcome of every pod event (for counters). */
  onPodEvent?: (what: 'added' | 'updated' | 'deleted') => void;
}

/** The value of source `kind` among a rule's source values (`values[i]` belongs to `sources[i]`). */
function sourceValueOf(sources: readonly SourceKind[], values: readonly string[], kind: SourceKind): string | undefined {
  const i = sources.indexOf(kind);
  return i < 0 ? undefined : values[i];
}

export class KubeMetadata {
  readonly pods: PodIndex;
  readonly #replicaSets = new Map<string, OwnedInfo>();
  readonly #jobs = new Map<string, OwnedInfo>();
  readonly #namespaces = new Map<string, LabelledInfo>();
  readonly #nodes = new Map<string, LabelledInfo>();
  #clusterUid: string | undefined;
  /** Bumped when anything a cached extraction result may depend on (besides the pod itself) changes. */
  #generation = 0;
  readonly #metadata: readonly MetadataAttribute[];
  readonly #podMetadata: readonly MetadataAttribute[];
  readonly #containerMetadata: readonly MetadataAttribute[];
  /** Scratch of `associate`: the current rule's source values. */
  readonly #values: string[] = [];
  readonly #fieldRules: readonly FieldRule[];
  readonly #exclude: readonly RegExp[];
  readonly #rsTrim: boolean;
  readonly #jobsWatched: boolean;
  readonly #onPodEvent: ((what: 'added' | 'updated' | 'deleted') => void) | undefined;
  readonly rules: readonly AssociationRule[];

  constructor(cfg: K8sAttributesConfig, opts: KubeMetadataOptions = {}) {
    this.pods = new PodIndex({
      deleteGraceMs: cfg.pod_delete_grace_period,
      maxDeleted: cfg.max_deleted_pods,
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
    this.#metadata = cfg.extract.metadata;
    this.#podMetadata = cfg.extract.metadata.filter((m) => !CONTAINER_ATTRS.has(m));
    this.#containerMetadata = cfg.extract.metadata.filter((m) => CONTAINER_ATTRS.has(m));
    this.#fieldRules = compileFieldRules(cfg);
    this.#exclude = cfg.exclude.pods.map((p) => new RegExp(p.name));
    this.#rsTrim = cfg.extract.deployment_name_from_replicaset;
    this.#jobsWatched = cfg.extract.metadata.includes('k8s.cronjob.uid');
    this.#onPodEvent = opts.onPodEvent;
    this.rules = compileAssociation(cfg);
  }

  /** What the pod converter must keep. */
  get keep(): { pod: { labels: boolean; annotations: boolean }; other: { labels: boolean; annotations: boolean } } {
    const k = (from: string, what: string): boolean => this.#fieldRules.some((r) => r.from === from && r.what === what);
    return {
      pod: { labels: k('pod', 'labels'), annotations: k('pod', 'annotations') },
      other: {
        labels: k('namespace', 'labels') || k('node', 'labels'),
        annotations: k('namespace', 'annotations') || k('node', 'annotations'),
      },
    };
  }

  get metadataAttributes(): readonly MetadataAttribute[] {
    return this.#metadata;
  }

  // ---- feeding -------------------------------------------------------------------------------------------

  /** Is the pod excluded by `exclude.pods`? */
  excluded(pod: PodInfo): boolean {
    return this.#exclude.some((re) => re.test(pod.metadata.name));
  }

  podUpserted(pod: PodInfo): void {
    if (pod.metadata.uid === '' || this.excluded(pod)) return;
    const existed = this.pods.byUid(pod.metadata.uid) !== undefined;
    this.pods.upsert(pod);
    this.#onPodEvent?.(existed ? 'updated' : 'added');
  }

  podDeleted(pod: PodInfo): void {
    if (this.pods.byUid(pod.metadata.uid) === undefined) return;
    this.pods.markDeleted(pod);
    this.#onPodEvent?.('deleted');
  }

  replicaSetUpserted(rs: OwnedInfo): void {
    this.#replicaSets.set(rs.metadata.uid, rs);
    this.#generation++;
  }

  replicaSetDeleted(rs: OwnedInfo): void {
    this.#replicaSets.delete(rs.metadata.uid);
    this.#generation++;
  }

  jobUpserted(job: OwnedInfo): void {
    this.#jobs.set(job.metadata.uid, job);
    this.#generation++;
  }

  jobDeleted(job: OwnedInfo): void {
    this.#jobs.delete(job.metadata.uid);
    this.#generation++;
  }

  namespaceUpserted(ns: LabelledInfo): void {
    this.#namespaces.set(ns.metadata.name, ns);
    if (ns.metadata.name === 'kube-system' && ns.metadata.uid !== '') this.setClusterUid(ns.metadata.uid);
    this.#generation++;
  }

  namespaceDeleted(ns: LabelledInfo): void {
    this.#namespaces.delete(ns.metadata.name);
    this.#generation++;
  }

  nodeUpserted(node: LabelledInfo): void {
    this.#nodes.set(node.metadata.name, node);
    this.#generation++;
  }

  nodeDeleted(node: LabelledInfo): void {
    this.#nodes.delete(node.metadata.name);
    this.#generation++;
  }

  setClusterUid(uid: string): void {
    if (this.#clusterUid === uid) return;
    this.#clusterUid = uid;
    this.#generation++;
  }

  get clusterUid(): string | undefined {
    return this.#clusterUid;
  }

  /** Sizes of the stores (tests, gauges). */
  get sizes(): { replicaSets: number; jobs: number; namespaces: number; nodes: number } {
    return { replicaSets: this.#replicaSets.size, jobs: this.#jobs.size, namespaces: this.#namespaces.size, nodes: this.#nodes.size };
  }

  // ---- association ---------------------------------------------------------------------------------------

  /**
   * Associate a resource with a pod. Rules are tried in order; the first rule whose sources all have a
   * value decides, whether or not a pod matches (as the Collector does: a resource that names a pod is never
   * attributed to another pod through a later rule). A connection or `k8s.pod.ip` that cannot be a pod IP
   * (loopback, mesh proxy) counts as absent.
   */
  associate(read: AttributeReader, clientAddress: string | undefined): Association {
    // Called for every resource of every request: the values go into one reused array, parallel to the rule's sources.
    const values = this.#values;
    for (const rule of this.rules) {
      const sources = rule.sources;
      let complete = true;
      for (let s = 0; s < sources.length; s++) {
        const v = this.#sourceValue(sources[s] as SourceKind, read, clientAddress);
        if (v === undefined) {
          complete = false;
          break;
        }
        values[s] = v;
      }
      if (!complete) continue;
      return { rule, entry: this.#lookup(rule, values), connectionIp: sourceValueOf(sources, values, 'connection') };
    }
    return { rule: undefined, entry: undefined, connectionIp: undefined };
  }

  /** Whether `attributesFor` reads its container hint (only when container attributes are extracted). */
  get usesContainerHint(): boolean {
    return this.#containerMetadata.length > 0;
  }

  #sourceValue(src: SourceKind, read: AttributeReader, clientAddress: string | undefined): string | undefined {
    if (src === 'connection') return podIpCandidate(clientAddress);
    const raw = read(src);
    if (raw === undefined) return undefined;
    const v = String(raw);
    if (v === '') return undefined;
    if (src === 'k8s.pod.ip') return podIpCandidate(v);
    if (src === 'container.id') return stripContainerId(v);
    return v;
  }

  /** The pod a rule's source values (`values[i]` for `rule.sources[i]`) name, if they all agree. */
  #lookup(rule: AssociationRule, values: readonly string[]): PodEntry | undefined {
    const sources = rule.sources;
    let entry: PodEntry | undefined;
    switch (rule.primary) {
      case 'uid':
        entry = this.pods.byUid(sourceValueOf(sources, values, 'k8s.pod.uid') as string);
        break;
      case 'containerId':
        entry = this.pods.byContainerId(sourceValueOf(sources, values, 'container.id') as string);
        break;
      case 'name':
        entry = this.pods.byName(sourceValueOf(sources, values, 'k8s.namespace.name') as string, sourceValueOf(sources, values, 'k8s.pod.name') as string);
        break;
      case 'ip':
        entry = this.pods.byIp((sourceValueOf(sources, values, 'k8s.pod.ip') ?? sourceValueOf(sources, values, 'connection')) as string);
        break;
    }
    if (entry === undefined) return undefined;
    const pod = entry.pod;
    for (let s = 0; s < sources.length; s++) {
      const src = sources[s] as SourceKind;
      const v = values[s] as string;
      let ok: boolean;
      switch (src) {
        case 'connection':
        case 'k8s.pod.ip':
          ok = pod.ips.includes(v);
          break;
        case 'k8s.pod.uid':
          ok = pod.metadata.uid === v;
          break;
        case 'k8s.pod.name':
          ok = pod.metadata.name === v;
          break;
        case 'k8s.namespace.name':
          ok = (pod.metadata.namespace ?? '') === v;
          break;
        case 'container.id':
          ok = pod.containers.some((c) => c.id === v);
          break;
      }
      if (!ok) return undefined;
    }
    return entry;
  }

  // ---- extraction ----------------------------------------------------------------------------------------

  /**
   * The attributes `extract` asks for, for a pod (and the container named by `container`, when container
   * attributes are asked for). Pod-level attributes are cached per pod until the pod or its owners,
   * namespace or node change.
   */
  attributesFor(entry: PodEntry, container: ContainerHint = {}): ReadonlyArray<Attr> {
    const gen = this.#generation;
    if (entry.attrs === undefined || entry.attrsGeneration !== gen) {
      entry.attrs = this.#podAttributes(entry);
      entry.attrsGeneration = gen;
    }
    if (this.#containerMetadata.length === 0) return entry.attrs;
    const c = this.#containerAttributes(entry.pod, container);
    return c.length === 0 ? entry.attrs : [...entry.attrs, ...c];
  }

  #podAttributes(entry: PodEntry): Attr[] {
    const pod = entry.pod;
    const out: Attr[] = [];
    const seen = new Set<string>();
    const add = (k: string, v: string | undefined): void => {
      if (v === undefined || v === '' || seen.has(k)) return;
      seen.add(k);
      out.push([k, v]);
    };
    const owner = pod.owner;
    const ownerIs = (kind: string): boolean => owner !== undefined && owner.kind === kind;
    for (const m of this.#podMetadata) {
      switch (m) {
        case 'k8s.namespace.name':
          add(m, pod.metadata.namespace);
          break;
        case 'k8s.pod.name':
          add(m, pod.metadata.name);
          break;
        case 'k8s.pod.uid':
          add(m, pod.metadata.uid);
          break;
        case 'k8s.pod.start_time':
          add(m, pod.startTime);
          break;
        case 'k8s.pod.hostname':
          add(m, pod.hostname !== '' ? pod.hostname : pod.metadata.name);
          break;
        case 'k8s.pod.ip':
          add(m, pod.ips[0]);
          break;
        case 'k8s.replicaset.name':
          if (ownerIs('ReplicaSet')) add(m, owner?.name);
          break;
        case 'k8s.replicaset.uid':
          if (ownerIs('ReplicaSet')) add(m, owner?.uid);
          break;
        case 'k8s.deployment.name':
          add(m, this.#resolve(entry, 'deployment.name'));
          break;
        case 'k8s.deployment.uid':
          add(m, this.#resolve(entry, 'deployment.uid'));
          break;
        case 'k8s.statefulset.name':
          if (ownerIs('StatefulSet')) add(m, owner?.name);
          break;
        case 'k8s.statefulset.uid':
          if (ownerIs('StatefulSet')) add(m, owner?.uid);
          break;
        case 'k8s.daemonset.name':
          if (ownerIs('DaemonSet')) add(m, owner?.name);
          break;
        case 'k8s.daemonset.uid':
          if (ownerIs('DaemonSet')) add(m, owner?.uid);
          break;
        case 'k8s.job.name':
          if (ownerIs('Job')) add(m, owner?.name);
          break;
        case 'k8s.job.uid':
          if (ownerIs('Job')) add(m, owner?.uid);
          break;
        case 'k8s.cronjob.name':
          add(m, this.#resolve(entry, 'cronjob.name'));
          break;
        case 'k8s.cronjob.uid':
          add(m, this.#resolve(entry, 'cronjob.uid'));
          break;
        case 'k8s.node.name':
          add(m, pod.nodeName);
          break;
        case 'k8s.node.uid':
          add(m, this.#nodes.get(pod.nodeName)?.metadata.uid);
          break;
        case 'k8s.cluster.uid':
          add(m, this.#clusterUid);
          break;
        default:
          break;
      }
    }
    for (const r of this.#fieldRules) {
      let map: Readonly<Record<string, string>> | undefined;
      if (r.from === 'pod') map = pod[r.what];
      else if (r.from === 'namespace') map = this.#namespaces.get(pod.metadata.namespace ?? '')?.[r.what];
      else map = this.#nodes.get(pod.nodeName)?.[r.what];
      if (map === undefined) continue;
      const prefix = `k8s.${r.from}.${r.what}.`;
      if (r.key !== undefined) {
        add(r.tagName ?? prefix + r.key, map[r.key]);
        continue;
      }
      const re = r.regex as RegExp;
      for (const [k, v] of Object.entries(map)) {
        const m = re.exec(k);
        if (m === null) continue;
        add(r.tagName === undefined ? prefix + k : expandTag(r.tagName, m), v);
      }
    }
    return out;
  }

  /**
   * Owner names two hops away (Deployment through the ReplicaSet, CronJob through the Job). Once resolved
   * they stick to the pod entry: a Deployment deleted before its pods (background cascading deletion) still
   * names them for late spans.
   */
  #resolve(entry: PodEntry, what: 'deployment.name' | 'deployment.uid' | 'cronjob.name' | 'cronjob.uid'): string | undefined {
    const owner = entry.pod.owner;
    if (owner === undefined) return undefined;
    const sticky = entry.resolved?.[what];
    if (what.startsWith('deployment.')) {
      if (owner.kind !== 'ReplicaSet') return undefined;
      const rs = this.#replicaSets.get(owner.uid);
      if (rs !== undefined) {
        const dep = rs.owner?.kind === 'Deployment' ? rs.owner : undefined;
        const value = what === 'deployment.name' ? dep?.name : dep?.uid;
        if (value !== undefined) (entry.resolved ??= {})[what] = value;
        return value;
      }
      if (sticky !== undefined) return sticky;
      if (what === 'deployment.name' && this.#rsTrim) {
        const dash = owner.name.lastIndexOf('-');
        return dash > 0 ? owner.name.slice(0, dash) : undefined;
      }
      return undefined;
    }
    if (owner.kind !== 'Job') return undefined;
    const job = this.#jobs.get(owner.uid);
    if (job !== undefined) {
      const cj = job.owner?.kind === 'CronJob' ? job.owner : undefined;
      const value = what === 'cronjob.name' ? cj?.name : cj?.uid;
      if (value !== undefined) (entry.resolved ??= {})[what] = value;
      return value;
    }
    if (sticky !== undefined) return sticky;
    if (what === 'cronjob.name' && !this.#jobsWatched) {
      // A CronJob names its Jobs `<cronjob>-<scheduled minute>`.
      const m = /^(.+)-\d+$/.exec(owner.name);
      return m === null ? undefined : m[1];
    }
    return undefined;
  }

  #containerAttributes(pod: PodInfo, hint: ContainerHint): Attr[] {
    const id = stripContainerId(hint.id);
    let c = id === undefined ? undefined : pod.containers.find((x) => x.id === id);
    if (c === undefined && hint.name !== undefined) c = pod.containers.find((x) => x.name === hint.name);
    if (c === undefined && id === undefined && hint.name === undefined && pod.containers.length === 1) c = pod.containers[0];
    if (c === undefined) return [];
    const out: Attr[] = [];
    const image = c.image === '' ? undefined : parseImage(c.image);
    for (const m of this.#containerMetadata) {
      let v: string | undefined;
      if (m === 'k8s.container.name') v = c.name;
      else if (m === 'container.id') v = c.id;
      else if (m === 'container.image.name') v = image?.name;
      else if (m === 'container.image.tag') v = image?.tag;
      if (v !== undefined && v !== '') out.push([m, v]);
    }
    return out;
  }
}
