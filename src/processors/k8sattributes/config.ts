/**
 * Config of the `k8sattributes` processor. Keys follow the OpenTelemetry Collector's k8sattributes processor
 * so its configs carry over; routelens adds `pod_delete_grace_period` and `max_deleted_pods` (the Collector
 * hard-codes the grace period and has no cap).
 */
import { bool, duration, list, num, obj, oneOf, optStr, refine, str, type Field, type Infer } from '../../core/schema';

/** Every resource attribute `extract.metadata` can ask for. */
export const METADATA_ATTRIBUTES = [
  'k8s.namespace.name',
  'k8s.pod.name',
  'k8s.pod.uid',
  'k8s.pod.start_time',
  'k8s.pod.hostname',
  'k8s.pod.ip',
  'k8s.deployment.name',
  'k8s.deployment.uid',
  'k8s.replicaset.name',
  'k8s.replicaset.uid',
  'k8s.statefulset.name',
  'k8s.statefulset.uid',
  'k8s.daemonset.name',
  'k8s.daemonset.uid',
  'k8s.job.name',
  'k8s.job.uid',
  'k8s.cronjob.name',
  'k8s.cronjob.uid',
  'k8s.node.name',
  'k8s.node.uid',
  'k8s.cluster.uid',
  'k8s.container.name',
  'container.id',
  'container.image.name',
  'container.image.tag',
] as const;

export type MetadataAttribute = (typeof METADATA_ATTRIBUTES)[number];

/** The Collector's default `extract.metadata`. */
export const DEFAULT_METADATA: readonly MetadataAttribute[] = [
  'k8s.namespace.name',
  'k8s.pod.name',
  'k8s.pod.uid',
  'k8s.pod.start_time',
  'k8s.deployment.name',
  'k8s.node.name',
];

/** Resource attributes a `pod_association` source may name. */
export const ASSOCIATION_ATTRIBUTES = ['k8s.pod.ip', 'k8s.pod.uid', 'k8s.pod.name', 'k8s.namespace.name', 'container.id'] as const;

/** `extract.metadata`: known attribute names, no duplicates; each problem reported at its index. */
function metadataList(): Field<MetadataAttribute[]> {
  const names = METADATA_ATTRIBUTES.join(', ');
  return {
    expected: `a list of attribute names (${names})`,
    defaultText: JSON.stringify(DEFAULT_METADATA),
    doc: 'Pod metadata to add as resource attributes.',
    parse(raw, path, issues) {
      if (raw === undefined || raw === null) return [...DEFAULT_METADATA];
      if (!Array.isArray(raw)) {
        issues.add(path, `invalid value ${typeof raw === 'object' ? 'a map' : JSON.stringify(raw)}; expected a list of attribute names`);
        return [...DEFAULT_METADATA];
      }
      const out: MetadataAttribute[] = [];
      raw.forEach((item: unknown, i) => {
        const at = `${path}[${i}]`;
        if (typeof item !== 'string') {
          issues.add(at, `invalid value ${JSON.stringify(item) ?? String(item)}; expected an attribute name`);
        } else if (!(METADATA_ATTRIBUTES as readonly string[]).includes(item)) {
          issues.add(at, `unknown attribute ${JSON.stringify(item)}; expected one of ${names}`);
        } else if (out.includes(item as MetadataAttribute)) {
          issues.add(at, `duplicate entry ${JSON.stringify(item)}`);
        } else {
          out.push(item as MetadataAttribute);
        }
      });
      return out;
    },
  };
}

const sourceSchema = refine(
  obj({
    from: oneOf(['connection', 'resource_attribute'], { doc: 'Where the identifier comes from.' }),
    name: optStr({ doc: 'The resource attribute (from: resource_attribute).' }),
  }),
  (v, path, issues) => {
    if (v.from === 'resource_attribute') {
      if (v.name === undefined || v.name === '') issues.add(path, 'a resource_attribute source needs a "name"');
      else if (!(ASSOCIATION_ATTRIBUTES as readonly string[]).includes(v.name)) {
        issues.add(`${path}.name`, `unsupported association attribute ${JSON.stringify(v.name)}; expected one of ${ASSOCIATION_ATTRIBUTES.join(', ')}`);
      }
    } else if (v.name !== undefined) {
      issues.add(`${path}.name`, 'a connection source takes no "name"');
    }
  },
);

const ruleSchema = refine(
  obj({ sources: list(sourceSchema, { minItems: 1, doc: 'At most 4; all must have a value for the rule to apply.' }) }),
  (v, path, issues) => {
    if (v.sources.length > 4) issues.add(`${path}.sources`, `at most 4 sources per rule, got ${v.sources.length}`);
    const names = v.sources.map((s) => (s.from === 'connection' ? 'connection' : (s.name ?? '')));
    const seen = new Set<string>();
    names.forEach((n, i) => {
      if (seen.has(n)) issues.add(`${path}.sources[${i}]`, `duplicate source ${JSON.stringify(n)}`);
      seen.add(n);
    });
    const has = (n: string): boolean => seen.has(n);
    if (has('k8s.pod.name') !== has('k8s.namespace.name') && !['connection', 'k8s.pod.ip', 'k8s.pod.uid', 'container.id'].some(has)) {
      issues.add(`${path}.sources`, 'k8s.pod.name and k8s.namespace.name identify a pod only together: add the other one');
    }
  },
);

const fieldExtractSchema = refine(
  obj({
    tag_name: optStr({ doc: 'Attribute to write; `$1`… refer to key_regex groups. Default `k8s.<from>.labels.<key>` (`.annotations.` for annotations).' }),
    key: optStr({ doc: 'Label/annotation key.' }),
    key_regex: optStr({ doc: 'Regular expression matched against whole keys (anchored), with capture groups.' }),
    from: oneOf(['pod', 'namespace', 'node'], { default: 'pod', doc: 'Object whose labels/annotations are read.' }),
  }),
  (v, path, issues) => {
    if ((v.key === undefined) === (v.key_regex === undefined)) issues.add(path, 'exactly one of "key" and "key_regex" is needed');
    if (v.key_regex !== undefined) {
      try {
        new RegExp(v.key_regex);
      } catch (err) {
        issues.add(`${path}.key_regex`, `invalid regular expression: ${(err as Error).message}`);
      }
    }
  },
);

const labelFilterSchema = obj({
  key: str({ nonEmpty: true }),
  value: optStr(),
  op: oneOf(['equals', 'not-equals', 'exists', 'does-not-exist'], { default: 'equals' }),
});

const fieldFilterSchema = obj({
  key: str({ nonEmpty: true }),
  value: str(),
  op: oneOf(['equals', 'not-equals'], { default: 'equals' }),
});

export const configSchema = refine(
  obj({
    auth_type: oneOf(['serviceAccount', 'kubeConfig', 'none'], {
      default: 'serviceAccount',
      doc: 'serviceAccount: in-cluster token and CA; kubeConfig: a kubeconfig file; none: no credentials.',
    }),
    kube_config_path: optStr({ doc: 'kubeconfig file (auth_type kubeConfig). Default $KUBECONFIG, then ~/.kube/config.' }),
    context: optStr({ doc: 'kubeconfig context (auth_type kubeConfig). Default the current context.' }),
    passthrough: bool({ default: false, doc: 'Only add k8s.pod.ip from the connection; no API access.' }),
    wait_for_metadata: bool({ default: false, doc: 'Hold the pipeline start until the metadata is synced.' }),
    wait_for_metadata_timeout: duration({ default: '10s', doc: 'Give up (fail to start) after this long.' }),
    pod_association: list(ruleSchema, { doc: 'Rules tried in order; no rules means the connection address only.' }),
    extract: obj({
      metadata: metadataList(),
      labels: list(fieldExtractSchema, { doc: 'Labels to add as attributes.' }),
      annotations: list(fieldExtractSchema, { doc: 'Annotations to add as attributes.' }),
      deployment_name_from_replicaset: bool({
        default: false,
        doc: 'Derive the deployment name by trimming the ReplicaSet name instead of watching ReplicaSets.',
      }),
    }),
    filter: refine(
      obj({
        node: optStr({ doc: 'Only pods on this node.' }),
        node_from_env_var: optStr({ doc: 'Only pods on the node named by this environment variable.' }),
        namespace: optStr({ doc: 'Only pods in this namespace.' }),
        labels: list(labelFilterSchema, { doc: 'Only pods with these labels (a label selector).' }),
        fields: list(fieldFilterSchema, { doc: 'Only pods whose fields match (a field selector).' }),
      }),
      (v, path, issues) => {
        if (v.node !== undefined && v.node_from_env_var !== undefined) issues.add(path, 'set "node" or "node_from_env_var", not both');
        v.labels.forEach((l, i) => {
          const needsValue = l.op === 'equals' || l.op === 'not-equals';
          if (needsValue && l.value === undefined) issues.add(`${path}.labels[${i}]`, `op "${l.op}" needs a "value"`);
          if (!needsValue && l.value !== undefined) issues.add(`${path}.labels[${i}]`, `op "${l.op}" takes no "value"`);
        });
      },
    ),
    exclude: obj({
      pods: list(obj({ name: str({ nonEmpty: true, doc: 'Regular expression searched in pod names (`jaeger-agent` matches `jaeger-agent-x7k2p`).' }) }), {
        default: [{ name: 'jaeger-agent' }, { name: 'jaeger-collector' }],
        doc: 'Pods never used for enrichment.',
      }),
    }),
    pod_delete_grace_period: duration({ default: '2m', doc: 'How long a deleted pod still enriches late spans.' }),
    max_deleted_pods: num({ default: 5000, integer: true, min: 0, doc: 'At most this many deleted pods are kept.' }),
  }),
  (v, path, issues) => {
    if (v.auth_type !== 'kubeConfig') {
      if (v.kube_config_path !== undefined) issues.add(`${path}.kube_config_path`, 'only used with auth_type: kubeConfig');
      if (v.context !== undefined) issues.add(`${path}.context`, 'only used with auth_type: kubeConfig');
    }
    v.exclude.pods.forEach((p, i) => {
      try {
        new RegExp(p.name);
      } catch (err) {
        issues.add(`${path}.exclude.pods[${i}].name`, `invalid regular expression: ${(err as Error).message}`);
      }
    });
  },
);

export type K8sAttributesConfig = Infer<typeof configSchema>;

/** Which API resources the processor watches (or reads) for a config. */
export interface Needs {
  pods: boolean;
  replicaSets: boolean;
  namespaces: boolean;
  nodes: boolean;
  jobs: boolean;
  /** `k8s.cluster.uid`: one GET of the kube-system namespace. */
  clusterUid: boolean;
}

export function needs(cfg: K8sAttributesConfig): Needs {
  if (cfg.passthrough) return { pods: false, replicaSets: false, namespaces: false, nodes: false, jobs: false, clusterUid: false };
  const md = new Set<string>(cfg.extract.metadata);
  const from = (kind: string): boolean => [...cfg.extract.labels, ...cfg.extract.annotations].some((f) => f.from === kind);
  return {
    pods: true,
    replicaSets: md.has('k8s.deployment.uid') || (md.has('k8s.deployment.name') && !cfg.extract.deployment_name_from_replicaset),
    namespaces: from('namespace'),
    nodes: from('node') || md.has('k8s.node.uid'),
    jobs: md.has('k8s.cronjob.uid'),
    clusterUid: md.has('k8s.cluster.uid'),
  };
}

/** One RBAC rule: `verbs` on `resource` of `apiGroup` ('' is the core group). */
export interface RbacRule {
  apiGroup: string;
  resource: string;
  verbs: readonly string[];
}

/** The ClusterRole rules the processor needs for a config (get, list, watch on each resource it reads). */
export function requiredRbac(cfg: K8sAttributesConfig): RbacRule[] {
  const n = needs(cfg);
  const verbs = ['get', 'list', 'watch'] as const;
  const out: RbacRule[] = [];
  if (n.pods) out.push({ apiGroup: '', resource: 'pods', verbs });
  if (n.namespaces || n.clusterUid) out.push({ apiGroup: '', resource: 'namespaces', verbs });
  if (n.nodes) out.push({ apiGroup: '', resource: 'nodes', verbs });
  if (n.replicaSets) out.push({ apiGroup: 'apps', resource: 'replicasets', verbs });
  if (n.jobs) out.push({ apiGroup: 'batch', resource: 'jobs', verbs });
  return out;
}
