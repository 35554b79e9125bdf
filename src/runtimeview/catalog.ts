/**
 * What the runtime view reads from a metrics stream: the allow-list of metric names with the role each plays,
 * and how a resource names its instance. Names are those of opentelemetry-instrumentation-system-metrics and of
 * the HTTP server instrumentations (old and new semantic conventions); see
 * ../shared/reference/metrics-logs-runtime.md §1.4–1.5.
 */
import type { AttrValue } from './metrics-reader';

export type Role =
  | 'cpu' // process.cpu.time: cumulative seconds by type (user, system)
  | 'cpu_fallback' // process.runtime.<impl>.cpu_time (deprecated, same values)
  | 'rss' // process.memory.usage: bytes (an UpDownCounter: a level, not a rate)
  | 'rss_fallback' // process.runtime.<impl>.memory{type=rss}
  | 'vms' // process.memory.virtual
  | 'threads' // process.thread.count
  | 'threads_fallback' // process.runtime.<impl>.thread_count
  | 'fds' // process.open_file_descriptor.count (semconv: process.unix.file_descriptor.count)
  | 'gc' // cpython.gc.collections by generation (never process.runtime.cpython.gc_count: allocation counts)
  | 'ctx_switches' // process.context_switches by type
  | 'http_old' // http.server.duration, ms, route in http.target
  | 'http_new'; // http.server.request.duration, s, route in http.route

/**
 * Whether the first point of a cumulative stream counts from its start time. Synchronous instruments (the HTTP
 * histograms) start at zero at their start time, so a new stream's first count is requests since then. The
 * observable counters of system-metrics report process lifetime totals (CPU since the process started, GC since
 * the interpreter started) under the start time of the instrument: only differences between points are rates.
 */
export function countsFromStart(role: Role): boolean {
  return role === 'http_old' || role === 'http_new';
}

const RUNTIME_PREFIX = /^process\.runtime\.[a-z0-9_]+\.(cpu_time|memory|thread_count)$/;

/** The role of an allow-listed metric name, else undefined (the metric is skipped unread). */
export function roleOf(name: string): Role | undefined {
  switch (name) {
    case 'process.cpu.time':
      return 'cpu';
    case 'process.memory.usage':
      return 'rss';
    case 'process.memory.virtual':
      return 'vms';
    case 'process.thread.count':
      return 'threads';
    case 'process.open_file_descriptor.count':
    case 'process.unix.file_descriptor.count':
      return 'fds';
    case 'cpython.gc.collections':
      return 'gc';
    case 'process.context_switches':
      return 'ctx_switches';
    case 'http.server.duration':
      return 'http_old';
    case 'http.server.request.duration':
      return 'http_new';
  }
  const m = RUNTIME_PREFIX.exec(name);
  if (m === null) return undefined;
  return m[1] === 'cpu_time' ? 'cpu_fallback' : m[1] === 'memory' ? 'rss_fallback' : 'threads_fallback';
}

const PREFIXES: readonly Uint8Array[] = ['process.', 'cpython.gc.', 'http.server.'].map((x) => Buffer.from(x, 'latin1'));

/**
 * False when the metric name in `buf[start, end)` cannot have a role (its bytes start with none of the prefixes
 * of the allow-listed names): such a metric is skipped without its name being decoded. True means "maybe":
 * roleOf decides.
 */
export function mayHaveRole(buf: Uint8Array, start: number, end: number): boolean {
  outer: for (const p of PREFIXES) {
    if (end - start < p.length) continue;
    for (let i = 0; i < p.length; i++) if (buf[start + i] !== p[i]) continue outer;
    return true;
  }
  return false;
}

/** Does a point of this role belong in the view? (The runtime memory metric also carries `type=vms`.) */
export function keepPoint(role: Role, attributes: Readonly<Record<string, AttrValue>>): boolean {
  if (role === 'rss_fallback') return attributes['type'] === 'rss';
  return true;
}

export type InstanceSource = 'service.instance.id' | 'k8s.pod.uid' | 'k8s.pod.name' | 'host.name' | 'none';

export interface InstanceIdentity {
  /** Unique key: service, namespace and instance joined. */
  key: string;
  service: string;
  namespace: string;
  /** The instance's name as shown: the value of `source`, or "" when the resource names none. */
  instance: string;
  source: InstanceSource;
}

const SOURCES: readonly Exclude<InstanceSource, 'none'>[] = ['service.instance.id', 'k8s.pod.uid', 'k8s.pod.name', 'host.name'];

function str(v: AttrValue | undefined): string {
  return v === undefined ? '' : String(v);
}

/**
 * The instance a resource describes: service.name (+ service.namespace) and service.instance.id, else
 * k8s.pod.uid, else k8s.pod.name, else host.name. A resource without any of these is one instance per service
 * (several processes writing it are flagged as multiple writers).
 */
export function instanceIdentity(resource: Readonly<Record<string, AttrValue>>): InstanceIdentity {
  const service = str(resource['service.name']) || 'unknown_service';
  const namespace = str(resource['service.namespace']);
  let source: InstanceSource = 'none';
  let instance = '';
  for (const s of SOURCES) {
    const v = str(resource[s]);
    if (v !== '') {
      source = s;
      instance = v;
      break;
    }
  }
  return { key: JSON.stringify([service, namespace, source, instance]), service, namespace, instance, source };
}

/** Resource attributes kept with an instance for display: k8s.*, host.name, process.pid, versions. */
export function describedBy(key: string): boolean {
  return (
    key.startsWith('k8s.') ||
    key === 'host.name' ||
    key === 'process.pid' ||
    key === 'service.version' ||
    key === 'telemetry.sdk.language' ||
    key === 'telemetry.sdk.version' ||
    key === 'telemetry.auto.version' ||
    key === 'process.runtime.name' ||
    key === 'process.runtime.version'
  );
}
