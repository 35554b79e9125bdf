/**
 * RouteStore: spans in, per-route windowed latency/error statistics out.
 *
 * Hot path (`record`): kind filter, route extraction into a reused object, a lookup through nested maps keyed
 * by the strings the span already carries (service → method → route → dimension values; no key string is
 * built), then one sketch increment per slot tier. New routes, new sketch arrays and exemplar ids are the only
 * allocations.
 *
 * Bounds: `maxRoutesPerService` routes per service (further routes go to the service's `__other__` route),
 * `maxRoutes` in total and `maxServices` services (beyond them spans go to the `__other__` route of the
 * `__other__` service); idle routes expire after `routeExpiryMs`. Each sketch is bounded (see expo-histogram.ts),
 * so memory is bounded by routes × tiers × slots × the per-sketch bound; `stats().memoryBytes` reports the
 * current estimate from array lengths.
 */
import { ExpoHistogram } from '../../pdata/expo-histogram';
import type { RouteSource, TemplatingRule } from './route-key';
import { newExtractedRoute, OVERFLOW_ROUTE, PathTemplater, ROUTE_SOURCES, RouteExtractor, SOURCE_BIT } from './route-key';
import { parseSpanKind, SpanKind } from './span-input';
import type { SpanInput } from './span-input';
import type { Exemplar } from './exemplar';
import type { SlotPlan, SlotSnapshot, WindowPlan } from './window';
import { formatDuration, planSlots, SlotRing, WindowAggregate } from './window';
import type { RouteLatencyConfig } from './config';

/** Time source (epoch ms); tests inject a fake one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface DimensionSpec {
  name: string;
  default?: string | undefined;
}

export interface RouteStoreOptions {
  /** Query windows in ms. @default [60000, 300000, 900000, 3600000] */
  windowsMs?: readonly number[];
  /** Extra key dimensions, looked up in span then resource attributes. @default [] */
  dimensions?: readonly DimensionSpec[];
  /** Span kinds counted, as numbers or names (`SERVER`, `SPAN_KIND_SERVER`). @default [SERVER, CONSUMER] */
  spanKinds?: readonly (number | string)[];
  /** @default 1000 */
  maxRoutesPerService?: number;
  /** Routes across all services (overflow routes not counted). @default 100000 */
  maxRoutes?: number;
  /** @default 10000 */
  maxServices?: number;
  /** Idle time after which a route is dropped. @default 7200000 (2h) */
  routeExpiryMs?: number;
  /** User path templating rules. @default [] */
  templating?: readonly TemplatingRule[];
  /** Slots a window is split into at most (see window.ts planSlots). @default 60 */
  maxSlotsPerWindow?: number;
  /** Slowest spans kept per slot. @default 2 */
  exemplarsPerSlot?: number;
  /** @default systemClock */
  clock?: Clock;
}

/** Store options from the parsed connector config. */
export function routeStoreOptions(config: RouteLatencyConfig, clock?: Clock): RouteStoreOptions {
  return {
    windowsMs: config.windows,
    dimensions: config.dimensions,
    spanKinds: config.span_kinds,
    maxRoutesPerService: config.max_routes_per_service,
    routeExpiryMs: config.route_expiry,
    templating: config.templating,
    ...(clock === undefined ? {} : { clock }),
  };
}

/** Name of the overflow service and route. */
export const OVERFLOW_SERVICE = '__other__';

/**
 * Per service, what happened to its spans since the store started (the "why is a route missing" counts): spans
 * skipped by kind, and counted spans by the route source that named them. Kept apart from the routes so that
 * expiry does not lose them; bounded by `maxServices` like the services.
 */
export interface ServiceCoverage {
  /** Spans not counted, by SpanKind 0..5 (index 6: ASGI `http send`/`http receive` events). */
  readonly skipped: number[];
  /** Counted spans by the index in {@link ROUTE_SOURCES} of the source that named their route. */
  readonly sources: number[];
  /** Counted spans that went to the service's `__other__` route. */
  overflow: number;
}

/** Index of ASGI event spans in {@link ServiceCoverage.skipped}. */
export const SKIPPED_ASGI_EVENT = 6;

/** The coverage counts as plain data, part of the store snapshot merged across processes. */
export interface CoverageSnapshot {
  startedAtMs: number;
  services: { service: string; skipped: number[]; sources: number[]; overflow: number }[];
}

function newCoverage(): ServiceCoverage {
  return { skipped: [0, 0, 0, 0, 0, 0, 0], sources: ROUTE_SOURCES.map(() => 0), overflow: 0 };
}

/** Fixed bytes per route entry: the object, its key strings' headers, map entries on its key path. */
const ENTRY_BYTES = 570;

/** One route (service + method + route + dimension values) with its slot rings. */
export class RouteEntry {
  readonly service: string;
  readonly method: string;
  readonly route: string;
  /** Dimension values present on this route (absent dimensions left out). */
  readonly dimensions: Readonly<Record<string, string>>;
  readonly rings: readonly SlotRing[];
  readonly createdMs: number;
  readonly overflow: boolean;
  /** Key path below the service (method, route, dimension values) for removal. */
  readonly keyPath: readonly unknown[];
  /** Bit i set when {@link ROUTE_SOURCES}[i] produced this route. */
  sourceMask = 0;
  lastSeenMs: number;
  /** Spans recorded since the route was created. */
  totalCount = 0;
  totalErrors = 0;
  /** The coverage counts of the route's service. */
  readonly coverage: ServiceCoverage;

  constructor(init: {
    service: string;
    method: string;
    route: string;
    dimensions: Record<string, string>;
    rings: SlotRing[];
    nowMs: number;
    overflow: boolean;
    keyPath: unknown[];
    coverage: ServiceCoverage;
  }) {
    this.coverage = init.coverage;
    this.service = init.service;
    this.method = init.method;
    this.route = init.route;
    this.dimensions = init.dimensions;
    this.rings = init.rings;
    this.createdMs = init.nowMs;
    this.lastSeenMs = init.nowMs;
    this.overflow = init.overflow;
    this.keyPath = init.keyPath;
  }

  /** The most trustworthy source that produced this route. */
  get source(): RouteSource {
    for (let i = 0; i < ROUTE_SOURCES.length; i++) if (this.sourceMask & (1 << i)) return ROUTE_SOURCES[i] as RouteSource;
    return this.overflow ? 'overflow' : 'span_name_fallback';
  }

  /** Every source that produced this route, most trustworthy first. */
  get sources(): RouteSource[] {
    return ROUTE_SOURCES.filter((_, i) => this.sourceMask & (1 << i));
  }

  memoryBytes(): number {
    let bytes = ENTRY_BYTES + this.route.length + this.method.length;
    for (const [k, v] of Object.entries(this.dimensions)) bytes += 32 + k.length + v.length;
    for (const r of this.rings) bytes += r.memoryBytes();
    return bytes;
  }
}

type Trie = Map<unknown, Trie | RouteEntry>;

/** A store as plain (JSON-safe) data: see RouteStore.snapshot / mergeSnapshot. */
export interface StoreSnapshot {
  /** When the store started: rates divide by the time since the earliest start of the merged stores. */
  startedAtMs: number;
  routes: RouteSnapshot[];
  /** Per service, spans skipped by kind and counted by route source (see RouteStore.coverage). */
  coverage?: CoverageSnapshot;
}

/** One route as plain (JSON-safe) data. */
export interface RouteSnapshot {
  service: string;
  method: string;
  route: string;
  dimensions: Record<string, string>;
  overflow: boolean;
  sourceMask: number;
  totalCount: number;
  totalErrors: number;
  lastSeenMs: number;
  /** Per slot tier, the slots holding data. */
  rings: SlotSnapshot[][];
}

interface ServiceState {
  readonly name: string;
  readonly tree: Trie;
  routeCount: number;
  overflow: RouteEntry | undefined;
  overflowSpans: number;
}

export interface RouteStoreStats {
  services: number;
  /** Route entries, overflow routes included. */
  routes: number;
  overflowRoutes: number;
  spansSeen: number;
  spansRecorded: number;
  /** Spans not counted because of their kind (or ASGI send/receive events). */
  spansSkipped: number;
  /** Spans recorded into an `__other__` route because a cap was reached. */
  overflowSpans: number;
  expiredRoutes: number;
  /** Estimated bytes of all routes (sketch arrays, slot arrays, exemplars, fixed overheads). */
  memoryBytes: number;
  /** Largest single route estimate. */
  maxRouteBytes: number;
}

/** Aggregate of one route (or several merged) over one window. Durations in ms; NaN when count is 0. */
export interface RouteWindowSummary {
  service: string;
  method: string;
  route: string;
  source: RouteSource;
  dimensions: Readonly<Record<string, string>>;
  count: number;
  errorCount: number;
  /** Counts of 1xx..5xx. */
  statusClasses: number[];
  ratePerS: number;
  errorRate: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  min: number;
  max: number;
  mean: number;
}

export interface SlotSummary {
  startMs: number;
  count: number;
  errorCount: number;
  /** Counts of 1xx..5xx. */
  statusClasses: number[];
  ratePerS: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** A query window resolved against the store's plan. */
export interface ResolvedWindow {
  windowMs: number;
  slotMs: number;
  slots: number;
  tier: number;
  /** First period of the window and the current one. */
  fromPeriod: number;
  toPeriod: number;
  /** Wall time the window covers: now − max(window start, store start), at least 1 s. */
  coveredMs: number;
}

/** What the last counted `record` call did (one reused object; valid until the next `record`). */
export interface LastRecord {
  entry: RouteEntry | undefined;
  /** Duration in ms (negative and NaN durations as 0). */
  valueMs: number;
  /** Bucket index of `valueMs` in the store's sketches (scale 6); NaN for 0. */
  bucket: number;
  /** 0..4 for 1xx..5xx, -1 without an HTTP status. */
  statusClass: number;
  isError: boolean;
}

const SUMMARY_QUANTILES = [0.5, 0.9, 0.95, 0.99, 0.999];
const SERIES_QUANTILES = [0.5, 0.95, 0.99];

function isAsgiEventSpan(name: string): boolean {
  return name.endsWith(' http send') || name.endsWith(' http receive');
}

export class RouteStore {
  readonly clock: Clock;
  readonly plan: SlotPlan;
  readonly windowsMs: readonly number[];
  readonly dimensions: readonly DimensionSpec[];
  readonly maxRoutesPerService: number;
  readonly maxRoutes: number;
  readonly maxServices: number;
  readonly routeExpiryMs: number;
  readonly exemplarsPerSlot: number;
  /**
   * When the store started (collector start): rates never divide by time before it. A merged store takes the
   * earliest start of what it merged.
   */
  get startedAtMs(): number {
    return this.#startedAtMs;
  }
  #startedAtMs: number;
  /** The route, duration and status of the span the last `record` call counted (for metrics built alongside). */
  readonly last: LastRecord = { entry: undefined, valueMs: 0, bucket: NaN, statusClass: -1, isError: false };

  readonly #kindMask: number;
  /** Bit k set when spans of SpanKind k are counted (TraceBatch.forEachSpan skips the others unread). */
  get kindMask(): number {
    return this.#kindMask;
  }
  readonly #extractor: RouteExtractor;
  readonly #scratch = newExtractedRoute();
  readonly #keys: unknown[];
  readonly #services = new Map<string, ServiceState>();
  readonly #coverage = new Map<string, ServiceCoverage>();
  #coverageSinceMs: number;
  readonly #entries = new Set<RouteEntry>();
  readonly #agg = new WindowAggregate();
  /** Computes bucket indices (same scale as every slot sketch). */
  readonly #indexer = new ExpoHistogram();
  #routeCount = 0;
  #lastNow = -Infinity;
  #nextSweepMs: number;
  readonly #sweepEveryMs: number;
  #seen = 0;
  #recorded = 0;
  #skipped = 0;
  #overflowSpans = 0;
  #expired = 0;

  constructor(options: RouteStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.windowsMs = [...(options.windowsMs ?? [60_000, 300_000, 900_000, 3_600_000])];
    this.plan = planSlots(this.windowsMs, options.maxSlotsPerWindow);
    this.dimensions = [...(options.dimensions ?? [])];
    this.maxRoutesPerService = options.maxRoutesPerService ?? 1000;
    this.maxRoutes = options.maxRoutes ?? 100_000;
    this.maxServices = options.maxServices ?? 10_000;
    this.routeExpiryMs = options.routeExpiryMs ?? 7_200_000;
    this.exemplarsPerSlot = options.exemplarsPerSlot ?? 2;
    let mask = 0;
    for (const k of options.spanKinds ?? [SpanKind.SERVER, SpanKind.CONSUMER]) {
      const n = parseSpanKind(k);
      if (n === undefined) throw new RangeError(`Cannot create a route store as span kind ${JSON.stringify(k)} is unknown`);
      mask |= 1 << n;
    }
    this.#kindMask = mask;
    this.#extractor = new RouteExtractor(new PathTemplater(options.templating ?? []));
    this.#keys = new Array<unknown>(2 + this.dimensions.length).fill(undefined);
    this.#startedAtMs = this.clock.now();
    this.#coverageSinceMs = this.#startedAtMs;
    this.#sweepEveryMs = Math.max(1000, Math.min(60_000, this.routeExpiryMs / 4));
    this.#nextSweepMs = this.startedAtMs + this.#sweepEveryMs;
  }

  /**
   * Records one span; returns whether it was counted. `nowMs` (receive time, default `clock.now()`) picks the
   * slot; pass it once per batch to save clock reads. Time never goes backwards: an earlier `nowMs` than one
   * already seen is treated as the latest.
   */
  record(span: SpanInput, nowMs?: number): boolean {
    this.#seen++;
    const kind = span.kind;
    if (kind < 0 || kind > 31 || (this.#kindMask & (1 << kind)) === 0 || (kind === SpanKind.INTERNAL && isAsgiEventSpan(span.name))) {
      this.#skipped++;
      const skipped = this.coverageOf(span.service).skipped;
      const i = (this.#kindMask & (1 << kind)) !== 0 ? SKIPPED_ASGI_EVENT : kind >= 0 && kind < SKIPPED_ASGI_EVENT ? kind : 0;
      skipped[i] = (skipped[i] as number) + 1;
      return false;
    }
    let now = nowMs ?? this.clock.now();
    if (now < this.#lastNow) now = this.#lastNow;
    else this.#lastNow = now;
    if (now >= this.#nextSweepMs) this.sweep(now);

    const ex = this.#extractor.extract(span, this.#scratch);
    const entry = this.#entryFor(span, now);
    const status = ex.httpStatus;
    const statusClass = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : -1;
    const isError = span.statusCode === 2 || status >= 500;
    // negative (clock skew) and NaN durations count as 0, so counts, errors and status classes stay consistent
    const valueMs = span.durationNs > 0 ? span.durationNs / 1e6 : 0;
    const bucket = valueMs > 0 ? this.#indexer.indexOf(valueMs) : NaN;
    const rings = entry.rings;
    for (let i = 0; i < rings.length; i++) (rings[i] as SlotRing).record(now, valueMs, isError, statusClass, span, bucket);
    entry.lastSeenMs = now;
    entry.totalCount++;
    if (isError) entry.totalErrors++;
    const cov = entry.coverage;
    if (!entry.overflow) entry.sourceMask |= ex.sourceBit;
    else cov.overflow++;
    const si = 31 - Math.clz32(ex.sourceBit);
    cov.sources[si] = (cov.sources[si] as number) + 1;
    const last = this.last;
    last.entry = entry;
    last.valueMs = valueMs;
    last.bucket = bucket;
    last.statusClass = statusClass;
    last.isError = isError;
    this.#recorded++;
    return true;
  }

  /**
   * The (service, method, route) a span would be counted under, without counting it; undefined for a span of a
   * kind the store does not count. Caps are not applied: a route past them has no entry to find.
   */
  routeOf(span: SpanInput): { service: string; method: string; route: string } | undefined {
    const kind = span.kind;
    if (kind < 0 || kind > 31 || (this.#kindMask & (1 << kind)) === 0 || (kind === SpanKind.INTERNAL && isAsgiEventSpan(span.name))) return undefined;
    const ex = this.#extractor.extract(span, this.#scratch);
    return { service: span.service, method: ex.method, route: ex.route };
  }

  #entryFor(span: SpanInput, now: number): RouteEntry {
    const ex = this.#scratch;
    let svc = this.#services.get(span.service);
    if (svc === undefined) {
      if (this.#services.size >= this.maxServices) return this.#overflowEntry(this.#service(OVERFLOW_SERVICE), now);
      svc = this.#service(span.service);
    }
    const keys = this.#keys;
    keys[0] = ex.method;
    keys[1] = ex.route;
    const dims = this.dimensions;
    for (let d = 0; d < dims.length; d++) {
      const spec = dims[d] as DimensionSpec;
      let v = span.attribute(spec.name);
      if (v === undefined) v = span.resourceAttribute(spec.name);
      keys[2 + d] = v === undefined ? spec.default : v;
    }
    // lookup
    let node: Trie = svc.tree;
    const last = keys.length - 1;
    let d = 0;
    for (; d < last; d++) {
      const next = node.get(keys[d]);
      if (next === undefined) break;
      node = next as Trie;
    }
    if (d === last) {
      const hit = node.get(keys[last]);
      if (hit !== undefined) return hit as RouteEntry;
    }
    // a new route
    if (svc.routeCount >= this.maxRoutesPerService || this.#routeCount >= this.maxRoutes) return this.#overflowEntry(svc, now);
    for (; d < last; d++) {
      const next: Trie = new Map();
      node.set(keys[d], next);
      node = next;
    }
    const dimensions: Record<string, string> = {};
    for (let i = 0; i < dims.length; i++) {
      const v = keys[2 + i];
      if (v !== undefined) dimensions[(dims[i] as DimensionSpec).name] = detach(String(v));
    }
    const entry = new RouteEntry({
      service: svc.name,
      method: detach(ex.method),
      route: detach(ex.route),
      dimensions,
      rings: this.#newRings(),
      nowMs: now,
      overflow: false,
      keyPath: keys.map((k) => (typeof k === 'string' ? detach(k) : k)),
      coverage: this.coverageOf(svc.name),
    });
    node.set(entry.keyPath[last], entry);
    svc.routeCount++;
    this.#routeCount++;
    this.#entries.add(entry);
    return entry;
  }

  /**
   * The store as plain data, for merging into another store (a worker's into the primary's, a peer's into a cluster
   * query's). With `only`, the slots of one tier from one period on: what a query of one window
   * reads (every route is still listed, so route counts stay right). `compact`: sketches in
   * ExpoHistogram.toCompact's shape, which versions before it cannot read (see SlotRing.snapshot).
   */
  snapshot(only?: { tier: number; fromPeriod: number }, compact = false): StoreSnapshot {
    const out: RouteSnapshot[] = [];
    const ringOf = (r: SlotRing, i: number): SlotSnapshot[] =>
      only === undefined ? r.snapshot(-Infinity, compact) : i === only.tier ? r.snapshot(only.fromPeriod, compact) : [];
    for (const e of this.#entries) {
      out.push({
        service: e.service,
        method: e.method,
        route: e.route,
        dimensions: { ...e.dimensions },
        overflow: e.overflow,
        sourceMask: e.sourceMask,
        totalCount: e.totalCount,
        totalErrors: e.totalErrors,
        lastSeenMs: e.lastSeenMs,
        rings: e.rings.map(ringOf),
      });
    }
    return { startedAtMs: this.#startedAtMs, routes: out, coverage: this.#coverageSnapshot() };
  }

  /**
   * Merge a store with the same plan (windows) into this one. Slots line up because periods are absolute; caps
   * apply as for recorded spans (routes beyond them go to the service's overflow route); the start time is the
   * earlier of the two.
   */
  mergeSnapshot(snapshot: StoreSnapshot): void {
    const now = this.clock.now();
    if (snapshot.startedAtMs < this.#startedAtMs) this.#startedAtMs = snapshot.startedAtMs;
    if (snapshot.coverage !== undefined) this.#mergeCoverage(snapshot.coverage);
    for (const r of snapshot.routes) {
      let entry: RouteEntry;
      let svc = this.#services.get(r.service);
      if (svc === undefined && this.#services.size >= this.maxServices) svc = this.#service(OVERFLOW_SERVICE);
      svc ??= this.#service(r.service);
      if (r.overflow) entry = this.#overflowEntry(svc, now);
      else {
        const keys: unknown[] = [r.method, r.route, ...this.dimensions.map((d) => r.dimensions[d.name] ?? d.default)];
        let node: Trie = svc.tree;
        let found: RouteEntry | undefined;
        for (let d = 0; d < keys.length; d++) {
          const next = node.get(keys[d]);
          if (next === undefined) break;
          if (d === keys.length - 1) found = next as RouteEntry;
          else node = next as Trie;
        }
        if (found === undefined) {
          if (svc.routeCount >= this.maxRoutesPerService || this.#routeCount >= this.maxRoutes) entry = this.#overflowEntry(svc, now);
          else {
            node = svc.tree;
            for (let d = 0; d < keys.length - 1; d++) {
              let next = node.get(keys[d]) as Trie | undefined;
              if (next === undefined) node.set(keys[d], (next = new Map()));
              node = next;
            }
            entry = new RouteEntry({
              service: svc.name,
              method: r.method,
              route: r.route,
              dimensions: { ...r.dimensions },
              rings: this.#newRings(),
              nowMs: now,
              overflow: false,
              keyPath: keys,
              coverage: this.coverageOf(svc.name),
            });
            node.set(keys[keys.length - 1], entry);
            svc.routeCount++;
            this.#routeCount++;
            this.#entries.add(entry);
          }
        } else entry = found;
      }
      entry.sourceMask |= r.sourceMask;
      entry.totalCount += r.totalCount;
      entry.totalErrors += r.totalErrors;
      if (r.lastSeenMs > entry.lastSeenMs) entry.lastSeenMs = r.lastSeenMs;
      r.rings.forEach((slots, i) => entry.rings[i]?.mergeSnapshot(slots));
    }
  }

  /**
   * Spans of kinds the store does not count, skipped by the caller without reading them (TraceBatch.forEachSpan
   * with `kinds`): `counts[k]` spans of SpanKind k from `service`.
   */
  recordSkipped(service: string, counts: ArrayLike<number>): void {
    const skipped = this.coverageOf(service).skipped;
    for (let k = 0; k < counts.length && k < SKIPPED_ASGI_EVENT; k++) {
      const n = counts[k] as number;
      if (n === 0) continue;
      skipped[k] = (skipped[k] as number) + n;
      this.#seen += n;
      this.#skipped += n;
    }
  }

  /** The coverage counts of a service (created on first use; past `maxServices` services, those of `__other__`). */
  coverageOf(service: string): ServiceCoverage {
    let c = this.#coverage.get(service);
    if (c !== undefined) return c;
    const name = this.#coverage.size >= this.maxServices ? OVERFLOW_SERVICE : detach(service);
    c = this.#coverage.get(name);
    if (c === undefined) this.#coverage.set(name, (c = newCoverage()));
    return c;
  }

  /** Coverage counts by service, and since when they count. */
  coverage(): { sinceMs: number; services: Map<string, ServiceCoverage> } {
    return { sinceMs: this.#coverageSinceMs, services: this.#coverage };
  }

  #coverageSnapshot(): CoverageSnapshot {
    return {
      startedAtMs: this.#coverageSinceMs,
      services: [...this.#coverage].map(([service, c]) => ({ service, skipped: [...c.skipped], sources: [...c.sources], overflow: c.overflow })),
    };
  }

  /** Counts add; the earliest start wins. */
  #mergeCoverage(snap: CoverageSnapshot): void {
    if (snap.startedAtMs < this.#coverageSinceMs) this.#coverageSinceMs = snap.startedAtMs;
    for (const s of snap.services) {
      const c = this.coverageOf(s.service);
      s.skipped.forEach((n, i) => {
        if (i < c.skipped.length) c.skipped[i] = (c.skipped[i] as number) + n;
      });
      s.sources.forEach((n, i) => {
        if (i < c.sources.length) c.sources[i] = (c.sources[i] as number) + n;
      });
      c.overflow += s.overflow;
    }
  }

  #service(name: string): ServiceState {
    let svc = this.#services.get(name);
    if (svc === undefined) {
      svc = { name: detach(name), tree: new Map(), routeCount: 0, overflow: undefined, overflowSpans: 0 };
      this.#services.set(svc.name, svc);
    }
    return svc;
  }

  #overflowEntry(svc: ServiceState, now: number): RouteEntry {
    svc.overflowSpans++;
    this.#overflowSpans++;
    if (svc.overflow === undefined) {
      svc.overflow = new RouteEntry({
        service: svc.name,
        method: '',
        route: OVERFLOW_ROUTE,
        dimensions: {},
        rings: this.#newRings(),
        nowMs: now,
        overflow: true,
        keyPath: [],
        coverage: this.coverageOf(svc.name),
      });
      svc.overflow.sourceMask = SOURCE_BIT.overflow;
      this.#entries.add(svc.overflow);
    }
    return svc.overflow;
  }

  #newRings(): SlotRing[] {
    return this.plan.tiers.map((t) => new SlotRing(t.slotMs, t.slots, this.exemplarsPerSlot));
  }

  /** Drops routes idle for longer than `routeExpiryMs`; returns how many. Runs by itself from `record`. */
  sweep(nowMs?: number): number {
    const now = Math.max(nowMs ?? this.clock.now(), this.#lastNow);
    this.#nextSweepMs = now + this.#sweepEveryMs;
    let n = 0;
    for (const e of this.#entries) {
      if (now - e.lastSeenMs <= this.routeExpiryMs) continue;
      this.#remove(e);
      n++;
    }
    this.#expired += n;
    return n;
  }

  #remove(e: RouteEntry): void {
    this.#entries.delete(e);
    const svc = this.#services.get(e.service);
    if (svc === undefined) return;
    if (e.overflow) {
      svc.overflow = undefined;
    } else {
      const path: Trie[] = [svc.tree];
      let node: Trie = svc.tree;
      for (let d = 0; d < e.keyPath.length - 1; d++) {
        const next = node.get(e.keyPath[d]);
        if (next === undefined) return;
        node = next as Trie;
        path.push(node);
      }
      node.delete(e.keyPath[e.keyPath.length - 1]);
      for (let d = path.length - 1; d > 0; d--) {
        if ((path[d] as Trie).size > 0) break;
        (path[d - 1] as Trie).delete(e.keyPath[d - 1]);
      }
      svc.routeCount--;
      this.#routeCount--;
    }
    if (svc.routeCount === 0 && svc.overflow === undefined) this.#services.delete(svc.name);
  }

  /** All route entries (overflow routes included), in creation order. */
  entries(): IterableIterator<RouteEntry> {
    return this.#entries.values();
  }

  /** Service names with their route counts and overflow span counts. */
  services(): { service: string; routes: number; overflowSpans: number; hasOverflowRoute: boolean }[] {
    return [...this.#services.values()].map((s) => ({
      service: s.name,
      routes: s.routeCount + (s.overflow === undefined ? 0 : 1),
      overflowSpans: s.overflowSpans,
      hasOverflowRoute: s.overflow !== undefined,
    }));
  }

  /**
   * Entries of one (service, method, route), across all dimension values; `dimensions` narrows to entries whose
   * dimension values match each given one.
   */
  find(service: string, method: string, route: string, dimensions?: Readonly<Record<string, string>>): RouteEntry[] {
    const svc = this.#services.get(service);
    if (svc === undefined) return [];
    const out: RouteEntry[] = [];
    if (route === OVERFLOW_ROUTE && method === '' && svc.overflow !== undefined) out.push(svc.overflow);
    const byRoute = svc.tree.get(method) as Trie | undefined;
    const start = byRoute?.get(route);
    const collect = (n: Trie | RouteEntry | undefined): void => {
      if (n === undefined) return;
      if (n instanceof RouteEntry) out.push(n);
      else for (const c of n.values()) collect(c);
    };
    collect(start);
    if (dimensions === undefined) return out;
    return out.filter((e) => Object.entries(dimensions).every(([k, v]) => e.dimensions[k] === v));
  }

  /** Resolves a window length against the configured windows; throws RangeError for an unconfigured one. */
  resolveWindow(windowMs: number, nowMs?: number): ResolvedWindow {
    const wp: WindowPlan | undefined = this.plan.windows.find((w) => w.windowMs === windowMs);
    if (wp === undefined) {
      throw new RangeError(`unknown window ${JSON.stringify(formatDuration(windowMs))}; expected one of ${this.windowsMs.map(formatDuration).join(', ')}`);
    }
    const tier = this.plan.tiers[wp.tier] as { slotMs: number };
    const now = Math.max(nowMs ?? this.clock.now(), this.#lastNow);
    const toPeriod = Math.floor(now / tier.slotMs);
    const fromPeriod = toPeriod - wp.slots + 1;
    const start = Math.max(fromPeriod * tier.slotMs, this.startedAtMs);
    return {
      windowMs,
      slotMs: tier.slotMs,
      slots: wp.slots,
      tier: wp.tier,
      fromPeriod,
      toPeriod,
      coveredMs: Math.max(1000, now - start),
    };
  }

  /** True when any of the entries has data in the window. */
  hasData(entries: readonly RouteEntry[], win: ResolvedWindow): boolean {
    return entries.some((e) => (e.rings[win.tier] as SlotRing).hasDataIn(win.fromPeriod, win.toPeriod));
  }

  /** Merges the window's slots of the entries into the scratch aggregate (valid until the next call). */
  aggregate(entries: readonly RouteEntry[], win: ResolvedWindow, fromPeriod = win.fromPeriod, toPeriod = win.toPeriod): WindowAggregate {
    const agg = this.#agg;
    agg.reset();
    for (const e of entries) {
      const ring = e.rings[win.tier] as SlotRing;
      for (let p = fromPeriod; p <= toPeriod; p++) ring.addPeriodTo(p, agg);
    }
    return agg;
  }

  /** A merged copy of the window's sketch for the entries (for export or further merging). */
  windowSketch(entries: readonly RouteEntry[], win: ResolvedWindow): ExpoHistogram {
    return this.aggregate(entries, win).sketch.clone();
  }

  /** Summary of entries (all of one route key, or one entry) over a window. */
  summarize(entries: readonly RouteEntry[], win: ResolvedWindow): RouteWindowSummary {
    const first = entries[0];
    if (first === undefined) throw new RangeError('Cannot summarize an empty list of routes');
    const agg = this.aggregate(entries, win);
    const s = agg.sketch;
    const [p50, p90, p95, p99, p999] = s.quantiles(SUMMARY_QUANTILES) as [number, number, number, number, number];
    let mask = 0;
    for (const e of entries) mask |= e.sourceMask;
    const source = ROUTE_SOURCES.find((_, i) => mask & (1 << i)) ?? 'span_name_fallback';
    return {
      service: first.service,
      method: first.method,
      route: first.route,
      source,
      dimensions: entries.length === 1 ? first.dimensions : commonDimensions(entries),
      count: s.count,
      errorCount: agg.errors,
      statusClasses: [...agg.status],
      ratePerS: s.count / (win.coveredMs / 1000),
      errorRate: s.count === 0 ? 0 : agg.errors / s.count,
      p50,
      p90,
      p95,
      p99,
      p999,
      min: s.count === 0 ? NaN : s.min,
      max: s.count === 0 ? NaN : s.max,
      mean: s.count === 0 ? NaN : s.sum / s.count,
    };
  }

  /** One summary per slot of the window, oldest first (empty slots included with count 0). */
  series(entries: readonly RouteEntry[], win: ResolvedWindow, nowMs?: number): SlotSummary[] {
    const now = Math.max(nowMs ?? this.clock.now(), this.#lastNow);
    const out: SlotSummary[] = [];
    for (let p = win.fromPeriod; p <= win.toPeriod; p++) {
      const agg = this.aggregate(entries, win, p, p);
      const s = agg.sketch;
      const startMs = p * win.slotMs;
      const from = Math.max(startMs, this.startedAtMs);
      const to = Math.min(startMs + win.slotMs, now);
      const seconds = Math.max(1, (to - from) / 1000);
      const [p50, p95, p99] = s.quantiles(SERIES_QUANTILES) as [number, number, number];
      out.push({
        startMs,
        count: s.count,
        errorCount: agg.errors,
        statusClasses: [...agg.status],
        ratePerS: to <= from ? 0 : s.count / seconds,
        p50,
        p95,
        p99,
        max: s.count === 0 ? NaN : s.max,
      });
    }
    return out;
  }

  /** The slowest exemplars of the entries within the window, slowest first. */
  exemplars(entries: readonly RouteEntry[], win: ResolvedWindow, limit = 10): Exemplar[] {
    const out: Exemplar[] = [];
    for (const e of entries) {
      const ring = e.rings[win.tier] as SlotRing;
      for (let p = win.fromPeriod; p <= win.toPeriod; p++) ring.exemplarsOf(p, out);
    }
    out.sort((a, b) => b.valueMs - a.valueMs);
    return out.slice(0, limit);
  }

  stats(): RouteStoreStats {
    let memoryBytes = 0;
    let maxRouteBytes = 0;
    let overflowRoutes = 0;
    for (const e of this.#entries) {
      const b = e.memoryBytes();
      memoryBytes += b;
      if (b > maxRouteBytes) maxRouteBytes = b;
      if (e.overflow) overflowRoutes++;
    }
    return {
      services: this.#services.size,
      routes: this.#entries.size,
      overflowRoutes,
      spansSeen: this.#seen,
      spansRecorded: this.#recorded,
      spansSkipped: this.#skipped,
      overflowSpans: this.#overflowSpans,
      expiredRoutes: this.#expired,
      memoryBytes,
      maxRouteBytes,
    };
  }
}

/** Dimensions shared by all entries (used when several dimension values are merged). */
function commonDimensions(entries: readonly RouteEntry[]): Record<string, string> {
  const first = entries[0];
  if (first === undefined) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first.dimensions)) {
    if (entries.every((e) => e.dimensions[k] === v)) out[k] = v;
  }
  return out;
}

/**
 * A flat copy of a string, so that a key kept for the route's lifetime does not pin a larger string it was
 * sliced from (V8 sliced strings keep their parent alive). Only called when a route is created.
 */
function detach(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}
