/**
 * A lazy reader of OTLP `ExportMetricsServiceRequest` bytes for the runtime view: it walks the message once and
 * decodes the data points of the metrics a caller asks for by name, skipping every other metric without reading
 * its points. Times are read as milliseconds since the epoch (a double: exact to a fraction of a microsecond,
 * and the same nanosecond value always gives the same double, so start times compare exactly).
 *
 * It checks the wire structure of what it reads (tags, wire types, lengths) and throws DecodeError on malformed
 * input; it is not the receiver's validation, which has already accepted the request.
 */
import { DecodeError } from '../pdata/errors';
import { WIRE_I64, WIRE_LEN, WIRE_VARINT, cursor, readDouble, readFixed32, readLen, readUint32, readVarint64, skipField, utf8Interned } from '../pdata/wire';

export type AttrValue = string | number | boolean;

export const enum Temporality {
  Unspecified = 0,
  Delta = 1,
  Cumulative = 2,
}

export type MetricType = 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary';

/** One data point: a number (gauge, sum) or the count and sum of a histogram. */
export interface MetricPoint {
  /** The point's attributes; with `ReadOptions.lazy`, empty until `pointAttributes` decodes them. */
  attributes: Record<string, AttrValue>;
  /**
   * With `ReadOptions.lazy`: the bytes of the point's attribute fields as a latin1 string (each byte one char), equal
   * for equal encodings; a caller keys what it knows about a point's attributes on it. '' otherwise.
   */
  attrKey: string;
  /** With `ReadOptions.lazy`: [start, end) of each KeyValue's content in the request, for `pointAttributes`. */
  attrRanges: number[] | undefined;
  /** start_time_unix_nano in ms; 0 when absent. */
  startMs: number;
  /** time_unix_nano in ms. */
  timeMs: number;
  /** The number, or a histogram's count. */
  value: number;
  /** A histogram's sum (NaN when absent or not a histogram). */
  sum: number;
  /** Data point flag FLAG_NO_RECORDED_VALUE (bit 0). */
  noRecordedValue: boolean;
}

export interface MetricRead {
  name: string;
  unit: string;
  scope: string;
  type: MetricType;
  temporality: Temporality;
  monotonic: boolean;
  points: MetricPoint[];
}

export interface ResourceMetricsRead {
  /** The resource's attributes; with `ReadOptions.lazy`, empty until `resourceAttributes` decodes them. */
  resource: Record<string, AttrValue>;
  /** With `ReadOptions.lazy`: the bytes of the resource fields as a latin1 string (see MetricPoint.attrKey). */
  resourceKey: string;
  /** With `ReadOptions.lazy`: [start, end) of each KeyValue's content of the resource. */
  resourceRanges: number[] | undefined;
  metrics: MetricRead[];
}

export interface ReadOptions {
  /**
   * Check the attributes of points and resources as they are read but leave them undecoded (no strings made):
   * `attrKey` / `resourceKey` identify them, `pointAttributes` / `resourceAttributes` decode them when needed.
   * What is accepted and what throws is the same as without.
   */
  lazy?: boolean;
  /**
   * A test on a metric's name bytes before it is decoded: false skips the metric unread (a cheap test of an
   * allow-list's prefixes, so that most names are never turned into strings). `wanted` still decides.
   */
  mayWant?: (buf: Uint8Array, start: number, end: number) => boolean;
}

/** The bytes `[start, end)` as a string of one char per byte: a cheap exact key for them. */
function latin1(buf: Uint8Array, start: number, end: number): string {
  if (buf instanceof Buffer) return buf.toString('latin1', start, end);
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

const NS_PER_MS = 1e6;
const TWO_32 = 4294967296;

function expectWire(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw new DecodeError(`${what} has wire type ${actual}, expected ${expected}`);
}

/** An unsigned fixed64 as a number (exact up to 2^53). */
function fixed64(buf: Uint8Array, pos: number, end: number): number {
  if (pos + 8 > end) throw new DecodeError('truncated fixed64');
  return readFixed32(buf, pos + 4) * TWO_32 + readFixed32(buf, pos);
}

function sfixed64(buf: Uint8Array, pos: number, end: number): number {
  if (pos + 8 > end) throw new DecodeError('truncated fixed64');
  const lo = readFixed32(buf, pos);
  const hi = readFixed32(buf, pos + 4);
  return hi >= 0x80000000 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
}

function double(buf: Uint8Array, pos: number, end: number): number {
  if (pos + 8 > end) throw new DecodeError('truncated double');
  return readDouble(buf, pos);
}

/**
 * AnyValue → a scalar; arrays, maps and bytes read as undefined (the view never keys on them). With `decode`
 * false the structure is checked the same way but strings are not made (the result is then meaningless).
 */
function readAnyValue(buf: Uint8Array, pos: number, end: number, decode: boolean): AttrValue | undefined {
  let out: AttrValue | undefined;
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wire = tag & 7;
    if (fieldNo === 1 && wire === WIRE_LEN) {
      const e = readLen(buf, pos, end);
      out = decode ? utf8Interned(buf, cursor.pos, e) : '';
      pos = e;
    } else if (fieldNo === 2 && wire === WIRE_VARINT) {
      out = readVarint64(buf, pos, end) !== 0;
      pos = cursor.pos;
    } else if (fieldNo === 3 && wire === WIRE_VARINT) {
      out = readVarint64(buf, pos, end);
      pos = cursor.pos;
    } else if (fieldNo === 4 && wire === WIRE_I64) {
      out = double(buf, pos, end);
      pos += 8;
    } else {
      out = undefined;
      pos = skipField(buf, wire, pos, end);
    }
  }
  return out;
}

/** Reads one KeyValue into `into` (scalar values only); with `into` undefined, only checks it. */
function readKeyValue(buf: Uint8Array, pos: number, end: number, into: Record<string, AttrValue> | undefined): void {
  let key: string | undefined;
  let value: AttrValue | undefined;
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wire = tag & 7;
    if (fieldNo === 1) {
      expectWire(wire, WIRE_LEN, 'KeyValue.key');
      const e = readLen(buf, pos, end);
      if (into !== undefined) key = utf8Interned(buf, cursor.pos, e);
      pos = e;
    } else if (fieldNo === 2) {
      expectWire(wire, WIRE_LEN, 'KeyValue.value');
      const e = readLen(buf, pos, end);
      value = readAnyValue(buf, cursor.pos, e, into !== undefined);
      pos = e;
    } else pos = skipField(buf, wire, pos, end);
  }
  if (into !== undefined && key !== undefined && value !== undefined) into[key] = value;
}

/** Decode the KeyValues at `ranges` (as `attrRanges` / `resourceRanges` hold them) in order. */
function decodeRanges(buf: Uint8Array, ranges: readonly number[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (let i = 0; i < ranges.length; i += 2) readKeyValue(buf, ranges[i] as number, ranges[i + 1] as number, out);
  return out;
}

/** The attributes of a point read with `ReadOptions.lazy` from `buf` (decoded once, then kept on the point). */
export function pointAttributes(buf: Uint8Array, p: MetricPoint): Record<string, AttrValue> {
  if (p.attrRanges !== undefined) {
    p.attributes = decodeRanges(buf, p.attrRanges);
    p.attrRanges = undefined;
  }
  return p.attributes;
}

/** The resource attributes of a ResourceMetrics read with `ReadOptions.lazy` from `buf` (decoded once). */
export function resourceAttributes(buf: Uint8Array, rm: ResourceMetricsRead): Record<string, AttrValue> {
  if (rm.resourceRanges !== undefined) {
    rm.resource = decodeRanges(buf, rm.resourceRanges);
    rm.resourceRanges = undefined;
  }
  return rm.resource;
}

/**
 * Reads a Resource's attributes into `rm.resource`, or, when `rm.resourceRanges` is set (lazy), checks them and
 * records where they are and their bytes in `rm.resourceKey`.
 */
function readResource(buf: Uint8Array, pos: number, end: number, rm: ResourceMetricsRead): void {
  const lazy = rm.resourceRanges;
  while (pos < end) {
    const fieldStart = pos;
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    if (tag >>> 3 === 1) {
      expectWire(tag & 7, WIRE_LEN, 'Resource.attributes');
      const e = readLen(buf, pos, end);
      const kvStart = cursor.pos;
      if (lazy === undefined) readKeyValue(buf, kvStart, e, rm.resource);
      else {
        readKeyValue(buf, kvStart, e, undefined);
        lazy.push(kvStart, e);
        rm.resourceKey += latin1(buf, fieldStart, e);
      }
      pos = e;
    } else pos = skipField(buf, tag & 7, pos, end);
  }
}

function readScopeName(buf: Uint8Array, pos: number, end: number): string {
  let name = '';
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    if (tag >>> 3 === 1) {
      expectWire(tag & 7, WIRE_LEN, 'InstrumentationScope.name');
      const e = readLen(buf, pos, end);
      name = utf8Interned(buf, cursor.pos, e);
      pos = e;
    } else pos = skipField(buf, tag & 7, pos, end);
  }
  return name;
}

/**
 * Field numbers of a data point message: NumberDataPoint (attributes 7, value 4 double / 6 sfixed64, flags 8),
 * HistogramDataPoint (attributes 9, count 4, sum 5, flags 10), ExponentialHistogramDataPoint (attributes 1,
 * count 4, sum 5, flags 10). start_time_unix_nano is 2 and time_unix_nano 3 in all three.
 */
interface PointLayout {
  attributes: number;
  flags: number;
  histogram: boolean;
}
const NUMBER_POINT: PointLayout = { attributes: 7, flags: 8, histogram: false };
const HISTOGRAM_POINT: PointLayout = { attributes: 9, flags: 10, histogram: true };
const EXP_HISTOGRAM_POINT: PointLayout = { attributes: 1, flags: 10, histogram: true };

function readPoint(buf: Uint8Array, pos: number, end: number, layout: PointLayout, lazy: boolean): MetricPoint {
  const p: MetricPoint = {
    attributes: {},
    attrKey: '',
    attrRanges: lazy ? [] : undefined,
    startMs: 0,
    timeMs: 0,
    value: NaN,
    sum: NaN,
    noRecordedValue: false,
  };
  while (pos < end) {
    const fieldStart = pos;
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wire = tag & 7;
    if (fieldNo === layout.attributes) {
      expectWire(wire, WIRE_LEN, 'data point attributes');
      const e = readLen(buf, pos, end);
      const kvStart = cursor.pos;
      if (p.attrRanges === undefined) readKeyValue(buf, kvStart, e, p.attributes);
      else {
        readKeyValue(buf, kvStart, e, undefined);
        p.attrRanges.push(kvStart, e);
        p.attrKey += latin1(buf, fieldStart, e);
      }
      pos = e;
    } else if (fieldNo === 2 || fieldNo === 3) {
      expectWire(wire, WIRE_I64, fieldNo === 2 ? 'start_time_unix_nano' : 'time_unix_nano');
      const ms = fixed64(buf, pos, end) / NS_PER_MS;
      if (fieldNo === 2) p.startMs = ms;
      else p.timeMs = ms;
      pos += 8;
    } else if (fieldNo === 4) {
      expectWire(wire, WIRE_I64, layout.histogram ? 'count' : 'as_double');
      p.value = layout.histogram ? fixed64(buf, pos, end) : double(buf, pos, end);
      pos += 8;
    } else if (fieldNo === 5 && layout.histogram) {
      expectWire(wire, WIRE_I64, 'sum');
      p.sum = double(buf, pos, end);
      pos += 8;
    } else if (fieldNo === 6 && !layout.histogram) {
      expectWire(wire, WIRE_I64, 'as_int');
      p.value = sfixed64(buf, pos, end);
      pos += 8;
    } else if (fieldNo === layout.flags) {
      expectWire(wire, WIRE_VARINT, 'flags');
      p.noRecordedValue = (readVarint64(buf, pos, end) & 1) === 1;
      pos = cursor.pos;
    } else pos = skipField(buf, wire, pos, end);
  }
  // A histogram point without a count field has count 0 (proto3 default).
  if (layout.histogram && Number.isNaN(p.value)) p.value = 0;
  return p;
}

/** Gauge, Sum, Histogram and ExponentialHistogram share: data_points = 1, aggregation_temporality = 2. */
function readData(buf: Uint8Array, pos: number, end: number, layout: PointLayout, m: MetricRead, lazy: boolean): void {
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wire = tag & 7;
    if (fieldNo === 1) {
      expectWire(wire, WIRE_LEN, 'data_points');
      const e = readLen(buf, pos, end);
      m.points.push(readPoint(buf, cursor.pos, e, layout, lazy));
      pos = e;
    } else if (fieldNo === 2 && m.type !== 'gauge') {
      expectWire(wire, WIRE_VARINT, 'aggregation_temporality');
      m.temporality = readVarint64(buf, pos, end) as Temporality;
      pos = cursor.pos;
    } else if (fieldNo === 3 && m.type === 'sum') {
      expectWire(wire, WIRE_VARINT, 'is_monotonic');
      m.monotonic = readVarint64(buf, pos, end) !== 0;
      pos = cursor.pos;
    } else pos = skipField(buf, wire, pos, end);
  }
}

const DATA_FIELDS: Record<number, [MetricType, PointLayout | undefined]> = {
  5: ['gauge', NUMBER_POINT],
  7: ['sum', NUMBER_POINT],
  9: ['histogram', HISTOGRAM_POINT],
  10: ['exponential_histogram', EXP_HISTOGRAM_POINT],
  11: ['summary', undefined],
};

function readMetric(buf: Uint8Array, pos: number, end: number, scope: string, wanted: (name: string) => boolean, o: ReadOptions): MetricRead | undefined {
  let name: string | undefined;
  let skip = false;
  let unitStart = 0;
  let unitEnd = 0;
  let dataField = 0;
  let dataStart = 0;
  let dataEnd = 0;
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wire = tag & 7;
    if (fieldNo === 1 || fieldNo === 3 || DATA_FIELDS[fieldNo] !== undefined) {
      expectWire(wire, WIRE_LEN, `Metric field ${fieldNo}`);
      const e = readLen(buf, pos, end);
      if (fieldNo === 1) {
        // The last name field wins (protobuf), so a later one may still be wanted.
        skip = o.mayWant !== undefined && !o.mayWant(buf, cursor.pos, e);
        name = skip ? '' : utf8Interned(buf, cursor.pos, e);
      } else if (fieldNo === 3) {
        unitStart = cursor.pos;
        unitEnd = e;
      } else {
        dataField = fieldNo;
        dataStart = cursor.pos;
        dataEnd = e;
      }
      pos = e;
    } else pos = skipField(buf, wire, pos, end);
  }
  if (name === undefined || skip || dataField === 0 || !wanted(name)) return undefined;
  const [type, layout] = DATA_FIELDS[dataField] as [MetricType, PointLayout | undefined];
  if (layout === undefined) return undefined; // summaries carry nothing the view reads
  const unit = unitEnd > unitStart ? utf8Interned(buf, unitStart, unitEnd) : '';
  const m: MetricRead = { name, unit, scope, type, temporality: Temporality.Unspecified, monotonic: false, points: [] };
  readData(buf, dataStart, dataEnd, layout, m, o.lazy === true);
  return m;
}

function readScopeMetrics(buf: Uint8Array, pos: number, end: number, wanted: (name: string) => boolean, out: MetricRead[], o: ReadOptions): void {
  // The scope field usually comes first, but protobuf allows any order: find it before reading metrics.
  let scope = '';
  const metrics: [number, number][] = [];
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    if (fieldNo === 1 || fieldNo === 2) {
      expectWire(tag & 7, WIRE_LEN, fieldNo === 1 ? 'ScopeMetrics.scope' : 'ScopeMetrics.metrics');
      const e = readLen(buf, pos, end);
      if (fieldNo === 1) scope = readScopeName(buf, cursor.pos, e);
      else metrics.push([cursor.pos, e]);
      pos = e;
    } else pos = skipField(buf, tag & 7, pos, end);
  }
  for (const [s, e] of metrics) {
    const m = readMetric(buf, s, e, scope, wanted, o);
    if (m !== undefined) out.push(m);
  }
}

/**
 * Reads the resources of a request and, for each, the metrics `wanted` accepts by name (a resource without any
 * is still returned, with no metrics: it was seen).
 */
export function readMetricsRequest(buf: Uint8Array, wanted: (name: string) => boolean, o: ReadOptions = {}): ResourceMetricsRead[] {
  const out: ResourceMetricsRead[] = [];
  const end = buf.length;
  let pos = 0;
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    if (tag >>> 3 !== 1) {
      pos = skipField(buf, tag & 7, pos, end);
      continue;
    }
    expectWire(tag & 7, WIRE_LEN, 'resource_metrics');
    const rmEnd = readLen(buf, pos, end);
    let p = cursor.pos;
    const rm: ResourceMetricsRead = { resource: {}, resourceKey: '', resourceRanges: o.lazy === true ? [] : undefined, metrics: [] };
    while (p < rmEnd) {
      const t = readUint32(buf, p, rmEnd);
      p = cursor.pos;
      const fieldNo = t >>> 3;
      if (fieldNo === 1 || fieldNo === 2) {
        expectWire(t & 7, WIRE_LEN, fieldNo === 1 ? 'ResourceMetrics.resource' : 'ResourceMetrics.scope_metrics');
        const e = readLen(buf, p, rmEnd);
        if (fieldNo === 1) readResource(buf, cursor.pos, e, rm);
        else readScopeMetrics(buf, cursor.pos, e, wanted, rm.metrics, o);
        p = e;
      } else p = skipField(buf, t & 7, p, rmEnd);
    }
    out.push(rm);
    pos = rmEnd;
  }
  return out;
}
