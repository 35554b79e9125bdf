/**
 * The `resolver` section shared by the `loadbalancing` exporter and the routequery extension's `cluster`, in the
 * Collector's loadbalancing exporter shape: exactly one of `static`, `dns` and `k8s`.
 */
import { bool, duration, list, num, obj, oneOf, optStr, optional, refine, splitHostPort, str, type Field, type Infer } from '../core/schema';

function portField(defaultPort: number | undefined, doc: string): Field<number | undefined> {
  const f = num({ min: 1, max: 65535, integer: true, doc });
  if (defaultPort === undefined) return { ...f, parse: (raw, path, issues) => (raw === undefined || raw === null ? undefined : f.parse(raw, path, issues)) };
  return num({ default: defaultPort, min: 1, max: 65535, integer: true, doc });
}

function portsField(defaultPort: number | undefined, doc: string): Field<number[]> {
  const item = num({ min: 1, max: 65535, integer: true });
  return list(item, { unique: true, doc, ...(defaultPort === undefined ? {} : { default: [defaultPort] }) });
}

/**
 * The resolver schema. `defaultPort` is the port the DNS and Kubernetes resolvers add to the addresses they find
 * (4317 for the loadbalancing exporter); without one, an absent port means the caller's own (the routequery
 * extension's listening port).
 */
export function resolverSchema(o: { defaultPort: number | undefined; portDoc: string }) {
  const hostPort = refine(str({ nonEmpty: true }), (v, path, issues) => {
    if (splitHostPort(v) === undefined || splitHostPort(v)?.host === '') issues.add(path, `invalid value ${JSON.stringify(v)}; expected "host:port"`);
  });
  return refine(
    obj(
      {
        static: optional(
          obj({
            hostnames: list(hostPort, { minItems: 1, unique: true, doc: 'The peers, `host:port` each.' }),
          }),
        ),
        dns: optional(
          obj({
            hostname: str({ nonEmpty: true, doc: 'Name whose A and AAAA records are the peers (a headless Service: `name.namespace.svc.cluster.local`).' }),
            port: portField(o.defaultPort, o.portDoc),
            interval: duration({ default: '5s', min: '100ms', doc: 'How often the name is resolved again.' }),
            timeout: duration({ default: '1s', min: '1ms', doc: 'Deadline of one resolution; on failure the last answer is kept.' }),
          }),
        ),
        k8s: optional(
          obj({
            service: str({
              nonEmpty: true,
              doc: "Service whose EndpointSlices are watched, `name.namespace` (without the namespace: routelens's own, from the service account, else `default`).",
            }),
            ports: portsField(o.defaultPort, o.portDoc),
            timeout: duration({ default: '1s', min: '1ms', doc: 'Deadline of each list request to the API server.' }),
            return_hostnames: bool({
              default: false,
              doc: "Peers as `hostname.service.namespace` (the endpoints' hostnames: a StatefulSet behind a headless Service) instead of IP addresses.",
            }),
            auth_type: oneOf(['serviceAccount', 'kubeConfig', 'none'], {
              default: 'serviceAccount',
              doc: "How to reach the API server: the pod's service account (in-cluster), a kubeconfig, or the in-cluster address without credentials.",
            }),
            kube_config_path: optStr({ doc: 'kubeconfig file (auth_type kubeConfig). Default $KUBECONFIG, then ~/.kube/config.' }),
            context: optStr({ doc: 'kubeconfig context (auth_type kubeConfig). Default the current context.' }),
          }),
        ),
      },
      { doc: 'Where the peers are: exactly one of `static`, `dns`, `k8s`.' },
    ),
    (v, path, issues) => {
      const given = (['static', 'dns', 'k8s'] as const).filter((k) => v[k] !== undefined);
      if (given.length === 0) issues.add(path, 'needs one of static, dns, k8s');
      if (given.length > 1) issues.add(path, `takes one resolver, got ${given.join(' and ')}`);
      if (v.k8s !== undefined) {
        const parts = v.k8s.service.split('.');
        if (parts.length > 2 || parts.some((p) => !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p)))
          issues.add(`${path}.k8s.service`, `invalid value ${JSON.stringify(v.k8s.service)}; expected "name" or "name.namespace" (DNS labels)`);
        if (v.k8s.auth_type !== 'kubeConfig') {
          if (v.k8s.kube_config_path !== undefined) issues.add(`${path}.k8s.kube_config_path`, 'only used with auth_type: kubeConfig');
          if (v.k8s.context !== undefined) issues.add(`${path}.k8s.context`, 'only used with auth_type: kubeConfig');
        }
      }
    },
  );
}

export type ResolverConfig = Infer<ReturnType<typeof resolverSchema>>;

/**
 * The Kubernetes permissions a resolver needs: get, list, watch on the EndpointSlices of its Service's namespace
 * (`undefined` namespace: routelens's own), or nothing for `static` and `dns`.
 */
export function resolverRbac(config: ResolverConfig): { apiGroup: string; resource: string; verbs: readonly string[]; namespace: string | undefined }[] {
  if (config.k8s === undefined) return [];
  return [{ apiGroup: 'discovery.k8s.io', resource: 'endpointslices', verbs: ['get', 'list', 'watch'], namespace: config.k8s.service.split('.')[1] }];
}
