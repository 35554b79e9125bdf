/** Resource detectors: each reads the collector's environment and returns attributes in a fixed order. */
import type { ResourceDetectionConfig } from './config';

export type Attr = readonly [string, string];

/** A problem found while detecting (an unparsable entry), reported once at start. */
export interface DetectionWarning {
  detector: string;
  message: string;
}

/**
 * Parse `OTEL_RESOURCE_ATTRIBUTES` (`key1=value1,key2=value2`, values percent-encoded). Malformed entries are
 * skipped and reported; the last of duplicate keys wins, as in the OpenTelemetry SDKs.
 */
export function parseResourceAttributes(text: string, warnings: DetectionWarning[] = []): Attr[] {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq).trim();
    if (eq < 0 || key === '') {
      warnings.push({ detector: 'env', message: `ignored OTEL_RESOURCE_ATTRIBUTES entry ${JSON.stringify(part.trim())}: expected key=value` });
      continue;
    }
    const raw = part.slice(eq + 1).trim();
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      warnings.push({ detector: 'env', message: `ignored OTEL_RESOURCE_ATTRIBUTES entry ${JSON.stringify(key)}: invalid percent-encoding` });
      continue;
    }
    out.delete(key);
    out.set(key, value);
  }
  return [...out];
}

/** Run the configured detectors; when two give the same key the first detector wins. */
export function detect(cfg: ResourceDetectionConfig, env: NodeJS.ProcessEnv, warnings: DetectionWarning[] = []): Attr[] {
  const out = new Map<string, string>();
  const put = (attrs: readonly Attr[]): void => {
    for (const [k, v] of attrs) if (!out.has(k) && v !== '') out.set(k, v);
  };
  for (const d of cfg.detectors) {
    if (d === 'env') {
      put(parseResourceAttributes(env['OTEL_RESOURCE_ATTRIBUTES'] ?? '', warnings));
    } else {
      const c = cfg.k8s_downward;
      const attrs: Attr[] = [];
      const from = (attr: string, name: string): void => {
        const v = env[name];
        if (v !== undefined && v !== '') attrs.push([attr, v]);
      };
      from('k8s.pod.name', c.pod_name_env_var);
      from('k8s.namespace.name', c.namespace_env_var);
      from('k8s.node.name', c.node_name_env_var);
      from('k8s.pod.uid', c.pod_uid_env_var);
      from('k8s.pod.ip', c.pod_ip_env_var);
      if (attrs.length === 0) {
        warnings.push({
          detector: 'k8s_downward',
          message: `none of ${[c.pod_name_env_var, c.namespace_env_var, c.node_name_env_var, c.pod_uid_env_var, c.pod_ip_env_var].join(', ')} is set`,
        });
      }
      put(attrs);
    }
  }
  return [...out];
}
