/**
 * The service: builds the component graph from `service.pipelines`, starts it (extensions, exporters,
 * connectors, processors, then receivers) and shuts it down in the reverse order within
 * `service.shutdown_timeout`. Exporters and connectors are shared between the pipelines that list them;
 * processors are instantiated per pipeline, as in the Collector.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Component, ComponentKind, CreateSettings, Host } from '../core/component';
import { isQueryStateSource, type MergedQueryState, type QueryStateHost, type QueryStateSnapshot } from '../core/query';
import type { MetricsConsumer, TracesConsumer } from '../consumer/consumer';
import { ConfigError } from '../core/schema';
import type { ComponentConfig, PipelineConfig, ServiceConfig } from '../config/load';
import { Telemetry } from '../core/telemetry';
import { fanoutMetrics, fanoutTraces } from './fanout';

interface Started {
  kind: ComponentKind;
  id: string;
  component: Component;
}

export class Service implements Host, QueryStateHost {
  readonly telemetry: Telemetry;
  /** Unique per process start (see QueryStateHost). */
  readonly instance: string;
  readonly #config: ServiceConfig;
  readonly #logger: Logger;
  readonly #byKind = new Map<ComponentKind, Map<string, Component>>();
  readonly #order: Started[] = [];
  readonly #traceExporters = new Map<string, Component & TracesConsumer>();
  readonly #metricExporters = new Map<string, Component & MetricsConsumer>();
  readonly #connectors = new Map<string, Component & TracesConsumer & Partial<MetricsConsumer>>();
  readonly #heads = new Map<string, TracesConsumer | MetricsConsumer>();
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
      const next = fanoutTraces(pipelines.filter((p) => p.signal === 'traces').map((p) => this.#head(p) as TracesConsumer));
      this.#register('receiver', id, cc.factory.createTraces(this.#settings(id, 'receiver'), cc.config, next));
    }
  }

  /** The first consumer of a pipeline: its processors chained in front of the fan-out to its exporters. */
  #head(p: PipelineConfig): TracesConsumer | MetricsConsumer {
    const existing = this.#heads.get(p.id);
    if (existing !== undefined) return existing;
    if (this.#building.has(p.id)) throw new ConfigError([{ path: `service.pipelines.${p.id}`, message: 'is part of a cycle through connectors' }]);
    this.#building.add(p.id);
    let head: TracesConsumer | MetricsConsumer;
    if (p.signal === 'traces') {
      const consumers = p.exporters.map((id) => this.#tracesExporterOrConnector(id));
      let next: TracesConsumer = fanoutTraces(consumers);
      for (const procId of [...p.processors].reverse()) {
        const cc = this.#config.processors.get(procId) as ComponentConfig;
        if (cc.factory.kind !== 'processor') continue;
        const instanceId = `${procId}@${p.id}`;
        const proc = cc.factory.createTraces(this.#settings(procId, 'processor'), cc.config, next);
        this.#register('processor', instanceId, proc);
        next = proc;
      }
      head = next;
    } else {
      head = fanoutMetrics(p.exporters.map((id) => (this.#config.connectors.has(id) ? this.#metricsConnector(id) : this.#metricsExporter(id))));
    }
    this.#building.delete(p.id);
    this.#heads.set(p.id, head);
    return head;
  }

  /** A connector listed as an exporter of a metrics pipeline (its factory says it consumes metrics). */
  #metricsConnector(id: string): MetricsConsumer {
    const instance = this.#connector(id);
    if (instance.consumeMetrics === undefined) throw new Error(`connector ${id} does not consume metrics`);
    return instance as MetricsConsumer;
  }

  #tracesExporterOrConnector(id: string): TracesConsumer {
    if (this.#config.connectors.has(id)) return this.#connector(id);
    return this.#tracesExporter(id);
  }

  /** The one instance of a connector, created the first time a pipeline exports to it. */
  #connector(id: string): TracesConsumer & Partial<MetricsConsumer> {
    let instance = this.#connectors.get(id);
    if (instance === undefined) {
      const conn = this.#config.connectors.get(id) as ComponentConfig;
      if (conn.factory.kind !== 'connector') throw new Error('unreachable');
      const fed = this.#config.pipelines.filter((q) => q.receivers.includes(id));
      const traces = fed.filter((q) => q.signal === 'traces').map((q) => this.#head(q) as TracesConsumer);
      const metrics = fed.filter((q) => q.signal === 'metrics').map((q) => this.#head(q) as MetricsConsumer);
      instance = conn.factory.create(this.#settings(id, 'connector'), conn.config, {
        traces: traces.length === 0 ? undefined : fanoutTraces(traces),
        metrics: metrics.length === 0 ? undefined : fanoutMetrics(metrics),
      });
      this.#connectors.set(id, instance);
      this.#register('connector', id, instance);
    }
    return instance;
  }

  #tracesExporter(id: string): TracesConsumer {
    let ex = this.#traceExporters.get(id);
    if (ex === undefined) {
      const cc = this.#config.exporters.get(id) as ComponentConfig;
      if (cc.factory.kind !== 'exporter' || cc.factory.createTraces === undefined) throw new Error(`exporter ${id} does not support traces`);
      ex = cc.factory.createTraces(this.#settings(id, 'exporter'), cc.config);
      this.#traceExporters.set(id, ex);
      this.#register('exporter', id, ex);
    }
    return ex;
  }

  #metricsExporter(id: string): MetricsConsumer {
    let ex = this.#metricExporters.get(id);
    if (ex === undefined) {
      const cc = this.#config.exporters.get(id) as ComponentConfig;
      if (cc.factory.kind !== 'exporter' || cc.factory.createMetrics === undefined) throw new Error(`exporter ${id} does not support metrics`);
      ex = cc.factory.createMetrics(this.#settings(id, 'exporter'), cc.config);
      this.#metricExporters.set(id, ex);
      this.#register('exporter', `${id}#metrics`, ex);
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
  async localQueryStates(): Promise<QueryStateSnapshot[]> {
    return [{ source: this.instance, takenAtMs: Date.now(), states: this.snapshotQueryStates() }];
  }

  /** Each connector's query state by id. */
  snapshotQueryStates(): Record<string, unknown> {
    const states: Record<string, unknown> = {};
    for (const [id, c] of this.components('connector')) if (isQueryStateSource(c)) states[id] = c.snapshotQueryState();
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
