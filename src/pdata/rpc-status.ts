/**
 * google.rpc.Status and RetryInfo (what servers put in gRPC trailers and OTLP/HTTP error bodies) and the
 * partial_success of an Export*ServiceResponse, written and read with wire.ts. These messages are a handful of
 * scalar fields; going through protobufjs for them loaded it (≈ 1.5 MiB of RSS) into every process for the
 * occasional error. protobufjs stays the reference: rpc-status.test.ts compares both on generated messages.
 *
 *   Status  { int32 code = 1; string message = 2; repeated Any details = 3; }   Any { string type_url = 1; bytes value = 2; }
 *   RetryInfo { Duration retry_delay = 1; }   Duration { int64 seconds = 1; int32 nanos = 2; }
 *   Export{Trace,Metrics}ServiceResponse { Export…PartialSuccess partial_success = 1; }
 *   Export…PartialSuccess { int64 rejected_spans | rejected_data_points = 1; string error_message = 2; }
 */
import { DecodeError } from './errors';
import { WIRE_LEN, WIRE_VARINT, cursor, readLen, readUint32, readVarint64, skipField, utf8, varintSize, writeVarint } from './wire';

const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';

// ---- writing -------------------------------------------------------------------------------------------

/** A message being written: its fields' bytes in order. */
class MessageWriter {
  readonly #parts: Uint8Array[] = [];
  #size = 0;

  #push(b: Uint8Array): void {
    this.#parts.push(b);
    this.#size += b.length;
  }

  #varint(n: number): void {
    const out = new Uint8Array(varintSize(n));
    writeVarint(out, 0, n);
    this.#push(out);
  }

  /** A varint field; negative values as 64-bit two's complement (int32 and int64 alike), zero omitted. */
  int(field: number, n: number): this {
    if (n === 0) return this;
    this.#varint((field << 3) | WIRE_VARINT);
    if (n >= 0) this.#varint(n);
    else this.#push(negativeVarint(n));
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.#varint((field << 3) | WIRE_LEN);
    this.#varint(b.length);
    this.#push(b);
    return this;
  }

  /** A string field; the empty string is omitted, as proto3 does. */
  string(field: number, s: string): this {
    return s === '' ? this : this.bytes(field, Buffer.from(s, 'utf8'));
  }

  finish(): Uint8Array {
    return Buffer.concat(this.#parts, this.#size);
  }
}

/** The 10-byte varint of a negative integer (|n| < 2^53) in 64-bit two's complement. */
function negativeVarint(n: number): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(n));
  const out = new Uint8Array(10);
  for (let i = 0; i < 10; i++) {
    out[i] = Number(v & 0x7fn) | (i < 9 ? 0x80 : 0);
    v >>= 7n;
  }
  return out;
}

export function encodeRetryInfo(ms: number): Uint8Array {
  const seconds = Math.floor(ms / 1000);
  const duration = new MessageWriter()
    .int(1, seconds)
    .int(2, Math.round((ms - seconds * 1000) * 1e6))
    .finish();
  return new MessageWriter().bytes(1, duration).finish();
}

/** Encode a google.rpc.Status, with a RetryInfo detail when `retryAfterMs` is given. */
export function encodeRpcStatus(code: number, message: string, retryAfterMs?: number): Uint8Array {
  const w = new MessageWriter().int(1, code).string(2, message);
  if (retryAfterMs !== undefined) w.bytes(3, new MessageWriter().string(1, RETRY_INFO_URL).bytes(2, encodeRetryInfo(retryAfterMs)).finish());
  return w.finish();
}

// ---- reading -------------------------------------------------------------------------------------------

/**
 * Call `onField(field, wireType, pos, end)` for each field of the message in `buf[start, end)`; it returns
 * the position after the field's value, or -1 to have the field skipped. Throws DecodeError on malformed input.
 */
function forEachField(buf: Uint8Array, start: number, end: number, onField: (field: number, wireType: number, pos: number) => number): void {
  let pos = start;
  while (pos < end) {
    const tag = readUint32(buf, pos, end);
    pos = cursor.pos;
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new DecodeError('field number 0');
    const next = onField(field, wireType, pos);
    pos = next >= 0 ? next : skipField(buf, wireType, pos, end);
  }
  if (pos !== end) throw new DecodeError('field runs past the end of its message');
}

/** An int32 field's value: the low 32 bits of the varint, signed (as protobuf reads int32). */
function readInt32(buf: Uint8Array, pos: number, end: number): number {
  return readVarint64(buf, pos, end) | 0;
}

function readRetryDelayMs(buf: Uint8Array, start: number, end: number): number | undefined {
  let delay: number | undefined;
  forEachField(buf, start, end, (field, wireType, pos) => {
    if (field !== 1 || wireType !== WIRE_LEN) return -1;
    const e = readLen(buf, pos, end);
    let seconds = 0;
    let nanos = 0;
    forEachField(buf, cursor.pos, e, (f, wt, p) => {
      if (wt !== WIRE_VARINT || (f !== 1 && f !== 2)) return -1;
      if (f === 1) seconds = readVarint64(buf, p, e);
      else nanos = readInt32(buf, p, e);
      return cursor.pos;
    });
    delay = seconds * 1000 + nanos / 1e6;
    return e;
  });
  return delay;
}

/** The RetryInfo delay of an encoded RetryInfo, in ms. */
export function decodeRetryInfo(bytes: Uint8Array): number | undefined {
  try {
    return readRetryDelayMs(bytes, 0, bytes.length);
  } catch {
    return undefined;
  }
}

/** Decode a google.rpc.Status; returns its message and RetryInfo delay when present. */
export function decodeRpcStatus(bytes: Uint8Array): { code: number; message: string; retryAfterMs: number | undefined } | undefined {
  try {
    let code = 0;
    let message = '';
    let retryAfterMs: number | undefined;
    forEachField(bytes, 0, bytes.length, (field, wireType, pos) => {
      if (field === 1 && wireType === WIRE_VARINT) {
        code = readInt32(bytes, pos, bytes.length);
        return cursor.pos;
      }
      if (wireType !== WIRE_LEN || (field !== 2 && field !== 3)) return -1;
      const e = readLen(bytes, pos, bytes.length);
      if (field === 2) message = utf8(bytes, cursor.pos, e);
      else {
        // Any: a RetryInfo detail is recognised by its type URL, wherever it comes in the Any.
        let typeUrl = '';
        let value: [number, number] | undefined;
        forEachField(bytes, cursor.pos, e, (f, wt, p) => {
          if (wt !== WIRE_LEN || (f !== 1 && f !== 2)) return -1;
          const ve = readLen(bytes, p, e);
          if (f === 1) typeUrl = utf8(bytes, cursor.pos, ve);
          else value = [cursor.pos, ve];
          return ve;
        });
        if (typeUrl === RETRY_INFO_URL && value !== undefined) retryAfterMs = readRetryDelayMs(bytes, value[0], value[1]);
      }
      return e;
    });
    return { code, message, retryAfterMs };
  } catch {
    return undefined;
  }
}

/** Rejected count and message of an encoded Export*ServiceResponse's partial_success (field 1). */
export function decodePartialSuccess(bytes: Uint8Array): { rejected: number; message: string } | undefined {
  if (bytes.length === 0) return undefined;
  try {
    let rejected = 0;
    let message = '';
    forEachField(bytes, 0, bytes.length, (field, wireType, pos) => {
      if (field !== 1 || wireType !== WIRE_LEN) return -1;
      const e = readLen(bytes, pos, bytes.length);
      forEachField(bytes, cursor.pos, e, (f, wt, p) => {
        if (f === 1 && wt === WIRE_VARINT) rejected = readVarint64(bytes, p, e);
        else if (f === 2 && wt === WIRE_LEN) {
          const se = readLen(bytes, p, e);
          message = utf8(bytes, cursor.pos, se);
          return se;
        } else return -1;
        return cursor.pos;
      });
      return e;
    });
    if (rejected === 0 && message === '') return undefined;
    return { rejected, message };
  } catch {
    return undefined;
  }
}
