/**
 * OTLP/JSON ↔ protobuf, through the protobufjs reference codec. OTLP/JSON differs from the canonical proto3
 * JSON mapping in two ways handled here: trace and span ids are hex strings (not base64), and enums may be
 * integers. Field names are lowerCamelCase; snake_case names are accepted too, as the Collector does.
 */
import type * as protobuf from 'protobufjs';
import { DecodeError } from './errors';
import { TYPES, protoType, protobufjs } from './proto';

const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);

function camel(key: string): string {
  return key.includes('_') ? key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : key;
}

/** Normalise a parsed OTLP/JSON document for protobufjs `fromObject`: camelCase keys, hex ids → bytes. */
function normalise(value: unknown, depth: number): unknown {
  if (depth > 256) throw new DecodeError('JSON nested deeper than 256 levels');
  if (Array.isArray(value)) return value.map((v) => normalise(v, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = camel(k);
    if (ID_KEYS.has(key)) {
      if (v === undefined || v === null || v === '') continue;
      if (typeof v !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) {
        throw new DecodeError(`${key} must be a hex string, got ${JSON.stringify(v).slice(0, 60)}`);
      }
      out[key] = Buffer.from(v, 'hex');
    } else {
      out[key] = normalise(v, depth + 1);
    }
  }
  return out;
}

const INT64_RANGE: Record<string, [bigint, bigint]> = {
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  sint64: [-(1n << 63n), (1n << 63n) - 1n],
  sfixed64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  fixed64: [0n, (1n << 64n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  sint32: [-(1n << 31n), (1n << 31n) - 1n],
  sfixed32: [-(1n << 31n), (1n << 31n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  fixed32: [0n, (1n << 32n) - 1n],
};

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * Check the JSON value kinds against the message type before protobufjs `fromObject`, which coerces silently
 * (an object becomes the string "[object Object]", 1e400 or a 30-digit integer wraps around in an int64). The
 * Collector refuses such documents; so do we, naming the field.
 */
function checkMessage(type: protobuf.Type, value: Record<string, unknown>, path: string): void {
  for (const [k, v] of Object.entries(value)) {
    const key = camel(k);
    const field = type.fields[key];
    if (field === undefined || v === null || ID_KEYS.has(key)) continue;
    const p = path === '' ? key : `${path}.${key}`;
    if (field.repeated) {
      if (!Array.isArray(v)) throw new DecodeError(`invalid OTLP/JSON: ${p}: array expected, got ${kindOf(v)}`);
      v.forEach((e, i) => checkField(field, e, `${p}[${i}]`));
    } else checkField(field, v, p);
  }
}

function checkField(field: protobuf.Field, v: unknown, p: string): void {
  const bad = (expected: string): DecodeError =>
    new DecodeError(
      `invalid OTLP/JSON: ${p}: ${expected} expected, got ${kindOf(v) === 'number' || kindOf(v) === 'string' ? JSON.stringify(v).slice(0, 60) : kindOf(v)}`,
    );
  const rt = field.resolve().resolvedType;
  const pb = protobufjs();
  if (rt instanceof pb.Type) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('object');
    checkMessage(rt, v as Record<string, unknown>, p);
    return;
  }
  if (rt instanceof pb.Enum) {
    if (typeof v === 'string' ? !(v in rt.values) : !(typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 2 ** 31)) throw bad('enum value');
    return;
  }
  const range = INT64_RANGE[field.type];
  if (range !== undefined) {
    let n: bigint | undefined;
    if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
    else if (typeof v === 'string' && /^-?[0-9]{1,40}$/.test(v)) n = BigInt(v);
    if (n === undefined || n < range[0] || n > range[1]) throw bad(`${field.type} integer`);
    return;
  }
  switch (field.type) {
    case 'string':
    case 'bytes':
      if (typeof v !== 'string') throw bad('string');
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw bad('boolean');
      return;
    case 'double':
    case 'float':
      if (
        typeof v === 'number'
          ? !Number.isFinite(v)
          : !(typeof v === 'string' && (['NaN', 'Infinity', '-Infinity'].includes(v) || (v.trim() !== '' && Number.isFinite(Number(v)))))
      )
        throw bad('finite number');
      return;
    default:
      return;
  }
}

function fromJson(type: protobuf.Type, json: string | Uint8Array): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
  } catch (err) {
    throw new DecodeError(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DecodeError('invalid OTLP/JSON: the body must be a JSON object');
  }
  try {
    const normalised = normalise(parsed, 0) as Record<string, unknown>;
    checkMessage(type, normalised, '');
    const msg = type.fromObject(normalised);
    return type.encode(msg).finish();
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(`invalid OTLP/JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Convert an OTLP/JSON `ExportTraceServiceRequest` to protobuf bytes. */
export function traceRequestFromJson(json: string | Uint8Array): Uint8Array {
  return fromJson(protoType(TYPES.exportTraceRequest), json);
}

/** Convert an OTLP/JSON `ExportMetricsServiceRequest` to protobuf bytes. */
export function metricsRequestFromJson(json: string | Uint8Array): Uint8Array {
  return fromJson(protoType(TYPES.exportMetricsRequest), json);
}

/** Convert an OTLP/JSON `ExportLogsServiceRequest` to protobuf bytes. */
export function logsRequestFromJson(json: string | Uint8Array): Uint8Array {
  return fromJson(protoType(TYPES.exportLogsRequest), json);
}

function idsToHex(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(idsToHex);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = ID_KEYS.has(k) && typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : idsToHex(v);
  }
  return out;
}

/** Decode protobuf bytes of the given OTLP message type into an OTLP/JSON object (ids hex, int64 as strings). */
export function toOtlpJsonObject(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = protoType(typeName);
  // json: NaN and ±Infinity become the strings proto3 JSON writes ("NaN", "Infinity"), not null.
  const obj = type.toObject(type.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: false, json: true });
  return idsToHex(obj) as Record<string, unknown>;
}

/** Decode an `ExportTraceServiceRequest` into an OTLP/JSON object. */
export function traceRequestToJson(bytes: Uint8Array): Record<string, unknown> {
  return toOtlpJsonObject(TYPES.exportTraceRequest, bytes);
}
