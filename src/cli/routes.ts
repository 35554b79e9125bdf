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
  return body as RoutesResponse;
}

export async function routesCommand(o: RoutesCommandOptions): Promise<void> {
  const render = async (): Promise<string> => {
    const r = await fetchRoutes(o);
    return o.json ? `${JSON.stringify(r, null, 2)}\n` : formatRoutesTable(r, { color: o.color });
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
