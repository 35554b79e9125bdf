import { expect } from 'chai';
import { ConfigErrorList } from '../../core/schema';
import { DEFAULT_METADATA, needs, configSchema, requiredRbac } from './config';

function parse(raw: unknown): { cfg: ReturnType<typeof configSchema.parse>; errors: string[] } {
  const issues = new ConfigErrorList();
  const cfg = configSchema.parse(raw, 'processors.k8sattributes', issues);
  return { cfg, errors: issues.items.map((i) => `${i.path}: ${i.message}`) };
}

describe('k8sattributes config', () => {
  it('has the Collector defaults', () => {
    const { cfg, errors } = parse(undefined);
    expect(errors).to.deep.equal([]);
    expect(cfg.auth_type).to.equal('serviceAccount');
    expect(cfg.passthrough).to.equal(false);
    expect(cfg.wait_for_metadata).to.equal(false);
    expect(cfg.wait_for_metadata_timeout).to.equal(10_000);
    expect(cfg.extract.metadata).to.deep.equal(DEFAULT_METADATA);
    expect(cfg.exclude.pods.map((p) => p.name)).to.deep.equal(['jaeger-agent', 'jaeger-collector']);
    expect(cfg.pod_association).to.deep.equal([]);
    expect(cfg.pod_delete_grace_period).to.equal(120_000);
  });

  it('reports an unknown metadata attribute with its YAML path and the valid names', () => {
    const { errors } = parse({ extract: { metadata: ['k8s.pod.name', 'k8s.namespace.name', 'k8s.pod.nam'] } });
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/^processors\.k8sattributes\.extract\.metadata\[2\]: unknown attribute "k8s\.pod\.nam"; expected one of k8s\.namespace\.name, /);
  });

  it('reports every problem at once', () => {
    const { errors } = parse({
      auth_type: 'token',
      kube_config_path: '/x',
      pod_association: [
        { sources: [{ from: 'resource_attribute', name: 'host.name' }] },
        { sources: [{ from: 'resource_attribute', name: 'k8s.pod.name' }] },
        { sources: [] },
        { sources: [{ from: 'connection' }, { from: 'connection' }] },
      ],
      extract: { labels: [{ tag_name: 'x' }, { key: 'a', key_regex: 'b' }, { key_regex: '(' }], annotations: [{ key: 'a', from: 'deployment' }] },
      filter: { node: 'a', node_from_env_var: 'B', labels: [{ key: 'k', op: 'exists', value: 'v' }, { key: 'k' }] },
      exclude: { pods: [{ name: '[' }] },
      wait_for_metadata_timeout: 'soon',
      bogus: 1,
    });
    const text = errors.join('\n');
    for (const expected of [
      'processors.k8sattributes.auth_type: invalid value "token"',
      'processors.k8sattributes.pod_association[0].sources[0].name: unsupported association attribute "host.name"',
      'processors.k8sattributes.pod_association[1].sources: k8s.pod.name and k8s.namespace.name identify a pod only together',
      'processors.k8sattributes.pod_association[2].sources: needs at least 1 item(s)',
      'processors.k8sattributes.pod_association[3].sources[1]: duplicate source "connection"',
      'processors.k8sattributes.extract.labels[0]: exactly one of "key" and "key_regex" is needed',
      'processors.k8sattributes.extract.labels[1]: exactly one of "key" and "key_regex" is needed',
      'processors.k8sattributes.extract.labels[2].key_regex: invalid regular expression',
      'processors.k8sattributes.extract.annotations[0].from: invalid value "deployment"',
      'processors.k8sattributes.filter: set "node" or "node_from_env_var", not both',
      'processors.k8sattributes.filter.labels[0]: op "exists" takes no "value"',
      'processors.k8sattributes.filter.labels[1]: op "equals" needs a "value"',
      'processors.k8sattributes.exclude.pods[0].name: invalid regular expression',
      'processors.k8sattributes.wait_for_metadata_timeout: invalid value "soon"',
      'processors.k8sattributes.bogus: unknown key "bogus"',
    ]) {
      expect(text).to.contain(expected);
    }
  });

  it('rejects kube_config_path and context without auth_type kubeConfig', () => {
    expect(parse({ kube_config_path: '/k', context: 'c' }).errors).to.deep.equal([
      'processors.k8sattributes.kube_config_path: only used with auth_type: kubeConfig',
      'processors.k8sattributes.context: only used with auth_type: kubeConfig',
    ]);
    expect(parse({ auth_type: 'kubeConfig', kube_config_path: '/k', context: 'c' }).errors).to.deep.equal([]);
  });

  it('derives the watched resources and the RBAC rules from the extraction', () => {
    const base = parse({}).cfg;
    expect(needs(base)).to.deep.include({ pods: true, replicaSets: true, namespaces: false, nodes: false, jobs: false, clusterUid: false });
    expect(requiredRbac(base).map((r) => `${r.apiGroup}/${r.resource}`)).to.deep.equal(['/pods', 'apps/replicasets']);

    const trimmed = parse({ extract: { deployment_name_from_replicaset: true } }).cfg;
    expect(needs(trimmed).replicaSets).to.equal(false);

    const full = parse({
      extract: {
        metadata: ['k8s.pod.name', 'k8s.cluster.uid', 'k8s.cronjob.uid', 'k8s.node.uid'],
        labels: [{ key: 'team', from: 'namespace' }],
      },
    }).cfg;
    expect(requiredRbac(full).map((r) => `${r.apiGroup}/${r.resource}`)).to.deep.equal(['/pods', '/namespaces', '/nodes', 'batch/jobs']);
    expect(requiredRbac(full)[0]?.verbs).to.deep.equal(['get', 'list', 'watch']);

    expect(requiredRbac(parse({ passthrough: true }).cfg)).to.deep.equal([]);
  });
});
