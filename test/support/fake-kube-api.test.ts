/**
 * The fake API server speaks list/watch the way the real Kubernetes client library understands it: the
 * informer of @kubernetes/client-node (the reference; routelens uses its own client, kube/api-client.ts) lists,
 * watches, follows adds, updates and deletes, resumes after a cut watch and relists after 410 Gone.
 */
import { expect } from 'chai';
import { eventually } from './k8s';
import { FakeKubeApi, makePod } from './fake-kube-api';

// eslint-disable-next-line @typescript-eslint/consistent-type-imports -- client-node is ESM: only a type query can name its module type here
type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

describe('fake Kubernetes API server against @kubernetes/client-node', function () {
  this.timeout(30_000);
  let api: FakeKubeApi;
  let k8s: ClientNode;
  before(async () => {
    k8s = await import('@kubernetes/client-node');
  });
  beforeEach(async () => {
    api = await FakeKubeApi.start();
  });
  afterEach(() => api.close());

  it("client-node's informer lists, follows watch events, resumes after a cut and relists on 410", async () => {
    api.addPod(makePod({ name: 'a', uid: 'ua', ip: '10.0.0.1' }));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(api.writeKubeconfig());
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const informer = k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
    const names = (): string[] =>
      informer
        .list()
        .map((p) => p.metadata?.name ?? '')
        .sort();
    const errors: unknown[] = [];
    informer.on('error', (err) => {
      errors.push(err);
      setTimeout(() => void informer.start().catch(() => undefined), 50);
    });
    await informer.start();
    try {
      expect(names()).to.deep.equal(['a']);
      await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch open');

      api.addPod(makePod({ name: 'b', uid: 'ub', ip: '10.0.0.2' }));
      api.modifyPod('default', 'a', (o) => ((o.metadata as { labels?: Record<string, string> }).labels = { v: '2' }));
      await eventually(() => names().join() === 'a,b', 5000, 'b added');
      await eventually(() => informer.get('a', 'default')?.metadata?.labels?.['v'] === '2', 5000, 'a modified');
      api.deletePod('default', 'b');
      await eventually(() => names().join() === 'a', 5000, 'b deleted');

      const lists = api.count({ kind: 'pods', verb: 'list' });
      api.cutWatches('pods', 'end');
      api.addPod(makePod({ name: 'c', uid: 'uc', ip: '10.0.0.3' }));
      await eventually(() => names().join() === 'a,c', 5000, 'c after the cut');
      expect(api.count({ kind: 'pods', verb: 'list' })).to.equal(lists, 'a clean cut resumes the watch');

      api.failNextWatch('pods', 'event');
      api.cutWatches('pods', 'end');
      api.deletePod('default', 'c');
      api.compact();
      await eventually(() => api.count({ kind: 'pods', verb: 'list' }) > lists, 10_000, 'relist after 410');
      await eventually(() => names().join() === 'a', 5000, 'the delete missed meanwhile');
    } finally {
      await informer.stop();
    }
  });
});
