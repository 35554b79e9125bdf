/**
 * `routelens routes`: the /api/v1/routes response as an aligned table a person reads at a glance.
 *
 *   SERVICE   METHOD  ROUTE              COUNT  RATE/S   ERR%    P50     P95     P99   P99.9     MAX
 *   checkout  GET     /users/{id}         1204   20.1   0.2%  12.3ms  48.0ms  95.1ms   201ms   1.20s
 */
import type { RouteJson, RoutesResponse } from '../connectors/routelatency/query';

export interface RoutesTableOptions {
  /** ANSI colours (bold header, red error rates ≥ 1 %, dim synthetic routes). @default false */
  color?: boolean;
  /** Longer routes are cut with `…`. @default 48 */
  maxRouteWidth?: number;
  /** Longer service names are cut with `…`. @default 24 */
  maxServiceWidth?: number;
}

const ESC = '\u001b[';
const paint = (on: boolean, code: string, s: string): string => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

/** Cuts `s` to `width` characters, ending with `…` when cut. */
export function truncate(s: string, width: number): string {
  const chars = [...s];
  if (chars.length <= width) return s;
  if (width <= 1) return '…'.slice(0, width);
  return `${chars.slice(0, width - 1).join('')}…`;
}

/**
 * A duration in ms with 3 significant digits and a unit: `432µs`, `12.3ms`, `123ms`, `1.20s`, `95.0s`, `2.50m`.
 * The unit is chosen after rounding, so 999.6 ms reads `1.00s`, not `1000ms`.
 */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms === 0) return '0';
  const r = round3(ms);
  if (r < 1) return `${sig(ms * 1000)}µs`;
  if (r < 1000) return `${sig(ms)}ms`;
  if (r < 100_000) return `${sig(ms / 1000)}s`;
  return `${sig(ms / 60_000)}m`;
}

function round3(x: number): number {
  return Number(x.toPrecision(3));
}

/** 3 significant digits, no exponent: 0.0123 → "0.0123", 12.34 → "12.3", 9.999 → "10.0". */
function sig(x: number): string {
  const r = round3(x);
  if (r >= 100) return String(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  if (r >= 1) return r.toFixed(2);
  return r.toPrecision(3);
}

function formatRate(r: number): string {
  if (r === 0) return '0';
  if (r >= 100) return String(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  if (r >= 0.01) return r.toFixed(2);
  return '<0.01';
}

function formatPercent(rate: number): string {
  if (rate === 0) return '0%';
  const p = rate * 100;
  if (p < 0.1) return '<0.1%';
  return p >= 10 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

type Align = 'left' | 'right';

interface Column {
  title: string;
  align: Align;
  cell: (r: RouteJson) => string;
}

/** Renders the routes of a response as a table, followed by nothing else; an empty response gives a one-line note. */
export function formatRoutesTable(response: RoutesResponse, options: RoutesTableOptions = {}): string {
  const color = options.color ?? false;
  const maxRoute = options.maxRouteWidth ?? 48;
  const maxService = options.maxServiceWidth ?? 24;
  const title = `routes over the last ${response.window} (generated ${response.generated_at})`;
  if (response.routes.length === 0) return `${title}\nno routes with spans in the last ${response.window}\n`;

  const hasDims = response.routes.some((r) => Object.keys(r.dimensions).length > 0);
  const columns: Column[] = [
    { title: 'SERVICE', align: 'left', cell: (r) => truncate(r.service, maxService) },
    { title: 'METHOD', align: 'left', cell: (r) => (r.method === '' ? '-' : r.method) },
    { title: 'ROUTE', align: 'left', cell: (r) => truncate(r.route, maxRoute) },
    ...(hasDims
      ? [
          {
            title: 'DIMENSIONS',
            align: 'left' as const,
            cell: (r: RouteJson) =>
              truncate(
                Object.entries(r.dimensions)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(',') || '-',
                32,
              ),
          },
        ]
      : []),
    { title: 'COUNT', align: 'right', cell: (r) => String(r.count) },
    { title: 'RATE/S', align: 'right', cell: (r) => formatRate(r.rate_per_s) },
    { title: 'ERR%', align: 'right', cell: (r) => formatPercent(r.error_rate) },
    { title: 'P50', align: 'right', cell: (r) => formatMs(r.p50_ms) },
    { title: 'P95', align: 'right', cell: (r) => formatMs(r.p95_ms) },
    { title: 'P99', align: 'right', cell: (r) => formatMs(r.p99_ms) },
    { title: 'P99.9', align: 'right', cell: (r) => formatMs(r.p999_ms) },
    { title: 'MAX', align: 'right', cell: (r) => formatMs(r.max_ms) },
  ];
  const cells = response.routes.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => [...(row[i] as string)].length)));
  const pad = (s: string, i: number): string => {
    const w = widths[i] as number;
    const fill = ' '.repeat(Math.max(0, w - [...s].length));
    return (columns[i] as Column).align === 'left' ? s + fill : fill + s;
  };
  const errCol = columns.findIndex((c) => c.title === 'ERR%');
  const lines: string[] = [title];
  lines.push(
    paint(
      color,
      '1',
      columns
        .map((c, i) => pad(c.title, i))
        .join('  ')
        .trimEnd(),
    ),
  );
  response.routes.forEach((r, k) => {
    const row = cells[k] as string[];
    const synthetic = r.route_source === 'overflow' || r.route_source === 'unmatched';
    const parts = row.map((s, i) => {
      const text = pad(s, i);
      if (i === errCol && r.error_rate >= 0.01) return paint(color, '31', text);
      return text;
    });
    let line = parts.join('  ');
    if (columns[columns.length - 1]?.align === 'left') line = line.trimEnd();
    lines.push(synthetic ? paint(color, '2', line) : line);
  });
  return `${lines.join('\n')}\n`;
}
