/**
 * TraceBatch: the one data representation of trace pipelines.
 *
 * A batch keeps the OTLP `ExportTraceServiceRequest` bytes it arrived as and an index of its `ResourceSpans`
 * fields. Nothing is materialised on the way through: receivers validate the structure once (`decode`),
 * processors read or add resource attributes, the analyzer walks spans through a reused `SpanView`, and
 * exporters write the bytes back out. Only a resource that gained attributes is re-encoded; its
 * `scope_spans` bytes are copied verbatim. See docs/architecture.md.
 */
import { DecodeError } from './errors';
import type { BufferLease } from './buffer-pool';
import {
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  bytesEqual,
  cursor,
  encodeStringKeyValueField,
  hex,
  readDouble,
  readFixed32,
  readLen,
  readUint32,
  readVarint32,
  readVarint64,
  skipField,
  skipVarint,
  utf8Interned,
  varintSize,
  writeVarint,
} from './wire';

/** Scalar attribute value as read from an AnyValue (arrays, maps and bytes read as undefined). */
export type AttrValue = string | number | boolean;

/**
 * Maximum message nesting accepted, counted as protobufjs and protoc count it (the request is level 0, a
 * ResourceSpans level 1, a span attribute's AnyValue level 5). Deeper requests are refused: the reference
 * codec (debug exporter, JSON path) and protoc-based consumers downstream could not decode them.
 */
export const MAX_NESTING_DEPTH = 100;

interface ResourceEntry {
  readonly buf: Uint8Array;
  /** Content range of the ResourceSpans message inside `buf`. */
  readonly start: number;
  readonly end: number;
  /** [fieldStart, fieldEnd, contentStart, contentEnd] for each `resource` field (usually one). */
  readonly resourceFields: readonly number[];
  readonly spanCount: number;
  /** KeyValue fields (field 1 of Resource) appended by processors. */
  extra: Uint8Array[] | undefined;
  /** Keys whose original values are dropped on encode (replaced by an appended attribute). */
  replaced: Set<string> | undefined;
}

// ---- structural validation ---------------------------------------------------------------------------

// Per message: field number → expected wire type and, for LEN fields holding a message, the child's id.
const enum Msg {
  ResourceSpans,
  Resource,
  ScopeSpans,
  Scope,
  Span,
  Event,
  Link,
  Status,
  KeyValue,
  AnyValue,
  ArrayValue,
  KeyValueList,
  Bytes, // a LEN field that is a string or bytes
}

type FieldRule = readonly [wireType: number, child: Msg | -1];
const rules: ReadonlyArray<ReadonlyArray<FieldRule | undefined>> = (() => {
  const t: (FieldRule | undefined)[][] = [];
  const L = (child: Msg): FieldRule => [WIRE_LEN, child];
  const B: FieldRule = [WIRE_LEN, Msg.Bytes];
  const V: FieldRule = [WIRE_VARINT, -1];
  const F64: FieldRule = [WIRE_I64, -1];
  const F32: FieldRule = [WIRE_I32, -1];
  t[Msg.ResourceSpans] = [undefined, L(Msg.Resource), L(Msg.ScopeSpans), B];
  t[Msg.Resource] = [undefined, L(Msg.KeyValue), V];
  t[Msg.ScopeSpans] = [undefined, L(Msg.Scope), L(Msg.Span), B];
  t[Msg.Scope] = [undefined, B, B, L(Msg.KeyValue), V];
  t[Msg.Span] = [undefined, B, B, B, B, B, V, F64, F64, L(Msg.KeyValue), V, L(Msg.Event), V, L(Msg.Link), V, L(Msg.Status), F32];
  t[Msg.Event] = [undefined, F64, B, L(Msg.KeyValue), V];
  t[Msg.Link] = [undefined, B, B, B, L(Msg.KeyValue), V, F32];
  // Field 1 is reserved: the pre-1.0 `deprecated_code` (a varint) that old clients still send; skipped as unknown.
  t[Msg.Status] = [undefined, undefined, B, V];
  t[Msg.KeyValue] = [undefined, B, L(Msg.AnyValue)];
  t[Msg.AnyValue] = [undefined, B, V, V, F64, L(Msg.ArrayValue), L(Msg.KeyValueList), B];
  t[Msg.ArrayValue] = [undefined, L(Msg.AnyValue)];
  t[Msg.KeyValueList] = [undefined, L(Msg.KeyValue)];
  return t;
})();

const messageNames = [
  'ResourceSpans',
  'Resource',
  'ScopeSpans',
  'InstrumentationScope',
  'Span',
  'Span.Event',
  'Span.Link',
  'Status',
  'KeyValue',
  'AnyValue',
  'ArrayValue',
  'KeyValueList',
];

/** Read a field tag at `pos` (new position in cursor.pos), rejecting field numbers protobuf does not allow. */
function readTag(buf: Uint8Array, pos: number, end: number): number {
  const tag = readUint32(buf, pos, end);
  const fieldNo = tag >>> 3;
  if (fieldNo === 0) throw new DecodeError('invalid field number 0');
  return tag; // readUint32 keeps tags below 2^32, so field numbers stay within 2^29 - 1
}

/** Validate a message's structure recursively; returns the number of spans found below it. */
function validate(buf: Uint8Array, msg: Msg, pos: number, end: number, depth: number): number {
  if (depth > MAX_NESTING_DEPTH) throw new DecodeError(`message nesting deeper than ${MAX_NESTING_DEPTH} levels`);
  const table = rules[msg] as ReadonlyArray<FieldRule | undefined>;
  let spans = 0;
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
    if (rule[0] !== wireType) {
      throw new DecodeError(`${messageNames[msg]} field ${fieldNo} has wire type ${wireType}, expected ${rule[0]}`);
    }
    if (wireType === WIRE_VARINT) {
      const next = skipField(buf, wireType, pos, end);
      // Every known varint field but AnyValue.int_value is 32-bit (enum, bool, uint32): canonically 1-5 bytes,
      // or 10 for a negative enum. protobufjs misreads 6-9 byte encodings of those, so they are refused.
      const n = next - pos;
      if (n > 5 && n < 10 && !(msg === Msg.AnyValue && fieldNo === 3)) {
        throw new DecodeError(`${messageNames[msg]} field ${fieldNo} is a ${n}-byte varint; a 32-bit value takes at most 5 (or 10 if negative)`);
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
    const child = rule[1];
    if ((msg === Msg.Span && (fieldNo === 1 || fieldNo === 2 || fieldNo === 4)) || (msg === Msg.Link && (fieldNo === 1 || fieldNo === 2))) {
      // Ids are empty or of their exact size (Collectors downstream refuse the whole request otherwise).
      const len = fieldEnd - start;
      const want = fieldNo === 1 ? 16 : 8;
      if (len !== 0 && len !== want) {
        throw new DecodeError(
          `${msg === Msg.Span ? 'Span' : 'Span.Link'} ${fieldNo === 1 ? 'trace_id' : fieldNo === 2 ? 'span_id' : 'parent_span_id'} is ${len} bytes, expected ${want}`,
        );
      }
    }
    if (child !== Msg.Bytes && child !== -1) {
      if (child === Msg.Span) {
        spans++;
        validateSpan(buf, start, fieldEnd, depth + 1);
      } else if (child === Msg.KeyValue) validateKeyValue(buf, start, fieldEnd, depth + 1);
      else spans += validate(buf, child, start, fieldEnd, depth + 1);
    }
    pos = fieldEnd;
  }
  if (pos !== end) throw new DecodeError('field runs past the end of its message');
  return spans;
}

// Fast paths for the messages that make up nearly all of a request (spans, their attributes and scalar values).
// They accept exactly what `validate` accepts: anything they do not recognise at once (unknown fields,
// multi-byte tags, arrays and maps, malformed input) is handed to `validate` from the start of the message,
// which also produces the error messages.

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

// ---- the batch -----------------------------------------------------------------------------------------

const keyBytesCache = new Map<string, Uint8Array>();
const encoder = new TextEncoder();
function keyBytes(key: string): Uint8Array {
  let b = keyBytesCache.get(key);
  if (b === undefined) {
    b = encoder.encode(key);
    if (keyBytesCache.size < 4096) keyBytesCache.set(key, b);
  }
  return b;
}

/**
 * Find attribute `key` among the KeyValue fields numbered `fieldNo` of the message `[pos, end)`; returns the
 * AnyValue content range start (end in cursor.pos) or -1.
 */
function findAttribute(buf: Uint8Array, pos: number, end: number, fieldNo: number, key: Uint8Array): number {
  const wantTag = (fieldNo << 3) | WIRE_LEN;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    if (tag !== wantTag) {
      pos = skipField(buf, tag & 7, pos, end);
      continue;
    }
    const kvEnd = readLen(buf, pos, end);
    const found = anyValueOfKey(buf, cursor.pos, kvEnd, key);
    if (found >= 0) return found;
    pos = kvEnd;
  }
  return -1;
}

/** In KeyValue content `[pos, end)`: if its key equals `key`, return the AnyValue content start (end in cursor.pos). */
function anyValueOfKey(buf: Uint8Array, pos: number, end: number, key: Uint8Array): number {
  // proto3: an absent key field is the empty string
  let keyMatch = key.length === 0;
  let valueStart = -1;
  let valueEnd = -1;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const kEnd = readLen(buf, pos, end);
      keyMatch = bytesEqual(buf, cursor.pos, kEnd, key);
      if (!keyMatch) return -1;
      pos = kEnd;
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      valueEnd = readLen(buf, pos, end);
      valueStart = cursor.pos;
      pos = valueEnd;
    } else {
      pos = skipField(buf, tag & 7, pos, end);
    }
  }
  if (!keyMatch) return -1;
  if (valueStart < 0) {
    cursor.pos = valueStart = end; // key present, empty value
    return valueStart;
  }
  cursor.pos = valueEnd;
  return valueStart;
}

/** Visit the KeyValue fields numbered `fieldNo` of the message `[pos, end)` whose value is a scalar. */
function forEachScalarKeyValue(buf: Uint8Array, pos: number, end: number, fieldNo: number, visit: (key: string, value: AttrValue) => void): void {
  const wantTag = (fieldNo << 3) | WIRE_LEN;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    if (tag !== wantTag) {
      pos = skipField(buf, tag & 7, pos, end);
      continue;
    }
    const kvEnd = readLen(buf, pos, end);
    let p = cursor.pos;
    let key = '';
    let value: AttrValue | undefined;
    while (p < kvEnd) {
      const t = readVarint32(buf, p, kvEnd);
      p = cursor.pos;
      if (t === ((1 << 3) | WIRE_LEN)) {
        const e = readLen(buf, p, kvEnd);
        key = utf8Interned(buf, cursor.pos, e);
        p = e;
      } else if (t === ((2 << 3) | WIRE_LEN)) {
        const e = readLen(buf, p, kvEnd);
        value = readAnyValue(buf, cursor.pos, e);
        p = e;
      } else p = skipField(buf, t & 7, p, kvEnd);
    }
    if (value !== undefined) visit(key, value);
    pos = kvEnd;
  }
}

/** Read a scalar AnyValue from its content range; arrays, maps, bytes and empty values read as undefined. */
function readAnyValue(buf: Uint8Array, pos: number, end: number): AttrValue | undefined {
  let out: AttrValue | undefined;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    switch (tag) {
      case (1 << 3) | WIRE_LEN: {
        const e = readLen(buf, pos, end);
        out = utf8Interned(buf, cursor.pos, e);
        pos = e;
        break;
      }
      case (2 << 3) | WIRE_VARINT:
        out = readVarint32(buf, pos, end) !== 0;
        pos = cursor.pos;
        break;
      case (3 << 3) | WIRE_VARINT:
        out = readVarint64(buf, pos, end);
        pos = cursor.pos;
        break;
      case (4 << 3) | WIRE_I64:
        out = readDouble(buf, pos);
        pos += 8;
        break;
      default:
        pos = skipField(buf, tag & 7, pos, end);
        out = undefined;
    }
  }
  return out;
}

/**
 * A read-only view of one span, reused for every span of a walk: read what you need inside the callback,
 * never keep the view.
 */
export class SpanView {
  /** Index of the span's resource in the batch. */
  resourceIndex = 0;
  /** `service.name` of the span's resource (`unknown_service` when absent). */
  service = '';
  /** OTLP SpanKind (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer). */
  kind = 0;
  /** OTLP status code (0 unset, 1 ok, 2 error). */
  statusCode = 0;
  /** Span duration in nanoseconds (0 when end < start). */
  durationNs = 0;
  /** Start and end as epoch milliseconds (fractional). */
  startTimeMs = 0;
  endTimeMs = 0;
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #nameStart = 0;
  #nameEnd = 0;
  #traceId = 0;
  #spanId = 0;
  #parentSpanId = -1;
  #resource: ResourceEntry | undefined;
  #scopeStart = 0;
  #scopeEnd = 0;
  /**
   * Index of the span's attributes, filled by `load`: per attribute [key start, key length, KeyValue end].
   * Lookups compare key bytes against it instead of re-walking the span. -1 in slot 0 of an entry marks a
   * KeyValue whose key does not come first (looked up the slow way).
   */
  readonly #attrIndex = new Int32Array(3 * 64);
  #attrCount = 0;
  /** More attributes than the index holds: lookups walk the span. */
  #attrOverflow = false;

  /** @internal fill the view from span content `[start, end)`. */
  load(buf: Uint8Array, start: number, end: number): void {
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
    this.kind = 0;
    this.statusCode = 0;
    this.#nameStart = this.#nameEnd = 0;
    this.#traceId = this.#spanId = -1;
    this.#parentSpanId = -1;
    this.#attrCount = 0;
    this.#attrOverflow = false;
    const index = this.#attrIndex;
    let sLo = 0;
    let sHi = 0;
    let eLo = 0;
    let eHi = 0;
    let pos = start;
    while (pos < end) {
      // Tags of fields 1-15 are one byte; decode has already checked the structure.
      let tag = buf[pos] as number;
      if (tag < 0x80) pos++;
      else {
        tag = readVarint32(buf, pos, end);
        pos = cursor.pos;
      }
      switch (tag) {
        // Ids are empty or of their exact size (checked by decode); an empty one reads as ''.
        case (1 << 3) | WIRE_LEN:
        case (2 << 3) | WIRE_LEN:
        case (4 << 3) | WIRE_LEN: {
          const l = buf[pos] as number;
          let at: number;
          if (l < 0x80) {
            at = l === 0 ? -1 : pos + 1;
            pos += 1 + l;
          } else {
            pos = readLen(buf, pos, end); // a length in more bytes than it needs (valid protobuf, rare)
            at = pos > cursor.pos ? cursor.pos : -1;
          }
          if (tag === ((1 << 3) | WIRE_LEN)) this.#traceId = at;
          else if (tag === ((2 << 3) | WIRE_LEN)) this.#spanId = at;
          else this.#parentSpanId = at;
          break;
        }
        case (5 << 3) | WIRE_LEN:
          this.#nameEnd = pos = readLen(buf, pos, end);
          this.#nameStart = cursor.pos;
          break;
        case (6 << 3) | WIRE_VARINT:
          this.kind = readVarint32(buf, pos, end);
          pos = cursor.pos;
          break;
        case (7 << 3) | WIRE_I64:
          sLo = readFixed32(buf, pos);
          sHi = readFixed32(buf, pos + 4);
          pos += 8;
          break;
        case (8 << 3) | WIRE_I64:
          eLo = readFixed32(buf, pos);
          eHi = readFixed32(buf, pos + 4);
          pos += 8;
          break;
        case (9 << 3) | WIRE_LEN: {
          // one-byte lengths (nearly all attributes) read inline
          const l = buf[pos] as number;
          const kvEnd = l < 0x80 ? pos + 1 + l : readLen(buf, pos, end);
          const kvStart = l < 0x80 ? pos + 1 : cursor.pos;
          const n = this.#attrCount;
          if (n * 3 < index.length) {
            // The key is nearly always first, with a one-byte length.
            const kl = buf[kvStart + 1] as number;
            if (buf[kvStart] === 0x0a && kl < 0x80 && kvStart + 2 + kl <= kvEnd) {
              index[n * 3] = kvStart + 2;
              index[n * 3 + 1] = kl;
            } else {
              index[n * 3] = -1;
              index[n * 3 + 1] = kvStart;
            }
            index[n * 3 + 2] = kvEnd;
            this.#attrCount = n + 1;
          } else this.#attrOverflow = true;
          pos = kvEnd;
          break;
        }
        case (15 << 3) | WIRE_LEN: {
          const sEnd = readLen(buf, pos, end);
          let p = cursor.pos;
          while (p < sEnd) {
            const t = readVarint32(buf, p, sEnd);
            p = cursor.pos;
            if (t === ((3 << 3) | WIRE_VARINT)) {
              this.statusCode = readVarint32(buf, p, sEnd);
              p = cursor.pos;
            } else p = skipField(buf, t & 7, p, sEnd);
          }
          pos = sEnd;
          break;
        }
        default:
          pos = skipField(buf, tag & 7, pos, end);
      }
    }
    const d = (eHi - sHi) * 4294967296 + (eLo - sLo);
    this.durationNs = d > 0 ? d : 0;
    this.startTimeMs = (sHi * 4294967296 + sLo) / 1e6;
    this.endTimeMs = (eHi * 4294967296 + eLo) / 1e6;
  }

  /** @internal */
  setResource(entry: ResourceEntry): void {
    this.#resource = entry;
  }

  /** @internal the content range of the `scope` (InstrumentationScope) of the spans that follow; 0, 0 for none. */
  setScope(start: number, end: number): void {
    this.#scopeStart = start;
    this.#scopeEnd = end;
  }

  /** Name of the span's instrumentation scope (`opentelemetry.instrumentation.sqlalchemy`), '' when absent. */
  get scopeName(): string {
    const buf = this.#buf;
    let pos = this.#scopeStart;
    const end = this.#scopeEnd;
    while (pos < end) {
      const tag = readVarint32(buf, pos, end);
      pos = cursor.pos;
      if (tag === ((1 << 3) | WIRE_LEN)) {
        const e = readLen(buf, pos, end);
        return utf8Interned(buf, cursor.pos, e);
      }
      pos = skipField(buf, tag & 7, pos, end);
    }
    return '';
  }

  /**
   * The ids as big-endian 32-bit words without allocating: `out[0..3]` the trace id, `out[4..5]` the span id,
   * `out[6..7]` the parent span id (absent ids leave their words 0). Returns a bit mask of the ids present:
   * 1 trace id, 2 span id, 4 parent span id.
   */
  readIdWords(out: Uint32Array): number {
    const buf = this.#buf;
    let mask = 0;
    out.fill(0, 0, 8);
    const word = (at: number): number =>
      (((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number)) >>> 0;
    if (this.#traceId >= 0) {
      for (let i = 0; i < 4; i++) out[i] = word(this.#traceId + 4 * i);
      mask |= 1;
    }
    if (this.#spanId >= 0) {
      out[4] = word(this.#spanId);
      out[5] = word(this.#spanId + 4);
      mask |= 2;
    }
    if (this.#parentSpanId >= 0) {
      out[6] = word(this.#parentSpanId);
      out[7] = word(this.#parentSpanId + 4);
      mask |= 4;
    }
    return mask;
  }

  /** Every span attribute with a scalar value, in wire order (arrays, maps and bytes are passed over). */
  forEachAttribute(visit: (key: string, value: AttrValue) => void): void {
    forEachScalarKeyValue(this.#buf, this.#start, this.#end, 9, visit);
  }

  /** Every scalar attribute of the span's resource, appended ones included (a replaced value is not visited). */
  forEachResourceAttribute(visit: (key: string, value: AttrValue) => void): void {
    const e = this.#resource;
    if (e === undefined) return;
    const replaced = e.replaced;
    const filtered = replaced === undefined ? visit : (k: string, v: AttrValue): void => (replaced.has(k) ? undefined : visit(k, v));
    for (let f = 0; f < e.resourceFields.length; f += 4) {
      forEachScalarKeyValue(e.buf, e.resourceFields[f + 2] as number, e.resourceFields[f + 3] as number, 1, filtered);
    }
    for (const kv of e.extra ?? []) forEachScalarKeyValue(kv, 0, kv.length, 1, visit);
  }

  get name(): string {
    return utf8Interned(this.#buf, this.#nameStart, this.#nameEnd);
  }

  /** True when the span has a parent span id. */
  get hasParent(): boolean {
    return this.#parentSpanId >= 0;
  }

  traceIdHex(): string {
    return this.#traceId < 0 ? '' : hex(this.#buf, this.#traceId, this.#traceId + 16);
  }

  spanIdHex(): string {
    return this.#spanId < 0 ? '' : hex(this.#buf, this.#spanId, this.#spanId + 8);
  }

  /** The trace id's 16 bytes then the span id's 8 into `into[0, 24)`; false when the span lacks either. */
  copyIds(into: Uint8Array): boolean {
    const t = this.#traceId;
    const s = this.#spanId;
    if (t < 0 || s < 0) return false;
    const buf = this.#buf;
    for (let i = 0; i < 16; i++) into[i] = buf[t + i] as number;
    for (let i = 0; i < 8; i++) into[16 + i] = buf[s + i] as number;
    return true;
  }

  /** A scalar span attribute. */
  attribute(key: string): AttrValue | undefined {
    const kb = keyBytes(key);
    const buf = this.#buf;
    if (this.#attrOverflow) {
      const at = findAttribute(buf, this.#start, this.#end, 9, kb);
      return at < 0 ? undefined : readAnyValue(buf, at, cursor.pos);
    }
    const index = this.#attrIndex;
    const kl = kb.length;
    const k0 = kb[0];
    for (let i = 0, n = this.#attrCount * 3; i < n; i += 3) {
      const ks = index[i] as number;
      const kvEnd = index[i + 2] as number;
      if (ks < 0) {
        const at = anyValueOfKey(buf, index[i + 1] as number, kvEnd, kb);
        if (at >= 0) return readAnyValue(buf, at, cursor.pos);
        continue;
      }
      if (index[i + 1] !== kl || (kl > 0 && buf[ks] !== k0) || !bytesEqual(buf, ks, ks + kl, kb)) continue;
      // Usually the value follows the key; anyValueOfKey handles any other layout (and repeated keys).
      const after = ks + kl;
      if (after < kvEnd && buf[after] === 0x12) {
        const ve = readLen(buf, after + 1, kvEnd);
        if (ve === kvEnd) return readAnyValue(buf, cursor.pos, ve);
      }
      const at = anyValueOfKey(buf, ks - 2, kvEnd, kb);
      return at < 0 ? undefined : readAnyValue(buf, at, cursor.pos);
    }
    return undefined;
  }

  /** A scalar attribute of the span's resource. */
  resourceAttribute(key: string): AttrValue | undefined {
    return this.#resource === undefined ? undefined : entryAttribute(this.#resource, key);
  }
}

/** Where the last `locateAttribute` that returned true found the value (one reused object: no allocation per lookup). */
const located: { buf: Uint8Array; at: number; end: number } = { buf: new Uint8Array(0), at: 0, end: 0 };

/** Whether resource attribute `key` of an entry is present, in the received bytes or among the appended ones; if so, `located` says where. */
function locateAttribute(e: ResourceEntry, key: string): boolean {
  const kb = keyBytes(key);
  if (e.replaced === undefined || !e.replaced.has(key)) {
    // With several `resource` fields (protobuf merge), the first occurrence wins.
    for (let f = 0; f < e.resourceFields.length; f += 4) {
      const at = findAttribute(e.buf, e.resourceFields[f + 2] as number, e.resourceFields[f + 3] as number, 1, kb);
      if (at >= 0) return setLocated(e.buf, at, cursor.pos);
    }
  }
  for (const kv of e.extra ?? []) {
    const at = findAttribute(kv, 0, kv.length, 1, kb);
    if (at >= 0) return setLocated(kv, at, cursor.pos);
  }
  return false;
}

function setLocated(buf: Uint8Array, at: number, end: number): true {
  located.buf = buf;
  located.at = at;
  located.end = end;
  return true;
}

function entryAttribute(e: ResourceEntry, key: string): AttrValue | undefined {
  return locateAttribute(e, key) ? readAnyValue(located.buf, located.at, located.end) : undefined;
}

export class TraceBatch {
  readonly #entries: ResourceEntry[];
  /** The original request bytes when they can be forwarded unchanged. */
  #pristine: Uint8Array | undefined;
  /** Pooled buffers the entries point into (see retainBytes). */
  readonly #leases: readonly BufferLease[];
  readonly spanCount: number;

  private constructor(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[] = []) {
    this.#entries = entries;
    this.#pristine = pristine;
    this.#leases = leases;
    let n = 0;
    for (const e of entries) n += e.spanCount;
    this.spanCount = n;
  }

  /**
   * Validate and index an encoded `ExportTraceServiceRequest`. Throws DecodeError (→ INVALID_ARGUMENT /
   * 400) when any level of the message is malformed. The bytes are kept, not copied: the caller must not
   * reuse the buffer — unless it is pooled and `lease` says so (see retainBytes).
   */
  static decode(bytes: Uint8Array, lease?: BufferLease): TraceBatch {
    const entries: ResourceEntry[] = [];
    let pos = 0;
    const end = bytes.length;
    let onlyResourceSpans = true;
    while (pos < end) {
      const tag = readTag(bytes, pos, end);
      pos = cursor.pos;
      if (tag !== ((1 << 3) | WIRE_LEN)) {
        if (tag >>> 3 === 1) throw new DecodeError(`resource_spans has wire type ${tag & 7}, expected 2`);
        onlyResourceSpans = false;
        pos = skipField(bytes, tag & 7, pos, end);
        continue;
      }
      const rsEnd = readLen(bytes, pos, end);
      const rsStart = cursor.pos;
      entries.push(indexResourceSpans(bytes, rsStart, rsEnd));
      pos = rsEnd;
    }
    return new TraceBatch(entries, onlyResourceSpans ? bytes : undefined, lease === undefined ? [] : [lease]);
  }

  /** A batch of no spans. */
  static empty(): TraceBatch {
    return new TraceBatch([], new Uint8Array(0));
  }

  /** Concatenate batches (resource order kept). The inputs must not be used afterwards. */
  static concat(batches: readonly TraceBatch[]): TraceBatch {
    if (batches.length === 1) return batches[0] as TraceBatch;
    const entries: ResourceEntry[] = [];
    for (const b of batches) entries.push(...b.#entries);
    return new TraceBatch(
      entries,
      undefined,
      batches.flatMap((b) => b.#leases),
    );
  }

  /** A copy that can gain attributes independently (the bytes are shared, never mutated). */
  clone(): TraceBatch {
    const entries = this.#entries.map((e) => ({
      ...e,
      extra: e.extra === undefined ? undefined : [...e.extra],
      replaced: e.replaced === undefined ? undefined : new Set(e.replaced),
    }));
    return new TraceBatch(entries, this.#pristine, this.#leases);
  }

  /**
   * Keep the received bytes valid beyond the pipeline call that delivered the batch. The receiver's pooled
   * buffer is reused once that call returns, so a component that holds on to the bytes (an exporter queueing
   * `encodeParts()`, which are slices of them) retains them first and calls the returned function, once, when
   * it no longer needs them. Calling it again does nothing.
   */
  retainBytes(): () => void {
    const leases = this.#leases;
    if (leases.length === 0) return noop;
    for (const l of leases) l.retain();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const l of leases) l.release();
    };
  }

  get resourceCount(): number {
    return this.#entries.length;
  }

  /** Spans under resource `i`. */
  resourceSpanCount(i: number): number {
    return this.#entry(i).spanCount;
  }

  /** Split into batches of whole ResourceSpans, each with at most about `maxSpans` spans. */
  split(maxSpans: number): TraceBatch[] {
    if (this.spanCount <= maxSpans) return [this];
    const out: TraceBatch[] = [];
    let cur: ResourceEntry[] = [];
    let n = 0;
    for (const e of this.#entries) {
      if (n > 0 && n + e.spanCount > maxSpans) {
        out.push(new TraceBatch(cur, undefined, this.#leases));
        cur = [];
        n = 0;
      }
      cur.push(e);
      n += e.spanCount;
    }
    if (cur.length > 0) out.push(new TraceBatch(cur, undefined, this.#leases));
    return out;
  }

  /** A scalar resource attribute of resource `i` (appended attributes included). */
  resourceAttribute(i: number, key: string): AttrValue | undefined {
    return entryAttribute(this.#entry(i), key);
  }

  /** True when resource `i` has attribute `key` (of any value type). */
  hasResourceAttribute(i: number, key: string): boolean {
    return locateAttribute(this.#entry(i), key);
  }

  /**
   * Append string attributes to resource `i`. The caller skips keys that are already present (routelens never
   * overwrites an attribute a client sent).
   */
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    if (attrs.length === 0) return;
    const e = this.#entry(i);
    e.extra ??= [];
    for (const [k, v] of attrs) e.extra.push(encodeStringKeyValueField(1, k, v));
    this.#pristine = undefined;
  }

  /** Set string attributes on resource `i`, replacing values the client sent (resourcedetection `override`). */
  setResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    if (attrs.length === 0) return;
    const e = this.#entry(i);
    e.replaced ??= new Set();
    const keep: Uint8Array[] = [];
    for (const kv of e.extra ?? []) {
      if (!attrs.some(([k]) => findAttribute(kv, 0, kv.length, 1, keyBytes(k)) >= 0)) keep.push(kv);
    }
    e.extra = keep;
    for (const [k, v] of attrs) {
      e.replaced.add(k);
      e.extra.push(encodeStringKeyValueField(1, k, v));
    }
    this.#pristine = undefined;
  }

  /**
   * Walk every span, or with `kinds` (a bit mask: bit k set for SpanKind k) only spans of those kinds. The view is
   * reused: read it inside the callback only.
   */
  forEachSpan(visit: (span: SpanView) => void, options?: { kinds?: number }): void {
    const kinds = options?.kinds ?? -1;
    const view = new SpanView();
    for (let r = 0; r < this.#entries.length; r++) {
      const e = this.#entries[r] as ResourceEntry;
      if (e.spanCount === 0) continue;
      view.resourceIndex = r;
      const service = this.resourceAttribute(r, 'service.name');
      view.service = typeof service === 'string' && service !== '' ? service : 'unknown_service';
      view.setResource(e);
      walkSpans(e.buf, e.start, e.end, view, visit, kinds);
    }
  }

  /** The encoded `ExportTraceServiceRequest`. */
  encode(): Uint8Array {
    if (this.#pristine !== undefined) return this.#pristine;
    const out = Buffer.concat(this.encodeParts());
    this.#pristine = out;
    return out;
  }

  /**
   * The encoded `ExportTraceServiceRequest` as parts to be written in order: slices of the received bytes
   * around re-encoded resources. Writing them one after another saves joining them into one more copy of
   * the request. The parts share the received bytes: never modify them.
   */
  encodeParts(): readonly Uint8Array[] {
    if (this.#pristine !== undefined) return [this.#pristine];
    const parts: Uint8Array[] = [];
    for (const e of this.#entries) encodeEntry(e, parts);
    return coalesce(parts);
  }

  /** Encoded size in bytes. */
  get byteLength(): number {
    if (this.#pristine !== undefined) return this.#pristine.length;
    let n = 0;
    for (const p of this.encodeParts()) n += p.length;
    return n;
  }

  #entry(i: number): ResourceEntry {
    const e = this.#entries[i];
    if (e === undefined) throw new RangeError(`Cannot read resource ${i}: the batch has ${this.#entries.length}`);
    return e;
  }
}

const noop = (): void => undefined;

function indexResourceSpans(buf: Uint8Array, start: number, end: number): ResourceEntry {
  const resourceFields: number[] = [];
  let spanCount = 0;
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const tag = readTag(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    if (fieldNo <= 3 && wireType !== WIRE_LEN) {
      throw new DecodeError(`ResourceSpans field ${fieldNo} has wire type ${wireType}, expected 2`);
    }
    if (fieldNo === 1) {
      const fEnd = readLen(buf, pos, end);
      const cStart = cursor.pos;
      validate(buf, Msg.Resource, cStart, fEnd, 2);
      resourceFields.push(fieldStart, fEnd, cStart, fEnd);
      pos = fEnd;
    } else if (fieldNo === 2) {
      const fEnd = readLen(buf, pos, end);
      spanCount += validate(buf, Msg.ScopeSpans, cursor.pos, fEnd, 2);
      pos = fEnd;
    } else {
      pos = skipField(buf, wireType, pos, end);
    }
  }
  return { buf, start, end, resourceFields, spanCount, extra: undefined, replaced: undefined };
}

/**
 * The SpanKind of span content `[start, end)` (0 when absent), read by skipping to field 6 without loading the
 * span: lets walks that only want some kinds pass over the others cheaply.
 */
function peekKind(buf: Uint8Array, start: number, end: number): number {
  let pos = start;
  while (pos < end) {
    const tag = buf[pos] as number;
    if (tag === 0x30) {
      const k = buf[pos + 1] as number;
      return k < 0x80 ? k : readVarint32(buf, pos + 1, end);
    }
    if (tag < 0x80 && (tag & 7) === WIRE_LEN) pos = readLen(buf, pos + 1, end);
    else {
      const t = readVarint32(buf, pos, end);
      pos = skipField(buf, t & 7, cursor.pos, end);
    }
  }
  return 0;
}

function walkSpans(buf: Uint8Array, start: number, end: number, view: SpanView, visit: (span: SpanView) => void, kinds: number): void {
  let pos = start;
  while (pos < end) {
    const tag = readVarint32(buf, pos, end);
    pos = cursor.pos;
    if (tag !== ((2 << 3) | WIRE_LEN)) {
      pos = skipField(buf, tag & 7, pos, end);
      continue;
    }
    const ssEnd = readLen(buf, pos, end);
    let p = cursor.pos;
    view.setScope(0, 0);
    while (p < ssEnd) {
      const t = readVarint32(buf, p, ssEnd);
      p = cursor.pos;
      if (t !== ((2 << 3) | WIRE_LEN)) {
        if (t === ((1 << 3) | WIRE_LEN)) {
          const scopeEnd = readLen(buf, p, ssEnd);
          view.setScope(cursor.pos, scopeEnd);
          p = scopeEnd;
        } else p = skipField(buf, t & 7, p, ssEnd);
        continue;
      }
      const spanEnd = readLen(buf, p, ssEnd);
      const spanStart = cursor.pos;
      if (kinds === -1 || (kinds & (1 << peekKind(buf, spanStart, spanEnd))) !== 0) {
        view.load(buf, spanStart, spanEnd);
        visit(view);
      }
      p = spanEnd;
    }
    pos = ssEnd;
  }
}

/** Write one ResourceSpans field (tag 1 of the request), re-encoding its Resource only when it gained attributes. */
function encodeEntry(e: ResourceEntry, parts: Uint8Array[]): void {
  const content = e.buf.subarray(e.start, e.end);
  if (e.extra === undefined || e.extra.length === 0) {
    parts.push(header(1, content.length), content);
    return;
  }
  // New Resource = contents of every existing resource field (protobuf merge), minus replaced attributes,
  // + appended attributes.
  const kept: Uint8Array[] = [];
  for (let f = 0; f < e.resourceFields.length; f += 4) {
    const from = e.resourceFields[f + 2] as number;
    const to = e.resourceFields[f + 3] as number;
    if (e.replaced === undefined) kept.push(e.buf.subarray(from, to));
    else dropReplaced(e.buf, from, to, e.replaced, kept);
  }
  let resourceLen = 0;
  for (const k of kept) resourceLen += k.length;
  for (const kv of e.extra) resourceLen += kv.length;
  const resHeader = header(1, resourceLen);
  // ResourceSpans content minus the old resource fields, plus the new one.
  let rest = content.length;
  for (let f = 0; f < e.resourceFields.length; f += 4) rest -= (e.resourceFields[f + 1] as number) - (e.resourceFields[f] as number);
  const total = resHeader.length + resourceLen + rest;
  parts.push(header(1, total), resHeader);
  parts.push(...kept, ...e.extra);
  let from = e.start;
  for (let f = 0; f < e.resourceFields.length; f += 4) {
    const fs = e.resourceFields[f] as number;
    if (fs > from) parts.push(e.buf.subarray(from, fs));
    from = e.resourceFields[f + 1] as number;
  }
  if (e.end > from) parts.push(e.buf.subarray(from, e.end));
}

/** Copy the fields of Resource content `[from, to)` except attributes whose key is in `drop`. */
function dropReplaced(buf: Uint8Array, from: number, to: number, drop: ReadonlySet<string>, out: Uint8Array[]): void {
  const keys = [...drop].map(keyBytes);
  let pos = from;
  let runStart = from;
  while (pos < to) {
    const fieldStart = pos;
    const tag = readVarint32(buf, pos, to);
    pos = cursor.pos;
    const fieldEnd = skipField(buf, tag & 7, pos, to);
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const kvEnd = readLen(buf, pos, to);
      const kvStart = cursor.pos;
      if (keys.some((k) => anyValueOfKey(buf, kvStart, kvEnd, k) >= 0)) {
        if (fieldStart > runStart) out.push(buf.subarray(runStart, fieldStart));
        runStart = fieldEnd;
      }
    }
    pos = fieldEnd;
  }
  if (to > runStart) out.push(buf.subarray(runStart, to));
}

/**
 * Join runs of small parts (headers, appended attributes) into one buffer each, so a writer is handed a few
 * large slices rather than hundreds of tiny ones; parts of the received bytes from 4 KiB up stay as they are.
 */
function coalesce(parts: Uint8Array[]): Uint8Array[] {
  const SMALL = 4096;
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const flush = (): void => {
    if (run.length === 1) out.push(run[0] as Uint8Array);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const p of parts) {
    if (p.length === 0) continue;
    if (p.length >= SMALL) {
      flush();
      out.push(p);
    } else {
      run.push(p);
      runBytes += p.length;
    }
  }
  flush();
  return out;
}

function header(fieldNo: number, len: number): Uint8Array {
  const tag = (fieldNo << 3) | WIRE_LEN;
  const out = new Uint8Array(varintSize(tag) + varintSize(len));
  writeVarint(out, writeVarint(out, 0, tag), len);
  return out;
}
