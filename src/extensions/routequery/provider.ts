/** What a component exposes to be served under /api/v1 by the routequery extension. */
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
