/**
 * SpanRecords for trace-analysis tests, from short plain descriptions: ids are small numbers, times are ms,
 * attributes are classified exactly as recordFromView classifies those of a real span.
 */
import { attributeKey, classify, idKey, NO_ATTRIBUTES, SpanRecord, type ResourceInfo } from '../../src/analysis/span-record';

export type Kind = 'internal' | 'server' | 'client' | 'producer' | 'consumer';
const KINDS: Record<Kind, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

export interface RecordSpec {
  id: number;
  parent?: number;
  kind?: Kind;
  start: number;
  end: number;
  name?: string;
  attrs?: Record<string, string | number | boolean>;
  service?: string;
  /** Clock domain (host); defaults to the service. */
  clock?: string;
  version?: string;
  /** Route key for request spans. */
  route?: string;
  scope?: string;
  error?: boolean;
  resourceAttrs?: Record<string, string>;
}

const resources = new Map<string, ResourceInfo>();

function resourceOf(spec: RecordSpec): ResourceInfo {
  const service = spec.service ?? 'svc';
  const clock = spec.clock ?? service;
  const version = spec.version ?? '';
  const attributes = Object.entries(spec.resourceAttrs ?? {}).map(([k, v]) => attributeKey(k, v));
  const key = JSON.stringify([service, clock, version, attributes]);
  let r = resources.get(key);
  if (r === undefined) resources.set(key, (r = { service, clock, version, attributes }));
  return r;
}

export function rec(spec: RecordSpec): SpanRecord {
  const r = new SpanRecord();
  r.idLo = spec.id;
  r.key = idKey(0, spec.id);
  if (spec.parent !== undefined) {
    r.parentLo = spec.parent;
    r.parentKey = idKey(0, spec.parent);
  }
  r.kind = KINDS[spec.kind ?? 'internal'];
  r.startMs = spec.start;
  r.endMs = spec.end;
  r.name = spec.name ?? `span-${spec.id}`;
  r.scope = spec.scope ?? '';
  r.statusCode = spec.error === true ? 2 : 0;
  r.resource = resourceOf(spec);
  const attrs = spec.attrs ?? {};
  classify(r, (k) => attrs[k]);
  r.route = spec.route ?? (r.kind === 2 || r.kind === 5 ? `${r.resource.service} GET /r` : '');
  r.attributes = NO_ATTRIBUTES;
  return r;
}

/** A DB span with a statement (sqlite unless `system` says otherwise). */
export function db(
  id: number,
  parent: number,
  start: number,
  end: number,
  statement: string,
  extra: Partial<RecordSpec> & { system?: string } = {},
): SpanRecord {
  const { system, attrs, ...rest } = extra;
  return rec({
    id,
    parent,
    kind: 'client',
    start,
    end,
    name: statement.split(' ')[0],
    attrs: { 'db.system': system ?? 'sqlite', 'db.statement': statement, ...attrs },
    ...rest,
  });
}

/** An outbound HTTP client span. */
export function http(id: number, parent: number, start: number, end: number, url: string, extra: Partial<RecordSpec> = {}): SpanRecord {
  const { attrs, ...rest } = extra;
  return rec({ id, parent, kind: 'client', start, end, name: 'GET', attrs: { 'http.method': 'GET', 'http.url': url, ...attrs }, ...rest });
}

/** A SERVER request span. */
export function server(id: number, start: number, end: number, extra: Partial<RecordSpec> = {}): SpanRecord {
  return rec({ id, kind: 'server', start, end, name: 'GET /r', ...extra });
}
