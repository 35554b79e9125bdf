/**
 * Component factories, in the Collector's shape: a type name, the config schema (defaults, validation, docs) and
 * the functions that create the component for the signals it supports. A factory without the function of a
 * signal does not support it: the config loader refuses a pipeline of that signal listing the component, naming
 * the YAML path (`supports`).
 */
import type { Component, CreateSettings } from '../core/component';
import type { MergedQueryState } from '../core/query';
import type { Field } from '../core/schema';
import type { LogsConsumer, MetricsConsumer, Signal, SignalConsumers, TracesConsumer } from './consumer';

/**
 * A receiver feeds the pipelines that list it. One receiver serves every signal it receives (one OTLP server for
 * traces, metrics and logs), so it is created once with a consumer per signal that has such a pipeline.
 */
export interface ReceiverFactory<C> {
  kind: 'receiver';
  type: string;
  /** Defaults, value checks and documentation of the config; the loader parses each component's YAML with it. */
  configSchema: Field<C>;
  /** The signals it can receive. */
  signals: readonly Signal[];
  /** Create the receiver; `next` has a consumer for each signal with a pipeline listing it, undefined otherwise. */
  create(settings: CreateSettings, config: C, next: SignalConsumers): Component;
}

/** A processor is created once per pipeline, for the pipeline's signal, in front of `next`. */
export interface ProcessorFactory<C> {
  kind: 'processor';
  type: string;
  configSchema: Field<C>;
  createTraces?(settings: CreateSettings, config: C, next: TracesConsumer): Component & TracesConsumer;
  createMetrics?(settings: CreateSettings, config: C, next: MetricsConsumer): Component & MetricsConsumer;
  createLogs?(settings: CreateSettings, config: C, next: LogsConsumer): Component & LogsConsumer;
}

/** An exporter is created once per signal and shared by the pipelines of that signal that list it. */
export interface ExporterFactory<C> {
  kind: 'exporter';
  type: string;
  configSchema: Field<C>;
  createTraces?(settings: CreateSettings, config: C): Component & TracesConsumer;
  createMetrics?(settings: CreateSettings, config: C): Component & MetricsConsumer;
  createLogs?(settings: CreateSettings, config: C): Component & LogsConsumer;
  /** What stops the exporter from serving `signal` with this config (a missing URL), for the loader to report. */
  checkSignal?(config: C, signal: Signal): string | undefined;
}

/** A connector ends one pipeline (as its exporter) and feeds others (as their receiver) or passes data on. */
export interface ConnectorFactory<C> {
  kind: 'connector';
  type: string;
  configSchema: Field<C>;
  /** Signals it consumes, listed as an exporter. */
  consumes: readonly Signal[];
  /** Signals it produces, listed as a receiver. */
  produces: readonly Signal[];
  /** Create the connector; `next` has a consumer for each signal of the pipelines it feeds. */
  create(settings: CreateSettings, config: C, next: SignalConsumers): Component & TracesConsumer & Partial<MetricsConsumer & LogsConsumer>;
  /**
   * Merge the query states of the connector's instances in several worker processes (each from
   * `snapshotQueryState()`, see src/core/query.ts), for the primary process to answer queries from. Connectors
   * without query state omit it.
   */
  mergeQueryStates?(config: C, snapshots: readonly unknown[]): MergedQueryState;
}

export interface ExtensionFactory<C> {
  kind: 'extension';
  type: string;
  configSchema: Field<C>;
  create(settings: CreateSettings, config: C): Component;
}

export type AnyFactory = ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ConnectorFactory<any> | ExtensionFactory<any>;

const CREATE = { traces: 'createTraces', metrics: 'createMetrics', logs: 'createLogs' } as const;

/**
 * Can the component of `factory` be listed, in `role`, in a pipeline of `signal`? Receivers and connectors listed
 * as receivers must produce the signal, processors and exporters (and connectors listed as exporters) consume it.
 */
export function supports(factory: AnyFactory, role: 'receiver' | 'processor' | 'exporter', signal: Signal): boolean {
  switch (factory.kind) {
    case 'receiver':
      return factory.signals.includes(signal);
    case 'connector':
      return (role === 'receiver' ? factory.produces : factory.consumes).includes(signal);
    case 'processor':
    case 'exporter':
      return typeof (factory as unknown as Record<string, unknown>)[CREATE[signal]] === 'function';
    case 'extension':
      return false;
  }
}

/** The signals a factory supports in `role` (for error messages). */
export function supportedSignals(factory: AnyFactory, role: 'receiver' | 'processor' | 'exporter'): Signal[] {
  return (['traces', 'metrics', 'logs'] as const).filter((s) => supports(factory, role, s));
}
