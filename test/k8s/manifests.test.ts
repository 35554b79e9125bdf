/**
 * The Kubernetes examples are consistent with the routelens configs they carry (test/support/k8s-manifests.ts
 * lists the checks) and run the image scripts/build-image.sh builds.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  checkDownwardEnv,
  checkEndpointSliceRbac,
  checkImage,
  checkPortsAndProbes,
  checkRbac,
  parseManifests,
  processorsOf,
  resolversOf,
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

  it("binds the workloads that resolve peers from EndpointSlices to a Role granting exactly that, in the Service's namespace", () => {
    expect(checkEndpointSliceRbac(docs, workloads)).to.equal(2);
  });

  it('wires the gateway cluster: the agents balance over the headless Service the gateways find each other in', () => {
    const gateway = workloads.find((w) => w.doc['metadata']['name'] === 'routelens-gateway') as Workload;
    const agent = workloads.find((w) => w.doc['metadata']['name'] === 'routelens-agent') as Workload;
    const headless = docs.find((d) => d['kind'] === 'Service' && d['spec']['clusterIP'] === 'None') as Obj;
    expect(headless['metadata']['name']).to.equal('routelens-gateway-headless');
    expect(Object.entries(headless['spec']['selector'] as Record<string, string>).every(([k, v]) => gateway.podLabels[k] === v)).to.equal(true);
    const servicePort = (name: string): number | undefined => {
      const sp = (headless['spec']['ports'] as Obj[]).find((p) => p['name'] === name);
      return gateway.container.ports?.find((p) => p.name === sp?.['targetPort'])?.containerPort;
    };
    const [peers] = resolversOf(gateway);
    const [backends] = resolversOf(agent);
    expect(peers?.resolver.k8s).to.deep.include({ service: 'routelens-gateway-headless.observability', ports: [servicePort('query')] });
    expect(backends?.resolver.k8s).to.deep.include({ service: 'routelens-gateway-headless.observability', ports: [servicePort('otlp-grpc')] });
    // the gateway's peers are reached on its query port, the agents' backends on its OTLP/gRPC receiver
    expect(servicePort('query')).to.equal(8888);
    expect(servicePort('otlp-grpc')).to.equal(4317);
    // the HPA and the PDB cover the gateway's pods; a terminating pod has time for preStop and the hand-off
    const hpa = docs.find((d) => d['kind'] === 'HorizontalPodAutoscaler') as Obj;
    expect(hpa['spec']['scaleTargetRef']).to.deep.equal({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'routelens-gateway' });
    const pdb = docs.find((d) => d['kind'] === 'PodDisruptionBudget') as Obj;
    expect(Object.entries(pdb['spec']['selector']['matchLabels'] as Record<string, string>).every(([k, v]) => gateway.podLabels[k] === v)).to.equal(true);
    const preStop = (gateway.container as { lifecycle?: { preStop?: { sleep?: { seconds: number } } } }).lifecycle?.preStop?.sleep?.seconds as number;
    const handoff = (gateway.config.extensions.get('routequery')?.config as { cluster: { handoff: { timeout: number } } }).cluster.handoff.timeout;
    expect(gateway.podSpec['terminationGracePeriodSeconds'] as number).to.be.greaterThan(preStop + handoff / 1000);
    // the agent's queue is on a volume (the root file system is read-only)
    const dir = (agent.config.extensions.get('file_storage')?.config as { directory: string }).directory;
    expect(agent.container.volumeMounts?.some((m) => dir.startsWith(`${m.mountPath}/`))).to.equal(true);
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
