/**
 * The k8sattributes processor and its informers against the fake API server: list and
 * watch, owner resolution, deletes and IP reuse, cut watches, 410 Gone, bookmarks, churn, auth, in-cluster
 * config, wait_for_metadata.
 */
import { expect } from 'chai';
import { Telemetry } from '../../src/core/telemetry';
import { LogsBatch } from '../../src/pdata/logs-batch';
import { MetricsBatch } from '../../src/pdata/metrics-batch';
import type { OtlpBatch } from '../../src/pdata/otlp-batch';
import { TraceBatch } from '../../src/pdata/trace-batch';
import { k8sAttributesFactory } from '../../src/processors/k8sattributes/factory';
import { K8sAttributesProcessor, type K8sAttributesOptions } from '../../src/processors/k8sattributes/processor';
import { rawFields } from '../support/otlp-arbitraries';
import { RecordingConsumer, logsRequest, metricsRequest } from '../support/signal-requests';
import { spanIds, traceRequest } from '../support/trace-requests';
import { FakeKubeApi, makeJob, makeNamespace, makeNode, makePod, makeReplicaSet } from '../support/fake-kube-api';
import { eventually, FakeBatch, k8sConfig, settings, sleep, TracesSink } from '../support/k8s';

const FAST = { backoff: { initialMs: 50, maxMs: 400 } };

describe('k8sattributes informers against a fake API server', function () {
  this.timeout(30_000);
  let api: FakeKubeApi;
  const processors: K8sAttributesProcessor[] = [];

  beforeEach(async () => {
    api = await FakeKubeApi.start();
  });

  afterEach(async () => {
    for (const p of processors.splice(0)) await p.shutdown();
    await api.close();
  });

  function processor(raw: Record<string, unknown>, opts: K8sAttributesOptions = {}, telemetry = new Telemetry()): K8sAttributesProcessor {
    const cfg = k8sConfig({ auth_type: 'kubeConfig', kube_config_path: api.writeKubeconfig(), ...raw });
    const p = new K8sAttributesProcessor(settings('k8sattributes', telemetry), cfg, new TracesSink(), { ...FAST, ...opts });
    processors.push(p);
    return p;
  }

  async function synced(p: K8sAttributesProcessor): Promise<void> {
    await p.start();
    await eventually(() => p.synced, 5000, 'informers synced');
  }

  function enrichFrom(p: K8sAttributesProcessor, clientAddress: string | undefined, attrs: Record<string, string> = {}): Record<string, unknown> {
    const b = new FakeBatch([attrs]);
    p.enrich(b, { clientAddress });
    return b.attrs(0);
  }

  it('enriches by connection address with the default metadata; deployment comes from the ReplicaSet owner', async () => {
    api.add('replicasets', makeReplicaSet({ name: 'web-7d4b9c', namespace: 'shop', uid: 'rs-1', deployment: { name: 'web', uid: 'dep-1' } }));
    api.addPod(
      makePod({
        name: 'web-7d4b9c-abcde',
        namespace: 'shop',
        uid: 'pod-1',
        ip: '10.1.0.5',
        node: 'node-a',
        owner: { kind: 'ReplicaSet', name: 'web-7d4b9c', uid: 'rs-1' },
        startTime: '2025-03-01T10:00:00Z',
      }),
    );
    const p = processor({});
    await synced(p);
    expect(enrichFrom(p, '10.1.0.5')).to.deep.equal({
      'k8s.pod.ip': '10.1.0.5',
      'k8s.namespace.name': 'shop',
      'k8s.pod.name': 'web-7d4b9c-abcde',
      'k8s.pod.uid': 'pod-1',
      'k8s.pod.start_time': '2025-03-01T10:00:00Z',
      'k8s.deployment.name': 'web',
      'k8s.node.name': 'node-a',
    });
    // IPv4-mapped IPv6 peers are the same address.
    expect(enrichFrom(p, '::ffff:10.1.0.5')['k8s.pod.name']).to.equal('web-7d4b9c-abcde');
    // Watches were asked for bookmarks and resume from the list's resourceVersion.
    await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');
    const watch = api.requests.find((r) => r.kind === 'pods' && r.verb === 'watch');
    expect(watch?.query['allowWatchBookmarks']).to.equal('true');
    expect(Number(watch?.query['resourceVersion'])).to.be.greaterThan(1000);
    expect(api.count({ kind: 'namespaces' })).to.equal(0, 'namespaces are not watched unless extraction needs them');
    expect(api.count({ kind: 'nodes' })).to.equal(0);
  });

  it('follows watch events: a pod added later, a label change, a ReplicaSet arriving after its pod', async () => {
    const p = processor({ extract: { metadata: ['k8s.pod.name', 'k8s.deployment.name'], labels: [{ key: 'team' }] } });
    await synced(p);
    api.addPod(makePod({ name: 'api-1', uid: 'u1', ip: '10.1.0.9', labels: { team: 'a' }, owner: { kind: 'ReplicaSet', name: 'api-5f6', uid: 'rs-9' } }));
    await eventually(() => p.metadata.pods.byIp('10.1.0.9') !== undefined, 5000, 'pod via watch');
    expect(enrichFrom(p, '10.1.0.9')).to.deep.equal({ 'k8s.pod.ip': '10.1.0.9', 'k8s.pod.name': 'api-1', 'k8s.pod.labels.team': 'a' });
    api.modifyPod('default', 'api-1', (o) => {
      (o.metadata.labels as Record<string, string>)['team'] = 'b';
    });
    api.add('replicasets', makeReplicaSet({ name: 'api-5f6', uid: 'rs-9', deployment: { name: 'api', uid: 'd9' } }));
    await eventually(() => enrichFrom(p, '10.1.0.9')['k8s.deployment.name'] === 'api', 5000, 'deployment via RS watch');
    expect(enrichFrom(p, '10.1.0.9')['k8s.pod.labels.team']).to.equal('b');
  });

  it('associates by k8s.pod.uid and k8s.pod.ip resource attributes before the connection', async () => {
    api.addPod(makePod({ name: 'a', uid: 'uid-a', ip: '10.2.0.1' }));
    api.addPod(makePod({ name: 'b', uid: 'uid-b', ip: '10.2.0.2' }));
    const p = processor({
      pod_association: [
        { sources: [{ from: 'resource_attribute', name: 'k8s.pod.uid' }] },
        { sources: [{ from: 'resource_attribute', name: 'k8s.pod.ip' }] },
        { sources: [{ from: 'connection' }] },
      ],
      extract: { metadata: ['k8s.pod.name'] },
    });
    await synced(p);
    // A gateway: the connection is some agent, the resource names the pod.
    expect(enrichFrom(p, '10.2.0.2', { 'k8s.pod.uid': 'uid-a' })).to.deep.equal({ 'k8s.pod.uid': 'uid-a', 'k8s.pod.name': 'a' });
    expect(enrichFrom(p, '10.2.0.2', { 'k8s.pod.ip': '10.2.0.1' })).to.deep.equal({ 'k8s.pod.ip': '10.2.0.1', 'k8s.pod.name': 'a' });
    expect(enrichFrom(p, '10.2.0.2')).to.deep.equal({ 'k8s.pod.ip': '10.2.0.2', 'k8s.pod.name': 'b' });
    // A uid that names no pod decides (no fallback to the connection): nothing added.
    expect(enrichFrom(p, '10.2.0.2', { 'k8s.pod.uid': 'nope' })).to.deep.equal({ 'k8s.pod.uid': 'nope' });
  });

  it('a pod deleted and its IP reused resolves to the new pod; the deleted one stays findable by uid', async () => {
    api.addPod(makePod({ name: 'old', uid: 'uid-old', ip: '10.3.0.7' }));
    const p = processor({ extract: { metadata: ['k8s.pod.name', 'k8s.pod.uid'] } });
    await synced(p);
    expect(enrichFrom(p, '10.3.0.7')['k8s.pod.name']).to.equal('old');
    api.deletePod('default', 'old');
    await eventually(() => p.metadata.pods.deletedCount === 1, 5000, 'delete seen');
    // Late spans from the deleted pod still resolve during the grace period.
    expect(enrichFrom(p, '10.3.0.7')['k8s.pod.name']).to.equal('old');
    api.addPod(makePod({ name: 'new', uid: 'uid-new', ip: '10.3.0.7' }));
    await eventually(() => enrichFrom(p, '10.3.0.7')['k8s.pod.name'] === 'new', 5000, 'new pod owns the IP');
    expect(p.metadata.pods.byUid('uid-old')?.deletedAt).to.be.a('number');

    // The other order: the new pod appears before the old one's delete arrives.
    api.addPod(makePod({ name: 'first', uid: 'uid-first', ip: '10.3.0.8' }));
    await eventually(() => p.metadata.pods.byIp('10.3.0.8') !== undefined, 5000, 'first');
    api.modifyPod('default', 'first', (o) => {
      (o.status as Record<string, unknown>)['phase'] = 'Succeeded';
    });
    api.addPod(makePod({ name: 'second', uid: 'uid-second', ip: '10.3.0.8' }));
    api.deletePod('default', 'first');
    await eventually(() => p.metadata.pods.byUid('uid-first')?.deletedAt !== undefined, 5000, 'first deleted');
    expect(enrichFrom(p, '10.3.0.8')['k8s.pod.name']).to.equal('second');
  });

  for (const mode of ['destroy', 'mid-event', 'end'] as const) {
    it(`recovers from a watch cut mid-stream (${mode}) and resumes from the last resourceVersion`, async () => {
      const telemetry = new Telemetry();
      api.addPod(makePod({ name: 'p0', uid: 'u0', ip: '10.4.0.1' }));
      const p = processor({ extract: { metadata: ['k8s.pod.name'] } }, {}, telemetry);
      await synced(p);
      await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');
      const lists = api.count({ kind: 'pods', verb: 'list' });
      const watches = api.count({ kind: 'pods', verb: 'watch' });
      api.addPod(makePod({ name: 'p1', uid: 'u1', ip: '10.4.0.2' }));
      await eventually(() => p.metadata.pods.byIp('10.4.0.2') !== undefined, 5000, 'p1');
      const lastRv = p.metadata.pods.byUid('u1')?.pod.metadata.resourceVersion;
      expect(api.cutWatches('pods', mode)).to.equal(1);
      // Changes made while the watch is down arrive after it is re-established.
      api.addPod(makePod({ name: 'p2', uid: 'u2', ip: '10.4.0.3' }));
      api.deletePod('default', 'p0');
      await eventually(() => p.metadata.pods.byIp('10.4.0.3') !== undefined, 10_000, 'p2 after the cut');
      await eventually(() => p.metadata.pods.byUid('u0')?.deletedAt !== undefined, 5000, 'p0 delete after the cut');
      expect(api.count({ kind: 'pods', verb: 'watch' })).to.be.greaterThan(watches);
      expect(api.count({ kind: 'pods', verb: 'list' })).to.equal(lists, 'resumed without relisting');
      const resumed = api.requests.filter((r) => r.kind === 'pods' && r.verb === 'watch').pop();
      expect(resumed?.query['resourceVersion']).to.equal(lastRv);
      const reason = mode === 'end' ? 'closed' : 'error';
      expect(telemetry.counterValue('routelens_k8sattributes_watch_restarts', { resource: 'pods', reason })).to.be.greaterThan(0);
    });
  }

  for (const mode of ['event', 'status'] as const) {
    it(`relists on 410 Gone (${mode}) and converges, including deletes missed meanwhile`, async () => {
      const telemetry = new Telemetry();
      api.addPod(makePod({ name: 'keep', uid: 'k', ip: '10.5.0.1' }));
      api.addPod(makePod({ name: 'gone', uid: 'g', ip: '10.5.0.2' }));
      const p = processor({ extract: { metadata: ['k8s.pod.name'] } }, {}, telemetry);
      await synced(p);
      await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');
      expect(api.count({ kind: 'pods', verb: 'list' })).to.equal(1);
      api.failNextWatch('pods', mode);
      // The watch drops; meanwhile a pod goes and another comes, and the history is compacted.
      api.cutWatches('pods', 'end');
      api.deletePod('default', 'gone');
      api.addPod(makePod({ name: 'fresh', uid: 'f', ip: '10.5.0.3' }));
      api.compact();
      await eventually(() => api.count({ kind: 'pods', verb: 'list' }) >= 2, 10_000, 'relist');
      await eventually(() => p.metadata.pods.byIp('10.5.0.3') !== undefined, 10_000, 'fresh after relist');
      await eventually(() => p.metadata.pods.byUid('g')?.deletedAt !== undefined, 5000, 'missed delete applied');
      expect(p.metadata.pods.byUid('k')?.deletedAt).to.equal(undefined);
      expect(telemetry.counterValue('routelens_k8sattributes_relists', { resource: 'pods' })).to.be.greaterThan(0);
      expect(telemetry.counterValue('routelens_k8sattributes_watch_restarts', { resource: 'pods', reason: 'gone' })).to.be.greaterThan(0);
    });
  }

  it('resumes from a bookmark after a cut', async () => {
    const p = processor({});
    await synced(p);
    await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');
    // Unrelated churn (namespaces are not watched) moves the resourceVersion; the bookmark carries it.
    api.add('namespaces', makeNamespace({ name: 'x' }));
    api.add('namespaces', makeNamespace({ name: 'y' }));
    const rv = api.resourceVersion;
    // The stream ends cleanly after the bookmark, so the informer reads the bookmark before the end.
    api.bookmark('pods');
    api.cutWatches('pods', 'end');
    await eventually(() => api.count({ kind: 'pods', verb: 'watch' }) >= 2, 5000, 'rewatch');
    const resumed = api.requests.filter((r) => r.kind === 'pods' && r.verb === 'watch').pop();
    expect(resumed?.query['resourceVersion']).to.equal(rv);
  });

  it('keeps the cache bounded through 10 000 pod create/delete cycles', async function () {
    this.timeout(120_000);
    const p = processor({ max_deleted_pods: 200, extract: { metadata: ['k8s.pod.name'] } });
    await synced(p);
    for (let i = 0; i < 10_000; i++) {
      const ip = `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
      api.addPod(makePod({ name: `churn-${i}`, uid: `c-${i}`, ip }));
      api.deletePod('default', `churn-${i}`);
      if (i % 500 === 499) await sleep(5);
    }
    api.addPod(makePod({ name: 'last', uid: 'last', ip: '10.200.0.1' }));
    await eventually(() => p.metadata.pods.byUid('last') !== undefined, 60_000, 'all churn events processed');
    const sizes = p.metadata.pods.indexSizes;
    expect(p.metadata.pods.liveCount).to.equal(1);
    expect(sizes.deleted).to.be.at.most(200);
    expect(sizes.uid).to.be.at.most(201);
    expect(sizes.ip).to.be.at.most(201);
    expect(sizes.name).to.be.at.most(201);
  });

  it('passes an unknown pod unchanged and counts a miss', async () => {
    const telemetry = new Telemetry();
    const p = processor({}, {}, telemetry);
    await synced(p);
    expect(enrichFrom(p, '10.9.9.9', { 'service.name': 'x' })).to.deep.equal({ 'service.name': 'x' });
    expect(enrichFrom(p, '127.0.0.6', { 'service.name': 'x' })).to.deep.equal({ 'service.name': 'x' });
    expect(telemetry.counterValue('routelens_k8sattributes_lookups', { source: 'connection', result: 'miss' })).to.equal(1);
    expect(telemetry.counterValue('routelens_k8sattributes_lookups', { source: 'none', result: 'miss' })).to.equal(1);
    expect(telemetry.counterValue('otelcol_otelsvc_k8s_ip_lookup_miss')).to.equal(1);
  });

  it('never overwrites attributes the client sent', async () => {
    api.addPod(makePod({ name: 'real', namespace: 'ns1', uid: 'u', ip: '10.6.0.1' }));
    const p = processor({});
    await synced(p);
    const out = enrichFrom(p, '10.6.0.1', { 'k8s.pod.name': 'from-sdk', 'k8s.pod.ip': '10.6.0.1' });
    expect(out['k8s.pod.name']).to.equal('from-sdk');
    expect(out['k8s.namespace.name']).to.equal('ns1');
  });

  it('extracts namespace and node labels, node uid, cluster uid, owners and container attributes', async () => {
    api.add('namespaces', makeNamespace({ name: 'kube-system', uid: 'cluster-123' }));
    api.add('namespaces', makeNamespace({ name: 'shop', labels: { env: 'prod' } }));
    api.add('nodes', makeNode({ name: 'node-z', uid: 'node-uid', labels: { 'topology.kubernetes.io/zone': 'eu-1a' } }));
    api.add('jobs', makeJob({ name: 'report-29000000', namespace: 'shop', uid: 'job-1', cronJob: { name: 'report', uid: 'cj-1' } }));
    api.addPod(
      makePod({
        name: 'report-29000000-xyz',
        namespace: 'shop',
        uid: 'jp',
        ip: '10.7.0.1',
        node: 'node-z',
        owner: { kind: 'Job', name: 'report-29000000', uid: 'job-1' },
        containers: [{ name: 'main', image: 'ghcr.io/acme/report:2.1', id: 'containerd://abc123' }],
        annotations: { 'acme.io/owner': 'billing' },
      }),
    );
    api.addPod(
      makePod({ name: 'db-0', namespace: 'shop', uid: 'sp', ip: '10.7.0.2', node: 'node-z', owner: { kind: 'StatefulSet', name: 'db', uid: 'ss-1' } }),
    );
    const p = processor({
      extract: {
        metadata: [
          'k8s.pod.name',
          'k8s.job.name',
          'k8s.cronjob.name',
          'k8s.cronjob.uid',
          'k8s.statefulset.name',
          'k8s.node.uid',
          'k8s.cluster.uid',
          'container.image.name',
          'container.image.tag',
          'container.id',
        ],
        labels: [
          { from: 'namespace', key: 'env', tag_name: 'deployment.environment' },
          { from: 'node', key_regex: 'topology.kubernetes.io/(.*)', tag_name: 'cloud.$1' },
        ],
        annotations: [{ key_regex: 'acme.io/(.*)', tag_name: 'acme.$1' }],
      },
    });
    await synced(p);
    await eventually(() => p.metadata.clusterUid !== undefined, 5000, 'cluster uid');
    expect(enrichFrom(p, '10.7.0.1')).to.deep.equal({
      'k8s.pod.ip': '10.7.0.1',
      'k8s.pod.name': 'report-29000000-xyz',
      'k8s.job.name': 'report-29000000',
      'k8s.cronjob.name': 'report',
      'k8s.cronjob.uid': 'cj-1',
      'k8s.node.uid': 'node-uid',
      'k8s.cluster.uid': 'cluster-123',
      'deployment.environment': 'prod',
      'cloud.zone': 'eu-1a',
      'acme.owner': 'billing',
      'container.image.name': 'ghcr.io/acme/report',
      'container.image.tag': '2.1',
      'container.id': 'abc123',
    });
    expect(enrichFrom(p, '10.7.0.2')['k8s.statefulset.name']).to.equal('db');
    for (const kind of ['namespaces', 'nodes', 'jobs', 'replicasets'] as const) {
      expect(api.count({ kind, verb: kind === 'replicasets' ? undefined : 'list' }), kind).to.equal(kind === 'replicasets' ? 0 : 1);
    }
  });

  it('filters pods by node (fieldSelector) and namespace (path), labels (labelSelector)', async () => {
    api.addPod(makePod({ name: 'mine', namespace: 'a', uid: '1', ip: '10.8.0.1', node: 'n1', labels: { tier: 'web' } }));
    api.addPod(makePod({ name: 'other-node', namespace: 'a', uid: '2', ip: '10.8.0.2', node: 'n2', labels: { tier: 'web' } }));
    api.addPod(makePod({ name: 'other-ns', namespace: 'b', uid: '3', ip: '10.8.0.3', node: 'n1', labels: { tier: 'web' } }));
    api.addPod(makePod({ name: 'other-tier', namespace: 'a', uid: '4', ip: '10.8.0.4', node: 'n1', labels: { tier: 'db' } }));
    const p = processor({ filter: { node_from_env_var: 'MY_NODE', namespace: 'a', labels: [{ key: 'tier', value: 'web' }] } }, { env: { MY_NODE: 'n1' } });
    await synced(p);
    expect([...p.metadata.pods.entries()].map((e) => e.pod.metadata.name)).to.deep.equal(['mine']);
    const list = api.requests.find((r) => r.kind === 'pods' && r.verb === 'list');
    expect(list?.path).to.equal('/api/v1/namespaces/a/pods');
    expect(list?.query['fieldSelector']).to.equal('spec.nodeName=n1');
    expect(list?.query['labelSelector']).to.equal('tier=web');
    await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');
    const watch = api.requests.find((r) => r.kind === 'pods' && r.verb === 'watch');
    expect(watch?.query['fieldSelector']).to.equal('spec.nodeName=n1');
    // A pod scheduled on the node later arrives through the watch; one on another node, created just before it,
    // does not (events arrive in order, so once the later pod is in, the other one had its chance).
    api.addPod(makePod({ name: 'later-other', namespace: 'a', uid: '6', ip: '10.8.0.6', node: 'n2', labels: { tier: 'web' } }));
    api.addPod(makePod({ name: 'later', namespace: 'a', uid: '5', ip: '10.8.0.5', node: 'n1', labels: { tier: 'web' } }));
    await eventually(() => p.metadata.pods.byUid('5') !== undefined, 5000, 'later');
    expect(p.metadata.pods.byUid('6')).to.equal(undefined);
  });

  it('fails to start when node_from_env_var names an unset variable', async () => {
    const p = processor({ filter: { node_from_env_var: 'NOPE_NODE' } }, { env: {} });
    let err: unknown;
    await p.start().catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/NOPE_NODE is not set/);
  });

  it('lists in pages with limit/continue', async () => {
    for (let i = 0; i < 1200; i++) api.addPod(makePod({ name: `p-${i}`, uid: `u-${i}`, ip: `10.9.${i >> 8}.${i & 255}` }));
    const p = processor({});
    await synced(p);
    expect(p.metadata.pods.liveCount).to.equal(1200);
    const lists = api.requests.filter((r) => r.kind === 'pods' && r.verb === 'list');
    expect(lists).to.have.length(3);
    expect(lists[0]?.query['limit']).to.equal('500');
    expect(lists[1]?.query['continue']).to.be.a('string');
  });

  it('sends the bearer token; a wrong one is refused and wait_for_metadata fails after its timeout', async () => {
    const cfg = k8sConfig({
      auth_type: 'kubeConfig',
      kube_config_path: api.writeKubeconfig({ token: 'wrong', context: 'bad' }),
      wait_for_metadata: true,
      wait_for_metadata_timeout: '700ms',
    });
    const p = new K8sAttributesProcessor(settings(), cfg, new TracesSink(), FAST);
    processors.push(p);
    const t0 = Date.now();
    let err: unknown;
    await p.start().catch((e: unknown) => (err = e));
    expect(Date.now() - t0).to.be.at.least(600);
    expect(String(err)).to.match(/not synced within wait_for_metadata_timeout.*pods/);
    expect(api.count({ authorized: false })).to.be.greaterThan(0);
    expect(api.count({ authorized: true })).to.equal(0);
  });

  it('wait_for_metadata holds start until the informers are synced', async () => {
    api.addPod(makePod({ name: 'w', uid: 'w', ip: '10.10.0.1' }));
    const release = api.holdLists();
    const p = processor({ wait_for_metadata: true, wait_for_metadata_timeout: '10s' });
    let started = false;
    const starting = p.start().then(() => {
      started = true;
    });
    await sleep(400);
    expect(started).to.equal(false);
    expect(p.synced).to.equal(false);
    release();
    await starting;
    expect(p.synced).to.equal(true);
    expect(enrichFrom(p, '10.10.0.1')['k8s.pod.name']).to.equal('w');
  });

  it('selects the kubeconfig context', async () => {
    const good = api.writeKubeconfig({ context: 'good' });
    // A file with two contexts: the current one has a bad token.
    const fs = await import('node:fs');
    const bad = api.writeKubeconfig({ context: 'bad', token: 'nope' });
    const merged = fs
      .readFileSync(bad, 'utf8')
      .replace(/^current-context: .*$/m, '')
      .replace('clusters:\n', `clusters:\n- name: good-cluster\n  cluster:\n    server: ${api.url}\n    certificate-authority: ${api.certs.paths.caCert}\n`)
      .replace('users:\n', 'users:\n- name: good-user\n  user:\n    token: ' + api.token + '\n')
      .replace('contexts:\n', 'contexts:\n- name: good\n  context:\n    cluster: good-cluster\n    user: good-user\n');
    fs.writeFileSync(good, `${merged}current-context: bad\n`);
    const p = processor({ kube_config_path: good, context: 'good', wait_for_metadata: true });
    await p.start();
    expect(p.synced).to.equal(true);
    const missing = processor({ kube_config_path: good, context: 'absent' });
    let err: unknown;
    await missing.start().catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/context "absent" not found/);
  });

  it('uses in-cluster config with auth_type serviceAccount (token and CA from ROUTELENS_SA_DIR)', async () => {
    api.addPod(makePod({ name: 'ic', uid: 'ic', ip: '10.11.0.1' }));
    const dir = api.writeServiceAccountDir();
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port), ROUTELENS_SA_DIR: dir };
    const cfg = k8sConfig({ wait_for_metadata: true });
    expect(cfg.auth_type).to.equal('serviceAccount');
    const p = new K8sAttributesProcessor(settings(), cfg, new TracesSink(), { ...FAST, env });
    processors.push(p);
    await p.start();
    expect(enrichFrom(p, '10.11.0.1')['k8s.pod.name']).to.equal('ic');
    expect(api.count({ authorized: false })).to.equal(0);

    const outside = new K8sAttributesProcessor(settings(), cfg, new TracesSink(), { env: { ROUTELENS_SA_DIR: dir } });
    processors.push(outside);
    let err: unknown;
    await outside.start().catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/KUBERNETES_SERVICE_HOST/);
    const noToken = new K8sAttributesProcessor(settings(), cfg, new TracesSink(), { env: { ...env, ROUTELENS_SA_DIR: '/nonexistent' } });
    processors.push(noToken);
    err = undefined;
    await noToken.start().catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/nonexistent\/token does not exist/);
  });

  it('passthrough only adds k8s.pod.ip from the connection and never calls the API', async () => {
    const p = processor({ passthrough: true });
    await p.start();
    expect(p.synced).to.equal(true);
    expect(enrichFrom(p, '10.12.0.1', { 'service.name': 's' })).to.deep.equal({ 'service.name': 's', 'k8s.pod.ip': '10.12.0.1' });
    expect(enrichFrom(p, '127.0.0.6')).to.deep.equal({});
    expect(enrichFrom(p, '::1')).to.deep.equal({});
    expect(enrichFrom(p, '10.12.0.1', { 'k8s.pod.ip': '10.0.0.1' })).to.deep.equal({ 'k8s.pod.ip': '10.0.0.1' });
    expect(api.requests).to.have.length(0);
  });

  it('excludes pods by name (jaeger-agent by default)', async () => {
    api.addPod(makePod({ name: 'jaeger-agent-x1', uid: 'j', ip: '10.13.0.1' }));
    api.addPod(makePod({ name: 'app', uid: 'a', ip: '10.13.0.2' }));
    const p = processor({});
    await synced(p);
    expect(p.metadata.pods.byUid('j')).to.equal(undefined);
    expect(p.metadata.pods.byUid('a')).to.not.equal(undefined);
  });

  it('enriches metrics and logs with the same association rules as traces; the pipelines of one processor id share one pod cache and one set of watches', async () => {
    api.addPod(makePod({ name: 'web-0', namespace: 'shop', uid: 'pod-1', ip: '10.20.0.5', node: 'node-a' }));
    api.addPod(makePod({ name: 'worker-0', namespace: 'shop', uid: 'pod-2', ip: '10.20.0.6', node: 'node-b' }));
    const cfg = k8sConfig({
      auth_type: 'kubeConfig',
      kube_config_path: api.writeKubeconfig(),
      pod_association: [
        { sources: [{ from: 'resource_attribute', name: 'k8s.pod.uid' }] },
        { sources: [{ from: 'resource_attribute', name: 'k8s.pod.ip' }] },
        { sources: [{ from: 'connection' }] },
      ],
    });
    const telemetry = new Telemetry();
    const sinks = { traces: new RecordingConsumer(), metrics: new RecordingConsumer(), logs: new RecordingConsumer() };
    const f = k8sAttributesFactory;
    const made = [
      f.createTraces!(settings('k8sattributes', telemetry), cfg, sinks.traces),
      f.createMetrics!(settings('k8sattributes', telemetry), cfg, sinks.metrics),
      f.createLogs!(settings('k8sattributes', telemetry), cfg, sinks.logs),
    ] as K8sAttributesProcessor[];
    processors.push(...made);
    const [t, m, l] = made as [K8sAttributesProcessor, K8sAttributesProcessor, K8sAttributesProcessor];
    expect(m.source).to.equal(t.source);
    expect(l.source).to.equal(t.source);
    // Another service (another telemetry registry) gets its own.
    const other = f.createMetrics!(settings('k8sattributes', new Telemetry()), cfg, new RecordingConsumer()) as K8sAttributesProcessor;
    expect(other.source).to.not.equal(t.source);
    await other.shutdown();
    for (const p of made) await p.start();
    await eventually(() => t.synced, 5000, 'informers synced');
    await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'one pod watch for the three pipelines');
    // By connection address, by k8s.pod.ip, by k8s.pod.uid: as for spans.
    await t.consumeTraces(TraceBatch.decode(traceRequest(spanIds(1, 2))), { clientAddress: '10.20.0.5' });
    await m.consumeMetrics(MetricsBatch.decode(metricsRequest(3)), { clientAddress: '10.20.0.5' });
    await m.consumeMetrics(MetricsBatch.decode(metricsRequest(1, { resourceAttributes: { 'k8s.pod.ip': '10.20.0.6' } })), { clientAddress: '10.20.0.5' });
    await l.consumeLogs(LogsBatch.decode(logsRequest(2, { resourceAttributes: { 'k8s.pod.uid': 'pod-2' } })), { clientAddress: '10.20.0.5' });
    const pod = (b: OtlpBatch): unknown[] => ['k8s.pod.name', 'k8s.namespace.name', 'k8s.node.name'].map((k) => b.resourceAttribute(0, k));
    expect(sinks.traces.batches.map(pod)).to.deep.equal([['web-0', 'shop', 'node-a']]);
    expect(sinks.metrics.batches.map(pod)).to.deep.equal([
      ['web-0', 'shop', 'node-a'],
      ['worker-0', 'shop', 'node-b'],
    ]);
    expect(sinks.logs.batches.map(pod)).to.deep.equal([['worker-0', 'shop', 'node-b']]);
    expect(sinks.metrics.batches.map((b) => b.itemCount)).to.deep.equal([3, 1]);
    // Only the resource changed: the scope-level bytes are the ones that came in.
    const scopes = (request: Uint8Array): Buffer[] =>
      rawFields(request)
        .filter((f) => f.no === 1)
        .flatMap((r) => rawFields(r.content).filter((f) => f.no === 2))
        .map((f) => Buffer.from(f.whole));
    expect(scopes(sinks.metrics.batches[0]!.encode())).to.deep.equal(scopes(metricsRequest(3)));
    // The first pipeline to shut down leaves the others enriching; the last one stops the watches.
    await t.shutdown();
    expect(api.activeWatches('pods')).to.equal(1);
    await l.consumeLogs(LogsBatch.decode(logsRequest(1)), { clientAddress: '10.20.0.6' });
    expect(pod(sinks.logs.batches[1]!)).to.deep.equal(['worker-0', 'shop', 'node-b']);
    await m.shutdown();
    await l.shutdown();
    await api.waitFor(() => api.activeWatches('pods') === 0, 5000, 'watches closed');
  });
});
