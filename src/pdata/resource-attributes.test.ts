/** Adding and replacing resource attributes: what processors see, and what the encoded bytes decode to. */
import { expect } from 'chai';
import fc from 'fast-check';
import { TYPES, protoType } from './proto';
import { TraceBatch } from './trace-batch';
import { traceRequestToJson } from './otlp-json';

const Req = protoType(TYPES.exportTraceRequest);

function request(resourceAttrs: Record<string, string>, spans = 2): Uint8Array {
  return Req.encode(
    Req.fromObject({
      resourceSpans: [
        {
          resource: { attributes: Object.entries(resourceAttrs).map(([key, v]) => ({ key, value: { stringValue: v } })) },
          scopeSpans: [
            {
              scope: { name: 's' },
              spans: Array.from({ length: spans }, (_, i) => ({ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, i + 1), name: `span${i}`, kind: 2 })),
            },
          ],
        },
      ],
    }),
  ).finish();
}

function resourceOf(bytes: Uint8Array): Record<string, string> {
  const json = traceRequestToJson(bytes) as { resourceSpans: { resource?: { attributes?: { key: string; value: { stringValue: string } }[] } }[] };
  return Object.fromEntries((json.resourceSpans[0]?.resource?.attributes ?? []).map((a) => [a.key, a.value.stringValue]));
}

describe('TraceBatch resource attributes', () => {
  it('appended attributes are visible to resourceAttribute, hasResourceAttribute and span views, and encoded', () => {
    const b = TraceBatch.decode(request({ 'service.name': 'api', 'k8s.pod.ip': '10.0.0.7' }));
    b.addResourceAttributes(0, [
      ['k8s.namespace.name', 'shop'],
      ['k8s.deployment.name', 'api'],
    ]);
    expect(b.resourceAttribute(0, 'k8s.namespace.name')).to.equal('shop');
    expect(b.hasResourceAttribute(0, 'k8s.deployment.name')).to.equal(true);
    const seen: string[] = [];
    b.forEachSpan((s) => seen.push(String(s.resourceAttribute('k8s.deployment.name'))));
    expect(seen).to.deep.equal(['api', 'api']);
    expect(resourceOf(b.encode())).to.deep.equal({
      'service.name': 'api',
      'k8s.pod.ip': '10.0.0.7',
      'k8s.namespace.name': 'shop',
      'k8s.deployment.name': 'api',
    });
  });

  it('setResourceAttributes replaces values the client sent and keeps the others (property)', () => {
    const key = fc.constantFrom('service.name', 'k8s.pod.name', 'k8s.namespace.name', 'host.name', 'x');
    fc.assert(
      fc.property(fc.dictionary(key, fc.string({ maxLength: 12 })), fc.dictionary(key, fc.string({ maxLength: 12 })), (orig, set) => {
        const b = TraceBatch.decode(request(orig));
        b.setResourceAttributes(0, Object.entries(set));
        const want = { ...orig, ...set };
        for (const [k, v] of Object.entries(want)) expect(b.resourceAttribute(0, k)).to.equal(v);
        const got = resourceOf(b.encode());
        expect(got).to.deep.equal(want);
        // the spans are untouched
        const again = TraceBatch.decode(b.encode());
        expect(again.spanCount).to.equal(2);
      }),
      { numRuns: 200 },
    );
  });

  it('a clone gains attributes without changing the original', () => {
    const a = TraceBatch.decode(request({ 'service.name': 'api' }));
    const b = a.clone();
    b.addResourceAttributes(0, [['k8s.pod.name', 'p']]);
    b.setResourceAttributes(0, [['service.name', 'renamed']]);
    expect(resourceOf(a.encode())).to.deep.equal({ 'service.name': 'api' });
    expect(resourceOf(b.encode())).to.deep.equal({ 'service.name': 'renamed', 'k8s.pod.name': 'p' });
  });
});
