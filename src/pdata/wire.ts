/**
 * Minimal protobuf wire-format reading and writing without allocation. Readers take `(buf, pos, end)` and
 * leave the new position in `cursor.pos` so no tuple is allocated per field. Every read checks bounds and
 * throws DecodeError on malformed input.
 */
import { DecodeError } from './errors';

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_SGROUP = 3;
export const WIRE_EGROUP = 4;
export const WIRE_I32 = 5;

/** The shared read position (single-threaded; readers never interleave across awaits). */
export const cursor = { pos: 0 };

/**
 * Read an unsigned varint used for tags, lengths and enums, exact up to 2^53. Ten-byte encodings (negative
 * int32 enums) come back as large numbers, which callers treat as out of range.
 */
export function readVarint32(buf: Uint8Array, pos: number, end: number): number {
  if (pos < end) {
    const b0 = buf[pos] as number;
    if (b0 < 0x80) {
      cursor.pos = pos + 1;
      return b0;
    }
  }
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new DecodeError('truncated varint');
    const b = buf[pos++] as number;
    if (i < 8) result += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) {
      cursor.pos = pos;
      return result;
    }
  }
  throw new DecodeError('varint longer than 10 bytes');
}

/**
 * Read a tag or a length: a uint32 varint of at most 5 bytes. Longer (non-canonical) encodings and values of
 * 2^32 or more are rejected: protobufjs reads these as uint32 (skipping a fixed 10 bytes for a long one) and would disagree with us about
 * where the next field starts, so accepting them would forward bytes other decoders misread.
 */
export function readUint32(buf: Uint8Array, pos: number, end: number): number {
  if (pos < end) {
    const b0 = buf[pos] as number;
    if (b0 < 0x80) {
      cursor.pos = pos + 1;
      return b0;
    }
  }
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw new DecodeError('truncated varint');
    const b = buf[pos++] as number;
    if (i === 4 && b >= 0x10)
      throw new DecodeError(b >= 0x80 ? 'varint longer than 5 bytes where a 32-bit tag or length is expected' : 'tag or length exceeds 32 bits');
    result += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) {
      cursor.pos = pos;
      return result;
    }
  }
  throw new DecodeError('varint longer than 5 bytes where a 32-bit tag or length is expected');
}

/** Read a varint as a JS number (exact up to 2^53), e.g. for int64 attribute values. */
export function readVarint64(buf: Uint8Array, pos: number, end: number): number {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new DecodeError('truncated varint');
    const b = buf[pos++] as number;
    if (shift < 28) lo |= (b & 0x7f) << shift;
    else if (shift === 28) {
      lo |= (b & 0x0f) << 28;
      hi |= (b & 0x7f) >> 4;
    } else hi |= (b & 0x7f) << (shift - 32);
    shift += 7;
    if ((b & 0x80) === 0) {
      cursor.pos = pos;
      lo >>>= 0;
      // two's complement for negative int64
      if (hi & 0x80000000) return -((~hi >>> 0) * 4294967296 + ((~lo >>> 0) + 1));
      return (hi >>> 0) * 4294967296 + lo;
    }
  }
  throw new DecodeError('varint longer than 10 bytes');
}

export function skipVarint(buf: Uint8Array, pos: number, end: number): number {
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new DecodeError('truncated varint');
    if (((buf[pos++] as number) & 0x80) === 0) return pos;
  }
  throw new DecodeError('varint longer than 10 bytes');
}

/**
 * Skip the value of a field with the given wire type starting at `pos`; returns the position after it.
 * Groups are rejected: OTLP never uses them.
 */
export function skipField(buf: Uint8Array, wireType: number, pos: number, end: number): number {
  switch (wireType) {
    case WIRE_VARINT:
      return skipVarint(buf, pos, end);
    case WIRE_I64:
      if (pos + 8 > end) throw new DecodeError('truncated fixed64');
      return pos + 8;
    case WIRE_I32:
      if (pos + 4 > end) throw new DecodeError('truncated fixed32');
      return pos + 4;
    case WIRE_LEN: {
      const len = readUint32(buf, pos, end);
      const start = cursor.pos;
      if (len > end - start) throw new DecodeError('length prefix points past the end of the message');
      return start + len;
    }
    default:
      throw new DecodeError(`invalid wire type ${wireType}`);
  }
}

/** Read a length prefix at `pos`; sets cursor.pos to the start of the content and returns its end. */
export function readLen(buf: Uint8Array, pos: number, end: number): number {
  // Most lengths fit one byte: read those inline (this runs for every field of every span).
  const b = buf[pos] as number;
  if (b < 0x80 && pos < end) {
    const e = pos + 1 + b;
    if (e > end) throw new DecodeError('length prefix points past the end of the message');
    cursor.pos = pos + 1;
    return e;
  }
  const len = readUint32(buf, pos, end);
  const start = cursor.pos;
  if (len > end - start) throw new DecodeError('length prefix points past the end of the message');
  return start + len;
}

export function readFixed32(buf: Uint8Array, pos: number): number {
  return ((buf[pos] as number) | ((buf[pos + 1] as number) << 8) | ((buf[pos + 2] as number) << 16)) + (buf[pos + 3] as number) * 0x1000000;
}

export function readDouble(buf: Uint8Array, pos: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset + pos, 8);
  return dv.getFloat64(0, true);
}

/** Number of bytes a varint encoding of `n` (0 ≤ n < 2^53) takes. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Write `n` (0 ≤ n < 2^53) as a varint at `pos`; returns the position after it. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** Encode a length-delimited field header (tag + length). */
export function lenHeader(fieldNumber: number, length: number): Uint8Array {
  const tag = (fieldNumber << 3) | WIRE_LEN;
  const out = new Uint8Array(varintSize(tag) + varintSize(length));
  writeVarint(out, writeVarint(out, 0, tag), length);
  return out;
}

const textEncoder = new TextEncoder();

/** Encode `KeyValue{key, value: AnyValue{string_value}}` as the bytes of a repeated field `fieldNumber`. */
export function encodeStringKeyValueField(fieldNumber: number, key: string, value: string): Uint8Array {
  // Enrichment adds the same few attributes (a pod's) to request after request: encode each pair once.
  // The bytes are shared and never written to. Nested maps rather than one joined string key: joining cost a
  // concatenation and the hashing of a fresh string per attribute per request.
  const cached = kvCache[fieldNumber]?.get(key)?.get(value);
  if (cached !== undefined) return cached;
  const out = encodeKeyValue(fieldNumber, key, value);
  if (kvCacheSize >= KV_CACHE_SIZE) {
    kvCache.length = 0;
    kvCacheSize = 0;
  }
  const byKey = (kvCache[fieldNumber] ??= new Map());
  let byValue = byKey.get(key);
  if (byValue === undefined) byKey.set(key, (byValue = new Map()));
  byValue.set(value, out);
  kvCacheSize++;
  return out;
}

const KV_CACHE_SIZE = 16_384;
/** Encoded fields by field number, key and value; cleared whole once it holds KV_CACHE_SIZE of them. */
const kvCache: Map<string, Map<string, Uint8Array>>[] = [];
let kvCacheSize = 0;

function encodeKeyValue(fieldNumber: number, key: string, value: string): Uint8Array {
  const k = textEncoder.encode(key);
  const v = textEncoder.encode(value);
  const anyValueLen = 1 + varintSize(v.length) + v.length; // string_value = 1
  const kvLen = 1 + varintSize(k.length) + k.length + 1 + varintSize(anyValueLen) + anyValueLen;
  const tag = (fieldNumber << 3) | WIRE_LEN;
  const out = new Uint8Array(varintSize(tag) + varintSize(kvLen) + kvLen);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, kvLen);
  out[p++] = (1 << 3) | WIRE_LEN; // key
  p = writeVarint(out, p, k.length);
  out.set(k, p);
  p += k.length;
  out[p++] = (2 << 3) | WIRE_LEN; // value
  p = writeVarint(out, p, anyValueLen);
  out[p++] = (1 << 3) | WIRE_LEN; // string_value
  p = writeVarint(out, p, v.length);
  out.set(v, p);
  return out;
}

/** A KeyValue field numbered `fieldNumber` with a double value (`AnyValue.double_value`). */
export function encodeDoubleKeyValueField(fieldNumber: number, key: string, value: number): Uint8Array {
  const k = textEncoder.encode(key);
  const anyValueLen = 9; // double_value = 4, fixed64
  const kvLen = 1 + varintSize(k.length) + k.length + 1 + varintSize(anyValueLen) + anyValueLen;
  const tag = (fieldNumber << 3) | WIRE_LEN;
  const out = new Uint8Array(varintSize(tag) + varintSize(kvLen) + kvLen);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, kvLen);
  out[p++] = (1 << 3) | WIRE_LEN;
  p = writeVarint(out, p, k.length);
  out.set(k, p);
  p += k.length;
  out[p++] = (2 << 3) | WIRE_LEN;
  p = writeVarint(out, p, anyValueLen);
  out[p++] = (4 << 3) | WIRE_I64;
  new DataView(out.buffer, out.byteOffset + p, 8).setFloat64(0, value, true);
  return out;
}

/** Compare `buf[start, end)` with `bytes`. */
export function bytesEqual(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

// Request bodies are Buffers: decode in place instead of creating a Buffer view per string.
export function utf8(buf: Uint8Array, start: number, end: number): string {
  if (buf instanceof Buffer) return buf.toString('utf8', start, end);
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

/** Slots of the short-string table (a power of two). */
const INTERN_SLOTS = 4096;
/** Longest string kept in it: attribute values of routes, methods, services and the like. */
const INTERN_MAX_BYTES = 48;
const internTable: string[] = new Array<string>(INTERN_SLOTS).fill('');

/**
 * `utf8(buf, start, end)` for values that repeat from span to span (methods, route templates, service
 * names): a short ASCII string seen before is returned from a direct-mapped table instead of being decoded
 * again, so reading it allocates nothing and makes no call into C++. Other strings are decoded as usual (a
 * slot holds the last string hashed to it, so values that do not repeat only cost the hash).
 */
export function utf8Interned(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0 || n > INTERN_MAX_BYTES) return n <= 0 ? '' : utf8(buf, start, end);
  let h = 0x811c9dc5; // FNV-1a
  for (let i = start; i < end; i++) {
    const b = buf[i] as number;
    if (b >= 0x80) return utf8(buf, start, end);
    h = Math.imul(h ^ b, 0x01000193);
  }
  const slot = (h ^ (h >>> 15)) & (INTERN_SLOTS - 1);
  const cached = internTable[slot] as string;
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return cached;
  }
  const fresh = utf8(buf, start, end);
  internTable[slot] = fresh;
  return fresh;
}

/** Slots of the attribute-key table (a power of two). */
const KEY_SLOTS = 1024;
const keyTable: string[] = new Array<string>(KEY_SLOTS).fill('');

/**
 * `utf8(buf, start, end)` for attribute keys: few distinct short ASCII strings read for every span. The slot is
 * picked from the length and five sampled bytes rather than a hash of every byte (a pair that collides only costs
 * a decode); the full comparison with the slot's string is what makes the answer right.
 */
export function utf8Key(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return '';
  const last = end - 1;
  const h = Math.imul(
    n ^
      ((buf[start] as number) << 5) ^
      ((buf[start + (n >> 1)] as number) << 10) ^
      ((buf[last] as number) << 15) ^
      ((buf[last - (n > 1 ? 1 : 0)] as number) << 20),
    0x9e3779b1,
  );
  const slot = (h ^ ((buf[last - (n > 2 ? 2 : 0)] as number) << 3)) >>> 22;
  const cached = keyTable[slot] as string;
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return cached;
  }
  const fresh = utf8Interned(buf, start, end);
  if (n <= INTERN_MAX_BYTES) keyTable[slot] = fresh;
  return fresh;
}

export function hex(buf: Uint8Array, start: number, end: number): string {
  if (buf instanceof Buffer) return buf.toString('hex', start, end);
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('hex');
}
