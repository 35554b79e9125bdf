/**
 * The `routelatency` connector: listed as an exporter of a traces pipeline (as spanmetrics is), it records
 * every span of the configured kinds into the RouteStore and passes the batch on unchanged to the traces
 * pipelines it feeds, if any. The routequery extension serves its store under /api/v1.
 */
import type { Component, ConnectorFactory, CreateSettings, MetricsConsumer, PipelineContext, TracesConsumer } from '../../core/component';
import type { TraceBatch } from '../../pdata/trace-batch';
import type { RouteQueryProvider } from '../../extensions/routequery/provider';
import { routeLatencyConfigSchema, type RouteLatencyConfig } from './config';
import { handleQuery } from './query';
import { RouteStore, routeStoreOptions, type Clock } from './store';

export class RouteLatencyConnector implements Component, TracesConsumer {
  readonly store: RouteStore;
  readonly routeQuery: RouteQueryProvider;
  readonly #next: { traces: TracesConsumer | undefined; metrics: MetricsConsumer | undefined };
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(settings: CreateSettings, config: RouteLatencyConfig, next: { traces: TracesConsumer | undefined; metrics: MetricsConsumer | undefined }, clock?: Clock) {
    this.#next = next;
    this.store = new RouteStore(routeStoreOptions(config, clock));
    this.routeQuery = { handleQuery: (pathname, params) => handleQuery(this.store, pathname, params) };
    const t = settings.telemetry;
    const labels = { connector: settings.id };
    t.gauge('routelens_routes', 'Routes currently tracked.', labels, () => this.store.stats().routes);
    t.gauge('routelens_route_memory_bytes', 'Estimated memory held by route sketches.', labels, () => this.store.stats().memoryBytes);
    t.gauge('routelens_route_overflow_spans', 'Spans recorded into an overflow (__other__) route since start.', labels, () => this.store.stats().overflowSpans);
  }

  async start(): Promise<void> {
    // Expire idle routes even when no spans arrive.
    this.#sweepTimer = setInterval(() => this.store.sweep(), 60_000);
    this.#sweepTimer.unref();
  }

  async shutdown(): Promise<void> {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  async consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void> {
    const now = this.store.clock.now();
    const store = this.store;
    batch.forEachSpan((span) => {
      store.record(span, now);
    });
    if (this.#next.traces !== undefined) await this.#next.traces.consumeTraces(batch, ctx);
  }
}

export const routeLatencyConnectorFactory: ConnectorFactory<RouteLatencyConfig> = {
  kind: 'connector',
  type: 'routelatency',
  parseConfig: (raw, path, issues) => routeLatencyConfigSchema.parse(raw, path, issues),
  configSchema: routeLatencyConfigSchema,
  create: (settings, config, next) => new RouteLatencyConnector(settings, config, next),
};
