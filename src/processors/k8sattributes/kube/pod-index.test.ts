import { expect } from 'chai';
import { toPodInfo, type PodInfo } from './objects';
import { PodIndex } from './pod-index';

const keep = { labels: true, annotations: true };

function pod(o: { name: string; uid: string; ip?: string; phase?: string; created?: string; hostNetwork?: boolean; ns?: string; cid?: string }): PodInfo {
  const p = toPodInfo(
    {
      metadata: { name: o.name, namespace: o.ns ?? 'default', uid: o.uid, resourceVersion: '1', creationTimestamp: o.created ?? '2025-01-01T00:00:00Z' },
      spec: { nodeName: 'n', hostNetwork: o.hostNetwork === true },
      status: {
        phase: o.phase ?? 'Running',
        ...(o.ip === undefined ? {} : { podIP: o.ip, podIPs: [{ ip: o.ip }] }),
        containerStatuses: o.cid === undefined ? [] : [{ name: 'c', image: 'i', containerID: `containerd://${o.cid}` }],
      },
    },
    keep,
  );
  if (p === undefined) throw new Error('bad pod');
  return p;
}

describe('PodIndex', () => {
  let now = 0;
  const clock = (): number => now;
  beforeEach(() => {
    now = 0;
  });

  it('indexes by uid, IP, namespace/name and container id', () => {
    const idx = new PodIndex({ now: clock });
    idx.upsert(pod({ name: 'a', uid: '1', ip: '10.0.0.1', ns: 'x', cid: 'c1' }));
    expect(idx.byUid('1')?.pod.metadata.name).to.equal('a');
    expect(idx.byIp('10.0.0.1')?.pod.metadata.name).to.equal('a');
    expect(idx.byName('x', 'a')?.pod.metadata.uid).to.equal('1');
    expect(idx.byContainerId('c1')?.pod.metadata.uid).to.equal('1');
  });

  it('moves the IP when a pod changes IP and does not index hostNetwork pods by IP', () => {
    const idx = new PodIndex({ now: clock });
    idx.upsert(pod({ name: 'a', uid: '1', ip: '10.0.0.1' }));
    idx.upsert(pod({ name: 'a', uid: '1', ip: '10.0.0.2' }));
    expect(idx.byIp('10.0.0.1')).to.equal(undefined);
    expect(idx.byIp('10.0.0.2')?.pod.metadata.uid).to.equal('1');
    idx.upsert(pod({ name: 'h', uid: 'h', ip: '192.168.0.10', hostNetwork: true }));
    expect(idx.byIp('192.168.0.10')).to.equal(undefined);
  });

  it('keeps a deleted pod for the grace period, then forgets it', () => {
    const idx = new PodIndex({ now: clock, deleteGraceMs: 1000 });
    const p = pod({ name: 'a', uid: '1', ip: '10.0.0.1' });
    idx.upsert(p);
    now = 10;
    idx.markDeleted(p);
    expect(idx.liveCount).to.equal(0);
    expect(idx.deletedCount).to.equal(1);
    expect(idx.byIp('10.0.0.1')?.deletedAt).to.equal(10);
    idx.sweep(1009);
    expect(idx.byUid('1')).to.not.equal(undefined);
    idx.sweep(1010);
    expect(idx.byUid('1')).to.equal(undefined);
    expect(idx.byIp('10.0.0.1')).to.equal(undefined);
    expect(idx.indexSizes).to.deep.equal({ uid: 0, ip: 0, name: 0, containerId: 0, deleted: 0 });
  });

  it('gives a reused IP to the new pod in either event order and never loses it when the old one expires', () => {
    const idx = new PodIndex({ now: clock, deleteGraceMs: 100 });
    const old = pod({ name: 'old', uid: 'o', ip: '10.0.0.9', created: '2025-01-01T00:00:00Z' });
    const neu = pod({ name: 'new', uid: 'n', ip: '10.0.0.9', created: '2025-01-01T00:05:00Z' });
    // delete, then add
    idx.upsert(old);
    idx.markDeleted(old);
    idx.upsert(neu);
    expect(idx.byIp('10.0.0.9')?.pod.metadata.uid).to.equal('n');
    now = 1000;
    idx.sweep();
    expect(idx.byIp('10.0.0.9')?.pod.metadata.uid).to.equal('n');

    // add, then delete (the old pod finished; its status still shows the IP)
    const idx2 = new PodIndex({ now: clock });
    const done = pod({ name: 'job', uid: 'j', ip: '10.0.0.8', phase: 'Succeeded' });
    const running = pod({ name: 'web', uid: 'w', ip: '10.0.0.8' });
    idx2.upsert(pod({ name: 'job', uid: 'j', ip: '10.0.0.8' }));
    idx2.upsert(running);
    idx2.upsert(done); // a late update of the finished pod must not take the IP back
    expect(idx2.byIp('10.0.0.8')?.pod.metadata.uid).to.equal('w');
    idx2.markDeleted(done);
    expect(idx2.byIp('10.0.0.8')?.pod.metadata.uid).to.equal('w');
  });

  it('a recreated StatefulSet pod (same name, new uid) owns the name', () => {
    const idx = new PodIndex({ now: clock });
    const a = pod({ name: 'db-0', uid: 'a' });
    idx.upsert(a);
    idx.markDeleted(a);
    idx.upsert(pod({ name: 'db-0', uid: 'b' }));
    expect(idx.byName('default', 'db-0')?.pod.metadata.uid).to.equal('b');
  });

  it('caps the deleted pods kept, dropping the oldest first', () => {
    const idx = new PodIndex({ now: clock, maxDeleted: 3, deleteGraceMs: 1e9 });
    for (let i = 0; i < 10; i++) {
      const p = pod({ name: `p${i}`, uid: `u${i}`, ip: `10.0.1.${i}` });
      idx.upsert(p);
      now++;
      idx.markDeleted(p);
    }
    expect(idx.deletedCount).to.equal(3);
    expect([...idx.entries()].map((e) => e.pod.metadata.uid)).to.deep.equal(['u7', 'u8', 'u9']);
    expect(idx.indexSizes.ip).to.equal(3);
  });

  it('a pod seen again after a delete (relist) is live again', () => {
    const idx = new PodIndex({ now: clock });
    const p = pod({ name: 'a', uid: '1', ip: '10.0.0.1' });
    idx.upsert(p);
    idx.markDeleted(p);
    idx.upsert(p);
    expect(idx.liveCount).to.equal(1);
    expect(idx.deletedCount).to.equal(0);
  });
});
