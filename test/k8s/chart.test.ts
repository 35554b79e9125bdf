/**
 * The Helm chart (charts/routelens), with helm built from the Go module proxy at the pinned version: `helm lint
 * --strict` passes and its values schema refuses typos; `helm template` renders, for each mode and for customised
 * values, objects that are valid against the Kubernetes OpenAPI schemas of the pinned version (strictly: unknown
 * fields, wrong types, duplicate keys), carry valid routelens configs consistent with their ports, probes,
 * Services, environment and RBAC (test/support/k8s-manifests.ts), and run the image scripts/build-image.sh
 * builds.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { CHART, helm, helmTemplate } from '../support/helm';
import { KubeOpenApi } from '../support/kube-openapi';
import {
  checkDownwardEnv,
  checkImage,
  checkPortsAndProbes,
  checkRbac,
  packageVersion,
  parseManifests,
  routelensWorkloads,
  type Obj,
} from '../support/k8s-manifests';

const kinds = (docs: Obj[]): string[] => docs.map((d) => `${d['kind']}/${d['metadata']['name']}`).sort();
const find = (docs: Obj[], kind: string, name: string): Obj => {
  const d = docs.find((x) => x['kind'] === kind && x['metadata']['name'] === name);
  if (d === undefined) throw new Error(`no ${kind}/${name} in ${kinds(docs).join(', ')}`);
  return d;
};
const container = (workload: Obj): Obj => workload['spec']['template']['spec']['containers'][0] as Obj;

describe('Helm chart charts/routelens', function () {
  // The first run builds helm (minutes) and downloads the k8s.io/kubernetes module for its OpenAPI documents.
  this.timeout(30 * 60_000);
  let openapi: KubeOpenApi;

  before(async () => {
    openapi = await KubeOpenApi.pinned();
  });

  /** Every rendered object is valid against the OpenAPI schemas; the routelens workloads pass every consistency check. */
  function checkRender(docs: Obj[], o: { rbac: boolean; image?: string }): void {
    for (const d of docs) {
      const { __file: _file, ...obj } = d;
      expect(openapi.validate(obj), `${d['kind']}/${d['metadata']['name']}`).to.deep.equal([]);
    }
    const workloads = routelensWorkloads(docs);
    expect(workloads.length).to.be.greaterThan(0);
    checkPortsAndProbes(docs, workloads);
    checkDownwardEnv(workloads);
    if (o.rbac) expect(checkRbac(docs, workloads)).to.equal(workloads.length);
    checkImage(workloads, o.image);
  }

  it('deploys the image scripts/build-image.sh builds: appVersion is the package version', () => {
    const chart = YAML.parse(fs.readFileSync(path.resolve(__dirname, '../../..', CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string; version: string };
    expect(chart.appVersion).to.equal(packageVersion());
    const values = YAML.parse(fs.readFileSync(path.resolve(__dirname, '../../..', CHART, 'values.yaml'), 'utf8')) as { image: { repository: string } };
    expect(values.image.repository).to.equal('localhost/routelens');
  });

  it('helm lint --strict passes in every mode', async () => {
    for (const values of [
      {},
      { gateway: { enabled: false }, agent: { enabled: true, hostPorts: true } },
      { agent: { enabled: true }, gateway: { autoscaling: { enabled: true } } },
    ]) {
      const r = await helm(['lint', '--strict', CHART], values);
      expect(r.code, `${JSON.stringify(values)}\n${r.stdout}${r.stderr}`).to.equal(0);
      expect(r.stdout).to.include('1 chart(s) linted, 0 chart(s) failed');
      expect(r.stdout).to.not.match(/\[(WARNING|ERROR)\]/);
    }
  });

  it('the values schema refuses misspelt keys and impossible values, naming them', async () => {
    const cases: [Obj, RegExp][] = [
      [{ gateway: { replica: 3 } }, /gateway.*additional properties 'replica' not allowed/],
      [{ gateway: { workers: 0 } }, /gateway\/workers/],
      [{ image: { pullPolicy: 'Sometimes' } }, /image\/pullPolicy/],
      [{ agent: { config: { receivers: {}, service: { pipelines: {} }, exporter: {} } } }, /additional properties 'exporter' not allowed/],
    ];
    for (const [values, message] of cases) {
      const r = await helm(['template', 'rl', CHART], values);
      expect(r.code, JSON.stringify(values)).to.not.equal(0);
      expect(r.stderr).to.match(message);
    }
  });

  it('the default values: a gateway Deployment (2 replicas), a Service, a headless Service, a PDB, RBAC', async () => {
    const docs = await helmTemplate();
    expect(kinds(docs)).to.deep.equal([
      'ClusterRole/rl-routelens',
      'ClusterRoleBinding/rl-routelens',
      'ConfigMap/rl-routelens-gateway',
      'Deployment/rl-routelens-gateway',
      'PodDisruptionBudget/rl-routelens-gateway',
      'Service/rl-routelens-gateway',
      'Service/rl-routelens-gateway-headless',
      'ServiceAccount/rl-routelens',
    ]);
    checkRender(docs, { rbac: true });
    const deployment = find(docs, 'Deployment', 'rl-routelens-gateway');
    expect(deployment['spec']['replicas']).to.equal(2);
    const selector = deployment['spec']['selector']['matchLabels'] as Record<string, string>;
    expect(selector).to.deep.equal({ 'app.kubernetes.io/name': 'routelens', 'app.kubernetes.io/instance': 'rl', 'app.kubernetes.io/component': 'gateway' });
    const podLabels = deployment['spec']['template']['metadata']['labels'] as Record<string, string>;
    for (const [k, v] of Object.entries(selector)) expect(podLabels[k]).to.equal(v);
    expect(find(docs, 'Service', 'rl-routelens-gateway-headless')['spec']).to.deep.include({ clusterIP: 'None', selector });
    expect(find(docs, 'Service', 'rl-routelens-gateway')['spec']['selector']).to.deep.equal(selector);
    expect(find(docs, 'PodDisruptionBudget', 'rl-routelens-gateway')['spec']).to.deep.equal({ maxUnavailable: 1, selector: { matchLabels: selector } });
    expect(container(deployment)['env']).to.deep.equal([{ name: 'ROUTELENS_WORKERS', value: '2' }]);
    expect(container(deployment)['args']).to.deep.equal(['run', '--config', '/etc/routelens/otel-config.yaml']);
    expect(deployment['spec']['template']['spec']['securityContext']['runAsUser']).to.equal(10001);
    // A changed config rolls the pods.
    const other = await helmTemplate({ gateway: { config: { connectors: { routelatency: { windows: ['1m'] } } } } });
    const checksum = (ds: Obj[]): string =>
      find(ds, 'Deployment', 'rl-routelens-gateway')['spec']['template']['metadata']['annotations']['checksum/config'] as string;
    expect(checksum(other)).to.match(/^[0-9a-f]{64}$/);
    expect(checksum(other)).to.not.equal(checksum(docs));
  });

  it('agent mode: a DaemonSet watching its own node (downward API), a node-local Service, optional host ports', async () => {
    const docs = await helmTemplate({ gateway: { enabled: false }, agent: { enabled: true, hostPorts: true } });
    expect(kinds(docs)).to.deep.equal([
      'ClusterRole/rl-routelens',
      'ClusterRoleBinding/rl-routelens',
      'ConfigMap/rl-routelens-agent',
      'DaemonSet/rl-routelens-agent',
      'Service/rl-routelens-agent',
      'ServiceAccount/rl-routelens',
    ]);
    checkRender(docs, { rbac: true });
    const ds = find(docs, 'DaemonSet', 'rl-routelens-agent');
    expect(container(ds)['env']).to.deep.equal([
      { name: 'ROUTELENS_WORKERS', value: '1' },
      { name: 'K8S_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    ]);
    expect((container(ds)['ports'] as Obj[]).map((p) => [p['name'], p['hostPort']])).to.deep.equal([
      ['otlp-grpc', 4317],
      ['otlp-http', 4318],
      ['query', undefined],
    ]);
    expect(find(docs, 'Service', 'rl-routelens-agent')['spec']['internalTrafficPolicy']).to.equal('Local');
  });

  it('both modes with autoscaling: the HPA owns the replica count and targets the gateway Deployment', async () => {
    const docs = await helmTemplate({
      agent: { enabled: true },
      gateway: { autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12, targetMemoryUtilizationPercentage: 80 } },
    });
    expect(kinds(docs)).to.include.members(['DaemonSet/rl-routelens-agent', 'Deployment/rl-routelens-gateway', 'HorizontalPodAutoscaler/rl-routelens-gateway']);
    checkRender(docs, { rbac: true });
    expect(find(docs, 'Deployment', 'rl-routelens-gateway')['spec']).to.not.have.property('replicas');
    expect(find(docs, 'HorizontalPodAutoscaler', 'rl-routelens-gateway')['spec']).to.deep.equal({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'rl-routelens-gateway' },
      minReplicas: 3,
      maxReplicas: 12,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
      ],
    });
  });

  it('customised: an existing service account, no RBAC, another image, a backend from extraEnv, file_storage on a volume', async () => {
    const docs = await helmTemplate(
      {
        fullnameOverride: 'tracing',
        image: { repository: 'registry.example.com/observability/routelens', tag: '0.1.0-rc.1' },
        serviceAccount: { create: false, name: 'routelens-reader' },
        rbac: { create: false },
        extraEnv: [{ name: 'TRACES_ENDPOINT', value: 'jaeger-collector.observability:4317' }],
        extraVolumes: [{ name: 'queue', emptyDir: { sizeLimit: '1Gi' } }],
        extraVolumeMounts: [{ name: 'queue', mountPath: '/var/lib/routelens' }],
        gateway: {
          workers: null,
          resources: { requests: { cpu: '1', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } },
          config: {
            extensions: { file_storage: { directory: '/var/lib/routelens' } },
            exporters: { otlp: { endpoint: '${env:TRACES_ENDPOINT}', tls: { insecure: true }, sending_queue: { storage: 'file_storage' } } },
            service: {
              extensions: ['routequery', 'file_storage'],
              pipelines: { traces: { receivers: ['otlp'], processors: ['k8sattributes'], exporters: ['routelatency', 'otlp'] } },
            },
          },
        },
      },
      { release: 'prod', namespace: 'tracing' },
    );
    expect(kinds(docs)).to.deep.equal([
      'ConfigMap/tracing-gateway',
      'Deployment/tracing-gateway',
      'PodDisruptionBudget/tracing-gateway',
      'Service/tracing-gateway',
      'Service/tracing-gateway-headless',
    ]);
    checkRender(docs, { rbac: false, image: 'registry.example.com/observability/routelens:0.1.0-rc.1' });
    const deployment = find(docs, 'Deployment', 'tracing-gateway');
    expect(deployment['metadata']['namespace']).to.equal('tracing');
    expect(deployment['spec']['template']['spec']['serviceAccountName']).to.equal('routelens-reader');
    // No ROUTELENS_WORKERS: one worker per CPU of the 2-CPU limit.
    expect(container(deployment)['env']).to.deep.equal([{ name: 'TRACES_ENDPOINT', value: 'jaeger-collector.observability:4317' }]);
    expect(container(deployment)['volumeMounts']).to.deep.equal([
      { name: 'config', mountPath: '/etc/routelens', readOnly: true },
      { name: 'queue', mountPath: '/var/lib/routelens' },
    ]);
    const config = YAML.parse(find(docs, 'ConfigMap', 'tracing-gateway')['data']['otel-config.yaml'] as string) as Obj;
    // Values merge into the default config key by key: the k8sattributes block and the receivers stay.
    expect(Object.keys(config['processors'] as Obj)).to.deep.equal(['k8sattributes']);
    expect(config['exporters']['otlp']['endpoint']).to.equal('${env:TRACES_ENDPOINT}');
  });

  it('the ClusterRole grants exactly what the enabled configs read, and is left out when they read nothing', async () => {
    const rulesOf = (docs: Obj[]): Obj[] | undefined => docs.find((d) => d['kind'] === 'ClusterRole')?.['rules'] as Obj[] | undefined;
    // Passthrough only adds the connection's address: no API access, no ClusterRole.
    const passthrough = await helmTemplate({ gateway: { config: { processors: { k8sattributes: { passthrough: true } } } } });
    expect(kinds(passthrough).filter((k) => k.startsWith('ClusterRole'))).to.deep.equal([]);
    // Two processors, defaults filled in: the default metadata includes k8s.deployment.name (ReplicaSets), a
    // CronJob uid needs Jobs, namespace annotations need namespaces.
    const two = await helmTemplate({
      gateway: {
        config: {
          processors: {
            // Merged into the default block: lists replace the defaults' (its node label goes with labels: []).
            k8sattributes: { extract: { metadata: ['k8s.pod.name', 'k8s.cronjob.uid'], labels: [] } },
            'k8sattributes/defaults': { auth_type: 'serviceAccount', extract: { annotations: [{ from: 'namespace', key: 'team' }] } },
          },
          service: { pipelines: { traces: { receivers: ['otlp'], processors: ['k8sattributes', 'k8sattributes/defaults'], exporters: ['routelatency'] } } },
        },
      },
    });
    checkRender(two, { rbac: true });
    expect(rulesOf(two)).to.deep.equal([
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] },
    ]);
    const extra = await helmTemplate({ rbac: { extraRules: [{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] }] } });
    expect(rulesOf(extra)?.at(-1)).to.deep.equal({ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] });
  });

  it("the README's helm install command renders a valid gateway that exports to Jaeger", async () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    const command = /```sh\n(helm install routelens charts\/routelens[^`]*?)\n```/.exec(readme)?.[1];
    expect(command, 'a helm install command in README.md').to.be.a('string');
    const args = [...(command as string).matchAll(/--set-json '([^']*)'/g)].map((m) => ['--set-json', m[1] as string]).flat();
    expect(args.length).to.equal(4);
    const r = await helm(['template', 'routelens', CHART, '--namespace', 'observability', ...args]);
    expect(r.code, r.stderr).to.equal(0);
    const docs = parseManifests(r.stdout, 'README helm install');
    checkRender(docs, { rbac: true });
    const config = YAML.parse(find(docs, 'ConfigMap', 'routelens-gateway')['data']['otel-config.yaml'] as string) as Obj;
    expect(config['service']['pipelines']['traces']['exporters']).to.deep.equal(['routelatency', 'otlp']);
    expect(config['exporters']['otlp']['endpoint']).to.equal('jaeger-collector.observability:4317');
  });

  it('the schema check refuses what the API server would refuse, with the field path', async () => {
    const deployment = find(await helmTemplate(), 'Deployment', 'rl-routelens-gateway');
    const { __file: _file, ...valid } = deployment;
    expect(openapi.validate(valid)).to.deep.equal([]);
    const broken = JSON.parse(JSON.stringify(valid)) as Obj;
    broken['spec']['replica'] = 3;
    delete broken['spec']['selector'];
    const c = broken['spec']['template']['spec']['containers'][0] as Obj;
    c['ports'][0]['containerPort'] = '4317';
    c['ports'][1]['containerPort'] = 2 ** 31;
    c['env'].push({ name: 'ROUTELENS_WORKERS', value: '1' });
    c['readinessProbe']['httpGet']['port'] = true;
    expect(openapi.validate(broken).sort()).to.deep.equal(
      [
        '$.spec.replica: unknown field',
        '$.spec.selector: required',
        '$.spec.template.spec.containers[0].ports[0].containerPort: expected an integer, got "4317"',
        '$.spec.template.spec.containers[0].ports[1].containerPort: 2147483648 is out of the int32 range',
        '$.spec.template.spec.containers[0].env: duplicate entry for name = ["ROUTELENS_WORKERS"]',
        '$.spec.template.spec.containers[0].readinessProbe.httpGet.port: true matches none of integer | string',
      ].sort(),
    );
    expect(openapi.validate({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } })).to.deep.equal(['$: no schema for apps/v1 Deploymnet']);
  });
});
