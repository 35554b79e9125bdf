/**
 * Where the page's data comes from: the routelens API (/api/v1, relative to the page so a reverse proxy may
 * serve routelens under a prefix) with an optional bearer token kept in sessionStorage, or, in the file
 * `routelens analyze --html` writes, the same API answers embedded in the page.
 */

/** The API answered 401: the page asks for a token. */
class AuthRequired extends Error {}

/** Any other answer than 200; `status` 0 when routelens could not be reached. */
class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

type Params = Record<string, string | number | undefined>;

interface Api {
  /** False for the offline file: nothing changes, so nothing is polled. */
  readonly live: boolean;
  get<T>(path: string, params?: Params): Promise<T>;
}

const TOKEN_KEY = 'routelens.token';

/** `api/v1/routes/{service}/{method}/{route…}` (method `-` when empty), each segment percent-encoded. */
function routeApiPath(service: string, method: string, route: string): string {
  return `api/v1/routes/${encodeURIComponent(service)}/${encodeURIComponent(method === '' ? '-' : method)}/${route
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`;
}

function withParams(path: string, params: Params | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

class HttpApi implements Api {
  readonly live = true;

  get token(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  set token(t: string | null) {
    try {
      if (t === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, t);
    } catch {
      // storage disabled: the token lives as long as this page
    }
    this.#fallback = t;
  }

  #fallback: string | null = null;

  async get<T>(path: string, params?: Params): Promise<T> {
    const token = this.token ?? this.#fallback;
    let res: Response;
    try {
      res = await fetch(withParams(path, params), {
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      throw new ApiError(0, `routelens cannot be reached (${err instanceof Error ? err.message : String(err)})`);
    }
    if (res.status === 401) throw new AuthRequired('this routelens requires a bearer token');
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new ApiError(res.status, `unexpected answer (HTTP ${res.status})`);
    }
    if (!res.ok) throw new ApiError(res.status, (body as { error?: string }).error ?? `HTTP ${res.status}`);
    return body as T;
  }
}

/** Answers recorded by `routelens analyze --html`: the route list is filtered, sorted and paged here as the API does. */
interface EmbeddedData {
  routes: RoutesResponse;
  services: unknown;
  /** By API path (see routeApiPath / serviceApiPath); why answers by whyKey. */
  answers: Record<string, unknown>;
}

/** Key of a route's why answer in the offline file (the CLI's whyAnswerKey; the window is the whole capture). */
function whyKey(service: string, method: string, route: string): string {
  return `api/v1/why?${new URLSearchParams({ service, method: method === '' ? '-' : method, route }).toString()}`;
}

class EmbeddedApi implements Api {
  readonly live = false;
  readonly #data: EmbeddedData;

  constructor(data: EmbeddedData) {
    this.#data = data;
  }

  async get<T>(path: string, params: Params = {}): Promise<T> {
    if (path === 'api/v1/routes') return this.#routes(params) as T;
    if (path === 'api/v1/services') return this.#data.services as T;
    const key = path === 'api/v1/why' ? whyKey(String(params.service ?? ''), String(params.method ?? ''), String(params.route ?? '')) : path;
    const hit = this.#data.answers[key];
    if (hit === undefined) throw new ApiError(404, `not in this file: ${key}`);
    return hit as T;
  }

  #routes(p: Params): RoutesResponse {
    const all = this.#data.routes;
    const needle = String(p.search ?? '').toLowerCase();
    let rows = all.routes.filter(
      (r) =>
        (p.service === undefined || p.service === '' || r.service === p.service) &&
        (needle === '' || `${r.service}\u0000${r.method} ${r.route}`.toLowerCase().includes(needle)),
    );
    const key = String(p.sort ?? 'p99');
    const value = (r: RouteJson): number => sortValue(r, key);
    rows = [...rows].sort(
      (a, b) => value(b) - value(a) || (a.service < b.service ? -1 : a.service > b.service ? 1 : a.route < b.route ? -1 : a.route > b.route ? 1 : 0),
    );
    const offset = Number(p.offset ?? 0);
    const limit = Number(p.limit ?? 100);
    return { ...all, total: rows.length, offset, routes: rows.slice(offset, offset + limit) };
  }
}

/** The value the API sorts routes by (descending); impact is rate × p95. */
function sortValue(r: RouteJson, key: string): number {
  switch (key) {
    case 'p50':
      return r.p50_ms ?? -1;
    case 'p95':
      return r.p95_ms ?? -1;
    case 'rate':
      return r.rate_per_s;
    case 'errors':
      return r.error_count;
    case 'impact':
      return impactOf(r);
    default:
      return r.p99_ms ?? -1;
  }
}

function impactOf(r: RouteJson): number {
  return r.p95_ms === null ? -1 : r.rate_per_s * r.p95_ms;
}

// ---- the API's JSON shapes the page reads --------------------------------------------------------------------

interface RouteJson {
  service: string;
  method: string;
  route: string;
  route_source: string;
  count: number;
  rate_per_s: number;
  error_rate: number;
  error_count: number;
  status_classes: Record<string, number>;
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
  mean_ms: number | null;
  dimensions: Record<string, string>;
}

interface RoutesResponse {
  window: string;
  generated_at: string;
  covered_s: number;
  windows?: string[];
  relative_error?: number;
  total?: number;
  offset?: number;
  routes: RouteJson[];
}

interface SlotJson {
  start: string;
  count: number;
  rate_per_s: number;
  error_count: number;
  status_classes?: Record<string, number>;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

interface RouteDetail {
  window: string;
  generated_at: string;
  covered_s: number;
  relative_error?: number;
  slot_s: number;
  route: RouteJson;
  series: SlotJson[];
  exemplars: { trace_id: string; span_id: string; value_ms: number; time: string }[];
  distribution?: { scale: number; zero_count: number; offset: number; counts: number[] };
}

interface ServiceJson {
  service: string;
  routes: number;
  active_routes: number;
  count: number;
  rate_per_s: number;
  error_count: number;
  error_rate: number;
  overflow_spans: number;
}

interface ServicesResponse {
  window: string;
  services: ServiceJson[];
}

interface ServiceDetail {
  window: string;
  slot_s: number;
  relative_error?: number;
  service: ServiceJson & { p50_ms: number | null; p95_ms: number | null; p99_ms: number | null };
  series: SlotJson[];
}

interface Settings {
  jaeger_url: string | null;
}
