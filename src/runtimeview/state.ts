/**
 * The runtime view's state: per instance (see catalog.instanceIdentity) the allow-listed streams with their
 * points, bounded in instances, streams per instance and points per stream. It is plain data so that worker
 * processes can send it to the primary (`snapshot`) and the primary can merge them (`merge`): points are facts
 * with their own times, so the merge of several workers' states is their union, whichever worker received which
 * export.
 *
 * Points are thinned to one per `spacingMs` of time and start time (see thinAround; 1 s for a 1-minute shortest
 * window): for a cumulative sum the difference between kept points is the sum of the dropped differences.
 * Python exports every 60 s by default: a stream then holds 60 points an hour. Memory is bounded by the caps:
 * at most maxPointsPerStream points (32 bytes each) per stream, so an instance that exports every second keeps
 * its last 12 minutes, and `covered_s` says so.
 */
import { describedBy, instanceIdentity, keepPoint, mayHaveRole, roleOf, type InstanceIdentity, type InstanceSource, type Role } from './catalog';
import {
  pointAttributes,
  readMetricsRequest,
  resourceAttributes,
  Temporality,
  type AttrValue,
  type MetricPoint,
  type ReadOptions,
  type ResourceMetricsRead,
} from './metrics-reader';
import type { Points } from './series';

export interface StreamState extends Points {
  role: Role;
  metric: string;
  unit: string;
  /** Point attributes as strings (the ones the view reads: type, generation, route, method, status). */
  attrs: Record<string, string>;
  delta: boolean;
  monotonic: boolean;
}

export interface InstanceState {
  key: string;
  service: string;
  namespace: string;
  instance: string;
  source: InstanceSource;
  /** k8s.*, host.name, process.pid, versions (see catalog.describedBy). */
  resource: Record<string, string>;
  /** When a request about this instance last arrived (routelens clock, ms). */
  lastReceivedMs: number;
  streams: Map<string, StreamState>;
}

export interface RuntimeStateOptions {
  /** The longest query window (ms): points older than it (and a margin) are dropped. */
  maxWindowMs: number;
  /** Points of one stream and start time closer than this are thinned to the last (ms); the shortest window / 60. */
  spacingMs: number;
  maxInstances: number;
  maxStreamsPerInstance: number;
  maxPointsPerStream: number;
}

export const DEFAULT_RUNTIME_STATE_OPTIONS: RuntimeStateOptions = {
  maxWindowMs: 3_600_000,
  spacingMs: 1000,
  maxInstances: 1_000,
  maxStreamsPerInstance: 300,
  maxPointsPerStream: 720,
};

export interface StreamSnapshot {
  key: string;
  role: Role;
  metric: string;
  unit: string;
  attrs: Record<string, string>;
  delta: boolean;
  monotonic: boolean;
  t: number[];
  s: number[];
  v: number[];
  /** Histogram sums; null stands for NaN (JSON has none). */
  u: (number | null)[];
}

export interface InstanceSnapshot {
  key: string;
  service: string;
  namespace: string;
  instance: string;
  source: InstanceSource;
  resource: Record<string, string>;
  lastReceivedMs: number;
  streams: StreamSnapshot[];
}

/** The state as JSON-safe data, for the primary to merge. */
export interface RuntimeSnapshot {
  version: 1;
  instances: InstanceSnapshot[];
}

export interface IngestStats {
  resources: number;
  points: number;
  /** Points refused because a cap (instances, streams per instance) was reached. */
  droppedPoints: number;
}

/** Point attributes the view reads; other attributes still separate streams (they are part of the stream key). */
const READ_ATTRS = [
  'type',
  'cpu.mode',
  'cpython.gc.generation',
  'generation',
  'process.context_switch.type',
  'http.route',
  'http.target',
  'http.method',
  'http.request.method',
  'http.status_code',
  'http.response.status_code',
];

function streamKey(role: Role, scope: string, metric: string, temporality: Temporality, attributes: Record<string, AttrValue>): string {
  const keys = Object.keys(attributes).sort();
  return JSON.stringify([role, scope, metric, temporality, keys.map((k) => [k, attributes[k]])]);
}

const wanted = (name: string): boolean => roleOf(name) !== undefined;
const READ_OPTIONS: ReadOptions = { lazy: true, mayWant: mayHaveRole };

/** What a resource's bytes say about its instance: decoded once per distinct encoding (see RuntimeState.#resources). */
interface ResourceInfo {
  id: InstanceIdentity;
  /** The resource attributes kept with the instance (describedBy), as strings, in the resource's order. */
  described: [string, string][];
}

export class RuntimeState {
  readonly options: RuntimeStateOptions;
  readonly instances = new Map<string, InstanceState>();
  /** Minimum time between kept points of a stream (ms), see the file comment. */
  readonly spacingMs: number;
  /**
   * Resources by their encoded bytes. An instance exports the same resource bytes every time, so its attributes
   * are decoded once rather than on every export. A cache of a pure function of the bytes: cleared when large.
   */
  readonly #resources = new Map<string, ResourceInfo>();
  /**
   * Per instance key, the stream each encoding of (scope, metric, temporality, point attributes) belongs to, or
   * null for points the view does not keep: a point whose attributes were seen before is recorded without
   * decoding them or building its stream key. An entry always points to a stream its instance holds (sweep
   * removes the entries of the streams it drops); the maps are caches, cleared when large.
   */
  readonly #aliases = new Map<string, Map<string, StreamState | null>>();

  constructor(options: Partial<RuntimeStateOptions> = {}) {
    this.options = { ...DEFAULT_RUNTIME_STATE_OPTIONS, ...options };
    this.spacingMs = this.options.spacingMs;
  }

  /** How long points are kept: the longest window, the pair that straddles its start, and a margin. */
  get retentionMs(): number {
    return this.options.maxWindowMs + 10 * 60_000;
  }

  /** Decode an ExportMetricsServiceRequest and record its allow-listed points. Throws DecodeError on malformed bytes. */
  ingest(request: Uint8Array, receivedMs: number): IngestStats {
    const stats: IngestStats = { resources: 0, points: 0, droppedPoints: 0 };
    for (const rm of readMetricsRequest(request, wanted, READ_OPTIONS)) {
      stats.resources++;
      const res = this.#resourceInfo(request, rm);
      let inst: InstanceState | undefined;
      let aliases = this.#aliases.get(res.id.key);
      for (const m of rm.metrics) {
        const role = roleOf(m.name) as Role;
        // A cumulative sum or histogram, a delta one, or a gauge (a level with no start).
        const delta = m.temporality === Temporality.Delta;
        // Unambiguous: the lengths say where the scope and the name end, the temporality is digits.
        const prefix = `${m.scope.length}:${m.scope}${m.name.length}:${m.name}${m.temporality}:`;
        for (const p of m.points) {
          if (p.noRecordedValue || !Number.isFinite(p.value) || p.timeMs <= 0) continue;
          const alias = prefix + p.attrKey;
          let st = aliases?.get(alias);
          if (st === null) continue;
          if (st === undefined) {
            const attributes = pointAttributes(request, p);
            if (!keepPoint(role, attributes)) {
              (aliases ??= this.#aliasesOf(res.id.key)).set(alias, null);
              continue;
            }
            inst ??= this.#instance(res, receivedMs);
            if (inst === undefined) {
              stats.droppedPoints++;
              continue;
            }
            const key = streamKey(role, m.scope, m.name, m.temporality, attributes);
            st = inst.streams.get(key);
            if (st === undefined) {
              if (inst.streams.size >= this.options.maxStreamsPerInstance) {
                stats.droppedPoints++;
                continue;
              }
              const attrs: Record<string, string> = {};
              for (const a of READ_ATTRS) if (attributes[a] !== undefined) attrs[a] = String(attributes[a]);
              st = { role, metric: m.name, unit: m.unit, attrs, delta, monotonic: m.monotonic || m.type === 'histogram', t: [], s: [], v: [], u: [] };
              inst.streams.set(key, st);
            }
            (aliases ??= this.#aliasesOf(res.id.key)).set(alias, st);
          } else {
            inst ??= this.#instance(res, receivedMs);
            if (inst === undefined) {
              stats.droppedPoints++;
              continue;
            }
          }
          this.#insert(st, p);
          stats.points++;
        }
      }
      if (inst === undefined && rm.metrics.length === 0) this.#touch(res.id.key, receivedMs);
    }
    return stats;
  }

  #resourceInfo(request: Uint8Array, rm: ResourceMetricsRead): ResourceInfo {
    let info = this.#resources.get(rm.resourceKey);
    if (info === undefined) {
      const resource = resourceAttributes(request, rm);
      const described: [string, string][] = [];
      for (const [k, v] of Object.entries(resource)) if (describedBy(k)) described.push([k, String(v)]);
      info = { id: instanceIdentity(resource), described };
      if (this.#resources.size >= 2 * this.options.maxInstances) this.#resources.clear();
      this.#resources.set(rm.resourceKey, info);
    }
    return info;
  }

  #aliasesOf(instanceKey: string): Map<string, StreamState | null> {
    let a = this.#aliases.get(instanceKey);
    if (a === undefined || a.size >= 4 * this.options.maxStreamsPerInstance) {
      if (a === undefined && this.#aliases.size >= 2 * this.options.maxInstances) this.#aliases.clear();
      a = new Map();
      this.#aliases.set(instanceKey, a);
    }
    return a;
  }

  /** A resource seen without allow-listed metrics still refreshes a known instance's last-seen time. */
  #touch(instanceKey: string, receivedMs: number): void {
    const inst = this.instances.get(instanceKey);
    if (inst !== undefined && receivedMs > inst.lastReceivedMs) inst.lastReceivedMs = receivedMs;
  }

  #instance(res: ResourceInfo, receivedMs: number): InstanceState | undefined {
    const id = res.id;
    let inst = this.instances.get(id.key);
    if (inst === undefined) {
      if (this.instances.size >= this.options.maxInstances) return undefined;
      inst = { ...id, resource: {}, lastReceivedMs: receivedMs, streams: new Map() };
      this.instances.set(id.key, inst);
    }
    for (const [k, v] of res.described) inst.resource[k] = v;
    if (receivedMs > inst.lastReceivedMs) inst.lastReceivedMs = receivedMs;
    return inst;
  }

  #insert(st: StreamState, p: MetricPoint): void {
    const n = st.t.length;
    const t = p.timeMs;
    const s = p.startMs;
    let i = n;
    if (n > 0 && t <= (st.t[n - 1] as number)) {
      // Out of order (or a repeat): find its place; a point already held (same time and start) is ignored.
      while (i > 0 && (st.t[i - 1] as number) > t) i--;
      for (let j = i - 1; j >= 0 && st.t[j] === t; j--) if (st.s[j] === s) return;
    }
    st.t.splice(i, 0, t);
    st.s.splice(i, 0, s);
    st.v.splice(i, 0, p.value);
    st.u.splice(i, 0, p.sum);
    if (!st.delta) thinAround(st, i, this.spacingMs);
    if (st.t.length > this.options.maxPointsPerStream) {
      st.t.shift();
      st.s.shift();
      st.v.shift();
      st.u.shift();
    }
  }

  /** Drop points older than the retention, then streams and instances left empty or not heard of since. */
  sweep(nowMs: number): void {
    const cutoff = nowMs - this.retentionMs;
    for (const [key, inst] of this.instances) {
      if (inst.lastReceivedMs < cutoff) {
        this.instances.delete(key);
        this.#aliases.delete(key);
        continue;
      }
      let dropped: Set<StreamState> | undefined;
      for (const [sk, st] of inst.streams) {
        // Keep the last point before the cutoff: the increment that straddles it.
        let drop = 0;
        while (drop + 1 < st.t.length && (st.t[drop + 1] as number) < cutoff) drop++;
        if (drop > 0) {
          st.t.splice(0, drop);
          st.s.splice(0, drop);
          st.v.splice(0, drop);
          st.u.splice(0, drop);
        }
        if (st.t.length === 0 || (st.t[st.t.length - 1] as number) < cutoff) {
          inst.streams.delete(sk);
          (dropped ??= new Set()).add(st);
        }
      }
      const aliases = dropped === undefined ? undefined : this.#aliases.get(key);
      if (aliases !== undefined) for (const [alias, st] of aliases) if (st !== null && dropped?.has(st) === true) aliases.delete(alias);
    }
  }

  snapshot(): RuntimeSnapshot {
    const instances: InstanceSnapshot[] = [];
    for (const inst of this.instances.values()) {
      const streams: StreamSnapshot[] = [];
      for (const [key, st] of inst.streams) {
        streams.push({
          key,
          role: st.role,
          metric: st.metric,
          unit: st.unit,
          attrs: { ...st.attrs },
          delta: st.delta,
          monotonic: st.monotonic,
          t: [...st.t],
          s: [...st.s],
          v: [...st.v],
          u: st.u.map((x) => (Number.isNaN(x) ? null : x)),
        });
      }
      instances.push({
        key: inst.key,
        service: inst.service,
        namespace: inst.namespace,
        instance: inst.instance,
        source: inst.source,
        resource: { ...inst.resource },
        lastReceivedMs: inst.lastReceivedMs,
        streams,
      });
    }
    return { version: 1, instances };
  }

  /**
   * Add another state's snapshot (a worker's) to this one: instances and streams by key, points by union (a
   * point held by both, same time and start, once) thinned by the same rule. Caps apply as on ingest.
   */
  merge(snapshot: RuntimeSnapshot): void {
    for (const si of snapshot.instances) {
      let inst = this.instances.get(si.key);
      if (inst === undefined) {
        if (this.instances.size >= this.options.maxInstances) continue;
        inst = {
          key: si.key,
          service: si.service,
          namespace: si.namespace,
          instance: si.instance,
          source: si.source,
          resource: {},
          lastReceivedMs: si.lastReceivedMs,
          streams: new Map(),
        };
        this.instances.set(si.key, inst);
      }
      Object.assign(inst.resource, si.resource);
      inst.lastReceivedMs = Math.max(inst.lastReceivedMs, si.lastReceivedMs);
      for (const ss of si.streams) {
        let st = inst.streams.get(ss.key);
        if (st === undefined) {
          if (inst.streams.size >= this.options.maxStreamsPerInstance) continue;
          st = {
            role: ss.role,
            metric: ss.metric,
            unit: ss.unit,
            attrs: { ...ss.attrs },
            delta: ss.delta,
            monotonic: ss.monotonic,
            t: [],
            s: [],
            v: [],
            u: [],
          };
          inst.streams.set(ss.key, st);
        }
        mergePoints(st, ss, this.options.maxPointsPerStream, this.spacingMs);
      }
    }
  }
}

/** Removes point i of a stream. */
function removeAt(st: Points, i: number): void {
  st.t.splice(i, 1);
  st.s.splice(i, 1);
  st.v.splice(i, 1);
  st.u.splice(i, 1);
}

/**
 * Thinning: of the points of one start time inside one cell of `spacingMs` on the absolute time grid, only the
 * last is kept. The rule depends only on the points, not on the order they came in, so the union of workers'
 * thinned points thinned again equals the thinning of all points (merge = one state that received everything).
 * Called after inserting point i: only its neighbours can share its cell.
 */
function thinAround(st: Points, i: number, spacingMs: number): void {
  const cell = Math.floor((st.t[i] as number) / spacingMs);
  const s = st.s[i];
  // A later point of the same start in the same cell makes this one redundant.
  for (let j = i + 1; j < st.t.length && Math.floor((st.t[j] as number) / spacingMs) === cell; j++) {
    if (st.s[j] === s) {
      removeAt(st, i);
      return;
    }
  }
  for (let j = i - 1; j >= 0 && Math.floor((st.t[j] as number) / spacingMs) === cell; j--) {
    if (st.s[j] === s) {
      removeAt(st, j);
      return;
    }
  }
}

function mergePoints(st: StreamState, ss: StreamSnapshot, cap: number, spacingMs: number): void {
  const idx: number[] = [];
  for (let i = 0; i < st.t.length; i++) idx.push(i);
  const all: [number, number, number, number][] = idx.map((i) => [st.t[i] as number, st.s[i] as number, st.v[i] as number, st.u[i] as number]);
  for (let i = 0; i < ss.t.length; i++) all.push([ss.t[i] as number, ss.s[i] as number, ss.v[i] as number, ss.u[i] ?? NaN]);
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number, number, number][] = [];
  for (const p of all) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] === p[0] && last[1] === p[1]) continue;
    out.push(p);
  }
  const thinned = st.delta ? out : thin(out, spacingMs);
  const kept = thinned.length > cap ? thinned.slice(thinned.length - cap) : thinned;
  st.t = kept.map((p) => p[0]);
  st.s = kept.map((p) => p[1]);
  st.v = kept.map((p) => p[2]);
  st.u = kept.map((p) => p[3]);
}

/** thinAround for a whole sorted list: the last point of each (cell, start). */
function thin(points: readonly [number, number, number, number][], spacingMs: number): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i] as [number, number, number, number];
    const cell = Math.floor(p[0] / spacingMs);
    let later = false;
    for (let j = i + 1; j < points.length && Math.floor((points[j] as [number, number, number, number])[0] / spacingMs) === cell; j++) {
      if ((points[j] as [number, number, number, number])[1] === p[1]) {
        later = true;
        break;
      }
    }
    if (!later) out.push(p);
  }
  return out;
}
