/**
 * Test helpers for route metrics: a strict-enough parser of the Prometheus text format 0.0.4 and OpenMetrics 1.0
 * (samples, label values with escapes, exemplars, TYPE/UNIT/HELP lines), and OTLP metrics request decoding.
 */
import { protoType, TYPES } from '../../src/pdata/proto';
import { ExpoHistogram } from '../../src/pdata/expo-histogram';

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  exemplar?: { labels: Record<string, string>; value: number; timestampS?: number };
}

export interface ParsedExposition {
  samples: ParsedSample[];
  /** Family name → type, from `# TYPE`. */
  types: Map<string, string>;
  units: Map<string, string>;
  /** Family name → help text, unescaped as its format says (`# HELP`). */
  helps: Map<string, string>;
  eof: boolean;
}

/**
 * Unescape a HELP text. The text format 0.0.4 escapes only `\\` and `\n` in it (a `"` stands as it is);
 * OpenMetrics 1.0 writes it as an escaped-string, where `"` must be `\"` as in label values. Anything else is an
 * error, as in a strict parser.
 */
function unescapeHelp(text: string, openMetrics: boolean): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"' && openMetrics) throw new Error(`unescaped " in the OpenMetrics HELP text ${JSON.stringify(text)}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = text[++i];
    if (n === '\\') out += '\\';
    else if (n === 'n') out += '\n';
    else if (n === '"' && openMetrics) out += '"';
    else throw new Error(`invalid escape \\${n ?? ''} in the ${openMetrics ? 'OpenMetrics' : '0.0.4'} HELP text ${JSON.stringify(text)}`);
  }
  return out;
}

function parseLabels(text: string, at: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at;
  if (text[i] !== '{') throw new Error(`expected { at ${i} in ${text}`);
  i++;
  while (text[i] !== '}') {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (m === null) throw new Error(`bad label at ${i} in ${text}`);
    i += m[0].length;
    let v = '';
    while (text[i] !== '"') {
      if (i >= text.length) throw new Error(`unterminated label value in ${text}`);
      if (text[i] === '\\') {
        const n = text[i + 1];
        v += n === 'n' ? '\n' : n;
        i += 2;
      } else v += text[i++];
    }
    i++;
    if (Object.prototype.hasOwnProperty.call(labels, m[1] as string)) throw new Error(`duplicate label ${m[1]} in ${text}`);
    labels[m[1] as string] = v;
    if (text[i] === ',') i++;
  }
  return { labels, end: i + 1 };
}

function num(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const n = Number(s);
  if (s === '' || Number.isNaN(n)) throw new Error(`bad number ${JSON.stringify(s)}`);
  return n;
}

export function parseExposition(text: string): ParsedExposition {
  const out: ParsedExposition = { samples: [], types: new Map(), units: new Map(), helps: new Map(), eof: false };
  // OpenMetrics ends with # EOF; the text format 0.0.4 has none.
  const openMetrics = /(^|\n)# EOF\n?$/.test(text);
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (out.eof) throw new Error(`content after # EOF: ${line}`);
    if (line === '# EOF') {
      out.eof = true;
      continue;
    }
    if (line.startsWith('#')) {
      // `s`: a HELP text may hold a carriage return or U+2028/U+2029 as they are (only `\n` ends a line).
      const m = /^# (TYPE|UNIT|HELP) (\S+) ?(.*)$/s.exec(line);
      if (m === null) throw new Error(`bad comment line ${line}`);
      if (m[1] === 'TYPE') {
        if (out.types.has(m[2] as string)) throw new Error(`second TYPE line for ${m[2]}: a family is written once`);
        out.types.set(m[2] as string, m[3] as string);
      }
      if (m[1] === 'UNIT') out.units.set(m[2] as string, m[3] as string);
      if (m[1] === 'HELP') out.helps.set(m[2] as string, unescapeHelp(m[3] as string, openMetrics));
      continue;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (nm === null) throw new Error(`bad sample line ${line}`);
    let i = nm[0].length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    const rest = line.slice(i).trim();
    const [valuePart, exemplarPart] = rest.split(' # ');
    const sample: ParsedSample = { name: nm[0], labels, value: num((valuePart as string).trim().split(' ')[0] as string) };
    if (exemplarPart !== undefined) {
      const e = parseLabels(exemplarPart, 0);
      const parts = exemplarPart.slice(e.end).trim().split(' ');
      sample.exemplar = { labels: e.labels, value: num(parts[0] as string), ...(parts[1] === undefined ? {} : { timestampS: num(parts[1]) }) };
    }
    const series = `${sample.name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
    if (seen.has(series)) throw new Error(`series written twice: ${line}`);
    seen.add(series);
    out.samples.push(sample);
  }
  return out;
}

/** Samples of one metric whose labels include `match`. */
export function samplesOf(p: ParsedExposition, name: string, match: Record<string, string> = {}): ParsedSample[] {
  return p.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

export interface DecodedAttributes {
  [key: string]: string;
}

export interface DecodedExpoPoint {
  attributes: DecodedAttributes;
  startMs: number;
  timeMs: number;
  sketch: ExpoHistogram;
  raw: Record<string, unknown>;
}

export interface DecodedMetricsRequest {
  resource: DecodedAttributes;
  scope: { name: string; version: string };
  metrics: {
    name: string;
    unit: string;
    kind: 'exponentialHistogram' | 'sum' | 'other';
    temporality: number;
    monotonic?: boolean;
    expo: DecodedExpoPoint[];
    sums: { attributes: DecodedAttributes; startMs: number; timeMs: number; value: number }[];
  }[];
}

function attrs(list: unknown): DecodedAttributes {
  const out: DecodedAttributes = {};
  for (const a of (list ?? []) as { key: string; value: { stringValue?: string } }[]) out[a.key] = String(a.value.stringValue);
  return out;
}

function msOf(nanos: unknown): number {
  return Number(BigInt(String(nanos ?? 0)) / 1_000_000n);
}

/** Decodes an encoded ExportMetricsServiceRequest (one entry per resource metrics). */
export function decodeMetricsRequest(body: Uint8Array): DecodedMetricsRequest[] {
  const T = protoType(TYPES.exportMetricsRequest);
  const obj = T.toObject(T.decode(body), { longs: String, defaults: false }) as { resourceMetrics?: Record<string, unknown>[] };
  const out: DecodedMetricsRequest[] = [];
  for (const rm of obj.resourceMetrics ?? []) {
    for (const sm of (rm.scopeMetrics ?? []) as Record<string, unknown>[]) {
      const scope = (sm.scope ?? {}) as { name?: string; version?: string };
      const req: DecodedMetricsRequest = {
        resource: attrs((rm.resource as { attributes?: unknown } | undefined)?.attributes),
        scope: { name: scope.name ?? '', version: scope.version ?? '' },
        metrics: [],
      };
      for (const m of (sm.metrics ?? []) as Record<string, any>[]) {
        const eh = m.exponentialHistogram;
        const sum = m.sum;
        const entry: DecodedMetricsRequest['metrics'][number] = {
          name: m.name,
          unit: m.unit ?? '',
          kind: eh !== undefined ? 'exponentialHistogram' : sum !== undefined ? 'sum' : 'other',
          temporality: (eh ?? sum)?.aggregationTemporality ?? 0,
          ...(sum !== undefined ? { monotonic: sum.isMonotonic === true } : {}),
          expo: [],
          sums: [],
        };
        for (const dp of (eh?.dataPoints ?? []) as Record<string, any>[]) {
          const sketch = ExpoHistogram.fromOtlp({
            scale: dp.scale ?? 0,
            zeroCount: Number(dp.zeroCount ?? 0),
            positive: { offset: dp.positive?.offset ?? 0, bucketCounts: ((dp.positive?.bucketCounts ?? []) as string[]).map(Number) },
            count: Number(dp.count ?? 0),
            sum: dp.sum ?? 0,
            min: dp.min,
            max: dp.max,
          });
          entry.expo.push({ attributes: attrs(dp.attributes), startMs: msOf(dp.startTimeUnixNano), timeMs: msOf(dp.timeUnixNano), sketch, raw: dp });
        }
        for (const dp of (sum?.dataPoints ?? []) as Record<string, any>[]) {
          entry.sums.push({
            attributes: attrs(dp.attributes),
            startMs: msOf(dp.startTimeUnixNano),
            timeMs: msOf(dp.timeUnixNano),
            value: Number(dp.asInt ?? dp.asDouble ?? 0),
          });
        }
        req.metrics.push(entry);
      }
      out.push(req);
    }
  }
  return out;
}

/** A point of a sum (counter) as an SDK exported it: the time in ms from its nanoseconds, the value. */
export interface SumPoint {
  timeMs: number;
  value: number;
}

/**
 * The points of the sum `name` whose attributes include `match` (values compared as strings, whatever their type:
 * `generation: '2'` matches an int 2) in these ExportMetricsServiceRequests, in time order.
 */
export function sumPoints(bodies: readonly Uint8Array[], name: string, match: Record<string, string> = {}): SumPoint[] {
  const T = protoType(TYPES.exportMetricsRequest);
  type Value = { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean };
  const text = (v: Value): string => String(v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? '');
  const out: SumPoint[] = [];
  for (const body of bodies) {
    const obj = T.toObject(T.decode(body), { longs: String }) as {
      resourceMetrics?: {
        scopeMetrics?: {
          metrics?: {
            name: string;
            sum?: { dataPoints?: { timeUnixNano: string; asInt?: string; asDouble?: number; attributes?: { key: string; value: Value }[] }[] };
          }[];
        }[];
      }[];
    };
    for (const rm of obj.resourceMetrics ?? [])
      for (const sm of rm.scopeMetrics ?? [])
        for (const m of sm.metrics ?? []) {
          if (m.name !== name) continue;
          for (const dp of m.sum?.dataPoints ?? []) {
            const a = new Map((dp.attributes ?? []).map((kv) => [kv.key, text(kv.value)]));
            if (!Object.entries(match).every(([k, v]) => a.get(k) === v)) continue;
            out.push({ timeMs: Number(BigInt(dp.timeUnixNano)) / 1e6, value: Number(dp.asInt ?? dp.asDouble ?? 0) });
          }
        }
  }
  return out.sort((x, y) => x.timeMs - y.timeMs);
}
