/**
 * TraceBatch: the representation of trace data in pipelines, an OtlpBatch (otlp-batch.ts) of
 * `ExportTraceServiceRequest`s. On top of what every signal has (validation, resource attributes, writing the
 * received bytes back out), the analyzer walks spans through a reused `SpanView`. See docs/architecture.md.
 */
import { anyValueOfKey, findAttribute, forEachScalarKeyValue, keyBytes, readAnyValue, type AttrValue } from './attributes';
import type { BufferLease } from './buffer-pool';
import { OtlpBatch, TRACES, entryAttribute, type ResourceEntry, type SignalLayout } from './otlp-batch';
import { partitionEntry, type SpanOwner } from './trace-partition';
import { WIRE_I64, WIRE_LEN, WIRE_VARINT, bytesEqual, cursor, hex, lenHeader, readFixed32, readLen, readVarint32, skipField, utf8Interned } from './wire';

export type { AttrValue } from './attributes';
export type { SpanOwner, TraceIdRef } from './trace-partition';
export { MAX_NESTING_DEPTH } from './validate';

export class TraceBatch extends OtlpBatch {
  /**
   * Validate and index an encoded `ExportTraceServiceRequest`. Throws DecodeError (→ INVALID_ARGUMENT /
   * 400) when any level of the message is malformed. The bytes are kept, not copied: the caller must not
   * reuse the buffer — unless it is pooled and `lease` says so (see retainBytes).
   */
  static decode(bytes: Uint8Array, lease?: BufferLease): TraceBatch {
    return new TraceBatch(...OtlpBatch.decodeRequest(bytes, TRACES, lease));
  }

  /** A batch of no spans. */
  static empty(): TraceBatch {
    return new TraceBatch([], new Uint8Array(0), []);
  }

  /** Concatenate batches (resource order kept). The inputs must not be used afterwards. */
  static concat(batches: readonly TraceBatch[]): TraceBatch {
    return batches.length === 0 ? TraceBatch.empty() : OtlpBatch.joined(batches);
  }

  get layout(): SignalLayout {
    return TRACES;
  }

  protected derive(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]): this {
    return new TraceBatch(entries, pristine, leases) as this;
  }

  /** Spans in the batch. */
  get spanCount(): number {
    return this.itemCount;
  }

  /** Spans under resource `i`. */
  resourceSpanCount(i: number): number {
    return this.resourceItemCount(i);
  }

  /**
   * Split the spans among destinations, `owner` choosing each span's (a small integer) from its trace id (see
   * trace-partition.ts): element `i` holds destination `i`'s spans, undefined when it has none. A batch whose
   * spans all go to one destination is returned as it is. Resources without spans are dropped.
   */
  partitionBySpan(owner: SpanOwner): (TraceBatch | undefined)[] {
    const parts: (ResourceEntry[] | undefined)[] = [];
    this.entries.forEach((e, i) => partitionEntry(e, i, owner, parts));
    return this.#assemble(parts);
  }

  /** Split whole resources among destinations, `owner` choosing each resource's from its index. */
  partitionByResource(owner: (resource: number) => number): (TraceBatch | undefined)[] {
    const parts: (ResourceEntry[] | undefined)[] = [];
    this.entries.forEach((e, i) => {
      if (e.itemCount > 0) (parts[owner(i)] ??= []).push(e);
    });
    return this.#assemble(parts);
  }

  #assemble(parts: (ResourceEntry[] | undefined)[]): (TraceBatch | undefined)[] {
    let used = 0;
    for (const p of parts) if (p !== undefined) used++;
    const out: (TraceBatch | undefined)[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p === undefined) out.push(undefined);
      // Everything to one destination, nothing rebuilt: the batch itself (its bytes forwarded as received).
      else if (used === 1 && p.length === this.entries.length && p.every((e, k) => e === this.entries[k])) out.push(this);
      else out.push(this.derived(p));
    }
    return out;
  }

  /**
   * Walk every span, or with `kinds` (a bit mask: bit k set for SpanKind k) only spans of those kinds. The view is
   * reused: read it inside the callback only. With `skipped`, after each resource that had spans of other kinds,
   * `skipped(service, counts)` gets their number by kind (`counts[k]` for SpanKind k; valid during the call only).
   */
  forEachSpan(visit: (span: SpanView) => void, options?: { kinds?: number; skipped?: (service: string, counts: Uint32Array) => void }): void {
    const kinds = options?.kinds ?? -1;
    const onSkipped = kinds === -1 ? undefined : options?.skipped;
    const counts = onSkipped === undefined ? undefined : new Uint32Array(8);
    const view = new SpanView();
    const entries = this.entries;
    for (let r = 0; r < entries.length; r++) {
      const e = entries[r] as ResourceEntry;
      if (e.itemCount === 0) continue;
      view.resourceIndex = r;
      const service = entryAttribute(e, 'service.name');
      view.service = typeof service === 'string' && service !== '' ? service : 'unknown_service';
      view.setResource(e);
      if (walkSpans(e.buf, e.start, e.end, view, visit, kinds, counts) > 0 && counts !== undefined) {
        (onSkipped as (service: string, counts: Uint32Array) => void)(view.service, counts);
        counts.fill(0);
      }
    }
  }
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
  /** The scope name once read (undefined until then): every span of a scope asks for the same one. */
  #scopeName: string | undefined;
  #scopeSpansStart = 0;
  #scopeSpansEnd = 0;
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
    this.#scopeName = undefined;
  }

  /** @internal the content range of the ScopeSpans message holding the spans that follow. */
  setScopeSpans(start: number, end: number): void {
    this.#scopeSpansStart = start;
    this.#scopeSpansEnd = end;
  }

  /**
   * Where this span lives: enough to write it out again later with its resource and scope (encodeSpans), without
   * decoding it. Valid as long as the batch's bytes are (see retainBytes).
   */
  location(): SpanLocation {
    return {
      entry: this.#resource as ResourceEntry,
      buf: this.#buf,
      scopeSpansStart: this.#scopeSpansStart,
      scopeSpansEnd: this.#scopeSpansEnd,
      start: this.#start,
      end: this.#end,
    };
  }

  /** Name of the span's instrumentation scope (`opentelemetry.instrumentation.sqlalchemy`), '' when absent. */
  get scopeName(): string {
    return (this.#scopeName ??= this.#readScopeName());
  }

  #readScopeName(): string {
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

  /**
   * Every span attribute with a scalar value, in wire order (arrays, maps and bytes are passed over), until `visit`
   * returns false; with `wants`, only those whose key it accepts (the others' values are not decoded).
   */
  forEachAttribute(visit: (key: string, value: AttrValue) => boolean | void, wants?: (key: string) => boolean): void {
    forEachScalarKeyValue(this.#buf, this.#start, this.#end, 9, visit, wants);
  }

  /**
   * Every scalar attribute of the span's resource, appended ones included (a replaced value is not visited), until
   * `visit` returns false.
   */
  forEachResourceAttribute(visit: (key: string, value: AttrValue) => boolean | void): void {
    const e = this.#resource;
    if (e === undefined) return;
    const replaced = e.replaced;
    const filtered = replaced === undefined ? visit : (k: string, v: AttrValue): boolean | void => (replaced.has(k) ? undefined : visit(k, v));
    for (let f = 0; f < e.resourceFields.length; f += 4) {
      if (!forEachScalarKeyValue(e.buf, e.resourceFields[f + 2] as number, e.resourceFields[f + 3] as number, 1, filtered)) return;
    }
    for (const kv of e.extra ?? []) if (!forEachScalarKeyValue(kv, 0, kv.length, 1, visit)) return;
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

/** Visits the spans of one resource whose kind is in `kinds`; returns how many it skipped (by kind into `skipped`). */
function walkSpans(buf: Uint8Array, start: number, end: number, view: SpanView, visit: (span: SpanView) => void, kinds: number, skipped?: Uint32Array): number {
  let nSkipped = 0;
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
    view.setScopeSpans(p, ssEnd);
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
      if (kinds === -1) {
        view.load(buf, spanStart, spanEnd);
        visit(view);
      } else {
        const kind = peekKind(buf, spanStart, spanEnd);
        if ((kinds & (1 << kind)) !== 0) {
          view.load(buf, spanStart, spanEnd);
          visit(view);
        } else {
          nSkipped++;
          if (skipped !== undefined) skipped[kind & 7] = (skipped[kind & 7] as number) + 1;
        }
      }
      p = spanEnd;
    }
    pos = ssEnd;
  }
  return nSkipped;
}

// ---- writing selected spans --------------------------------------------------------------------------------

/** A span's place in a received batch (SpanView.location). */
export interface SpanLocation {
  /** @internal */
  readonly entry: ResourceEntry;
  /** @internal */
  readonly buf: Uint8Array;
  /** @internal content range of its ScopeSpans */
  readonly scopeSpansStart: number;
  readonly scopeSpansEnd: number;
  /** @internal content range of the span */
  readonly start: number;
  readonly end: number;
}

/**
 * An `ExportTraceServiceRequest` of the given spans, each under its own resource (with the attributes processors
 * added to it) and its own scope, grouped as they were received: one ResourceSpans per received resource, one
 * ScopeSpans per received ScopeSpans, in first-seen order. `extra` (encoded KeyValue fields, tag 9 of Span) is
 * appended to every span: protobuf allows a repeated field's entries anywhere in the message.
 */
export function encodeSpans(spans: readonly SpanLocation[], extra?: Uint8Array): Uint8Array {
  const resources = new Map<ResourceEntry, Map<number, SpanLocation[]>>();
  for (const s of spans) {
    let scopes = resources.get(s.entry);
    if (scopes === undefined) resources.set(s.entry, (scopes = new Map()));
    let list = scopes.get(s.scopeSpansStart);
    if (list === undefined) scopes.set(s.scopeSpansStart, (list = []));
    list.push(s);
  }
  const extraLen = extra?.length ?? 0;
  const parts: Uint8Array[] = [];
  for (const [entry, scopes] of resources) {
    // The ResourceSpans's own fields but scope_spans: its resource (re-encoded when attributes were added) and schema_url.
    const head: Uint8Array[] = [];
    resourceFieldParts(entry, head);
    copyFieldsExcept(entry.buf, entry.start, entry.end, [1, 2], head);
    const scopeParts: Uint8Array[] = [];
    for (const list of scopes.values()) {
      const first = list[0] as SpanLocation;
      const inner: Uint8Array[] = [];
      copyFieldsExcept(first.buf, first.scopeSpansStart, first.scopeSpansEnd, [2], inner);
      for (const s of list) {
        const len = s.end - s.start + extraLen;
        inner.push(lenHeader(2, len), s.buf.subarray(s.start, s.end));
        if (extra !== undefined) inner.push(extra);
      }
      scopeParts.push(lenHeader(2, sum(inner)), ...inner);
    }
    const body = [...head, ...scopeParts];
    parts.push(lenHeader(1, sum(body)), ...body);
  }
  return Buffer.concat(parts);
}

function sum(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** The fields of message content `[pos, end)` whose numbers are not in `skip`, as slices. */
function copyFieldsExcept(buf: Uint8Array, pos: number, end: number, skip: readonly number[], out: Uint8Array[]): void {
  while (pos < end) {
    const fieldStart = pos;
    const tag = readVarint32(buf, pos, end);
    const fieldEnd = skipField(buf, tag & 7, cursor.pos, end);
    if (!skip.includes(tag >>> 3)) out.push(buf.subarray(fieldStart, fieldEnd));
    pos = fieldEnd;
  }
}

/** The `resource` field of an entry: as received, or re-encoded with the attributes processors added. */
function resourceFieldParts(e: ResourceEntry, out: Uint8Array[]): void {
  if (e.extra === undefined || e.extra.length === 0) {
    for (let f = 0; f < e.resourceFields.length; f += 4) out.push(e.buf.subarray(e.resourceFields[f] as number, e.resourceFields[f + 1] as number));
    return;
  }
  const kept: Uint8Array[] = [];
  for (let f = 0; f < e.resourceFields.length; f += 4) {
    const from = e.resourceFields[f + 2] as number;
    const to = e.resourceFields[f + 3] as number;
    if (e.replaced === undefined) kept.push(e.buf.subarray(from, to));
    else keepUnreplaced(e.buf, from, to, e.replaced, kept);
  }
  kept.push(...e.extra);
  out.push(lenHeader(1, sum(kept)), ...kept);
}

/** Resource content `[from, to)` minus the attributes whose key was replaced. */
function keepUnreplaced(buf: Uint8Array, from: number, to: number, replaced: ReadonlySet<string>, out: Uint8Array[]): void {
  const keys = [...replaced].map(keyBytes);
  let pos = from;
  while (pos < to) {
    const fieldStart = pos;
    const tag = readVarint32(buf, pos, to);
    const valueStart = cursor.pos;
    const fieldEnd = skipField(buf, tag & 7, valueStart, to);
    let drop = false;
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const kvEnd = readLen(buf, valueStart, to);
      const kvStart = cursor.pos;
      drop = keys.some((k) => anyValueOfKey(buf, kvStart, kvEnd, k) >= 0);
    }
    if (!drop) out.push(buf.subarray(fieldStart, fieldEnd));
    pos = fieldEnd;
  }
}
