/**
 * The workload's Kubernetes objects (namespaces, ReplicaSets with their Deployment owner, pods), as the fake API
 * server serves them to both collectors (bench/run.ts) and as bench/hot-path.ts feeds them to the enrichment.
 */
import { makeNamespace, makePod, makeReplicaSet, type KubeObject } from '../test/support/fake-kube-api';
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
