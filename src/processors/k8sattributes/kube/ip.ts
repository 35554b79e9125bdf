/**
 * Which addresses can be a pod IP. A connection from a loopback address (a sidecar, or a mesh proxy such as
 * Istio's and Linkerd's 127.0.0.6) or from an unspecified address tells nothing about the sending pod.
 */
import * as net from 'node:net';

/** Normalise an address: strip an IPv6 zone and brackets, map `::ffff:a.b.c.d` to `a.b.c.d`, lower-case. */
export function normaliseIp(addr: string): string | undefined {
  let a = addr.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const kind = net.isIP(a);
  if (kind === 0) return undefined;
  if (kind === 6) {
    const c = canonicalIpv6(a.toLowerCase());
    const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
    if (m !== null) {
      const hi = parseInt(m[1] as string, 16);
      const lo = parseInt(m[2] as string, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return c;
  }
  return a;
}

/** The compressed canonical form (RFC 5952) of a valid IPv6 address. */
function canonicalIpv6(a: string): string {
  // Expand to eight groups, then compress the longest run of zero groups.
  let head = a;
  let tail = '';
  const dbl = a.indexOf('::');
  if (dbl >= 0) {
    head = a.slice(0, dbl);
    tail = a.slice(dbl + 2);
  }
  const parse = (s: string): string[] => {
    if (s === '') return [];
    const out: string[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const b = g.split('.').map(Number) as [number, number, number, number];
        out.push(((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16));
      } else {
        out.push(parseInt(g, 16).toString(16));
      }
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  const groups = dbl >= 0 ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/**
 * The normalised address when it can belong to a pod; undefined for anything unparseable, loopback
 * (127.0.0.0/8, ::1; this covers mesh proxies' 127.0.0.6) or unspecified (0.0.0.0, ::).
 */
export function podIpCandidate(addr: string | undefined): string | undefined {
  if (addr === undefined || addr === '') return undefined;
  const a = normaliseIp(addr);
  if (a === undefined) return undefined;
  if (net.isIPv4(a)) {
    if (a.startsWith('127.') || a === '0.0.0.0') return undefined;
    return a;
  }
  if (a === '::1' || a === '::') return undefined;
  return a;
}
