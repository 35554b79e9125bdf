/**
 * Where the Kubernetes API is and how to authenticate to it, from `auth_type`:
 * - `serviceAccount`: in-cluster — `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the mounted service
 *   account token (re-read every minute, so projected tokens rotate, as client-go does) and CA. The directory is
 *   `/var/run/secrets/kubernetes.io/serviceaccount` unless `ROUTELENS_SA_DIR` names another (tests).
 * - `kubeConfig`: `kube_config_path`, else the first file of `$KUBECONFIG`, else `~/.kube/config`; `context`
 *   or the file's current context. Clusters: `server`, `certificate-authority(-data)`,
 *   `insecure-skip-tls-verify`, `tls-server-name`. Users: `token`, `tokenFile`, client certificates (file or
 *   data), `username`/`password`, and `exec` credential plugins (EKS, GKE, AKS, OIDC login helpers). Relative
 *   paths are relative to the kubeconfig's directory.
 * - `none`: the in-cluster address without credentials and without verifying the server certificate.
 *
 * @kubernetes/client-node resolves the same settings (its KubeConfig is the reference of the differential test
 * beside this file), but loading it costs ≈ 70 MiB of memory (docs/decisions/0004-own-kubernetes-client.md).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';

export const DEFAULT_SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How often a token file is read again (client-go re-reads the service account token every minute). */
const TOKEN_FILE_REFRESH_MS = 60_000;

export interface AuthSettings {
  auth_type: 'serviceAccount' | 'kubeConfig' | 'none';
  kube_config_path?: string | undefined;
  context?: string | undefined;
}

/** A problem with the Kubernetes client settings, found at start. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

/** Supplies the `Authorization` header of each request. */
export interface Credentials {
  /** The header value for the next request, or undefined for none. */
  authorization(): Promise<string | undefined>;
  /** The server refused the credentials (401): fetch fresh ones next time. */
  invalidate(): void;
}

/** Everything needed to talk to one API server. */
export interface ApiConnection {
  /** Base URL, e.g. `https://10.96.0.1:443`, without a trailing slash. */
  server: string;
  /** TLS settings of node:https. */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean; servername?: string };
  credentials: Credentials;
}

const NO_CREDENTIALS: Credentials = { authorization: () => Promise.resolve(undefined), invalidate: () => undefined };

function staticCredentials(header: string): Credentials {
  return { authorization: () => Promise.resolve(header), invalidate: () => undefined };
}

/** A bearer token read from a file, re-read every minute (rotated, projected service account tokens). */
export function tokenFileCredentials(file: string, refreshMs = TOKEN_FILE_REFRESH_MS): Credentials {
  let token: string | undefined;
  let readAt = 0;
  return {
    authorization: async () => {
      if (token === undefined || Date.now() - readAt >= refreshMs) {
        token = (await fs.promises.readFile(file, 'utf8')).trim();
        readAt = Date.now();
      }
      return `Bearer ${token}`;
    },
    invalidate: () => {
      readAt = 0;
    },
  };
}

/** The `exec` section of a kubeconfig user. */
interface ExecConfig {
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  apiVersion: string;
}

/**
 * An exec credential plugin (client.authentication.k8s.io): run the command, take `status.token`, reuse it until
 * `status.expirationTimestamp` (or until the server refuses it).
 */
export function execCredentials(exec: ExecConfig, cwd: string): Credentials {
  let cached: { header: string; expiresAt: number } | undefined;
  let running: Promise<string> | undefined;
  const run = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const e of exec.env) env[e.name] = e.value;
      env['KUBERNETES_EXEC_INFO'] = JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
      execFile(exec.command, exec.args, { cwd, env, timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err !== null) {
          reject(
            new Error(
              `exec credential plugin ${exec.command} failed: ${err.message.split('\n')[0] ?? ''}${stderr === '' ? '' : `: ${stderr.trim().slice(0, 300)}`}`,
            ),
          );
          return;
        }
        let status: { token?: unknown; expirationTimestamp?: unknown; clientCertificateData?: unknown } | undefined;
        try {
          status = (JSON.parse(stdout) as { status?: typeof status }).status;
        } catch (e) {
          reject(new Error(`exec credential plugin ${exec.command} printed no ExecCredential JSON: ${(e as Error).message}`));
          return;
        }
        if (typeof status?.token !== 'string' || status.token === '') {
          const why = status?.clientCertificateData !== undefined ? ' (it returned a client certificate, which routelens does not take from plugins)' : '';
          reject(new Error(`exec credential plugin ${exec.command} returned no status.token${why}`));
          return;
        }
        const expires = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : NaN;
        cached = { header: `Bearer ${status.token}`, expiresAt: Number.isFinite(expires) ? expires : Infinity };
        resolve(cached.header);
      });
    });
  return {
    authorization: () => {
      // Renew ten seconds early so a request does not carry a token that expires in flight.
      if (cached !== undefined && Date.now() < cached.expiresAt - 10_000) return Promise.resolve(cached.header);
      running ??= run().finally(() => (running = undefined));
      return running;
    },
    invalidate: () => {
      cached = undefined;
    },
  };
}

function inClusterServer(env: NodeJS.ProcessEnv, what: string): string {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new KubeConfigError(
      `auth_type ${what} needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (is routelens running in a pod?); ` +
        'use auth_type: kubeConfig outside a cluster',
    );
  }
  return `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Resolve `auth` to a connection. Throws KubeConfigError with an actionable message. */
export function resolveConnection(auth: AuthSettings, env: NodeJS.ProcessEnv = process.env): ApiConnection {
  switch (auth.auth_type) {
    case 'serviceAccount': {
      const server = inClusterServer(env, 'serviceAccount');
      const dir = env['ROUTELENS_SA_DIR'] !== undefined && env['ROUTELENS_SA_DIR'] !== '' ? env['ROUTELENS_SA_DIR'] : DEFAULT_SA_DIR;
      const tokenFile = path.join(dir, 'token');
      const caFile = path.join(dir, 'ca.crt');
      for (const f of [tokenFile, caFile]) {
        if (!fs.existsSync(f)) {
          throw new KubeConfigError(
            `auth_type serviceAccount: ${f} does not exist (is a service account token mounted? automountServiceAccountToken must not be false)`,
          );
        }
      }
      return { server, tls: { ca: fs.readFileSync(caFile), rejectUnauthorized: true }, credentials: tokenFileCredentials(tokenFile) };
    }
    case 'none':
      return { server: inClusterServer(env, 'none'), tls: { rejectUnauthorized: false }, credentials: NO_CREDENTIALS };
    case 'kubeConfig': {
      const fromEnv = (env['KUBECONFIG'] ?? '').split(path.delimiter).find((p) => p !== '');
      const file = auth.kube_config_path ?? fromEnv ?? path.join(os.homedir(), '.kube', 'config');
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new KubeConfigError(`auth_type kubeConfig: cannot load ${file}: ${(err as Error).message}`);
      }
      return fromKubeconfig(text, file, auth.context);
    }
  }
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse kubeconfig `text` (read from `file`) and resolve `context` (default: its current context). */
export function fromKubeconfig(text: string, file: string, context: string | undefined): ApiConnection {
  const fail = (msg: string): never => {
    throw new KubeConfigError(`auth_type kubeConfig: ${file}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail(`not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  if (!isObj(doc)) return fail('not a kubeconfig (expected a mapping with clusters, users, contexts)');
  const named = (key: 'clusters' | 'users' | 'contexts', inner: 'cluster' | 'user' | 'context'): Map<string, Obj> => {
    const out = new Map<string, Obj>();
    const list = doc[key];
    if (list === undefined || list === null) return out;
    if (!Array.isArray(list)) return fail(`${key}: expected a list`);
    list.forEach((e: unknown, i) => {
      if (!isObj(e) || typeof e['name'] !== 'string') return fail(`${key}[${i}]: expected a mapping with a name`);
      out.set(e['name'], isObj(e[inner]) ? e[inner] : {});
    });
    return out;
  };
  const clusters = named('clusters', 'cluster');
  const users = named('users', 'user');
  const contexts = named('contexts', 'context');
  const current = typeof doc['current-context'] === 'string' && doc['current-context'] !== '' ? doc['current-context'] : undefined;
  const ctxName = context ?? current ?? fail('no context given and no current-context set');
  const ctx = contexts.get(ctxName);
  if (ctx === undefined) {
    return fail(`context ${JSON.stringify(ctxName)} not found; it has ${[...contexts.keys()].map((c) => JSON.stringify(c)).join(', ') || 'none'}`);
  }
  const clusterName = typeof ctx['cluster'] === 'string' ? ctx['cluster'] : fail(`context ${JSON.stringify(ctxName)} names no cluster`);
  const cluster = clusters.get(clusterName) ?? fail(`cluster ${JSON.stringify(clusterName)} of context ${JSON.stringify(ctxName)} not found`);
  const userName = typeof ctx['user'] === 'string' ? ctx['user'] : undefined;
  const user = userName === undefined ? {} : (users.get(userName) ?? fail(`user ${JSON.stringify(userName)} of context ${JSON.stringify(ctxName)} not found`));

  const dir = path.dirname(path.resolve(file));
  const str = (o: Obj, key: string): string | undefined => {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return fail(`${key}: expected a string`);
    return v;
  };
  /** Inline base64 data (`<key>-data`) or a file (`<key>`), relative to the kubeconfig's directory. */
  const material = (o: Obj, key: string): Buffer | undefined => {
    const data = str(o, `${key}-data`);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const f = str(o, key);
    if (f === undefined) return undefined;
    try {
      return fs.readFileSync(path.resolve(dir, f));
    } catch (err) {
      return fail(`${key}: cannot read ${f}: ${(err as Error).message}`);
    }
  };

  const server = (str(cluster, 'server') ?? fail(`cluster ${JSON.stringify(clusterName)} has no server`)).replace(/\/+$/, '');
  // Settings that change where or as whom requests go: refused rather than silently ignored.
  if (cluster['proxy-url'] !== undefined)
    fail(`cluster ${JSON.stringify(clusterName)}: proxy-url is not supported; reach the API server directly (in a pod: auth_type serviceAccount)`);
  for (const k of ['as', 'as-uid', 'as-groups', 'as-user-extra']) {
    if (user[k] !== undefined)
      fail(`user ${JSON.stringify(userName)}: impersonation (${k}) is not supported; give the service account the RBAC of k8sattributes instead`);
  }
  if (!/^https?:\/\//.test(server)) fail(`cluster ${JSON.stringify(clusterName)}: server ${server} is not an http(s) URL`);
  const skipVerify = cluster['insecure-skip-tls-verify'] === true;
  const tls: ApiConnection['tls'] = { rejectUnauthorized: !skipVerify };
  const ca = material(cluster, 'certificate-authority');
  if (ca !== undefined) tls.ca = ca;
  const servername = str(cluster, 'tls-server-name');
  if (servername !== undefined) tls.servername = servername;
  const cert = material(user, 'client-certificate');
  const key = material(user, 'client-key');
  if ((cert === undefined) !== (key === undefined)) fail(`user ${JSON.stringify(userName)}: client-certificate and client-key go together`);
  if (cert !== undefined && key !== undefined) {
    tls.cert = cert;
    tls.key = key;
  }

  let credentials = NO_CREDENTIALS;
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const username = str(user, 'username');
  if (token !== undefined) credentials = staticCredentials(`Bearer ${token}`);
  else if (tokenFile !== undefined) credentials = tokenFileCredentials(path.resolve(dir, tokenFile));
  else if (isObj(user['exec'])) credentials = execCredentials(parseExec(user['exec'], fail), dir);
  else if (username !== undefined) credentials = staticCredentials(`Basic ${Buffer.from(`${username}:${str(user, 'password') ?? ''}`).toString('base64')}`);
  else if (user['auth-provider'] !== undefined) {
    const name = isObj(user['auth-provider']) ? String(user['auth-provider']['name']) : '?';
    fail(
      `user ${JSON.stringify(userName)}: auth-provider ${JSON.stringify(name)} is not supported (Kubernetes removed them in 1.26); use its exec credential plugin`,
    );
  }
  return { server, tls, credentials };
}

function parseExec(e: Obj, fail: (msg: string) => never): ExecConfig {
  const command = typeof e['command'] === 'string' && e['command'] !== '' ? e['command'] : fail('user.exec.command: expected a command');
  const args = e['args'] ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) fail('user.exec.args: expected a list of strings');
  const env = e['env'] ?? [];
  if (!Array.isArray(env)) fail('user.exec.env: expected a list of {name, value}');
  return {
    command,
    args: args as string[],
    env: (env as unknown[]).map((x, i) =>
      isObj(x) && typeof x['name'] === 'string' && typeof x['value'] === 'string'
        ? { name: x['name'], value: x['value'] }
        : fail(`user.exec.env[${i}]: expected {name, value}`),
    ),
    apiVersion: typeof e['apiVersion'] === 'string' ? e['apiVersion'] : 'client.authentication.k8s.io/v1',
  };
}
