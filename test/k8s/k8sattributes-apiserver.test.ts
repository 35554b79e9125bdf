/**
 * The k8sattributes processor and its informers against a real kube-apiserver with etcd (test/support/
 * kube-apiserver.ts), authenticated the way the manifests deploy it: in-cluster configuration with a service
 * account token from the TokenRequest API, authorized by examples/kubernetes/rbac.yaml, with the k8sattributes
 * block of examples/kubernetes/gateway.yaml. Pods are created, relabelled and deleted through the API; the
 * server's bookmarks, its 410 Gone after a restart and after an etcd compaction, and a refused token are the
 * real server's; the enrichment is checked exactly throughout.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { K8sAttributesProcessor, type K8sAttributesOptions } from '../../src/processors/k8sattributes/processor';
import { KubeTestCluster, type KubeJson } from '../support/kube-apiserver';
import { FakeBatch, TracesSink, eventually, k8sConfig, settings } from '../support/k8s';

const examples = path.resolve(__dirname, '../../../examples/kubernetes');
const FAST = { backoff: { initialMs: 50, maxMs: 400 } };

/** The k8sattributes block of the gateway example's config. */
function gatewayK8sAttributes(): Record<string, unknown> {
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(examples, 'gateway.yaml'), 'utf8')).map((d) => d.toJS() as KubeJson);
  const cm = docs.find((d) => d['kind'] === 'ConfigMap') as KubeJson;
  const config = YAML.parse(cm['data']['otel-config.yaml'] as string) as KubeJson;
  return config['processors']['k8sattributes'] as Record<string, unknown>;
}

/** A Deployment and the ReplicaSet it would own (no controller runs: both are created as they would exist). */
async function deploymentWithReplicaSet(
  c: KubeTestCluster,
  namespace: string,
  name: string,
  hash: string,
): Promise<{ deployment: KubeJson; replicaSet: KubeJson }> {
  const template = { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1.0' }] } };
  const deployment = await c.create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template },
  });
  const replicaSet = await c.create({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${name}-${hash}`,
      namespace,
      labels: { app: name, 'pod-template-hash': hash },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: deployment['metadata']['uid'], controller: true }],
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name, 'pod-template-hash': hash } },
      template: { ...template, metadata: { labels: { app: name, 'pod-template-hash': hash } } },
    },
  });
  return { deployment, replicaSet };
}

/** What the gateway config adds for a pod of a Deployment (exact, from the objects the server stored). */
function expectedGateway(pod: KubeJson, o: { deployment: string; clusterUid: string; team: string | undefined; ip?: string }): Record<string, string> {
  const out: Record<string, string> = {
    'k8s.namespace.name': pod['metadata']['namespace'],
    'k8s.pod.name': pod['metadata']['name'],
    'k8s.pod.uid': pod['metadata']['uid'],
    'k8s.pod.start_time': pod['status']['startTime'],
    'k8s.deployment.name': o.deployment,
    'k8s.node.name': pod['spec']['nodeName'],
    'k8s.cluster.uid': o.clusterUid,
    'container.image.name': 'registry.example/app',
    'container.image.tag': '1.0',
  };
  if (o.ip !== undefined) out['k8s.pod.ip'] = o.ip;
  const version = (pod['metadata']['labels'] as Record<string, string> | undefined)?.['app.kubernetes.io/version'];
  if (version !== undefined) out['service.version'] = version;
  if (o.team !== undefined) out['team'] = o.team;
  return out;
}

function enrich(p: K8sAttributesProcessor, clientAddress: string | undefined, attrs: Record<string, string> = {}): Record<string, unknown> {
  const b = new FakeBatch([attrs]);
  p.enrich(b, { clientAddress });
  return b.attrs(0);
}

const podsLists = (p: K8sAttributesProcessor): number => p.watcher?.statuses().find((s) => s.name === 'pods')?.lists ?? 0;

describe('k8sattributes against a real kube-apiserver and etcd', function () {
  // The first run builds etcd and kube-apiserver from the Go module proxy (the latter ≈ 14 minutes of 2 cores).
  this.timeout(120_000);
  let cluster: KubeTestCluster;
  let inCluster: Record<string, string>;
  let clusterUid: string;
  const processors: K8sAttributesProcessor[] = [];
  let nsCounter = 0;

  before(async function () {
    this.timeout(90 * 60_000);
    cluster = await KubeTestCluster.start();
    await cluster.createNamespace('observability');
    // The ServiceAccount, ClusterRole and ClusterRoleBinding exactly as the manifests have them.
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(examples, 'rbac.yaml'), 'utf8'))) await cluster.create(d.toJS() as KubeJson);
    inCluster = await cluster.inClusterEnv('observability', 'routelens');
    clusterUid = (await cluster.call('GET', '/api/v1/namespaces/kube-system'))['metadata']['uid'] as string;
  });

  afterEach(async () => {
    for (const p of processors.splice(0)) await p.shutdown();
  });

  after(async () => {
    await cluster?.stop();
  });

  /** A fresh namespace per test (namespaces cannot be deleted without the namespace controller). */
  async function namespace(labels: Record<string, string> = {}): Promise<string> {
    const name = `shop-${++nsCounter}`;
    await cluster.createNamespace(name, labels);
    return name;
  }

  async function gateway(extra: Record<string, unknown> = {}, opts: K8sAttributesOptions = {}, env = inCluster): Promise<K8sAttributesProcessor> {
    const p = new K8sAttributesProcessor(settings(), k8sConfig({ ...gatewayK8sAttributes(), wait_for_metadata_timeout: '20s', ...extra }), new TracesSink(), {
      env,
      ...FAST,
      ...opts,
    });
    processors.push(p);
    await p.start(); // wait_for_metadata: resolves once every informer has listed
    expect(p.synced).to.equal(true);
    return p;
  }

  it('runs in-cluster with the service account token and the manifests RBAC: lists, watches and enriches by connection, pod uid and pod IP', async () => {
    const ns = await namespace({ team: 'payments' });
    const { replicaSet } = await deploymentWithReplicaSet(cluster, ns, 'web', '7d4b9c');
    const pod = await cluster.createRunningPod({
      name: 'web-7d4b9c-abcde',
      namespace: ns,
      ip: '10.1.0.5',
      labels: { app: 'web', 'app.kubernetes.io/version': '1.4.2' },
      owner: replicaSet,
    });
    const p = await gateway();
    const expected = expectedGateway(pod, { deployment: 'web', clusterUid, team: 'payments' });
    expect(enrich(p, '10.1.0.5')).to.deep.equal({ 'k8s.pod.ip': '10.1.0.5', ...expected });
    expect(enrich(p, '::ffff:10.1.0.5')['k8s.pod.uid']).to.equal(pod['metadata']['uid']);
    // By the pod uid the SDK sent, from any address (a proxy's): what the client sent is kept.
    expect(enrich(p, '10.9.9.9', { 'k8s.pod.uid': pod['metadata']['uid'] })).to.deep.equal(expected);
    expect(enrich(p, undefined, { 'k8s.pod.ip': '10.1.0.5' })).to.deep.equal({ 'k8s.pod.ip': '10.1.0.5', ...expected });
    expect(enrich(p, '10.1.0.99')).to.deep.equal({});
    // The requests were the service account's, and each was allowed. The API server writes its audit log on its own
    // schedule (a watch's entry can come after the list that followed it), so wait for the entries, then compare.
    const wanted = ['list pods', 'watch pods', 'list replicasets', 'list namespaces', 'get namespaces'];
    const mineNow = (): ReturnType<typeof cluster.auditEvents> =>
      cluster.auditEvents().filter((e) => e.user.username === 'system:serviceaccount:observability:routelens');
    await eventually(
      () => {
        const seen = new Set(mineNow().map((e) => `${e.verb} ${e.objectRef?.resource}`));
        return wanted.every((w) => seen.has(w));
      },
      15_000,
      'the audit log holding every request routelens made',
    ).catch(() => undefined);
    const mine = mineNow();
    expect([...new Set(mine.map((e) => `${e.verb} ${e.objectRef?.resource}`))]).to.include.members([
      'list pods',
      'watch pods',
      'list replicasets',
      'list namespaces',
      'get namespaces',
    ]);
    expect(mine.filter((e) => (e.responseStatus?.code ?? 200) >= 400)).to.deep.equal([]);
  });

  it('follows pods created, relabelled and deleted through the API, and an IP taken over by a new pod', async () => {
    const ns = await namespace();
    const { replicaSet } = await deploymentWithReplicaSet(cluster, ns, 'api', '5f6d7c');
    let clock = 1_000_000;
    const p = await gateway({}, { now: () => clock, sweepIntervalMs: 20 });
    expect(enrich(p, '10.2.0.7')).to.deep.equal({});

    const v1 = await cluster.createRunningPod({
      name: 'api-5f6d7c-aaaaa',
      namespace: ns,
      ip: '10.2.0.7',
      labels: { app: 'api', 'app.kubernetes.io/version': '2.0.0' },
      owner: replicaSet,
    });
    await eventually(() => enrich(p, '10.2.0.7')['k8s.pod.name'] === 'api-5f6d7c-aaaaa', 10_000, 'the new pod');
    expect(enrich(p, '10.2.0.7')).to.deep.equal({ 'k8s.pod.ip': '10.2.0.7', ...expectedGateway(v1, { deployment: 'api', clusterUid, team: undefined }) });

    const relabelled = await cluster.patch(v1, { metadata: { labels: { 'app.kubernetes.io/version': '2.1.0' } } });
    await eventually(() => enrich(p, '10.2.0.7')['service.version'] === '2.1.0', 10_000, 'the new label');
    expect(enrich(p, '10.2.0.7')).to.deep.equal({
      'k8s.pod.ip': '10.2.0.7',
      ...expectedGateway(relabelled, { deployment: 'api', clusterUid, team: undefined }),
    });

    // Deleted: still found for late spans during pod_delete_grace_period (2 m), by IP and by uid.
    const live = p.metadata.pods.liveCount;
    await cluster.delete(v1);
    await eventually(() => p.metadata.pods.deletedCount === 1, 10_000, 'the DELETED event');
    expect(p.metadata.pods.liveCount).to.equal(live - 1);
    expect(enrich(p, '10.2.0.7')['k8s.pod.uid']).to.equal(v1['metadata']['uid']);
    // A new pod with the same IP takes it over at once.
    const v2 = await cluster.createRunningPod({
      name: 'api-5f6d7c-bbbbb',
      namespace: ns,
      ip: '10.2.0.7',
      labels: { app: 'api', 'app.kubernetes.io/version': '2.1.0' },
      owner: replicaSet,
    });
    await eventually(() => enrich(p, '10.2.0.7')['k8s.pod.name'] === 'api-5f6d7c-bbbbb', 10_000, 'the IP taken over');
    expect(enrich(p, '10.2.0.7')).to.deep.equal({ 'k8s.pod.ip': '10.2.0.7', ...expectedGateway(v2, { deployment: 'api', clusterUid, team: undefined }) });
    expect(enrich(p, undefined, { 'k8s.pod.uid': v1['metadata']['uid'] })['k8s.pod.name']).to.equal('api-5f6d7c-aaaaa');
    // After the grace period the deleted pod is gone.
    clock += 3 * 60_000;
    await eventually(() => enrich(p, undefined, { 'k8s.pod.uid': v1['metadata']['uid'] })['k8s.pod.name'] === undefined, 5000, 'the deleted pod swept');
    expect(podsLists(p)).to.equal(1, 'events only, no relist');
  });

  it('resumes its watches from the bookmarks the server sends: past events of other namespaces, without relisting', async function () {
    this.timeout(180_000);
    const ns = await namespace();
    const noise = await namespace();
    const { replicaSet } = await deploymentWithReplicaSet(cluster, ns, 'web', '1a2b3c');
    // Short server-side watch timeouts: the server sends a bookmark 2 s before each.
    const p = await gateway({ filter: { namespace: ns } }, { watchTimeout: { minSeconds: 4, maxSeconds: 6 } });
    const pod = await cluster.createRunningPod({ name: 'web-1a2b3c-x', namespace: ns, ip: '10.3.0.4', owner: replicaSet, labels: { app: 'web' } });
    await eventually(() => enrich(p, '10.3.0.4')['k8s.pod.name'] === 'web-1a2b3c-x', 10_000, 'the pod');
    const lastSeen = Number(pod['metadata']['resourceVersion']);
    // Changes the filtered informer never sees move the store's resourceVersion on.
    for (let i = 0; i < 10; i++) await cluster.createRunningPod({ name: `noise-${i}`, namespace: noise, ip: `10.3.1.${i}` });
    const churned = await cluster.etcdRevision();
    expect(churned).to.be.greaterThan(lastSeen);
    const resumedFrom = (): number[] =>
      cluster
        .auditEvents()
        .filter((e) => e.verb === 'watch' && e.objectRef?.resource === 'pods' && e.objectRef.namespace === ns && e.stage === 'ResponseStarted')
        .map((e) => Number(new URL(e.requestURI, 'https://x').searchParams.get('resourceVersion')));
    // A watch resumed from a resourceVersion past every event it was sent can only come from a bookmark.
    await eventually(() => resumedFrom().some((rv) => rv > lastSeen), 60_000, 'a watch resumed from a bookmark');
    const watches = cluster
      .auditEvents()
      .filter((e) => e.verb === 'watch' && e.objectRef?.resource === 'pods' && e.objectRef.namespace === ns && e.stage === 'ResponseStarted');
    for (const w of watches) {
      const q = new URL(w.requestURI, 'https://x').searchParams;
      expect(q.get('allowWatchBookmarks')).to.equal('true');
      expect(['4', '5']).to.include(q.get('timeoutSeconds'));
    }
    expect(Math.max(...resumedFrom())).to.be.at.most(await cluster.etcdRevision());
    expect(podsLists(p)).to.equal(1, 'no relist');
    expect(enrich(p, '10.3.0.4')).to.deep.equal({ 'k8s.pod.ip': '10.3.0.4', ...expectedGateway(pod, { deployment: 'web', clusterUid, team: undefined }) });
    // Pods of other namespaces are not in this informer's view.
    expect(enrich(p, '10.3.1.0')).to.deep.equal({});
  });

  it('after an API server restart relists on the 410 the new server answers and applies what changed meanwhile', async function () {
    this.timeout(300_000);
    const ns = await namespace({ team: 'search' });
    const { replicaSet } = await deploymentWithReplicaSet(cluster, ns, 'search', '9z8y7x');
    const make = (name: string, ip: string, version: string): Promise<KubeJson> =>
      cluster.createRunningPod({ name, namespace: ns, ip, owner: replicaSet, labels: { app: 'search', 'app.kubernetes.io/version': version } });
    const a = await make('search-9z8y7x-a', '10.4.0.1', '3.0.0');
    const b = await make('search-9z8y7x-b', '10.4.0.2', '3.0.0');
    let clock = 5_000_000;
    const p = await gateway({}, { now: () => clock });
    expect(enrich(p, '10.4.0.1')['k8s.pod.uid']).to.equal(a['metadata']['uid']);
    let c: KubeJson | undefined;
    let bRelabelled: KubeJson | undefined;
    await cluster.restartApiServer({
      meanwhile: async () => {
        // While routelens cannot reach the API: a pod deleted, its IP taken by a new pod, another relabelled.
        await cluster.delete(a);
        c = await make('search-9z8y7x-c', '10.4.0.1', '3.1.0');
        bRelabelled = await cluster.patch(b, { metadata: { labels: { 'app.kubernetes.io/version': '3.1.0' } } });
      },
    });
    await eventually(() => enrich(p, '10.4.0.1')['k8s.pod.name'] === 'search-9z8y7x-c', 60_000, 'the changes made while away');
    expect(enrich(p, '10.4.0.1')).to.deep.equal({
      'k8s.pod.ip': '10.4.0.1',
      ...expectedGateway(c as KubeJson, { deployment: 'search', clusterUid, team: 'search' }),
    });
    await eventually(() => enrich(p, '10.4.0.2')['service.version'] === '3.1.0', 10_000, 'the relabelled pod');
    expect(enrich(p, '10.4.0.2')).to.deep.equal({
      'k8s.pod.ip': '10.4.0.2',
      ...expectedGateway(bRelabelled as KubeJson, { deployment: 'search', clusterUid, team: 'search' }),
    });
    // The restarted server's watch cache starts after routelens's resourceVersion: 410, then a full list.
    expect(podsLists(p)).to.equal(2);
    // The relist applied the delete routelens never saw an event for: the pod is kept for late spans only.
    expect(p.metadata.pods.deletedCount).to.equal(1);
    expect(enrich(p, undefined, { 'k8s.pod.uid': a['metadata']['uid'] })['k8s.pod.name']).to.equal('search-9z8y7x-a');
    clock += 3 * 60_000;
    // Watches work again after the relist.
    const d = await make('search-9z8y7x-d', '10.4.0.3', '3.1.0');
    await eventually(() => enrich(p, '10.4.0.3')['k8s.pod.uid'] === d['metadata']['uid'], 10_000, 'a pod created after the restart');
  });

  it('a service account without the binding is refused (403) and start fails naming the resource', async () => {
    await cluster.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'unbound', namespace: 'observability' } });
    const env = await cluster.inClusterEnv('observability', 'unbound');
    const p = new K8sAttributesProcessor(settings(), k8sConfig({ ...gatewayK8sAttributes(), wait_for_metadata_timeout: '3s' }), new TracesSink(), {
      env,
      ...FAST,
    });
    processors.push(p);
    let err: unknown;
    try {
      await p.start();
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/pods \(403/);
    expect(String(err)).to.match(/forbidden/i);
    const refused = cluster.auditEvents().filter((e) => e.user.username === 'system:serviceaccount:observability:unbound' && e.responseStatus?.code === 403);
    expect(refused.map((e) => e.objectRef?.resource)).to.include('pods');
  });
});

describe('k8sattributes against a real kube-apiserver without a watch cache: 410 after an etcd compaction', function () {
  this.timeout(300_000);
  let cluster: KubeTestCluster;
  let p: K8sAttributesProcessor | undefined;

  before(async function () {
    this.timeout(90 * 60_000);
    // Watches are then served by etcd itself, from its history: a compacted revision is gone.
    cluster = await KubeTestCluster.start({ apiServerArgs: ['--watch-cache=false'] });
  });

  after(async () => {
    await p?.shutdown();
    await cluster?.stop();
  });

  it('resumes from etcd history after an outage, and relists on 410 once that history is compacted', async () => {
    await cluster.createNamespace('observability');
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(examples, 'rbac.yaml'), 'utf8'))) await cluster.create(d.toJS() as KubeJson);
    await cluster.createNamespace('shop');
    const { replicaSet } = await deploymentWithReplicaSet(cluster, 'shop', 'cart', 'c4r7');
    const make = (name: string, ip: string): Promise<KubeJson> =>
      cluster.createRunningPod({ name, namespace: 'shop', ip, owner: replicaSet, labels: { app: 'cart' } });
    const first = await make('cart-c4r7-1', '10.5.0.1');
    const clusterUid = (await cluster.call('GET', '/api/v1/namespaces/kube-system'))['metadata']['uid'] as string;
    p = new K8sAttributesProcessor(settings(), k8sConfig({ ...gatewayK8sAttributes(), wait_for_metadata_timeout: '20s' }), new TracesSink(), {
      env: await cluster.inClusterEnv('observability', 'routelens'),
      ...FAST,
    });
    await p.start();
    const proc = p;
    expect(enrich(proc, '10.5.0.1')['k8s.pod.uid']).to.equal(first['metadata']['uid']);

    // An outage without compaction: the watch resumes from etcd's history and replays the changes; no relist.
    let second: KubeJson | undefined;
    await cluster.restartApiServer({
      meanwhile: async () => {
        await cluster.delete(first);
        second = await make('cart-c4r7-2', '10.5.0.1');
      },
    });
    await eventually(() => enrich(proc, '10.5.0.1')['k8s.pod.name'] === 'cart-c4r7-2', 60_000, 'the changes replayed');
    expect(podsLists(proc)).to.equal(1, 'resumed from history: no relist');

    // An outage ending with a compaction of everything so far: the resumed watch gets 410 Gone, and the relist
    // applies what happened (the pod deleted without an event reaching routelens, the IP taken over again).
    let third: KubeJson | undefined;
    await cluster.restartApiServer({
      meanwhile: async () => {
        await cluster.delete(second as KubeJson);
        third = await make('cart-c4r7-3', '10.5.0.1');
        await cluster.compact();
      },
    });
    await eventually(() => enrich(proc, '10.5.0.1')['k8s.pod.name'] === 'cart-c4r7-3', 60_000, 'the relisted state');
    expect(podsLists(proc)).to.equal(2, 'relisted after 410');
    expect(enrich(proc, '10.5.0.1')).to.deep.equal({
      'k8s.pod.ip': '10.5.0.1',
      ...expectedGateway(third as KubeJson, { deployment: 'cart', clusterUid, team: undefined }),
    });
    const gone = cluster
      .auditEvents()
      .filter((e) => e.verb === 'watch' && e.objectRef?.resource === 'pods' && e.user.username === 'system:serviceaccount:observability:routelens');
    expect(gone.length).to.be.greaterThan(0);
  });
});
