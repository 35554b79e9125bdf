/**
 * Trace assembly for analysis: span records gathered by trace id across requests and batches, each request span
 * analysed `decisionWaitMs` after it arrived, with whatever of its trace has arrived by then.
 *
 * Why per request and not per trace: a request's subtree is its own service's spans (see trace.ts), and a
 * service's exporter sends a span's children no later than the span itself (the SDKs' batch processors export
 * spans in the order they end, and children end first). So when a request span has arrived, its subtree has
 * too, up to reordering between concurrent exports, which the decision wait absorbs. A trace that crosses
 * services is analysed request by request as each one arrives; a request span that comes seconds after its
 * children (the next export of its service) still finds them, since unused spans stay until their trace has
 * been quiet for `maxTraceWaitMs`. Spans no request used by then are dropped: orphans (parent never arrived)
 * are counted per service, spans of traces without any request span (batch jobs, scripts) as unrooted.
 *
 * Late spans: the ids of the request and own (non-leaf) spans of analysed requests are remembered (the last
 * `lateKeys` to twice that many, at a fixed memory; see RecentKeys); a span whose parent is one of
 * them arrives after its request was analysed without it: it is counted as late and dropped. A late span whose
 * parent was a leaf, or was forgotten, waits like any other and ends up counted as an orphan.
 *
 * Bounds: `maxTraces` in flight, `maxSpansPerTrace`, `maxBytes` estimated in all. Past a bound the oldest traces
 * are analysed at once (counted as evicted) or the span is dropped (counted); nothing waits.
 *
 * Age order is a FIFO of traces, re-queued lazily when they had spans since they were queued, not a Map kept in
 * activity order: deleting a Map's first entries leaves holes that V8 skips on every later `values().next()`
 * until the table is rebuilt, which made each eviction cost about as many steps as traces were held.
 */
import { EMPTY_RESOURCE, hex32, idKey, NO_ATTRIBUTES, SpanClass, SpanRecord, type ResourceInfo } from './span-record';
import { analyzeTrace, type AnalyzerOptions, type TraceAnalysis } from './trace';

export interface AssemblyOptions extends AnalyzerOptions {
  /** After a request span arrives, how long to wait for the rest of its subtree. @default 2000 */
  decisionWaitMs?: number;
  /** Spans not yet used are kept until their trace has had no new span for this long. @default 15000 */
  maxTraceWaitMs?: number;
  /** Analysed span ids are remembered at least this long (unless more than `lateKeys` arrive). @default 30000 */
  lateWindowMs?: number;
  /** Analysed span ids remembered per generation (two generations). @default 65536 */
  lateKeys?: number;
  /** A backstop; `maxBytes` is the bound that normally applies. @default 200000 */
  maxTraces?: number;
  /** @default 1000 */
  maxSpansPerTrace?: number;
  /** Estimated bytes of all records held. @default 64 MiB */
  maxBytes?: number;
}

export interface AssemblyStats {
  tracesInFlight: number;
  spansInFlight: number;
  /** Estimated bytes of the records held. */
  bytesInFlight: number;
  spansReceived: number;
  requestsAnalysed: number;
  /** Spans arriving after the request they belong to was analysed (their parent is remembered). */
  lateSpans: number;
  /** Spans dropped because their trace had `maxSpansPerTrace` already. */
  droppedSpans: number;
  /** Traces analysed early because `maxTraces` or `maxBytes` was reached. */
  evictedTraces: number;
  /** Spans whose parent never arrived (not used by any request). */
  orphanSpans: number;
  /** Spans of traces that had no request span at all. */
  unrootedSpans: number;
  duplicateSpans: number;
  skewRefused: number;
}

/** Estimated bytes of one held span (its columns, its share of strings), as the object layout was sized on Node 20. */
export const RECORD_BYTES = 240;
const TRACE_BYTES = 200;
/** Traces analysed between two looks at the clock in a time-sliced `expire`. */
const EXPIRE_CHUNK = 32;
const NONE = -1;

/** What the assembler hands back: analyses to record, at their receive time. */
export type AnalysisSink = (analysis: TraceAnalysis, nowMs: number) => void;

const growF64 = (a: Float64Array, n: number): Float64Array<ArrayBuffer> => {
  const b = new Float64Array(n);
  b.set(a);
  return b;
};
const growI32 = (a: Int32Array, n: number): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(n);
  b.set(a);
  return b;
};
const growU32 = (a: Uint32Array, n: number): Uint32Array<ArrayBuffer> => {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
};
function growArray<T>(a: T[], n: number, fill: T): void {
  for (let i = a.length; i < n; i++) a.push(fill);
}

/**
 * The spans held, as columns indexed by a span slot (a freed slot is reused): numbers in typed arrays, strings
 * and the shared resource facts in arrays. A span of a trace links to the trace's next span in arrival order.
 */
class SpanColumns {
  size = 0;
  free: number[] = [];
  ids = new Uint32Array(0); // idHi, idLo, parentHi, parentLo per slot
  keys = new Float64Array(0); // key, parentKey per slot
  times = new Float64Array(0); // startMs, endMs, receivedMs, skewMs, httpStatus per slot
  ints = new Int32Array(0); // kind, statusCode, cls, pending (1 while its analysis is due), generation per slot
  next = new Int32Array(0);
  name: string[] = [];
  scope: string[] = [];
  system: string[] = [];
  server: string[] = [];
  statement: string[] = [];
  parameters: string[] = [];
  method: string[] = [];
  url: string[] = [];
  route: string[] = [];
  resource: ResourceInfo[] = [];
  attributes: (readonly string[])[] = [];

  alloc(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.size === this.next.length) {
      const n = Math.max(1024, this.size * 2);
      this.ids = growU32(this.ids, 4 * n);
      this.keys = growF64(this.keys, 2 * n);
      this.times = growF64(this.times, 5 * n);
      this.ints = growI32(this.ints, 5 * n);
      this.next = growI32(this.next, n);
      for (const a of [this.name, this.scope, this.system, this.server, this.statement, this.parameters, this.method, this.url, this.route])
        growArray(a, n, '');
      growArray(this.resource, n, EMPTY_RESOURCE);
      growArray(this.attributes, n, NO_ATTRIBUTES);
    }
    return this.size++;
  }

  set(i: number, r: SpanRecord): void {
    const ids = this.ids;
    ids[4 * i] = r.idHi;
    ids[4 * i + 1] = r.idLo;
    ids[4 * i + 2] = r.parentHi;
    ids[4 * i + 3] = r.parentLo;
    this.keys[2 * i] = r.key;
    this.keys[2 * i + 1] = r.parentKey;
    const t = this.times;
    t[5 * i] = r.startMs;
    t[5 * i + 1] = r.endMs;
    t[5 * i + 2] = r.receivedMs;
    t[5 * i + 3] = r.skewMs;
    t[5 * i + 4] = r.httpStatus;
    const n = this.ints;
    n[5 * i] = r.kind;
    n[5 * i + 1] = r.statusCode;
    n[5 * i + 2] = r.cls;
    n[5 * i + 3] = 0;
    this.next[i] = NONE;
    this.name[i] = r.name;
    this.scope[i] = r.scope;
    this.system[i] = r.system;
    this.server[i] = r.server;
    this.statement[i] = r.statement;
    this.parameters[i] = r.parameters;
    this.method[i] = r.method;
    this.url[i] = r.url;
    this.route[i] = r.route;
    this.resource[i] = r.resource;
    this.attributes[i] = r.attributes;
  }

  /** A record of the span for one analysis (short-lived: it is dropped once the analysis is recorded). */
  record(i: number): SpanRecord {
    const r = new SpanRecord();
    const ids = this.ids;
    r.idHi = ids[4 * i] as number;
    r.idLo = ids[4 * i + 1] as number;
    r.parentHi = ids[4 * i + 2] as number;
    r.parentLo = ids[4 * i + 3] as number;
    r.key = this.keys[2 * i] as number;
    r.parentKey = this.keys[2 * i + 1] as number;
    const t = this.times;
    r.startMs = t[5 * i] as number;
    r.endMs = t[5 * i + 1] as number;
    r.receivedMs = t[5 * i + 2] as number;
    r.skewMs = t[5 * i + 3] as number;
    r.httpStatus = t[5 * i + 4] as number;
    const n = this.ints;
    r.kind = n[5 * i] as number;
    r.statusCode = n[5 * i + 1] as number;
    r.cls = n[5 * i + 2] as SpanClass;
    r.name = this.name[i] as string;
    r.scope = this.scope[i] as string;
    r.system = this.system[i] as string;
    r.server = this.server[i] as string;
    r.statement = this.statement[i] as string;
    r.parameters = this.parameters[i] as string;
    r.method = this.method[i] as string;
    r.url = this.url[i] as string;
    r.route = this.route[i] as string;
    r.resource = this.resource[i] as ResourceInfo;
    r.attributes = this.attributes[i] as readonly string[];
    return r;
  }

  bytes(i: number): number {
    return RECORD_BYTES + (this.statement[i] as string).length + (this.url[i] as string).length;
  }

  pending(i: number): boolean {
    return this.ints[5 * i + 3] === 1;
  }

  setPending(i: number, on: boolean): void {
    this.ints[5 * i + 3] = on ? 1 : 0;
  }

  generation(i: number): number {
    return this.ints[5 * i + 4] as number;
  }

  /** Frees the slot; its strings and arrays are let go now, not when the slot is reused. */
  release(i: number): void {
    this.ints[5 * i + 3] = 0;
    this.ints[5 * i + 4] = ((this.ints[5 * i + 4] as number) + 1) | 0;
    this.statement[i] = '';
    this.parameters[i] = '';
    this.url[i] = '';
    this.name[i] = '';
    this.server[i] = '';
    this.method[i] = '';
    this.attributes[i] = NO_ATTRIBUTES;
    this.resource[i] = EMPTY_RESOURCE;
    this.free.push(i);
  }
}

/**
 * The traces in flight, as columns indexed by a trace slot, found by key in an open-addressing table (53-bit keys
 * in a Float64Array: no Map entry and no heap number per trace), linked in creation order (the order `flush`
 * analyses them in, as the Map of traces did).
 */
class TraceColumns {
  count = 0;
  size = 0;
  free: number[] = [];
  key = new Float64Array(0);
  hi = new Float64Array(0);
  /** lastArrivalMs, queuedMs, bytes per slot. */
  times = new Float64Array(0);
  /** first span, last span, spans, pending spans, generation, previous and next trace in creation order. */
  ints = new Int32Array(0);
  /** The trace id words when given as words. */
  words = new Uint32Array(0);
  /** The hex id, or the function that makes it, when not given as words. */
  id: (string | (() => string) | undefined)[] = [];
  first = NONE;
  last = NONE;
  #table = new Float64Array(64);
  #slots = new Int32Array(64);
  #used = 0;

  find(key: number): number {
    const table = this.#table;
    const mask = table.length - 1;
    for (let i = slotOf(key + 1, mask); ; i = (i + 1) & mask) {
      const v = table[i] as number;
      if (v === 0) return NONE;
      if (v === key + 1) return this.#slots[i] as number;
    }
  }

  create(key: number, hi: number, nowMs: number): number {
    let t = this.free.pop();
    if (t === undefined) {
      if (this.size === this.key.length) {
        const n = Math.max(1024, this.size * 2);
        this.key = growF64(this.key, n);
        this.hi = growF64(this.hi, n);
        this.times = growF64(this.times, 3 * n);
        this.ints = growI32(this.ints, 7 * n);
        this.words = growU32(this.words, 4 * n);
        growArray(this.id, n, undefined);
      }
      t = this.size++;
    }
    this.key[t] = key;
    this.hi[t] = hi;
    const times = this.times;
    times[3 * t] = nowMs;
    times[3 * t + 1] = nowMs;
    times[3 * t + 2] = TRACE_BYTES;
    const ints = this.ints;
    ints[7 * t] = NONE;
    ints[7 * t + 1] = NONE;
    ints[7 * t + 2] = 0;
    ints[7 * t + 3] = 0;
    ints[7 * t + 5] = this.last;
    ints[7 * t + 6] = NONE;
    if (this.last !== NONE) ints[7 * this.last + 6] = t;
    else this.first = t;
    this.last = t;
    this.count++;
    this.#insert(key, t);
    return t;
  }

  remove(t: number): void {
    const ints = this.ints;
    const prev = ints[7 * t + 5] as number;
    const next = ints[7 * t + 6] as number;
    if (prev !== NONE) ints[7 * prev + 6] = next;
    else this.first = next;
    if (next !== NONE) ints[7 * next + 5] = prev;
    else this.last = prev;
    ints[7 * t + 4] = ((ints[7 * t + 4] as number) + 1) | 0;
    this.id[t] = undefined;
    this.count--;
    this.#delete(this.key[t] as number);
    this.free.push(t);
  }

  #insert(key: number, t: number): void {
    if ((this.#used + 1) * 2 > this.#table.length) this.#rehash(this.#table.length * 2);
    const table = this.#table;
    const mask = table.length - 1;
    let i = slotOf(key + 1, mask);
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = key + 1;
    this.#slots[i] = t;
    this.#used++;
  }

  /** Linear probing's deletion: later entries of the probe run move back into the hole. */
  #delete(key: number): void {
    const table = this.#table;
    const slots = this.#slots;
    const mask = table.length - 1;
    let i = slotOf(key + 1, mask);
    while (table[i] !== key + 1) {
      if (table[i] === 0) return;
      i = (i + 1) & mask;
    }
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = table[j] as number;
      if (v === 0) break;
      const home = slotOf(v, mask);
      // the entry at j may fill the hole at i when its home is not cyclically within (i, j]
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        table[i] = v;
        slots[i] = slots[j] as number;
        i = j;
      }
    }
    table[i] = 0;
    this.#used--;
  }

  #rehash(size: number): void {
    const oldTable = this.#table;
    const oldSlots = this.#slots;
    this.#table = new Float64Array(size);
    this.#slots = new Int32Array(size);
    this.#used = 0;
    for (let i = 0; i < oldTable.length; i++) {
      const v = oldTable[i] as number;
      if (v !== 0) this.#insert(v - 1, oldSlots[i] as number);
    }
  }
}

export class TraceAssembler {
  readonly decisionWaitMs: number;
  readonly maxTraceWaitMs: number;
  readonly lateWindowMs: number;
  readonly maxTraces: number;
  readonly maxSpansPerTrace: number;
  readonly maxBytes: number;
  readonly #options: AnalyzerOptions;
  readonly #sink: AnalysisSink;
  readonly #spans = new SpanColumns();
  /** Traces in flight. */
  readonly #traces = new TraceColumns();
  /**
   * Traces by age, as (key, queuedMs) in two arrays: created, or re-queued by the quiet check after newer spans;
   * the oldest at `#ageHead`. Keys, not slots: an analysed trace's entry stays until the walk reaches it (up to
   * `maxTraceWaitMs`). An entry whose trace is gone, or whose time is not its trace's `queuedMs` (re-queued
   * since, or another trace with the key), is skipped.
   */
  readonly #ageKeys: number[] = [];
  readonly #ageMs: number[] = [];
  #ageHead = 0;
  /**
   * Request spans in arrival order, due at arrival + decision wait: trace slot and generation, span slot and
   * generation, due time (parallel arrays). A generation that moved on means the trace or span is gone.
   */
  readonly #dueTraces: number[] = [];
  readonly #dueTraceGens: number[] = [];
  readonly #dueSpans: number[] = [];
  readonly #dueSpanGens: number[] = [];
  readonly #dueAt: number[] = [];
  #dueHead = 0;
  /** Span keys of analysed requests' non-leaf spans, to recognise late children. */
  readonly #recent: RecentKeys;
  /**
   * Per trace slot, pending request spans another analysis used (a duplicate span id): out of the trace's
   * spans, still due, released when their analysis comes (as the trace's pending list kept them before).
   */
  readonly #detached = new Map<number, number[]>();
  #bytes = 0;
  #spanCount = 0;
  readonly #stats: Omit<AssemblyStats, 'tracesInFlight' | 'spansInFlight' | 'bytesInFlight'> = {
    spansReceived: 0,
    requestsAnalysed: 0,
    lateSpans: 0,
    droppedSpans: 0,
    evictedTraces: 0,
    orphanSpans: 0,
    unrootedSpans: 0,
    duplicateSpans: 0,
    skewRefused: 0,
  };

  constructor(sink: AnalysisSink, options: AssemblyOptions = {}) {
    this.#sink = sink;
    this.#options = options;
    this.decisionWaitMs = options.decisionWaitMs ?? 2000;
    this.maxTraceWaitMs = options.maxTraceWaitMs ?? 15_000;
    this.lateWindowMs = options.lateWindowMs ?? 30_000;
    this.maxTraces = options.maxTraces ?? 200_000;
    this.maxSpansPerTrace = options.maxSpansPerTrace ?? 1000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#recent = new RecentKeys(options.lateKeys ?? 65_536, this.lateWindowMs);
  }

  /**
   * Adds a span of trace `key` (53 bits of the trace id; `hi` another 32 bits to tell colliding ids apart;
   * `traceId()` gives the hex id, called once when the trace is first analysed). The record is copied: the
   * caller may drop or reuse it.
   */
  add(key: number, hi: number, traceId: () => string, rec: SpanRecord, nowMs: number): void {
    this.#add(key, hi, rec, nowMs, traceId, 0, 0);
  }

  /** `add` for a trace id given as four big-endian 32-bit words (the key and `hi` are derived from them). */
  addWords(w0: number, w1: number, w2: number, w3: number, rec: SpanRecord, nowMs: number): void {
    this.#add(idKey(w2, w3), w0, rec, nowMs, undefined, w1, w2, w3);
  }

  /** The id is `traceId()`, or when that is undefined the words `hi`, `w1`, `w2`, `w3`. */
  #add(key: number, hi: number, rec: SpanRecord, nowMs: number, traceId: (() => string) | undefined, w1: number, w2: number, w3 = 0): void {
    this.#stats.spansReceived++;
    const traces = this.#traces;
    let t = traces.find(key);
    if (t !== NONE && traces.hi[t] !== hi) {
      this.#stats.droppedSpans++; // two trace ids share 53 bits: too rare to handle otherwise
      return;
    }
    if (rec.parentKey >= 0 && this.#recent.has(rec.parentKey)) {
      this.#stats.lateSpans++;
      return;
    }
    if (t === NONE) {
      if (traces.count >= this.maxTraces) this.#evictOldest(nowMs);
      t = traces.create(key, hi, nowMs);
      if (traceId !== undefined) traces.id[t] = traceId;
      else {
        const words = traces.words;
        words[4 * t] = hi;
        words[4 * t + 1] = w1;
        words[4 * t + 2] = w2;
        words[4 * t + 3] = w3;
        traces.id[t] = '';
      }
      this.#ageKeys.push(key);
      this.#ageMs.push(nowMs);
      this.#bytes += TRACE_BYTES;
    } else if ((traces.ints[7 * t + 2] as number) >= this.maxSpansPerTrace) {
      this.#stats.droppedSpans++;
      return;
    }
    const spans = this.#spans;
    const s = spans.alloc();
    spans.set(s, rec);
    const ints = traces.ints;
    const lastSpan = ints[7 * t + 1] as number;
    if (lastSpan === NONE) ints[7 * t] = s;
    else spans.next[lastSpan] = s;
    ints[7 * t + 1] = s;
    ints[7 * t + 2] = (ints[7 * t + 2] as number) + 1;
    traces.times[3 * t] = nowMs;
    const b = RECORD_BYTES + rec.statement.length + rec.url.length;
    traces.times[3 * t + 2] = (traces.times[3 * t + 2] as number) + b;
    this.#bytes += b;
    this.#spanCount++;
    if (rec.cls === SpanClass.Request && rec.route !== '') {
      spans.setPending(s, true);
      ints[7 * t + 3] = (ints[7 * t + 3] as number) + 1;
      this.#dueTraces.push(t);
      this.#dueTraceGens.push(ints[7 * t + 4] as number);
      this.#dueSpans.push(s);
      this.#dueSpanGens.push(spans.generation(s));
      this.#dueAt.push(nowMs + this.decisionWaitMs);
    }
    while (this.#bytes > this.maxBytes && traces.count > 1) this.#evictOldest(nowMs);
  }

  /**
   * Analyses what is due at `nowMs` and drops traces quiet for longer than the max wait. With `outOfTime`, stops
   * early when it says so (checked between chunks of traces) and returns false: call again to go on. Slices give
   * the event loop back to requests between them; the results are those of one call.
   */
  expire(nowMs: number, outOfTime?: () => boolean): boolean {
    const traces = this.#traces;
    const spans = this.#spans;
    for (let more = true; more;) {
      more = false;
      const ready = new Map<number, number[]>();
      while (this.#dueHead < this.#dueTraces.length) {
        if ((this.#dueAt[this.#dueHead] as number) > nowMs) break;
        const t = this.#dueTraces[this.#dueHead] as number;
        const gen = this.#dueTraceGens[this.#dueHead] as number;
        if (ready.size >= EXPIRE_CHUNK && !ready.has(t)) {
          more = true;
          break;
        }
        const s = this.#dueSpans[this.#dueHead] as number;
        const sgen = this.#dueSpanGens[this.#dueHead] as number;
        this.#dueHead++;
        if (traces.ints[7 * t + 4] !== gen || spans.generation(s) !== sgen || !spans.pending(s)) continue; // analysed already
        let list = ready.get(t);
        if (list === undefined) ready.set(t, (list = []));
        if (!list.includes(s)) list.push(s);
      }
      for (const [t, requests] of ready) this.#analyse(t, requests, false, nowMs);
      if (more && outOfTime?.() === true) {
        this.#compactDue();
        return false;
      }
    }
    this.#compactDue();
    // Quiet traces, oldest first. A trace with spans since it was queued goes to the back; the first one quiet
    // since it was queued but not for long enough ends the walk (those behind it were queued later).
    const keys = this.#ageKeys;
    const times = this.#ageMs;
    let analysed = 0;
    for (let n = keys.length - this.#ageHead; n > 0; n--) {
      const key = keys[this.#ageHead] as number;
      const t = traces.find(key);
      if (t === NONE || traces.times[3 * t + 1] !== times[this.#ageHead]) {
        this.#ageHead++;
        continue;
      }
      const lastArrivalMs = traces.times[3 * t] as number;
      if (nowMs - lastArrivalMs < this.maxTraceWaitMs) {
        if (lastArrivalMs === traces.times[3 * t + 1]) break;
        traces.times[3 * t + 1] = lastArrivalMs;
        keys.push(key);
        times.push(lastArrivalMs);
        this.#ageHead++;
        continue;
      }
      this.#ageHead++;
      this.#analyse(t, undefined, true, nowMs);
      if (++analysed % EXPIRE_CHUNK === 0 && outOfTime?.() === true) {
        this.#compactAge();
        return false;
      }
    }
    this.#compactAge();
    return true;
  }

  #compactDue(): void {
    if (this.#dueHead > 1024 && this.#dueHead * 2 > this.#dueTraces.length) {
      for (const a of [this.#dueTraces, this.#dueTraceGens, this.#dueSpans, this.#dueSpanGens, this.#dueAt]) a.splice(0, this.#dueHead);
      this.#dueHead = 0;
    }
  }

  #compactAge(): void {
    if (this.#ageHead > 1024 && this.#ageHead * 2 > this.#ageKeys.length) {
      this.#ageKeys.splice(0, this.#ageHead);
      this.#ageMs.splice(0, this.#ageHead);
      this.#ageHead = 0;
    }
  }

  /** Analyses everything held now (shutdown, offline analysis). */
  flush(nowMs: number): void {
    const traces = this.#traces;
    for (let t = traces.first; t !== NONE;) {
      const next = traces.ints[7 * t + 6] as number;
      this.#analyse(t, undefined, true, nowMs);
      t = next;
    }
    for (const a of [this.#dueTraces, this.#dueTraceGens, this.#dueSpans, this.#dueSpanGens, this.#dueAt]) a.length = 0;
    this.#dueHead = 0;
    this.#ageKeys.length = 0;
    this.#ageMs.length = 0;
    this.#ageHead = 0;
  }

  stats(): AssemblyStats {
    return { tracesInFlight: this.#traces.count, spansInFlight: this.#spanCount, bytesInFlight: this.#bytes, ...this.#stats };
  }

  #evictOldest(nowMs: number): void {
    const traces = this.#traces;
    while (this.#ageHead < this.#ageKeys.length) {
      const t = traces.find(this.#ageKeys[this.#ageHead] as number);
      const queuedMs = this.#ageMs[this.#ageHead++];
      if (t === NONE || traces.times[3 * t + 1] !== queuedMs) continue;
      this.#stats.evictedTraces++;
      this.#analyse(t, undefined, true, nowMs);
      break;
    }
    this.#compactAge();
  }

  #traceId(t: number): string {
    const traces = this.#traces;
    const id = traces.id[t];
    if (id === '') {
      const w = traces.words;
      return hex32(w[4 * t] as number) + hex32(w[4 * t + 1] as number) + hex32(w[4 * t + 2] as number) + hex32(w[4 * t + 3] as number);
    }
    if (typeof id === 'function') return (traces.id[t] = id());
    return id as string;
  }

  /**
   * Analyses `requests` (span slots) of the trace (all its pending ones when undefined); with `final` the trace is
   * done: leftovers are counted and it is forgotten. The spans are read into records for this analysis only.
   */
  #analyse(t: number, requests: number[] | undefined, final: boolean, nowMs: number): void {
    const traces = this.#traces;
    const spans = this.#spans;
    const ints = traces.ints;
    const records: SpanRecord[] = [];
    const slots: number[] = [];
    const select = new Set<SpanRecord>();
    for (let s = ints[7 * t] as number; s !== NONE; s = spans.next[s] as number) {
      const r = spans.record(s);
      records.push(r);
      slots.push(s);
      if (requests === undefined ? spans.pending(s) : requests.includes(s)) select.add(r);
    }
    // the selection as the pending list had it: detached pending spans count, though not among the records
    const selected = requests === undefined ? (ints[7 * t + 3] as number) : requests.length;
    if (selected > 0 || final) {
      const a = analyzeTrace(this.#traceId(t), records, this.#options, { requests: select, countOrphans: final });
      this.#stats.requestsAnalysed += a.requests.length;
      this.#stats.duplicateSpans += a.duplicates;
      this.#stats.skewRefused += a.skewRefused;
      this.#stats.orphanSpans += a.orphans;
      if (a.requests.length > 0 || a.orphans > 0) this.#sink(a, nowMs);
      for (let i = 0; i < records.length; i++) {
        const s = slots[i] as number;
        if (spans.pending(s) && select.has(records[i] as SpanRecord)) {
          spans.setPending(s, false);
          ints[7 * t + 3] = (ints[7 * t + 3] as number) - 1;
        }
      }
      const detached = this.#detached.get(t);
      if (detached !== undefined) {
        for (let i = detached.length - 1; i >= 0; i--) {
          const s = detached[i] as number;
          if (requests !== undefined && !requests.includes(s)) continue;
          spans.release(s);
          ints[7 * t + 3] = (ints[7 * t + 3] as number) - 1;
          detached.splice(i, 1);
        }
        if (detached.length === 0) this.#detached.delete(t);
      }
      if (a.used.size > 0) {
        let freed = 0;
        for (const r of a.used) {
          freed += RECORD_BYTES + r.statement.length + r.url.length;
          if (r.cls === SpanClass.Request || r.cls === SpanClass.Own) this.#recent.add(r.key, nowMs);
        }
        // unlink the used spans, keeping the others in arrival order
        let prev = NONE;
        let kept = 0;
        for (let i = 0; i < records.length; i++) {
          const s = slots[i] as number;
          if (a.used.has(records[i] as SpanRecord)) {
            if (spans.pending(s)) {
              const list = this.#detached.get(t);
              if (list === undefined) this.#detached.set(t, [s]);
              else list.push(s);
            } else spans.release(s);
            continue;
          }
          if (prev === NONE) ints[7 * t] = s;
          else spans.next[prev] = s;
          prev = s;
          kept++;
        }
        if (prev === NONE) ints[7 * t] = NONE;
        else spans.next[prev] = NONE;
        ints[7 * t + 1] = prev;
        this.#spanCount -= (ints[7 * t + 2] as number) - kept;
        ints[7 * t + 2] = kept;
        traces.times[3 * t + 2] = (traces.times[3 * t + 2] as number) - freed;
        this.#bytes -= freed;
      }
      if (final) this.#stats.unrootedSpans += (ints[7 * t + 2] as number) - a.orphans;
    }
    if (final || (ints[7 * t + 2] === 0 && ints[7 * t + 3] === 0)) {
      this.#spanCount -= ints[7 * t + 2] as number;
      this.#bytes -= traces.times[3 * t + 2] as number;
      for (let s = ints[7 * t] as number; s !== NONE;) {
        const next = spans.next[s] as number;
        spans.release(s);
        s = next;
      }
      for (const s of this.#detached.get(t) ?? []) spans.release(s);
      this.#detached.delete(t);
      traces.remove(t);
    }
  }
}

/**
 * A set of recent 53-bit keys in two generations of open-addressing tables (8 bytes a slot, half full at most):
 * a generation is retired once it holds `capacity` keys and is `minAgeMs` old, or holds 1.5 × `capacity` keys.
 * So a key is remembered for at least `capacity` further insertions, and for `minAgeMs` unless keys arrive faster
 * than 1.5 × `capacity` in that time; memory is fixed at 2 tables × 2 × capacity × 8 bytes.
 */
export class RecentKeys {
  #cur: Float64Array;
  #old: Float64Array;
  #count = 0;
  #startedMs = -Infinity;
  readonly #capacity: number;
  readonly #minAgeMs: number;
  readonly #mask: number;

  constructor(capacity: number, minAgeMs: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.#capacity = Math.floor(size / 2);
    this.#mask = size - 1;
    this.#minAgeMs = minAgeMs;
    this.#cur = new Float64Array(size);
    this.#old = new Float64Array(size);
  }

  add(key: number, nowMs: number): void {
    if (this.#count === 0) this.#startedMs = nowMs;
    if (this.#count >= this.#capacity) {
      if (nowMs - this.#startedMs < this.#minAgeMs && this.#count < this.#capacity * 1.5) {
        // young: keep filling (up to 75 % load) so the window is not cut short
      } else {
        const t = this.#old;
        this.#old = this.#cur;
        t.fill(0);
        this.#cur = t;
        this.#count = 0;
        this.#startedMs = nowMs;
      }
    }
    if (insert(this.#cur, key + 1, this.#mask)) this.#count++;
  }

  has(key: number): boolean {
    return contains(this.#cur, key + 1, this.#mask) || contains(this.#old, key + 1, this.#mask);
  }
}

function slotOf(k: number, mask: number): number {
  // mix the low and high words (keys are random ids; this only spreads sequential test ids)
  const lo = k >>> 0;
  const hi = Math.floor(k / 4294967296);
  return (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0) & mask;
}

function insert(table: Float64Array, k: number, mask: number): boolean {
  let i = slotOf(k, mask);
  for (;;) {
    const v = table[i] as number;
    if (v === 0) {
      table[i] = k;
      return true;
    }
    if (v === k) return false;
    i = (i + 1) & mask;
  }
}

function contains(table: Float64Array, k: number, mask: number): boolean {
  let i = slotOf(k, mask);
  for (;;) {
    const v = table[i] as number;
    if (v === 0) return false;
    if (v === k) return true;
    i = (i + 1) & mask;
  }
}
