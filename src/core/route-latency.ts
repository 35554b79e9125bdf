/**
 * Live per-route latency, offered by a component that counts every request (the routelatency connector) to
 * components that decide on it (the tail_capture processor keeps traces slower than their route's live p99).
 * In core so that neither imports the other.
 */

export interface LiveRouteLatency {
  /**
   * The key of the route a request span counts under, or undefined when the span is not a request the source
   * counts (its kind). `span` is a pdata SpanView, read during the call only.
   */
  routeOf(span: object): string | undefined;
  /**
   * The route's latency over the last `windowMs` (one of the source's windows): its q-quantile in ms and the
   * requests it rests on (count 0 and NaN for a route without data).
   */
  quantile(route: string, q: number, windowMs: number, nowMs: number): { valueMs: number; count: number };
  /** The windows `quantile` accepts, in ms. */
  readonly windowsMs: readonly number[];
}

export function liveRouteLatencyOf(c: unknown): LiveRouteLatency | undefined {
  const l = (c as { liveLatency?: LiveRouteLatency } | undefined)?.liveLatency;
  return typeof l?.routeOf === 'function' && typeof l.quantile === 'function' ? l : undefined;
}
