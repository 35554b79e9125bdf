/**
 * Cluster-wide answers of the routequery extension (`cluster` in its config).
 *
 * Every replica serves its query state at `GET /internal/v1/states` (behind the extension's auth): the snapshots
 * of its connectors (QueryStateSource, src/core/query.ts): its own, or its workers' under `--workers N`, plus
 * the windows peers handed to it when they shut down. A query with `scope=cluster` asks every peer the resolver
 * finds for its snapshots, each within `cluster.timeout`, merges them with the component's factory
 * (`mergeQueryStates`: exact, the sketches share one scale and slots have absolute periods) and answers as one
 * process that saw every span would, with `partial` (true when a peer did not answer or none was found) and
 * `peers` (each peer's outcome). The same source reaching the query twice (a replica that handed its windows
 * off but still answers) is merged once, the latest snapshot winning. Nothing here knows a component's insides.
 *
 * On shutdown a replica pushes its snapshots to a peer (`POST /internal/v1/handoff`), which keeps them for
 * `handoff.retention` and includes them in what it serves, so a rolling update loses no window.
 */
import { randomInt } from 'node:crypto';
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { CreateSettings, Host } from '../../core/component';
import { isClientAuthenticator, type ClientAuthenticator } from '../../core/auth';
import { isQueryStateHost, isRouteQueryProvider, type QueryHint, type QueryResponse, type QueryStateHost, type QueryStateSnapshot } from '../../core/query';
import type { Counter } from '../../core/telemetry';
import { createResolver, type Resolver } from '../../discovery/resolver';
import type { ClusterConfig } from './config';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export const STATES_PATH = '/internal/v1/states';
export const HANDOFF_PATH = '/internal/v1/handoff';

/** Largest request or answer body accepted from a peer, decompressed. */
const MAX_BODY_BYTES = 512 << 20;

/** One peer's part in a cluster-wide answer. */
export interface PeerStatus {
  peer: string;
  ok: boolean;
  error: string | null;
  /** This replica (recognised by its instance id among the resolved peers, or added when it is not among them). */
  self: boolean;
  /** Snapshots (processes, handed-off windows) the peer contributed. */
  sources: number;
  /** Bytes received from the peer (compressed, as on the wire). */
  bytes: number;
}

/** What `GET /internal/v1/states` answers. */
export interface StatesBody {
  instance: string;
  sources: QueryStateSnapshot[];
}

interface Held {
  snapshot: QueryStateSnapshot;
  expiresAtMs: number;
}

/** The scope of a query: `local` (this process, the default) or `cluster`; `undefined` when the value is invalid. */
export function queryScope(params: URLSearchParams): 'local' | 'cluster' | undefined {
  const all = params.getAll('scope');
  if (all.length === 0) return 'local';
  if (all.length > 1) return undefined;
  return all[0] === 'local' || all[0] === 'cluster' ? all[0] : undefined;
}

export function withoutScope(params: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(params);
  out.delete('scope');
  return out;
}

/** The states endpoint's URL for `query`: its path, parameters and time as parameters of their own. */
export function statesPath(query: QueryHint | undefined): string {
  if (query === undefined) return STATES_PATH;
  const out = new URLSearchParams({ path: query.pathname, query: new URLSearchParams(query.params).toString() });
  if (query.atMs !== undefined) out.set('at', String(query.atMs));
  return `${STATES_PATH}?${out.toString()}`;
}

/** The query a states request is for (see statesPath); undefined for the whole state. A bad `at` is left out. */
export function queryOfStatesRequest(params: URLSearchParams): QueryHint | undefined {
  const pathname = params.get('path');
  if (pathname === null) return undefined;
  const at = Number(params.get('at') ?? NaN);
  return { pathname, params: [...new URLSearchParams(params.get('query') ?? '')], ...(Number.isSafeInteger(at) && at > 0 ? { atMs: at } : {}) };
}

/** Read a request or response body, gunzipped when it says so, refusing more than MAX_BODY_BYTES. */
async function readBody(stream: http.IncomingMessage): Promise<{ text: string; wireBytes: number }> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > MAX_BODY_BYTES) throw new Error(`body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(b);
  }
  let raw = Buffer.concat(chunks);
  if (/\bgzip\b/.test(String(stream.headers['content-encoding'] ?? ''))) raw = await gunzip(raw, { maxOutputLength: MAX_BODY_BYTES });
  return { text: raw.toString('utf8'), wireBytes: n };
}

/** Write `value` as JSON, gzipped when the client accepts it (snapshots compress about tenfold). */
export async function sendJson(req: http.IncomingMessage, res: http.ServerResponse, status: number, value: unknown): Promise<void> {
  const text = Buffer.from(JSON.stringify(value), 'utf8');
  const zip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && text.length > 1024;
  const body = zip ? await gzip(text) : text;
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': body.length,
    ...(zip ? { 'content-encoding': 'gzip' } : {}),
  });
  res.end(body);
}

export class ClusterView {
  readonly #settings: CreateSettings;
  readonly #config: ClusterConfig;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  readonly #held = new Map<string, Held>();
  readonly #metrics: {
    peerOk: Counter;
    peerFailed: Counter;
    bytes: Counter;
    handoffSent: Counter;
    handoffFailed: Counter;
    handoffReceived: Counter;
    resolvedOk: Counter;
    resolvedFailed: Counter;
  };
  #resolver: Resolver | undefined;
  #host: QueryStateHost | undefined;
  #components: Host | undefined;
  #client: ClientAuthenticator | undefined;
  #selfLabel = '';
  /** Peer addresses that answered with this process's own instance: itself, not asked again. */
  readonly #selfPeers = new Set<string>();

  constructor(settings: CreateSettings, config: ClusterConfig) {
    this.#settings = settings;
    this.#config = config;
    const t = settings.telemetry;
    const labels = { extension: settings.id };
    const peerHelp = 'Peer requests of cluster-wide queries, by outcome.';
    const handoffHelp = 'Window hand-offs at shutdown, by direction and outcome.';
    const resolveHelp = 'Resolutions of the cluster peers, by outcome.';
    this.#metrics = {
      peerOk: t.counter('routelens_cluster_peer_requests', peerHelp, { ...labels, outcome: 'ok' }),
      peerFailed: t.counter('routelens_cluster_peer_requests', peerHelp, { ...labels, outcome: 'failed' }),
      bytes: t.counter('routelens_cluster_received_bytes', 'Bytes of query state received from peers (compressed, as on the wire).', labels),
      handoffSent: t.counter('routelens_cluster_handoffs', handoffHelp, { ...labels, direction: 'sent', outcome: 'ok' }),
      handoffFailed: t.counter('routelens_cluster_handoffs', handoffHelp, { ...labels, direction: 'sent', outcome: 'failed' }),
      handoffReceived: t.counter('routelens_cluster_handoffs', handoffHelp, { ...labels, direction: 'received', outcome: 'ok' }),
      resolvedOk: t.counter('routelens_cluster_resolutions', resolveHelp, { ...labels, outcome: 'ok' }),
      resolvedFailed: t.counter('routelens_cluster_resolutions', resolveHelp, { ...labels, outcome: 'failed' }),
    };
    t.gauge(
      'routelens_cluster_peers',
      'Peers the resolver currently finds (serving ones, this replica included when listed).',
      labels,
      () => this.#resolver?.membership().serving.length ?? 0,
    );
    t.gauge(
      'routelens_cluster_handed_over_sources',
      'Snapshots handed over by peers that shut down, kept for cluster-wide answers.',
      labels,
      () => this.#held.size,
    );
  }

  /** Start resolving the peers. `port` is the extension's listening port (the default peer port). */
  async start(host: Host, port: number, endpoint: string, serverAuthenticator: string | undefined): Promise<void> {
    const path = `extensions.${this.#settings.id}.cluster`;
    if (!isQueryStateHost(host)) throw new Error(`${path}: this process cannot serve cluster-wide queries (no query state host)`);
    this.#host = host;
    this.#components = host;
    this.#selfLabel = endpoint.replace(/:0$/, `:${port}`);
    const clientId = this.#config.auth.authenticator ?? serverAuthenticator;
    if (clientId !== undefined) {
      const ext = host.getExtension(clientId);
      if (!isClientAuthenticator(ext)) {
        const key = this.#config.auth.authenticator === undefined ? `extensions.${this.#settings.id}.auth.authenticator` : `${path}.auth.authenticator`;
        throw new Error(`${key}: ${JSON.stringify(clientId)} cannot authenticate to the peers (not a client authenticator extension)`);
      }
      this.#client = ext;
    }
    try {
      this.#resolver = createResolver(this.#config.resolver, {
        logger: this.#settings.logger,
        ownPort: port,
        onResolution: (ok) => (ok ? this.#metrics.resolvedOk : this.#metrics.resolvedFailed).add(),
      });
      this.#resolver.subscribe((m) => this.#settings.logger.info({ peers: m.serving }, 'Cluster peers changed'));
      await this.#resolver.start();
    } catch (err) {
      throw new Error(`${path}.resolver: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#settings.logger.info({ resolver: this.#resolver.kind, peers: this.#resolver.membership().serving }, 'Cluster peers resolved');
  }

  async stop(): Promise<void> {
    await this.#resolver?.stop();
    this.#agent.destroy();
  }

  /** Peers as the resolver sees them now. */
  peers(): readonly string[] {
    return this.#resolver?.membership().serving ?? [];
  }

  #live(): QueryStateSnapshot[] {
    const now = Date.now();
    const out: QueryStateSnapshot[] = [];
    for (const [k, h] of this.#held) {
      if (h.expiresAtMs <= now) this.#held.delete(k);
      else out.push(h.snapshot);
    }
    return out;
  }

  /** `GET /internal/v1/states`: this process's snapshots (for `query` only, when given) and those handed to it. */
  async states(query?: QueryHint): Promise<StatesBody> {
    const host = this.#host as QueryStateHost;
    return { instance: host.instance, sources: [...(await host.localQueryStates(query)), ...this.#live()] };
  }

  /** `POST /internal/v1/handoff`: keep a leaving peer's snapshots. */
  async receiveHandoff(req: http.IncomingMessage): Promise<QueryResponse> {
    const host = this.#host as QueryStateHost;
    let body: { from?: unknown; sources?: unknown };
    try {
      body = JSON.parse((await readBody(req)).text) as typeof body;
    } catch (err) {
      return { status: 400, body: { error: `invalid hand-off: ${err instanceof Error ? err.message : String(err)}` } };
    }
    if (body.from === host.instance) return { status: 409, body: { error: 'a replica cannot hand off to itself', instance: host.instance } };
    if (!Array.isArray(body.sources) || !body.sources.every(isSnapshot))
      return { status: 400, body: { error: 'invalid hand-off: expected {from, sources: [{source, takenAtMs, states}]}' } };
    const expiresAtMs = Date.now() + this.#config.handoff.retention;
    for (const s of body.sources) {
      const prev = this.#held.get(s.source);
      if (prev === undefined || prev.snapshot.takenAtMs <= s.takenAtMs) this.#held.set(s.source, { snapshot: s, expiresAtMs });
    }
    this.#metrics.handoffReceived.add();
    this.#settings.logger.info({ from: body.from, sources: body.sources.length }, 'Received the windows of a peer that is shutting down');
    return { status: 200, body: { instance: host.instance, accepted: body.sources.length } };
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return { 'accept-encoding': 'gzip', ...(this.#client?.clientHeaders() ?? {}), ...extra };
  }

  /**
   * One HTTP exchange with a peer within `timeoutMs`. A request on a kept-alive connection the peer had closed
   * meanwhile (it restarted) is sent once more on a new one: both requests are idempotent.
   */
  async #request(
    peer: string,
    method: 'GET' | 'POST',
    path: string,
    timeoutMs: number,
    body?: Buffer,
  ): Promise<{ status: number; text: string; wireBytes: number }> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#exchange(peer, method, path, signal, body);
      } catch (err) {
        const e = err as Error & { reusedSocket?: boolean };
        if (e.name === 'AbortError' || signal.aborted) throw new Error(`no answer within ${timeoutMs} ms`, { cause: err });
        if (attempt > 0 || e.reusedSocket !== true) throw err;
      }
    }
  }

  #exchange(
    peer: string,
    method: 'GET' | 'POST',
    path: string,
    signal: AbortSignal,
    body?: Buffer,
  ): Promise<{ status: number; text: string; wireBytes: number }> {
    return new Promise((resolve, reject) => {
      const headers = this.#headers(body === undefined ? {} : { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      const req = http.request(`http://${peer}${path}`, { method, headers, agent: this.#agent, signal }, (res) => {
        readBody(res).then((r) => resolve({ status: res.statusCode ?? 0, ...r }), reject);
      });
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.end(body);
    });
  }

  async #fetchPeer(peer: string, query: QueryHint | undefined): Promise<{ status: PeerStatus; body?: StatesBody }> {
    const status: PeerStatus = { peer, ok: false, error: null, self: false, sources: 0, bytes: 0 };
    try {
      const r = await this.#request(peer, 'GET', statesPath(query), this.#config.timeout);
      status.bytes = r.wireBytes;
      this.#metrics.bytes.add(r.wireBytes);
      if (r.status !== 200) {
        let message = r.text.slice(0, 200);
        try {
          message = (JSON.parse(r.text) as { error?: string }).error ?? message;
        } catch {
          // not JSON: keep the text
        }
        throw new Error(`HTTP ${r.status}: ${message}`);
      }
      const body = JSON.parse(r.text) as StatesBody;
      if (typeof body.instance !== 'string' || !Array.isArray(body.sources) || !body.sources.every(isSnapshot))
        throw new Error('not a routelens query-state answer');
      status.ok = true;
      status.sources = body.sources.length;
      this.#metrics.peerOk.add();
      return { status, body };
    } catch (err) {
      status.error = err instanceof Error ? err.message : String(err);
      this.#metrics.peerFailed.add();
      return { status };
    }
  }

  /** Every reachable snapshot of the cluster, each source once (its latest), and how each peer answered. */
  async gather(query?: QueryHint): Promise<{ sources: QueryStateSnapshot[]; peers: PeerStatus[]; partial: boolean }> {
    const host = this.#host as QueryStateHost;
    const resolved = this.peers();
    // A peer address that once answered as this process is this process for its whole life (the address is its
    // listener's): its states are the local ones, without a round trip through its own HTTP server.
    const [local, ...remote] = await Promise.all([
      this.states(query),
      ...resolved.map((p) => (this.#selfPeers.has(p) ? Promise.resolve(undefined) : this.#fetchPeer(p, query))),
    ]);
    const bySource = new Map<string, QueryStateSnapshot>();
    const add = (s: QueryStateSnapshot): void => {
      const prev = bySource.get(s.source);
      if (prev === undefined || prev.takenAtMs < s.takenAtMs) bySource.set(s.source, s);
    };
    for (const s of (local as StatesBody).sources) add(s);
    const peers: PeerStatus[] = [];
    let sawSelf = false;
    for (const [i, answer] of remote.entries()) {
      const r = answer ?? { status: { peer: resolved[i] as string, ok: true, error: null, self: false, sources: 0, bytes: 0 }, body: local as StatesBody };
      if (r.body !== undefined && r.body.instance === host.instance) {
        r.status.self = true;
        r.status.sources = (local as StatesBody).sources.length;
        this.#selfPeers.add(r.status.peer);
        sawSelf = true;
      } else if (r.body !== undefined) {
        for (const s of r.body.sources) add(s);
      }
      peers.push(r.status);
    }
    if (!sawSelf) peers.unshift({ peer: this.#selfLabel, ok: true, error: null, self: true, sources: (local as StatesBody).sources.length, bytes: 0 });
    const partial = resolved.length === 0 || peers.some((p) => !p.ok);
    return { sources: [...bySource.values()], peers, partial };
  }

  /** Answer `pathname` for the whole cluster: the peers' snapshots merged by the answering component's factory. */
  async query(pathname: string, params: URLSearchParams): Promise<QueryResponse> {
    const host = this.#host as QueryStateHost;
    const id = [...((this.#components as Host).components('connector') ?? [])].find(
      ([cid, c]) => isRouteQueryProvider(c) && host.mergeQueryStates(cid, []) !== undefined,
    )?.[0];
    if (id === undefined) return { status: 404, body: { error: 'no connector with a cluster-wide query state is configured in a running pipeline' } };
    const forwarded = withoutScope(params);
    // Each replica sends what this query reads (the component decides), not its whole state.
    const { sources, peers, partial } = await this.gather({ pathname, params: [...forwarded], atMs: Date.now() });
    const merged = host.mergeQueryStates(
      id,
      sources.flatMap((s) => (s.states[id] === undefined ? [] : [s.states[id]])),
    );
    if (merged === undefined) return { status: 404, body: { error: `component ${id} has no mergeable query state` } };
    const r = await merged.routeQuery.handleQuery(pathname, forwarded);
    const extra = { scope: 'cluster', partial, peers };
    const body = typeof r.body === 'object' && r.body !== null && !Array.isArray(r.body) ? { ...r.body, ...extra } : r.body;
    return { status: r.status, body };
  }

  /**
   * Hand this process's snapshots (and those handed to it) to a peer: ready peers first, in an order that
   * starts at a random one (replicas leaving together spread out), within `handoff.timeout`. True once a peer
   * accepted them.
   */
  async handOff(): Promise<boolean> {
    if (!this.#config.handoff.enabled || this.#resolver === undefined) return false;
    const host = this.#host as QueryStateHost;
    const deadline = Date.now() + this.#config.handoff.timeout;
    const body = { from: host.instance, sources: (await this.states()).sources };
    if (body.sources.length === 0 || body.sources.every((s) => Object.keys(s.states).length === 0)) return false;
    const bytes = await gzip(Buffer.from(JSON.stringify(body), 'utf8'));
    const m = this.#resolver.membership();
    const rotate = (xs: readonly string[]): string[] => {
      if (xs.length === 0) return [];
      const k = randomInt(xs.length);
      return [...xs.slice(k), ...xs.slice(0, k)];
    };
    const candidates = [...rotate(m.ready), ...rotate(m.serving.filter((p) => !m.ready.includes(p)))];
    const errors: string[] = [];
    for (const peer of candidates) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const r = await this.#request(peer, 'POST', HANDOFF_PATH, left, bytes);
        if (r.status === 200) {
          this.#metrics.handoffSent.add();
          this.#settings.logger.info({ peer, sources: body.sources.length, bytes: bytes.length }, 'Handed the open windows to a peer');
          return true;
        }
        if (r.status !== 409) errors.push(`${peer}: HTTP ${r.status}`);
      } catch (err) {
        errors.push(`${peer}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.#metrics.handoffFailed.add();
    this.#settings.logger.warn({ candidates, errors }, 'No peer took the open windows; they are lost with this process');
    return false;
  }
}

function isSnapshot(s: unknown): s is QueryStateSnapshot {
  const x = s as Partial<QueryStateSnapshot> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.source === 'string' &&
    typeof x.takenAtMs === 'number' &&
    typeof x.states === 'object' &&
    x.states !== null &&
    !Array.isArray(x.states)
  );
}
