/**
 * OTLP/JSON ↔ protobuf, through the protobufjs reference codec. OTLP/JSON differs from the canonical proto3
 * JSON mapping in two ways handled here: trace and span ids are hex strings (not base64), and enums may be
 * integers. Field names are lowerCamelCase; snake_case names are accepted too, as the Collector does.
 */
import type * as protobuf from 'protobufjs';
import { DecodeError } from '../core/errors';
import { TYPES, protoType } from './proto';

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
    const msg = type.fromObject(normalise(parsed, 0) as Record<string, unknown>);
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
  const obj = type.toObject(type.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: false });
  return idsToHex(obj) as Record<string, unknown>;
}

/** Decode an `ExportTraceServiceRequest` into an OTLP/JSON object. */
export function traceRequestToJson(bytes: Uint8Array): Record<string, unknown> {
  return toOtlpJsonObject(TYPES.exportTraceRequest, bytes);
}
