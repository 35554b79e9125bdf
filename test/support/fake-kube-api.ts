/**
 * A fake Kubernetes API server that speaks enough of the real protocol for informers:
 *
 * - HTTPS with a test CA (see test-certs.ts); every request must carry `Authorization: Bearer <token>` (401
 *   Status otherwise);
 * - list (`GET /api/v1/pods`, `/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/replicasets`, …) with
 *   `metadata.resourceVersion`, `limit`/`continue` paging over a consistent snapshot, `labelSelector` and
 *   `fieldSelector`;
 * - get of one object (`/api/v1/namespaces/{name}`, `/api/v1/namespaces/{ns}/pods/{name}`, …);
 * - watch (`?watch=true` or `?watch=1`) from a `resourceVersion`: replays later events from a bounded history,
 *   then streams `ADDED`/`MODIFIED`/`DELETED` events as chunked JSON lines, `BOOKMARK`s when the client sent
 *   `allowWatchBookmarks=true`, ends the stream after `timeoutSeconds`; a resourceVersion older than the
 *   history answers 410 Gone (as an `ERROR` event on a 200 stream, like the real server, or as an HTTP 410).
 *
 * Test controls: add/modify/delete objects, emit bookmarks, force 410 on the next watch, compact the history,
 * cut the current watches (clean end, socket reset, or in the middle of an event line), count requests.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { makeTestCerts, type TestCerts } from './test-certs';

export type FakeKind = 'pods' | 'replicasets' | 'namespaces' | 'nodes' | 'jobs' | 'endpointslices';

interface KindInfo {
  group: string; // '' for the core group
  version: string;
  kind: string;
  namespaced: boolean;
}

const KINDS: Record<FakeKind, KindInfo> = {
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true },
  replicasets: { group: 'apps', version: 'v1', kind: 'ReplicaSet', namespaced: true },
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false },
  jobs: { group: 'batch', version: 'v1', kind: 'Job', namespaced: true },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', namespaced: true },
};

/** A Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    creationTimestamp?: string;
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  /** EndpointSlice fields (discovery.k8s.io/v1 keeps them at the top level). */
  addressType?: string;
  endpoints?: EndpointSliceEndpoint[];
  ports?: { name?: string; port: number; protocol?: string }[];
}

export interface EndpointSliceEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  nodeName?: string;
  zone?: string;
  targetRef?: { kind: string; name: string; namespace?: string; uid?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One request the server saw. */
export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  kind: FakeKind | undefined;
  verb: 'list' | 'watch' | 'get' | 'other';
  authorized: boolean;
  status: number;
}

interface Watcher {
  kind: FakeKind;
  namespace: string | undefined;
  labelSelector: LabelReq[];
  fieldSelector: FieldReq[];
  bookmarks: boolean;
  res: http.ServerResponse;
  closed: boolean;
}

interface HistoryEvent {
  rv: number;
  kind: FakeKind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
}

export interface FakeKubeApiOptions {
  /** Bearer token every request must carry. @default a random UUID */
  token?: string;
  /** Certificates to serve with. @default makeTestCerts({ names: ['localhost', '127.0.0.1'] }) */
  certs?: TestCerts;
  /** Events kept for watches that resume from a resourceVersion; older ones answer 410. @default 100000 */
  historyLimit?: number;
  /** Directory for the kubeconfig and token files. @default the certificates' directory */
  dir?: string;
}

/** How `cutWatches` ends the current watch streams. */
export type CutMode = 'end' | 'destroy' | 'mid-event';

export class FakeKubeApi {
  readonly token: string;
  readonly certs: TestCerts;
  /** Every request seen, in order. */
  readonly requests: RequestRecord[] = [];
  readonly #server: https.Server;
  readonly #objects = new Map<FakeKind, Map<string, KubeObject>>();
  readonly #history: HistoryEvent[] = [];
  readonly #historyLimit: number;
  readonly #watchers = new Set<Watcher>();
  readonly #snapshots = new Map<string, KubeObject[]>();
  readonly #forceGone = new Map<FakeKind, 'event' | 'status'>();
  readonly #dir: string;
  #listGate: Promise<void> | undefined;
  #closing = false;
  #rv = 1000;
  /** Events with a resourceVersion at or below this are gone from the history. */
  #compactedRv = 1000;
  #url = '';

  private constructor(opts: FakeKubeApiOptions) {
    this.token = opts.token ?? randomUUID();
    this.certs = opts.certs ?? makeTestCerts({ names: ['localhost', '127.0.0.1'] });
    this.#historyLimit = opts.historyLimit ?? 100_000;
    this.#dir = opts.dir ?? fs.mkdtempSync(path.join(this.certs.dir, 'kube-'));
    for (const k of Object.keys(KINDS) as FakeKind[]) this.#objects.set(k, new Map());
    this.#server = https.createServer({ cert: this.certs.serverCert, key: this.certs.serverKey }, (req, res) => {
      this.#handle(req, res);
    });
  }

  /** Start listening on 127.0.0.1 (a random port unless given). */
  static async start(opts: FakeKubeApiOptions & { port?: number } = {}): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(opts);
    await new Promise<void>((resolve, reject) => {
      api.#server.once('error', reject);
      api.#server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    api.#url = `https://127.0.0.1:${(api.#server.address() as AddressInfo).port}`;
    return api;
  }

  /** `https://127.0.0.1:<port>` */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The latest resourceVersion issued. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  /**
   * Write a kubeconfig pointing at this server (CA file, bearer token) and return its path. `server` may
   * name another URL (e.g. `https://localhost:<port>`); `token` another token (to test a refusal).
   */
  writeKubeconfig(opts: { token?: string; context?: string; server?: string; file?: string } = {}): string {
    const context = opts.context ?? 'fake';
    const file = opts.file ?? path.join(this.#dir, `kubeconfig-${context}.yaml`);
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: ${context}-cluster`,
      '  cluster:',
      `    server: ${opts.server ?? this.#url}`,
      `    certificate-authority: ${this.certs.paths.caCert}`,
      'users:',
      `- name: ${context}-user`,
      '  user:',
      `    token: ${opts.token ?? this.token}`,
      'contexts:',
      `- name: ${context}`,
      '  context:',
      `    cluster: ${context}-cluster`,
      `    user: ${context}-user`,
      `current-context: ${context}`,
      '',
    ].join('\n');
    fs.writeFileSync(file, text);
    return file;
  }

  /**
   * Write a service-account directory (`token`, `ca.crt`, `namespace`) as a pod would have it mounted, and
   * return its path.
   */
  writeServiceAccountDir(opts: { token?: string; namespace?: string } = {}): string {
    const dir = fs.mkdtempSync(path.join(this.#dir, 'sa-'));
    fs.writeFileSync(path.join(dir, 'token'), opts.token ?? this.token);
    fs.writeFileSync(path.join(dir, 'ca.crt'), this.certs.caCert);
    fs.writeFileSync(path.join(dir, 'namespace'), opts.namespace ?? 'observability');
    return dir;
  }

  // ---- objects -------------------------------------------------------------------------------------------

  /** Create an object (ADDED). Its uid, creationTimestamp and resourceVersion are filled in when absent. */
  add(kind: FakeKind, obj: KubeObject): KubeObject {
    const key = objectKey(obj);
    const store = this.#store(kind);
    if (store.has(key)) throw new Error(`fake kube api: ${kind} ${key} already exists`);
    const o = clone(obj);
    o.metadata.uid ??= randomUUID();
    o.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.#stamp(kind, o);
    store.set(key, o);
    this.#emit(kind, 'ADDED', o);
    return clone(o);
  }

  /** Replace an existing object (MODIFIED); `mutate` may edit a copy of the stored one. */
  modify(kind: FakeKind, namespace: string | undefined, name: string, mutate: (o: KubeObject) => void): KubeObject {
    const store = this.#store(kind);
    const key = nsKey(namespace, name);
    const cur = store.get(key);
    if (cur === undefined) throw new Error(`fake kube api: ${kind} ${key} not found`);
    const o = clone(cur);
    mutate(o);
    this.#stamp(kind, o);
    store.set(key, o);
    this.#emit(kind, 'MODIFIED', o);
    return clone(o);
  }

  /** Delete an object (DELETED, carrying its last state with a new resourceVersion). */
  remove(kind: FakeKind, namespace: string | undefined, name: string): void {
    const store = this.#store(kind);
    const key = nsKey(namespace, name);
    const cur = store.get(key);
    if (cur === undefined) throw new Error(`fake kube api: ${kind} ${key} not found`);
    store.delete(key);
    const o = clone(cur);
    this.#stamp(kind, o);
    this.#emit(kind, 'DELETED', o);
  }

  get(kind: FakeKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.#store(kind).get(nsKey(namespace, name));
    return o === undefined ? undefined : clone(o);
  }

  list(kind: FakeKind): KubeObject[] {
    return [...this.#store(kind).values()].map(clone);
  }

  addPod(obj: KubeObject): KubeObject {
    return this.add('pods', obj);
  }
  modifyPod(namespace: string, name: string, mutate: (o: KubeObject) => void): KubeObject {
    return this.modify('pods', namespace, name, mutate);
  }
  deletePod(namespace: string, name: string): void {
    this.remove('pods', namespace, name);
  }

  // ---- protocol controls ---------------------------------------------------------------------------------

  /** Send a BOOKMARK at the current resourceVersion to every watch of `kind` that asked for bookmarks. */
  bookmark(kind?: FakeKind): void {
    for (const w of this.#watchers) {
      if (kind !== undefined && w.kind !== kind) continue;
      if (!w.bookmarks) continue;
      const info = KINDS[w.kind];
      writeEvent(w, 'BOOKMARK', {
        apiVersion: apiVersion(info),
        kind: info.kind,
        metadata: { name: '', resourceVersion: String(this.#rv) },
      });
    }
  }

  /**
   * Make the next watch of `kind` fail with 410 Gone: as an ERROR event on a 200 stream (`event`, what the
   * real API server does for an expired resourceVersion) or as an HTTP 410 status (`status`).
   */
  failNextWatch(kind: FakeKind, mode: 'event' | 'status' = 'event'): void {
    this.#forceGone.set(kind, mode);
  }

  /** Drop the whole event history: every watch resuming from an older resourceVersion answers 410. */
  compact(): void {
    this.#history.length = 0;
    this.#compactedRv = this.#rv;
  }

  /**
   * End the current watches (of `kind`, or all): `end` closes the stream cleanly, `destroy` resets the
   * connection, `mid-event` writes half an event line, then resets the connection.
   */
  cutWatches(kind?: FakeKind, mode: CutMode = 'destroy'): number {
    let n = 0;
    for (const w of [...this.#watchers]) {
      if (kind !== undefined && w.kind !== kind) continue;
      n++;
      this.#watchers.delete(w);
      w.closed = true;
      if (mode === 'end') {
        w.res.end();
      } else {
        if (mode === 'mid-event') w.res.write('{"type":"ADDED","object":{"kind":"Pod","metadata":{"na');
        // Let the partial write reach the socket before the reset.
        setImmediate(() => w.res.socket?.destroy());
      }
    }
    return n;
  }

  /** Hold every list request until the returned function is called (to test waiting for metadata). */
  holdLists(): () => void {
    let release!: () => void;
    this.#listGate = new Promise<void>((r) => {
      release = r;
    });
    return () => {
      this.#listGate = undefined;
      release();
    };
  }

  /** Watches currently open (of `kind`, or all). */
  activeWatches(kind?: FakeKind): number {
    let n = 0;
    for (const w of this.#watchers) if (kind === undefined || w.kind === kind) n++;
    return n;
  }

  /** Requests seen matching the filter. */
  count(filter: { kind?: FakeKind; verb?: RequestRecord['verb']; authorized?: boolean } = {}): number {
    return this.requests.filter(
      (r) =>
        (filter.kind === undefined || r.kind === filter.kind) &&
        (filter.verb === undefined || r.verb === filter.verb) &&
        (filter.authorized === undefined || r.authorized === filter.authorized),
    ).length;
  }

  /** Resolve when `cond` holds (polled every 10 ms), reject after `timeoutMs`. */
  async waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`fake kube api: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const w of this.#watchers) {
      w.closed = true;
      w.res.socket?.destroy();
    }
    this.#watchers.clear();
    this.#server.closeAllConnections();
    await closed;
  }

  // ---- internals -----------------------------------------------------------------------------------------

  #store(kind: FakeKind): Map<string, KubeObject> {
    return this.#objects.get(kind) as Map<string, KubeObject>;
  }

  #stamp(kind: FakeKind, o: KubeObject): void {
    const info = KINDS[kind];
    o.apiVersion = apiVersion(info);
    o.kind = info.kind;
    o.metadata.resourceVersion = String(++this.#rv);
  }

  #emit(kind: FakeKind, type: 'ADDED' | 'MODIFIED' | 'DELETED', o: KubeObject): void {
    this.#history.push({ rv: this.#rv, kind, type, object: o });
    if (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.splice(0, this.#history.length - this.#historyLimit);
      this.#compactedRv = (dropped[dropped.length - 1] as HistoryEvent).rv;
    }
    for (const w of this.#watchers) {
      if (w.kind === kind && matches(w, o)) writeEvent(w, type, o);
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#closing) {
      req.socket.destroy();
      return;
    }
    const u = new URL(req.url ?? '/', 'https://fake');
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const route = parsePath(u.pathname);
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const verb: RequestRecord['verb'] = route === undefined || req.method !== 'GET' ? 'other' : route.name !== undefined ? 'get' : watch ? 'watch' : 'list';
    const authorized = req.headers.authorization === `Bearer ${this.token}`;
    const record: RequestRecord = { method: req.method ?? '', path: u.pathname, query, kind: route?.kind, verb, authorized, status: 0 };
    this.requests.push(record);
    const fail = (code: number, reason: string, message: string): void => {
      record.status = code;
      sendStatus(res, code, reason, message);
    };
    if (!authorized) return fail(401, 'Unauthorized', 'Unauthorized');
    if (route === undefined || verb === 'other') return fail(404, 'NotFound', `the server could not find the requested resource`);
    const store = this.#store(route.kind);
    if (verb === 'get') {
      const o = store.get(nsKey(route.namespace, route.name as string));
      if (o === undefined) return fail(404, 'NotFound', `${route.kind} "${route.name}" not found`);
      record.status = 200;
      return sendJson(res, 200, o);
    }
    let labelSel: LabelReq[];
    let fieldSel: FieldReq[];
    try {
      labelSel = parseLabelSelector(query['labelSelector'] ?? '');
      fieldSel = parseFieldSelector(query['fieldSelector'] ?? '');
    } catch (err) {
      return fail(400, 'BadRequest', (err as Error).message);
    }
    const filterSel = { namespace: route.namespace, labelSelector: labelSel, fieldSelector: fieldSel };
    if (verb === 'list') {
      record.status = 200;
      if (this.#listGate !== undefined) {
        void this.#listGate.then(() => this.#list(route.kind, filterSel, query, res, fail));
        return;
      }
      return this.#list(route.kind, filterSel, query, res, fail);
    }
    // watch
    const gone = this.#forceGone.get(route.kind);
    const from = query['resourceVersion'] ?? '';
    const fromRv = from === '' || from === '0' ? undefined : Number(from);
    const expired = fromRv !== undefined && (!Number.isFinite(fromRv) || fromRv < this.#compactedRv);
    if (gone === 'status') {
      this.#forceGone.delete(route.kind);
      return fail(410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`);
    }
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = {
      kind: route.kind,
      ...filterSel,
      bookmarks: query['allowWatchBookmarks'] === 'true',
      res,
      closed: false,
    };
    if (gone === 'event' || expired) {
      this.#forceGone.delete(route.kind);
      writeEvent(w, 'ERROR', statusBody(410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`));
      res.end();
      return;
    }
    if (fromRv === undefined) {
      for (const o of store.values()) if (matches(w, o)) writeEvent(w, 'ADDED', o);
    } else {
      for (const ev of this.#history) {
        if (ev.rv > fromRv && ev.kind === route.kind && matches(w, ev.object)) writeEvent(w, ev.type, ev.object);
      }
    }
    this.#watchers.add(w);
    const timeout = Number(query['timeoutSeconds'] ?? '0');
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      timer = setTimeout(() => {
        if (!w.closed) {
          w.closed = true;
          this.#watchers.delete(w);
          res.end();
        }
      }, timeout * 1000);
      timer.unref();
    }
    res.on('close', () => {
      w.closed = true;
      this.#watchers.delete(w);
      if (timer !== undefined) clearTimeout(timer);
    });
  }

  #list(
    kind: FakeKind,
    sel: { namespace: string | undefined; labelSelector: LabelReq[]; fieldSelector: FieldReq[] },
    query: Record<string, string>,
    res: http.ServerResponse,
    fail: (code: number, reason: string, message: string) => void,
  ): void {
    const info = KINDS[kind];
    const limit = Number(query['limit'] ?? '0');
    let items: KubeObject[];
    let rv: string;
    let offset = 0;
    let snapId: string;
    const cont = query['continue'];
    if (cont !== undefined && cont !== '') {
      let token: { s: string; o: number; rv: string };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64').toString('utf8')) as { s: string; o: number; rv: string };
      } catch {
        return fail(400, 'BadRequest', 'invalid continue token');
      }
      const snap = this.#snapshots.get(token.s);
      if (snap === undefined) return fail(410, 'Expired', 'the provided continue parameter is too old');
      items = snap;
      offset = token.o;
      rv = token.rv;
      snapId = token.s;
    } else {
      items = [...this.#store(kind).values()].filter((o) => matches(sel, o));
      rv = String(this.#rv);
      snapId = randomUUID();
    }
    let page: typeof items;
    let next: string | undefined;
    if (limit > 0 && offset + limit < items.length) {
      page = items.slice(offset, offset + limit);
      this.#snapshots.set(snapId, items);
      if (this.#snapshots.size > 100) this.#snapshots.delete(this.#snapshots.keys().next().value as string);
      next = Buffer.from(JSON.stringify({ s: snapId, o: offset + limit, rv })).toString('base64');
    } else {
      page = items.slice(offset);
      this.#snapshots.delete(snapId);
    }
    const body = {
      apiVersion: apiVersion(info),
      kind: `${info.kind}List`,
      metadata: next === undefined ? { resourceVersion: rv } : { resourceVersion: rv, continue: next },
      items: page.map((o) => {
        const c = clone(o);
        delete c.kind;
        delete c.apiVersion;
        return c;
      }),
    };
    sendJson(res, 200, body);
  }
}

// ---- object builders ---------------------------------------------------------------------------------------

export interface PodInput {
  name: string;
  namespace?: string;
  uid?: string;
  ip?: string;
  ips?: string[];
  node?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Controller owner, e.g. `{ kind: 'ReplicaSet', name: 'web-7d4b9c', uid }`. */
  owner?: { kind: string; name: string; uid: string; apiVersion?: string };
  containers?: { name: string; image: string; id?: string }[];
  phase?: string;
  startTime?: string;
  hostNetwork?: boolean;
  hostname?: string;
}

/** A Pod object as the API returns it. */
export function makePod(p: PodInput): KubeObject {
  const containers = p.containers ?? [{ name: 'app', image: 'registry.example/app:1.0' }];
  const ips = p.ips ?? (p.ip === undefined ? [] : [p.ip]);
  const status: Record<string, unknown> = {
    phase: p.phase ?? 'Running',
    startTime: p.startTime ?? '2025-01-01T00:00:00Z',
    containerStatuses: containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      ready: true,
      restartCount: 0,
      ...(c.id === undefined ? {} : { containerID: c.id }),
    })),
  };
  if (ips.length > 0) {
    status['podIP'] = ips[0];
    status['podIPs'] = ips.map((ip) => ({ ip }));
  }
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'default',
      ...(p.uid === undefined ? {} : { uid: p.uid }),
      ...(p.labels === undefined ? {} : { labels: p.labels }),
      ...(p.annotations === undefined ? {} : { annotations: p.annotations }),
      ...(p.owner === undefined
        ? {}
        : {
            ownerReferences: [
              {
                apiVersion: p.owner.apiVersion ?? ownerApiVersion(p.owner.kind),
                kind: p.owner.kind,
                name: p.owner.name,
                uid: p.owner.uid,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }),
      managedFields: [{ manager: 'kubelet', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: {} }],
    },
    spec: {
      nodeName: p.node ?? 'node-1',
      ...(p.hostname === undefined ? {} : { hostname: p.hostname }),
      ...(p.hostNetwork === true ? { hostNetwork: true } : {}),
      containers: containers.map((c) => ({ name: c.name, image: c.image })),
    },
    status,
  };
}

/** A ReplicaSet owned by a Deployment (unless `deployment` is omitted). */
export function makeReplicaSet(r: { name: string; namespace?: string; uid?: string; deployment?: { name: string; uid: string } }): KubeObject {
  return {
    metadata: {
      name: r.name,
      namespace: r.namespace ?? 'default',
      ...(r.uid === undefined ? {} : { uid: r.uid }),
      ...(r.deployment === undefined
        ? {}
        : {
            ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: r.deployment.name, uid: r.deployment.uid, controller: true }],
          }),
    },
    spec: { replicas: 1, selector: { matchLabels: {} } },
    status: { replicas: 1 },
  };
}

export function makeNamespace(n: { name: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }): KubeObject {
  return {
    metadata: {
      name: n.name,
      ...(n.uid === undefined ? {} : { uid: n.uid }),
      ...(n.labels === undefined ? {} : { labels: n.labels }),
      ...(n.annotations === undefined ? {} : { annotations: n.annotations }),
    },
    spec: {},
    status: { phase: 'Active' },
  };
}

export function makeNode(n: { name: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> }): KubeObject {
  return {
    metadata: {
      name: n.name,
      ...(n.uid === undefined ? {} : { uid: n.uid }),
      ...(n.labels === undefined ? {} : { labels: n.labels }),
      ...(n.annotations === undefined ? {} : { annotations: n.annotations }),
    },
    spec: {},
    status: {},
  };
}

export function makeJob(j: { name: string; namespace?: string; uid?: string; cronJob?: { name: string; uid: string } }): KubeObject {
  return {
    metadata: {
      name: j.name,
      namespace: j.namespace ?? 'default',
      ...(j.uid === undefined ? {} : { uid: j.uid }),
      ...(j.cronJob === undefined
        ? {}
        : { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: j.cronJob.name, uid: j.cronJob.uid, controller: true }] }),
    },
    spec: {},
    status: {},
  };
}

/**
 * An EndpointSlice of Service `service` (labelled `kubernetes.io/service-name`, as the EndpointSlice controller
 * does), one endpoint per entry. A Service has several slices once it has more endpoints than fit in one.
 */
export function makeEndpointSlice(e: {
  name: string;
  service: string;
  namespace?: string;
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean; hostname?: string }[];
  ports?: { name?: string; port: number }[];
}): KubeObject {
  return {
    metadata: {
      name: e.name,
      namespace: e.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': e.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    addressType: e.addressType ?? 'IPv4',
    endpoints: e.endpoints.map((p) => {
      const conditions: EndpointSliceEndpoint['conditions'] = {};
      if (p.ready !== undefined) conditions.ready = p.ready;
      if (p.serving !== undefined) conditions.serving = p.serving;
      if (p.terminating !== undefined) conditions.terminating = p.terminating;
      return { addresses: [p.ip], conditions, ...(p.hostname === undefined ? {} : { hostname: p.hostname }) };
    }),
    ports: (e.ports ?? [{ name: 'query', port: 8888 }]).map((p) => ({ ...p, protocol: 'TCP' })),
  };
}

function ownerApiVersion(kind: string): string {
  if (kind === 'Job' || kind === 'CronJob') return 'batch/v1';
  if (kind === 'ReplicaSet' || kind === 'StatefulSet' || kind === 'DaemonSet' || kind === 'Deployment') return 'apps/v1';
  return 'v1';
}

// ---- helpers -------------------------------------------------------------------------------------------------

function apiVersion(info: KindInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

function clone<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

function nsKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function objectKey(o: KubeObject): string {
  return nsKey(o.metadata.namespace, o.metadata.name);
}

interface Route {
  kind: FakeKind;
  namespace: string | undefined;
  name: string | undefined;
}

const PLURALS = new Set<string>(Object.keys(KINDS));

/** Map an API path to a resource: `/api/v1/pods`, `/api/v1/namespaces/{ns}/pods/{name}`, `/apis/apps/v1/…`. */
function parsePath(p: string): Route | undefined {
  const seg = p.split('/').filter((s) => s !== '');
  let rest: string[];
  let group: string;
  if (seg[0] === 'api' && seg[1] === 'v1') {
    group = '';
    rest = seg.slice(2);
  } else if (seg[0] === 'apis' && seg.length >= 3) {
    group = seg[1] as string;
    if (seg[2] !== 'v1') return undefined;
    rest = seg.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const plural = rest[0];
  if (plural === undefined || !PLURALS.has(plural) || rest.length > 2) return undefined;
  const kind = plural as FakeKind;
  const info = KINDS[kind];
  if (info.group !== group) return undefined;
  if (!info.namespaced && namespace !== undefined) return undefined;
  return { kind, namespace, name: rest[1] };
}

interface LabelReq {
  key: string;
  op: '=' | '!=' | 'exists' | '!exists';
  value: string;
}

interface FieldReq {
  path: string;
  op: '=' | '!=';
  value: string;
}

function parseLabelSelector(s: string): LabelReq[] {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const t = part.trim();
    let m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (m !== null) return { key: m[1] as string, op: m[2] === '!=' ? '!=' : '=', value: m[3] as string };
    m = /^!([^=!\s]+)$/.exec(t);
    if (m !== null) return { key: m[1] as string, op: '!exists', value: '' };
    if (/^[^=!\s()]+$/.test(t)) return { key: t, op: 'exists', value: '' };
    throw new Error(`unable to parse requirement: ${JSON.stringify(t)}`);
  });
}

function parseFieldSelector(s: string): FieldReq[] {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part.trim());
    if (m === null) throw new Error(`invalid field selector: ${JSON.stringify(part)}`);
    return { path: m[1] as string, op: m[2] === '!=' ? '!=' : '=', value: m[3] as string };
  });
}

function fieldValue(o: KubeObject, p: string): string {
  let cur: unknown = o;
  for (const s of p.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

function matches(sel: { namespace: string | undefined; labelSelector: LabelReq[]; fieldSelector: FieldReq[] }, o: KubeObject): boolean {
  if (sel.namespace !== undefined && o.metadata.namespace !== sel.namespace) return false;
  const labels = o.metadata.labels ?? {};
  for (const r of sel.labelSelector) {
    const v = labels[r.key];
    if (r.op === 'exists' && v === undefined) return false;
    if (r.op === '!exists' && v !== undefined) return false;
    if (r.op === '=' && v !== r.value) return false;
    if (r.op === '!=' && v === r.value) return false;
  }
  for (const r of sel.fieldSelector) {
    const v = fieldValue(o, r.path);
    if (r.op === '=' && v !== r.value) return false;
    if (r.op === '!=' && v === r.value) return false;
  }
  return true;
}

function writeEvent(w: Watcher, type: WatchEventType, object: unknown): void {
  if (w.closed) return;
  w.res.write(`${JSON.stringify({ type, object })}\n`);
}

function statusBody(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, statusBody(code, reason, message));
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
