/**
 * Splitting a trace request by span (TraceBatch.partitionBySpan), checked against protobufjs: random requests
 * (several resources and scopes, spans with shared and absent trace ids, resource attributes added by
 * a processor) are split by a function of the trace id; each part must decode (protobufjs) to the request with
 * only that destination's spans, resources, scopes and their other fields unchanged and in order.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { attributes, bytesOf, runs, text, time } from '../../test/support/otlp-arbitraries';
import { TYPES, protoType } from './proto';
import { TraceBatch, type TraceIdRef } from './trace-batch';

const RequestType = protoType(TYPES.exportTraceRequest);

interface SpanObj {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  name?: string;
  startTimeUnixNano?: string;
}
interface ScopeSpansObj {
  scope?: { name?: string };
  spans?: SpanObj[];
  schemaUrl?: string;
}
interface ResourceSpansObj {
  resource?: { attributes?: unknown[] };
  scopeSpans?: ScopeSpansObj[];
  schemaUrl?: string;
}
interface RequestObj {
  resourceSpans?: ResourceSpansObj[];
}

// A few trace ids so that traces repeat across spans, resources and requests; also absent ids.
const traceIdArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...[1, 2, 3, 4, 5].map((k) => new Uint8Array(16).fill(k))) },
  { weight: 3, arbitrary: bytesOf(16) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const spanArb: fc.Arbitrary<SpanObj> = fc.record({ traceId: traceIdArb, spanId: bytesOf(8), name: text, startTimeUnixNano: time }, { requiredKeys: [] });
const scopeArb: fc.Arbitrary<ScopeSpansObj> = fc.record(
  { scope: fc.record({ name: text }, { requiredKeys: [] }), spans: fc.array(spanArb, { maxLength: 6 }), schemaUrl: text },
  { requiredKeys: [] },
);
const resourceArb: fc.Arbitrary<ResourceSpansObj> = fc.record(
  { resource: fc.record({ attributes: attributes(3) }, { requiredKeys: [] }), scopeSpans: fc.array(scopeArb, { maxLength: 3 }), schemaUrl: text },
  { requiredKeys: [] },
);
const requestArb: fc.Arbitrary<RequestObj> = fc.record({ resourceSpans: fc.array(resourceArb, { maxLength: 4 }) }, { requiredKeys: [] });

const encode = (o: RequestObj): Uint8Array => RequestType.encode(RequestType.fromObject(o as Record<string, unknown>)).finish();
const decode = (b: Uint8Array): RequestObj => RequestType.toObject(RequestType.decode(b), { longs: String, bytes: String, defaults: false }) as RequestObj;

/** The destination of a trace id: a function of its bytes only (as the exporter's ring is). */
function ownerOfBytes(id: Uint8Array, n: number): number {
  let h = 7;
  for (const b of id) h = (h * 31 + b) >>> 0;
  return h % n;
}
const ownerOfRef =
  (n: number) =>
  (r: TraceIdRef): number =>
    ownerOfBytes(r.buf.subarray(r.at, r.at + r.len), n);
const ownerOfB64 = (s: string | undefined, n: number): number => ownerOfBytes(Buffer.from(s ?? '', 'base64'), n);

/** What destination `o` should receive of the (decoded) request. */
function expectedPart(ref: RequestObj, o: number, n: number): RequestObj {
  const out: ResourceSpansObj[] = [];
  for (const rs of ref.resourceSpans ?? []) {
    const owners = new Set<number>();
    for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) owners.add(ownerOfB64(s.traceId as unknown as string, n));
    if (owners.size === 0 || !owners.has(o)) continue;
    if (owners.size === 1) {
      out.push(rs); // one destination: the resource as it is (scopes without spans included)
      continue;
    }
    const scopeSpans = (rs.scopeSpans ?? [])
      .map((ss) => ({ ...ss, spans: (ss.spans ?? []).filter((s) => ownerOfB64(s.traceId as unknown as string, n) === o) }))
      .filter((ss) => ss.spans.length > 0);
    out.push({ ...rs, scopeSpans });
  }
  return out.length === 0 ? {} : { resourceSpans: out };
}

describe('pdata: TraceBatch.partitionBySpan', () => {
  it("each part holds exactly its destination's spans, everything else of their resources and scopes unchanged", () => {
    fc.assert(
      fc.property(requestArb, fc.integer({ min: 1, max: 4 }), (obj, n) => {
        const bytes = encode(obj);
        const ref = decode(bytes);
        const batch = TraceBatch.decode(bytes);
        const parts = batch.partitionBySpan(ownerOfRef(n));
        expect(parts.length).to.be.at.most(n);
        let spans = 0;
        for (let o = 0; o < n; o++) {
          const want = expectedPart(ref, o, n);
          const part = parts[o];
          if (want.resourceSpans === undefined) {
            expect(part, `destination ${o}`).to.equal(undefined);
            continue;
          }
          expect(part, `destination ${o}`).to.not.equal(undefined);
          const p = part as TraceBatch;
          expect(decode(p.encode())).to.deep.equal(want);
          // the parts are valid requests for TraceBatch too, with the right counts
          expect(TraceBatch.decode(p.encode()).spanCount).to.equal(p.spanCount);
          spans += p.spanCount;
        }
        const total = (ref.resourceSpans ?? []).reduce((k, rs) => k + (rs.scopeSpans ?? []).reduce((m, ss) => m + (ss.spans ?? []).length, 0), 0);
        expect(spans).to.equal(total);
      }),
      { numRuns: runs(300) },
    );
  });

  it('keeps resource attributes a processor added, in every part', () => {
    fc.assert(
      fc.property(requestArb, (obj) => {
        const batch = TraceBatch.decode(encode(obj));
        for (let i = 0; i < batch.resourceCount; i++) batch.addResourceAttributes(i, [['k8s.pod.name', `pod-${i}`]]);
        const whole = decode(batch.encode());
        const parts = batch.partitionBySpan(ownerOfRef(3));
        for (const [o, part] of parts.entries()) {
          if (part === undefined) continue;
          expect(decode(part.encode())).to.deep.equal(expectedPart(whole, o, 3));
          for (let i = 0; i < part.resourceCount; i++) expect(part.resourceAttribute(i, 'k8s.pod.name')).to.match(/^pod-\d$/);
        }
      }),
      { numRuns: runs(100) },
    );
  });

  it('a batch whose spans all go to one destination is passed on as it is', () => {
    const bytes = encode({
      resourceSpans: [
        { resource: {}, scopeSpans: [{ spans: [{ traceId: new Uint8Array(16).fill(1), spanId: new Uint8Array(8).fill(1) }] }] },
        { resource: {}, scopeSpans: [{ spans: [{ traceId: new Uint8Array(16).fill(1), spanId: new Uint8Array(8).fill(2) }] }] },
      ],
    });
    const batch = TraceBatch.decode(bytes);
    const parts = batch.partitionBySpan(() => 2);
    expect(parts[0]).to.equal(undefined);
    expect(parts[1]).to.equal(undefined);
    expect(parts[2]).to.equal(batch);
    expect(parts[2]?.encode()).to.equal(bytes);
  });

  it('partitionByResource moves whole resources and drops those without spans', () => {
    const bytes = encode({
      resourceSpans: [
        { resource: {}, scopeSpans: [{ spans: [{ name: 'a' }] }] },
        { resource: {}, scopeSpans: [] },
        { resource: {}, scopeSpans: [{ spans: [{ name: 'b' }, { name: 'c' }] }] },
      ],
    });
    const parts = TraceBatch.decode(bytes).partitionByResource((i) => (i === 0 ? 1 : 0));
    expect(parts.map((p) => p?.spanCount)).to.deep.equal([2, 1]);
    expect(decode((parts[1] as TraceBatch).encode()).resourceSpans?.[0]?.scopeSpans?.[0]?.spans?.[0]?.name).to.equal('a');
  });
});
