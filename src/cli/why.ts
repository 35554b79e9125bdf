/**
 * `routelens why SERVICE ROUTE`: the answer of a running routelens's /api/v1/why, as a sentence and tables a
 * person reads (or the JSON with `--json`). `formatWhy` also prints the offline answers of `routelens analyze --why`.
 *
 *   orders GET /orders/{id} (window 5m)
 *   p99 412 ms (p50 38 ms, 1204 requests); 71 % DB (postgresql pg:5432); N+1 on SELECT … × 24 in 63 % of slow requests.
 *
 *   WHERE THE TIME GOES           SHARE  CRIT.PATH    P50     P95     P99  IN REQ.
 *   db postgresql pg:5432          71 %       70 %  20.1ms   301ms   390ms   100 %
 */
import type { WhyAnswer } from '../analysis/why';
import { getApiJson } from './routes';
import { formatMs, truncate } from './routes-table';

export interface WhyCommandOptions {
  url: string;
  service: string;
  /** `/orders/{id}`, or `GET /orders/{id}` (the method then comes from it). */
  route: string;
  method?: string | undefined;
  window?: string | undefined;
  json: boolean;
  token?: string | undefined;
  color: boolean;
  out: NodeJS.WritableStream;
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** `GET /orders/{id}` → method and route; a route without a leading method is returned as is. */
export function splitMethod(route: string, method?: string): { method: string | undefined; route: string } {
  const m = /^([A-Za-z]+)\s+(\S.*)$/.exec(route.trim());
  if (method === undefined && m !== null && HTTP_METHODS.has((m[1] as string).toUpperCase()))
    return { method: (m[1] as string).toUpperCase(), route: m[2] as string };
  return { method, route: route.trim() };
}

export async function fetchWhy(o: WhyCommandOptions): Promise<WhyAnswer> {
  const { method, route } = splitMethod(o.route, o.method);
  const u = new URL('/api/v1/why', o.url);
  u.searchParams.set('service', o.service);
  u.searchParams.set('route', route);
  if (method !== undefined) u.searchParams.set('method', method);
  if (o.window !== undefined) u.searchParams.set('window', o.window);
  return getApiJson<WhyAnswer>(u, o);
}

export async function whyCommand(o: WhyCommandOptions): Promise<WhyAnswer> {
  const answer = await fetchWhy(o);
  o.out.write(o.json ? `${JSON.stringify(answer, null, 2)}\n` : formatWhy(answer, { color: o.color }));
  return answer;
}

const ESC = '\u001b[';
const paint = (on: boolean, code: string, s: string): string => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

function pct(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '-';
  const p = x * 100;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
}

function num(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '-';
  return Number(x.toPrecision(3)).toString();
}

/** An aligned table: the first column left-aligned (cut to `firstWidth`), the others right-aligned. */
function table(header: string[], rows: string[][], color: boolean, firstWidth = 48): string {
  const cells = [header, ...rows].map((r) => r.map((c, i) => (i === 0 ? truncate(c, firstWidth) : c)));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => {
        const pad = ' '.repeat(Math.max(0, (widths[i] as number) - [...c].length));
        return i === 0 ? c + pad : pad + c;
      })
      .join('  ')
      .trimEnd();
  const [head, ...body] = cells;
  return `${paint(color, '1', line(head as string[]))}\n${body.map(line).join('\n')}\n`;
}

/** The answer for a person: the sentence, then one table per part that has something to say. */
export function formatWhy(a: WhyAnswer, options: { color?: boolean } = {}): string {
  const color = options.color === true;
  const title = `${a.service} ${`${a.method} ${a.route}`.trim()} (window ${a.window}; ${a.analysed} of ${a.count} requests analysed)`;
  let out = `${paint(color, '1', title)}\n${a.summary}\n`;
  if (a.breakdown.length > 0) {
    out += `\n${table(
      ['WHERE THE TIME GOES', 'SHARE', 'CRIT.PATH', 'P50', 'P95', 'P99', 'IN REQ.'],
      a.breakdown.map((b) => [
        b.category === 'self' ? 'self (its own code)' : `${b.category} ${b.target}`.trim(),
        pct(b.share),
        pct(b.critical_path_share),
        formatMs(b.p50_ms),
        formatMs(b.p95_ms),
        formatMs(b.p99_ms),
        pct(b.requests_share),
      ]),
      color,
    )}`;
  }
  if (a.statements.length > 0) {
    out += `\n${table(
      ['STATEMENT', 'DB', 'CALLS/REQ', 'P50', 'P95', 'P99', 'SHARE', 'EXAMPLE TRACE'],
      a.statements
        .slice(0, 10)
        .map((s) => [
          s.fingerprint,
          s.db_system,
          num(s.calls_per_request),
          formatMs(s.p50_ms),
          formatMs(s.p95_ms),
          formatMs(s.p99_ms),
          pct(s.share),
          s.example_trace_id,
        ]),
      color,
      70,
    )}`;
  }
  if (a.outbound.length > 0) {
    out += `\n${table(
      ['OUTBOUND CALL', 'CALLS/REQ', 'P50', 'P95', 'P99', 'SHARE', 'EXAMPLE TRACE'],
      a.outbound
        .slice(0, 10)
        .map((s) => [s.fingerprint, num(s.calls_per_request), formatMs(s.p50_ms), formatMs(s.p95_ms), formatMs(s.p99_ms), pct(s.share), s.example_trace_id]),
      color,
      70,
    )}`;
  }
  if (a.n_plus_one.length > 0) {
    out += `\n${table(
      ['N+1', 'KIND', 'REPEATS', 'MAX', 'IN REQ.', 'IN SLOW', 'COST', 'EXAMPLE TRACE'],
      a.n_plus_one.map((n) => [
        n.fingerprint,
        n.kind,
        num(n.repeats),
        String(n.max_repeats),
        pct(n.requests_share),
        pct(n.slow_requests_share),
        formatMs(n.cost_ms),
        n.example_trace_id,
      ]),
      color,
      70,
    )}`;
  }
  if (a.slow_vs_fast.length > 0) {
    out += `\n${table(
      ['SLOW VS FAST', 'SLOW', 'FAST', 'RATIO', 'P'],
      a.slow_vs_fast.map((x) =>
        x.kind === 'attribute'
          ? [
              `${x.attribute}=${x.value}`,
              `${x.slow_count} of ${x.slow_requests}`,
              `${x.fast_count} of ${x.fast_requests}`,
              x.ratio === null ? 'only slow' : `${num(x.ratio)}×`,
              num(x.p_value),
            ]
          : [
              `${x.fingerprint} (calls/req)`,
              num(x.slow_calls_per_request),
              num(x.fast_calls_per_request),
              x.ratio === null ? 'only slow' : `${num(x.ratio)}×`,
              num(x.p_value),
            ],
      ),
      color,
      70,
    )}`;
  }
  if (a.versions.length > 0) {
    out += `\n${table(
      ['VERSION', 'FIRST SEEN', 'COUNT', 'P95', 'P99', 'VS PREVIOUS'],
      a.versions.map((v) => {
        const vs = v.vs_previous;
        const change =
          vs === null
            ? ''
            : `${vs.version}: p95 ${vs.p95_change === null ? '-' : `${vs.p95_change >= 0 ? '+' : ''}${pct(vs.p95_change)}`} (p=${num(vs.p_value)}${vs.significant ? ', significant' : ''})${
                vs.new_fingerprints.length > 0 ? `, ${vs.new_fingerprints.length} new statement(s)` : ''
              }`;
        return [v.version || '(none)', v.first_seen, String(v.count), formatMs(v.p95_ms), formatMs(v.p99_ms), change];
      }),
      color,
    )}`;
  }
  const q = a.quality;
  const notes = [
    q.truncated_children > 0 ? `${q.truncated_children} children truncated at their parent's end` : '',
    q.children_outside_parent > 0 ? `${q.children_outside_parent} children outside their parent dropped` : '',
    q.clock_skew_adjusted > 0 ? `${q.clock_skew_adjusted} spans moved for clock skew` : '',
    q.double_db_spans > 0 ? `${q.double_db_spans} double DB spans counted once` : '',
    q.db_spans_without_statement > 0 ? `${q.db_spans_without_statement} DB spans without statement` : '',
  ].filter((s) => s !== '');
  if (notes.length > 0) out += `\n${paint(color, '2', `Instrumentation: ${notes.join('; ')}.`)}\n`;
  return out;
}
