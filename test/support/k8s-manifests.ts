/**
 * Consistency checks of Kubernetes manifests that run routelens (the examples and the Helm chart's rendered output)
 * against the routelens configs they carry: each config is valid; the receivers and the query endpoint listen on
 * declared container ports that Services and probes point at; every environment variable a config reads is defined
 * (node names from the downward API); the service account is bound to a ClusterRole that grants what k8sattributes
 * needs for what it extracts, and no more than all the configs together need; the image is the one
 * scripts/build-image.sh builds, run restricted.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { defaultRegistry } from '../../src/components';
import { splitHostPort } from '../../src/core/schema';
import { parseConfig, type ServiceConfig } from '../../src/config/load';
import { resolverRbac, type ResolverConfig } from '../../src/discovery/config';
import { requiredRbac, type K8sAttributesConfig } from '../../src/processors/k8sattributes/config';
import { k8sAttributesFactory } from '../../src/processors/k8sattributes/factory';
import type { ResourceDetectionConfig } from '../../src/processors/resourcedetection/config';
import { resourceDetectionFactory } from '../../src/processors/resourcedetection/factory';

export type Obj = Record<string, any>;

/** The documents of a multi-document YAML text, each tagged with `__file` (where it came from). */
export function parseManifests(text: string, file: string): Obj[] {
  const docs: Obj[] = [];
  for (const d of YAML.parseAllDocuments(text)) {
    expect(d.errors, file).to.deep.equal([]);
    const o = d.toJS() as Obj | null;
    if (o !== null) docs.push({ ...o, __file: file });
  }
  return docs;
}
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
}

function portNumber(c: Container, port: string | number): number | undefined {
  if (typeof port === 'number') return c.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

export interface Workload {
  doc: Obj;
  namespace: string;
  podSpec: Obj;
  podLabels: Record<string, string>;
  container: Container;
  config: ServiceConfig;
  configText: string;
}

export function routelensWorkloads(docs: Obj[]): Workload[] {
  const out: Workload[] = [];
  for (const doc of docs.filter((d) => d['kind'] === 'Deployment' || d['kind'] === 'DaemonSet' || d['kind'] === 'StatefulSet')) {
    const podSpec = doc['spec']['template']['spec'] as Obj;
    for (const c of podSpec['containers'] as Container[]) {
      const i = c.args?.indexOf('--config') ?? -1;
      if (i < 0) continue;
      const where = `${doc['__file']} ${doc['kind']}/${doc['metadata']['name']} container ${c.name}`;
      const configPath = c.args?.[i + 1] as string;
      const mount = c.volumeMounts?.find((m) => path.posix.dirname(configPath) === m.mountPath);
      expect(mount, `${where}: a volume mounted at ${path.posix.dirname(configPath)}`).to.not.equal(undefined);
      const volume = (podSpec['volumes'] as Obj[]).find((v) => v['name'] === mount?.name);
      const cmName = volume?.['configMap']?.['name'] as string | undefined;
      const namespace = doc['metadata']['namespace'] as string;
      const cm = docs.find((d) => d['kind'] === 'ConfigMap' && d['metadata']['name'] === cmName && d['metadata']['namespace'] === namespace);
      expect(cm, `${where}: ConfigMap ${cmName} in ${namespace}`).to.not.equal(undefined);
      const configText = cm?.['data']?.[path.posix.basename(configPath)] as string | undefined;
      expect(configText, `${where}: key ${path.posix.basename(configPath)} in ConfigMap ${cmName}`).to.be.a('string');
      // Every ${env:VAR} the config reads is defined in the container.
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) env[e.name] = e.value ?? `<${e.valueFrom?.fieldRef?.fieldPath ?? 'ref'}>`;
      for (const m of (configText as string).matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
        if (m[2] === undefined) expect(env, `${where}: env var ${m[1]} used by the config`).to.have.property(m[1] as string);
      }
      const registry = defaultRegistry([k8sAttributesFactory, resourceDetectionFactory]);
      let config: ServiceConfig | undefined;
      expect(() => {
        config = parseConfig(configText as string, registry, env);
      }, where).to.not.throw();
      out.push({
        doc,
        namespace,
        podSpec,
        podLabels: doc['spec']['template']['metadata']['labels'] as Record<string, string>,
        container: c,
        config: config as ServiceConfig,
        configText: configText as string,
      });
    }
  }
  return out;
}

export function processorsOf<T>(w: Workload, type: string): T[] {
  return [...w.config.processors.values()].filter((p) => p.type === type).map((p) => p.config as T);
}

/** Receivers and the query endpoint listen on declared container ports; Services and probes point at them. */
export function checkPortsAndProbes(docs: Obj[], workloads: Workload[]): void {
  for (const w of workloads) {
    const where = `${w.doc['kind']}/${w.doc['metadata']['name']}`;
    const listen: number[] = [];
    for (const r of w.config.receivers.values()) {
      const protocols = (r.config as { protocols?: Record<string, { endpoint: string } | undefined> }).protocols ?? {};
      for (const p of Object.values(protocols)) if (p !== undefined) listen.push(splitHostPort(p.endpoint)?.port ?? -1);
    }
    const query = w.config.extensions.get('routequery')?.config as { endpoint: string } | undefined;
    const queryPort = query === undefined ? undefined : splitHostPort(query.endpoint);
    // Ports reached from outside the pod are declared and bound to all interfaces.
    const services = docs.filter(
      (d) =>
        d['kind'] === 'Service' &&
        d['metadata']['namespace'] === w.namespace &&
        Object.entries(d['spec']['selector'] as Record<string, string>).every(([k, v]) => w.podLabels[k] === v),
    );
    for (const s of services) {
      for (const sp of s['spec']['ports'] as Obj[]) {
        const n = portNumber(w.container, sp['targetPort'] as string | number);
        expect(n, `${where}: Service ${s['metadata']['name']} targetPort ${sp['targetPort']}`).to.not.equal(undefined);
        const listens = listen.includes(n as number) || queryPort?.port === n;
        expect(listens, `${where}: nothing in the config listens on ${n}`).to.equal(true);
      }
    }
    for (const r of w.config.receivers.values()) {
      const protocols = (r.config as { protocols?: Record<string, { endpoint: string } | undefined> }).protocols ?? {};
      for (const p of Object.values(protocols)) {
        if (p === undefined) continue;
        const hp = splitHostPort(p.endpoint);
        if (services.length > 0) {
          expect(hp?.host, `${where}: receiver behind a Service must listen on all interfaces`).to.equal('0.0.0.0');
          expect(portNumber(w.container, hp?.port as number), `${where}: containerPort ${hp?.port}`).to.not.equal(undefined);
        }
      }
    }
    for (const probe of [w.container.readinessProbe, w.container.livenessProbe]) {
      if (probe?.httpGet === undefined) continue;
      expect(probe.httpGet.path).to.equal('/healthz');
      expect(portNumber(w.container, probe.httpGet.port), `${where}: probe port`).to.equal(queryPort?.port);
      expect(queryPort?.host, `${where}: the kubelet probes the pod IP`).to.equal('0.0.0.0');
    }
  }
}

/** The node name for filter.node_from_env_var and resourcedetection's downward-API variables are defined; returns how many were checked. */
export function checkDownwardEnv(workloads: Workload[]): number {
  const fieldOf = (w: Workload, name: string): string | undefined => w.container.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
  let checked = 0;
  for (const w of workloads) {
    for (const k of processorsOf<K8sAttributesConfig>(w, 'k8sattributes')) {
      if (k.filter.node_from_env_var !== undefined) {
        expect(fieldOf(w, k.filter.node_from_env_var)).to.equal('spec.nodeName');
        checked++;
      }
    }
    for (const r of processorsOf<ResourceDetectionConfig>(w, 'resourcedetection')) {
      if (!r.detectors.includes('k8s_downward')) continue;
      const d = r.k8s_downward;
      expect(fieldOf(w, d.pod_name_env_var)).to.equal('metadata.name');
      expect(fieldOf(w, d.namespace_env_var)).to.equal('metadata.namespace');
      expect(fieldOf(w, d.node_name_env_var)).to.equal('spec.nodeName');
      expect(fieldOf(w, d.pod_uid_env_var)).to.equal('metadata.uid');
      expect(fieldOf(w, d.pod_ip_env_var)).to.equal('status.podIP');
      checked++;
    }
  }
  return checked;
}

/**
 * Each k8sattributes workload is bound to a ClusterRole covering what it extracts, and each role grants exactly
 * what its workloads' configs need together; returns how many workloads were checked.
 */
export function checkRbac(docs: Obj[], workloads: Workload[]): number {
  const key = (g: string, r: string, v: string): string => `${g}/${r}:${v}`;
  const grantsOf = (roleName: string): Set<string> => {
    const role = docs.find((d) => d['kind'] === 'ClusterRole' && d['metadata']['name'] === roleName);
    expect(role, `ClusterRole ${roleName}`).to.not.equal(undefined);
    const out = new Set<string>();
    for (const rule of role?.['rules'] as Obj[]) {
      for (const g of rule['apiGroups'] as string[])
        for (const r of rule['resources'] as string[]) for (const v of rule['verbs'] as string[]) out.add(key(g, r, v));
    }
    return out;
  };
  const neededByRole = new Map<string, Set<string>>();
  let checked = 0;
  for (const w of workloads) {
    const where = `${w.doc['kind']}/${w.doc['metadata']['name']}`;
    const needs = processorsOf<K8sAttributesConfig>(w, 'k8sattributes').flatMap((k) => {
      if (!k.passthrough) expect(k.auth_type, `${where}: in-cluster auth`).to.equal('serviceAccount');
      return requiredRbac(k);
    });
    if (needs.length === 0) continue;
    checked++;
    expect(w.podSpec['automountServiceAccountToken'], `${where}: token mounted`).to.not.equal(false);
    const sa = w.podSpec['serviceAccountName'] as string | undefined;
    expect(sa, `${where}: serviceAccountName`).to.be.a('string');
    expect(
      docs.some((d) => d['kind'] === 'ServiceAccount' && d['metadata']['name'] === sa && d['metadata']['namespace'] === w.namespace),
      `${where}: ServiceAccount ${sa}`,
    ).to.equal(true);
    const bindings = docs.filter(
      (d) =>
        d['kind'] === 'ClusterRoleBinding' &&
        (d['subjects'] as Obj[]).some((s) => s['kind'] === 'ServiceAccount' && s['name'] === sa && s['namespace'] === w.namespace),
    );
    expect(bindings, `${where}: ClusterRoleBinding for ${sa}`).to.have.length.greaterThan(0);
    const granted = new Set<string>();
    for (const b of bindings) {
      const role = b['roleRef']['name'] as string;
      for (const g of grantsOf(role)) granted.add(g);
      const needed = neededByRole.get(role) ?? new Set<string>();
      for (const n of needs) for (const v of n.verbs) needed.add(key(n.apiGroup, n.resource, v));
      neededByRole.set(role, needed);
    }
    for (const n of needs) for (const v of n.verbs) expect([...granted], where).to.include(key(n.apiGroup, n.resource, v));
  }
  for (const [role, needed] of neededByRole) {
    expect([...grantsOf(role)].sort(), `ClusterRole ${role} grants exactly what the configs need`).to.deep.equal([...needed].sort());
  }
  return checked;
}

/** The `resolver` sections of a workload's config: routequery's `cluster` and each loadbalancing exporter's. */
export function resolversOf(w: Workload): { where: string; resolver: ResolverConfig }[] {
  const out: { where: string; resolver: ResolverConfig }[] = [];
  for (const [id, e] of w.config.extensions) {
    const cluster = (e.config as { cluster?: { resolver: ResolverConfig } }).cluster;
    if (e.type === 'routequery' && cluster !== undefined) out.push({ where: `extensions.${id}.cluster`, resolver: cluster.resolver });
  }
  for (const [id, e] of w.config.exporters)
    if (e.type === 'loadbalancing') out.push({ where: `exporters.${id}`, resolver: (e.config as { resolver: ResolverConfig }).resolver });
  return out;
}

/**
 * Each workload whose config resolves peers from EndpointSlices is bound (RoleBinding) to a Role in the Service's
 * namespace granting get/list/watch on endpointslices, and each such Role grants exactly what its workloads need;
 * returns how many resolvers were checked.
 */
export function checkEndpointSliceRbac(docs: Obj[], workloads: Workload[]): number {
  const key = (g: string, r: string, v: string): string => `${g}/${r}:${v}`;
  const neededByRole = new Map<string, Set<string>>();
  let checked = 0;
  for (const w of workloads) {
    const sa = w.podSpec['serviceAccountName'] as string | undefined;
    for (const { where, resolver } of resolversOf(w)) {
      for (const need of resolverRbac(resolver)) {
        checked++;
        const at = `${w.doc['kind']}/${w.doc['metadata']['name']} ${where}`;
        expect(resolver.k8s?.auth_type, `${at}: in-cluster auth`).to.equal('serviceAccount');
        const ns = need.namespace ?? w.namespace;
        const bindings = docs.filter(
          (d) =>
            d['kind'] === 'RoleBinding' &&
            d['metadata']['namespace'] === ns &&
            d['roleRef']['kind'] === 'Role' &&
            (d['subjects'] as Obj[]).some((s) => s['kind'] === 'ServiceAccount' && s['name'] === sa && s['namespace'] === w.namespace),
        );
        expect(bindings, `${at}: a RoleBinding in ${ns} for ${sa}`).to.have.length.greaterThan(0);
        const granted = new Set<string>();
        for (const b of bindings) {
          const role = docs.find((d) => d['kind'] === 'Role' && d['metadata']['name'] === b['roleRef']['name'] && d['metadata']['namespace'] === ns);
          expect(role, `${at}: Role ${b['roleRef']['name']} in ${ns}`).to.not.equal(undefined);
          const roleKey = `${ns}/${role?.['metadata']['name']}`;
          for (const rule of role?.['rules'] as Obj[])
            for (const g of rule['apiGroups'] as string[])
              for (const r of rule['resources'] as string[]) for (const v of rule['verbs'] as string[]) granted.add(key(g, r, v));
          const needed = neededByRole.get(roleKey) ?? new Set<string>();
          for (const v of need.verbs) needed.add(key(need.apiGroup, need.resource, v));
          neededByRole.set(roleKey, needed);
        }
        for (const v of need.verbs) expect([...granted], at).to.include(key(need.apiGroup, need.resource, v));
      }
    }
  }
  for (const [roleKey, needed] of neededByRole) {
    const [ns, name] = roleKey.split('/');
    const role = docs.find((d) => d['kind'] === 'Role' && d['metadata']['name'] === name && d['metadata']['namespace'] === ns) as Obj;
    const grants = (role['rules'] as Obj[]).flatMap((rule) =>
      (rule['apiGroups'] as string[]).flatMap((g) => (rule['resources'] as string[]).flatMap((r) => (rule['verbs'] as string[]).map((v) => key(g, r, v)))),
    );
    expect(grants.sort(), `Role ${roleKey} grants exactly what the resolvers need`).to.deep.equal([...needed].sort());
  }
  return checked;
}

/** The version scripts/build-image.sh tags the image with (package.json). */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { version: string }).version;
}

/** Every routelens container runs `image` (default: what scripts/build-image.sh builds), restricted as the container tests run it. */
export function checkImage(workloads: Workload[], image = `localhost/routelens:${packageVersion()}`): void {
  for (const w of workloads) {
    const c = w.container as Container & { image?: string; imagePullPolicy?: string; securityContext?: Obj };
    const where = `${w.doc['kind']}/${w.doc['metadata']['name']}`;
    expect(c.image, where).to.equal(image);
    expect(c.imagePullPolicy, where).to.equal('IfNotPresent');
    expect(c.securityContext, where).to.deep.equal({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  }
}
