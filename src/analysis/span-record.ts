/**
 * The compact copy of a span that trace analysis keeps while a trace assembles: ids as numbers, times, kind,
 * status, and only the attributes analysis reads, classified once (DB, cache, HTTP, messaging). Filled from a
 * pdata SpanView while the batch is walked (the view is reused, so everything is copied out), or from plain
 * objects in tests.
 */
import type { AttrValue, SpanView } from '../pdata/trace-batch';

/** Where a span's time goes in a request's breakdown. */
export const CATEGORIES = ['self', 'db', 'http', 'cache', 'messaging', 'unattributed'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Span kinds (OTLP numbers). */
export const KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** What a span is, for analysis. */
export const enum SpanClass {
  /** The service's own work (INTERNAL spans, unknown kinds): its exclusive time is `self`. */
  Own,
  Db,
  Cache,
  Http,
  Messaging,
  /** A call whose kind we cannot tell (a CLIENT or PRODUCER span without DB, HTTP, RPC or messaging attributes, ASGI send/receive). */
  Unknown,
  /** SERVER or CONSUMER: a request of its own (a route), analysed on its own. */
  Request,
}

/** Facts about a resource shared by its spans (computed once per resource per batch). */
export interface ResourceInfo {
  service: string;
  /** Spans with the same key share a clock (see clockKey). */
  clock: string;
  /** `service.version`, else the ReplicaSet (a Deployment's pod template), else ''. */
  version: string;
  /** Scalar resource attributes kept for the slow-vs-fast comparison, as interned `key\u0000value` (attributeKey). */
  attributes: readonly string[];
}

export class SpanRecord {
  /** Span id as two 32-bit words, and a 53-bit key from them (unique within a trace in practice). */
  idHi = 0;
  idLo = 0;
  key = 0;
  /** Parent span id words and key; parentKey -1 when the span has no parent. */
  parentHi = 0;
  parentLo = 0;
  parentKey = -1;
  kind = 0;
  statusCode = 0;
  /** Epoch ms (fractional). */
  startMs = 0;
  endMs = 0;
  name = '';
  scope = '';
  resource: ResourceInfo = EMPTY_RESOURCE;
  cls: SpanClass = SpanClass.Own;
  /** DB: `db.system.name` ?? `db.system`; messaging: `messaging.system`; RPC: `rpc.system`. */
  system = '';
  /** Peer: `server.address` ?? `net.peer.name` (DB, cache, HTTP, RPC), with the port when known. */
  server = '';
  /** DB/cache statement (`db.query.text` ?? `db.statement`), '' when absent. */
  statement = '';
  /** `db.statement.parameters` / `db.query.parameters` when the client recorded them. */
  parameters = '';
  /** HTTP client: method and URL (`url.full` ?? `http.url`); messaging: destination name. */
  method = '';
  url = '';
  /** HTTP status (server or client), 0 when absent. */
  httpStatus = 0;
  /** For request spans counted by a route store: the route key the caller assigned; '' otherwise. */
  route = '';
  /** For request spans: scalar span attributes kept for the slow-vs-fast comparison, as interned `key\u0000value`. */
  attributes: readonly string[] = NO_ATTRIBUTES;
  /** Receive time (ms) of the batch that carried the span. */
  receivedMs = 0;
  /** Clock-skew correction applied to the span's times (ms), 0 when none. */
  skewMs = 0;

  get durationMs(): number {
    return this.endMs > this.startMs ? this.endMs - this.startMs : 0;
  }

  spanIdHex(): string {
    return words2hex(this.idHi, this.idLo);
  }
}

export const NO_ATTRIBUTES: readonly string[] = Object.freeze([]);

/** Distinct `key\u0000value` strings interned at most; past it the table starts over. */
const MAX_INTERNED_ATTRIBUTES = 65_536;
const interned = new Map<string, Map<string, string>>();
let internedCount = 0;

/**
 * The one `key\u0000value` string of an attribute value (cut at MAX_VALUE_CHARS): request spans held for a
 * decision wait share these instead of each holding its own pairs, and the route store's maps look them up with
 * their hash already computed.
 */
export function attributeKey(k: string, v: string): string {
  let byValue = interned.get(k);
  if (byValue === undefined) {
    if (internedCount >= MAX_INTERNED_ATTRIBUTES) {
      interned.clear();
      internedCount = 0;
    }
    interned.set(k, (byValue = new Map()));
  }
  let key = byValue.get(v);
  if (key === undefined) {
    if (internedCount >= MAX_INTERNED_ATTRIBUTES) {
      interned.clear();
      internedCount = 0;
      interned.set(k, byValue);
      byValue.clear();
    }
    key = `${k}\u0000${v.length > MAX_VALUE_CHARS ? v.slice(0, MAX_VALUE_CHARS) : v}`;
    byValue.set(v, key);
    internedCount++;
  }
  return key;
}
export const EMPTY_RESOURCE: ResourceInfo = Object.freeze({ service: 'unknown_service', clock: 'unknown_service', version: '', attributes: NO_ATTRIBUTES });

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** 8 hex digits of a 32-bit word. */
export function hex32(w: number): string {
  return (HEX[w >>> 24] as string) + (HEX[(w >>> 16) & 255] as string) + (HEX[(w >>> 8) & 255] as string) + (HEX[w & 255] as string);
}

/** 16 hex digits of two 32-bit words. */
export function words2hex(hi: number, lo: number): string {
  return hex32(hi) + hex32(lo);
}

/** 53-bit map key of an 8-byte id given as two words (the high word's top 11 bits folded into its low 21). */
export function idKey(hi: number, lo: number): number {
  return ((hi & 0x1fffff) ^ (hi >>> 21)) * 4294967296 + (lo >>> 0);
}

/** Resource keys that identify a clock, in order of preference: host, then node (pods on a node share its clock), then pod, then process. */
const CLOCK_KEYS = ['host.id', 'host.ip', 'host.name', 'k8s.node.name', 'k8s.pod.uid', 'k8s.pod.ip', 'k8s.pod.name', 'service.instance.id'];

/** Resource attributes never compared between slow and fast requests: per-process noise or constant per service. */
const RESOURCE_SKIP =
  /^(service\.name|telemetry\.|process\.(pid|parent_pid|command|command_line|command_args|executable|owner|runtime)|service\.instance\.id|k8s\.pod\.uid|container\.id|host\.id|os\.|host\.arch)/;

/** Span attributes of request spans worth comparing (low cardinality); ids, paths, sizes and ports are not. */
const SPAN_SKIP =
  /^(http\.(url|target|route|host|server_name|scheme|flavor|request_content_length|response_content_length|user_agent|client_ip)|url\.|net\.(peer|host|sock)|client\.|server\.(address|port)|network\.(peer|local)|user_agent\.|http\.request\.(body|header)|http\.response\.(body|header)|thread\.|code\.)/;

/** Most attribute values of one kind kept per request (long values are cut); at most this many times 4 are read. */
const MAX_ATTRIBUTES = 40;
const MAX_VALUE_CHARS = 80;

function text(v: AttrValue | undefined): string {
  return v === undefined ? '' : String(v);
}

function firstOf(get: (k: string) => AttrValue | undefined, keys: readonly string[]): string {
  for (const k of keys) {
    const v = get(k);
    if (v !== undefined && v !== '') return String(v);
  }
  return '';
}

/** ResourceInfo of the span's resource (call once per resource, not per span). */
export function resourceInfo(view: SpanView): ResourceInfo {
  const get = (k: string): AttrValue | undefined => view.resourceAttribute(k);
  const attributes: string[] = [];
  let seen = 0;
  view.forEachResourceAttribute((k, v) => keep(attributes, k, v, RESOURCE_SKIP, ++seen));
  return {
    service: view.service,
    clock: firstOf(get, CLOCK_KEYS) || view.service,
    version: firstOf(get, ['service.version', 'k8s.replicaset.name']),
    attributes,
  };
}

/** SPAN_SKIP's answer per key (keys are few and interned: a lookup is cheaper than the expression). */
const spanSkipCache = new Map<string, boolean>();

function spanKeySkipped(k: string): boolean {
  let skip = spanSkipCache.get(k);
  if (skip === undefined) {
    skip = SPAN_SKIP.test(k);
    if (spanSkipCache.size >= 4096) spanSkipCache.clear();
    spanSkipCache.set(k, skip);
  }
  return skip;
}

/** Keeps an attribute unless skipped; false (stop) once enough are kept or enough were read. */
function keep(out: string[], k: string, v: AttrValue, skip: RegExp | undefined, seen: number): boolean {
  if (skip === undefined || !skip.test(k)) out.push(attributeKey(k, String(v)));
  return out.length < MAX_ATTRIBUTES && seen < 4 * MAX_ATTRIBUTES;
}

const ASGI_EVENT = / http (send|receive)$/;

/**
 * Copies a span out of a view. `route` is the caller's route key when the span is a request it counted
 * (SERVER/CONSUMER), else ''. `words` is scratch space of 8 words (already filled when `mask` is given).
 */
export function recordFromView(
  view: SpanView,
  resource: ResourceInfo,
  route: string,
  receivedMs: number,
  words: Uint32Array,
  mask = view.readIdWords(words),
): SpanRecord {
  const r = new SpanRecord();
  r.idHi = words[4] as number;
  r.idLo = words[5] as number;
  r.key = idKey(r.idHi, r.idLo);
  if ((mask & 4) !== 0) {
    r.parentHi = words[6] as number;
    r.parentLo = words[7] as number;
    r.parentKey = idKey(r.parentHi, r.parentLo);
  }
  r.kind = view.kind;
  r.statusCode = view.statusCode;
  r.startMs = view.startTimeMs;
  r.endMs = view.endTimeMs;
  r.name = view.name;
  r.scope = view.scopeName;
  r.resource = resource;
  r.route = route;
  r.receivedMs = receivedMs;
  classify(r, (k) => view.attribute(k));
  if (r.cls === SpanClass.Request) {
    const attributes: string[] = [];
    let seen = 0;
    view.forEachAttribute(
      (k, v) => keep(attributes, k, v, undefined, seen),
      (k) => ++seen <= 4 * MAX_ATTRIBUTES && !spanKeySkipped(k),
    );
    r.attributes = attributes;
  }
  return r;
}

/** Sets `cls` and the attributes analysis reads, from an attribute getter (old and new semantic conventions). */
export function classify(r: SpanRecord, get: (k: string) => AttrValue | undefined): void {
  const status = get('http.response.status_code') ?? get('http.status_code');
  r.httpStatus = typeof status === 'number' ? status : typeof status === 'string' && /^\d+$/.test(status) ? Number(status) : 0;
  if (r.kind === KIND.SERVER || r.kind === KIND.CONSUMER) {
    r.cls = SpanClass.Request;
    return;
  }
  const db = text(get('db.system.name') ?? get('db.system'));
  const peer = (): string => {
    const host = text(get('server.address') ?? get('net.peer.name'));
    const port = text(get('server.port') ?? get('net.peer.port'));
    return host === '' ? '' : port === '' ? host : `${host}:${port}`;
  };
  if (db !== '') {
    r.system = db;
    r.cls = db === 'redis' || db === 'memcached' || db === 'valkey' ? SpanClass.Cache : SpanClass.Db;
    r.statement = text(get('db.query.text') ?? get('db.statement'));
    r.parameters = text(get('db.statement.parameters') ?? get('db.query.parameters'));
    r.server = peer() || text(get('db.namespace') ?? get('db.name'));
    return;
  }
  if (r.kind === KIND.CLIENT) {
    const method = text(get('http.request.method') ?? get('http.method'));
    const url = text(get('url.full') ?? get('http.url'));
    if (method !== '' || url !== '') {
      r.cls = SpanClass.Http;
      r.method = method;
      r.url = url;
      r.server = peer();
      return;
    }
    const rpc = text(get('rpc.system'));
    if (rpc !== '') {
      r.cls = SpanClass.Http;
      r.system = rpc;
      r.method = text(get('rpc.service'));
      r.url = text(get('rpc.method'));
      r.server = peer();
      return;
    }
  }
  const messaging = text(get('messaging.system'));
  if (messaging !== '' || r.kind === KIND.PRODUCER) {
    r.cls = SpanClass.Messaging;
    r.system = messaging;
    r.server = text(get('messaging.destination.name') ?? get('messaging.destination') ?? get('celery.task_name'));
    return;
  }
  if (r.kind === KIND.CLIENT || (r.kind === KIND.INTERNAL && ASGI_EVENT.test(r.name))) {
    r.cls = SpanClass.Unknown;
    return;
  }
  r.cls = SpanClass.Own;
}
