/**
 * What the route store reads from a span. The pdata layer satisfies it with one reused view object per batch
 * walk (no per-span allocation); tests and fixtures use {@link ObjectSpanInput}.
 */

/** Read-only view of one span as the route store needs it. */
export interface SpanInput {
  /** Resource `service.name` (`'unknown_service'` if absent). */
  readonly service: string;
  /** OTLP SpanKind: 0 UNSPECIFIED 1 INTERNAL 2 SERVER 3 CLIENT 4 PRODUCER 5 CONSUMER. */
  readonly kind: number;
  readonly name: string;
  readonly durationNs: number;
  /** End time as epoch ms (kept with exemplars; slots are chosen by receive time, see README). */
  readonly endTimeMs: number;
  /** 0 UNSET 1 OK 2 ERROR. */
  readonly statusCode: number;
  /** Span attribute (scalar values only). */
  attribute(key: string): string | number | boolean | undefined;
  /** Resource attribute (scalar values only). */
  resourceAttribute(key: string): string | number | boolean | undefined;
  /**
   * Called only when the span becomes an exemplar: copies the 16-byte trace id and the 8-byte span id into
   * `into[0, 24)`; false, and nothing copied, when the span lacks either.
   */
  copyIds(into: Uint8Array): boolean;
}

/** OTLP `Span.SpanKind` numbers. */
export const SpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** OTLP `Status.StatusCode` numbers. */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

const kindNames = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;

/**
 * A span kind from a number (0–5) or a name in any of the common spellings: `SERVER`, `SPAN_KIND_SERVER`,
 * `SpanKind.SERVER` (Python's repr), case-insensitive. Undefined when not recognised.
 */
export function parseSpanKind(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= 5 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  let s = value.trim().toUpperCase();
  if (s.startsWith('SPANKIND.')) s = s.slice('SPANKIND.'.length);
  if (s.startsWith('SPAN_KIND_')) s = s.slice('SPAN_KIND_'.length);
  const i = (kindNames as readonly string[]).indexOf(s);
  return i < 0 ? undefined : i;
}

/** `SPAN_KIND_SERVER` etc. for a kind number. */
export function spanKindName(kind: number): string {
  return `SPAN_KIND_${kindNames[kind] ?? 'UNSPECIFIED'}`;
}

/** A status code from a number or `STATUS_CODE_ERROR` / `ERROR` / `StatusCode.ERROR`; 0 when not recognised. */
export function parseStatusCode(value: unknown): number {
  if (typeof value === 'number') return value === 1 || value === 2 ? value : 0;
  if (typeof value !== 'string') return 0;
  const s = value
    .trim()
    .toUpperCase()
    .replace(/^STATUSCODE\./, '')
    .replace(/^STATUS_CODE_/, '');
  return s === 'ERROR' ? 2 : s === 'OK' ? 1 : 0;
}

type Scalar = string | number | boolean;

/** A span as a plain object (tests, JSON fixtures). */
export interface PlainSpan {
  service?: string;
  kind?: number | string;
  name: string;
  durationNs?: number;
  endTimeMs?: number;
  statusCode?: number | string;
  attributes?: Readonly<Record<string, unknown>>;
  resource?: Readonly<Record<string, unknown>>;
  traceId?: string;
  spanId?: string;
}

function scalar(v: unknown): Scalar | undefined {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/** {@link SpanInput} over a plain object. `service` defaults to the resource's `service.name`, then `unknown_service`. */
export class ObjectSpanInput implements SpanInput {
  readonly service: string;
  readonly kind: number;
  readonly name: string;
  readonly durationNs: number;
  readonly endTimeMs: number;
  readonly statusCode: number;
  readonly #attributes: Readonly<Record<string, unknown>>;
  readonly #resource: Readonly<Record<string, unknown>>;
  readonly #traceId: string;
  readonly #spanId: string;

  constructor(span: PlainSpan) {
    this.#attributes = span.attributes ?? {};
    this.#resource = span.resource ?? {};
    const svc = scalar(this.#resource['service.name']);
    this.service = span.service ?? (svc === undefined ? 'unknown_service' : String(svc));
    this.kind = parseSpanKind(span.kind ?? SpanKind.SERVER) ?? SpanKind.UNSPECIFIED;
    this.name = span.name;
    this.durationNs = span.durationNs ?? 1_000_000;
    this.endTimeMs = span.endTimeMs ?? 0;
    this.statusCode = parseStatusCode(span.statusCode ?? 0);
    this.#traceId = span.traceId ?? '0af7651916cd43dd8448eb211c80319c';
    this.#spanId = span.spanId ?? 'b7ad6b7169203331';
  }

  attribute(key: string): Scalar | undefined {
    return scalar(this.#attributes[key]);
  }

  resourceAttribute(key: string): Scalar | undefined {
    return scalar(this.#resource[key]);
  }

  traceIdHex(): string {
    return this.#traceId;
  }

  spanIdHex(): string {
    return this.#spanId;
  }

  copyIds(into: Uint8Array): boolean {
    return copyHexIds(this.#traceId, this.#spanId, into);
  }
}

/**
 * For span inputs that hold their ids as hex (fixtures, tests): writes them into `into` as {@link
 * SpanInput.copyIds} does (trace id, then span id: 24 bytes); false when either is not a full-length hex id.
 */
export function copyHexIds(traceId: string, spanId: string, into: Uint8Array): boolean {
  if (!/^[0-9a-f]{32}$/i.test(traceId) || !/^[0-9a-f]{16}$/i.test(spanId)) return false;
  into.set(Buffer.from(traceId, 'hex'), 0);
  into.set(Buffer.from(spanId, 'hex'), 16);
  return true;
}
