/**
 * Analysis of one assembled trace: every request span in it (SERVER or CONSUMER counted by a route store) gets
 * a breakdown of where its time went, the statements and outbound calls it made, and its N+1 patterns.
 *
 * A request's subtree is its descendants down to (not into) the next request span: a call to another service is
 * measured by the client span that made it (`http` to that server), and the callee's own time is the callee's
 * route's business. So one service's request needs only that service's spans, which its exporter sends over one
 * connection (this is what makes analysis per worker process exact; see README.md).
 *
 * Order of work (reference/trace-analysis.md §3 and §9):
 * 1. index spans by id; duplicate span ids are dropped (counted); spans whose parent is missing are orphans
 *    (counted; a request span with a remote parent is not an orphan, its parent lives in the caller);
 * 2. clock skew: a child from another clock (host, node, pod) that does not fit in its parent is shifted as
 *    Jaeger's adjuster does — by `parentStart + (parentDuration − childDuration)/2 − childStart`, or only to the
 *    parent's start when the child is longer — never by more than `maxClockSkewMs`, and its subtree with it;
 * 3. per request, children are clipped to their parent (a child outliving its parent is truncated; one wholly
 *    outside is dropped with its subtree, both counted); DB, cache, HTTP, messaging and unknown calls are leaves
 *    (their children belong to them); the service's own spans (INTERNAL) are walked through;
 * 4. SQLAlchemy-plus-driver double spans — DB siblings with the same statement from different instrumentation
 *    scopes whose intervals overlap — count once (the inner one is kept);
 * 5. per (category, target): the union of its leaves' intervals (`unionMs`), the Datadog equal split of wall
 *    time among overlapping targets (`splitMs`: shares add up to the request's duration, the rest is `self`),
 *    and the time each owns on the request's critical path (`cpMs`, Jaeger's last-finishing-child walk);
 * 6. statements (SQL fingerprints) and outbound HTTP call templates with each call's duration;
 * 7. N+1 (see nplusone.ts).
 */
import { clip, equalSplit, length, union } from './intervals';
import { detectNPlusOne, type NPlusOneFinding, type NPlusOneOptions } from './nplusone';
import { CATEGORIES, KIND, SpanClass, type Category, type SpanRecord } from './span-record';
import { FingerprintCache, type SqlFingerprint } from './sql';
import { templateHttp, type HttpTemplate } from './http-template';

export interface AnalyzerOptions extends NPlusOneOptions {
  /** Largest clock-skew correction applied; larger computed corrections are not applied (counted). @default 10000 */
  maxClockSkewMs?: number;
  /** Fingerprint memo shared across traces. */
  fingerprints?: FingerprintCache;
}

/** Time of one (category, target) in one request, in ms. */
export interface TargetTime {
  category: Category;
  target: string;
  /** Union of its intervals (concurrent calls counted once). */
  unionMs: number;
  /** Its equal-split share of wall time (all targets' splitMs plus self's add up to the request's duration). */
  splitMs: number;
  /** Time it owns on the request's critical path. */
  cpMs: number;
}

/** All calls of one statement fingerprint or HTTP template in one request. */
export interface CallGroup {
  kind: 'db' | 'http';
  /** The fingerprint text (`SELECT … WHERE id = ?`) or the template (`GET users:8000 /users/{id}`). */
  key: string;
  /** DB: db.system; HTTP: the server. */
  system: string;
  /** DB: `SELECT users`; HTTP: the method and path. */
  summary: string;
  /** Duration of each call, ms. */
  durations: number[];
}

export interface RequestQuality {
  /** Children cut at their parent's end or start. */
  truncated: number;
  /** Children wholly outside their parent, dropped with their subtrees. */
  outside: number;
  /** Spans of the request's subtree moved by the clock-skew correction. */
  skewAdjusted: number;
  /** DB spans not counted because a sibling from another instrumentation recorded the same execution. */
  doubleSpans: number;
  /** DB spans without statement text (in the breakdown, not in the statement catalogue). */
  dbWithoutStatement: number;
}

/** Everything analysis learnt about one request. */
export interface RequestAnalysis {
  route: string;
  service: string;
  traceId: string;
  spanId: string;
  version: string;
  durationMs: number;
  isError: boolean;
  /** Scalar attributes of the request span and its resource (for the slow-vs-fast comparison), `key\u0000value`. */
  attributes: readonly string[];
  /** `self` first, then every other (category, target) with time in this request. */
  targets: TargetTime[];
  calls: CallGroup[];
  nPlusOne: NPlusOneFinding[];
  quality: RequestQuality;
}

export interface TraceAnalysis {
  requests: RequestAnalysis[];
  spans: number;
  duplicates: number;
  /** Spans whose parent is not in the trace (request spans with a remote parent excepted). */
  orphans: number;
  /** Services of the orphans (for per-service counts). */
  orphanServices: string[];
  /** Spans whose computed skew correction exceeded the maximum and was not applied. */
  skewRefused: number;
  /** Spans of the analysed requests, and duplicates: what the caller no longer needs to keep. */
  used: Set<SpanRecord>;
}

export const DEFAULT_MAX_CLOCK_SKEW_MS = 10_000;

/** A leaf call of a request: a span clipped to its parent, with its category and target. */
interface Leaf {
  rec: SpanRecord;
  start: number;
  end: number;
  category: Category;
  target: string;
}

/** A node of the request tree for the critical-path walk (own spans and leaves, clipped). */
interface CpNode {
  start: number;
  end: number;
  /** Index into the request's target list; 0 is self. */
  target: number;
  children: CpNode[];
}

const defaultFingerprints = new FingerprintCache();

/**
 * Analyses the request spans of a trace (all those with a route, or the ones `select` names) from the spans
 * assembled so far. `used` returns every span that belongs to an analysed request (its subtree, leaves' own
 * children included) and every duplicate: the caller may drop them. With `countOrphans` (the trace's last call)
 * spans whose parent is missing and that no analysed request used are counted as orphans.
 */
export function analyzeTrace(
  traceId: string,
  spans: readonly SpanRecord[],
  options: AnalyzerOptions = {},
  select?: { requests?: ReadonlySet<SpanRecord>; countOrphans?: boolean },
): TraceAnalysis {
  const maxSkew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const fingerprints = options.fingerprints ?? defaultFingerprints;
  const byKey = new Map<number, SpanRecord>();
  const used = new Set<SpanRecord>();
  let duplicates = 0;
  for (const s of spans) {
    if (byKey.has(s.key)) {
      duplicates++;
      used.add(s);
    } else byKey.set(s.key, s);
  }
  const children = new Map<number, SpanRecord[]>();
  for (const s of byKey.values()) {
    const parent = s.parentKey < 0 ? undefined : byKey.get(s.parentKey);
    if (parent === undefined || parent === s) continue;
    let list = children.get(parent.key);
    if (list === undefined) children.set(parent.key, (list = []));
    list.push(s);
  }
  let skewRefused = 0;
  const requests: RequestAnalysis[] = [];
  for (const s of byKey.values()) {
    if (s.cls !== SpanClass.Request || s.route === '' || (select?.requests !== undefined && !select.requests.has(s))) continue;
    skewRefused += adjustSubtree(s, children, maxSkew, used);
    requests.push(analyzeRequest(traceId, s, children, fingerprints, options));
  }
  let orphans = 0;
  const orphanServices: string[] = [];
  if (select?.countOrphans === true) {
    for (const s of byKey.values()) {
      if (used.has(s) || s.parentKey < 0 || s.cls === SpanClass.Request || byKey.has(s.parentKey)) continue;
      orphans++;
      orphanServices.push(s.resource.service);
    }
  }
  return { requests, spans: spans.length, duplicates, orphans, orphanServices, skewRefused, used };
}

/**
 * Jaeger's clock-skew adjuster over one request's subtree (down to, not into, nested requests), the request span
 * being the reference; adds every span of the subtree to `used`. Returns the corrections refused as too large.
 */
function adjustSubtree(root: SpanRecord, children: ReadonlyMap<number, SpanRecord[]>, maxSkew: number, used: Set<SpanRecord>): number {
  let refused = 0;
  used.add(root);
  const stack: [SpanRecord, SpanRecord, number, string][] = [];
  for (const c of children.get(root.key) ?? []) stack.push([c, root, 0, root.resource.clock]);
  while (stack.length > 0) {
    const [node, parent, inherited, clock] = stack.pop() as [SpanRecord, SpanRecord, number, string];
    if (node.cls === SpanClass.Request) continue; // another request: analysed on its own
    used.add(node);
    let delta = inherited;
    let nodeClock = clock;
    if (node.resource.clock !== clock) {
      nodeClock = node.resource.clock;
      delta = node.skewMs !== 0 ? 0 : skewOf(node, parent);
      if (Math.abs(delta) > maxSkew) {
        refused++;
        delta = 0;
      }
    }
    if (delta !== 0 && node.skewMs === 0) {
      node.startMs += delta;
      node.endMs += delta;
      node.skewMs = delta;
    }
    for (const c of children.get(node.key) ?? []) stack.push([c, node, delta, nodeClock]);
  }
  return refused;
}

/** The correction for a child (raw times) against its already adjusted parent. */
function skewOf(child: SpanRecord, parent: SpanRecord): number {
  const pd = parent.endMs - parent.startMs;
  const cd = child.endMs - child.startMs;
  if (cd > pd) return child.startMs < parent.startMs ? parent.startMs - child.startMs : 0;
  if (child.startMs >= parent.startMs && child.endMs <= parent.endMs) return 0;
  return parent.startMs + (pd - cd) / 2 - child.startMs;
}

function categoryOf(s: SpanRecord): Category {
  switch (s.cls) {
    case SpanClass.Db:
      return 'db';
    case SpanClass.Cache:
      return 'cache';
    case SpanClass.Http:
      return 'http';
    case SpanClass.Messaging:
      return 'messaging';
    case SpanClass.Request:
      return s.kind === KIND.CONSUMER ? 'messaging' : 'http';
    case SpanClass.Unknown:
      return 'unattributed';
    default:
      return 'self';
  }
}

function targetOf(s: SpanRecord, category: Category): string {
  switch (category) {
    case 'db':
    case 'cache':
      return s.server === '' ? s.system : `${s.system} ${s.server}`;
    case 'http':
      if (s.cls === SpanClass.Request) return s.resource.service;
      if (s.server !== '') return s.server;
      return s.url === '' ? s.name : templateHttp(s.method, s.url, '', '').server;
    case 'messaging':
      if (s.cls === SpanClass.Request) return s.resource.service;
      return s.system === '' ? s.server : s.server === '' ? s.system : `${s.system} ${s.server}`;
    case 'unattributed': {
      const m = / (http (send|receive))$/.exec(s.name);
      return m !== null ? `asgi ${m[1] as string}` : s.name;
    }
    default:
      return '';
  }
}

function analyzeRequest(
  traceId: string,
  root: SpanRecord,
  children: ReadonlyMap<number, SpanRecord[]>,
  fingerprints: FingerprintCache,
  options: NPlusOneOptions,
): RequestAnalysis {
  const quality: RequestQuality = { truncated: 0, outside: 0, skewAdjusted: 0, doubleSpans: 0, dbWithoutStatement: 0 };
  const leaves: Leaf[] = [];
  const targetIndex = new Map<string, number>([['self\u0000', 0]]);
  const targetNames: [Category, string][] = [['self', '']];
  const cpRoot: CpNode = { start: root.startMs, end: root.endMs, target: 0, children: [] };
  /** Per parent span key: its direct children that survived clipping, as (record, clipped start, end, leaf?). */
  const siblings = new Map<number, Leaf[]>();
  // DFS over own spans; leaves stop the descent.
  const stack: [SpanRecord, CpNode][] = [[root, cpRoot]];
  while (stack.length > 0) {
    const [node, cp] = stack.pop() as [SpanRecord, CpNode];
    const kids = dedupeDoubleSpans(children.get(node.key) ?? [], quality);
    for (const c of kids) {
      if (c.skewMs !== 0) quality.skewAdjusted++;
      if (c.endMs <= cp.start || c.startMs >= cp.end) {
        quality.outside++;
        continue;
      }
      const start = Math.max(c.startMs, cp.start);
      const end = Math.min(c.endMs, cp.end);
      if (start !== c.startMs || end !== c.endMs) quality.truncated++;
      const category = categoryOf(c);
      const entry: Leaf = { rec: c, start, end, category, target: '' };
      let list = siblings.get(node.key);
      if (list === undefined) siblings.set(node.key, (list = []));
      list.push(entry);
      if (category === 'self') {
        const child: CpNode = { start, end, target: 0, children: [] };
        cp.children.push(child);
        stack.push([c, child]);
        continue;
      }
      // A CONSUMER request started by this one runs on its own: not on this request's critical path.
      const blocking = !(c.cls === SpanClass.Request && c.kind === KIND.CONSUMER);
      entry.target = targetOf(c, category);
      const name = `${category}\u0000${entry.target}`;
      let t = targetIndex.get(name);
      if (t === undefined) {
        t = targetNames.length;
        targetIndex.set(name, t);
        targetNames.push([category, entry.target]);
      }
      leaves.push(entry);
      if (blocking) cp.children.push({ start, end, target: t, children: [] });
      if ((c.cls === SpanClass.Db || c.cls === SpanClass.Cache) && statementOf(c, children) === '') quality.dbWithoutStatement++;
    }
  }
  // Unions per target, equal split, self.
  const perTarget: number[][] = targetNames.map(() => []);
  for (const l of leaves) {
    const t = targetIndex.get(`${l.category}\u0000${l.target}`) as number;
    (perTarget[t] as number[]).push(l.start, l.end);
  }
  const unions = perTarget.map((iv) => union(iv));
  const from = root.startMs;
  const to = root.endMs;
  const others = unions.slice(1).map((u) => clip(u, from, to));
  const split = equalSplit(others, from, to);
  const cp = new Array<number>(targetNames.length).fill(0);
  criticalPath(cpRoot, cp);
  const allLeaves = union(leaves.flatMap((l) => [l.start, l.end]));
  const targets: TargetTime[] = targetNames.map(([category, target], i) => ({
    category,
    target,
    unionMs: i === 0 ? Math.max(0, to - from - length(clip(allLeaves, from, to))) : length(others[i - 1] as number[]),
    splitMs: i === 0 ? split.rest : (split.shares[i - 1] as number),
    cpMs: cp[i] as number,
  }));
  // Statements and outbound calls.
  const groups = new Map<string, CallGroup>();
  const fpOf = new Map<SpanRecord, SqlFingerprint | HttpTemplate>();
  for (const l of leaves) {
    const c = l.rec;
    let group: CallGroup | undefined;
    if (c.cls === SpanClass.Db || c.cls === SpanClass.Cache) {
      const statement = statementOf(c, children);
      if (statement === '') continue;
      const fp = fingerprints.get(statement, c.system);
      fpOf.set(c, fp);
      const key = `db\u0000${c.system}\u0000${fp.text}`;
      group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { kind: 'db', key: fp.text, system: c.system, summary: fp.summary, durations: [] }));
    } else if (c.cls === SpanClass.Http && c.system === '') {
      const tpl = templateHttp(c.method, c.url, c.server, '');
      fpOf.set(c, tpl);
      const key = `http\u0000${tpl.text}`;
      group = groups.get(key);
      if (group === undefined)
        groups.set(key, (group = { kind: 'http', key: tpl.text, system: tpl.server, summary: `${tpl.method} ${tpl.path}`, durations: [] }));
    }
    group?.durations.push(l.end - l.start);
  }
  const nPlusOne = detectNPlusOne(siblings, fpOf, options);
  const attributes = root.attributes.length === 0 ? root.resource.attributes : [...root.attributes, ...root.resource.attributes];
  return {
    route: root.route,
    service: root.resource.service,
    traceId,
    spanId: root.spanIdHex(),
    version: root.resource.version,
    durationMs: Math.max(0, to - from),
    isError: root.statusCode === 2 || root.httpStatus >= 500,
    attributes,
    targets: targets.filter((t, i) => i === 0 || t.unionMs > 0 || t.cpMs > 0),
    calls: [...groups.values()],
    nPlusOne,
    quality,
  };
}

/** The statement of a DB span, or of the first DB descendant that has one (a driver span nested in the ORM's). */
function statementOf(s: SpanRecord, children: ReadonlyMap<number, SpanRecord[]>): string {
  if (s.statement !== '') return s.statement;
  for (const c of children.get(s.key) ?? []) {
    if (c.cls === s.cls) {
      const inner = statementOf(c, children);
      if (inner !== '') return inner;
    }
  }
  return '';
}

/**
 * Drops the outer one of two sibling DB spans that record one execution: same statement text, different
 * instrumentation scopes, overlapping intervals (python-contrib#2826: SQLAlchemy's and the driver's spans are
 * siblings, not parent and child). Returns the children in start order.
 */
function dedupeDoubleSpans(kids: readonly SpanRecord[], quality: RequestQuality): SpanRecord[] {
  const sorted = [...kids].sort((a, b) => a.startMs - b.startMs || b.endMs - a.endMs);
  if (sorted.length < 2) return sorted;
  const drop = new Set<SpanRecord>();
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i] as SpanRecord;
    if ((a.cls !== SpanClass.Db && a.cls !== SpanClass.Cache) || a.statement === '' || drop.has(a)) continue;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j] as SpanRecord;
      if (b.startMs >= a.endMs) break;
      if (b.cls !== a.cls || b.statement !== a.statement || b.scope === a.scope || drop.has(b)) continue;
      // a starts no later than b; keep the one inside the other (the driver's), else the later-starting one
      const aContainsB = a.startMs <= b.startMs && a.endMs >= b.endMs;
      drop.add(aContainsB ? a : b.startMs <= a.startMs && b.endMs >= a.endMs ? b : a);
      quality.doubleSpans++;
      break;
    }
  }
  return drop.size === 0 ? sorted : sorted.filter((s) => !drop.has(s));
}

/**
 * Jaeger's critical path (CRISP): from the end of a node's section, the last-finishing child that ended before
 * the current point is on the path; the node owns the gaps between the chosen children. Adds each node's owned
 * time to `owned[node.target]`.
 */
function criticalPath(rootNode: CpNode, owned: number[]): void {
  const stack: [CpNode, number][] = [[rootNode, rootNode.end]];
  while (stack.length > 0) {
    const [node, sectionEnd] = stack.pop() as [CpNode, number];
    const kids = node.children.filter((k) => k.end > node.start && k.start < node.end).sort((a, b) => b.end - a.end);
    let t = Math.min(sectionEnd, node.end);
    for (const k of kids) {
      // the next child must have finished by t (back-to-back children, end == t, count: clocks round)
      if (k.end > t) continue;
      const kStart = Math.max(k.start, node.start);
      if (kStart >= t) continue;
      owned[node.target] = (owned[node.target] as number) + (t - k.end);
      stack.push([{ ...k, start: kStart }, k.end]);
      t = kStart;
    }
    owned[node.target] = (owned[node.target] as number) + Math.max(0, t - node.start);
  }
}

export { CATEGORIES };
