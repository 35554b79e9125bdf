/**
 * Build a client-node `KubeConfig` from `auth_type`:
 * - `serviceAccount`: in-cluster — `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the mounted service
 *   account token (re-read every minute by client-node, so projected tokens rotate) and CA. The directory is
 *   `/var/run/secrets/kubernetes.io/serviceaccount` unless `ROUTELENS_SA_DIR` names another (tests).
 * - `kubeConfig`: `kube_config_path`, else the first file of `$KUBECONFIG`, else `~/.kube/config`; `context`
 *   or the file's current context.
 * - `none`: the in-cluster address without credentials and without verifying the server certificate.
 *
 * client-node 1.x refuses a plain-HTTP server unless TLS verification is off: that is reported here, at
 * start, rather than as a watch error later.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };

export const DEFAULT_SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

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

type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

let clientNode: Promise<ClientNode> | undefined;

/** client-node is an ES module, loaded on first use (it is large and only k8sattributes needs it). */
export function loadClientNode(): Promise<ClientNode> {
  clientNode ??= import('@kubernetes/client-node');
  return clientNode;
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

/** Build the KubeConfig for `auth`. Throws KubeConfigError with an actionable message. */
export async function loadKubeConfig(auth: AuthSettings, env: NodeJS.ProcessEnv = process.env): Promise<KubeConfig> {
  const k8s = await loadClientNode();
  const kc = new k8s.KubeConfig();
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
      kc.loadFromOptions({
        clusters: [{ name: 'in-cluster', server, caFile, skipTLSVerify: false }],
        users: [{ name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'service-account' }],
        currentContext: 'in-cluster',
      });
      break;
    }
    case 'none': {
      const server = inClusterServer(env, 'none');
      kc.loadFromOptions({
        clusters: [{ name: 'in-cluster', server, skipTLSVerify: true }],
        users: [{ name: 'anonymous' }],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'anonymous' }],
        currentContext: 'in-cluster',
      });
      break;
    }
    case 'kubeConfig': {
      const fromEnv = (env['KUBECONFIG'] ?? '').split(path.delimiter).find((p) => p !== '');
      const file = auth.kube_config_path ?? fromEnv ?? path.join(os.homedir(), '.kube', 'config');
      try {
        kc.loadFromFile(file);
      } catch (err) {
        throw new KubeConfigError(`auth_type kubeConfig: cannot load ${file}: ${(err as Error).message}`);
      }
      if (auth.context !== undefined) {
        if (!kc.getContexts().some((c) => c.name === auth.context)) {
          throw new KubeConfigError(
            `auth_type kubeConfig: context ${JSON.stringify(auth.context)} not found in ${file}; it has ${kc
              .getContexts()
              .map((c) => JSON.stringify(c.name))
              .join(', ')}`,
          );
        }
        kc.setCurrentContext(auth.context);
      }
      break;
    }
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeConfigError('the kubeconfig has no current cluster');
  if (cluster.server.startsWith('http://') && cluster.skipTLSVerify !== true) {
    throw new KubeConfigError(
      `the Kubernetes API server ${cluster.server} is plain HTTP: client-node refuses it unless the cluster sets insecure-skip-tls-verify: true`,
    );
  }
  return kc;
}
