/**
 * OTLP trace batches from short descriptions, for analysis tests: spans with small numeric ids, times in ms
 * from a base, attributes as plain values; grouped into resources like an exporter groups them.
 */
import { traceRequestFromJson } from '../../src/pdata/otlp-json';
import { TraceBatch } from '../../src/pdata/trace-batch';

export interface OtlpSpanSpec {
  id: number;
  parent?: number;
  kind?: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  name?: string;
  /** ms from `baseMs`. */
  start: number;
  end: number;
  attrs?: Record<string, string | number | boolean>;
  error?: boolean;
  scope?: string;
}

export interface OtlpResourceSpec {
  service: string;
  attrs?: Record<string, string>;
  spans: OtlpSpanSpec[];
}

const KINDS = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
export const BASE_MS = Date.UTC(2026, 11, 7, 12, 0, 0);

function value(v: string | number | boolean): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

const attrs = (o: Record<string, string | number | boolean> = {}): unknown[] => Object.entries(o).map(([key, v]) => ({ key, value: value(v) }));

/** 32 hex digits for trace number `n`. */
export const traceHex = (n: number): string => `${'9'.repeat(8)}${n.toString(16).padStart(8, '0')}${'7'.repeat(8)}${n.toString(16).padStart(8, '0')}`;
/** 16 hex digits for span number `n` of trace `t`. */
export const spanHex = (t: number, n: number): string => `${(t & 0xffff).toString(16).padStart(4, '0')}${n.toString(16).padStart(12, '0')}`;

/** An ExportTraceServiceRequest (OTLP/JSON text) of trace `trace` with the given resources. */
export function traceJson(trace: number, resources: readonly OtlpResourceSpec[], baseMs = BASE_MS): string {
  const ns = (ms: number): string => (BigInt(Math.round((baseMs + ms) * 1000)) * 1000n).toString();
  return JSON.stringify({
    resourceSpans: resources.map((r) => ({
      resource: { attributes: attrs({ 'service.name': r.service, ...r.attrs }) },
      scopeSpans: [...new Set(r.spans.map((s) => s.scope ?? 'test'))].map((scope) => ({
        scope: { name: scope },
        spans: r.spans
          .filter((s) => (s.scope ?? 'test') === scope)
          .map((s) => ({
            traceId: traceHex(trace),
            spanId: spanHex(trace, s.id),
            ...(s.parent === undefined ? {} : { parentSpanId: spanHex(trace, s.parent) }),
            name: s.name ?? `span-${s.id}`,
            kind: KINDS[s.kind ?? 'internal'],
            startTimeUnixNano: ns(s.start),
            endTimeUnixNano: ns(s.end),
            attributes: attrs(s.attrs),
            status: s.error === true ? { code: 2 } : {},
          })),
      })),
    })),
  });
}

/** The same as a decoded TraceBatch. */
export function traceBatch(trace: number, resources: readonly OtlpResourceSpec[], baseMs = BASE_MS): TraceBatch {
  return TraceBatch.decode(traceRequestFromJson(traceJson(trace, resources, baseMs)));
}
