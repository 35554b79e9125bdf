/**
 * `routelens services`: each service's instances with their runtime (CPU, RSS and its trend, GC, threads, fds)
 * beside its routes' p95/p99 and rates, from a running routelens's /api/v1/services, /api/v1/runtime and
 * /api/v1/services/{service}/runtime.
 *
 *   orders (window 5m)
 *     INSTANCE     CPU    RSS       RSS/MIN   GC/MIN  GEN2/MIN  THREADS  FDS  SEEN
 *     5f0c…a1      0.31   134MiB    +1.20MiB     34      1.00        9   12  4s ago
 *     METHOD  ROUTE                      SPANS/S    P95     P99  REQ/S  5XX/S
 *     GET     /orders/<int:order_id>        1.00  12.3ms  20.0ms   1.00      0
 */
import type { ServicesResponse } from '../connectors/routelatency/query';
import type { RuntimeServicesResponse, ServiceRuntimeResponse } from '../runtimeview/query';
import { getApiJson } from './routes';
import { formatMs, truncate } from './routes-table';

export interface ServicesCommandOptions {
  url: string;
  window?: string | undefined;
  service?: string | undefined;
  json: boolean;
  token?: string | undefined;
  color: boolean;
  out: NodeJS.WritableStream;
  /** The time "ago" is measured from (tests). */
  nowMs?: number;
}

async function getJson<T>(o: ServicesCommandOptions, path: string): Promise<T> {
  const u = new URL(path, o.url);
  if (o.window !== undefined) u.searchParams.set('window', o.window);
  return getApiJson<T>(u, o);
}

/** The runtime answer of every service known to the spans or the metrics (or of `service` alone). */
export async function fetchServices(o: ServicesCommandOptions): Promise<ServiceRuntimeResponse[]> {
  let names: string[];
  if (o.service !== undefined) names = [o.service];
  else {
    const [spans, runtime] = await Promise.all([getJson<ServicesResponse>(o, '/api/v1/services'), getJson<RuntimeServicesResponse>(o, '/api/v1/runtime')]);
    names = [...new Set([...spans.services.map((s) => s.service), ...runtime.services.map((s) => s.service)])].sort();
  }
  return Promise.all(names.map((s) => getJson<ServiceRuntimeResponse>(o, `/api/v1/services/${encodeURIComponent(s)}/runtime`)));
}

const ESC = '\u001b[';
const paint = (on: boolean, code: string, s: string): string => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

function num(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return x.toFixed(digits);
}

/** Bytes with a binary unit and 3 significant digits: `134MiB`, `1.20GiB`, `512KiB`. */
export function formatBytes(b: number | null, signed = false): string {
  if (b === null || !Number.isFinite(b)) return '-';
  const sign = b < 0 ? '-' : signed && b > 0 ? '+' : '';
  let v = Math.abs(b);
  let unit = 'B';
  for (const u of ['KiB', 'MiB', 'GiB', 'TiB']) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  const r = Number(v.toPrecision(3));
  const text = r >= 100 ? String(Math.round(r)) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  return `${sign}${unit === 'B' ? String(Math.round(v)) : text}${unit}`;
}

function ago(iso: string, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function table(rows: string[][], rightAligned: ReadonlySet<number>, indent: string): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
        .join('  ')
        .trimEnd(),
  );
}

/** One block per service: its instances' runtime, then its routes (span and metric figures side by side). */
export function formatServices(services: readonly ServiceRuntimeResponse[], o: { color?: boolean; nowMs?: number } = {}): string {
  const color = o.color ?? false;
  const now = o.nowMs ?? Date.now();
  if (services.length === 0) return 'No services yet: send spans (a traces pipeline) or metrics (a metrics pipeline exporting to routelatency).\n';
  const out: string[] = [];
  for (const s of services) {
    out.push(`${paint(color, '1', s.service)} (window ${s.window})`);
    if (s.instances.length === 0)
      out.push('  no runtime metrics (run the service with opentelemetry-instrument and a metrics pipeline exporting to routelatency)');
    else {
      const rows = [['INSTANCE', 'CPU', 'RSS', 'RSS/MIN', 'GC/MIN', 'GEN2/MIN', 'THREADS', 'FDS', 'SEEN', '']];
      for (const i of s.instances) {
        const notes = [
          i.stale ? 'stale' : '',
          i.multi_writer ? `${i.writers} writers` : '',
          i.points < 2 ? `${i.points} point${i.points === 1 ? '' : 's'}` : '',
        ]
          .filter((x) => x !== '')
          .join(', ');
        rows.push([
          truncate(i.k8s['k8s.pod.name'] ?? (i.instance || '(unnamed)'), 36),
          num(i.cpu_cores),
          formatBytes(i.memory_rss_bytes),
          formatBytes(i.memory_rss_slope_bytes_per_min, true),
          num(i.gc_collections_per_min, 1),
          num(i.gc_gen2_per_min),
          i.threads === null ? '-' : String(i.threads),
          i.open_fds === null ? '-' : String(i.open_fds),
          ago(i.last_seen, now),
          notes === '' ? '' : paint(color, '33', `[${notes}]`),
        ]);
      }
      out.push(...table(rows, new Set([1, 2, 3, 4, 5, 6, 7]), '  '));
    }
    if (s.routes.length > 0) {
      const rows = [['METHOD', 'ROUTE', 'SPANS/S', 'P95', 'P99', 'REQ/S', '5XX/S', '']];
      for (const r of s.routes) {
        rows.push([
          r.method === '' ? '-' : r.method,
          truncate(r.route, 48),
          num(r.spans?.rate_per_s ?? null),
          formatMs(r.spans?.p95_ms ?? null),
          formatMs(r.spans?.p99_ms ?? null),
          num(r.metric?.rate_per_s ?? null),
          num(r.metric?.errors_5xx_per_s ?? null),
          r.diverges === true ? paint(color, '31', `[spans ${num(r.span_to_metric_ratio)}× the requests: sampled upstream?]`) : '',
        ]);
      }
      out.push(...table(rows, new Set([2, 3, 4, 5, 6]), '  '));
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

export async function servicesCommand(o: ServicesCommandOptions): Promise<void> {
  const services = await fetchServices(o);
  o.out.write(
    o.json ? `${JSON.stringify(services, null, 2)}\n` : formatServices(services, { color: o.color, ...(o.nowMs === undefined ? {} : { nowMs: o.nowMs }) }),
  );
}
