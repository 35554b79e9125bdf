/**
 * forEachSpan with a kind mask visits exactly the spans of those kinds, read as a full walk reads them, and reports
 * the others by kind per resource.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { TYPES, protoType } from './proto';
import { TraceBatch } from './trace-batch';

const Req = protoType(TYPES.exportTraceRequest);

describe('TraceBatch.forEachSpan kinds', () => {
  it('visits only the masked kinds, with the same views as an unfiltered walk (property)', () => {
    const span = fc.record({
      kind: fc.integer({ min: 0, max: 5 }),
      name: fc.string({ maxLength: 20 }),
      attrs: fc.array(fc.tuple(fc.constantFrom('http.route', 'k', 'http.method'), fc.string({ maxLength: 10 })), { maxLength: 4 }),
      dur: fc.integer({ min: 0, max: 1e9 }),
      // a multi-byte kind varint (negative enum on the wire) and fields before the kind are legal too
      traceState: fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(fc.array(span, { maxLength: 6 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 63 }), (scopes, mask) => {
        const bytes = Req.encode(
          Req.fromObject({
            resourceSpans: [
              {
                resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
                scopeSpans: scopes.map((spans) => ({
                  spans: spans.map((s, i) => ({
                    traceId: Buffer.alloc(16, 7),
                    spanId: Buffer.alloc(8, i + 1),
                    traceState: s.traceState ?? '',
                    name: s.name,
                    kind: s.kind,
                    startTimeUnixNano: '1000',
                    endTimeUnixNano: String(1000 + s.dur),
                    attributes: s.attrs.map(([key, v]) => ({ key, value: { stringValue: v } })),
                  })),
                })),
              },
            ],
          }),
        ).finish();
        const batch = TraceBatch.decode(bytes);
        const read = (kinds?: number): unknown[] => {
          const out: unknown[] = [];
          batch.forEachSpan(
            (v) => out.push([v.kind, v.name, v.durationNs, v.attribute('http.route'), v.spanIdHex()]),
            kinds === undefined ? undefined : { kinds },
          );
          return out;
        };
        const all = read();
        expect(read(mask)).to.deep.equal(all.filter((x) => (mask & (1 << ((x as number[])[0] as number))) !== 0));
      }),
      { numRuns: 300 },
    );
  });

  it('reports the spans it skipped by kind, per resource, with the resource service (property)', () => {
    const resource = fc.record({ service: fc.constantFrom('a', 'b', ''), kinds: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 12 }) });
    fc.assert(
      fc.property(fc.array(resource, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 63 }), (resources, mask) => {
        const bytes = Req.encode(
          Req.fromObject({
            resourceSpans: resources.map((r) => ({
              resource: { attributes: r.service === '' ? [] : [{ key: 'service.name', value: { stringValue: r.service } }] },
              scopeSpans: [{ spans: r.kinds.map((kind, i) => ({ traceId: Buffer.alloc(16, 7), spanId: Buffer.alloc(8, i + 1), name: 'x', kind })) }],
            })),
          }),
        ).finish();
        const reported: [string, number[]][] = [];
        let visited = 0;
        TraceBatch.decode(bytes).forEachSpan(() => visited++, { kinds: mask, skipped: (service, counts) => reported.push([service, [...counts.slice(0, 6)]]) });
        const expected: [string, number[]][] = [];
        for (const r of resources) {
          const counts = [0, 0, 0, 0, 0, 0];
          for (const k of r.kinds) if ((mask & (1 << k)) === 0) counts[k] = (counts[k] as number) + 1;
          if (counts.some((n) => n > 0)) expected.push([r.service === '' ? 'unknown_service' : r.service, counts]);
        }
        expect(reported).to.deep.equal(expected);
        expect(visited).to.equal(resources.reduce((n, r) => n + r.kinds.filter((k) => (mask & (1 << k)) !== 0).length, 0));
      }),
      { numRuns: 300 },
    );
  });
});
