/**
 * Differential tests of the hot-path wire reader/writer (TraceBatch) against the protobufjs reference codec.
 *
 * - Random valid ExportTraceServiceRequests (every AnyValue kind, nested arrays/kvlists, bytes, ids, 64-bit
 *   times, events, links, status, flags, dropped counts) are encoded with protobufjs; TraceBatch must accept
 *   them, count the same spans and resources, give the same per-span view, and write bytes protobufjs decodes
 *   to the same object (also after adding resource attributes, with scope_spans copied byte for byte).
 * - Mutated, truncated and random bytes: TraceBatch either accepts (and then protobufjs accepts too, with the
 *   same counts) or throws DecodeError, never anything else.
 * - Hand-made malformed messages get a DecodeError with a useful message.
 * - Real payloads of the OpenTelemetry JS SDK exporters, captured on the wire.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DecodeError } from './errors';
import {
  type KeyValueObj,
  attributes,
  bytesOf,
  mutate,
  mutation,
  optionalId,
  rawFields,
  resourceAttributes,
  runs,
  scalarOf,
  text,
  time,
  u32,
} from '../../test/support/otlp-arbitraries';
import { OtlpSink } from '../../test/support/otlp-sink';
import { TYPES, protoType } from './proto';
import { MAX_NESTING_DEPTH, TraceBatch, encodeSpans, type AttrValue, type SpanLocation } from './trace-batch';
import { encodeDoubleKeyValueField, encodeStringKeyValueField } from './wire';

const RequestType = protoType(TYPES.exportTraceRequest);
// ---- plain object model (protobufjs fromObject / toObject shape, camelCase) ------------------------------

interface SpanObj {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  traceState?: string;
  parentSpanId?: Uint8Array;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: KeyValueObj[];
  droppedAttributesCount?: number;
  events?: { timeUnixNano?: string; name?: string; attributes?: KeyValueObj[]; droppedAttributesCount?: number }[];
  droppedEventsCount?: number;
  links?: { traceId?: Uint8Array; spanId?: Uint8Array; traceState?: string; attributes?: KeyValueObj[]; droppedAttributesCount?: number; flags?: number }[];
  droppedLinksCount?: number;
  status?: { message?: string; code?: number };
}
interface ResourceSpansObj {
  resource?: { attributes?: KeyValueObj[]; droppedAttributesCount?: number };
  scopeSpans?: {
    scope?: { name?: string; version?: string; attributes?: KeyValueObj[]; droppedAttributesCount?: number };
    spans?: SpanObj[];
    schemaUrl?: string;
  }[];
  schemaUrl?: string;
}
interface RequestObj {
  resourceSpans?: ResourceSpansObj[];
}

// ---- generators ------------------------------------------------------------------------------------------

const spanArb: fc.Arbitrary<SpanObj> = fc.record(
  {
    traceId: optionalId(16),
    spanId: optionalId(8),
    traceState: text,
    parentSpanId: optionalId(8),
    flags: u32,
    name: text,
    kind: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.integer({ min: 6, max: 1000 }) }),
    startTimeUnixNano: time,
    endTimeUnixNano: time,
    attributes: attributes(5),
    droppedAttributesCount: u32,
    events: fc.array(fc.record({ timeUnixNano: time, name: text, attributes: attributes(2), droppedAttributesCount: u32 }, { requiredKeys: [] }), {
      maxLength: 2,
    }),
    droppedEventsCount: u32,
    links: fc.array(
      fc.record(
        { traceId: bytesOf(16), spanId: bytesOf(8), traceState: text, attributes: attributes(2), droppedAttributesCount: u32, flags: u32 },
        { requiredKeys: [] },
      ),
      { maxLength: 2 },
    ),
    droppedLinksCount: u32,
    status: fc.record({ message: text, code: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 3, max: 50 })) }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

const resourceSpansArb: fc.Arbitrary<ResourceSpansObj> = fc.record(
  {
    resource: fc.record({ attributes: resourceAttributes, droppedAttributesCount: u32 }, { requiredKeys: [] }),
    scopeSpans: fc.array(
      fc.record(
        {
          scope: fc.record({ name: text, version: text, attributes: attributes(2), droppedAttributesCount: u32 }, { requiredKeys: [] }),
          spans: fc.array(spanArb, { maxLength: 4 }),
          schemaUrl: text,
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    schemaUrl: text,
  },
  { requiredKeys: [] },
);

const requestArb: fc.Arbitrary<RequestObj> = fc.record({ resourceSpans: fc.array(resourceSpansArb, { maxLength: 4 }) }, { requiredKeys: [] });

function encodeRequest(obj: RequestObj): Uint8Array {
  return RequestType.encode(RequestType.fromObject(obj as Record<string, unknown>)).finish();
}

/** protobufjs decode to a comparable plain object (64-bit as strings, bytes base64, no defaults). */
function refDecode(bytes: Uint8Array): RequestObj {
  return RequestType.toObject(RequestType.decode(bytes), { longs: String, bytes: String, defaults: false }) as RequestObj;
}

function scopeSpansBytes(request: Uint8Array): Buffer[][] {
  return rawFields(request)
    .filter((f) => f.no === 1)
    .map((rs) =>
      rawFields(rs.content)
        .filter((f) => f.no === 2)
        .map((f) => Buffer.from(f.whole)),
    );
}

// ---- expected per-span view from the reference decode ----------------------------------------------------

interface ExpectedSpan {
  service: string;
  kind: number;
  name: string;
  statusCode: number;
  durationNs: number;
  traceIdHex: string;
  spanIdHex: string;
  hasParent: boolean;
  resourceIndex: number;
  attributes: [string, AttrValue | undefined][];
}

const b64hex = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('hex') : '');

function expectedSpans(ref: RequestObj): ExpectedSpan[] {
  const out: ExpectedSpan[] = [];
  (ref.resourceSpans ?? []).forEach((rs, resourceIndex) => {
    const svc = (rs.resource?.attributes ?? []).find((a) => a.key === 'service.name')?.value?.stringValue;
    const service = svc === undefined || svc === '' ? 'unknown_service' : svc;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const start = BigInt(s.startTimeUnixNano ?? '0');
        const end = BigInt(s.endTimeUnixNano ?? '0');
        out.push({
          service,
          kind: s.kind ?? 0,
          name: s.name ?? '',
          statusCode: s.status?.code ?? 0,
          durationNs: end > start ? Number(end - start) : 0,
          traceIdHex: b64hex(s.traceId),
          spanIdHex: b64hex(s.spanId),
          hasParent: b64hex(s.parentSpanId) !== '',
          resourceIndex,
          attributes: (s.attributes ?? []).map((a) => [a.key, scalarOf(a.value)]),
        });
      }
    }
  });
  return out;
}

function viewSpans(batch: TraceBatch, keysPerSpan: string[][]): ExpectedSpan[] {
  const out: ExpectedSpan[] = [];
  let i = 0;
  batch.forEachSpan((s) => {
    const keys = keysPerSpan[i++] ?? [];
    out.push({
      service: s.service,
      kind: s.kind,
      name: s.name,
      statusCode: s.statusCode,
      durationNs: s.durationNs,
      traceIdHex: s.traceIdHex(),
      spanIdHex: s.spanIdHex(),
      hasParent: s.hasParent,
      resourceIndex: s.resourceIndex,
      attributes: keys.map((k) => [k, s.attribute(k)]),
    });
  });
  return out;
}

// ---- the differential properties ------------------------------------------------------------------------

describe('TraceBatch vs protobufjs (differential)', function () {
  this.timeout(120_000);

  it('accepts every valid request, with the same span and resource counts, and re-encodes it losslessly', () => {
    fc.assert(
      fc.property(requestArb, (obj) => {
        const bytes = encodeRequest(obj);
        const ref = refDecode(bytes);
        const batch = TraceBatch.decode(bytes);
        const spans = (ref.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? []));
        expect(batch.spanCount).to.equal(spans.length);
        expect(batch.resourceCount).to.equal((ref.resourceSpans ?? []).length);
        (ref.resourceSpans ?? []).forEach((rs, i) => {
          expect(batch.resourceSpanCount(i)).to.equal((rs.scopeSpans ?? []).reduce((n, ss) => n + (ss.spans ?? []).length, 0));
        });
        expect(refDecode(batch.encode())).to.deep.equal(ref);
        expect(batch.byteLength).to.equal(batch.encode().length);
      }),
      { numRuns: runs(300) },
    );
  });

  it('gives every span the same service, kind, name, status, duration, ids and scalar attributes as protobufjs', () => {
    fc.assert(
      fc.property(requestArb, fc.array(text, { maxLength: 2 }), (obj, absentKeys) => {
        const bytes = encodeRequest(obj);
        const ref = refDecode(bytes);
        const want = expectedSpans(ref);
        // Ask for every key the span has plus a few it (probably) lacks.
        const keys = want.map((w) => [...w.attributes.map(([k]) => k), ...absentKeys.filter((k) => !w.attributes.some(([kk]) => kk === k))]);
        for (const [i, w] of want.entries()) for (const k of keys[i]!.slice(w.attributes.length)) w.attributes.push([k, undefined]);
        const got = viewSpans(TraceBatch.decode(bytes), keys);
        expect(got).to.deep.equal(want);
      }),
      { numRuns: runs(300) },
    );
  });

  it('gives every span the scope name, id words, parent id and attribute lists protobufjs gives', () => {
    const hexWords = (hex: string, words: number): number[] =>
      Array.from({ length: words }, (_, i) => (hex.length >= 8 * (i + 1) ? parseInt(hex.slice(8 * i, 8 * i + 8), 16) : 0));
    fc.assert(
      fc.property(requestArb, (obj) => {
        const bytes = encodeRequest(obj);
        const ref = refDecode(bytes);
        const want: unknown[] = [];
        for (const rs of ref.resourceSpans ?? []) {
          const resource = (rs.resource?.attributes ?? []).flatMap((a) => (scalarOf(a.value) === undefined ? [] : [[a.key ?? '', scalarOf(a.value)]]));
          for (const ss of rs.scopeSpans ?? []) {
            for (const sp of ss.spans ?? []) {
              const trace = b64hex(sp.traceId);
              const span = b64hex(sp.spanId);
              const parent = b64hex(sp.parentSpanId);
              want.push({
                scope: ss.scope?.name ?? '',
                mask: (trace ? 1 : 0) | (span ? 2 : 0) | (parent ? 4 : 0),
                words: [...hexWords(trace, 4), ...hexWords(span, 2), ...hexWords(parent, 2)],
                attributes: (sp.attributes ?? []).flatMap((a) => (scalarOf(a.value) === undefined ? [] : [[a.key ?? '', scalarOf(a.value)]])),
                resource,
              });
            }
          }
        }
        const got: unknown[] = [];
        const words = new Uint32Array(8);
        TraceBatch.decode(bytes).forEachSpan((s) => {
          const attributes: [string, AttrValue][] = [];
          const resource: [string, AttrValue][] = [];
          s.forEachAttribute((k, v) => void attributes.push([k, v]));
          s.forEachResourceAttribute((k, v) => void resource.push([k, v]));
          const mask = s.readIdWords(words);
          got.push({ scope: s.scopeName, mask, words: [...words], attributes, resource });
        });
        expect(got).to.deep.equal(want);
      }),
      { numRuns: runs(300) },
    );
  });

  it('forEachAttribute and forEachResourceAttribute stop when the visitor returns false', () => {
    const bytes = encodeRequest({
      resourceSpans: [
        {
          resource: { attributes: ['a', 'b', 'c'].map((key) => ({ key, value: { stringValue: key } })) },
          scopeSpans: [{ spans: [{ name: 's', attributes: ['x', 'y', 'z'].map((key) => ({ key, value: { intValue: '1' } })) }] }],
        },
      ],
    });
    const keys: string[] = [];
    TraceBatch.decode(bytes).forEachSpan((s) => {
      s.forEachAttribute((k) => (keys.push(k), k !== 'y'));
      s.forEachResourceAttribute((k) => (keys.push(k), k !== 'a'));
    });
    expect(keys).to.deep.equal(['x', 'y', 'a']);
  });

  it('encodeSpans: any subset of spans, with their resources (added attributes too) and scopes, and the extra attributes on each span', () => {
    fc.assert(
      fc.property(requestArb, fc.array(fc.boolean(), { maxLength: 200 }), fc.boolean(), (obj, picks, addAttr) => {
        const bytes = encodeRequest(obj);
        const ref = refDecode(bytes);
        const batch = TraceBatch.decode(bytes);
        if (addAttr && batch.resourceCount > 0) batch.addResourceAttributes(0, [['k8s.pod.name', 'pod-1']]);
        const picked: SpanLocation[] = [];
        let i = 0;
        batch.forEachSpan((s) => {
          if (picks[i++ % Math.max(1, picks.length)] === true) picked.push(s.location());
        });
        const extra = Buffer.concat([
          encodeDoubleKeyValueField(9, 'routelens.sampling.weight', 2.5),
          encodeStringKeyValueField(9, 'routelens.capture.reason', 'slow'),
        ]);
        const got = refDecode(encodeSpans(picked, extra));
        const want: RequestObj = { resourceSpans: [] };
        let j = 0;
        (ref.resourceSpans ?? []).forEach((rs, ri) => {
          const scopes = (rs.scopeSpans ?? []).flatMap((ss) => {
            const spans = (ss.spans ?? []).filter(() => picks[j++ % Math.max(1, picks.length)] === true);
            if (spans.length === 0) return [];
            const added = spans.map((sp) => ({
              ...sp,
              attributes: [
                ...(sp.attributes ?? []),
                { key: 'routelens.sampling.weight', value: { doubleValue: 2.5 } },
                { key: 'routelens.capture.reason', value: { stringValue: 'slow' } },
              ],
            }));
            return [{ ...ss, spans: added }];
          });
          if (scopes.length === 0) return;
          const resource =
            addAttr && ri === 0
              ? { ...(rs.resource ?? {}), attributes: [...(rs.resource?.attributes ?? []), { key: 'k8s.pod.name', value: { stringValue: 'pod-1' } }] }
              : rs.resource;
          want.resourceSpans!.push({ ...rs, ...(resource === undefined ? {} : { resource }), scopeSpans: scopes });
        });
        expect(got).to.deep.equal(refDecode(encodeRequest(want)));
      }),
      { numRuns: runs(300) },
    );
  });

  it('reads the resource attributes protobufjs reads', () => {
    fc.assert(
      fc.property(requestArb, (obj) => {
        const bytes = encodeRequest(obj);
        const ref = refDecode(bytes);
        const batch = TraceBatch.decode(bytes);
        (ref.resourceSpans ?? []).forEach((rs, i) => {
          for (const a of rs.resource?.attributes ?? []) {
            expect(batch.resourceAttribute(i, a.key), a.key).to.deep.equal(scalarOf(a.value));
            expect(batch.hasResourceAttribute(i, a.key)).to.equal(true);
          }
        });
      }),
      { numRuns: runs(200) },
    );
  });

  it('addResourceAttributes + encode: the original resource plus exactly the added attributes, scope_spans byte-identical', () => {
    const added = fc.array(
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 10 }).map((k) => `k8s.${k}`),
        text,
      ),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(
        requestArb.filter((r) => (r.resourceSpans ?? []).length > 0),
        fc.array(fc.tuple(fc.nat(), added), { minLength: 1, maxLength: 4 }),
        (obj, additions) => {
          const bytes = encodeRequest(obj);
          const ref = refDecode(bytes);
          const n = (ref.resourceSpans ?? []).length;
          const batch = TraceBatch.decode(bytes);
          const copy = batch.clone();
          const perResource = new Map<number, [string, string][]>();
          for (const [r, attrs] of additions) {
            const i = r % n;
            batch.addResourceAttributes(i, attrs);
            perResource.set(i, [...(perResource.get(i) ?? []), ...attrs]);
          }
          const out = batch.encode();
          const want = structuredClone(ref);
          for (const [i, attrs] of perResource) {
            const rs = want.resourceSpans![i]!;
            rs.resource = {
              ...(rs.resource ?? {}),
              attributes: [...(rs.resource?.attributes ?? []), ...attrs.map(([key, v]) => ({ key, value: { stringValue: v } }))],
            };
          }
          expect(refDecode(out)).to.deep.equal(want);
          expect(scopeSpansBytes(out)).to.deep.equal(scopeSpansBytes(bytes));
          // Re-decoding the written bytes gives the same batch, and the added attributes are readable.
          const again = TraceBatch.decode(out);
          expect(again.spanCount).to.equal(batch.spanCount);
          for (const [i, attrs] of perResource) {
            for (const [k, v] of attrs) {
              const firstOriginal = ref.resourceSpans![i]!.resource?.attributes?.find((a) => a.key === k);
              const firstAdded = attrs.find(([kk]) => kk === k)![1];
              const expected = firstOriginal !== undefined ? scalarOf(firstOriginal.value) : firstAdded;
              expect(batch.resourceAttribute(i, k)).to.deep.equal(expected);
              expect(again.resourceAttribute(i, k)).to.deep.equal(expected);
              expect(batch.hasResourceAttribute(i, k)).to.equal(true);
              void v;
            }
          }
          // The clone taken before is unaffected (fan-out isolation).
          expect(refDecode(copy.encode())).to.deep.equal(ref);
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it('setResourceAttributes / addResourceAttributes in any order: encode, encodeParts, resourceAttribute and span views agree with a model', () => {
    const keyOf = fc.constantFrom('service.name', 'k', 'http.route', 'k8s.pod.name', 'extra');
    const op = fc.record({
      kind: fc.constantFrom('add' as const, 'set' as const),
      at: fc.nat(),
      attrs: fc.uniqueArray(fc.tuple(keyOf, fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 3, selector: ([k]) => k }),
    });
    fc.assert(
      fc.property(
        requestArb.filter((r) => (r.resourceSpans ?? []).length > 0),
        fc.array(op, { minLength: 1, maxLength: 5 }),
        (obj, ops) => {
          const bytes = encodeRequest(obj);
          const ref = refDecode(bytes);
          const n = ref.resourceSpans!.length;
          const batch = TraceBatch.decode(bytes);
          const model = ref.resourceSpans!.map((rs) => ({ orig: rs.resource?.attributes ?? [], replaced: new Set<string>(), extra: [] as KeyValueObj[] }));
          for (const o of ops) {
            const i = o.at % n;
            const m = model[i]!;
            const kvs = o.attrs.map(([key, v]) => ({ key, value: { stringValue: v } }));
            if (o.kind === 'add') {
              batch.addResourceAttributes(i, o.attrs);
              m.extra.push(...kvs);
            } else {
              batch.setResourceAttributes(i, o.attrs);
              m.extra = m.extra.filter((kv) => !o.attrs.some(([k]) => k === kv.key));
              for (const [k] of o.attrs) m.replaced.add(k);
              m.extra.push(...kvs);
            }
          }
          const want = structuredClone(ref);
          model.forEach((m, i) => {
            const rs = want.resourceSpans![i]!;
            if (m.extra.length === 0) return; // untouched resources are copied as they are
            rs.resource = { ...(rs.resource ?? {}), attributes: [...m.orig.filter((a) => !m.replaced.has(a.key)), ...m.extra] };
          });
          // The parts exporters write one after another are the encoding, split.
          const parts = batch.encodeParts();
          const length = batch.byteLength;
          const out = batch.encode();
          expect(Buffer.concat(parts).equals(out)).to.equal(true);
          expect(length).to.equal(out.length);
          expect(refDecode(out)).to.deep.equal(want);
          expect(scopeSpansBytes(out)).to.deep.equal(scopeSpansBytes(bytes));
          const lookup = (i: number, key: string): AttrValue | undefined => {
            const m = model[i]!;
            const orig = m.replaced.has(key) ? undefined : m.orig.find((a) => a.key === key);
            if (orig !== undefined) return scalarOf(orig.value);
            return scalarOf(m.extra.find((a) => a.key === key)?.value);
          };
          for (let i = 0; i < n; i++)
            for (const k of ['service.name', 'k', 'http.route', 'k8s.pod.name', 'extra'])
              expect(batch.resourceAttribute(i, k), `resource ${i} ${k}`).to.deep.equal(lookup(i, k));
          const services: [number, string][] = [];
          batch.forEachSpan((s) => services.push([s.resourceIndex, s.service]));
          for (const [i, svc] of services) {
            const v = lookup(i, 'service.name');
            expect(svc).to.equal(typeof v === 'string' && v !== '' ? v : 'unknown_service');
          }
          // The re-encoded bytes decode to a batch that reads the same.
          const again = TraceBatch.decode(out);
          for (let i = 0; i < n; i++) expect(again.resourceAttribute(i, 'service.name')).to.deep.equal(lookup(i, 'service.name'));
        },
      ),
      { numRuns: runs(200) },
    );
  });

  it('concat and split keep every resource and span in order', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 8 }), (objs, max) => {
        const batches = objs.map((o) => TraceBatch.decode(encodeRequest(o)));
        const all = objs.flatMap((o) => refDecode(encodeRequest(o)).resourceSpans ?? []);
        const joined = TraceBatch.concat(batches);
        expect(refDecode(joined.encode()).resourceSpans ?? []).to.deep.equal(all);
        const parts = joined.split(max);
        expect(parts.reduce((n, p) => n + p.spanCount, 0)).to.equal(joined.spanCount);
        expect(parts.flatMap((p) => refDecode(p.encode()).resourceSpans ?? [])).to.deep.equal(all);
        // Whole ResourceSpans are never cut: a part over the limit holds only one resource with spans.
        for (const p of parts) {
          let withSpans = 0;
          for (let i = 0; i < p.resourceCount; i++) if (p.resourceSpanCount(i) > 0) withSpans++;
          expect(p.spanCount <= max || withSpans === 1, `part of ${p.spanCount} spans in ${withSpans} resources`).to.equal(true);
        }
      }),
      { numRuns: runs(100) },
    );
  });
});

// ---- malformed input ------------------------------------------------------------------------------------

/** TraceBatch either accepts (and protobufjs agrees on the content) or throws DecodeError; nothing else. */
function checkRobust(bytes: Uint8Array): 'accepted' | 'rejected' {
  let batch: TraceBatch;
  try {
    batch = TraceBatch.decode(bytes);
  } catch (err) {
    if (!(err instanceof DecodeError))
      throw new Error(`decode threw ${String(err)} (not a DecodeError) for ${Buffer.from(bytes).toString('hex')}`, { cause: err });
    expect(err.message).to.be.a('string').and.not.equal('');
    return 'rejected';
  }
  let ref: RequestObj;
  try {
    ref = refDecode(bytes);
  } catch (err) {
    throw new Error(`TraceBatch accepted what protobufjs rejects (${String(err)}): ${Buffer.from(bytes).toString('hex')}`, { cause: err });
  }
  expect(batch.resourceCount).to.equal((ref.resourceSpans ?? []).length);
  expect(batch.spanCount).to.equal((ref.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? [])).length);
  // Everything a processor or the analyzer may do with an accepted batch must work.
  let n = 0;
  batch.forEachSpan((s) => {
    n++;
    void s.name;
    void s.traceIdHex();
    void s.spanIdHex();
    void s.attribute('http.route');
    void s.resourceAttribute('service.name');
  });
  expect(n).to.equal(batch.spanCount);
  if (batch.resourceCount > 0) {
    batch.addResourceAttributes(0, [['k8s.pod.name', 'p']]);
    const out = refDecode(batch.encode());
    expect((out.resourceSpans ?? []).length).to.equal(batch.resourceCount);
  }
  return 'accepted';
}

describe('TraceBatch on malformed input', function () {
  this.timeout(120_000);

  it('random bytes: accepted consistently with protobufjs or DecodeError', () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        outcomes[checkRobust(bytes)]++;
      }),
      { numRuns: runs(6000) },
    );
    expect(outcomes.rejected).to.be.greaterThan(0);
  });

  it('random bytes framed as ResourceSpans: accepted consistently with protobufjs or DecodeError', () => {
    // A plausible outer frame pushes the random content into the nested validators.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(1, 2), (inner, field) => {
        const scope = Buffer.concat([Buffer.from([(field << 3) | 2, inner.length]), inner]);
        const rs = Buffer.concat([Buffer.from([0x0a, scope.length]), scope]);
        checkRobust(rs.length < 128 ? rs : inner);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('mutated valid requests (flips, truncations, insertions, deletions): accepted consistently or DecodeError', () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(requestArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (obj, ms) => {
        outcomes[checkRobust(mutate(encodeRequest(obj), ms))]++;
      }),
      { numRuns: runs(3000) },
    );
    expect(outcomes.rejected).to.be.greaterThan(0);
    expect(outcomes.accepted).to.be.greaterThan(0);
  });

  it('every truncation of a valid request is a DecodeError or a shorter valid message', () => {
    fc.assert(
      fc.property(
        requestArb.filter((r) => (r.resourceSpans ?? []).length > 0),
        (obj) => {
          const bytes = encodeRequest(obj);
          for (let n = 0; n < bytes.length; n++) checkRobust(bytes.subarray(0, n));
        },
      ),
      { numRuns: runs(15) },
    );
  });

  // ---- hand-made cases ----

  const span = (fields: Record<string, unknown>): Uint8Array =>
    encodeRequest({
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'x', ...fields } as SpanObj] }] }],
    });

  function expectDecodeError(bytes: Uint8Array, message: RegExp): void {
    let caught: unknown;
    try {
      TraceBatch.decode(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught, 'decode should throw').to.be.instanceOf(DecodeError);
    expect((caught as DecodeError).message).to.match(message);
  }

  /** Wrap Span content bytes in ScopeSpans / ResourceSpans / request frames. */
  function frameSpan(spanContent: Uint8Array): Uint8Array {
    const lenField = (no: number, content: Uint8Array): Buffer => {
      const w = protobuf.Writer.create();
      w.uint32((no << 3) | 2).bytes(content);
      return Buffer.from(w.finish());
    };
    return lenField(1, lenField(2, lenField(2, spanContent)));
  }

  it('over-long varints are a DecodeError', () => {
    expectDecodeError(Buffer.alloc(11, 0x80), /varint/);
    expectDecodeError(Buffer.concat([Buffer.from([0x0a]), Buffer.alloc(11, 0xff)]), /varint/);
    expectDecodeError(Buffer.from([0x0a, 0x80]), /truncated varint/);
    // inside a span: kind (field 6) with 11 continuation bytes
    expectDecodeError(frameSpan(Buffer.concat([Buffer.from([0x30]), Buffer.alloc(10, 0x80), Buffer.from([0x01])])), /varint longer than 10 bytes/);
  });

  it('wire type mismatches are a DecodeError naming the message and field', () => {
    expectDecodeError(Buffer.from([0x08, 0x01]), /resource_spans has wire type 0, expected 2/);
    expectDecodeError(frameSpan(Buffer.from([0x28, 0x01])), /Span field 5 has wire type 0, expected 2/); // name as varint
    expectDecodeError(frameSpan(Buffer.from([0x32, 0x00])), /Span field 6 has wire type 2, expected 0/); // kind as LEN
    expectDecodeError(frameSpan(Buffer.from([0x3d, 0, 0, 0, 0])), /Span field 7 has wire type 5, expected 1/); // start time as fixed32
    expectDecodeError(frameSpan(Buffer.from([0x0b])), /wire type 3/); // a group start
    expectDecodeError(frameSpan(Buffer.from([0xa7, 0x01])), /invalid wire type 7/); // unknown field 20, wire type 7
  });

  it('length prefixes past the end are a DecodeError', () => {
    expectDecodeError(Buffer.from([0x0a, 0x05, 0x12, 0x00]), /length prefix points past the end/);
    const good = span({});
    // Enlarge the innermost span length by one byte: the span now overruns its scope.
    const bad = Buffer.from(frameSpan(Buffer.from([0x2a, 0x05, 0x61])));
    expectDecodeError(bad, /past the end/);
    expect(() => TraceBatch.decode(good)).to.not.throw();
    expectDecodeError(good.subarray(0, good.length - 1), /past the end|truncated/);
  });

  it(`AnyValue nested deeper than the limit (${MAX_NESTING_DEPTH} message levels) is a DecodeError, exactly where protobufjs gives up`, () => {
    const w = (no: number, content: Uint8Array): Buffer =>
      Buffer.from(
        protobuf.Writer.create()
          .uint32((no << 3) | 2)
          .bytes(content)
          .finish(),
      );
    /** AnyValue content nested `levels` deep, alternating arrays and kvlists. */
    const nest = (levels: number): Buffer => {
      let v: Buffer = w(1, Buffer.from('leaf'));
      for (let i = 0; i < levels; i++) v = i % 2 === 0 ? w(5, w(1, v)) : w(6, w(1, Buffer.concat([w(1, Buffer.from('k')), w(2, v)])));
      return v;
    };
    const kv = (levels: number): Buffer => Buffer.concat([w(1, Buffer.from('deep')), w(2, nest(levels))]);
    const inSpan = (levels: number): Uint8Array => frameSpan(w(9, kv(levels)));
    const inResource = (levels: number): Uint8Array => w(1, w(1, w(1, kv(levels))));
    let accepted = 0;
    let rejected = 0;
    for (const build of [inSpan, inResource]) {
      for (let levels = 30; levels < 70; levels++) {
        const bytes = build(levels);
        let refOk = true;
        try {
          refDecode(bytes);
        } catch (err) {
          expect(String(err)).to.match(/maximum nesting depth/);
          refOk = false;
        }
        if (refOk) {
          expect(TraceBatch.decode(bytes).resourceCount, `${levels} levels`).to.equal(1);
          accepted++;
        } else {
          expectDecodeError(bytes, new RegExp(`nesting deeper than ${MAX_NESTING_DEPTH} levels`));
          rejected++;
        }
      }
    }
    expect(accepted).to.be.greaterThan(10);
    expect(rejected).to.be.greaterThan(10);
  });

  it('ids of the wrong length are a DecodeError naming the field and its length', () => {
    expectDecodeError(span({ traceId: Buffer.alloc(15, 1) }), /trace_id is 15 bytes, expected 16/);
    expectDecodeError(span({ traceId: Buffer.alloc(17, 1) }), /trace_id is 17 bytes, expected 16/);
    expectDecodeError(span({ spanId: Buffer.alloc(4, 1) }), /span_id is 4 bytes, expected 8/);
    expectDecodeError(span({ parentSpanId: Buffer.alloc(16, 1) }), /parent_span_id is 16 bytes, expected 8/);
    expectDecodeError(span({ links: [{ traceId: Buffer.alloc(8, 1), spanId: Buffer.alloc(8, 1) }] }), /Span.Link trace_id is 8 bytes, expected 16/);
    expectDecodeError(span({ links: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(3, 1) }] }), /Span.Link span_id is 3 bytes, expected 8/);
    // An id whose length is encoded in more bytes than needed (0x90 0x00 = 16) is valid protobuf: read as protobufjs reads it.
    const traceId = Buffer.alloc(16, 7);
    const longLength = frameSpan(Buffer.concat([Buffer.from([0x0a, 0x90, 0x00]), traceId, Buffer.from([0x12, 0x88, 0x00]), Buffer.alloc(8, 9)]));
    const refTraceId: unknown = refDecode(longLength).resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.traceId;
    expect(typeof refTraceId === 'string' ? Buffer.from(refTraceId, 'base64') : Buffer.from(refTraceId as Uint8Array)).to.deep.equal(traceId);
    TraceBatch.decode(longLength).forEachSpan((s) => {
      expect(s.traceIdHex()).to.equal(traceId.toString('hex'));
      expect(s.spanIdHex()).to.equal('09'.repeat(8));
      const ids = new Uint8Array(24);
      expect(s.copyIds(ids)).to.equal(true);
      expect(Buffer.from(ids).toString('hex')).to.equal(s.traceIdHex() + s.spanIdHex());
    });
    // Empty ids are allowed (proto3 default), and read back as ''.
    const empty = TraceBatch.decode(span({ traceId: new Uint8Array(0), spanId: new Uint8Array(0), parentSpanId: new Uint8Array(0) }));
    empty.forEachSpan((s) => {
      expect(s.traceIdHex()).to.equal('');
      expect(s.spanIdHex()).to.equal('');
      expect(s.hasParent).to.equal(false);
      const ids = new Uint8Array(24).fill(0xab);
      expect(s.copyIds(ids)).to.equal(false);
      expect(ids.every((b) => b === 0xab)).to.equal(true);
    });
  });

  it('field number 0, tags of 2^32 or more and non-canonical 32-bit varints are a DecodeError', () => {
    expectDecodeError(Buffer.from([0x02, 0x00]), /field number 0/);
    expectDecodeError(frameSpan(Buffer.from([0x02, 0x00])), /field number 0/);
    // tag varint 2^32 + 10: protobufjs reads it as field 1 (low 32 bits); it is not a valid tag.
    expectDecodeError(frameSpan(Buffer.from([0x8a, 0x80, 0x80, 0x80, 0x10, 0x00])), /exceeds 32 bits/);
    // a 6-byte tag / length: protobufjs skips 10 bytes for it and would read different fields than we do.
    expectDecodeError(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x81, 0x00, 0x00]), /longer than 5 bytes/);
    expectDecodeError(Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), /longer than 5 bytes/);
    // kind (an enum) as a 6-byte varint is refused; as the canonical 10-byte negative it is accepted, like protobufjs.
    const ids = Buffer.concat([Buffer.from([0x0a, 16]), Buffer.alloc(16, 1), Buffer.from([0x12, 8]), Buffer.alloc(8, 2)]);
    expectDecodeError(frameSpan(Buffer.concat([ids, Buffer.from([0x30, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00])])), /6-byte varint/);
    const negative = frameSpan(Buffer.concat([ids, Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]));
    expect(refDecode(negative).resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.kind).to.equal(-1);
    expect(TraceBatch.decode(negative).spanCount).to.equal(1);
    // int_value is 64-bit: any varint up to 10 bytes is fine there.
    const attr = Buffer.from([0x4a, 0x0b, 0x0a, 0x01, 0x6b, 0x12, 0x06, 0x18, 0x81, 0x80, 0x80, 0x80, 0x01]);
    const withInt = frameSpan(Buffer.concat([ids, attr]));
    expect(refDecode(withInt).resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.attributes?.[0]?.value?.intValue).to.equal(String(2 ** 28 + 1));
    TraceBatch.decode(withInt).forEachSpan((s) => expect(s.attribute('k')).to.equal(2 ** 28 + 1));
  });

  it('every single-byte substitution in a span with ids, a name and one attribute of each scalar type: accepted consistently or DecodeError', () => {
    // The span validator reads ids, names and short scalar attributes inline (byte by byte, without calls):
    // each byte of such a span, replaced by every other value, must still be judged as protobufjs judges it.
    const bytes = span({
      name: 'GET /users/{id}',
      parentSpanId: Buffer.alloc(8, 3),
      attributes: [
        { key: 'http.route', value: { stringValue: '/users/{id}' } },
        { key: 'ok', value: { boolValue: true } },
        { key: 'n', value: { intValue: 300 } },
        { key: 'neg', value: { intValue: -2 } },
        { key: 'd', value: { doubleValue: 0.25 } },
        { key: 'empty', value: { stringValue: '' } },
      ],
    });
    const outcomes = { accepted: 0, rejected: 0 };
    const b = Buffer.from(bytes);
    for (let at = 0; at < b.length; at++) {
      const original = b[at] as number;
      for (let v = 0; v < 256; v++) {
        if (v === original) continue;
        b[at] = v;
        outcomes[checkRobust(b)]++;
      }
      b[at] = original;
    }
    expect(outcomes.accepted).to.be.greaterThan(0);
    expect(outcomes.rejected).to.be.greaterThan(0);
  });

  it('accepts a Status carrying the pre-1.0 deprecated_code (reserved field 1, a varint), as protobufjs does', () => {
    const status = Buffer.from([0x08, 0x02, 0x18, 0x02]); // deprecated_code=2, code=ERROR
    const content = Buffer.concat([
      Buffer.from([0x0a, 16]),
      Buffer.alloc(16, 1),
      Buffer.from([0x12, 8]),
      Buffer.alloc(8, 2),
      Buffer.from([0x7a, status.length]),
      status,
    ]);
    const bytes = frameSpan(content);
    expect(refDecode(bytes).resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.status?.code).to.equal(2);
    const batch = TraceBatch.decode(bytes);
    let code = -1;
    batch.forEachSpan((s) => (code = s.statusCode));
    expect(code).to.equal(2);
  });
});

// ---- real SDK payloads ------------------------------------------------------------------------------------

describe('TraceBatch on real OpenTelemetry JS SDK payloads', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  before(async () => {
    sink = await new OtlpSink().start();
  });
  after(async () => {
    await sink?.stop();
  });

  async function emit(exporter: SpanExporter): Promise<void> {
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-diff', 'host.cores': 8, 'feature.flags': ['a', 'b'] }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('diff-test', '0.0.1');
    const t0 = 1_700_000_000;
    const parent = tracer.startSpan('GET /items/{id}', {
      kind: SpanKind.SERVER,
      startTime: [t0, 5],
      attributes: {
        'http.route': '/items/{id}',
        'http.response.status_code': 503,
        ratio: 0.25,
        ok: false,
        big: 2 ** 53 - 1,
        neg: -7,
        list: [1, 2],
        words: ['x', 'y'],
      },
    });
    parent.addEvent('exception', { 'exception.message': 'boom' }, [t0, 10]);
    const child = tracer.startSpan(
      'SELECT',
      { kind: SpanKind.CLIENT, startTime: [t0, 100], links: [{ context: parent.spanContext(), attributes: { why: 'test' } }] },
      trace.setSpan(context.active(), parent),
    );
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'locked' });
    child.end([t0 + 1, 7]);
    parent.setStatus({ code: SpanStatusCode.OK });
    parent.end([t0 + 3, 999_999_999]);
    await provider.forceFlush();
    await provider.shutdown();
  }

  it('decodes what the gRPC and HTTP/protobuf exporters send exactly as protobufjs does', async () => {
    sink.clear();
    await emit(new ProtoExporter({ url: `${sink.httpEndpoint}/v1/traces` }));
    await emit(new GrpcExporter({ url: `http://${sink.grpcEndpoint}` }));
    const bodies = sink.requests.filter((r) => r.path === '/v1/traces').map((r) => r.body);
    expect(sink.requests.map((r) => r.transport).sort()).to.include.members(['grpc', 'http']);
    let spans = 0;
    for (const body of bodies) {
      const ref = refDecode(body);
      const batch = TraceBatch.decode(body);
      spans += batch.spanCount;
      expect(refDecode(batch.encode())).to.deep.equal(ref);
      const want = expectedSpans(ref);
      const got = viewSpans(
        batch,
        want.map((w) => w.attributes.map(([k]) => k)),
      );
      expect(got).to.deep.equal(want);
      expect(got.every((g) => g.service === 'sdk-diff' && g.traceIdHex.length === 32 && g.spanIdHex.length === 16)).to.equal(true);
      batch.addResourceAttributes(0, [['k8s.namespace.name', 'default']]);
      const enriched = refDecode(batch.encode());
      expect(enriched.resourceSpans?.[0]?.resource?.attributes?.at(-1)).to.deep.equal({ key: 'k8s.namespace.name', value: { stringValue: 'default' } });
      expect(scopeSpansBytes(batch.encode())).to.deep.equal(scopeSpansBytes(body));
    }
    expect(spans).to.equal(4); // two spans per exporter
    const server = bodies
      .map((b) => expectedSpans(refDecode(b)))
      .flat()
      .find((s) => s.name === 'GET /items/{id}');
    expect(server?.durationNs).to.equal(3 * 1e9 + 999_999_999 - 5);
    expect(server?.kind).to.equal(2);
  });
});
