/**
 * The two Kubernetes API calls the informers make: GET a JSON object (a list page, one namespace) and watch a
 * collection (`?watch=true`: one JSON event per line, `{"type": …, "object": …}`, on a response that stays
 * open). Over node:https with a keep-alive agent; credentials are asked for per request, so rotated tokens and
 * exec plugins are picked up.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { ApiConnection } from './kubeconfig';

/** A refused request (`statusCode` set, with the API's Status message) or a transport failure (no status). */
export class KubeApiError extends Error {
  readonly statusCode: number | undefined;
  constructor(statusCode: number | undefined, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

/** Longest wait for a list page or a single object. */
const GET_TIMEOUT_MS = 60_000;

/** Longest watch event line accepted (a Pod with huge annotations is still far below). */
const MAX_EVENT_BYTES = 64 << 20;

export class KubeApiClient {
  readonly #conn: ApiConnection;
  readonly #agent: http.Agent;
  readonly #https: boolean;

  constructor(conn: ApiConnection) {
    this.#conn = conn;
    this.#https = conn.server.startsWith('https:');
    this.#agent = this.#https ? new https.Agent({ keepAlive: true, ...conn.tls }) : new http.Agent({ keepAlive: true });
  }

  get server(): string {
    return this.#conn.server;
  }

  /**
   * GET `path` and parse the JSON body; rejects with KubeApiError unless the answer is 200, or when the answer
   * does not arrive within `timeoutMs` (a hung list would otherwise stall its informer for good).
   */
  async get(path: string, query: Query, signal: AbortSignal, timeoutMs = GET_TIMEOUT_MS): Promise<unknown> {
    const res = await this.#request(path, query, signal, timeoutMs);
    const body = await readAll(res);
    if (res.statusCode !== 200) throw this.#refused(res.statusCode, body);
    try {
      return JSON.parse(body);
    } catch (err) {
      throw new KubeApiError(undefined, `invalid JSON from ${path}: ${(err as Error).message}`);
    }
  }

  /**
   * Watch `path`, calling `onEvent` for each event in order. Resolves when the server ends the watch (its
   * timeout, or a clean close) or `signal` aborts; rejects when the connection breaks mid-stream or the request
   * is refused (KubeApiError with the status, e.g. 410 when the resourceVersion is too old).
   */
  async watch(path: string, query: Query, onEvent: (type: string, object: unknown) => void, signal: AbortSignal): Promise<void> {
    const res = await this.#request(path, { ...query, watch: true }, signal);
    if (res.statusCode !== 200) throw this.#refused(res.statusCode, await readAll(res));
    const decoder = new StringDecoder('utf8');
    let pending = '';
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(err);
      };
      res.on('data', (chunk: Buffer) => {
        if (failed) return;
        pending += decoder.write(chunk);
        let start = 0;
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', start)) {
          const line = pending.slice(start, nl);
          start = nl + 1;
          if (line.trim() === '') continue;
          let ev: { type?: unknown; object?: unknown };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch (err) {
            return fail(new KubeApiError(undefined, `invalid watch event from ${path}: ${(err as Error).message}`));
          }
          if (typeof ev.type !== 'string') return fail(new KubeApiError(undefined, `watch event without a type from ${path}`));
          try {
            onEvent(ev.type, ev.object);
          } catch (err) {
            return fail(err as Error);
          }
          if (failed) return;
        }
        pending = pending.slice(start);
        if (pending.length > MAX_EVENT_BYTES) fail(new KubeApiError(undefined, `watch event over ${MAX_EVENT_BYTES} bytes from ${path}`));
      });
      res.on('end', () => {
        if (failed) return;
        if (pending.trim() !== '') return fail(new KubeApiError(undefined, `watch of ${path} ended mid-event`));
        resolve();
      });
      res.on('error', (err) => (signal.aborted ? resolve() : fail(new KubeApiError(undefined, `watch connection of ${path} broke: ${err.message}`))));
      res.on('close', () => {
        if (res.complete || failed) return;
        if (signal.aborted) resolve();
        else fail(new KubeApiError(undefined, `watch connection of ${path} closed mid-stream`));
      });
    });
  }

  /** Close idle connections (open watches end through their signals). */
  close(): void {
    this.#agent.destroy();
  }

  async #request(path: string, query: Query, signal: AbortSignal, timeoutMs?: number): Promise<http.IncomingMessage> {
    const auth = await this.#conn.credentials.authorization();
    const url = new URL(this.#conn.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': 'routelens' };
    if (auth !== undefined) headers['authorization'] = auth;
    const request = this.#https ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers, agent: this.#agent, signal }, (res) => {
        if (res.statusCode === 401) this.#conn.credentials.invalidate();
        resolve(res);
      });
      req.on('error', (err) => reject(signal.aborted ? new KubeApiError(undefined, 'stopped') : new KubeApiError(undefined, err.message)));
      // Covers the whole exchange: the timer is the socket's idle timeout, and a body read stalls the socket too.
      if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.pathname} within ${timeoutMs} ms`)));
      req.end();
    });
  }

  #refused(status: number | undefined, body: string): KubeApiError {
    let message = body.slice(0, 300);
    try {
      const s = JSON.parse(body) as { message?: unknown };
      if (typeof s.message === 'string') message = s.message;
    } catch {
      // not a Status object: keep the text
    }
    return new KubeApiError(status, `${status ?? '?'} from ${this.#conn.server}: ${message}`);
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(new KubeApiError(undefined, err.message)));
  });
}
