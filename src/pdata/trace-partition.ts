/**
 * Splitting a trace request among destinations by span (the loadbalancing exporter routes each trace to one
 * replica). Works on the received bytes: a resource whose spans all go to one destination is passed on as it is
 * (no copy); one whose spans go to several is rebuilt once per destination from slices of its bytes: the
 * resource, its scopes and every other field verbatim, each scope holding only that destination's spans, in
 * their order. Appended resource attributes (k8sattributes) go with every part.
 */
import type { ResourceEntry } from './otlp-batch';
import { readTag } from './validate';
import { WIRE_LEN, cursor, readLen, skipField, varintSize, writeVarint } from './wire';

/** Where a span's trace id is: `buf[at .. at + len)` (16 bytes; 0 when the span has none). */
export interface TraceIdRef {
  buf: Uint8Array;
  at: number;
  len: number;
  /** Index of the span's resource in the batch. */
  resource: number;
}

/** Picks the destination (a small non-negative integer) of the span whose trace id `ref` points at. */
export type SpanOwner = (ref: TraceIdRef) => number;

const ref: TraceIdRef = { buf: new Uint8Array(0), at: 0, len: 0, resource: 0 };

/** One span field of a scope: its byte range and destination. */
interface SpanSlot {
  start: number;
  end: number;
  owner: number;
}

/** Trace id of the Span message in `[start, end)`: sets `ref` (len 0 when absent). */
function locateTraceId(buf: Uint8Array, start: number, end: number): void {
  let pos = start;
  ref.buf = buf;
  ref.len = 0;
  while (pos < end) {
    const tag = readTag(buf, pos, end);
    pos = cursor.pos;
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const idEnd = readLen(buf, pos, end);
      ref.at = cursor.pos;
      ref.len = idEnd - cursor.pos;
      return;
    }
    pos = skipField(buf, tag & 7, pos, end);
  }
}

function headerSize(fieldNo: number, len: number): number {
  return varintSize((fieldNo << 3) | WIRE_LEN) + varintSize(len);
}

function writeHeader(out: Uint8Array, pos: number, fieldNo: number, len: number): number {
  return writeVarint(out, writeVarint(out, pos, (fieldNo << 3) | WIRE_LEN), len);
}

/**
 * Distribute the spans of resource entry `e` (index `resource`) among `out` (a list of entries per destination,
 * created on first use).
 * Entries without spans are dropped: nothing would route them.
 */
export function partitionEntry(e: ResourceEntry, resource: number, owner: SpanOwner, out: (ResourceEntry[] | undefined)[]): void {
  if (e.itemCount === 0) return;
  const buf = e.buf;
  // First pass: each span's destination, per scope.
  const scopes: { start: number; end: number; contentStart: number; spans: SpanSlot[] }[] = [];
  let first = -1;
  let mixed = false;
  ref.resource = resource;
  let pos = e.start;
  while (pos < e.end) {
    const fieldStart = pos;
    const tag = readTag(buf, pos, e.end);
    pos = cursor.pos;
    if (tag !== ((2 << 3) | WIRE_LEN)) {
      pos = skipField(buf, tag & 7, pos, e.end);
      continue;
    }
    const scopeEnd = readLen(buf, pos, e.end);
    const scope = { start: fieldStart, end: scopeEnd, contentStart: cursor.pos, spans: [] as SpanSlot[] };
    let p = cursor.pos;
    while (p < scopeEnd) {
      const spanFieldStart = p;
      const t = readTag(buf, p, scopeEnd);
      p = cursor.pos;
      if (t !== ((2 << 3) | WIRE_LEN)) {
        p = skipField(buf, t & 7, p, scopeEnd);
        continue;
      }
      const spanEnd = readLen(buf, p, scopeEnd);
      locateTraceId(buf, cursor.pos, spanEnd);
      const o = owner(ref);
      if (first < 0) first = o;
      else if (o !== first) mixed = true;
      scope.spans.push({ start: spanFieldStart, end: spanEnd, owner: o });
      p = spanEnd;
    }
    scopes.push(scope);
    pos = scopeEnd;
  }
  if (first < 0) return;
  if (!mixed) {
    (out[first] ??= []).push(e);
    return;
  }
  const owners = new Set<number>();
  for (const s of scopes) for (const sp of s.spans) owners.add(sp.owner);
  for (const o of owners) (out[o] ??= []).push(rebuild(e, scopes, o));
}

/** The resource-level message of `e` keeping only destination `o`'s spans, in a buffer of its own. */
function rebuild(e: ResourceEntry, scopes: readonly { start: number; end: number; contentStart: number; spans: SpanSlot[] }[], o: number): ResourceEntry {
  const buf = e.buf;
  // Sizes: every non-scope field verbatim; each scope with o's spans as header + its non-span fields + o's spans.
  const scopeLens = new Map<number, number>();
  let size = 0;
  let pos = e.start;
  let si = 0;
  while (pos < e.end) {
    const s = scopes[si];
    if (s !== undefined && s.start === pos) {
      const mine = s.spans.filter((x) => x.owner === o);
      if (mine.length > 0) {
        let content = s.end - s.contentStart;
        for (const x of s.spans) if (x.owner !== o) content -= x.end - x.start;
        scopeLens.set(si, content);
        size += headerSize(2, content) + content;
      }
      pos = s.end;
      si++;
      continue;
    }
    const tag = readTag(buf, pos, e.end);
    const next = skipField(buf, tag & 7, cursor.pos, e.end);
    size += next - pos;
    pos = next;
  }
  const outBuf = new Uint8Array(size);
  const resourceFields: number[] = [];
  let w = 0;
  let count = 0;
  pos = e.start;
  si = 0;
  while (pos < e.end) {
    const s = scopes[si];
    if (s !== undefined && s.start === pos) {
      const len = scopeLens.get(si);
      if (len !== undefined) {
        w = writeHeader(outBuf, w, 2, len);
        let from = s.contentStart;
        for (const x of s.spans) {
          if (x.owner === o) {
            count++;
            continue;
          }
          outBuf.set(buf.subarray(from, x.start), w);
          w += x.start - from;
          from = x.end;
        }
        outBuf.set(buf.subarray(from, s.end), w);
        w += s.end - from;
      }
      pos = s.end;
      si++;
      continue;
    }
    const fieldStart = pos;
    const tag = readTag(buf, pos, e.end);
    const afterTag = cursor.pos;
    const next = skipField(buf, tag & 7, afterTag, e.end);
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const contentEnd = readLen(buf, afterTag, e.end);
      const contentStart = cursor.pos;
      resourceFields.push(w, w + (next - fieldStart), w + (contentStart - fieldStart), w + (contentEnd - fieldStart));
    }
    outBuf.set(buf.subarray(fieldStart, next), w);
    w += next - fieldStart;
    pos = next;
  }
  return {
    buf: outBuf,
    start: 0,
    end: w,
    resourceFields,
    itemCount: count,
    extra: e.extra === undefined ? undefined : [...e.extra],
    replaced: e.replaced === undefined ? undefined : new Set(e.replaced),
  };
}
