/**
 * A real Kubernetes control plane for the tests: etcd and kube-apiserver, built from the Go module proxy at the
 * versions scripts/kube-versions.sh pins (scripts/build-etcd.sh, scripts/build-kube-apiserver.sh; $ETCD_BIN and
 * $KUBE_APISERVER_BIN override), started on free loopback ports with a throwaway PKI:
 *
 * - HTTPS with a test CA (the server certificate also names the in-cluster addresses);
 * - RBAC authorization; an admin token (`system:masters`) for the test's own actions, and service account tokens
 *   issued by the TokenRequest API (signed with a fresh key), which are what a pod's projected token holds;
 * - no controllers, scheduler or kubelet: pods are created with `spec.nodeName` and their status (IP, phase) is
 *   written through the status subresource, as a kubelet would; `createNamespace` also creates the `default`
 *   ServiceAccount the controller manager would;
 * - restart the API server (etcd keeps the data, watches break), also with changes made meanwhile through a
 *   server on another port that the clients under test do not know (`restartApiServer({ meanwhile })`);
 * - compact etcd; read the API server's audit log (every request with its URI, user and status: which
 *   resourceVersion a watch resumed from, what a service account was refused).
 *
 * Everything (processes, files) is removed by `stop()` and when the test process exits.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePorts, waitFor } from './free-port';
import { runSetupScript, startProcess, type ProcessHandle } from './process';
import { makeTestCerts, type TestCerts } from './test-certs';

/** A Kubernetes object as JSON. */
export type KubeJson = Record<string, any>;

/** Path of etcd: $ETCD_BIN, else built/cached by scripts/build-etcd.sh. */
export function etcdBinary(): Promise<string> {
  const env = process.env['ETCD_BIN'];
  return env !== undefined && env !== '' ? Promise.resolve(env) : runSetupScript('build-etcd.sh', 30 * 60_000);
}

/** Path of kube-apiserver: $KUBE_APISERVER_BIN, else built/cached by scripts/build-kube-apiserver.sh (a long build). */
export function kubeApiServerBinary(): Promise<string> {
  const env = process.env['KUBE_APISERVER_BIN'];
  return env !== undefined && env !== '' ? Promise.resolve(env) : runSetupScript('build-kube-apiserver.sh', 60 * 60_000);
}

/** A refused API request. */
export class KubeRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: KubeJson | string,
    what: string,
  ) {
    super(`${what} -> ${status}: ${typeof body === 'string' ? body : String(body['message'] ?? JSON.stringify(body))}`);
  }
}

export interface KubeClusterOptions {
  /** More kube-apiserver flags (e.g. `--watch-cache=false`). */
  apiServerArgs?: string[];
}

/** One entry of the API server's audit log (audit.k8s.io/v1 Event, the fields the tests read). */
export interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  responseStatus?: { code?: number };
  objectRef?: { resource?: string; namespace?: string; name?: string };
}

interface ApiResource {
  name: string;
  namespaced: boolean;
  kind: string;
}

export class KubeTestCluster {
  readonly dir: string;
  readonly certs: TestCerts;
  /** Bearer token of `admin` (group system:masters). */
  readonly adminToken = randomUUID();
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly #etcdPort: number;
  readonly #etcdPeerPort: number;
  readonly #apiServerArgs: string[];
  readonly #resources = new Map<string, ApiResource>();
  #etcd: ProcessHandle | undefined;
  #apiServer: ProcessHandle | undefined;
  #agent: https.Agent;
  /** Port of the running API server (this.port, or another one during `restartApiServer({ meanwhile })`). */
  #servingPort: number;

  private constructor(dir: string, ports: number[], opts: KubeClusterOptions) {
    this.dir = dir;
    [this.port, this.#etcdPort, this.#etcdPeerPort] = ports as [number, number, number];
    this.url = `https://127.0.0.1:${this.port}`;
    this.#servingPort = this.port;
    this.certs = makeTestCerts({
      names: ['localhost', '127.0.0.1', '10.0.0.1', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      fresh: true,
    });
    this.#apiServerArgs = opts.apiServerArgs ?? [];
    this.#agent = new https.Agent({ ca: this.certs.caCert, keepAlive: true });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    fs.writeFileSync(path.join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fs.writeFileSync(path.join(dir, 'tokens.csv'), `${this.adminToken},admin,admin-uid,"system:masters"\n`);
    // Metadata of every request once it completes (watches: when they end, and when they start streaming).
    fs.writeFileSync(
      path.join(dir, 'audit-policy.yaml'),
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n',
    );
  }

  /** Start etcd and kube-apiserver and wait until the API server is ready (builds the binaries on first use). */
  static async start(opts: KubeClusterOptions = {}): Promise<KubeTestCluster> {
    const [etcd, apiServer] = await Promise.all([etcdBinary(), kubeApiServerBinary()]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-kube-'));
    const cluster = new KubeTestCluster(dir, await freePorts(3), opts);
    live.add(cluster);
    try {
      await cluster.#startEtcd(etcd);
      await cluster.startApiServer(apiServer);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  async #startEtcd(bin: string): Promise<void> {
    const client = `http://127.0.0.1:${this.#etcdPort}`;
    const peer = `http://127.0.0.1:${this.#etcdPeerPort}`;
    this.#etcd = startProcess(
      bin,
      [
        '--name=test',
        `--data-dir=${path.join(this.dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=test=${peer}`,
        '--log-level=warn',
        // A test cluster on a shared machine: no fsync per write.
        '--unsafe-no-fsync',
      ],
      { name: 'etcd' },
    );
    const etcd = this.#etcd;
    const up = await waitFor(
      async () => {
        if (!etcd.running) return 'exited';
        const res = await fetch(`${client}/health`);
        return res.status === 200 && ((await res.json()) as { health?: string }).health === 'true' ? 'ready' : undefined;
      },
      { timeoutMs: 60_000, what: 'etcd /health' },
    );
    if (up === 'exited') throw new Error(`etcd exited:\n${etcd.output()}`);
  }

  /** Start kube-apiserver (again; on its port unless `port` is given) and wait until /readyz answers ok. */
  async startApiServer(bin?: string, port = this.port): Promise<void> {
    const binary = bin ?? (await kubeApiServerBinary());
    this.#servingPort = port;
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    this.#apiServer = startProcess(
      binary,
      [
        `--etcd-servers=http://127.0.0.1:${this.#etcdPort}`,
        `--secure-port=${port}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        // The `kubernetes` Service's endpoints may not be a loopback address; nothing here needs them.
        '--endpoint-reconciler-type=none',
        `--cert-dir=${path.join(this.dir, 'apiserver-certs')}`,
        `--tls-cert-file=${this.certs.paths.serverCert}`,
        `--tls-private-key-file=${this.certs.paths.serverKey}`,
        `--token-auth-file=${path.join(this.dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${issuer}`,
        `--service-account-key-file=${path.join(this.dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(this.dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // The tests compact etcd themselves (compact()).
        '--etcd-compaction-interval=0',
        '--profiling=false',
        `--audit-policy-file=${path.join(this.dir, 'audit-policy.yaml')}`,
        `--audit-log-path=${path.join(this.dir, 'audit.log')}`,
        '--audit-log-mode=blocking',
        ...this.#apiServerArgs,
      ],
      { name: 'kube-apiserver', maxOutputChars: 4 << 20 },
    );
    const server = this.#apiServer;
    const up = await waitFor(
      async () => {
        if (!server.running) return 'exited';
        const r = await this.request('GET', '/readyz');
        return r.status === 200 ? 'ready' : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 250, what: 'kube-apiserver /readyz' },
    );
    if (up === 'exited') throw new Error(`kube-apiserver exited:\n${server.output().slice(-4000)}`);
  }

  /** Stop kube-apiserver (SIGTERM; open watches end); etcd keeps running. */
  async stopApiServer(): Promise<void> {
    await this.#apiServer?.stop(20_000);
    this.#apiServer = undefined;
    // Connections to the old process are dead; do not reuse them.
    this.#agent.destroy();
    this.#agent = new https.Agent({ ca: this.certs.caCert, keepAlive: true });
  }

  /**
   * Stop and start kube-apiserver on its port. With `meanwhile`, between the two an API server runs on another
   * port, where `meanwhile` makes its changes (this object's requests go there): clients of the usual port find
   * the server gone for that long and see the changes only once it is back.
   */
  async restartApiServer(o: { meanwhile?: () => Promise<void> } = {}): Promise<void> {
    await this.stopApiServer();
    if (o.meanwhile !== undefined) {
      const [other] = (await freePorts(1)) as [number];
      await this.startApiServer(undefined, other);
      try {
        await o.meanwhile();
      } finally {
        await this.stopApiServer();
      }
    }
    await this.startApiServer();
  }

  /** The audit log so far (requests that completed or started streaming), oldest first. */
  auditEvents(): AuditEvent[] {
    const file = path.join(this.dir, 'audit.log');
    if (!fs.existsSync(file)) return [];
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as AuditEvent);
  }

  /** Output of the running kube-apiserver so far. */
  apiServerOutput(): string {
    return this.#apiServer?.output() ?? '';
  }

  /** Stop everything and remove the files. */
  async stop(): Promise<void> {
    live.delete(this);
    await this.#apiServer?.stop(20_000);
    await this.#etcd?.stop(10_000);
    this.#agent.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** One API request (as admin unless `token` is given); resolves with the status and the parsed body. */
  request(method: string, p: string, body?: unknown, opts: { token?: string; contentType?: string } = {}): Promise<{ status: number; body: KubeJson }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        `https://127.0.0.1:${this.#servingPort}${p}`,
        {
          method,
          agent: this.#agent,
          headers: {
            authorization: `Bearer ${opts.token ?? this.adminToken}`,
            accept: 'application/json',
            ...(data === undefined ? {} : { 'content-type': opts.contentType ?? 'application/json', 'content-length': data.length }),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: KubeJson;
            try {
              parsed = JSON.parse(text) as KubeJson;
            } catch {
              parsed = { text };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 60 s`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** As `request`, rejecting with KubeRequestError unless the status is 2xx. */
  async call(method: string, p: string, body?: unknown, opts: { token?: string; contentType?: string } = {}): Promise<KubeJson> {
    const r = await this.request(method, p, body, opts);
    if (r.status < 200 || r.status > 299) throw new KubeRequestError(r.status, r.body, `${method} ${p}`);
    return r.body;
  }

  /** The resource (plural name, scope) of an apiVersion + kind, from the server's discovery documents. */
  async resource(apiVersion: string, kind: string): Promise<ApiResource> {
    const key = `${apiVersion}/${kind}`;
    let r = this.#resources.get(key);
    if (r === undefined) {
      const list = await this.call('GET', apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`);
      for (const res of list['resources'] as ApiResource[]) {
        if (!res.name.includes('/')) this.#resources.set(`${apiVersion}/${res.kind}`, res);
      }
      r = this.#resources.get(key);
      if (r === undefined) throw new Error(`the API server has no ${kind} in ${apiVersion}`);
    }
    return r;
  }

  /** Collection path of an object's kind (in its namespace when namespaced). */
  async collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    const r = await this.resource(apiVersion, kind);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    if (!r.namespaced) return `${base}/${r.name}`;
    if (namespace === undefined) throw new Error(`${kind} is namespaced: give a namespace`);
    return `${base}/namespaces/${encodeURIComponent(namespace)}/${r.name}`;
  }

  /** Path of one object. */
  async objectPath(o: KubeJson): Promise<string> {
    const md = o['metadata'] as { name: string; namespace?: string };
    return `${await this.collectionPath(o['apiVersion'] as string, o['kind'] as string, md.namespace)}/${encodeURIComponent(md.name)}`;
  }

  /** Create an object (as admin unless `token` is given); resolves with what the server stored. */
  async create(o: KubeJson, opts: { token?: string; query?: string } = {}): Promise<KubeJson> {
    const md = o['metadata'] as { namespace?: string };
    const p = await this.collectionPath(o['apiVersion'] as string, o['kind'] as string, md.namespace);
    return this.call('POST', `${p}${opts.query ?? ''}`, o, { token: opts.token });
  }

  /**
   * Server-side apply (field manager `routelens-test`, strict field validation: an unknown or duplicate field is
   * refused, as `kubectl apply --server-side --validate=strict` does). `dryRun`: validated and admitted, not
   * stored. Rejects with KubeRequestError when the server refuses.
   */
  async apply(o: KubeJson, opts: { dryRun?: boolean } = {}): Promise<KubeJson> {
    const query = `?fieldManager=routelens-test&fieldValidation=Strict&force=true${opts.dryRun === true ? '&dryRun=All' : ''}`;
    return this.call('PATCH', `${await this.objectPath(o)}${query}`, o, { contentType: 'application/apply-patch+yaml' });
  }

  /** JSON merge patch of an object (`subresource`: e.g. `status`). */
  async patch(o: KubeJson, patch: KubeJson, subresource?: string): Promise<KubeJson> {
    const p = `${await this.objectPath(o)}${subresource === undefined ? '' : `/${subresource}`}`;
    return this.call('PATCH', p, patch, { contentType: 'application/merge-patch+json' });
  }

  /** Delete an object at once (grace period 0: without a kubelet a pod on a node would stay Terminating). */
  async delete(o: KubeJson): Promise<void> {
    await this.call('DELETE', `${await this.objectPath(o)}?gracePeriodSeconds=0`);
  }

  /** A namespace with the `default` ServiceAccount the controller manager would create. */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<KubeJson> {
    const ns = await this.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    await this.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } });
    return ns;
  }

  /**
   * A pod as a kubelet would report it: created with `spec.nodeName` (no scheduler), then its status written
   * (Running, `podIP`, start time) through the status subresource. Resolves with the stored pod.
   */
  async createRunningPod(p: {
    name: string;
    namespace: string;
    ip: string;
    node?: string;
    labels?: Record<string, string>;
    owner?: KubeJson;
    serviceAccountName?: string;
  }): Promise<KubeJson> {
    const ownerReferences =
      p.owner === undefined
        ? undefined
        : [{ apiVersion: p.owner['apiVersion'], kind: p.owner['kind'], name: p.owner['metadata']['name'], uid: p.owner['metadata']['uid'], controller: true }];
    const pod = await this.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.namespace, labels: p.labels ?? {}, ...(ownerReferences === undefined ? {} : { ownerReferences }) },
      spec: {
        nodeName: p.node ?? 'node-a',
        serviceAccountName: p.serviceAccountName ?? 'default',
        automountServiceAccountToken: false,
        containers: [{ name: 'app', image: 'registry.example/app:1.0' }],
      },
    });
    return this.patch(pod, { status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }], startTime: new Date().toISOString() } }, 'status');
  }

  /** A token of a ServiceAccount from the TokenRequest API (what a projected service account volume holds). */
  async serviceAccountToken(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const r = await this.call('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds },
    });
    return r['status']['token'] as string;
  }

  /**
   * The environment of a pod running as `namespace/name` for in-cluster configuration: the service address
   * variables and ROUTELENS_SA_DIR, a directory laid out like /var/run/secrets/kubernetes.io/serviceaccount
   * (token, ca.crt, namespace).
   */
  async inClusterEnv(namespace: string, name: string): Promise<Record<string, string>> {
    const saDir = fs.mkdtempSync(path.join(this.dir, `sa-${namespace}-${name}-`));
    fs.writeFileSync(path.join(saDir, 'token'), await this.serviceAccountToken(namespace, name));
    fs.writeFileSync(path.join(saDir, 'ca.crt'), this.certs.caCert);
    fs.writeFileSync(path.join(saDir, 'namespace'), namespace);
    return { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.port), ROUTELENS_SA_DIR: saDir };
  }

  /** A kubeconfig file for `token` (admin by default). */
  writeKubeconfig(token = this.adminToken, file = path.join(this.dir, `kubeconfig-${randomUUID().slice(0, 8)}.yaml`)): string {
    fs.writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: ${this.url}`,
        `    certificate-authority: ${this.certs.paths.caCert}`,
        'users:',
        '- name: test',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: test',
        '  context: { cluster: test, user: test }',
        'current-context: test',
        '',
      ].join('\n'),
    );
    return file;
  }

  /** The current etcd revision (the newest resourceVersion). */
  async etcdRevision(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.#etcdPort}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
    });
    const body = (await res.json()) as { header?: { revision?: string } };
    const rev = Number(body.header?.revision);
    if (!Number.isInteger(rev) || rev <= 0) throw new Error(`etcd range answered ${JSON.stringify(body)}`);
    return rev;
  }

  /** Compact etcd's history up to `revision` (default: the current one); resolves with the revision. */
  async compact(revision?: number): Promise<number> {
    const rev = revision ?? (await this.etcdRevision());
    const res = await fetch(`http://127.0.0.1:${this.#etcdPort}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({ revision: String(rev), physical: true }),
    });
    if (res.status !== 200) throw new Error(`etcd compaction at ${rev}: ${res.status} ${await res.text()}`);
    return rev;
  }
}

const live = new Set<KubeTestCluster>();
process.on('exit', () => {
  for (const c of live) fs.rmSync(c.dir, { recursive: true, force: true });
});
