/**
 * Outbound HTTP call templates: method + server + path with id-like segments replaced, so that
 * `GET http://users:8000/users/17?x=1` and `GET http://users:8000/users/18` are one call site,
 * `GET users:8000 /users/{id}`. Query strings and fragments are dropped (Sentry's `parameterize_url` does the
 * same); a segment is id-like when it is all digits, a UUID, 10+ hex characters with a digit, or a 20+
 * character token mixing letters and digits.
 */

export interface HttpTemplate {
  /** `GET users:8000 /users/{id}` */
  text: string;
  method: string;
  /** `users:8000` (host and port as in the URL, or `server.address`[:`server.port`]) */
  server: string;
  /** `/users/{id}` */
  path: string;
  /** The raw path had id-like segments (a repeated call with different ids is an N+1 candidate). */
  parameterised: boolean;
  /** The raw path and query, the "parameters" of this call (compared to tell repeats with different values). */
  raw: string;
}

const UUID = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
const HEX = /^[0-9a-fA-F]{10,}$/;
const TOKEN = /^[A-Za-z0-9_-]{20,}$/;

/** True when a path segment is an id (see the module comment). */
export function isIdSegment(seg: string): boolean {
  if (seg === '') return false;
  if (/^\d+$/.test(seg)) return true;
  if (UUID.test(seg)) return true;
  if (HEX.test(seg) && /\d/.test(seg)) return true;
  return TOKEN.test(seg) && /\d/.test(seg) && /[A-Za-z]/.test(seg);
}

/** Path with id-like segments as `{id}`; percent-decoding is not attempted. */
export function templatePath(path: string): { path: string; parameterised: boolean } {
  let parameterised = false;
  const segs = path.split('/').map((seg) => {
    if (isIdSegment(seg)) {
      parameterised = true;
      return '{id}';
    }
    return seg.length > 64 ? `${seg.slice(0, 64)}…` : seg;
  });
  let out = segs.join('/');
  if (out === '') out = '/';
  if (out.length > 256) out = `${out.slice(0, 255)}…`;
  return { path: out, parameterised };
}

/**
 * Template of a client call from its attributes: `url` is `url.full` ?? `http.url`, `server` is
 * `server.address` ?? `net.peer.name` (with `port` when the URL has no authority).
 */
export function templateHttp(method: string, url: string, server: string, port: string): HttpTemplate {
  let host = server;
  let path = '';
  let raw = '';
  if (url !== '') {
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:)?(?:\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?/.exec(url);
    if (m !== null) {
      const authority = m[2] ?? '';
      // drop credentials
      const at = authority.lastIndexOf('@');
      const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
      if (hostPort !== '') host = hostPort;
      path = m[3] ?? '';
      raw = path + (m[4] ?? '');
    }
  } else if (port !== '' && host !== '' && !host.includes(':')) host = `${host}:${port}`;
  if (host === '') host = 'unknown';
  const t = templatePath(path === '' ? '/' : path);
  const verb = method === '' ? 'HTTP' : method.toUpperCase();
  return { text: `${verb} ${host} ${t.path}`, method: verb, server: host, path: t.path, parameterised: t.parameterised, raw };
}
