/**
 * Route extraction: which (method, route) a server span belongs to, and where the route came from.
 *
 * Source order (first that applies wins):
 *  1. `http.route`                            → raw (Flask `<int:id>`, FastAPI `{id}`, Django `users/<int:pk>/` kept as is)
 *  2. HTTP status 404 and no `http.route`     → `__unmatched__` (the router matched nothing; raw paths of scanners
 *                                               and typos would otherwise fill the route table)
 *  3. span name `METHOD <template>`           → the template, unless it equals the raw request path (Flask names
 *                                               unmatched requests `GET /the/raw/path`); templated like a path
 *  4. `url.path` / `http.target` / `url.full` / `http.url` → path, query and fragment stripped, templated
 *  5. the span name                           → `span_name_fallback` (gRPC `pkg.Service/Method`, messaging, jobs),
 *                                               id-like segments templated
 * Method: `http.request.method` (`_OTHER` → `http.request.method_original`), else `http.method`, else the span
 * name's method token, else `''` (non-HTTP spans).
 */
import type { SpanInput } from './span-input';

export type RouteSource = 'http.route' | 'unmatched' | 'span_name' | 'url.path' | 'http.target' | 'url.full' | 'http.url' | 'span_name_fallback' | 'overflow';

/** Route sources from most to least trustworthy (also the bit order of a route's source mask). */
export const ROUTE_SOURCES: readonly RouteSource[] = [
  'http.route',
  'span_name',
  'url.path',
  'http.target',
  'url.full',
  'http.url',
  'span_name_fallback',
  'unmatched',
  'overflow',
];

export const UNMATCHED_ROUTE = '__unmatched__';
export const OVERFLOW_ROUTE = '__other__';
/** Route used when a span has no name and no HTTP information. */
export const UNNAMED_ROUTE = '__unnamed__';
/** Longer routes are cut (with `…`) so one pathological path cannot hold kilobytes. */
export const MAX_ROUTE_LENGTH = 256;
const MAX_METHOD_LENGTH = 32;

/** A user templating rule: a regular expression over the whole path and its replacement (`$1` allowed). */
export interface TemplatingRule {
  pattern: string;
  replacement: string;
}

const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'] as const;

/** Canonical (interned) method string for a known method in any case; `undefined` otherwise. */
function knownMethod(s: string): string | undefined {
  switch (s) {
    case 'GET':
      return 'GET';
    case 'POST':
      return 'POST';
    case 'PUT':
      return 'PUT';
    case 'DELETE':
      return 'DELETE';
    case 'PATCH':
      return 'PATCH';
    case 'HEAD':
      return 'HEAD';
    case 'OPTIONS':
      return 'OPTIONS';
    default: {
      if (s.length > 7) return undefined;
      const u = s.toUpperCase();
      return (KNOWN_METHODS as readonly string[]).find((m) => m === u);
    }
  }
}

function normaliseMethod(s: string): string {
  const k = knownMethod(s);
  if (k !== undefined) return k;
  return s.length > MAX_METHOD_LENGTH ? s.slice(0, MAX_METHOD_LENGTH) : s;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}
function isAlpha(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/**
 * Is `s[start, end)` an id-like path segment? Built-in rules:
 * - all digits (`123`);
 * - a UUID (`8-4-4-4-12` hex);
 * - 16 or more hex characters (hashes, trace ids, Mongo ObjectIds);
 * - digit groups joined by `-` `_` `.` `:` `,` (`2024-01-31`, `10.0.0.1`, `1_000`);
 * - a token of 20 or more `[A-Za-z0-9_-]` characters with at least one digit and one letter (ULIDs, base64url
 *   ids, slugs carrying a number);
 * - anything with `@` (e-mail addresses).
 */
export function isIdSegment(s: string, start = 0, end = s.length): boolean {
  const len = end - start;
  if (len <= 0) return false;
  let digits = 0;
  let hex = 0;
  let alpha = 0;
  let seps = 0;
  let token = 0; // [A-Za-z0-9_-]
  let sepRun = true; // for digit groups: no leading/trailing/double separators
  let groupsOk = true;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 64) return len >= 3; // '@'
    if (isDigit(c)) {
      digits++;
      hex++;
      token++;
      sepRun = false;
    } else {
      if (isHex(c)) hex++;
      if (isAlpha(c)) {
        alpha++;
        token++;
        groupsOk = false;
      } else if (c === 45 || c === 95) {
        token++;
        seps++;
        if (sepRun) groupsOk = false;
        sepRun = true;
      } else if (c === 46 || c === 58 || c === 44) {
        seps++;
        if (sepRun) groupsOk = false;
        sepRun = true;
      } else {
        groupsOk = false;
      }
    }
  }
  if (digits === len) return true;
  if (
    len === 36 &&
    hex === 32 &&
    s.charCodeAt(start + 8) === 45 &&
    s.charCodeAt(start + 13) === 45 &&
    s.charCodeAt(start + 18) === 45 &&
    s.charCodeAt(start + 23) === 45
  )
    return true;
  if (hex === len && len >= 16) return true;
  if (groupsOk && !sepRun && seps > 0 && digits + seps === len) return true;
  if (token === len && len >= 20 && digits > 0 && alpha > 0) return true;
  return false;
}

/** Turns raw paths into low-cardinality templates: user rules first (whole path), then id-like segments → `{id}`. */
export class PathTemplater {
  readonly #rules: { re: RegExp; replacement: string }[];
  readonly #idReplacement: string;

  /** Throws SyntaxError for an invalid pattern (config validation reports it with its path first). */
  constructor(rules: readonly TemplatingRule[] = [], options?: { idReplacement?: string }) {
    this.#rules = rules.map((r) => ({ re: new RegExp(r.pattern, 'g'), replacement: r.replacement }));
    this.#idReplacement = options?.idReplacement ?? '{id}';
  }

  /** Templates a path (query string and fragment must already be stripped). Allocates only when it changes. */
  template(path: string): string {
    let p = path;
    for (const r of this.#rules) {
      r.re.lastIndex = 0;
      p = p.replace(r.re, r.replacement);
    }
    return this.templateSegments(p);
  }

  /** Only the built-in id-segment rules (segments split on `/`). */
  templateSegments(p: string): string {
    let out: string | undefined;
    let last = 0;
    let start = 0;
    const n = p.length;
    while (start <= n) {
      let end = p.indexOf('/', start);
      if (end < 0) end = n;
      if (end > start && isIdSegment(p, start, end)) {
        out = (out ?? '') + p.slice(last, start) + this.#idReplacement;
        last = end;
      }
      start = end + 1;
    }
    if (out === undefined) return p;
    return out + p.slice(last);
  }
}

/** The extraction result, written into a reused object. */
export interface ExtractedRoute {
  method: string;
  route: string;
  source: RouteSource;
  /** HTTP response status (0 when absent). */
  httpStatus: number;
  /** `1 << ROUTE_SOURCES.indexOf(source)`, kept beside `source` so the hot path needs no lookup. */
  sourceBit: number;
}

export function newExtractedRoute(): ExtractedRoute {
  return { method: '', route: '', source: 'span_name_fallback', httpStatus: 0, sourceBit: 0 };
}

/** Bit of each route source in a route's source mask (the order of {@link ROUTE_SOURCES}). */
export const SOURCE_BIT: Readonly<Record<RouteSource, number>> = {
  'http.route': 1 << 0,
  span_name: 1 << 1,
  'url.path': 1 << 2,
  'http.target': 1 << 3,
  'url.full': 1 << 4,
  'http.url': 1 << 5,
  span_name_fallback: 1 << 6,
  unmatched: 1 << 7,
  overflow: 1 << 8,
};

function toStatus(v: string | number | boolean | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

/** Path part of a request target or URL: absolute form's scheme and authority, query and fragment removed. */
export function pathOf(target: string): string {
  let s = 0;
  const scheme = target.indexOf('://');
  if (scheme > 0 && scheme < 16) {
    const slash = target.indexOf('/', scheme + 3);
    if (slash < 0) return '/';
    s = slash;
  }
  let e = target.length;
  const q = target.indexOf('?', s);
  if (q >= 0) e = q;
  const h = target.indexOf('#', s);
  if (h >= 0 && h < e) e = h;
  if (e === s) return '/';
  return s === 0 && e === target.length ? target : target.slice(s, e);
}

function capLength(route: string): string {
  return route.length > MAX_ROUTE_LENGTH ? `${route.slice(0, MAX_ROUTE_LENGTH - 1)}…` : route;
}

/** Extracts (method, route, source, status) from spans; one instance per route store (holds the templater). */
export class RouteExtractor {
  readonly templater: PathTemplater;

  constructor(templater: PathTemplater = new PathTemplater()) {
    this.templater = templater;
  }

  extract(span: SpanInput, out: ExtractedRoute): ExtractedRoute {
    // method
    let method = '';
    const m = span.attribute('http.request.method');
    if (typeof m === 'string' && m !== '') {
      if (m === '_OTHER') {
        const orig = span.attribute('http.request.method_original');
        method = typeof orig === 'string' && orig !== '' ? normaliseMethod(orig) : '_OTHER';
      } else {
        method = normaliseMethod(m);
      }
    } else {
      const old = span.attribute('http.method');
      if (typeof old === 'string' && old !== '') method = normaliseMethod(old);
    }
    let status = toStatus(span.attribute('http.response.status_code'));
    if (status === 0) status = toStatus(span.attribute('http.status_code'));
    out.httpStatus = status;

    // 1. http.route
    const httpRoute = span.attribute('http.route');
    if (typeof httpRoute === 'string' && httpRoute !== '') {
      out.method = method !== '' ? method : this.#methodFromName(span.name);
      out.route = capLength(httpRoute);
      out.source = 'http.route';
      out.sourceBit = SOURCE_BIT['http.route'];
      return out;
    }

    // raw request path, if any (needed by 3 and 4)
    let pathSource: RouteSource | undefined;
    let rawPath: string | undefined;
    const urlPath = span.attribute('url.path');
    if (typeof urlPath === 'string' && urlPath !== '') {
      rawPath = pathOf(urlPath);
      pathSource = 'url.path';
    } else {
      const target = span.attribute('http.target');
      if (typeof target === 'string' && target !== '') {
        rawPath = pathOf(target);
        pathSource = 'http.target';
      } else {
        const full = span.attribute('url.full');
        if (typeof full === 'string' && full !== '') {
          rawPath = pathOf(full);
          pathSource = 'url.full';
        } else {
          const old = span.attribute('http.url');
          if (typeof old === 'string' && old !== '') {
            rawPath = pathOf(old);
            pathSource = 'http.url';
          }
        }
      }
    }

    // 2. unmatched 404
    if (status === 404) {
      out.method = method !== '' ? method : this.#methodFromName(span.name);
      out.route = UNMATCHED_ROUTE;
      out.source = 'unmatched';
      out.sourceBit = SOURCE_BIT.unmatched;
      return out;
    }

    // 3. span name "METHOD template"
    const name = span.name;
    const sp = name.indexOf(' ');
    if (sp > 0 && sp < name.length - 1 && name.indexOf(' ', sp + 1) < 0) {
      const token = name.slice(0, sp);
      const nameMethod = token === 'HTTP' ? '_OTHER' : knownMethod(token);
      if (nameMethod !== undefined) {
        const template = name.slice(sp + 1);
        if (rawPath === undefined || template !== rawPath) {
          out.method = method !== '' ? method : nameMethod;
          out.route = capLength(this.templater.template(template));
          out.source = 'span_name';
          out.sourceBit = SOURCE_BIT.span_name;
          return out;
        }
      }
    }

    // 4. templated path
    if (rawPath !== undefined && pathSource !== undefined) {
      out.method = method !== '' ? method : this.#methodFromName(name);
      out.route = capLength(this.templater.template(rawPath));
      out.source = pathSource;
      out.sourceBit = SOURCE_BIT[pathSource];
      return out;
    }

    // 5. the span name itself
    out.method = method;
    out.route = name === '' ? UNNAMED_ROUTE : capLength(this.templater.templateSegments(name));
    out.source = 'span_name_fallback';
    out.sourceBit = SOURCE_BIT.span_name_fallback;
    return out;
  }

  #methodFromName(name: string): string {
    const sp = name.indexOf(' ');
    const token = sp < 0 ? name : name.slice(0, sp);
    return knownMethod(token) ?? '';
  }
}
