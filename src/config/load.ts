/**
 * Config loading: YAML → `${env:VAR}` substitution → per-component parsing (defaults, unknown keys, value
 * checks) → pipeline references. Every problem is collected and reported at once, each with its YAML path.
 */
import * as fs from 'node:fs';
import * as YAML from 'yaml';
import type { Signal } from '../consumer/consumer';
import { supportedSignals, supports, type AnyFactory } from '../consumer/factory';
import type { ComponentKind } from '../core/component';
import { ConfigError, ConfigErrorList, duration, join, obj, oneOf, type Infer } from '../core/schema';

/** One configured component instance. */
export interface ComponentConfig {
  kind: ComponentKind;
  /** `type` or `type/name` as written in the YAML. */
  id: string;
  type: string;
  factory: AnyFactory;
  config: unknown;
}

export type PipelineSignal = Signal;

export interface PipelineConfig {
  /** `traces`, `traces/name`, `metrics`… */
  id: string;
  signal: PipelineSignal;
  receivers: string[];
  processors: string[];
  exporters: string[];
}

export interface ServiceConfig {
  receivers: Map<string, ComponentConfig>;
  processors: Map<string, ComponentConfig>;
  exporters: Map<string, ComponentConfig>;
  connectors: Map<string, ComponentConfig>;
  extensions: Map<string, ComponentConfig>;
  /** Extensions enabled in `service.extensions`, in order. */
  enabledExtensions: string[];
  pipelines: PipelineConfig[];
  telemetry: TelemetryConfig;
  /** Deadline for draining queues on shutdown, ms. */
  shutdownTimeoutMs: number;
  /** Problems that do not stop start-up (e.g. unset environment variables), logged at start and by `validate`. */
  warnings: string[];
}

const telemetrySchema = obj({
  logs: obj({
    level: oneOf(['debug', 'info', 'warn', 'error'] as const, { default: 'info', doc: 'Log level of routelens itself.' }),
    encoding: oneOf(['json', 'console'] as const, { default: 'json', doc: 'Log encoding.' }),
  }),
});
export type TelemetryConfig = Infer<typeof telemetrySchema>;

const sectionKinds: Record<string, ComponentKind> = {
  receivers: 'receiver',
  processors: 'processor',
  exporters: 'exporter',
  connectors: 'connector',
  extensions: 'extension',
};

/** Factories by kind and type name (aliases included). */
export type Registry = ReadonlyMap<string, AnyFactory>;

export function registryKey(kind: ComponentKind, type: string): string {
  return `${kind}:${type}`;
}

/** Replace `${env:VAR}`, `${env:VAR:-default}` and `${VAR}` in a string; `$$` escapes a dollar. */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv, missing: string[]): string {
  return text.replace(/\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name: string | undefined, def: string | undefined) => {
    if (m === '$$') return '$';
    const v = env[name as string];
    if (v !== undefined && v !== '') return v;
    if (def !== undefined) return def;
    missing.push(name as string);
    return '';
  });
}

function substituteTree(value: unknown, env: NodeJS.ProcessEnv, missing: string[]): unknown {
  if (typeof value === 'string') {
    const whole = /^\$\{(?:env:)?[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/.test(value);
    const s = substituteEnv(value, env, missing);
    if (whole && s !== '') {
      // A value that is exactly one reference takes the YAML type of what it expands to, as in the Collector,
      // but only when that type keeps the text: the Collector hands string fields the original text, so a
      // token "007", "0x1F" or "12345678901234567890" must not come back as "7", "31" or "12345678901234567000".
      // (Number and boolean fields accept those texts as strings anyway.)
      try {
        const typed: unknown = YAML.parse(s);
        if ((typeof typed === 'number' || typeof typed === 'boolean') && String(typed) === s) return typed;
      } catch {
        /* keep the string */
      }
    }
    return s;
  }
  if (Array.isArray(value)) return value.map((v) => substituteTree(v, env, missing));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = substituteTree(v, env, missing);
    return out;
  }
  return value;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parse config text. Throws ConfigError listing every problem. */
export function parseConfig(text: string, registry: Registry, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const issues = new ConfigErrorList();
  let doc: unknown;
  try {
    const parsed = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (parsed.errors.length > 0) {
      throw new ConfigError(parsed.errors.map((e) => ({ path: '(yaml)', message: e.message.split('\n')[0] ?? e.message })));
    }
    doc = parsed.toJS();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([{ path: '(yaml)', message: err instanceof Error ? err.message : String(err) }]);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isMap(doc))
    throw new ConfigError([{ path: '(root)', message: 'expected a map with keys receivers, processors, exporters, connectors, extensions, service' }]);
  const missing: string[] = [];
  const root = substituteTree(doc, env, missing) as Record<string, unknown>;

  const known = [...Object.keys(sectionKinds), 'service'];
  for (const k of Object.keys(root)) {
    if (!known.includes(k)) issues.add(k, `unknown key ${JSON.stringify(k)}; expected one of ${known.join(', ')}`);
  }

  const sections = new Map<ComponentKind, Map<string, ComponentConfig>>();
  for (const [section, kind] of Object.entries(sectionKinds)) {
    const map = new Map<string, ComponentConfig>();
    sections.set(kind, map);
    const raw = root[section];
    if (raw === undefined || raw === null) continue;
    if (!isMap(raw)) {
      issues.add(section, `expected a map of component ids to their settings`);
      continue;
    }
    const types = [...registry.values()].filter((f) => f.kind === kind).map((f) => f.type);
    for (const [id, value] of Object.entries(raw)) {
      const path = join(section, id);
      const m = /^([a-z][a-z0-9_]*)(?:\/([^/\s]+))?$/.exec(id);
      if (m === null) {
        issues.add(path, `invalid component id ${JSON.stringify(id)}; expected "type" or "type/name"`);
        continue;
      }
      const type = m[1] as string;
      const factory = registry.get(registryKey(kind, type));
      if (factory === undefined) {
        issues.add(path, `unknown ${kind} type ${JSON.stringify(type)}; expected one of ${[...new Set(types)].sort().join(', ')}`);
        continue;
      }
      const config = factory.configSchema.parse(value, path, issues);
      map.set(id, { kind, id, type: factory.type, factory, config });
    }
  }

  const service = isMap(root.service) ? root.service : {};
  if (root.service !== undefined && !isMap(root.service)) issues.add('service', 'expected a map with keys extensions, pipelines, telemetry');
  const serviceKeys = ['extensions', 'pipelines', 'telemetry', 'shutdown_timeout'];
  for (const k of Object.keys(service)) {
    if (!serviceKeys.includes(k)) issues.add(join('service', k), `unknown key ${JSON.stringify(k)}; expected one of ${serviceKeys.join(', ')}`);
  }
  const telemetry = telemetrySchema.parse(service.telemetry, 'service.telemetry', issues);
  const shutdownTimeoutMs = duration({ default: '10s' }).parse(service.shutdown_timeout, 'service.shutdown_timeout', issues);

  const extensions = sections.get('extension') as Map<string, ComponentConfig>;
  const enabledExtensions: string[] = [];
  if (service.extensions !== undefined) {
    if (!Array.isArray(service.extensions)) issues.add('service.extensions', 'expected a list of extension ids');
    else
      service.extensions.forEach((e: unknown, i: number) => {
        if (typeof e !== 'string' || !extensions.has(e)) {
          issues.add(
            `service.extensions[${i}]`,
            `references extension ${JSON.stringify(e)} which is not configured in extensions; configured: ${[...extensions.keys()].join(', ') || 'none'}`,
          );
        } else enabledExtensions.push(e);
      });
  }

  const pipelines: PipelineConfig[] = [];
  const rawPipelines = service.pipelines;
  if (!isMap(rawPipelines) || Object.keys(rawPipelines).length === 0) {
    issues.add('service.pipelines', 'expected at least one pipeline, e.g. traces: {receivers: [otlp], exporters: [debug]}');
  } else {
    for (const [pid, raw] of Object.entries(rawPipelines)) {
      const path = join('service.pipelines', pid);
      const m = /^(traces|metrics|logs)(?:\/[^/\s]+)?$/.exec(pid);
      if (m === null) {
        issues.add(path, `invalid pipeline id ${JSON.stringify(pid)}; expected "traces", "metrics", "logs" or "<signal>/<name>"`);
        continue;
      }
      const p: PipelineConfig = { id: pid, signal: m[1] as PipelineSignal, receivers: [], processors: [], exporters: [] };
      if (!isMap(raw)) {
        issues.add(path, 'expected a map with keys receivers, processors, exporters');
        continue;
      }
      for (const k of Object.keys(raw)) {
        if (!['receivers', 'processors', 'exporters'].includes(k))
          issues.add(join(path, k), `unknown key ${JSON.stringify(k)}; expected one of receivers, processors, exporters`);
      }
      const refs = (key: 'receivers' | 'processors' | 'exporters', allowed: Map<string, ComponentConfig>[], what: string): string[] => {
        const list = raw[key];
        if (list === undefined || list === null) return [];
        if (!Array.isArray(list)) {
          issues.add(join(path, key), `expected a list of ${what} ids`);
          return [];
        }
        const out: string[] = [];
        list.forEach((id: unknown, i: number) => {
          const itemPath = `${join(path, key)}[${i}]`;
          if (typeof id !== 'string' || !allowed.some((mm) => mm.has(id))) {
            const defined = allowed.flatMap((mm) => [...mm.keys()]);
            issues.add(itemPath, `references ${what} ${JSON.stringify(id)} which is not defined; defined: ${defined.join(', ') || 'none'}`);
          } else if (out.includes(id)) {
            issues.add(itemPath, `${what} ${JSON.stringify(id)} is listed twice`);
          } else out.push(id);
        });
        return out;
      };
      const connectors = sections.get('connector') as Map<string, ComponentConfig>;
      p.receivers = refs('receivers', [sections.get('receiver') as Map<string, ComponentConfig>, connectors], 'receiver or connector');
      p.processors = refs('processors', [sections.get('processor') as Map<string, ComponentConfig>], 'processor');
      p.exporters = refs('exporters', [sections.get('exporter') as Map<string, ComponentConfig>, connectors], 'exporter or connector');
      if (p.receivers.length === 0) issues.add(join(path, 'receivers'), 'a pipeline needs at least one receiver or connector');
      if (p.exporters.length === 0) issues.add(join(path, 'exporters'), 'a pipeline needs at least one exporter or connector');
      // Every component must support the pipeline's signal (the factory says which it creates).
      const checkSignal = (key: 'receivers' | 'processors' | 'exporters', ids: string[]): void => {
        const role = key === 'receivers' ? 'receiver' : key === 'processors' ? 'processor' : 'exporter';
        ids.forEach((id, i) => {
          const cc = connectors.get(id) ?? sections.get(role)?.get(id);
          if (cc === undefined || supports(cc.factory, role, p.signal)) return;
          const what = cc.kind === 'connector' ? `connector ${JSON.stringify(id)}` : `${role} ${JSON.stringify(id)}`;
          const can = supportedSignals(cc.factory, role);
          const verb = cc.kind === 'connector' ? (role === 'receiver' ? 'produces' : 'consumes') : 'supports';
          issues.add(
            `${join(path, key)}[${i}]`,
            `${what} is in a ${p.signal} pipeline but ${verb} ${can.length === 0 ? 'no signal' : can.join(' and ')}; list it in a ${can.join(' or ')} pipeline instead`,
          );
        });
      };
      checkSignal('receivers', p.receivers);
      checkSignal('processors', p.processors);
      checkSignal('exporters', p.exporters);
      p.exporters.forEach((id, i) => {
        const cc = sections.get('exporter')?.get(id);
        if (cc?.factory.kind !== 'exporter' || !supports(cc.factory, 'exporter', p.signal)) return;
        const problem = cc.factory.checkSignal?.(cc.config, p.signal);
        if (problem !== undefined) issues.add(`${join(path, 'exporters')}[${i}]`, `exporter ${JSON.stringify(id)} ${problem}`);
      });
      pipelines.push(p);
    }
    // A connector must be used as an exporter in one pipeline and as a receiver in another.
    const connectors = sections.get('connector') as Map<string, ComponentConfig>;
    for (const id of connectors.keys()) {
      const asExporter = pipelines.some((p) => p.exporters.includes(id));
      const asReceiver = pipelines.some((p) => p.receivers.includes(id));
      if (asReceiver && !asExporter) issues.add(join('connectors', id), 'is used as a receiver but no pipeline exports to it');
      for (const p of pipelines) {
        if (p.receivers.includes(id) && p.signal === 'traces' && !pipelines.some((q) => q !== p && q.exporters.includes(id))) {
          issues.add(join('service.pipelines', p.id), `receives from connector ${JSON.stringify(id)} but no other pipeline exports to it`);
        }
        if (p.receivers.includes(id) && p.exporters.includes(id)) {
          issues.add(join('service.pipelines', p.id), `uses connector ${JSON.stringify(id)} as both receiver and exporter (a cycle)`);
        }
      }
    }
    for (const cycle of connectorCycles(pipelines, connectors)) {
      issues.add(join('service.pipelines', cycle[0] as string), `is part of a cycle through connectors: ${cycle.join(' → ')}`);
    }
  }

  if (missing.length > 0) {
    // Not an error (the Collector substitutes an empty string), but worth knowing: reported by `validate`.
    issues.add('(env)', `environment variable(s) not set and without default: ${[...new Set(missing)].join(', ')}`);
  }

  // Missing env vars alone are a warning, not a failure.
  const errors = issues.items.filter((i) => i.path !== '(env)');
  if (errors.length > 0) throw new ConfigError(issues.items);
  return {
    receivers: sections.get('receiver') as Map<string, ComponentConfig>,
    processors: sections.get('processor') as Map<string, ComponentConfig>,
    exporters: sections.get('exporter') as Map<string, ComponentConfig>,
    connectors: sections.get('connector') as Map<string, ComponentConfig>,
    extensions,
    enabledExtensions,
    pipelines,
    telemetry,
    shutdownTimeoutMs,
    warnings: issues.items.filter((i) => i.path === '(env)').map((i) => i.message),
  };
}

/**
 * Loops through two or more pipelines joined by connectors (a loop within one pipeline is reported on its own),
 * each once, as the way round from the first of its pipelines in config order: `traces/a → c1 → traces/b → c2 →
 * traces/a`. The service could not build them.
 */
function connectorCycles(pipelines: readonly PipelineConfig[], connectors: ReadonlyMap<string, unknown>): string[][] {
  const out: string[][] = [];
  const inCycle = new Set<string>();
  pipelines.forEach((root, r) => {
    if (inCycle.has(root.id)) return;
    // Depth first from `root` through pipelines after it in config order, so each loop is found from its first.
    const way: string[] = [root.id];
    const seen = new Set<PipelineConfig>([root]);
    const back = (p: PipelineConfig): boolean => {
      for (const c of p.exporters) {
        if (!connectors.has(c)) continue;
        for (const q of pipelines.slice(r)) {
          if (q === p || !q.receivers.includes(c)) continue;
          if (q === root) {
            way.push(c, root.id);
            return true;
          }
          if (seen.has(q)) continue;
          seen.add(q);
          way.push(c, q.id);
          if (back(q)) return true;
          way.length -= 2;
        }
      }
      return false;
    };
    if (!back(root)) return;
    out.push(way);
    for (let i = 0; i < way.length; i += 2) inCycle.add(way[i] as string);
  });
  return out;
}

/** Read and parse a config file. Throws ConfigError (path `(file)` when unreadable). */
export function loadConfigFile(file: string, registry: Registry, env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  return parseConfig(text, registry, env);
}
