/**
 * Component contracts shared by every receiver, processor, connector, exporter and extension.
 * One data-plane contract: `consumeTraces(batch, ctx)`. Once the returned promise settles the caller
 * no longer owns the batch: a consumer that keeps it (a queue) must not expect the caller to mutate it,
 * and a caller must not reuse it after handing it on.
 */
import type { Logger } from 'pino';
import type { TraceBatch } from '../pdata/trace-batch';
import type { Telemetry } from '../telemetry/telemetry';
import type { Field } from '../config/schema';

/** What the transport knew about the request that produced a batch. */
export interface PipelineContext {
  /** Peer IP address of the client connection (IPv4-mapped IPv6 normalised to IPv4), if known. */
  clientAddress?: string | undefined;
  /** Transport that received the data: `grpc` or `http`. */
  transport?: 'grpc' | 'http' | undefined;
  /** Request headers / gRPC metadata, lower-cased keys (only when a component asked for them). */
  headers?: Readonly<Record<string, string>> | undefined;
  /** Authenticated identity (set by an authenticator extension). */
  auth?: { subject: string } | undefined;
}

/** The single data-plane contract of trace pipelines. */
export interface TracesConsumer {
  /** Consume a batch. Rejects with a {@link PipelineError} to refuse it (retryable or permanent). */
  consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void>;
}

/** A metrics data point stream is carried as encoded OTLP `ExportMetricsServiceRequest` bytes. */
export interface MetricsConsumer {
  consumeMetrics(request: Uint8Array, ctx: PipelineContext): Promise<void>;
}

/** What a component can reach at start: the other running components. */
export interface Host {
  /** Running extension by component id (`type` or `type/name`). */
  getExtension(id: string): Component | undefined;
  /** All running components of the given kind, by id. */
  components(kind: ComponentKind): ReadonlyMap<string, Component>;
  /** True when the service is running and every component reports healthy. */
  healthy(): boolean;
}

/**
 * Lifecycle contract: `start` is called once, exporters first and receivers last; `shutdown` is called
 * receivers first, is safe without `start` and safe twice, flushes what it buffers and honours `signal`
 * (aborted when the service's shutdown deadline passes).
 */
export interface Component {
  start(host: Host): Promise<void>;
  shutdown(signal?: AbortSignal): Promise<void>;
  /** Is the component healthy (used by /healthz)? Components that cannot tell omit it. */
  healthy?(): boolean;
}

export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'connector' | 'extension';

/** Everything a factory gets besides the config. */
export interface CreateSettings {
  /** Full component id, e.g. `otlp/jaeger`. */
  id: string;
  logger: Logger;
  telemetry: Telemetry;
}

/** A receiver feeds the pipeline consumer it is given. */
export interface ReceiverFactory<C> {
  kind: 'receiver';
  type: string;
  /** Parse and validate the raw YAML value (already env-substituted) into a typed config. */
  parseConfig: ConfigParser<C>;
  /** The config schema, when declared with src/config/schema.ts (feeds docs/config-reference.md). */
  configSchema?: Field<C>;
  createTraces(settings: CreateSettings, config: C, next: TracesConsumer): Component;
}

export interface ProcessorFactory<C> {
  kind: 'processor';
  type: string;
  parseConfig: ConfigParser<C>;
  /** The config schema, when declared with src/config/schema.ts (feeds docs/config-reference.md). */
  configSchema?: Field<C>;
  createTraces(settings: CreateSettings, config: C, next: TracesConsumer): Component & TracesConsumer;
  /**
   * True when the processor needs per-client context (connection address): it must run before anything
   * that merges batches from several clients.
   */
  needsClientContext?: boolean;
}

export interface ExporterFactory<C> {
  kind: 'exporter';
  type: string;
  parseConfig: ConfigParser<C>;
  /** The config schema, when declared with src/config/schema.ts (feeds docs/config-reference.md). */
  configSchema?: Field<C>;
  createTraces?(settings: CreateSettings, config: C): Component & TracesConsumer;
  createMetrics?(settings: CreateSettings, config: C): Component & MetricsConsumer;
}

/** A connector ends one pipeline (as its exporter) and feeds another (as its receiver) or passes spans on. */
export interface ConnectorFactory<C> {
  kind: 'connector';
  type: string;
  parseConfig: ConfigParser<C>;
  /** The config schema, when declared with src/config/schema.ts (feeds docs/config-reference.md). */
  configSchema?: Field<C>;
  /**
   * Create the connector. `nextTraces` are the trace pipelines it feeds (may be empty), `nextMetrics` the
   * metrics pipelines it feeds.
   */
  create(settings: CreateSettings, config: C, next: { traces: TracesConsumer | undefined; metrics: MetricsConsumer | undefined }): Component & TracesConsumer;
}

export interface ExtensionFactory<C> {
  kind: 'extension';
  type: string;
  parseConfig: ConfigParser<C>;
  /** The config schema, when declared with src/config/schema.ts (feeds docs/config-reference.md). */
  configSchema?: Field<C>;
  create(settings: CreateSettings, config: C): Component;
}

export type AnyFactory = ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ConnectorFactory<any> | ExtensionFactory<any>;

/** Errors collected while parsing config, each prefixed with its YAML path. */
export interface ConfigIssues {
  add(path: string, message: string): void;
}

export type ConfigParser<C> = (raw: unknown, path: string, issues: ConfigIssues) => C;
