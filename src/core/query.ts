/**
 * What a component serves under /api/v1 through the routequery extension, and how its query state is answered
 * when it lives in several worker processes (`--workers N`). Contracts in core, so that neither the extension
 * nor the worker code imports the component.
 */
import type { MetricFamily } from './telemetry';

export interface QueryResponse {
  status: number;
  body: unknown;
}

export interface RouteQueryProvider {
  /** Answer GET `pathname` (starting with /api/v1/) with the given query parameters. */
  handleQuery(pathname: string, params: URLSearchParams): QueryResponse | Promise<QueryResponse>;
}

export function isRouteQueryProvider(c: unknown): c is { routeQuery: RouteQueryProvider } {
  return typeof (c as { routeQuery?: RouteQueryProvider } | undefined)?.routeQuery?.handleQuery === 'function';
}

/**
 * A component whose query state can be merged across processes. Each worker sends its snapshot to the primary,
 * which hands the snapshots back to the component's factory (`mergeQueryStates`): the format is the component's
 * own, and the primary knows nothing of it.
 */
export interface QueryStateSource {
  /**
   * This process's query state as JSON-safe data: everything queries read, its start time included. With `query`,
   * what answering that query needs is enough (a cluster-wide query moves it between replicas): the component
   * may leave out what the query does not read; the merge of such snapshots must answer that query exactly.
   */
  snapshotQueryState(query?: QueryHint): unknown;
}

/** The query a snapshot is taken for: its path and parameters (JSON-safe, as it crosses processes). */
export interface QueryHint {
  pathname: string;
  params: [string, string][];
  /**
   * When the asking process sent the query (its clock, epoch ms). It answers at this time or later, so a window
   * ending then is the oldest it can read: a replica whose clock is ahead still sends what the asker will read.
   */
  atMs?: number;
}

export function isQueryStateSource(c: unknown): c is QueryStateSource {
  return typeof (c as QueryStateSource | undefined)?.snapshotQueryState === 'function';
}

/** The merge of every worker's snapshot, answering as one process that saw all their data would. */
export interface MergedQueryState {
  readonly routeQuery: RouteQueryProvider;
  /**
   * Metric samples recomputed from the merged state. Each replaces the workers' sample of the same name, suffix
   * and labels, which the primary would otherwise sum: quantiles of a summary cannot be summed.
   */
  metricFamilies(): MetricFamily[];
}

/**
 * The query state of one process at one moment: one routelens process, or one worker of it under
 * `--workers N`. `source` is unique per process start, so the same state reaching a cluster query twice (from
 * its process and from the peer it was handed to) is merged once.
 */
export interface QueryStateSnapshot {
  source: string;
  takenAtMs: number;
  /** Each component's `snapshotQueryState()`, by component id. */
  states: Record<string, unknown>;
}

/**
 * What a host offers the query extension for cluster-wide answers: this process's snapshots (its own, or its
 * workers') and the merge of snapshots from anywhere by the component's factory.
 */
export interface QueryStateHost {
  /** Unique per process start; peers use it to recognise themselves among the resolved addresses. */
  readonly instance: string;
  /** With `query`, snapshots for that query only (see QueryStateSource.snapshotQueryState). */
  localQueryStates(query?: QueryHint): Promise<QueryStateSnapshot[]>;
  /** The merge of `snapshots` of component `id` by its factory; undefined when it has no mergeable state. */
  mergeQueryStates(id: string, snapshots: readonly unknown[]): MergedQueryState | undefined;
}

export function isQueryStateHost(h: unknown): h is QueryStateHost {
  const q = h as Partial<QueryStateHost> | undefined;
  return typeof q?.localQueryStates === 'function' && typeof q.mergeQueryStates === 'function' && typeof q.instance === 'string';
}
