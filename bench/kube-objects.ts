/**
 * The workload's Kubernetes objects (namespaces, ReplicaSets with their Deployment owner, pods), as the fake API
 * server serves them to both collectors (bench/run.ts) and as bench/hot-path.ts feeds them to the enrichment.
 */
import { toOwnedInfo, toPodInfo } from '../src/processors/k8sattributes/kube/objects';
import { K8sAttributesProcessor } from '../src/processors/k8sattributes/processor';
import { makeNamespace, makePod, makeReplicaSet, type KubeObject } from '../test/support/fake-kube-api';
import { k8sConfig, settings, TracesSink } from '../test/support/k8s';
import { K8S_METADATA } from './configs';
import { PODS, SERVICES } from './workload';

export interface WorkloadKubeObjects {
  namespaces: KubeObject[];
  replicaSets: KubeObject[];
  pods: KubeObject[];
}

export function workloadKubeObjects(): WorkloadKubeObjects {
  const namespaces = [...new Set(SERVICES.map((s) => s.namespace))].map((name) => makeNamespace({ name }));
  const replicaSets: KubeObject[] = [];
  const rsDone = new Set<string>();
  const pods: KubeObject[] = [];
  for (const p of PODS) {
    if (!rsDone.has(p.replicaSet)) {
      rsDone.add(p.replicaSet);
      replicaSets.push(
        makeReplicaSet({
          name: p.replicaSet,
          namespace: p.service.namespace,
          uid: p.replicaSetUid,
          deployment: { name: p.service.name, uid: p.deploymentUid },
        }),
      );
    }
    pods.push(
      makePod({
        name: p.name,
        namespace: p.service.namespace,
        uid: p.uid,
        ip: p.ip,
        node: p.node,
        labels: { app: p.service.name, 'pod-template-hash': p.replicaSet.slice(p.service.name.length + 1) },
        owner: { kind: 'ReplicaSet', name: p.replicaSet, uid: p.replicaSetUid },
        containers: [{ name: 'app', image: `registry.example/${p.service.name}:${p.service.version}` }],
      }),
    );
  }
  return { namespaces, replicaSets, pods };
}

/** A k8sattributes processor configured as the benchmark configures it, its metadata loaded with the workload's objects. */
export function workloadEnrichment(): K8sAttributesProcessor {
  const cfg = k8sConfig({ pod_association: [{ sources: [{ from: 'resource_attribute', name: 'k8s.pod.ip' }] }], extract: { metadata: K8S_METADATA } });
  const processor = new K8sAttributesProcessor(settings(), cfg, new TracesSink());
  const md = processor.metadata;
  const objects = workloadKubeObjects();
  for (const rs of objects.replicaSets) {
    const info = toOwnedInfo(rs);
    if (info !== undefined) md.replicaSetUpserted(info);
  }
  for (const pod of objects.pods) {
    const info = toPodInfo(pod, md.keep.pod);
    if (info !== undefined) md.podUpserted(info);
  }
  return processor;
}
