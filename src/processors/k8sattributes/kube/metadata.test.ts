import { expect } from 'chai';
import { ConfigErrorList } from '../../../core/schema';
import { configSchema } from '../config';
import { KubeMetadata } from './metadata';
import { parseImage, toLabelledInfo, toOwnedInfo, toPodInfo } from './objects';

function metadata(raw: unknown): KubeMetadata {
  const issues = new ConfigErrorList();
  const cfg = configSchema.parse(raw, 'p', issues);
  if (!issues.empty) throw new Error(issues.format());
  return new KubeMetadata(cfg);
}

function rawPod(o: {
  name: string;
  uid: string;
  ns?: string;
  ip?: string;
  owner?: { kind: string; name: string; uid: string };
  labels?: Record<string, string>;
  containers?: { name: string; image: string; id?: string }[];
}): unknown {
  return {
    metadata: {
      name: o.name,
      namespace: o.ns ?? 'default',
      uid: o.uid,
      resourceVersion: '5',
      labels: o.labels,
      creationTimestamp: new Date('2025-02-03T04:05:06Z'),
      ownerReferences: o.owner === undefined ? undefined : [{ ...o.owner, apiVersion: 'apps/v1', controller: true }],
    },
    spec: { nodeName: 'node-1', containers: (o.containers ?? []).map((c) => ({ name: c.name, image: c.image })) },
    status: {
      phase: 'Running',
      podIP: o.ip,
      startTime: new Date('2025-02-03T04:05:07Z'),
      containerStatuses: (o.containers ?? []).filter((c) => c.id !== undefined).map((c) => ({ name: c.name, image: c.image, containerID: c.id })),
    },
  };
}

function add(md: KubeMetadata, raw: unknown): void {
  const p = toPodInfo(raw, md.keep.pod);
  if (p === undefined) throw new Error('bad pod');
  md.podUpserted(p);
}

function attrs(md: KubeMetadata, resource: Record<string, string>, client?: string): Record<string, string> | undefined {
  const a = md.associate((k) => resource[k], client);
  if (a.entry === undefined) return undefined;
  const out: Record<string, string> = {};
  if (a.connectionIp !== undefined) out['k8s.pod.ip'] = a.connectionIp;
  for (const [k, v] of md.attributesFor(a.entry, { id: resource['container.id'], name: resource['k8s.container.name'] })) out[k] = v;
  return out;
}

describe('KubeMetadata', () => {
  describe('association', () => {
    it('uses the connection only when no rules are configured', () => {
      const md = metadata({ extract: { metadata: ['k8s.pod.name'] } });
      add(md, rawPod({ name: 'a', uid: '1', ip: '10.0.0.1' }));
      expect(attrs(md, { 'k8s.pod.ip': '10.0.0.1' })).to.equal(undefined);
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.1', 'k8s.pod.name': 'a' });
    });

    it('tries rules in order, skipping rules with a missing source; the first complete rule decides', () => {
      const md = metadata({
        pod_association: [
          {
            sources: [
              { from: 'resource_attribute', name: 'k8s.pod.name' },
              { from: 'resource_attribute', name: 'k8s.namespace.name' },
            ],
          },
          { sources: [{ from: 'resource_attribute', name: 'container.id' }] },
          { sources: [{ from: 'connection' }] },
        ],
        extract: { metadata: ['k8s.pod.uid'] },
      });
      add(md, rawPod({ name: 'a', ns: 'x', uid: '1', ip: '10.0.0.1', containers: [{ name: 'c', image: 'i', id: 'docker://feed' }] }));
      add(md, rawPod({ name: 'b', ns: 'x', uid: '2', ip: '10.0.0.2' }));
      expect(attrs(md, { 'k8s.pod.name': 'a', 'k8s.namespace.name': 'x' }, '10.0.0.2')).to.deep.equal({ 'k8s.pod.uid': '1' });
      // Name without namespace: that rule is incomplete, the next applies.
      expect(attrs(md, { 'k8s.pod.name': 'a', 'container.id': 'feed' }, '10.0.0.2')).to.deep.equal({ 'k8s.pod.uid': '1' });
      expect(attrs(md, { 'k8s.pod.name': 'a' }, '10.0.0.2')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.2', 'k8s.pod.uid': '2' });
      // Complete but unknown: no fallback to later rules.
      expect(attrs(md, { 'k8s.pod.name': 'zz', 'k8s.namespace.name': 'x' }, '10.0.0.2')).to.equal(undefined);
      // A mesh proxy address is no source at all.
      expect(md.associate(() => undefined, '127.0.0.6').rule).to.equal(undefined);
    });

    it('requires every source of a rule to match the same pod', () => {
      const md = metadata({
        pod_association: [{ sources: [{ from: 'resource_attribute', name: 'k8s.pod.uid' }, { from: 'connection' }] }],
        extract: { metadata: ['k8s.pod.name'] },
      });
      add(md, rawPod({ name: 'a', uid: '1', ip: '10.0.0.1' }));
      expect(attrs(md, { 'k8s.pod.uid': '1' }, '10.0.0.1')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.1', 'k8s.pod.name': 'a' });
      expect(attrs(md, { 'k8s.pod.uid': '1' }, '10.0.0.2')).to.equal(undefined);
    });

    it('treats k8s.pod.ip values like connection addresses (mapped, loopback)', () => {
      const md = metadata({ pod_association: [{ sources: [{ from: 'resource_attribute', name: 'k8s.pod.ip' }] }], extract: { metadata: ['k8s.pod.name'] } });
      add(md, rawPod({ name: 'a', uid: '1', ip: '10.0.0.1' }));
      expect(attrs(md, { 'k8s.pod.ip': '::ffff:10.0.0.1' })).to.deep.equal({ 'k8s.pod.name': 'a' });
      expect(md.associate((k) => (k === 'k8s.pod.ip' ? '127.0.0.1' : undefined), undefined).rule).to.equal(undefined);
    });
  });

  describe('extraction', () => {
    it('converts Date fields (typed clients) to RFC 3339', () => {
      const md = metadata({ extract: { metadata: ['k8s.pod.start_time'] } });
      add(md, rawPod({ name: 'a', uid: '1', ip: '10.0.0.1' }));
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.1', 'k8s.pod.start_time': '2025-02-03T04:05:07Z' });
    });

    it('keeps the deployment name after the ReplicaSet is deleted (background cascade deletes owners first)', () => {
      const md = metadata({ extract: { metadata: ['k8s.deployment.name', 'k8s.deployment.uid', 'k8s.replicaset.name'] } });
      const rs = toOwnedInfo({
        metadata: { name: 'web-6c9f', namespace: 'default', uid: 'rs1', ownerReferences: [{ kind: 'Deployment', name: 'web', uid: 'd1', controller: true }] },
      });
      md.replicaSetUpserted(rs as NonNullable<typeof rs>);
      add(md, rawPod({ name: 'web-6c9f-x', uid: '1', ip: '10.0.0.1', owner: { kind: 'ReplicaSet', name: 'web-6c9f', uid: 'rs1' } }));
      const expected = { 'k8s.pod.ip': '10.0.0.1', 'k8s.deployment.name': 'web', 'k8s.deployment.uid': 'd1', 'k8s.replicaset.name': 'web-6c9f' };
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal(expected);
      md.replicaSetDeleted(rs as NonNullable<typeof rs>);
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal(expected);
    });

    it('trims the ReplicaSet name with deployment_name_from_replicaset', () => {
      const md = metadata({ extract: { metadata: ['k8s.deployment.name'], deployment_name_from_replicaset: true } });
      add(md, rawPod({ name: 'my-app-7d4b9c-x', uid: '1', ip: '10.0.0.1', owner: { kind: 'ReplicaSet', name: 'my-app-7d4b9c', uid: 'rs1' } }));
      expect(attrs(md, {}, '10.0.0.1')?.['k8s.deployment.name']).to.equal('my-app');
    });

    it('derives the CronJob name from the Job name when Jobs are not watched', () => {
      const md = metadata({ extract: { metadata: ['k8s.cronjob.name', 'k8s.job.uid'] } });
      add(md, rawPod({ name: 'backup-28999-q', uid: '1', ip: '10.0.0.1', owner: { kind: 'Job', name: 'backup-28999', uid: 'j1' } }));
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.1', 'k8s.cronjob.name': 'backup', 'k8s.job.uid': 'j1' });
    });

    it('extracts labels by key and by regex with capture groups, from pod, namespace and node', () => {
      const md = metadata({
        extract: {
          metadata: [],
          labels: [
            { key: 'app.kubernetes.io/name' },
            { key_regex: 'team-(.*)', tag_name: 'team.$1' },
            { key_regex: 'env', from: 'namespace' },
            { key: 'zone', from: 'node', tag_name: 'cloud.zone' },
          ],
        },
      });
      md.namespaceUpserted(toLabelledInfo({ metadata: { name: 'default', uid: 'n', labels: { env: 'prod', other: 'x' } } }, md.keep.other) as never);
      md.nodeUpserted(toLabelledInfo({ metadata: { name: 'node-1', uid: 'nd', labels: { zone: 'z1' } } }, md.keep.other) as never);
      add(md, rawPod({ name: 'a', uid: '1', ip: '10.0.0.1', labels: { 'app.kubernetes.io/name': 'shop', 'team-alpha': 'yes', 'xteam-b': 'no' } }));
      expect(attrs(md, {}, '10.0.0.1')).to.deep.equal({
        'k8s.pod.ip': '10.0.0.1',
        'k8s.pod.labels.app.kubernetes.io/name': 'shop',
        'team.alpha': 'yes',
        'k8s.namespace.labels.env': 'prod',
        'cloud.zone': 'z1',
      });
    });

    it('picks the container by container.id, k8s.container.name, or the only container', () => {
      const md = metadata({ extract: { metadata: ['k8s.container.name', 'container.image.name', 'container.image.tag'] } });
      add(
        md,
        rawPod({
          name: 'two',
          uid: '2',
          ip: '10.0.0.2',
          containers: [
            { name: 'app', image: 'registry:5000/shop/app:3.1@sha256:abc', id: 'containerd://aa' },
            { name: 'istio-proxy', image: 'istio/proxyv2', id: 'containerd://bb' },
          ],
        }),
      );
      add(md, rawPod({ name: 'one', uid: '1', ip: '10.0.0.1', containers: [{ name: 'solo', image: 'nginx' }] }));
      expect(attrs(md, { 'container.id': 'aa' }, '10.0.0.2')).to.deep.include({
        'k8s.container.name': 'app',
        'container.image.name': 'registry:5000/shop/app',
        'container.image.tag': '3.1',
      });
      expect(attrs(md, { 'k8s.container.name': 'istio-proxy' }, '10.0.0.2')).to.deep.include({ 'container.image.tag': 'latest' });
      expect(attrs(md, {}, '10.0.0.2')).to.deep.equal({ 'k8s.pod.ip': '10.0.0.2' });
      expect(attrs(md, {}, '10.0.0.1')).to.deep.include({ 'k8s.container.name': 'solo', 'container.image.name': 'nginx' });
    });

    it('parses image references', () => {
      expect(parseImage('nginx')).to.deep.equal({ name: 'nginx', tag: 'latest' });
      expect(parseImage('localhost:5000/a/b')).to.deep.equal({ name: 'localhost:5000/a/b', tag: 'latest' });
      expect(parseImage('a/b@sha256:00')).to.deep.equal({ name: 'a/b', tag: undefined });
      expect(parseImage('a/b:1.0@sha256:00')).to.deep.equal({ name: 'a/b', tag: '1.0' });
    });

    it('does not keep labels or annotations nobody extracts', () => {
      const md = metadata({});
      const p = toPodInfo(rawPod({ name: 'a', uid: '1', labels: { big: 'x'.repeat(1000) } }), md.keep.pod);
      expect(p?.labels).to.deep.equal({});
    });
  });
});
