/**
 * Attribute lookup in encoded OTLP messages: find a `KeyValue` by comparing key bytes, read a scalar `AnyValue`
 * in place, visit every scalar one. Shared by resource attributes (every signal) and span attributes.
 */
import { WIRE_I64, WIRE_LEN, WIRE_VARINT, bytesEqual, cursor, readDouble, readLen, readVarint32, readVarint64, skipField, utf8Interned, utf8Key } from './wire';

/** Scalar attribute value as read from an AnyValue (arrays, maps and bytes read as undefined). */
export type AttrValue = string | number | boolean;

const keyBytesCache = new Map<string, Uint8Array>();
const encoder = new TextEncoder();
export function keyBytes(key: string): Uint8Array {
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
export function findAttribute(buf: Uint8Array, pos: number, end: number, fieldNo: number, key: Uint8Array): number {
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
export function anyValueOfKey(buf: Uint8Array, pos: number, end: number, key: Uint8Array): number {
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

/**
 * Visit the KeyValue fields numbered `fieldNo` of the message `[pos, end)` whose value is a scalar; with `wants`,
 * only those whose key it accepts (the others' values are not decoded).
 */
export function forEachScalarKeyValue(
  buf: Uint8Array,
  pos: number,
  end: number,
  fieldNo: number,
  visit: (key: string, value: AttrValue) => boolean | void,
  wants?: (key: string) => boolean,
): boolean {
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
    let valueStart = -1;
    let valueEnd = -1;
    while (p < kvEnd) {
      const t = readVarint32(buf, p, kvEnd);
      p = cursor.pos;
      if (t === ((1 << 3) | WIRE_LEN)) {
        const e = readLen(buf, p, kvEnd);
        key = utf8Key(buf, cursor.pos, e);
        p = e;
      } else if (t === ((2 << 3) | WIRE_LEN)) {
        valueEnd = readLen(buf, p, kvEnd);
        valueStart = cursor.pos;
        p = valueEnd;
      } else p = skipField(buf, t & 7, p, kvEnd);
    }
    // The value is decoded after the whole KeyValue is read (fields may come in any order), and only if wanted.
    if (valueStart >= 0 && (wants === undefined || wants(key))) value = readAnyValue(buf, valueStart, valueEnd);
    if (value !== undefined && visit(key, value) === false) return false;
    pos = kvEnd;
  }
  return true;
}

/** Read a scalar AnyValue from its content range; arrays, maps, bytes and empty values read as undefined. */
export function readAnyValue(buf: Uint8Array, pos: number, end: number): AttrValue | undefined {
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
