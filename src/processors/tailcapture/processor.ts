/**
 * The `tail_capture` processor: holds each trace's spans (as places in the received bytes, not copies) until a
 * decision wait after its root span arrives, then forwards the whole trace to the pipeline's exporters when a
 * policy keeps it — its root slower than the route's live percentile (from the routelatency connector, which
 * counts every span), a span with an error status, or the route's baseline draw — and drops it otherwise.
 *
 * Every forwarded span carries `routelens.sampling.weight` (how many traces it stands for: 1 for slow and error
 * traces, which are all kept; 1/p for a baseline trace drawn with probability p) and `routelens.capture.reason`
 * (the policy's name), and a slow trace `routelens.capture.threshold_ms` (the percentile it exceeded). Summing the
 * weights of the kept traces of a route estimates its traffic.
 *
 * The client's request is acknowledged at once: forwarding never waits for a decision, and a refusal downstream
 * is counted, not returned. Late spans of a decided trace follow its decision (decision caches). Bounds:
 * `num_traces`, `max_spans_per_trace`, `max_memory_mib` of retained request bytes; past them the oldest trace is
 * decided at once, or the span dropped (counted).
 *
 * Under `--workers`, each worker decides on the spans it received: a trace whose services export to different
 * workers is decided per worker (its root's worker keeps its part when slow; the others only on an error or a
 * baseline draw), as with several Collectors without trace-id routing in front.
 */
import type { Component, CreateSettings, Host, PipelineContext } from '../../core/component';
import type { TracesConsumer } from '../../consumer/consumer';
import type { Counter, Telemetry } from '../../core/telemetry';
import { liveRouteLatencyOf, type LiveRouteLatency } from '../../core/route-latency';
import { RecentKeys } from '../../analysis/assembly';
import { idKey } from '../../analysis/span-record';
import type { ResourceEntry } from '../../pdata/otlp-batch';
import { TraceBatch, encodeSpans, type SpanLocation, type SpanView } from '../../pdata/trace-batch';
import { encodeDoubleKeyValueField, encodeStringKeyValueField } from '../../pdata/wire';
import { relativeErrorAtScale, SKETCH_SCALE } from '../../pdata/expo-histogram';
import type { TailCaptureConfig, TailCapturePolicy } from './config';

export const WEIGHT_ATTRIBUTE = 'routelens.sampling.weight';
export const REASON_ATTRIBUTE = 'routelens.capture.reason';
export const THRESHOLD_ATTRIBUTE = 'routelens.capture.threshold_ms';

const STATUS = { UNSET: 0, OK: 1, ERROR: 2 } as const;
const SKETCH_ERROR = relativeErrorAtScale(SKETCH_SCALE);

/**
 * A received request retained while some of its spans wait for a decision: where each held span lies in it, as
 * five int32 per span (resource index, ScopeSpans range, span range), and the trace each waits in. One flat
 * array per request, not an object per span: a held span lives a decision wait, long enough to be promoted to
 * old space, where every object costs a full collection's marking.
 */
class Held {
  /** Ranges of the held spans: resource index, ScopeSpans start and end, span start and end. */
  locs = new Int32Array(5 * 16);
  /** Per held span, its trace while undecided; undefined once decided. */
  readonly owners: (Trace | undefined)[] = [];
  /** The batch's resource entries, by resource index (they hold the resource attributes processors added). */
  readonly entries: ResourceEntry[] = [];
  count = 0;
  /** Undecided spans, and their encoded bytes. */
  pending = 0;
  pendingBytes = 0;
  constructor(
    readonly release: () => void,
    readonly bytes: number,
    readonly receivedMs: number,
  ) {}

  add(span: SpanView, owner: Trace): number {
    const loc = span.location();
    const i = this.count++;
    if (5 * this.count > this.locs.length) {
      const grown = new Int32Array(this.locs.length * 2);
      grown.set(this.locs);
      this.locs = grown;
    }
    const o = 5 * i;
    const l = this.locs;
    l[o] = span.resourceIndex;
    l[o + 1] = loc.scopeSpansStart;
    l[o + 2] = loc.scopeSpansEnd;
    l[o + 3] = loc.start;
    l[o + 4] = loc.end;
    this.entries[span.resourceIndex] = loc.entry;
    this.owners.push(owner);
    this.pending++;
    this.pendingBytes += loc.end - loc.start;
    return i;
  }

  location(i: number): SpanLocation {
    const o = 5 * i;
    const l = this.locs;
    const entry = this.entries[l[o] as number] as ResourceEntry;
    return {
      entry,
      buf: entry.buf,
      scopeSpansStart: l[o + 1] as number,
      scopeSpansEnd: l[o + 2] as number,
      start: l[o + 3] as number,
      end: l[o + 4] as number,
    };
  }

  /** Marks span `i` decided; true when it was the request's last undecided span. */
  settle(i: number): boolean {
    const o = 5 * i;
    this.owners[i] = undefined;
    this.pendingBytes -= (this.locs[o + 4] as number) - (this.locs[o + 3] as number);
    return --this.pending === 0;
  }
}

class Trace {
  /** Its held spans as (request, index in it) pairs, flat. */
  refs: (Held | number)[] = [];
  /** Status codes seen (bit per code). */
  statuses = 0;
  rootRoute: string | undefined;
  rootMs = NaN;
  hasRoot = false;
  /** A request span to judge the trace by when no root arrives: the earliest-starting one. */
  fallbackRoute: string | undefined;
  fallbackMs = NaN;
  fallbackStart = Infinity;
  constructor(
    readonly key: number,
    readonly hi: number,
  ) {}

  get spanCount(): number {
    return this.refs.length >> 1;
  }
}

/** A FIFO of traces with the time each is due; times grow along it (arrival time + a constant). Parallel arrays. */
interface DueQueue {
  traces: Trace[];
  at: number[];
  head: number;
}

interface Decision {
  weight: number;
  reason: string;
  extra: Uint8Array;
}

export interface TailCaptureStats {
  tracesInFlight: number;
  spansInFlight: number;
  retainedBytes: number;
}

/** Baseline draws of one route: the previous minute's count sets this minute's probability. */
interface RouteMinute {
  minute: number;
  count: number;
  previous: number;
}

/**
 * The in-flight gauges of one processor id: one series per id, the sum over its instances (the service makes one
 * per pipeline listing the id), registered while any of them runs.
 */
const gaugeUsers = new WeakMap<Telemetry, Map<string, { processors: Set<TailCaptureProcessor>; remove: (() => void)[] }>>();

function joinGauges(settings: CreateSettings, processor: TailCaptureProcessor): void {
  let byId = gaugeUsers.get(settings.telemetry);
  if (byId === undefined) gaugeUsers.set(settings.telemetry, (byId = new Map()));
  let entry = byId.get(settings.id);
  if (entry === undefined) {
    const processors = new Set<TailCaptureProcessor>();
    const sum = (key: keyof TailCaptureStats) => (): number => [...processors].reduce((total, p) => total + p.stats()[key], 0);
    const t = settings.telemetry;
    const labels = { processor: settings.id };
    entry = {
      processors,
      remove: [
        t.gauge('routelens_tail_capture_traces_in_flight', 'Traces held by tail_capture, undecided.', labels, sum('tracesInFlight')),
        t.gauge('routelens_tail_capture_spans_in_flight', 'Spans of undecided traces.', labels, sum('spansInFlight')),
        t.gauge('routelens_tail_capture_retained_bytes', 'Received request bytes retained for undecided traces.', labels, sum('retainedBytes')),
      ],
    };
    byId.set(settings.id, entry);
  }
  entry.processors.add(processor);
}

function leaveGauges(settings: CreateSettings, processor: TailCaptureProcessor): void {
  const byId = gaugeUsers.get(settings.telemetry);
  const entry = byId?.get(settings.id);
  if (entry === undefined || !entry.processors.delete(processor) || entry.processors.size > 0) return;
  for (const remove of entry.remove) remove();
  byId?.delete(settings.id);
}

export class TailCaptureProcessor implements Component, TracesConsumer {
  readonly #settings: CreateSettings;
  readonly #config: TailCaptureConfig;
  readonly #next: TracesConsumer;
  readonly #now: () => number;
  readonly #random: () => number;
  #latency: LiveRouteLatency | undefined;
  readonly #traces = new Map<number, Trace>();
  /** Traces by root arrival + decision wait, and by first span + max wait: each trace is decided at the earlier. */
  readonly #byRoot: DueQueue = { traces: [], at: [], head: 0 };
  readonly #byFirst: DueQueue = { traces: [], at: [], head: 0 };
  /** Retained requests in arrival order, looked at once a decision wait old (see #unpin). */
  readonly #held: Held[] = [];
  #heldHead = 0;
  #spans = 0;
  #bytes = 0;
  /** Kept trace keys → their decision, two generations. */
  #kept = new Map<number, Decision>();
  #keptOld = new Map<number, Decision>();
  readonly #dropped: RecentKeys | undefined;
  readonly #routes = new Map<string, RouteMinute>();
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  readonly #words = new Uint32Array(8);
  readonly #counters: {
    kept: Map<string, Counter>;
    dropped: Counter;
    lateForwarded: Counter;
    lateDropped: Counter;
    evicted: Counter;
    droppedSpans: Counter;
    sendFailed: Counter;
  };

  constructor(settings: CreateSettings, config: TailCaptureConfig, next: TracesConsumer, options: { now?: () => number; random?: () => number } = {}) {
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    const dc = config.decision_cache;
    this.#dropped = dc.non_sampled_cache_size > 0 ? new RecentKeys(dc.non_sampled_cache_size, 0) : undefined;
    const t = settings.telemetry;
    const labels = { processor: settings.id };
    const help = 'Traces decided by tail_capture, by outcome and, for kept traces, the policy that kept them.';
    this.#counters = {
      kept: new Map(config.policies.map((p) => [p.name, t.counter('routelens_tail_capture_traces', help, { ...labels, outcome: 'kept', policy: p.name })])),
      dropped: t.counter('routelens_tail_capture_traces', help, { ...labels, outcome: 'dropped', policy: '' }),
      lateForwarded: t.counter(
        'routelens_tail_capture_late_spans',
        'Spans that came after their trace was decided, by outcome (forwarded with a kept trace, or dropped).',
        { ...labels, outcome: 'forwarded' },
      ),
      lateDropped: t.counter(
        'routelens_tail_capture_late_spans',
        'Spans that came after their trace was decided, by outcome (forwarded with a kept trace, or dropped).',
        { ...labels, outcome: 'dropped' },
      ),
      evicted: t.counter('routelens_tail_capture_evicted_traces', 'Traces decided early because num_traces or max_memory_mib was reached.', labels),
      droppedSpans: t.counter('routelens_tail_capture_dropped_spans', 'Spans dropped: over max_spans_per_trace, or without a trace id.', labels),
      sendFailed: t.counter('routelens_tail_capture_send_failures', 'Kept traces the next consumer refused (their spans are lost).', labels),
    };
    joinGauges(settings, this);
  }

  async start(host: Host): Promise<void> {
    if (this.#config.policies.some((p) => p.type === 'route_latency' || p.type === 'baseline')) {
      const connectors = host.components('connector');
      const id = this.#config.routes_from;
      let source: LiveRouteLatency | undefined;
      if (id !== undefined) {
        source = liveRouteLatencyOf(connectors.get(id));
        if (source === undefined)
          throw new Error(`${this.#settings.id}: routes_from: ${JSON.stringify(id)} is not a routelatency connector of this configuration`);
      } else {
        const found = [...connectors.values()].map(liveRouteLatencyOf).filter((l): l is LiveRouteLatency => l !== undefined);
        if (found.length !== 1) {
          throw new Error(
            `${this.#settings.id}: route_latency and baseline policies need the routes' live latency: ${found.length === 0 ? 'configure a routelatency connector in a traces pipeline' : 'several routelatency connectors: name one with routes_from'}`,
          );
        }
        source = found[0];
      }
      for (const p of this.#config.policies) {
        if (p.type === 'route_latency' && !source?.windowsMs.includes(p.route_latency.window)) {
          throw new Error(`${this.#settings.id}: policy ${JSON.stringify(p.name)}: route_latency.window is not one of the routelatency connector's windows`);
        }
      }
      this.#latency = source;
    }
    this.#timer = setInterval(() => this.expire(this.#now()), 250);
    this.#timer.unref();
  }

  async shutdown(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    leaveGauges(this.#settings, this);
    // Undecided traces are decided now with what they have (tail_sampling's drop_pending_traces_on_shutdown: false).
    const now = this.#now();
    for (const t of [...this.#traces.values()]) this.#decide(t, now);
    await Promise.all([...this.#inFlight]);
  }

  stats(): TailCaptureStats {
    return { tracesInFlight: this.#traces.size, spansInFlight: this.#spans, retainedBytes: this.#bytes };
  }

  consumeTraces(batch: TraceBatch, _ctx: PipelineContext): Promise<void> {
    const now = this.#now();
    const retained = new Held(batch.retainBytes(), batch.byteLength, now);
    const late = new Map<Decision, SpanLocation[]>();
    batch.forEachSpan((span) => this.#hold(span, retained, late, now));
    if (retained.pending === 0) retained.release();
    else {
      this.#bytes += retained.bytes;
      this.#held.push(retained);
    }
    for (const [d, locs] of late) this.#send(locs, d);
    this.#enforceBounds(now);
    return Promise.resolve();
  }

  #hold(span: SpanView, retained: Held, late: Map<Decision, SpanLocation[]>, now: number): void {
    const w = this.#words;
    if ((span.readIdWords(w) & 1) === 0) {
      this.#counters.droppedSpans.add();
      return;
    }
    const key = idKey(w[2] as number, w[3] as number);
    const hi = w[0] as number;
    let t = this.#traces.get(key);
    if (t === undefined || t.hi !== hi) {
      const d = this.#kept.get(key) ?? this.#keptOld.get(key);
      if (d !== undefined) {
        let list = late.get(d);
        if (list === undefined) late.set(d, (list = []));
        list.push(span.location());
        this.#counters.lateForwarded.add();
        return;
      }
      if (this.#dropped?.has(key) === true) {
        this.#counters.lateDropped.add();
        return;
      }
      if (t !== undefined) {
        this.#counters.droppedSpans.add(); // two trace ids share 53 bits
        return;
      }
      t = new Trace(key, hi);
      this.#traces.set(key, t);
      this.#byFirst.traces.push(t);
      this.#byFirst.at.push(now + this.#config.max_trace_wait);
    }
    if (t.spanCount >= this.#config.max_spans_per_trace) {
      this.#counters.droppedSpans.add();
      return;
    }
    t.refs.push(retained, retained.add(span, t));
    this.#spans++;
    t.statuses |= 1 << span.statusCode;
    if (!span.hasParent) {
      if (!t.hasRoot) {
        t.hasRoot = true;
        t.rootRoute = this.#latency?.routeOf(span);
        t.rootMs = span.durationNs / 1e6;
        this.#byRoot.traces.push(t);
        this.#byRoot.at.push(now + this.#config.decision_wait);
      }
    } else if ((span.kind === 2 || span.kind === 5) && span.startTimeMs < t.fallbackStart) {
      const route = this.#latency?.routeOf(span);
      if (route !== undefined) {
        t.fallbackStart = span.startTimeMs;
        t.fallbackRoute = route;
        t.fallbackMs = span.durationNs / 1e6;
      }
    }
  }

  /** Decides the traces that are due. */
  expire(now: number): void {
    for (const q of [this.#byRoot, this.#byFirst]) {
      while (q.head < q.traces.length) {
        const t = q.traces[q.head] as Trace;
        const live = this.#traces.get(t.key) === t;
        if (live && (q.at[q.head] as number) > now) break;
        q.head++;
        if (live) this.#decide(t, now);
      }
      compact(q);
    }
    this.#unpin(now);
  }

  /**
   * Requests a decision wait old that are still retained for a few undecided spans (traces whose root has not
   * come, waiting up to max_trace_wait) would pin all their bytes that long: those spans are copied out into a
   * request of their own and the received one released. Requests still mostly undecided stay as they are.
   */
  #unpin(now: number): void {
    const held = this.#held;
    while (this.#heldHead < held.length) {
      const h = held[this.#heldHead] as Held;
      if (h.pending > 0 && now - h.receivedMs < this.#config.decision_wait) break;
      this.#heldHead++;
      if (h.pending > 0 && h.pendingBytes * 4 <= h.bytes) this.#copyOut(h);
    }
    if (this.#heldHead > 1024 && this.#heldHead * 2 > held.length) {
      held.splice(0, this.#heldHead);
      this.#heldHead = 0;
    }
  }

  #copyOut(h: Held): void {
    const locs: SpanLocation[] = [];
    const from: number[] = [];
    for (let i = 0; i < h.count; i++) {
      if (h.owners[i] === undefined) continue;
      locs.push(h.location(i));
      from.push(i);
    }
    // encodeSpans groups by resource, then ScopeSpans, in first-seen order: the held spans are in the order the
    // request was walked, so the copy walks in the same order and its i-th span is from[i].
    const bytes = encodeSpans(locs);
    const copy = new Held(noop, bytes.length, h.receivedMs);
    const owners: Trace[] = [];
    TraceBatch.decode(bytes).forEachSpan((span) => {
      const owner = h.owners[from[copy.count] as number] as Trace;
      owners.push(owner);
      copy.add(span, owner);
    });
    if (copy.count !== from.length) return; // not expected; keep the original
    for (let j = 0; j < from.length; j++) {
      const refs = (owners[j] as Trace).refs;
      for (let k = 0; k < refs.length; k += 2) {
        if (refs[k] === h && refs[k + 1] === from[j]) {
          refs[k] = copy;
          refs[k + 1] = j;
          break;
        }
      }
    }
    this.#bytes += copy.bytes - h.bytes;
    h.pending = 0;
    h.release();
  }

  #enforceBounds(now: number): void {
    const maxBytes = this.#config.max_memory_mib * 1024 * 1024;
    // The oldest trace is the first undecided one in the first-span queue (a Map's first entry is not: after many
    // deletions at its front, V8 walks over their holes on every `values().next()` until the table is rebuilt).
    const q = this.#byFirst;
    while ((this.#traces.size > this.#config.num_traces || this.#bytes > maxBytes) && q.head < q.traces.length) {
      const oldest = q.traces[q.head++] as Trace;
      if (this.#traces.get(oldest.key) !== oldest) continue;
      this.#counters.evicted.add();
      this.#decide(oldest, now);
    }
  }

  #decide(t: Trace, now: number): void {
    this.#traces.delete(t.key);
    let decision: Decision | undefined;
    const route = t.hasRoot ? t.rootRoute : t.fallbackRoute;
    const rootMs = t.hasRoot ? t.rootMs : t.fallbackMs;
    let minuteOf: RouteMinute | undefined;
    if (route !== undefined) {
      minuteOf = this.#minute(route, now);
      minuteOf.count++;
    }
    for (const p of this.#config.policies) {
      decision = this.#evaluate(p, t, route, rootMs, minuteOf, now);
      if (decision !== undefined) break;
    }
    const refs = t.refs;
    this.#spans -= refs.length >> 1;
    if (decision === undefined) {
      this.#counters.dropped.add();
      this.#dropped?.add(t.key, now);
    } else {
      this.#counters.kept.get(decision.reason)?.add();
      if (this.#config.decision_cache.sampled_cache_size > 0) {
        if (this.#kept.size >= this.#config.decision_cache.sampled_cache_size) {
          this.#keptOld = this.#kept;
          this.#kept = new Map();
        }
        this.#kept.set(t.key, decision);
      }
      // encodeSpans copies the spans out of the received bytes: they can be released after it
      const locs: SpanLocation[] = [];
      for (let k = 0; k < refs.length; k += 2) locs.push((refs[k] as Held).location(refs[k + 1] as number));
      this.#send(locs, decision);
    }
    for (let k = 0; k < refs.length; k += 2) {
      const r = refs[k] as Held;
      if (r.settle(refs[k + 1] as number)) {
        this.#bytes -= r.bytes;
        r.release();
      }
    }
  }

  #evaluate(p: TailCapturePolicy, t: Trace, route: string | undefined, rootMs: number, minute: RouteMinute | undefined, now: number): Decision | undefined {
    switch (p.type) {
      case 'status_code': {
        for (const code of p.status_code.status_codes) if ((t.statuses & (1 << STATUS[code as keyof typeof STATUS])) !== 0) return this.#decision(p.name, 1);
        return undefined;
      }
      case 'route_latency': {
        if (route === undefined || this.#latency === undefined || !(rootMs >= 0)) return undefined;
        const q = this.#latency.quantile(route, p.route_latency.percentile / 100, p.route_latency.window, now);
        // The percentile is a sketch bucket's representative: slower means beyond that bucket's error.
        if (q.count < p.route_latency.min_requests || !(rootMs > q.valueMs * (1 + SKETCH_ERROR))) return undefined;
        return this.#decision(p.name, 1, q.valueMs);
      }
      case 'baseline': {
        if (minute === undefined || p.baseline.traces_per_minute <= 0) return undefined;
        // The probability of this minute from the previous minute's traces of the route (the current one's so far
        // while there was none): K of them on average.
        const expected = Math.max(minute.previous, minute.count, 1);
        const prob = Math.min(1, p.baseline.traces_per_minute / expected);
        if (this.#random() >= prob) return undefined;
        return this.#decision(p.name, 1 / prob);
      }
    }
  }

  #decision(reason: string, weight: number, thresholdMs?: number): Decision {
    const parts = [encodeDoubleKeyValueField(9, WEIGHT_ATTRIBUTE, weight), encodeStringKeyValueField(9, REASON_ATTRIBUTE, reason)];
    if (thresholdMs !== undefined) parts.push(encodeDoubleKeyValueField(9, THRESHOLD_ATTRIBUTE, Number(thresholdMs.toPrecision(6))));
    return { weight, reason, extra: Buffer.concat(parts) };
  }

  #minute(route: string, now: number): RouteMinute {
    const minute = Math.floor(now / 60_000);
    let m = this.#routes.get(route);
    if (m === undefined) {
      if (this.#routes.size >= 100_000) this.#routes.clear();
      this.#routes.set(route, (m = { minute, count: 0, previous: 0 }));
    } else if (m.minute !== minute) {
      m.previous = m.minute === minute - 1 ? m.count : 0;
      m.minute = minute;
      m.count = 0;
    }
    return m;
  }

  /** Writes the spans with the decision's attributes and hands them on; a refusal is counted, never waited for. */
  #send(locs: readonly SpanLocation[], d: Decision): void {
    if (locs.length === 0) return;
    const batch = TraceBatch.decode(encodeSpans(locs, d.extra));
    const p = this.#next
      .consumeTraces(batch, {})
      .catch((err: unknown) => {
        this.#counters.sendFailed.add();
        this.#settings.logger.warn({ err: String(err), spans: batch.spanCount }, 'A kept trace was refused by the next consumer; its spans are lost');
      })
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }
}

function compact(q: DueQueue): void {
  if (q.head > 1024 && q.head * 2 > q.traces.length) {
    q.traces.splice(0, q.head);
    q.at.splice(0, q.head);
    q.head = 0;
  }
}

function noop(): void {}
