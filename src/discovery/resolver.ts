/**
 * Peer discovery shared by the `loadbalancing` exporter (where to send spans) and the routequery extension's
 * `cluster` (whom to ask for a cluster-wide answer). Three resolvers, in the Collector's loadbalancing shape:
 *
 * - `static`: the configured `host:port` list;
 * - `dns`: the A/AAAA records of a name (a headless Service), looked up again every `interval` with the system
 *   resolver (getaddrinfo, as Go's resolver does: /etc/hosts included); a failed lookup keeps the last answer;
 * - `k8s`: the EndpointSlices of a Service (label `kubernetes.io/service-name`), listed and watched. A Service
 *   has one slice per 100 endpoints by default, so the peers are the union of all its slices. Each endpoint's
 *   conditions are honoured: only `ready` endpoints that are not `terminating` receive new work, while endpoints
 *   that are terminating but still `serving` can still be asked for what they hold.
 *
 * A resolver reports a {@link Membership}: sorted, without duplicates.
 */
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { KubeApiClient } from '../kube/api-client';
import { ResourceInformer, type ObjectMeta } from '../kube/informer';
import { DEFAULT_SA_DIR, resolveConnection } from '../kube/kubeconfig';
import type { ResolverConfig } from './config';

export interface Membership {
  /** Peers to send new work to: ready and not terminating. */
  readonly ready: readonly string[];
  /** Peers that still answer: the ready ones and those terminating but still serving. A superset of `ready`. */
  readonly serving: readonly string[];
}

export const EMPTY_MEMBERSHIP: Membership = { ready: [], serving: [] };

export interface Resolver {
  readonly kind: 'static' | 'dns' | 'k8s';
  /** Resolves once the first resolution was attempted (successful or not). */
  start(): Promise<void>;
  stop(): Promise<void>;
  membership(): Membership;
  /** Called after each change of the membership. Returns the function that unsubscribes. */
  subscribe(listener: (m: Membership) => void): () => void;
}

export interface ResolverOptions {
  logger: Logger;
  /** Port for DNS and Kubernetes peers when the config names none (the routequery extension's own). */
  ownPort?: number | undefined;
  /** Each resolution attempt's outcome (self-telemetry). */
  onResolution?: ((ok: boolean) => void) | undefined;
  env?: NodeJS.ProcessEnv;
  /** Name lookup of the DNS resolver (tests). @default getaddrinfo through dns.promises.lookup */
  lookup?: (hostname: string) => Promise<string[]>;
}

/** `host:port`, IPv6 addresses in brackets. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/** Keeps the membership and tells subscribers when it changes. */
abstract class BaseResolver implements Resolver {
  abstract readonly kind: 'static' | 'dns' | 'k8s';
  #current: Membership = EMPTY_MEMBERSHIP;
  readonly #listeners = new Set<(m: Membership) => void>();

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  membership(): Membership {
    return this.#current;
  }

  subscribe(listener: (m: Membership) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  protected update(ready: Iterable<string>, serving: Iterable<string>): void {
    const r = sortedUnique(ready);
    const s = sortedUnique([...r, ...serving]);
    if (sameList(r, this.#current.ready) && sameList(s, this.#current.serving)) return;
    this.#current = { ready: r, serving: s };
    for (const l of [...this.#listeners]) l(this.#current);
  }
}

class StaticResolver extends BaseResolver {
  readonly kind = 'static';
  readonly #hostnames: readonly string[];
  constructor(hostnames: readonly string[]) {
    super();
    this.#hostnames = hostnames;
  }
  async start(): Promise<void> {
    this.update(this.#hostnames, this.#hostnames);
  }
  async stop(): Promise<void> {}
}

async function systemLookup(hostname: string): Promise<string[]> {
  const answers = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

class DnsResolver extends BaseResolver {
  readonly kind = 'dns';
  readonly #c: NonNullable<ResolverConfig['dns']>;
  readonly #port: number;
  readonly #o: ResolverOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;

  constructor(c: NonNullable<ResolverConfig['dns']>, port: number, o: ResolverOptions) {
    super();
    this.#c = c;
    this.#port = port;
    this.#o = o;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    await this.#resolve();
  }

  async #resolve(): Promise<void> {
    const lookup = this.#o.lookup ?? systemLookup;
    let timer: NodeJS.Timeout | undefined;
    try {
      const addresses = await Promise.race([
        lookup(this.#c.hostname),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.#c.timeout} ms`)), this.#c.timeout);
        }),
      ]);
      const peers = addresses.map((a) => formatHostPort(a, this.#port));
      this.update(peers, peers);
      this.#failures = 0;
      this.#o.onResolution?.(true);
    } catch (err) {
      this.#failures++;
      this.#o.onResolution?.(false);
      // The first failure of a streak, then every 2^k-th: an outage must not flood the log.
      if ((this.#failures & (this.#failures - 1)) === 0) {
        this.#o.logger.warn(
          {
            hostname: this.#c.hostname,
            err: err instanceof Error ? err.message : String(err),
            failures: this.#failures,
            keeping: this.membership().ready.length,
          },
          'DNS resolution of the peers failed; keeping the last answer',
        );
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#resolve(), this.#c.interval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** One endpoint of an EndpointSlice, as the resolver keeps it. */
interface SliceEndpoint {
  address: string;
  hostname: string | undefined;
  ready: boolean;
  serving: boolean;
}

interface SliceInfo {
  metadata: ObjectMeta;
  endpoints: SliceEndpoint[];
}

/**
 * The fields of an EndpointSlice the resolver reads. Conditions as the API defines them: `ready` and `serving`
 * unset mean true, `terminating` unset means false; an endpoint is ready for new work when ready and not
 * terminating (the EndpointSlice controller can publish terminating endpoints as ready when
 * `publishNotReadyAddresses` is set), and serving when `serving` (or, from older controllers, `ready`) is not
 * false.
 */
export function toSliceInfo(raw: unknown): SliceInfo | undefined {
  const o = raw as { metadata?: Record<string, unknown>; endpoints?: unknown } | null | undefined;
  const m = o?.metadata;
  if (m === undefined || typeof m.name !== 'string') return undefined;
  const endpoints: SliceEndpoint[] = [];
  for (const e of Array.isArray(o?.endpoints) ? (o.endpoints as unknown[]) : []) {
    const ep = e as { addresses?: unknown; hostname?: unknown; conditions?: { ready?: unknown; serving?: unknown; terminating?: unknown } } | null;
    const address = Array.isArray(ep?.addresses) ? ep.addresses[0] : undefined;
    if (typeof address !== 'string' || address === '') continue;
    const c = ep?.conditions ?? {};
    const terminating = c.terminating === true;
    const ready = c.ready !== false && !terminating;
    const serving = typeof c.serving === 'boolean' ? c.serving : c.ready !== false;
    endpoints.push({ address, hostname: typeof ep?.hostname === 'string' && ep.hostname !== '' ? ep.hostname : undefined, ready, serving });
  }
  return {
    metadata: {
      name: m.name,
      namespace: typeof m.namespace === 'string' ? m.namespace : undefined,
      uid: typeof m.uid === 'string' ? m.uid : '',
      resourceVersion: typeof m.resourceVersion === 'string' ? m.resourceVersion : '',
    },
    endpoints,
  };
}

/** The namespace routelens runs in: from its service account, else `default`. */
function ownNamespace(env: NodeJS.ProcessEnv): string {
  const dir = env['ROUTELENS_SA_DIR'] !== undefined && env['ROUTELENS_SA_DIR'] !== '' ? env['ROUTELENS_SA_DIR'] : DEFAULT_SA_DIR;
  try {
    const ns = fs.readFileSync(path.join(dir, 'namespace'), 'utf8').trim();
    if (ns !== '') return ns;
  } catch {
    // not in a pod
  }
  return 'default';
}

class K8sResolver extends BaseResolver {
  readonly kind = 'k8s';
  readonly #c: NonNullable<ResolverConfig['k8s']>;
  readonly #ports: readonly number[];
  readonly #o: ResolverOptions;
  readonly #name: string;
  readonly #namespace: string;
  readonly #slices = new Map<string, SliceInfo>();
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #client: KubeApiClient | undefined;

  constructor(c: NonNullable<ResolverConfig['k8s']>, ports: readonly number[], o: ResolverOptions) {
    super();
    this.#c = c;
    this.#ports = ports;
    this.#o = o;
    const [name, namespace] = c.service.split('.');
    this.#name = name as string;
    this.#namespace = namespace ?? ownNamespace(o.env ?? process.env);
  }

  /** `name.namespace` of the watched Service. */
  get service(): string {
    return `${this.#name}.${this.#namespace}`;
  }

  async start(): Promise<void> {
    const connection = resolveConnection(
      { auth_type: this.#c.auth_type, kube_config_path: this.#c.kube_config_path, context: this.#c.context },
      this.#o.env ?? process.env,
    );
    this.#abort = new AbortController();
    const client = new KubeApiClient(connection);
    this.#client = client;
    const owner = {
      logger: this.#o.logger,
      metrics: {
        restart: (_resource: string, reason: string) => {
          if (reason === 'error') this.#o.onResolution?.(false);
        },
        relist: () => undefined,
      },
      onSynced: () => undefined,
    };
    const informer = new ResourceInformer<SliceInfo>(
      {
        name: 'endpointslices',
        path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/endpointslices`,
        labelSelector: `kubernetes.io/service-name=${this.#name}`,
        fieldSelector: undefined,
        listTimeoutMs: this.#c.timeout,
        transform: toSliceInfo,
        upsert: (s) => {
          this.#slices.set(s.metadata.name, s);
          this.#recompute();
        },
        remove: (s) => {
          this.#slices.delete(s.metadata.name);
          this.#recompute();
        },
      },
      owner,
      client,
      this.#abort.signal,
      { initialMs: 500, maxMs: 30_000 },
      500,
    );
    await new Promise<void>((attempted) => {
      this.#running = informer.run(() => {
        if (informer.status.synced) this.#o.onResolution?.(true);
        attempted();
      });
    });
  }

  #recompute(): void {
    const ready: string[] = [];
    const serving: string[] = [];
    for (const s of this.#slices.values()) {
      for (const e of s.endpoints) {
        const host = this.#c.return_hostnames && e.hostname !== undefined ? `${e.hostname}.${this.#name}.${this.#namespace}` : e.address;
        for (const port of this.#ports) {
          const peer = formatHostPort(host, port);
          if (e.ready) ready.push(peer);
          if (e.serving || e.ready) serving.push(peer);
        }
      }
    }
    this.update(ready, serving);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
    this.#client?.close();
  }
}

/** The resolver the config names. Throws (an Error naming the problem) when the Kubernetes client cannot be set up. */
export function createResolver(config: ResolverConfig, o: ResolverOptions): Resolver {
  if (config.static !== undefined) return new StaticResolver(config.static.hostnames);
  if (config.dns !== undefined) {
    const port = config.dns.port ?? o.ownPort;
    if (port === undefined) throw new Error('resolver.dns.port is required');
    return new DnsResolver(config.dns, port, o);
  }
  if (config.k8s !== undefined) {
    const ports = config.k8s.ports.length > 0 ? config.k8s.ports : o.ownPort === undefined ? [] : [o.ownPort];
    if (ports.length === 0) throw new Error('resolver.k8s.ports is required');
    return new K8sResolver(config.k8s, ports, o);
  }
  throw new Error('resolver: needs one of static, dns, k8s');
}
