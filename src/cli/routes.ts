/**
 * `routelens routes`: query a running routelens's /api/v1/routes and print the table (or the JSON).
 */
import { formatRoutesTable } from './routes-table';
import type { RoutesResponse } from '../connectors/routelatency/query';

export interface RoutesCommandOptions {
  url: string;
  window?: string | undefined;
  service?: string | undefined;
  sort?: string | undefined;
  limit?: string | undefined;
  json: boolean;
  watch: boolean;
  /** Ask for the whole cluster (`scope=cluster`): every peer's routes merged. */
  cluster?: boolean;
  /** Bearer token for a protected query API. */
  token?: string | undefined;
  color: boolean;
  out: NodeJS.WritableStream;
  /** Stop watching when aborted (tests); Ctrl-C otherwise. */
  signal?: AbortSignal;
  intervalMs?: number;
}

/** Thrown for an API or connection failure; main prints the message and exits 1. */
export class CommandError extends Error {}

/** GET `u` from a running routelens's query API as JSON; a CommandError saying what went wrong otherwise. */
export async function getApiJson<T>(u: URL, o: { url: string; token?: string | undefined }): Promise<T> {
  let res: Response;
  try {
    res = await fetch(u, { headers: o.token === undefined ? {} : { authorization: `Bearer ${o.token}` } });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? String(err);
    throw new CommandError(`cannot reach routelens at ${o.url}: ${cause}. Is it running (npm start), and is --url right?`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CommandError(`unexpected answer from ${u.href} (HTTP ${res.status}): ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new CommandError(`${u.href}: HTTP ${res.status}: ${(body as { error?: string }).error ?? text.slice(0, 200)}`);
  return body as T;
}

export async function fetchRoutes(o: RoutesCommandOptions): Promise<RoutesResponse> {
  const u = new URL('/api/v1/routes', o.url);
  for (const [k, v] of [
    ['window', o.window],
    ['service', o.service],
    ['sort', o.sort],
    ['limit', o.limit],
  ] as const) {
    if (v !== undefined) u.searchParams.set(k, v);
  }
  if (o.cluster === true) u.searchParams.set('scope', 'cluster');
  return getApiJson<RoutesResponse>(u, o);
}

/** What a cluster-wide answer adds (see the routequery extension). */
interface ClusterFields {
  partial?: boolean;
  peers?: { peer: string; ok: boolean; error: string | null }[];
}

/**
 * The line under a cluster-wide table: how many peers answered and, when some did not, which and why. A partial
 * answer is never shown without saying so.
 */
export function clusterLine(r: ClusterFields, color = false): string {
  const peers = r.peers ?? [];
  const ok = peers.filter((p) => p.ok).length;
  if (r.partial !== true) return `cluster: all ${ok} peers answered\n`;
  const missing = peers.filter((p) => !p.ok).map((p) => `  ${p.peer}: ${p.error ?? 'no answer'}\n`);
  const head = `PARTIAL: ${ok} of ${peers.length} peers answered${missing.length === 0 ? ' (no peer was found besides this one)' : '; missing:'}`;
  return `${color ? `\u001b[31m${head}\u001b[0m` : head}\n${missing.join('')}`;
}

export async function routesCommand(o: RoutesCommandOptions): Promise<void> {
  const render = async (): Promise<string> => {
    const r = await fetchRoutes(o);
    if (o.json) return `${JSON.stringify(r, null, 2)}\n`;
    const table = formatRoutesTable(r, { color: o.color });
    return o.cluster === true ? table + clusterLine(r as ClusterFields, o.color) : table;
  };
  if (!o.watch) {
    o.out.write(await render());
    return;
  }
  const interval = o.intervalMs ?? 2000;
  while (o.signal?.aborted !== true) {
    let text: string;
    try {
      text = await render();
    } catch (err) {
      text = `${err instanceof Error ? err.message : String(err)}\n`;
    }
    o.out.write(`\u001b[2J\u001b[H${new Date().toISOString()}  every ${interval / 1000}s, Ctrl-C to stop\n\n${text}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, interval);
      o.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }
}
