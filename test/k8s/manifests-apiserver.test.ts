/**
 * The manifests users apply, on a real kube-apiserver (test/support/kube-apiserver.ts): every object of
 * examples/kubernetes and of the Helm chart in each mode passes the server's own validation and admission
 * (server-side apply, dry run, strict field validation); and the RBAC the chart computes from its configs is
 * what those configs need on a real server: the gateway and the agent start with their chart's service account
 * token and enrich.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { K8sAttributesProcessor } from '../../src/processors/k8sattributes/processor';
import { helmTemplate } from '../support/helm';
import { parseManifests, type Obj } from '../support/k8s-manifests';
import { KubeTestCluster, type KubeJson, type KubeRequestError } from '../support/kube-apiserver';
import { FakeBatch, TracesSink, k8sConfig, settings } from '../support/k8s';

const examples = path.resolve(__dirname, '../../../examples/kubernetes');

const strip = ({ __file: _file, ...o }: Obj): KubeJson => o;

/** The k8sattributes block of a rendered ConfigMap's routelens config. */
function k8sAttributesOf(docs: Obj[], configMap: string): Record<string, unknown> {
  const cm = docs.find((d) => d['kind'] === 'ConfigMap' && d['metadata']['name'] === configMap) as Obj;
  return (YAML.parse(cm['data']['otel-config.yaml'] as string) as KubeJson)['processors']['k8sattributes'] as Record<string, unknown>;
}

describe('manifests and chart on a real kube-apiserver', function () {
  this.timeout(120_000);
  let cluster: KubeTestCluster;
  const processors: K8sAttributesProcessor[] = [];

  before(async function () {
    // The first run builds etcd and kube-apiserver from the Go module proxy.
    this.timeout(90 * 60_000);
    cluster = await KubeTestCluster.start();
    for (const ns of ['observability', 'charted', 'shop']) await cluster.createNamespace(ns);
  });

  afterEach(async () => {
    for (const p of processors.splice(0)) await p.shutdown();
  });

  after(async () => {
    await cluster?.stop();
  });

  it('accepts every object of examples/kubernetes and of the chart in each mode (server-side apply, dry run, strict validation)', async () => {
    const sets: [string, Obj[]][] = [
      [
        'examples/kubernetes',
        fs
          .readdirSync(examples)
          .filter((f) => f.endsWith('.yaml'))
          .sort()
          .flatMap((f) => parseManifests(fs.readFileSync(path.join(examples, f), 'utf8'), f)),
      ],
      ['chart defaults', await helmTemplate({}, { namespace: 'charted' })],
      ['chart agent', await helmTemplate({ gateway: { enabled: false }, agent: { enabled: true, hostPorts: true } }, { namespace: 'charted' })],
      [
        'chart both + HPA',
        await helmTemplate(
          { agent: { enabled: true }, gateway: { autoscaling: { enabled: true, targetMemoryUtilizationPercentage: 80 } } },
          { namespace: 'charted' },
        ),
      ],
    ];
    for (const [what, docs] of sets) {
      expect(docs.length, what).to.be.greaterThan(3);
      for (const d of docs) {
        const where = `${what}: ${d['kind']}/${d['metadata']['name']}`;
        const stored = await cluster.apply(strip(d), { dryRun: true }).catch((err: Error) => {
          throw new Error(`${where}: ${err.message}`);
        });
        expect(stored['kind'], where).to.equal(d['kind']);
      }
    }
    // Strict validation does refuse what it should: a misspelt field. Server-side apply answers 500 (its typed
    // patch cannot be built), a create 400 (strict decoding).
    const deployment = strip(sets[1]?.[1].find((d) => d['kind'] === 'Deployment') as Obj);
    const misspelt = { ...deployment, spec: { ...deployment['spec'], replica: 3 } };
    const refusal = (p: Promise<unknown>): Promise<KubeRequestError> =>
      p.then(
        () => {
          throw new Error('accepted a misspelt field');
        },
        (e: unknown) => e as KubeRequestError,
      );
    const applied = await refusal(cluster.apply(misspelt, { dryRun: true }));
    expect(applied.message).to.match(/\.spec\.replica: field not declared in schema/);
    const created = await refusal(cluster.create(misspelt, { query: '?dryRun=All&fieldValidation=Strict' }));
    expect(created.status, created.message).to.equal(400);
    expect(created.message).to.match(/unknown field "spec.replica"/);
  });

  it("the chart's RBAC is what its configs need on a real server: the gateway and the agent start with its service account and enrich", async () => {
    await cluster.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } });
    const pod = await cluster.createRunningPod({
      name: 'checkout-1',
      namespace: 'shop',
      ip: '10.6.0.1',
      node: 'node-a',
      labels: { 'app.kubernetes.io/version': '7.0.0' },
    });
    const releases: [string, Obj][] = [
      ['gw', {}],
      ['ag', { gateway: { enabled: false }, agent: { enabled: true } }],
    ];
    const enriched: Record<string, unknown>[] = [];
    for (const [release, values] of releases) {
      const docs = await helmTemplate(values, { release, namespace: 'charted' });
      // The RBAC objects for real (ServiceAccount, ClusterRole, ClusterRoleBinding).
      for (const d of docs.filter((x) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(x['kind'] as string))) await cluster.apply(strip(d));
      const component = release === 'gw' ? 'gateway' : 'agent';
      const workload = docs.find((d) => d['kind'] === (component === 'gateway' ? 'Deployment' : 'DaemonSet')) as Obj;
      const sa = workload['spec']['template']['spec']['serviceAccountName'] as string;
      const env = { ...(await cluster.inClusterEnv('charted', sa)), K8S_NODE_NAME: 'node-a' };
      const cfg = k8sConfig({ ...k8sAttributesOf(docs, `${release}-routelens-${component}`), wait_for_metadata: true, wait_for_metadata_timeout: '20s' });
      const p = new K8sAttributesProcessor(settings(), cfg, new TracesSink(), { env, backoff: { initialMs: 50, maxMs: 400 } });
      processors.push(p);
      await p.start();
      const b = new FakeBatch([{}]);
      p.enrich(b, { clientAddress: '10.6.0.1' });
      enriched.push(b.attrs(0));
    }
    const common = {
      'k8s.pod.ip': '10.6.0.1',
      'k8s.namespace.name': 'shop',
      'k8s.pod.name': 'checkout-1',
      'k8s.pod.uid': pod['metadata']['uid'],
      'k8s.pod.start_time': pod['status']['startTime'],
      'k8s.node.name': 'node-a',
      'cloud.availability_zone': 'zone-a',
    };
    const clusterUid = (await cluster.call('GET', '/api/v1/namespaces/kube-system'))['metadata']['uid'] as string;
    expect(enriched).to.deep.equal([{ ...common, 'k8s.cluster.uid': clusterUid, 'service.version': '7.0.0' }, { ...common }]);
    // Each ran as its own service account and nothing it asked for was refused.
    for (const release of ['gw', 'ag']) {
      const mine = cluster.auditEvents().filter((e) => e.user.username === `system:serviceaccount:charted:${release}-routelens`);
      expect(mine.length, release).to.be.greaterThan(0);
      expect(mine.filter((e) => (e.responseStatus?.code ?? 200) >= 400).map((e) => e.requestURI)).to.deep.equal([]);
    }
  });
});
