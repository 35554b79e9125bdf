/**
 * Component factories, in the Collector's shape: a type name, the config schema (defaults, validation, docs) and
 * the functions that create the component for the signals it supports.
 */
import type { Component, CreateSettings } from '../core/component';
import type { MergedQueryState } from '../core/query';
import type { Field } from '../core/schema';
import type { MetricsConsumer, TracesConsumer } from './consumer';

/** A receiver feeds the pipeline consumer it is given. */
export interface ReceiverFactory<C> {
  kind: 'receiver';
  type: string;
  /** Defaults, value checks and documentation of the config; the loader parses each component's YAML with it. */
  configSchema: Field<C>;
  createTraces(settings: CreateSettings, config: C, next: TracesConsumer): Component;
}

export interface ProcessorFactory<C> {
  kind: 'processor';
  type: string;
  configSchema: Field<C>;
  createTraces(settings: CreateSettings, config: C, next: TracesConsumer): Component & TracesConsumer;
}

export interface ExporterFactory<C> {
  kind: 'exporter';
  type: string;
  configSchema: Field<C>;
  createTraces?(settings: CreateSettings, config: C): Component & TracesConsumer;
  createMetrics?(settings: CreateSettings, config: C): Component & MetricsConsumer;
}

/** A connector ends one pipeline (as its exporter) and feeds another (as its receiver) or passes spans on. */
export interface ConnectorFactory<C> {
  kind: 'connector';
  type: string;
  configSchema: Field<C>;
  /**
   * Create the connector. `nextTraces` are the trace pipelines it feeds (may be empty), `nextMetrics` the
   * metrics pipelines it feeds.
   */
  create(
    settings: CreateSettings,
    config: C,
    next: { traces: TracesConsumer | undefined; metrics: MetricsConsumer | undefined },
  ): Component & TracesConsumer & Partial<MetricsConsumer>;
  /** The connector may be an exporter of metrics pipelines too (its instances then implement consumeMetrics). */
  consumesMetrics?: boolean;
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
