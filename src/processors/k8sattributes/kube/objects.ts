/**
 * Slim records of the Kubernetes objects routelens keeps. Informers store these instead of the full API
 * objects (a Pod with its spec, managedFields and status is tens of kilobytes; the slim record keeps what
 * association and extraction read), which keeps memory small on large clusters. Each record keeps
 * `metadata.name/namespace/uid/resourceVersion`, which the informers key and resume by.
 *
 * Converters take the raw JSON of list items and watch events (and `Date` timestamps, as typed clients give).
 */
import { podIpCandidate } from './ip';

export interface SlimMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
}

export interface OwnerRef {
  kind: string;
  name: string;
  uid: string;
}

export interface ContainerInfo {
  name: string;
  /** Runtime container id without the `containerd://` / `docker://` / `cri-o://` scheme. */
  id: string | undefined;
  image: string;
}

export interface PodInfo {
  metadata: SlimMeta;
  nodeName: string;
  hostname: string;
  hostNetwork: boolean;
  /** Normalised pod IPs (status.podIPs, else status.podIP). Empty before the pod has an IP. */
  ips: readonly string[];
  phase: string;
  /** RFC 3339. */
  startTime: string | undefined;
  creationTimestamp: string | undefined;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  /** The controller owner reference (ReplicaSet, StatefulSet, DaemonSet, Job, …). */
  owner: OwnerRef | undefined;
  containers: readonly ContainerInfo[];
}

export interface OwnedInfo {
  metadata: SlimMeta;
  /** Controller owner: a ReplicaSet's Deployment, a Job's CronJob. */
  owner: OwnerRef | undefined;
}

export interface LabelledInfo {
  metadata: SlimMeta;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

/** What the converters keep besides the fields association and metadata need. */
export interface KeepOptions {
  labels: boolean;
  annotations: boolean;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

type Raw = Record<string, unknown>;

function rec(v: unknown): Raw | undefined {
  return v !== null && typeof v === 'object' ? (v as Raw) : undefined;
}

function s(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString().replace(/\.000Z$/, 'Z');
  return undefined;
}

function strMap(v: unknown, keep: boolean): Readonly<Record<string, string>> {
  const r = rec(v);
  if (!keep || r === undefined) return EMPTY;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, val] of Object.entries(r)) {
    if (typeof val === 'string') {
      out[k] = val;
      any = true;
    }
  }
  return any ? out : EMPTY;
}

function meta(o: Raw): SlimMeta | undefined {
  const m = rec(o['metadata']);
  if (m === undefined) return undefined;
  const name = s(m['name']);
  if (name === undefined) return undefined;
  const out: SlimMeta = { name, uid: s(m['uid']) ?? '', resourceVersion: s(m['resourceVersion']) ?? '' };
  const ns = s(m['namespace']);
  if (ns !== undefined && ns !== '') out.namespace = ns;
  return out;
}

function controllerOwner(o: Raw): OwnerRef | undefined {
  const m = rec(o['metadata']);
  const refs = m === undefined ? undefined : m['ownerReferences'];
  if (!Array.isArray(refs)) return undefined;
  let first: OwnerRef | undefined;
  for (const r of refs) {
    const ref = rec(r);
    if (ref === undefined) continue;
    const owner = { kind: s(ref['kind']) ?? '', name: s(ref['name']) ?? '', uid: s(ref['uid']) ?? '' };
    if (ref['controller'] === true) return owner;
    first ??= owner;
  }
  return first;
}

/** `containerd://0123…` → `0123…` */
export function stripContainerId(id: string | undefined): string | undefined {
  if (id === undefined || id === '') return undefined;
  const i = id.indexOf('://');
  return i >= 0 ? id.slice(i + 3) : id;
}

/** Convert a Pod (raw JSON) to its slim record; undefined when it has no name. */
export function toPodInfo(raw: unknown, keep: KeepOptions): PodInfo | undefined {
  const o = rec(raw);
  if (o === undefined) return undefined;
  const m = meta(o);
  if (m === undefined) return undefined;
  const spec = rec(o['spec']) ?? {};
  const status = rec(o['status']) ?? {};
  const md = rec(o['metadata']) ?? {};
  const ips: string[] = [];
  const podIPs = status['podIPs'];
  if (Array.isArray(podIPs)) {
    for (const p of podIPs) {
      const ip = podIpCandidate(s(rec(p)?.['ip']));
      if (ip !== undefined && !ips.includes(ip)) ips.push(ip);
    }
  }
  const single = podIpCandidate(s(status['podIP']));
  if (single !== undefined && !ips.includes(single)) ips.unshift(single);
  const containers: ContainerInfo[] = [];
  const seen = new Set<string>();
  for (const key of ['containerStatuses', 'initContainerStatuses']) {
    const list = status[key];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      const cs = rec(c);
      if (cs === undefined) continue;
      const name = s(cs['name']) ?? '';
      seen.add(name);
      containers.push({ name, id: stripContainerId(s(cs['containerID'])), image: s(cs['image']) ?? '' });
    }
  }
  // Containers not started yet have no status: take their image from the spec.
  const specContainers = spec['containers'];
  if (Array.isArray(specContainers)) {
    for (const c of specContainers) {
      const cs = rec(c);
      const name = s(cs?.['name']) ?? '';
      if (cs === undefined || seen.has(name)) continue;
      containers.push({ name, id: undefined, image: s(cs['image']) ?? '' });
    }
  }
  const phase = s(status['phase']) ?? '';
  return {
    metadata: m,
    nodeName: s(spec['nodeName']) ?? '',
    hostname: s(spec['hostname']) ?? '',
    hostNetwork: spec['hostNetwork'] === true,
    ips,
    phase,
    startTime: s(status['startTime']),
    creationTimestamp: s(md['creationTimestamp']),
    labels: strMap(md['labels'], keep.labels),
    annotations: strMap(md['annotations'], keep.annotations),
    owner: controllerOwner(o),
    containers,
  };
}

/** A ReplicaSet or Job: name, uid and controller owner (Deployment, CronJob). */
export function toOwnedInfo(raw: unknown): OwnedInfo | undefined {
  const o = rec(raw);
  if (o === undefined) return undefined;
  const m = meta(o);
  if (m === undefined) return undefined;
  return { metadata: m, owner: controllerOwner(o) };
}

/** A Namespace or Node: name, uid, and labels/annotations when extraction reads them. */
export function toLabelledInfo(raw: unknown, keep: KeepOptions): LabelledInfo | undefined {
  const o = rec(raw);
  if (o === undefined) return undefined;
  const m = meta(o);
  if (m === undefined) return undefined;
  const md = rec(o['metadata']) ?? {};
  return { metadata: m, labels: strMap(md['labels'], keep.labels), annotations: strMap(md['annotations'], keep.annotations) };
}

/** Pods whose phase means their containers are gone and their IP is free for another pod. */
export function isTerminal(p: PodInfo): boolean {
  return p.phase === 'Succeeded' || p.phase === 'Failed';
}

/**
 * Split an image reference into name and tag: `reg:5000/org/app:1.2@sha256:…` → name `reg:5000/org/app`,
 * tag `1.2`. Without tag or digest the tag is `latest`; with a digest only there is no tag.
 */
export function parseImage(image: string): { name: string; tag: string | undefined } {
  let rest = image;
  let digest = false;
  const at = rest.indexOf('@');
  if (at >= 0) {
    rest = rest.slice(0, at);
    digest = true;
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1) };
  return { name: rest, tag: digest ? undefined : 'latest' };
}
