/**
 * The Kubernetes examples are consistent with the routelens configs they carry (test/support/k8s-manifests.ts
 * lists the checks) and run the image scripts/build-image.sh builds.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  checkDownwardEnv,
  checkImage,
  checkPortsAndProbes,
  checkRbac,
  parseManifests,
  processorsOf,
  routelensWorkloads,
  type Obj,
  type Workload,
} from '../support/k8s-manifests';

const dir = path.resolve(__dirname, '../../../examples/kubernetes');

function load(): Obj[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseManifests(fs.readFileSync(path.join(dir, f), 'utf8'), f));
}

describe('examples/kubernetes manifests', () => {
  const docs = load();
  const workloads = routelensWorkloads(docs);

  it('has a gateway Deployment, an agent DaemonSet and a sidecar', () => {
    const kinds = workloads.map((w) => `${w.doc['kind']}/${w.doc['metadata']['name']}`);
    expect(kinds).to.include.members(['Deployment/routelens-gateway', 'DaemonSet/routelens-agent', 'Deployment/checkout']);
  });

  it('declares the ports the config listens on, and Services and probes point at them', () => {
    checkPortsAndProbes(docs, workloads);
  });

  it('defines the node name for filter.node_from_env_var and the downward-API variables resourcedetection reads', () => {
    expect(checkDownwardEnv(workloads)).to.be.at.least(2);
  });

  it('binds each k8sattributes workload to a ClusterRole covering what it extracts, and the role grants no more than needed', () => {
    expect(checkRbac(docs, workloads)).to.be.at.least(2);
  });

  it('runs the image scripts/build-image.sh builds, restricted as the container tests run it', () => {
    checkImage(workloads);
  });

  it('the sidecar needs no API access', () => {
    const sidecar = workloads.find((w) => w.doc['metadata']['name'] === 'checkout');
    expect(sidecar).to.not.equal(undefined);
    expect(processorsOf(sidecar as Workload, 'k8sattributes')).to.have.length(0);
    expect((sidecar as Workload).podSpec['automountServiceAccountToken']).to.equal(false);
  });
});
