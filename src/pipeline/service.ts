/**
 * The service: builds the component graph from `service.pipelines`, starts it (extensions, exporters,
 * connectors, processors, then receivers) and shuts it down in the reverse order within
 * `service.shutdown_timeout`. Exporters and connectors are shared between the pipelines that list them;
 * processors are instantiated per pipeline, as in the Collector.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Component, ComponentKind, CreateSettings, Host } from '../core/component';
import { isQueryStateSource, type MergedQueryState, type QueryHint, type QueryStateHost, type QueryStateSnapshot } from '../core/query';
import type { AnyConsumer, LogsConsumer, MetricsConsumer, Signal, SignalConsumers, TracesConsumer } from '../consumer/consumer';
import type { ExporterFactory, ProcessorFactory } from '../consumer/factory';
import { ConfigError } from '../core/schema';
import type { ComponentConfig, PipelineConfig, ServiceConfig } from '../config/load';
import { Telemetry } from '../core/telemetry';
import { fanout, fanoutOrNone } from './fanout';

interface Started {
  kind: ComponentKind;
  id: string;
  component: Component;
}

type Create = (settings: CreateSettings, config: unknown, next?: AnyConsumer) => (Component & AnyConsumer) | undefined;

/** The factory function that makes a processor or exporter for `signal` (undefined: not supported). */
function creator(factory: ProcessorFactory<unknown> | ExporterFactory<unknown>, signal: Signal): Create | undefined {
  const f = signal === 'traces' ? factory.createTraces : signal === 'metrics' ? factory.createMetrics : factory.createLogs;
  return f === undefined ? undefined : (f.bind(factory) as Create);
}

export class Service implements Host, QueryStateHost {
  readonly telemetry: Telemetry;
  /** Unique per process start (see QueryStateHost). */
  readonly instance: string;
  readonly #config: ServiceConfig;
  readonly #logger: Logger;
  readonly #byKind = new Map<ComponentKind, Map<string, Component>>();
  readonly #order: Started[] = [];
  /** Exporters by `id#signal`: one instance per signal, shared by the pipelines of that signal. */
  readonly #exporters = new Map<string, Component & AnyConsumer>();
  readonly #connectors = new Map<string, Component & AnyConsumer>();
  readonly #heads = new Map<string, AnyConsumer>();
  readonly #building = new Set<string>();
  #running = false;
  #stopped = false;

  constructor(config: ServiceConfig, opts: { logger: Logger; telemetry?: Telemetry; instance?: string }) {
    this.#config = config;
    this.#logger = opts.logger;
    this.instance = opts.instance ?? randomUUID();
    this.telemetry = opts.telemetry ?? new Telemetry();
    for (const k of ['receiver', 'processor', 'exporter', 'connector', 'extension'] as const) this.#byKind.set(k, new Map());
    this.#build();
  }

  #settings(id: string, kind: ComponentKind): CreateSettings {
    return { id, logger: this.#logger.child({ [kind]: id }), telemetry: this.telemetry };
  }

  #register(kind: ComponentKind, id: string, component: Component): void {
    (this.#byKind.get(kind) as Map<string, Component>).set(id, component);
    this.#order.push({ kind, id, component });
  }

  #build(): void {
    const c = this.#config;
    for (const id of c.enabledExtensions) {
      const cc = c.extensions.get(id) as ComponentConfig;
      if (cc.factory.kind !== 'extension') continue;
      this.#register('extension', id, cc.factory.create(this.#settings(id, 'extension'), cc.config));
    }
    for (const p of c.pipelines) this.#head(p);
    for (const [id, cc] of c.receivers) {
      const pipelines = c.pipelines.filter((p) => p.receivers.includes(id));
      if (pipelines.length === 0) {
        this.#logger.warn({ receiver: id }, 'Receiver is configured but not used in any pipeline');
        continue;
      }
      if (cc.factory.kind !== 'receiver') continue;
      this.#register('receiver', id, cc.factory.create(this.#settings(id, 'receiver'), cc.config, this.#feeds(pipelines)));
    }
  }

  /** The consumer of each signal for a receiver or connector listed in `pipelines`. */
  #feeds(pipelines: readonly PipelineConfig[]): SignalConsumers {
    const heads = (signal: Signal): AnyConsumer[] => pipelines.filter((p) => p.signal === signal).map((p) => this.#head(p));
    return {
      traces: fanoutOrNone(heads('traces') as TracesConsumer[]),
      metrics: fanoutOrNone(heads('metrics') as MetricsConsumer[]),
      logs: fanoutOrNone(heads('logs') as LogsConsumer[]),
    };
  }

  /** The first consumer of a pipeline: its processors chained in front of the fan-out to its exporters. */
  #head(p: PipelineConfig): AnyConsumer {
    const existing = this.#heads.get(p.id);
    if (existing !== undefined) return existing;
    if (this.#building.has(p.id)) throw new ConfigError([{ path: `service.pipelines.${p.id}`, message: 'is part of a cycle through connectors' }]);
    this.#building.add(p.id);
    let next = fanout(p.exporters.map((id) => this.#exporterOrConnector(id, p.signal)));
    for (const procId of [...p.processors].reverse()) {
      const cc = this.#config.processors.get(procId) as ComponentConfig;
      if (cc.factory.kind !== 'processor') continue;
      const create = creator(cc.factory, p.signal);
      // The loader refuses a processor in a pipeline of a signal it does not support.
      if (create === undefined) throw new Error(`processor ${procId} does not support ${p.signal}`);
      const proc = create(this.#settings(procId, 'processor'), cc.config, next) as Component & AnyConsumer;
      this.#register('processor', `${procId}@${p.id}`, proc);
      next = proc;
    }
    this.#building.delete(p.id);
    this.#heads.set(p.id, next);
    return next;
  }

  #exporterOrConnector(id: string, signal: Signal): AnyConsumer {
    const conn = this.#config.connectors.get(id);
    if (conn !== undefined) {
      let instance = this.#connectors.get(id);
      if (instance === undefined) {
        if (conn.factory.kind !== 'connector') throw new Error('unreachable');
        const fed = this.#config.pipelines.filter((q) => q.receivers.includes(id));
        instance = conn.factory.create(this.#settings(id, 'connector'), conn.config, this.#feeds(fed));
        this.#connectors.set(id, instance);
        this.#register('connector', id, instance);
      }
      return instance;
    }
    const key = `${id}#${signal}`;
    let ex = this.#exporters.get(key);
    if (ex === undefined) {
      const cc = this.#config.exporters.get(id) as ComponentConfig;
      const create = cc.factory.kind === 'exporter' ? creator(cc.factory, signal) : undefined;
      if (create === undefined) throw new Error(`exporter ${id} does not support ${signal}`);
      ex = create(this.#settings(id, 'exporter'), cc.config) as Component & AnyConsumer;
      this.#exporters.set(key, ex);
      // The traces instance keeps the plain id (health and tests find it by it); the others are `id#signal`.
      this.#register('exporter', signal === 'traces' ? id : key, ex);
    }
    return ex;
  }

  // ---- Host -------------------------------------------------------------------------------------------

  getExtension(id: string): Component | undefined {
    return this.#byKind.get('extension')?.get(id);
  }

  components(kind: ComponentKind): ReadonlyMap<string, Component> {
    return this.#byKind.get(kind) as Map<string, Component>;
  }

  healthy(): boolean {
    if (!this.#running) return false;
    return this.#order.every((s) => s.component.healthy?.() !== false);
  }

  /** This process's query state: one snapshot holding each connector's (QueryStateSource). */
  async localQueryStates(query?: QueryHint): Promise<QueryStateSnapshot[]> {
    return [{ source: this.instance, takenAtMs: Date.now(), states: this.snapshotQueryStates(query) }];
  }

  /** Each connector's query state by id. */
  snapshotQueryStates(query?: QueryHint): Record<string, unknown> {
    const states: Record<string, unknown> = {};
    for (const [id, c] of this.components('connector')) if (isQueryStateSource(c)) states[id] = c.snapshotQueryState(query);
    return states;
  }

  mergeQueryStates(id: string, snapshots: readonly unknown[]): MergedQueryState | undefined {
    const cc = this.#config.connectors.get(id);
    if (cc?.factory.kind !== 'connector' || cc.factory.mergeQueryStates === undefined) return undefined;
    return cc.factory.mergeQueryStates(cc.config, snapshots);
  }

  /** A running receiver by id (tests use it to find bound ports). */
  receiver<T extends Component = Component>(id: string): T | undefined {
    return this.#byKind.get('receiver')?.get(id) as T | undefined;
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  static readonly startOrder: ComponentKind[] = ['extension', 'exporter', 'connector', 'processor', 'receiver'];

  async start(): Promise<void> {
    const started: Started[] = [];
    try {
      for (const kind of Service.startOrder) {
        for (const s of this.#order.filter((o) => o.kind === kind)) {
          await s.component.start(this);
          started.push(s);
        }
      }
    } catch (err) {
      // Leave nothing half-running.
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 2000);
      for (const s of started.reverse()) await s.component.shutdown(ac.signal).catch(() => undefined);
      clearTimeout(t);
      throw err;
    }
    this.#running = true;
  }

  /** Stop receivers first, then processors, connectors, exporters (draining queues), extensions. */
  async shutdown(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.#config.shutdownTimeoutMs);
    try {
      for (const kind of [...Service.startOrder].reverse()) {
        const group = this.#order.filter((o) => o.kind === kind);
        await Promise.all(
          group.map((s) =>
            s.component.shutdown(ac.signal).catch((err: unknown) => this.#logger.error({ [s.kind]: s.id, err: String(err) }, 'Component failed to shut down')),
          ),
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** One line per pipeline for the start-up log. */
  summary(): Record<string, string> {
    return pipelineSummary(this.#config);
  }
}

/** One line per pipeline (`receivers -> processors -> exporters`) for start-up logs. */
export function pipelineSummary(config: ServiceConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of config.pipelines) out[p.id] = `${p.receivers.join(',')} -> ${p.processors.join(',') || '(none)'} -> ${p.exporters.join(',')}`;
  return out;
}
