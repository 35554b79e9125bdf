/**
 * The trace assembler as it was before its records went columnar (src/analysis/assembly.ts, decision 0016): one
 * SpanRecord object held per span, one Trace object per trace. Kept only as the reference the differential
 * property test (test/analysis/assembly-differential.test.ts) runs the columnar assembler against.
 *
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
import type { SpanRecord } from '../../src/analysis/span-record';
import { SpanClass } from '../../src/analysis/span-record';
import { RecentKeys, type AssemblyOptions, type AssemblyStats, type AnalysisSink } from '../../src/analysis/assembly';
import { analyzeTrace, type AnalyzerOptions } from '../../src/analysis/trace';

/** Estimated heap bytes of one record (object, its fields, its share of strings), measured on Node 20. */
const RECORD_BYTES = 240;
const TRACE_BYTES = 200;
/** Traces analysed between two looks at the clock in a time-sliced `expire`. */
const EXPIRE_CHUNK = 32;

class Trace {
  spans: SpanRecord[] = [];
  /** Request spans waiting for their analysis, with their due time. */
  pending: SpanRecord[] = [];
  lastArrivalMs = 0;
  bytes = TRACE_BYTES;
  /** `lastArrivalMs` when it last joined the age queue (its entry there is the one with this time). */
  queuedMs = 0;
  #id: string | (() => string);
  constructor(
    readonly key: number,
    readonly hi: number,
    id: () => string,
  ) {
    this.#id = id;
  }

  /** The hex trace id, made when first analysed: not a string held (and promoted) for the whole wait. */
  get id(): string {
    if (typeof this.#id !== 'string') this.#id = this.#id();
    return this.#id;
  }
}

export class ReferenceTraceAssembler {
  readonly decisionWaitMs: number;
  readonly maxTraceWaitMs: number;
  readonly lateWindowMs: number;
  readonly maxTraces: number;
  readonly maxSpansPerTrace: number;
  readonly maxBytes: number;
  readonly #options: AnalyzerOptions;
  readonly #sink: AnalysisSink;
  /** Traces in flight. */
  readonly #traces = new Map<number, Trace>();
  /**
   * Traces by age, as (key, queuedMs) in two arrays: created, or re-queued by the quiet check after newer spans;
   * the oldest at `#ageHead`. Keys, not the traces: an analysed trace's entry stays until the walk reaches it
   * (up to `maxTraceWaitMs`) and must not keep the trace alive that long. An entry whose trace is gone, or whose
   * time is not its trace's `queuedMs` (re-queued since, or another trace with the key), is skipped.
   */
  readonly #ageKeys: number[] = [];
  readonly #ageMs: number[] = [];
  #ageHead = 0;
  /** Request spans in arrival order with their trace: due at arrival + decision wait (parallel arrays, not an object each). */
  readonly #dueTraces: Trace[] = [];
  readonly #dueSpans: SpanRecord[] = [];
  readonly #dueAt: number[] = [];
  #dueHead = 0;
  /** Span keys of analysed requests' non-leaf spans, to recognise late children. */
  readonly #recent: RecentKeys;
  #bytes = 0;
  #spans = 0;
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
   * `traceId()` gives the hex id, called once when the trace is first analysed).
   */
  add(key: number, hi: number, traceId: () => string, rec: SpanRecord, nowMs: number): void {
    this.#stats.spansReceived++;
    let t = this.#traces.get(key);
    if (t !== undefined && t.hi !== hi) {
      this.#stats.droppedSpans++; // two trace ids share 53 bits: too rare to handle otherwise
      return;
    }
    if (rec.parentKey >= 0 && this.#recent.has(rec.parentKey)) {
      this.#stats.lateSpans++;
      return;
    }
    if (t === undefined) {
      if (this.#traces.size >= this.maxTraces) this.#evictOldest(nowMs);
      t = new Trace(key, hi, traceId);
      t.queuedMs = nowMs;
      this.#traces.set(key, t);
      this.#ageKeys.push(key);
      this.#ageMs.push(nowMs);
      this.#bytes += TRACE_BYTES;
    } else if (t.spans.length >= this.maxSpansPerTrace) {
      this.#stats.droppedSpans++;
      return;
    }
    t.spans.push(rec);
    t.lastArrivalMs = nowMs;
    const b = RECORD_BYTES + rec.statement.length + rec.url.length;
    t.bytes += b;
    this.#bytes += b;
    this.#spans++;
    if (rec.cls === SpanClass.Request && rec.route !== '') {
      t.pending.push(rec);
      this.#dueTraces.push(t);
      this.#dueSpans.push(rec);
      this.#dueAt.push(nowMs + this.decisionWaitMs);
    }
    while (this.#bytes > this.maxBytes && this.#traces.size > 1) this.#evictOldest(nowMs);
  }

  /**
   * Analyses what is due at `nowMs` and drops traces quiet for longer than the max wait. With `outOfTime`, stops
   * early when it says so (checked between chunks of traces) and returns false: call again to go on. Slices give
   * the event loop back to requests between them; the results are those of one call.
   */
  expire(nowMs: number, outOfTime?: () => boolean): boolean {
    const dueTraces = this.#dueTraces;
    for (let more = true; more;) {
      more = false;
      const ready = new Map<Trace, Set<SpanRecord>>();
      while (this.#dueHead < dueTraces.length) {
        if ((this.#dueAt[this.#dueHead] as number) > nowMs) break;
        const trace = dueTraces[this.#dueHead] as Trace;
        if (ready.size >= EXPIRE_CHUNK && !ready.has(trace)) {
          more = true;
          break;
        }
        const span = this.#dueSpans[this.#dueHead] as SpanRecord;
        this.#dueHead++;
        if (this.#traces.get(trace.key) !== trace || !trace.pending.includes(span)) continue; // analysed already
        let set = ready.get(trace);
        if (set === undefined) ready.set(trace, (set = new Set()));
        set.add(span);
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
      const t = this.#traces.get(key);
      if (t === undefined || t.queuedMs !== times[this.#ageHead]) {
        this.#ageHead++;
        continue;
      }
      if (nowMs - t.lastArrivalMs < this.maxTraceWaitMs) {
        if (t.lastArrivalMs === t.queuedMs) break;
        t.queuedMs = t.lastArrivalMs;
        keys.push(key);
        times.push(t.queuedMs);
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
      this.#dueTraces.splice(0, this.#dueHead);
      this.#dueSpans.splice(0, this.#dueHead);
      this.#dueAt.splice(0, this.#dueHead);
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
    for (const t of [...this.#traces.values()]) this.#analyse(t, undefined, true, nowMs);
    this.#dueTraces.length = 0;
    this.#dueSpans.length = 0;
    this.#dueAt.length = 0;
    this.#dueHead = 0;
    this.#ageKeys.length = 0;
    this.#ageMs.length = 0;
    this.#ageHead = 0;
  }

  stats(): AssemblyStats {
    return { tracesInFlight: this.#traces.size, spansInFlight: this.#spans, bytesInFlight: this.#bytes, ...this.#stats };
  }

  #evictOldest(nowMs: number): void {
    while (this.#ageHead < this.#ageKeys.length) {
      const t = this.#traces.get(this.#ageKeys[this.#ageHead] as number);
      const queuedMs = this.#ageMs[this.#ageHead++];
      if (t === undefined || t.queuedMs !== queuedMs) continue;
      this.#stats.evictedTraces++;
      this.#analyse(t, undefined, true, nowMs);
      break;
    }
    this.#compactAge();
  }

  /**
   * Analyses `requests` of the trace (all its pending ones when undefined); with `final` the trace is done:
   * leftovers are counted and it is forgotten.
   */
  #analyse(t: Trace, requests: Set<SpanRecord> | undefined, final: boolean, nowMs: number): void {
    const select = requests ?? new Set(t.pending);
    if (select.size > 0 || final) {
      const a = analyzeTrace(t.id, t.spans, this.#options, { requests: select, countOrphans: final });
      this.#stats.requestsAnalysed += a.requests.length;
      this.#stats.duplicateSpans += a.duplicates;
      this.#stats.skewRefused += a.skewRefused;
      this.#stats.orphanSpans += a.orphans;
      if (a.requests.length > 0 || a.orphans > 0) this.#sink(a, nowMs);
      if (select.size > 0) t.pending = t.pending.filter((s) => !select.has(s));
      if (a.used.size > 0) {
        const kept = t.spans.filter((s) => !a.used.has(s));
        this.#spans -= t.spans.length - kept.length;
        let freed = 0;
        for (const s of a.used) {
          freed += RECORD_BYTES + s.statement.length + s.url.length;
          if (s.cls === SpanClass.Request || s.cls === SpanClass.Own) this.#recent.add(s.key, nowMs);
        }
        t.bytes -= freed;
        this.#bytes -= freed;
        t.spans = kept;
      }
      if (final) this.#stats.unrootedSpans += t.spans.length - a.orphans;
    }
    if (final || (t.spans.length === 0 && t.pending.length === 0)) {
      this.#traces.delete(t.key);
      this.#spans -= t.spans.length;
      this.#bytes -= t.bytes;
    }
  }
}
