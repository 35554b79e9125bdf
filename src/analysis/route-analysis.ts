/**
 * Per-route analysis state: what the analysed requests of each route said, as counters and sketches in rings of
 * time slots, like the latency store's. Everything here adds up exactly, so worker processes and replicas
 * merge: `snapshot()` → plain data → `mergeSnapshot()` → query (see why.ts).
 *
 * A slot holds, for the requests analysed in its period: their count, total duration and counts by latency
 * bucket; per (category, target) a sketch of per-request time and sums of union, equal-split and critical-path
 * time; per statement fingerprint and outbound call template a sketch of call durations, call and request
 * counts, its calls by the latency of the request that made them, and the costliest example; per N+1 pattern the
 * requests affected (by latency), repeats and cost; per attribute value the requests carrying it by latency; per
 * version a latency sketch, its requests and calls per fingerprint; and instrumentation-quality counters.
 * Counting by latency bucket (latency-counts.ts) rather than classing requests slow or fast as they come lets a
 * query decide against the window's own percentiles, identically in one process or merged from several.
 *
 * Windows: the connector's windows, each served by the smallest slot size of 10 s, 1 min, 5 min, 15 min, 1 h
 * that divides it into at most 12 slots (defaults: 10 s × 6 for 1m, 1 min × 5 for 5m, 5 min × 3 and × 12 for
 * 15m and 1h): coarser than the latency rings, since an answer to "why" needs no 10-second resolution over an
 * hour, and each slot holds many sketches. Slots are picked by receive time, epoch-aligned.
 *
 * Bounds: per slot at most 32 targets, 64 call keys, 16 N+1 patterns, 128 attribute values and 8 versions;
 * beyond them targets and calls go to an `__other__` entry and the rest is counted as dropped. Routes: at most
 * `maxRoutes` (further routes are not analysed, counted), idle ones expire with the latency store's expiry.
 */
import { ExpoHistogram, type OtlpExponentialHistogram } from '../pdata/expo-histogram';
import { addCount, latencyBucket, mergeCounts, type LatencyCounts } from './latency-counts';
import type { Category } from './span-record';
import type { RequestAnalysis } from './trace';

export const SLOT_CANDIDATES_MS: readonly number[] = [10_000, 60_000, 300_000, 900_000, 3_600_000];
export const MAX_SLOTS_PER_WINDOW = 12;
const MAX_TARGETS = 32;
const MAX_CALLS = 64;
const MAX_NPLUSONE = 16;
const MAX_ATTRIBUTES = 128;
const MAX_VERSIONS = 8;
const MAX_EXAMPLE_SPANS = 10;
export const OTHER = '__other__';

export interface TargetAcc {
  category: Category;
  target: string;
  /** Per-request time (union), for requests where it was > 0. */
  sketch: ExpoHistogram;
  requests: number;
  unionMs: number;
  splitMs: number;
  cpMs: number;
}

export interface CallAcc {
  kind: 'db' | 'http';
  system: string;
  text: string;
  summary: string;
  /** Duration of each call. */
  sketch: ExpoHistogram;
  calls: number;
  requests: number;
  sumMs: number;
  /** Calls by the latency bucket of the request that made them. */
  callsByLatency: LatencyCounts;
  /** The request where this key cost the most, and that cost. */
  exampleTrace: string;
  exampleMs: number;
}

export interface NPlusOneAcc {
  kind: 'db' | 'http';
  fingerprint: string;
  system: string;
  requests: number;
  /** Affected requests by latency bucket. */
  requestsByLatency: LatencyCounts;
  repeats: number;
  maxRepeats: number;
  costMs: number;
  exampleTrace: string;
  exampleSpans: string[];
  exampleCostMs: number;
}

export interface VersionAcc {
  version: string;
  sketch: ExpoHistogram;
  requests: number;
  errors: number;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Calls per call key (`kind\u0000text`). */
  calls: Map<string, number>;
}

export interface QualityCounters {
  truncated: number;
  outside: number;
  skewAdjusted: number;
  doubleSpans: number;
  dbWithoutStatement: number;
  /** Entries not kept because a per-slot bound was reached. */
  dropped: number;
}

/** The contents of one slot (also the shape of a window's aggregate). */
export class SlotData {
  requests = 0;
  errors = 0;
  durationMs = 0;
  /** Requests by latency bucket. */
  readonly latency: LatencyCounts = [];
  readonly targets = new Map<string, TargetAcc>();
  readonly calls = new Map<string, CallAcc>();
  readonly nPlusOne = new Map<string, NPlusOneAcc>();
  /** `key\u0000value` → [slow requests, fast requests]. */
  readonly attributes = new Map<string, LatencyCounts>();
  readonly versions = new Map<string, VersionAcc>();
  readonly quality: QualityCounters = { truncated: 0, outside: 0, skewAdjusted: 0, doubleSpans: 0, dbWithoutStatement: 0, dropped: 0 };
  constructor(readonly wide = false) {}
}

class Slot extends SlotData {
  constructor(public period: number) {
    super();
  }
}

export interface RouteIdent {
  service: string;
  method: string;
  route: string;
}

/** A slot as plain data (JSON-safe). */
export interface SlotSnapshot {
  period: number;
  requests: number;
  errors: number;
  durationMs: number;
  latency: number[];
  targets: (Omit<TargetAcc, 'sketch'> & { sketch: OtlpExponentialHistogram })[];
  calls: (Omit<CallAcc, 'sketch'> & { sketch: OtlpExponentialHistogram })[];
  nPlusOne: NPlusOneAcc[];
  attributes: [string, number[]][];
  versions: (Omit<VersionAcc, 'sketch' | 'calls'> & { sketch: OtlpExponentialHistogram; calls: [string, number][] })[];
  quality: QualityCounters;
}

export interface RouteAnalysisSnapshot extends RouteIdent {
  lastSeenMs: number;
  /** Per tier, the slots holding data. */
  rings: SlotSnapshot[][];
}

interface Tier {
  slotMs: number;
  slots: number;
}

/** Slot tiers for the windows (see the module comment); throws RangeError for a window that cannot be served. */
export function planAnalysisSlots(windowsMs: readonly number[]): { tiers: Tier[]; windowTier: Map<number, { tier: number; slots: number }> } {
  const tiers: Tier[] = [];
  const windowTier = new Map<number, { tier: number; slots: number }>();
  for (const w of windowsMs) {
    const slot = SLOT_CANDIDATES_MS.find((c) => w % c === 0 && w / c <= MAX_SLOTS_PER_WINDOW) ?? SLOT_CANDIDATES_MS.find((c) => w % c === 0);
    if (slot === undefined) throw new RangeError(`Cannot plan analysis slots for a window of ${w} ms: not a multiple of 10 s`);
    let t = tiers.findIndex((x) => x.slotMs === slot);
    if (t < 0) {
      tiers.push({ slotMs: slot, slots: 0 });
      t = tiers.length - 1;
    }
    const n = Math.ceil(w / slot);
    const tier = tiers[t] as Tier;
    if (n > tier.slots) tier.slots = n;
    windowTier.set(w, { tier: t, slots: n });
  }
  return { tiers, windowTier };
}

class Ring {
  readonly slots: (Slot | undefined)[];
  constructor(
    readonly slotMs: number,
    readonly length: number,
  ) {
    this.slots = new Array<Slot | undefined>(length).fill(undefined);
  }

  /** The slot of `period`, reset when it held an older period; undefined for a period older than the ring's. */
  slotFor(period: number): Slot | undefined {
    let pos = period % this.length;
    if (pos < 0) pos += this.length;
    const s = this.slots[pos];
    if (s === undefined) return (this.slots[pos] = new Slot(period));
    if (s.period === period) return s;
    if (s.period > period) return undefined;
    return (this.slots[pos] = new Slot(period));
  }

  slotAt(period: number): Slot | undefined {
    let pos = period % this.length;
    if (pos < 0) pos += this.length;
    const s = this.slots[pos];
    return s !== undefined && s.period === period ? s : undefined;
  }
}

class RouteAnalysisEntry implements RouteIdent {
  lastSeenMs = 0;
  constructor(
    readonly service: string,
    readonly method: string,
    readonly route: string,
    readonly rings: Ring[],
  ) {}
}

export interface RouteAnalysisStoreOptions {
  windowsMs: readonly number[];
  /** @default 10000 */
  maxRoutes?: number;
  /** @default 2 h */
  routeExpiryMs?: number;
}

export interface RouteAnalysisStats {
  routes: number;
  requests: number;
  /** Requests of routes beyond `maxRoutes`, not analysed. */
  overflowRequests: number;
  expiredRoutes: number;
}

/** Key of a route in the analysis store. */
export function routeKeyOf(service: string, method: string, route: string): string {
  return `${service}\u0000${method}\u0000${route}`;
}

export class RouteAnalysisStore {
  readonly windowsMs: readonly number[];
  readonly tiers: readonly Tier[];
  readonly windowTier: ReadonlyMap<number, { tier: number; slots: number }>;
  readonly maxRoutes: number;
  readonly routeExpiryMs: number;
  readonly #routes = new Map<string, RouteAnalysisEntry>();
  #requests = 0;
  #overflow = 0;
  #expired = 0;

  constructor(options: RouteAnalysisStoreOptions) {
    this.windowsMs = [...options.windowsMs];
    const plan = planAnalysisSlots(this.windowsMs);
    this.tiers = plan.tiers;
    this.windowTier = plan.windowTier;
    this.maxRoutes = options.maxRoutes ?? 10_000;
    this.routeExpiryMs = options.routeExpiryMs ?? 7_200_000;
  }

  #entry(key: string, ident: RouteIdent | undefined): RouteAnalysisEntry | undefined {
    let e = this.#routes.get(key);
    if (e !== undefined) return e;
    if (this.#routes.size >= this.maxRoutes) return undefined;
    const id = ident ?? splitKey(key);
    e = new RouteAnalysisEntry(
      id.service,
      id.method,
      id.route,
      this.tiers.map((t) => new Ring(t.slotMs, t.slots)),
    );
    this.#routes.set(key, e);
    return e;
  }

  /**
   * Adds one analysed request (its route key is `req.route`, see routeKeyOf) at receive time `nowMs`, which picks
   * the slots; `seenMs` (default `nowMs`) is when its version counts as seen (offline analysis records a whole
   * capture in one slot but orders versions by the capture's own clock).
   */
  record(req: RequestAnalysis, nowMs: number, seenMs = nowMs): void {
    const e = this.#entry(req.route, undefined);
    if (e === undefined) {
      this.#overflow++;
      return;
    }
    this.#requests++;
    e.lastSeenMs = Math.max(e.lastSeenMs, nowMs);
    const keys = requestKeys(req);
    for (const ring of e.rings) {
      const slot = ring.slotFor(Math.floor(nowMs / ring.slotMs));
      if (slot !== undefined) addRequest(slot, req, seenMs, keys);
    }
  }

  /** Drops routes idle for longer than the expiry; returns how many. */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [k, e] of this.#routes) {
      if (nowMs - e.lastSeenMs > this.routeExpiryMs) {
        this.#routes.delete(k);
        n++;
      }
    }
    this.#expired += n;
    return n;
  }

  stats(): RouteAnalysisStats {
    return { routes: this.#routes.size, requests: this.#requests, overflowRequests: this.#overflow, expiredRoutes: this.#expired };
  }

  /** Routes known, as idents. */
  routes(): RouteIdent[] {
    return [...this.#routes.values()].map((e) => ({ service: e.service, method: e.method, route: e.route }));
  }

  /**
   * The window's aggregate for one route (undefined when the route is unknown). `windowMs` must be one of the
   * store's windows.
   */
  aggregate(ident: RouteIdent, windowMs: number, nowMs: number): SlotData | undefined {
    const e = this.#routes.get(routeKeyOf(ident.service, ident.method, ident.route));
    if (e === undefined) return undefined;
    const wt = this.windowTier.get(windowMs);
    if (wt === undefined) throw new RangeError(`unknown window ${windowMs} ms`);
    const ring = e.rings[wt.tier] as Ring;
    const to = Math.floor(nowMs / ring.slotMs);
    const agg = new SlotData(true);
    for (let p = to - wt.slots + 1; p <= to; p++) {
      const s = ring.slotAt(p);
      if (s !== undefined) mergeSlot(agg, s);
    }
    return agg;
  }

  /** Every route (or those `filter` keeps) as plain data, for merging into another store. */
  snapshot(filter?: (r: RouteIdent) => boolean): RouteAnalysisSnapshot[] {
    const out: RouteAnalysisSnapshot[] = [];
    for (const e of this.#routes.values()) {
      if (filter !== undefined && !filter(e)) continue;
      out.push({
        service: e.service,
        method: e.method,
        route: e.route,
        lastSeenMs: e.lastSeenMs,
        rings: e.rings.map((r) => r.slots.filter((s): s is Slot => s !== undefined && s.requests > 0).map(slotSnapshot)),
      });
    }
    return out;
  }

  /** Adds routes of a store with the same windows (slots line up: periods are absolute). */
  mergeSnapshot(routes: readonly RouteAnalysisSnapshot[]): void {
    for (const r of routes) {
      const e = this.#entry(routeKeyOf(r.service, r.method, r.route), r);
      if (e === undefined) {
        this.#overflow += r.rings[0]?.reduce((n, s) => n + s.requests, 0) ?? 0;
        continue;
      }
      e.lastSeenMs = Math.max(e.lastSeenMs, r.lastSeenMs);
      r.rings.forEach((slots, i) => {
        const ring = e.rings[i];
        if (ring === undefined) return;
        for (const snap of slots) {
          const slot = ring.slotFor(snap.period);
          if (slot !== undefined) mergeSlot(slot, slotFromSnapshot(snap));
        }
      });
    }
  }
}

function splitKey(key: string): RouteIdent {
  const [service = '', method = '', ...route] = key.split('\u0000');
  return { service, method, route: route.join('\u0000') };
}

function sketch(wide: boolean): ExpoHistogram {
  return new ExpoHistogram({ wide });
}

/** A request's map keys in a slot, built once for all its rings. */
interface RequestKeys {
  targets: string[];
  calls: string[];
  nPlusOne: string[];
  attributes: readonly string[];
  versionCalls: string[];
}

function requestKeys(req: RequestAnalysis): RequestKeys {
  return {
    targets: req.targets.map((t) => `${t.category}\u0000${t.target}`),
    calls: req.calls.map((c) => `${c.kind}\u0000${c.system}\u0000${c.key}`),
    nPlusOne: req.nPlusOne.map((f) => `${f.kind}\u0000${f.fingerprint}`),
    attributes: req.attributes,
    versionCalls: req.calls.map((c) => `${c.kind}\u0000${c.key}`),
  };
}

function addRequest(slot: SlotData, req: RequestAnalysis, nowMs: number, keys: RequestKeys): void {
  slot.requests++;
  if (req.isError) slot.errors++;
  slot.durationMs += req.durationMs;
  const bucket = latencyBucket(req.durationMs);
  addCount(slot.latency, bucket);
  for (let i = 0; i < req.targets.length; i++) {
    const t = req.targets[i] as RequestAnalysis['targets'][number];
    const key = keys.targets[i] as string;
    let acc = slot.targets.get(key);
    if (acc === undefined) {
      const over = slot.targets.size >= MAX_TARGETS;
      const k = over ? `${t.category}\u0000${OTHER}` : key;
      acc = slot.targets.get(k);
      if (acc === undefined)
        slot.targets.set(
          k,
          (acc = { category: t.category, target: over ? OTHER : t.target, sketch: sketch(slot.wide), requests: 0, unionMs: 0, splitMs: 0, cpMs: 0 }),
        );
    }
    if (t.unionMs > 0) {
      acc.sketch.record(t.unionMs);
      acc.requests++;
    }
    acc.unionMs += t.unionMs;
    acc.splitMs += t.splitMs;
    acc.cpMs += t.cpMs;
  }
  for (let i = 0; i < req.calls.length; i++) {
    const c = req.calls[i] as RequestAnalysis['calls'][number];
    const key = keys.calls[i] as string;
    let acc = slot.calls.get(key);
    if (acc === undefined) {
      const over = slot.calls.size >= MAX_CALLS;
      const k = over ? `${c.kind}\u0000${OTHER}\u0000${OTHER}` : key;
      acc = slot.calls.get(k);
      if (acc === undefined) {
        acc = {
          kind: c.kind,
          system: over ? OTHER : c.system,
          text: over ? OTHER : c.key,
          summary: over ? OTHER : c.summary,
          sketch: sketch(slot.wide),
          calls: 0,
          requests: 0,
          sumMs: 0,
          callsByLatency: [],
          exampleTrace: '',
          exampleMs: -1,
        };
        slot.calls.set(k, acc);
      }
    }
    let cost = 0;
    for (const d of c.durations) {
      acc.sketch.record(d);
      cost += d;
    }
    acc.calls += c.durations.length;
    acc.requests++;
    acc.sumMs += cost;
    addCount(acc.callsByLatency, bucket, c.durations.length);
    if (cost > acc.exampleMs) {
      acc.exampleMs = cost;
      acc.exampleTrace = req.traceId;
    }
  }
  for (let i = 0; i < req.nPlusOne.length; i++) {
    const f = req.nPlusOne[i] as RequestAnalysis['nPlusOne'][number];
    const key = keys.nPlusOne[i] as string;
    let acc = slot.nPlusOne.get(key);
    if (acc === undefined) {
      if (slot.nPlusOne.size >= MAX_NPLUSONE) {
        slot.quality.dropped++;
        continue;
      }
      slot.nPlusOne.set(
        key,
        (acc = {
          kind: f.kind,
          fingerprint: f.fingerprint,
          system: f.system,
          requests: 0,
          requestsByLatency: [],
          repeats: 0,
          maxRepeats: 0,
          costMs: 0,
          exampleTrace: '',
          exampleSpans: [],
          exampleCostMs: -1,
        }),
      );
    }
    acc.requests++;
    addCount(acc.requestsByLatency, bucket);
    acc.repeats += f.repeats;
    acc.maxRepeats = Math.max(acc.maxRepeats, f.repeats);
    acc.costMs += f.costMs;
    if (f.costMs > acc.exampleCostMs) {
      acc.exampleCostMs = f.costMs;
      acc.exampleTrace = req.traceId;
      acc.exampleSpans = f.spanIds.slice(0, MAX_EXAMPLE_SPANS);
    }
  }
  for (const key of keys.attributes) {
    let acc = slot.attributes.get(key);
    if (acc === undefined) {
      if (slot.attributes.size >= MAX_ATTRIBUTES) {
        slot.quality.dropped++;
        continue;
      }
      slot.attributes.set(key, (acc = []));
    }
    addCount(acc, bucket);
  }
  let v = slot.versions.get(req.version);
  if (v === undefined) {
    if (slot.versions.size >= MAX_VERSIONS) slot.quality.dropped++;
    else
      slot.versions.set(
        req.version,
        (v = { version: req.version, sketch: sketch(slot.wide), requests: 0, errors: 0, firstSeenMs: nowMs, lastSeenMs: nowMs, calls: new Map() }),
      );
  }
  if (v !== undefined) {
    v.sketch.record(req.durationMs);
    v.requests++;
    if (req.isError) v.errors++;
    v.lastSeenMs = Math.max(v.lastSeenMs, nowMs);
    for (let i = 0; i < req.calls.length; i++) {
      const c = req.calls[i] as RequestAnalysis['calls'][number];
      const key = keys.versionCalls[i] as string;
      if (v.calls.has(key) || v.calls.size < MAX_CALLS) v.calls.set(key, (v.calls.get(key) ?? 0) + c.durations.length);
    }
  }
  const q = slot.quality;
  q.truncated += req.quality.truncated;
  q.outside += req.quality.outside;
  q.skewAdjusted += req.quality.skewAdjusted;
  q.doubleSpans += req.quality.doubleSpans;
  q.dbWithoutStatement += req.quality.dbWithoutStatement;
}

/** Adds slot `b` into `a` (exact: counts and sums add, sketches merge, examples keep the costliest). */
export function mergeSlot(a: SlotData, b: SlotData): void {
  a.requests += b.requests;
  a.errors += b.errors;
  a.durationMs += b.durationMs;
  mergeCounts(a.latency, b.latency);
  for (const [k, t] of b.targets) {
    const acc = a.targets.get(k);
    if (acc === undefined) a.targets.set(k, { ...t, sketch: t.sketch.clone({ wide: a.wide }) });
    else {
      acc.sketch.merge(t.sketch);
      acc.requests += t.requests;
      acc.unionMs += t.unionMs;
      acc.splitMs += t.splitMs;
      acc.cpMs += t.cpMs;
    }
  }
  for (const [k, c] of b.calls) {
    const acc = a.calls.get(k);
    if (acc === undefined) a.calls.set(k, { ...c, sketch: c.sketch.clone({ wide: a.wide }), callsByLatency: [...c.callsByLatency] });
    else {
      acc.sketch.merge(c.sketch);
      acc.calls += c.calls;
      acc.requests += c.requests;
      acc.sumMs += c.sumMs;
      mergeCounts(acc.callsByLatency, c.callsByLatency);
      if (c.exampleMs > acc.exampleMs) {
        acc.exampleMs = c.exampleMs;
        acc.exampleTrace = c.exampleTrace;
      }
    }
  }
  for (const [k, n] of b.nPlusOne) {
    const acc = a.nPlusOne.get(k);
    if (acc === undefined) a.nPlusOne.set(k, { ...n, exampleSpans: [...n.exampleSpans], requestsByLatency: [...n.requestsByLatency] });
    else {
      acc.requests += n.requests;
      mergeCounts(acc.requestsByLatency, n.requestsByLatency);
      acc.repeats += n.repeats;
      acc.maxRepeats = Math.max(acc.maxRepeats, n.maxRepeats);
      acc.costMs += n.costMs;
      if (n.exampleCostMs > acc.exampleCostMs) {
        acc.exampleCostMs = n.exampleCostMs;
        acc.exampleTrace = n.exampleTrace;
        acc.exampleSpans = [...n.exampleSpans];
      }
    }
  }
  for (const [k, counts] of b.attributes) {
    const acc = a.attributes.get(k);
    if (acc === undefined) a.attributes.set(k, [...counts]);
    else mergeCounts(acc, counts);
  }
  for (const [k, v] of b.versions) {
    const acc = a.versions.get(k);
    if (acc === undefined) a.versions.set(k, { ...v, sketch: v.sketch.clone({ wide: a.wide }), calls: new Map(v.calls) });
    else {
      acc.sketch.merge(v.sketch);
      acc.requests += v.requests;
      acc.errors += v.errors;
      acc.firstSeenMs = Math.min(acc.firstSeenMs, v.firstSeenMs);
      acc.lastSeenMs = Math.max(acc.lastSeenMs, v.lastSeenMs);
      for (const [ck, n] of v.calls) acc.calls.set(ck, (acc.calls.get(ck) ?? 0) + n);
    }
  }
  for (const k of Object.keys(a.quality) as (keyof QualityCounters)[]) a.quality[k] += b.quality[k];
}

function slotSnapshot(s: Slot): SlotSnapshot {
  return {
    period: s.period,
    requests: s.requests,
    errors: s.errors,
    durationMs: s.durationMs,
    latency: [...s.latency],
    targets: [...s.targets.values()].map((t) => ({ ...t, sketch: t.sketch.toOtlp() })),
    calls: [...s.calls.values()].map((c) => ({ ...c, sketch: c.sketch.toOtlp(), callsByLatency: [...c.callsByLatency] })),
    nPlusOne: [...s.nPlusOne.values()].map((n) => ({ ...n, exampleSpans: [...n.exampleSpans], requestsByLatency: [...n.requestsByLatency] })),
    attributes: [...s.attributes].map(([k, counts]) => [k, [...counts]]),
    versions: [...s.versions.values()].map((v) => ({ ...v, sketch: v.sketch.toOtlp(), calls: [...v.calls] })),
    quality: { ...s.quality },
  };
}

function slotFromSnapshot(snap: SlotSnapshot): SlotData {
  const s = new SlotData();
  s.requests = snap.requests;
  s.errors = snap.errors;
  s.durationMs = snap.durationMs;
  mergeCounts(s.latency, snap.latency);
  for (const t of snap.targets) s.targets.set(`${t.category}\u0000${t.target}`, { ...t, sketch: ExpoHistogram.fromOtlp(t.sketch) });
  for (const c of snap.calls)
    s.calls.set(`${c.kind}\u0000${c.system}\u0000${c.text}`, { ...c, sketch: ExpoHistogram.fromOtlp(c.sketch), callsByLatency: [...c.callsByLatency] });
  for (const n of snap.nPlusOne)
    s.nPlusOne.set(`${n.kind}\u0000${n.fingerprint}`, { ...n, exampleSpans: [...n.exampleSpans], requestsByLatency: [...n.requestsByLatency] });
  for (const [k, counts] of snap.attributes) s.attributes.set(k, [...counts]);
  for (const v of snap.versions) s.versions.set(v.version, { ...v, sketch: ExpoHistogram.fromOtlp(v.sketch), calls: new Map(v.calls) });
  Object.assign(s.quality, snap.quality);
  return s;
}
