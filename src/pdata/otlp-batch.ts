/**
 * OtlpBatch: what the three signals have in common, designed once.
 *
 * An OTLP export request is the same shape for traces, metrics and logs: repeated field 1 holds resource-level
 * messages (`ResourceSpans`, `ResourceMetrics`, `ResourceLogs`), each a `resource` (field 1), repeated
 * scope-level messages (field 2) that hold the items, and a `schema_url` (field 3). A batch keeps the request
 * bytes it arrived as and an index of its resource-level messages. Nothing is materialised on the way through:
 * receivers validate the structure once (`decode`), processors read or add resource attributes, and exporters
 * write the bytes back out. Only a resource that gained attributes is re-encoded; everything else of its
 * resource-level message is copied verbatim. An unmodified batch is forwarded as the very bytes that arrived.
 *
 * What differs per signal is a `SignalLayout`: which messages the resource and scope levels are (so which
 * rules validate them, and which messages count as items). TraceBatch, MetricsBatch and LogsBatch add their
 * signal's readers on top. See docs/architecture.md.
 */
import { findAttribute, anyValueOfKey, keyBytes, readAnyValue, type AttrValue } from './attributes';
import type { BufferLease } from './buffer-pool';
import { DecodeError } from './errors';
import { Msg, messageName, readTag, validate } from './validate';
import { WIRE_LEN, cursor, encodeStringKeyValueField, lenHeader, readLen, readVarint32, skipField } from './wire';

export type Signal = 'traces' | 'metrics' | 'logs';

/** What distinguishes one signal's export request from another's. */
export interface SignalLayout {
  readonly signal: Signal;
  /** The resource-level message, repeated field 1 of the export request. */
  readonly resourceMessage: Msg;
  /** The scope-level message, repeated field 2 of the resource-level message; the items are below it. */
  readonly scopeMessage: Msg;
  /** The request's field 1, for error messages (`resource_spans`). */
  readonly requestField: string;
}

export const TRACES: SignalLayout = { signal: 'traces', resourceMessage: Msg.ResourceSpans, scopeMessage: Msg.ScopeSpans, requestField: 'resource_spans' };
export const METRICS: SignalLayout = {
  signal: 'metrics',
  resourceMessage: Msg.ResourceMetrics,
  scopeMessage: Msg.ScopeMetrics,
  requestField: 'resource_metrics',
};
export const LOGS: SignalLayout = { signal: 'logs', resourceMessage: Msg.ResourceLogs, scopeMessage: Msg.ScopeLogs, requestField: 'resource_logs' };

/** @internal One resource-level message of a batch. */
export interface ResourceEntry {
  readonly buf: Uint8Array;
  /** Content range of the resource-level message inside `buf`. */
  readonly start: number;
  readonly end: number;
  /** [fieldStart, fieldEnd, contentStart, contentEnd] for each `resource` field (usually one). */
  readonly resourceFields: readonly number[];
  /** Spans, data points or log records below it. */
  readonly itemCount: number;
  /** KeyValue fields (field 1 of Resource) appended by processors. */
  extra: Uint8Array[] | undefined;
  /** Keys whose original values are dropped on encode (replaced by an appended attribute). */
  replaced: Set<string> | undefined;
}

/**
 * Validate an encoded export request of `layout`'s signal and index its resource-level messages. `pristine`
 * is false when the request has fields other than field 1 (unknown to this version of OTLP), which are
 * dropped when the batch is written.
 */
function decodeEntries(bytes: Uint8Array, layout: SignalLayout): { entries: ResourceEntry[]; pristine: boolean } {
  const entries: ResourceEntry[] = [];
  let pos = 0;
  const end = bytes.length;
  let pristine = true;
  while (pos < end) {
    const tag = readTag(bytes, pos, end);
    pos = cursor.pos;
    if (tag !== ((1 << 3) | WIRE_LEN)) {
      if (tag >>> 3 === 1) throw new DecodeError(`${layout.requestField} has wire type ${tag & 7}, expected 2`);
      pristine = false;
      pos = skipField(bytes, tag & 7, pos, end);
      continue;
    }
    const rEnd = readLen(bytes, pos, end);
    const rStart = cursor.pos;
    entries.push(indexResourceMessage(bytes, rStart, rEnd, layout));
    pos = rEnd;
  }
  return { entries, pristine };
}

function indexResourceMessage(buf: Uint8Array, start: number, end: number, layout: SignalLayout): ResourceEntry {
  const resourceFields: number[] = [];
  let itemCount = 0;
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const tag = readTag(buf, pos, end);
    pos = cursor.pos;
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    if (fieldNo <= 3 && wireType !== WIRE_LEN) {
      throw new DecodeError(`${messageName(layout.resourceMessage)} field ${fieldNo} has wire type ${wireType}, expected 2`);
    }
    if (fieldNo === 1) {
      const fEnd = readLen(buf, pos, end);
      const cStart = cursor.pos;
      validate(buf, Msg.Resource, cStart, fEnd, 2);
      resourceFields.push(fieldStart, fEnd, cStart, fEnd);
      pos = fEnd;
    } else if (fieldNo === 2) {
      const fEnd = readLen(buf, pos, end);
      itemCount += validate(buf, layout.scopeMessage, cursor.pos, fEnd, 2);
      pos = fEnd;
    } else {
      pos = skipField(buf, wireType, pos, end);
    }
  }
  return { buf, start, end, resourceFields, itemCount, extra: undefined, replaced: undefined };
}

const noop = (): void => undefined;

/**
 * The request of one signal as received, indexed by resource. Subclasses fix the signal (its layout) and add
 * what only it has (spans to walk, data points, log records).
 */
export abstract class OtlpBatch {
  /** @internal The resource-level messages, in order. */
  protected readonly entries: ResourceEntry[];
  /** The original request bytes when they can be forwarded unchanged, or the encoding `encode` made. */
  #pristine: Uint8Array | undefined;
  /** True when `#pristine` is a buffer `encode` made (nobody else's, never reused), not the received bytes. */
  #encodedHere = false;
  /** Pooled buffers the entries point into (see retainBytes). */
  readonly #leases: readonly BufferLease[];
  /** Items of the signal in the batch: spans, data points or log records. */
  readonly itemCount: number;

  protected constructor(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]) {
    this.entries = entries;
    this.#pristine = pristine;
    this.#leases = leases;
    let n = 0;
    for (const e of entries) n += e.itemCount;
    this.itemCount = n;
  }

  /** The signal's layout. */
  abstract get layout(): SignalLayout;

  /** A batch of this signal over `entries`. */
  protected abstract derive(entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]): this;

  /**
   * Validate and index an encoded request of `layout`'s signal (see the subclasses' `decode`). Throws DecodeError
   * (→ INVALID_ARGUMENT / 400) when any level of the message is malformed.
   */
  protected static decodeRequest(
    bytes: Uint8Array,
    layout: SignalLayout,
    lease: BufferLease | undefined,
  ): [entries: ResourceEntry[], pristine: Uint8Array | undefined, leases: readonly BufferLease[]] {
    const d = decodeEntries(bytes, layout);
    return [d.entries, d.pristine ? bytes : undefined, lease === undefined ? [] : [lease]];
  }

  /** Batches joined (resource order kept); `batches` must not be empty nor be used afterwards. */
  protected static joined<B extends OtlpBatch>(batches: readonly B[]): B {
    const first = batches[0];
    if (first === undefined) throw new RangeError('nothing to join');
    if (batches.length === 1) return first;
    const entries: ResourceEntry[] = [];
    for (const b of batches) entries.push(...b.entries);
    return first.derive(
      entries,
      undefined,
      batches.flatMap((b) => b.#leases),
    );
  }

  get signal(): Signal {
    return this.layout.signal;
  }

  /** A copy that can gain attributes independently (the bytes are shared, never mutated). */
  clone(): this {
    const entries = this.entries.map((e) => ({
      ...e,
      extra: e.extra === undefined ? undefined : [...e.extra],
      replaced: e.replaced === undefined ? undefined : new Set(e.replaced),
    }));
    return this.derive(entries, this.#pristine, this.#leases);
  }

  /**
   * Keep the received bytes valid beyond the pipeline call that delivered the batch. The receiver's pooled
   * buffer is reused once that call returns, so a component that holds on to the bytes (an exporter queueing
   * `encodeParts()`, which are slices of them) retains them first and calls the returned function, once, when
   * it no longer needs them. Calling it again does nothing.
   */
  retainBytes(): () => void {
    const leases = this.#leases;
    if (leases.length === 0) return noop;
    for (const l of leases) l.retain();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const l of leases) l.release();
    };
  }

  get resourceCount(): number {
    return this.entries.length;
  }

  /** Items (spans, data points, log records) under resource `i`. */
  resourceItemCount(i: number): number {
    return this.#entry(i).itemCount;
  }

  /** A batch of this signal over `entries` taken from this one (its buffers stay leased). */
  protected derived(entries: ResourceEntry[]): this {
    return this.derive(entries, undefined, this.#leases);
  }

  /** Split into batches of whole resource-level messages, each with at most about `maxItems` items. */
  split(maxItems: number): this[] {
    if (this.itemCount <= maxItems) return [this];
    const out: this[] = [];
    let cur: ResourceEntry[] = [];
    let n = 0;
    for (const e of this.entries) {
      if (n > 0 && n + e.itemCount > maxItems) {
        out.push(this.derive(cur, undefined, this.#leases));
        cur = [];
        n = 0;
      }
      cur.push(e);
      n += e.itemCount;
    }
    if (cur.length > 0) out.push(this.derive(cur, undefined, this.#leases));
    return out;
  }

  /** A scalar resource attribute of resource `i` (appended attributes included). */
  resourceAttribute(i: number, key: string): AttrValue | undefined {
    return entryAttribute(this.#entry(i), key);
  }

  /** True when resource `i` has attribute `key` (of any value type). */
  hasResourceAttribute(i: number, key: string): boolean {
    return locateAttribute(this.#entry(i), key);
  }

  /**
   * Append string attributes to resource `i`. The caller skips keys that are already present (routelens never
   * overwrites an attribute a client sent).
   */
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    if (attrs.length === 0) return;
    const e = this.#entry(i);
    e.extra ??= [];
    for (const [k, v] of attrs) e.extra.push(encodeStringKeyValueField(1, k, v));
    this.#pristine = undefined;
  }

  /** Set string attributes on resource `i`, replacing values the client sent (resourcedetection `override`). */
  setResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    if (attrs.length === 0) return;
    const e = this.#entry(i);
    e.replaced ??= new Set();
    const keep: Uint8Array[] = [];
    for (const kv of e.extra ?? []) {
      if (!attrs.some(([k]) => findAttribute(kv, 0, kv.length, 1, keyBytes(k)) >= 0)) keep.push(kv);
    }
    e.extra = keep;
    for (const [k, v] of attrs) {
      e.replaced.add(k);
      e.extra.push(encodeStringKeyValueField(1, k, v));
    }
    this.#pristine = undefined;
  }

  /** The encoded export request. */
  encode(): Uint8Array {
    if (this.#pristine !== undefined) return this.#pristine;
    const out = Buffer.concat(this.encodeParts());
    this.#pristine = out;
    this.#encodedHere = true;
    return out;
  }

  /**
   * The encoded export request as bytes a reader may keep after the pipeline call returns (never to modify them:
   * the batch and its other readers share them). Copied only when they are the received bytes in a pooled
   * buffer, which the receiver reuses once the pipeline returns; a modified batch's encoding is made once, and
   * received bytes that are not pooled (an inflated body, a converted JSON one) stay valid as they are.
   */
  encodeToKeep(): Uint8Array {
    const bytes = this.encode();
    return this.#encodedHere || this.#leases.length === 0 ? bytes : Buffer.from(bytes);
  }

  /**
   * The encoded export request as parts to be written in order: slices of the received bytes around
   * re-encoded resources. Writing them one after another saves joining them into one more copy of the
   * request. The parts share the received bytes: never modify them.
   */
  encodeParts(): readonly Uint8Array[] {
    if (this.#pristine !== undefined) return [this.#pristine];
    const parts: Uint8Array[] = [];
    for (const e of this.entries) encodeEntry(e, parts);
    return coalesce(parts);
  }

  /** Encoded size in bytes. */
  get byteLength(): number {
    if (this.#pristine !== undefined) return this.#pristine.length;
    let n = 0;
    for (const p of this.encodeParts()) n += p.length;
    return n;
  }

  #entry(i: number): ResourceEntry {
    const e = this.entries[i];
    if (e === undefined) throw new RangeError(`Cannot read resource ${i}: the batch has ${this.entries.length}`);
    return e;
  }
}

// ---- resource attributes -------------------------------------------------------------------------------

/** Where the last `locateAttribute` that returned true found the value (one reused object: no allocation per lookup). */
const located: { buf: Uint8Array; at: number; end: number } = { buf: new Uint8Array(0), at: 0, end: 0 };

/** Whether resource attribute `key` of an entry is present, in the received bytes or among the appended ones; if so, `located` says where. */
function locateAttribute(e: ResourceEntry, key: string): boolean {
  const kb = keyBytes(key);
  if (e.replaced === undefined || !e.replaced.has(key)) {
    // With several `resource` fields (protobuf merge), the first occurrence wins.
    for (let f = 0; f < e.resourceFields.length; f += 4) {
      const at = findAttribute(e.buf, e.resourceFields[f + 2] as number, e.resourceFields[f + 3] as number, 1, kb);
      if (at >= 0) return setLocated(e.buf, at, cursor.pos);
    }
  }
  for (const kv of e.extra ?? []) {
    const at = findAttribute(kv, 0, kv.length, 1, kb);
    if (at >= 0) return setLocated(kv, at, cursor.pos);
  }
  return false;
}

function setLocated(buf: Uint8Array, at: number, end: number): true {
  located.buf = buf;
  located.at = at;
  located.end = end;
  return true;
}

/** @internal A scalar resource attribute of an entry (appended attributes included). */
export function entryAttribute(e: ResourceEntry, key: string): AttrValue | undefined {
  return locateAttribute(e, key) ? readAnyValue(located.buf, located.at, located.end) : undefined;
}

// ---- writing -------------------------------------------------------------------------------------------

/** Write one resource-level message (field 1 of the request), re-encoding its Resource only when it gained attributes. */
function encodeEntry(e: ResourceEntry, parts: Uint8Array[]): void {
  const content = e.buf.subarray(e.start, e.end);
  if (e.extra === undefined || e.extra.length === 0) {
    parts.push(lenHeader(1, content.length), content);
    return;
  }
  // New Resource = contents of every existing resource field (protobuf merge), minus replaced attributes,
  // + appended attributes.
  const kept: Uint8Array[] = [];
  for (let f = 0; f < e.resourceFields.length; f += 4) {
    const from = e.resourceFields[f + 2] as number;
    const to = e.resourceFields[f + 3] as number;
    if (e.replaced === undefined) kept.push(e.buf.subarray(from, to));
    else dropReplaced(e.buf, from, to, e.replaced, kept);
  }
  let resourceLen = 0;
  for (const k of kept) resourceLen += k.length;
  for (const kv of e.extra) resourceLen += kv.length;
  const resHeader = lenHeader(1, resourceLen);
  // Resource-level content minus the old resource fields, plus the new one.
  let rest = content.length;
  for (let f = 0; f < e.resourceFields.length; f += 4) rest -= (e.resourceFields[f + 1] as number) - (e.resourceFields[f] as number);
  const total = resHeader.length + resourceLen + rest;
  parts.push(lenHeader(1, total), resHeader);
  parts.push(...kept, ...e.extra);
  let from = e.start;
  for (let f = 0; f < e.resourceFields.length; f += 4) {
    const fs = e.resourceFields[f] as number;
    if (fs > from) parts.push(e.buf.subarray(from, fs));
    from = e.resourceFields[f + 1] as number;
  }
  if (e.end > from) parts.push(e.buf.subarray(from, e.end));
}

/** Copy the fields of Resource content `[from, to)` except attributes whose key is in `drop`. */
function dropReplaced(buf: Uint8Array, from: number, to: number, drop: ReadonlySet<string>, out: Uint8Array[]): void {
  const keys = [...drop].map(keyBytes);
  let pos = from;
  let runStart = from;
  while (pos < to) {
    const fieldStart = pos;
    const tag = readVarint32(buf, pos, to);
    pos = cursor.pos;
    const fieldEnd = skipField(buf, tag & 7, pos, to);
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const kvEnd = readLen(buf, pos, to);
      const kvStart = cursor.pos;
      if (keys.some((k) => anyValueOfKey(buf, kvStart, kvEnd, k) >= 0)) {
        if (fieldStart > runStart) out.push(buf.subarray(runStart, fieldStart));
        runStart = fieldEnd;
      }
    }
    pos = fieldEnd;
  }
  if (to > runStart) out.push(buf.subarray(runStart, to));
}

/**
 * Join runs of small parts (headers, appended attributes) into one buffer each, so a writer is handed a few
 * large slices rather than hundreds of tiny ones; parts of the received bytes from 4 KiB up stay as they are.
 */
function coalesce(parts: Uint8Array[]): Uint8Array[] {
  const SMALL = 4096;
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const flush = (): void => {
    if (run.length === 1) out.push(run[0] as Uint8Array);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const p of parts) {
    if (p.length === 0) continue;
    if (p.length >= SMALL) {
      flush();
      out.push(p);
    } else {
      run.push(p);
      runBytes += p.length;
    }
  }
  flush();
  return out;
}
