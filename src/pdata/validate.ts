/**
 * Structural validation of OTLP export requests of every signal, without materialising anything: one walk
 * over the bytes checks every tag, wire type and length at every level (resources, scopes, spans, metrics and
 * their data points, log records, attributes, nested AnyValues up to MAX_NESTING_DEPTH message levels, id
 * lengths, 32-bit varints of at most 5 bytes) and counts the signal's items (spans, data points, log
 * records). This is the validation the Collector gets from a full unmarshal; malformed input is a DecodeError.
 *
 * The rules are one table per message (field number → wire type, and what a LEN field holds). Spans,
 * attributes and scalar AnyValues, nearly all of a trace request, have hand-written fast paths that accept
 * exactly what the table accepts and hand anything else to it.
 */
import { DecodeError } from './errors';
import { WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, cursor, readLen, readUint32, skipField, skipVarint } from './wire';

/**
 * Maximum message nesting accepted, counted as protobufjs and protoc count it (the request is level 0, a
 * ResourceSpans level 1, a span attribute's AnyValue level 5). Deeper requests are refused: the reference
 * codec (debug exporter, JSON path) and protoc-based consumers downstream could not decode them.
 */
export const MAX_NESTING_DEPTH = 100;

/** The messages of the three signals, and markers for what a LEN or VARINT field holds when it is not a message. */
export const enum Msg {
  // shared
  Resource,
  Scope,
  KeyValue,
  AnyValue,
  ArrayValue,
  KeyValueList,
  // traces
  ResourceSpans,
  ScopeSpans,
  Span,
  Event,
  Link,
  Status,
  // metrics
  ResourceMetrics,
  ScopeMetrics,
  Metric,
  Gauge,
  Sum,
  Histogram,
  ExponentialHistogram,
  Summary,
  NumberDataPoint,
  HistogramDataPoint,
  ExponentialHistogramDataPoint,
  Buckets,
  SummaryDataPoint,
  ValueAtQuantile,
  Exemplar,
  // logs
  ResourceLogs,
  ScopeLogs,
  LogRecord,
  // not messages: what a LEN or VARINT field holds
  /** A string or bytes. */
  Bytes,
  /** A trace id: empty or 16 bytes. */
  TraceId,
  /** A span id: empty or 8 bytes. */
  SpanId,
  /** A repeated fixed64 or double: packed (LEN, a multiple of 8 bytes) or one element (I64). */
  Packed64,
  /** A repeated uint64: packed (LEN, varints) or one element (VARINT). */
  PackedVarint,
  /** A 64-bit varint (any canonical length up to 10 bytes). */
  Varint64,
  /** A 32-bit varint (enum, bool, uint32, sint32). */
  Varint32,
  /** Fixed-size values (I64, I32): nothing to check beyond their length. */
  Fixed,
}

const MESSAGE_NAMES: readonly string[] = [
  'Resource',
  'InstrumentationScope',
  'KeyValue',
  'AnyValue',
  'ArrayValue',
  'KeyValueList',
  'ResourceSpans',
  'ScopeSpans',
  'Span',
  'Span.Event',
  'Span.Link',
  'Status',
  'ResourceMetrics',
  'ScopeMetrics',
  'Metric',
  'Gauge',
  'Sum',
  'Histogram',
  'ExponentialHistogram',
  'Summary',
  'NumberDataPoint',
  'HistogramDataPoint',
  'ExponentialHistogramDataPoint',
  'ExponentialHistogramDataPoint.Buckets',
  'SummaryDataPoint',
  'SummaryDataPoint.ValueAtQuantile',
  'Exemplar',
  'ResourceLogs',
  'ScopeLogs',
  'LogRecord',
];

/** The protobuf name of a message, for error messages. */
export function messageName(msg: Msg): string {
  return MESSAGE_NAMES[msg] ?? 'message';
}

/** Expected wire type, what the field holds, and (ids only) the field's name for error messages. */
type FieldRule = readonly [wireType: number, holds: Msg, name?: string];

const rules: ReadonlyArray<ReadonlyArray<FieldRule | undefined>> = (() => {
  const t: (FieldRule | undefined)[][] = [];
  const L = (child: Msg): FieldRule => [WIRE_LEN, child];
  const _ = undefined;
  const B: FieldRule = [WIRE_LEN, Msg.Bytes];
  const V: FieldRule = [WIRE_VARINT, Msg.Varint32];
  const F64: FieldRule = [WIRE_I64, Msg.Fixed];
  const F32: FieldRule = [WIRE_I32, Msg.Fixed];
  const P64: FieldRule = [WIRE_LEN, Msg.Packed64];
  const traceId = (name = 'trace_id'): FieldRule => [WIRE_LEN, Msg.TraceId, name];
  const spanId = (name = 'span_id'): FieldRule => [WIRE_LEN, Msg.SpanId, name];
  t[Msg.Resource] = [_, L(Msg.KeyValue), V];
  t[Msg.Scope] = [_, B, B, L(Msg.KeyValue), V];
  t[Msg.KeyValue] = [_, B, L(Msg.AnyValue)];
  t[Msg.AnyValue] = [_, B, V, [WIRE_VARINT, Msg.Varint64], F64, L(Msg.ArrayValue), L(Msg.KeyValueList), B];
  t[Msg.ArrayValue] = [_, L(Msg.AnyValue)];
  t[Msg.KeyValueList] = [_, L(Msg.KeyValue)];

  t[Msg.ResourceSpans] = [_, L(Msg.Resource), L(Msg.ScopeSpans), B];
  t[Msg.ScopeSpans] = [_, L(Msg.Scope), L(Msg.Span), B];
  t[Msg.Span] = [_, traceId(), spanId(), B, spanId('parent_span_id'), B, V, F64, F64, L(Msg.KeyValue), V, L(Msg.Event), V, L(Msg.Link), V, L(Msg.Status), F32];
  t[Msg.Event] = [_, F64, B, L(Msg.KeyValue), V];
  t[Msg.Link] = [_, traceId(), spanId(), B, L(Msg.KeyValue), V, F32];
  // Field 1 is reserved: the pre-1.0 `deprecated_code` (a varint) that old clients still send; skipped as unknown.
  t[Msg.Status] = [_, _, B, V];

  t[Msg.ResourceMetrics] = [_, L(Msg.Resource), L(Msg.ScopeMetrics), B];
  t[Msg.ScopeMetrics] = [_, L(Msg.Scope), L(Msg.Metric), B];
  // Fields 4, 6 and 8 are reserved (pre-1.0 int/double gauges and sums): skipped as unknown.
  t[Msg.Metric] = [_, B, B, B, _, L(Msg.Gauge), _, L(Msg.Sum), _, L(Msg.Histogram), L(Msg.ExponentialHistogram), L(Msg.Summary), L(Msg.KeyValue)];
  t[Msg.Gauge] = [_, L(Msg.NumberDataPoint)];
  t[Msg.Sum] = [_, L(Msg.NumberDataPoint), V, V];
  t[Msg.Histogram] = [_, L(Msg.HistogramDataPoint), V];
  t[Msg.ExponentialHistogram] = [_, L(Msg.ExponentialHistogramDataPoint), V];
  t[Msg.Summary] = [_, L(Msg.SummaryDataPoint)];
  // Field 1 of the data points (pre-1.0 string labels) is reserved: skipped as unknown.
  t[Msg.NumberDataPoint] = [_, _, F64, F64, F64, L(Msg.Exemplar), F64, L(Msg.KeyValue), V];
  t[Msg.HistogramDataPoint] = [_, _, F64, F64, F64, F64, P64, P64, L(Msg.Exemplar), L(Msg.KeyValue), V, F64, F64];
  t[Msg.ExponentialHistogramDataPoint] = [_, L(Msg.KeyValue), F64, F64, F64, F64, V, F64, L(Msg.Buckets), L(Msg.Buckets), V, L(Msg.Exemplar), F64, F64, F64];
  t[Msg.Buckets] = [_, V, [WIRE_LEN, Msg.PackedVarint]];
  t[Msg.SummaryDataPoint] = [_, _, F64, F64, F64, F64, L(Msg.ValueAtQuantile), L(Msg.KeyValue), V];
  t[Msg.ValueAtQuantile] = [_, F64, F64];
  t[Msg.Exemplar] = [_, _, F64, F64, spanId(), traceId(), F64, L(Msg.KeyValue)];

  t[Msg.ResourceLogs] = [_, L(Msg.Resource), L(Msg.ScopeLogs), B];
  t[Msg.ScopeLogs] = [_, L(Msg.Scope), L(Msg.LogRecord), B];
  // Field 4 is reserved.
  t[Msg.LogRecord] = [_, F64, V, B, _, L(Msg.AnyValue), L(Msg.KeyValue), V, F32, traceId(), spanId(), F64, B];
  return t;
})();

/** What each signal counts as its items: spans, data points (of any metric type), log records. */
const isItem: readonly boolean[] = (() => {
  const a: boolean[] = [];
  for (const m of [Msg.Span, Msg.NumberDataPoint, Msg.HistogramDataPoint, Msg.ExponentialHistogramDataPoint, Msg.SummaryDataPoint, Msg.LogRecord]) a[m] = true;
  return a;
})();

/** Read a field tag at `pos` (new position in cursor.pos), rejecting field numbers protobuf does not allow. */
export function readTag(buf: Uint8Array, pos: number, end: number): number {
  const tag = readUint32(buf, pos, end);
  const fieldNo = tag >>> 3;
  if (fieldNo === 0) throw new DecodeError('invalid field number 0');
  return tag; // readUint32 keeps tags below 2^32, so field numbers stay within 2^29 - 1
}

/** Validate a message's structure recursively; returns the number of items (spans, data points, log records) below it. */
export function validate(buf: Uint8Array, msg: Msg, pos: number, end: number, depth: number): number {
  if (depth > MAX_NESTING_DEPTH) throw new DecodeError(`message nesting deeper than ${MAX_NESTING_DEPTH} levels`);
  const table = rules[msg] as ReadonlyArray<FieldRule | undefined>;
  let items = 0;
  while (pos < end) {
    // One-byte tags (fields 1-15) are nearly all of them: read those inline.
    let tag = buf[pos] as number;
    if (tag >= 8 && tag < 0x80) pos++;
    else {
      tag = readTag(buf, pos, end);
      pos = cursor.pos;
    }
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    const rule = fieldNo < table.length ? table[fieldNo] : undefined;
    if (rule === undefined) {
      pos = skipField(buf, wireType, pos, end); // unknown field: kept as bytes
      continue;
    }
    const holds = rule[1];
    if (rule[0] !== wireType) {
      // A repeated scalar may also come unpacked, one element per field.
      if (holds === Msg.Packed64 && wireType === WIRE_I64) {
        pos = skipField(buf, wireType, pos, end);
        continue;
      }
      if (holds === Msg.PackedVarint && wireType === WIRE_VARINT) {
        pos = skipVarint(buf, pos, end);
        continue;
      }
      throw new DecodeError(`${messageName(msg)} field ${fieldNo} has wire type ${wireType}, expected ${rule[0]}`);
    }
    if (wireType === WIRE_VARINT) {
      const next = skipField(buf, wireType, pos, end);
      // 32-bit varints (enum, bool, uint32, sint32) take 1-5 bytes canonically, or 10 for a negative enum.
      // protobufjs misreads 6-9 byte encodings of those, so they are refused.
      const n = next - pos;
      if (n > 5 && n < 10 && holds !== Msg.Varint64) {
        throw new DecodeError(`${messageName(msg)} field ${fieldNo} is a ${n}-byte varint; a 32-bit value takes at most 5 (or 10 if negative)`);
      }
      pos = next;
      continue;
    }
    if (wireType !== WIRE_LEN) {
      pos = skipField(buf, wireType, pos, end);
      continue;
    }
    const fieldEnd = readLen(buf, pos, end);
    const start = cursor.pos;
    if (holds === Msg.Span) {
      items++;
      validateSpan(buf, start, fieldEnd, depth + 1);
    } else if (holds === Msg.NumberDataPoint) {
      items++;
      validateNumberDataPoint(buf, start, fieldEnd, depth + 1);
    } else if (holds === Msg.HistogramDataPoint) {
      items++;
      validateHistogramDataPoint(buf, start, fieldEnd, depth + 1);
    } else if (holds === Msg.LogRecord) {
      items++;
      validateLogRecord(buf, start, fieldEnd, depth + 1);
    } else if (holds === Msg.KeyValue) validateKeyValue(buf, start, fieldEnd, depth + 1);
    else if (holds === Msg.AnyValue) validateAnyValue(buf, start, fieldEnd, depth + 1);
    else if (holds < Msg.Bytes) {
      if (isItem[holds] === true) {
        items++;
        validate(buf, holds, start, fieldEnd, depth + 1);
      } else items += validate(buf, holds, start, fieldEnd, depth + 1);
    } else if (holds === Msg.TraceId || holds === Msg.SpanId) {
      // Ids are empty or of their exact size (Collectors downstream refuse the whole request otherwise).
      const len = fieldEnd - start;
      const want = holds === Msg.TraceId ? 16 : 8;
      if (len !== 0 && len !== want) throw new DecodeError(`${messageName(msg)} ${rule[2] as string} is ${len} bytes, expected ${want}`);
    } else if (holds === Msg.Packed64) {
      if ((fieldEnd - start) % 8 !== 0)
        throw new DecodeError(`${messageName(msg)} field ${fieldNo} is packed 64-bit values of ${fieldEnd - start} bytes, not a multiple of 8`);
    } else if (holds === Msg.PackedVarint) {
      let p = start;
      while (p < fieldEnd) p = skipVarint(buf, p, fieldEnd);
    }
    pos = fieldEnd;
  }
  if (pos !== end) throw new DecodeError('field runs past the end of its message');
  return items;
}

// Fast paths for the messages that make up nearly all of a request: spans, number and histogram data points, log
// records, their attributes and scalar values. They accept exactly what `validate` accepts: anything they do not
// recognise at once (unknown fields, multi-byte tags, arrays and maps, malformed input) is handed to `validate`
// from the start of the message, which also produces the error messages.

function validateSpan(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.Span, start, end, depth);
  let pos = start;
  while (pos < end) {
    const tag = buf[pos] as number;
    switch (tag) {
      case 0x0a: // trace_id
      case 0x12: // span_id
      case 0x22: {
        // parent_span_id. Each id is empty or of its exact size, its length one byte; anything else (a wrong
        // size, an over-long length encoding) goes to validate, which reports or accepts it.
        const len = buf[pos + 1] as number;
        if ((len !== 0 && len !== (tag === 0x0a ? 16 : 8)) || pos + 2 + len > end) return void validate(buf, Msg.Span, start, end, depth);
        pos += 2 + len;
        break;
      }
      case 0x1a: // trace_state
      case 0x2a: {
        // name
        const len = buf[pos + 1] as number;
        pos = len < 0x80 && pos + 2 + len <= end ? pos + 2 + len : readLen(buf, pos + 1, end);
        break;
      }
      case 0x30: // kind
      case 0x50: // dropped_attributes_count
      case 0x60: // dropped_events_count
      case 0x70: // dropped_links_count
        if (pos + 1 < end && (buf[pos + 1] as number) < 0x80) pos += 2;
        else return void validate(buf, Msg.Span, start, end, depth);
        break;
      case 0x39: // start_time_unix_nano
      case 0x41: // end_time_unix_nano
        if (pos + 9 > end) return void validate(buf, Msg.Span, start, end, depth);
        pos += 9;
        break;
      case 0x4a: {
        // attributes: nearly all are a short key and a short scalar value, checked here without a call
        const kvLen = buf[pos + 1] as number;
        if (kvLen < 0x80 && pos + 2 + kvLen <= end && isShortScalarKeyValue(buf, pos + 2, pos + 2 + kvLen)) {
          pos += 2 + kvLen;
          break;
        }
        const e = readLen(buf, pos + 1, end);
        validateKeyValue(buf, cursor.pos, e, depth + 1);
        pos = e;
        break;
      }
      case 0x5a: // events
      case 0x6a: // links
      case 0x7a: {
        // status
        const e = readLen(buf, pos + 1, end);
        validate(buf, tag === 0x5a ? Msg.Event : tag === 0x6a ? Msg.Link : Msg.Status, cursor.pos, e, depth + 1);
        pos = e;
        break;
      }
      case 0x85: // flags (field 16, fixed32): a two-byte tag
        if (buf[pos + 1] !== 0x01 || pos + 6 > end) return void validate(buf, Msg.Span, start, end, depth);
        pos += 6;
        break;
      default:
        // unknown fields, other multi-byte tags, anything odd
        return void validate(buf, Msg.Span, start, end, depth);
    }
  }
  if (pos !== end) validate(buf, Msg.Span, start, end, depth);
}

/**
 * A NumberDataPoint (metrics' gauges and sums): fixed64 times and value, attributes, flags. Exemplars and anything
 * else go to `validate`.
 */
export function validateNumberDataPoint(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.NumberDataPoint, start, end, depth);
  let pos = start;
  while (pos < end) {
    switch (buf[pos]) {
      case 0x11: // start_time_unix_nano
      case 0x19: // time_unix_nano
      case 0x21: // as_double
      case 0x31: // as_int
        if (pos + 9 > end) return void validate(buf, Msg.NumberDataPoint, start, end, depth);
        pos += 9;
        break;
      case 0x3a: // attributes
        pos = keyValueField(buf, pos, end, depth);
        break;
      case 0x40: // flags
        if (pos + 1 < end && (buf[pos + 1] as number) < 0x80) pos += 2;
        else return void validate(buf, Msg.NumberDataPoint, start, end, depth);
        break;
      default:
        return void validate(buf, Msg.NumberDataPoint, start, end, depth);
    }
  }
  if (pos !== end) validate(buf, Msg.NumberDataPoint, start, end, depth);
}

/** A HistogramDataPoint: fixed64 times, count, sum, min, max; packed bucket counts and bounds (one-byte lengths); attributes, flags. */
export function validateHistogramDataPoint(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.HistogramDataPoint, start, end, depth);
  let pos = start;
  while (pos < end) {
    switch (buf[pos]) {
      case 0x11: // start_time_unix_nano
      case 0x19: // time_unix_nano
      case 0x21: // count
      case 0x29: // sum
      case 0x59: // min
      case 0x61: // max
        if (pos + 9 > end) return void validate(buf, Msg.HistogramDataPoint, start, end, depth);
        pos += 9;
        break;
      case 0x32: // bucket_counts (fixed64)
      case 0x3a: {
        // explicit_bounds (double): packed, whole 8-byte values
        const len = buf[pos + 1] as number;
        if (len >= 0x80 || pos + 2 + len > end || len % 8 !== 0) return void validate(buf, Msg.HistogramDataPoint, start, end, depth);
        pos += 2 + len;
        break;
      }
      case 0x4a: // attributes
        pos = keyValueField(buf, pos, end, depth);
        break;
      case 0x50: // flags
        if (pos + 1 < end && (buf[pos + 1] as number) < 0x80) pos += 2;
        else return void validate(buf, Msg.HistogramDataPoint, start, end, depth);
        break;
      default:
        return void validate(buf, Msg.HistogramDataPoint, start, end, depth);
    }
  }
  if (pos !== end) validate(buf, Msg.HistogramDataPoint, start, end, depth);
}

/** A LogRecord: times, severity, body, attributes, flags, trace and span ids, event name. */
export function validateLogRecord(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.LogRecord, start, end, depth);
  let pos = start;
  while (pos < end) {
    const tag = buf[pos] as number;
    switch (tag) {
      case 0x09: // time_unix_nano
      case 0x59: // observed_time_unix_nano
        if (pos + 9 > end) return void validate(buf, Msg.LogRecord, start, end, depth);
        pos += 9;
        break;
      case 0x10: // severity_number
      case 0x38: // dropped_attributes_count
        if (pos + 1 < end && (buf[pos + 1] as number) < 0x80) pos += 2;
        else return void validate(buf, Msg.LogRecord, start, end, depth);
        break;
      case 0x45: // flags, fixed32
        if (pos + 5 > end) return void validate(buf, Msg.LogRecord, start, end, depth);
        pos += 5;
        break;
      case 0x1a: // severity_text
      case 0x62: {
        // event_name
        const len = buf[pos + 1] as number;
        pos = len < 0x80 && pos + 2 + len <= end ? pos + 2 + len : readLen(buf, pos + 1, end);
        break;
      }
      case 0x4a: // trace_id
      case 0x52: {
        // span_id: empty or of its exact size, the length one byte
        const len = buf[pos + 1] as number;
        if ((len !== 0 && len !== (tag === 0x4a ? 16 : 8)) || pos + 2 + len > end) return void validate(buf, Msg.LogRecord, start, end, depth);
        pos += 2 + len;
        break;
      }
      case 0x2a: {
        // body
        const e = readLen(buf, pos + 1, end);
        validateAnyValue(buf, cursor.pos, e, depth + 1);
        pos = e;
        break;
      }
      case 0x32: // attributes
        pos = keyValueField(buf, pos, end, depth);
        break;
      default:
        return void validate(buf, Msg.LogRecord, start, end, depth);
    }
  }
  if (pos !== end) validate(buf, Msg.LogRecord, start, end, depth);
}

/** A KeyValue field (its one-byte tag at `pos`) of a message at `depth`; returns the position after it. */
function keyValueField(buf: Uint8Array, pos: number, end: number, depth: number): number {
  // Nearly all are a short key and a short scalar value, checked here without a call.
  const kvLen = buf[pos + 1] as number;
  if (kvLen < 0x80 && pos + 2 + kvLen <= end && isShortScalarKeyValue(buf, pos + 2, pos + 2 + kvLen)) return pos + 2 + kvLen;
  const e = readLen(buf, pos + 1, end);
  validateKeyValue(buf, cursor.pos, e, depth + 1);
  return e;
}

/**
 * True when KeyValue content `[p, end)` is a key and a scalar value (string, bool, int or double), every length
 * one byte, nothing else: valid as it stands. False means "not this shape", not "invalid": validateKeyValue decides.
 */
function isShortScalarKeyValue(buf: Uint8Array, p: number, end: number): boolean {
  const kl = buf[p + 1] as number;
  if (buf[p] !== 0x0a || kl >= 0x80) return false;
  p += 2 + kl;
  const vl = buf[p + 1] as number;
  if (p + 2 > end || buf[p] !== 0x12 || vl >= 0x80 || p + 2 + vl !== end) return false;
  p += 2;
  switch (buf[p]) {
    case 0x0a: // string
      return (buf[p + 1] as number) < 0x80 && p + 2 + (buf[p + 1] as number) === end;
    case 0x10: // bool
      return vl === 2 && (buf[p + 1] as number) < 0x80;
    case 0x18: // int: a varint of up to 10 bytes ending the value
      return vl >= 2 && vl <= 11 && (buf[end - 1] as number) < 0x80 && allContinuation(buf, p + 1, end - 1);
    case 0x21: // double
      return vl === 9;
    default:
      return false;
  }
}

function allContinuation(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((buf[i] as number) < 0x80) return false;
  return true;
}

// Keys and string values nearly always have one-byte lengths: those are read inline here (readLen is not
// inlined into these functions), anything else goes through readLen, which also reports the errors. The
// expression is repeated rather than put in a helper: the helper measured ≈ 3 % slower (npm run bench:hot-path).

function validateKeyValue(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.KeyValue, start, end, depth);
  let pos = start;
  while (pos < end) {
    const tag = buf[pos] as number;
    if (tag === 0x0a) {
      const len = buf[pos + 1] as number;
      pos = len < 0x80 && pos + 2 + len <= end ? pos + 2 + len : readLen(buf, pos + 1, end);
    } else if (tag === 0x12) {
      const len = buf[pos + 1] as number;
      if (len < 0x80 && pos + 2 + len <= end) {
        validateAnyValue(buf, pos + 2, pos + 2 + len, depth + 1);
        pos += 2 + len;
      } else {
        const e = readLen(buf, pos + 1, end);
        validateAnyValue(buf, cursor.pos, e, depth + 1);
        pos = e;
      }
    } else return void validate(buf, Msg.KeyValue, start, end, depth);
  }
  if (pos !== end) validate(buf, Msg.KeyValue, start, end, depth);
}

function validateAnyValue(buf: Uint8Array, start: number, end: number, depth: number): void {
  if (depth > MAX_NESTING_DEPTH) return void validate(buf, Msg.AnyValue, start, end, depth);
  let pos = start;
  while (pos < end) {
    const tag = buf[pos] as number;
    if (tag === 0x0a || tag === 0x3a) {
      // string, bytes
      const len = buf[pos + 1] as number;
      pos = len < 0x80 && pos + 2 + len <= end ? pos + 2 + len : readLen(buf, pos + 1, end);
    } else if (tag === 0x10 && pos + 1 < end && (buf[pos + 1] as number) < 0x80)
      pos += 2; // bool
    else if (tag === 0x18)
      pos = skipVarint(buf, pos + 1, end); // int (64-bit: any length up to 10)
    else if (tag === 0x21 && pos + 9 <= end)
      pos += 9; // double
    else return void validate(buf, Msg.AnyValue, start, end, depth);
  }
  if (pos !== end) validate(buf, Msg.AnyValue, start, end, depth);
}
