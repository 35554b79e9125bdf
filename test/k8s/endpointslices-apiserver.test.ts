/**
 * The EndpointSlice resolver (src/discovery/) on a real kube-apiserver (test/support/kube-apiserver.ts), with the
 * service account token and the RBAC of examples/kubernetes/rbac.yaml: the peers are the union of every slice of
 * the Service, ready/serving/terminating honoured, changes followed, a restarted API server resumed (with the changes
 * made while it was down), and a service account without the Role gets no peers and says why. There is no
 * EndpointSlice controller here: the test writes the slices as the controller would.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import * as YAML from 'yaml';
import { ConfigErrorList } from '../../src/core/schema';
import { resolverSchema } from '../../src/discovery/config';
import { createResolver, type Membership, type Resolver } from '../../src/discovery/resolver';
import { KubeTestCluster, type KubeJson } from '../support/kube-apiserver';

const examples = path.resolve(__dirname, '../../../examples/kubernetes');
const logger = pino({ level: 'silent' });

function resolver(env: Record<string, string>, onResolution?: (ok: boolean) => void): Resolver {
  const issues = new ConfigErrorList();
  const config = resolverSchema({ defaultPort: undefined, portDoc: '' }).parse({ k8s: { service: 'routelens-gateway-headless' } }, 'resolver', issues);
  expect(issues.items).to.deep.equal([]);
  return createResolver(config, { logger, env, ownPort: 8888, onResolution });
}

function slice(name: string, endpoints: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[]): KubeJson {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'observability', labels: { 'kubernetes.io/service-name': 'routelens-gateway-headless' } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready }),
        ...(e.serving === undefined ? {} : { serving: e.serving }),
        ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
      },
    })),
    ports: [{ name: 'query', port: 8888, protocol: 'TCP' }],
  };
}

async function until(r: Resolver, want: (m: Membership) => boolean, what: string, timeoutMs = 20_000): Promise<Membership> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (want(r.membership())) return r.membership();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}; membership ${JSON.stringify(r.membership())}`);
}

describe('EndpointSlice resolver on a real kube-apiserver', function () {
  this.timeout(120_000);
  let cluster: KubeTestCluster;
  let inCluster: Record<string, string>;

  before(async function () {
    this.timeout(90 * 60_000);
    cluster = await KubeTestCluster.start();
    await cluster.createNamespace('observability');
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(examples, 'rbac.yaml'), 'utf8'))) await cluster.create(d.toJS() as KubeJson);
    inCluster = await cluster.inClusterEnv('observability', 'routelens');
    const headless = YAML.parseAllDocuments(fs.readFileSync(path.join(examples, 'gateway.yaml'), 'utf8'))
      .map((d) => d.toJS() as KubeJson)
      .find((d) => d['kind'] === 'Service' && d['spec']['clusterIP'] === 'None') as KubeJson;
    await cluster.create(headless);
  });

  after(async () => {
    await cluster?.stop();
  });

  it('follows the union of the slices with the manifests RBAC, and resumes after the API server restarts', async () => {
    const a = await cluster.create(slice('gw-a', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2', ready: false, serving: false }]));
    await cluster.create(slice('gw-b', [{ ip: '10.1.0.3', ready: true }]));
    const outcomes: boolean[] = [];
    const r = resolver(inCluster, (ok) => outcomes.push(ok));
    await r.start();
    try {
      expect(outcomes[0]).to.equal(true);
      expect(r.membership()).to.deep.equal({ ready: ['10.1.0.1:8888', '10.1.0.3:8888'], serving: ['10.1.0.1:8888', '10.1.0.3:8888'] });

      // 10.1.0.1 terminates but still serves; a third slice appears
      await cluster.patch(a, {
        endpoints: slice('gw-a', [
          { ip: '10.1.0.1', ready: false, serving: true, terminating: true },
          { ip: '10.1.0.2', ready: true },
        ])['endpoints'],
      });
      await cluster.create(slice('gw-c', [{ ip: '10.1.0.4' }]));
      expect(await until(r, (m) => m.ready.length === 3, 'the third slice')).to.deep.equal({
        ready: ['10.1.0.2:8888', '10.1.0.3:8888', '10.1.0.4:8888'],
        serving: ['10.1.0.1:8888', '10.1.0.2:8888', '10.1.0.3:8888', '10.1.0.4:8888'],
      });

      // Changes made while the API server is down are seen once it is back.
      await cluster.restartApiServer({
        meanwhile: async () => {
          await cluster.delete(a);
          await cluster.create(slice('gw-d', [{ ip: '10.1.0.5' }]));
        },
      });
      expect(await until(r, (m) => m.serving.length === 3 && m.ready.includes('10.1.0.5:8888'), 'the changes made during the restart')).to.deep.equal({
        ready: ['10.1.0.3:8888', '10.1.0.4:8888', '10.1.0.5:8888'],
        serving: ['10.1.0.3:8888', '10.1.0.4:8888', '10.1.0.5:8888'],
      });
    } finally {
      await r.stop();
    }
  });

  it('a service account without the Role gets no peers, and the refusal is counted', async () => {
    await cluster.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'unbound', namespace: 'observability' } });
    const outcomes: boolean[] = [];
    const r = resolver(await cluster.inClusterEnv('observability', 'unbound'), (ok) => outcomes.push(ok));
    await r.start();
    try {
      expect(r.membership().serving).to.deep.equal([]);
      expect(outcomes[0]).to.equal(false);
    } finally {
      await r.stop();
    }
  });
});
