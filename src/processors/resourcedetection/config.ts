/**
 * Config of the `resourcedetection` processor: resource attributes of the collector's own environment added
 * to every resource that lacks them. For sidecar deployments, where the collector shares the pod of the
 * application it receives from.
 */
import { bool, duration, list, obj, oneOf, str, type Infer } from '../../core/schema';

export const DETECTORS = ['env', 'k8s_downward'] as const;
export type DetectorName = (typeof DETECTORS)[number];

export const configSchema = obj({
  detectors: list(oneOf(DETECTORS), {
    default: ['env'],
    minItems: 1,
    unique: true,
    doc: 'Detectors run in order; when two detect the same attribute the first wins.',
  }),
  override: bool({ default: false, doc: 'Replace attributes the resource already has with the detected values (default: keep what the client sent).' }),
  timeout: duration({ default: '5s', doc: 'Accepted for Collector compatibility; detection reads only the environment.' }),
  k8s_downward: obj(
    {
      pod_name_env_var: str({ default: 'K8S_POD_NAME', nonEmpty: true, doc: '→ k8s.pod.name (fieldRef metadata.name).' }),
      namespace_env_var: str({ default: 'K8S_NAMESPACE', nonEmpty: true, doc: '→ k8s.namespace.name (fieldRef metadata.namespace).' }),
      node_name_env_var: str({ default: 'K8S_NODE_NAME', nonEmpty: true, doc: '→ k8s.node.name (fieldRef spec.nodeName).' }),
      pod_uid_env_var: str({ default: 'K8S_POD_UID', nonEmpty: true, doc: '→ k8s.pod.uid (fieldRef metadata.uid).' }),
      pod_ip_env_var: str({ default: 'K8S_POD_IP', nonEmpty: true, doc: '→ k8s.pod.ip (fieldRef status.podIP).' }),
    },
    { doc: 'Environment variables set from the downward API.' },
  ),
});

export type ResourceDetectionConfig = Infer<typeof configSchema>;
