/** google.rpc.Status and RetryInfo: what servers put in gRPC trailers and OTLP/HTTP error bodies. */
import { TYPES, protoType } from './proto';

const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';

export function encodeRetryInfo(ms: number): Uint8Array {
  const t = protoType(TYPES.retryInfo);
  const seconds = Math.floor(ms / 1000);
  return t.encode(t.create({ retryDelay: { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) } })).finish();
}

/** Encode a google.rpc.Status, with a RetryInfo detail when `retryAfterMs` is given. */
export function encodeRpcStatus(code: number, message: string, retryAfterMs?: number): Uint8Array {
  const t = protoType(TYPES.rpcStatus);
  const details = retryAfterMs === undefined ? [] : [{ typeUrl: RETRY_INFO_URL, value: encodeRetryInfo(retryAfterMs) }];
  return t.encode(t.create({ code, message, details })).finish();
}

function durationMs(d: { seconds?: unknown; nanos?: unknown } | undefined): number | undefined {
  if (d === undefined) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
}

/** The RetryInfo delay of an encoded RetryInfo, in ms. */
export function decodeRetryInfo(bytes: Uint8Array): number | undefined {
  try {
    const o = protoType(TYPES.retryInfo).toObject(protoType(TYPES.retryInfo).decode(bytes)) as { retryDelay?: { seconds?: unknown; nanos?: unknown } };
    return durationMs(o.retryDelay);
  } catch {
    return undefined;
  }
}

/** Decode a google.rpc.Status; returns its message and RetryInfo delay when present. */
export function decodeRpcStatus(bytes: Uint8Array): { code: number; message: string; retryAfterMs: number | undefined } | undefined {
  try {
    const t = protoType(TYPES.rpcStatus);
    const o = t.toObject(t.decode(bytes)) as { code?: number; message?: string; details?: { typeUrl?: string; value?: Uint8Array }[] };
    let retryAfterMs: number | undefined;
    for (const d of o.details ?? []) {
      if (d.typeUrl === RETRY_INFO_URL && d.value !== undefined) retryAfterMs = decodeRetryInfo(d.value);
    }
    return { code: o.code ?? 0, message: o.message ?? '', retryAfterMs };
  } catch {
    return undefined;
  }
}

/** Rejected count and message of an encoded Export*ServiceResponse's partial_success (field 1). */
export function decodePartialSuccess(typeName: string, bytes: Uint8Array): { rejected: number; message: string } | undefined {
  if (bytes.length === 0) return undefined;
  try {
    const t = protoType(typeName);
    const o = t.toObject(t.decode(bytes), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number; rejectedDataPoints?: number; errorMessage?: string } };
    const p = o.partialSuccess;
    if (p === undefined) return undefined;
    const rejected = Number(p.rejectedSpans ?? p.rejectedDataPoints ?? 0);
    if (rejected === 0 && !p.errorMessage) return undefined;
    return { rejected, message: p.errorMessage ?? '' };
  } catch {
    return undefined;
  }
}
