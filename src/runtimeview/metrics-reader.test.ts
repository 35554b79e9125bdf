import { expect } from 'chai';
import fc from 'fast-check';
import { DecodeError } from '../pdata/errors';
import { protoType, TYPES } from '../pdata/proto';
import { mayHaveRole, roleOf } from './catalog';
import { pointAttributes, readMetricsRequest, resourceAttributes } from './metrics-reader';

const NAMES = ['process.cpu.time', 'process.memory.usage', 'cpython.gc.collections', 'http.server.duration', 'system.cpu.time', 'other'];
const WANTED = new Set(NAMES.slice(0, 4));

const attrValue = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => ({ json: { stringValue: s }, value: s as string | number | boolean })),
  fc.integer({ min: -1e9, max: 1e9 }).map((n) => ({ json: { intValue: String(n) }, value: n })),
  fc.boolean().map((b) => ({ json: { boolValue: b }, value: b })),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => ({ json: { doubleValue: d }, value: d })),
);
const attrs = fc.dictionary(fc.constantFrom('type', 'http.route', 'cpython.gc.generation', 'k', 'service.name'), attrValue, { maxKeys: 4 });
const nanos = fc.bigInt({ min: 0n, max: 2n ** 63n - 1n });
const point = fc.record({
  attrs,
  start: nanos,
  time: nanos,
  value: fc.oneof(
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }).map((n) => ({ asInt: String(n), n })),
    fc.double({ noNaN: true }).map((d) => ({ asDouble: d, n: d })),
  ),
  count: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
  sum: fc.double({ noNaN: true }),
  flags: fc.constantFrom(0, 1),
});
const metric = fc.record({
  name: fc.constantFrom(...NAMES),
  unit: fc.constantFrom('', 's', 'By', 'ms'),
  kind: fc.constantFrom('gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'),
  temporality: fc.constantFrom(0, 1, 2),
  monotonic: fc.boolean(),
  points: fc.array(point, { maxLength: 3 }),
});
const request = fc.array(fc.record({ resource: attrs, scope: fc.string({ maxLength: 8 }), metrics: fc.array(metric, { maxLength: 4 }) }), { maxLength: 3 });

type Req = typeof request extends fc.Arbitrary<infer T> ? T : never;

function toJson(r: Req): unknown {
  const kv = (a: Record<string, { json: unknown }>) => Object.entries(a).map(([key, v]) => ({ key, value: v.json }));
  return {
    resourceMetrics: r.map((rm) => ({
      resource: { attributes: kv(rm.resource) },
      scopeMetrics: [
        {
          scope: { name: rm.scope },
          metrics: rm.metrics.map((m) => {
            const common = (p: (typeof m.points)[number]) => ({
              attributes: kv(p.attrs),
              startTimeUnixNano: p.start.toString(),
              timeUnixNano: p.time.toString(),
            });
            const number = (p: (typeof m.points)[number]) => ({ ...common(p), ...p.value, n: undefined, flags: p.flags });
            const hist = (p: (typeof m.points)[number]) => ({ ...common(p), count: String(p.count), sum: p.sum, flags: p.flags });
            const data =
              m.kind === 'gauge'
                ? { gauge: { dataPoints: m.points.map(number) } }
                : m.kind === 'sum'
                  ? { sum: { dataPoints: m.points.map(number), aggregationTemporality: m.temporality, isMonotonic: m.monotonic } }
                  : m.kind === 'histogram'
                    ? { histogram: { dataPoints: m.points.map(hist), aggregationTemporality: m.temporality } }
                    : m.kind === 'exponentialHistogram'
                      ? { exponentialHistogram: { dataPoints: m.points.map(hist), aggregationTemporality: m.temporality } }
                      : { summary: { dataPoints: m.points.map((p) => ({ ...common(p), count: String(p.count), sum: p.sum })) } };
            return { name: m.name, unit: m.unit, ...data };
          }),
        },
      ],
    })),
  };
}

describe('runtimeview: metrics reader', () => {
  const type = protoType(TYPES.exportMetricsRequest);

  it('reads what the protobufjs reference encodes: resources, wanted metrics, point times, values, attributes (property)', () => {
    fc.assert(
      fc.property(request, (r) => {
        const bytes = type.encode(type.fromObject(toJson(r) as Record<string, unknown>)).finish();
        const got = readMetricsRequest(bytes, (n) => WANTED.has(n));
        expect(got).to.have.length(r.length);
        r.forEach((rm, i) => {
          const g = got[i]!;
          expect(g.resource).to.deep.equal(Object.fromEntries(Object.entries(rm.resource).map(([k, v]) => [k, v.value])));
          const wanted = rm.metrics.filter((m) => WANTED.has(m.name) && m.kind !== 'summary');
          expect(g.metrics.map((m) => m.name)).to.deep.equal(wanted.map((m) => m.name));
          wanted.forEach((m, j) => {
            const gm = g.metrics[j]!;
            expect(gm.scope).to.equal(rm.scope);
            expect(gm.unit).to.equal(m.unit);
            expect(gm.temporality).to.equal(m.kind === 'gauge' ? 0 : m.temporality);
            expect(gm.monotonic).to.equal(m.kind === 'sum' && m.monotonic);
            expect(gm.points).to.have.length(m.points.length);
            m.points.forEach((p, k) => {
              const gp = gm.points[k]!;
              expect(gp.startMs).to.equal(Number(p.start) / 1e6);
              expect(gp.timeMs).to.equal(Number(p.time) / 1e6);
              const histogram = m.kind === 'histogram' || m.kind === 'exponentialHistogram';
              if (histogram) {
                expect(gp.value).to.equal(p.count);
                expect(Object.is(gp.sum, p.sum) || gp.sum === p.sum).to.equal(true);
              } else expect(Object.is(gp.value, p.value.n) || gp.value === p.value.n).to.equal(true);
              expect(gp.noRecordedValue).to.equal(p.flags === 1);
              expect(gp.attributes).to.deep.equal(Object.fromEntries(Object.entries(p.attrs).map(([key, v]) => [key, v.value])));
            });
          });
        });
      }),
      { numRuns: 300 },
    );
  });

  it('lazy reading gives what eager reading gives once decoded; equal keys for equal attribute bytes (property)', () => {
    fc.assert(
      fc.property(request, (r) => {
        const bytes = type.encode(type.fromObject(toJson(r) as Record<string, unknown>)).finish();
        const wanted = (n: string): boolean => WANTED.has(n);
        const eager = readMetricsRequest(bytes, wanted);
        const lazy = readMetricsRequest(bytes, wanted, { lazy: true });
        expect(lazy).to.have.length(eager.length);
        eager.forEach((e, i) => {
          const l = lazy[i]!;
          expect(l.resource).to.deep.equal({});
          expect(resourceAttributes(bytes, l)).to.deep.equal(e.resource);
          expect(l.metrics.map((m) => [m.name, m.unit, m.scope, m.type, m.temporality, m.monotonic])).to.deep.equal(
            e.metrics.map((m) => [m.name, m.unit, m.scope, m.type, m.temporality, m.monotonic]),
          );
          e.metrics.forEach((em, j) =>
            em.points.forEach((ep, k) => {
              const lp = l.metrics[j]!.points[k]!;
              expect([lp.startMs, lp.timeMs, lp.noRecordedValue]).to.deep.equal([ep.startMs, ep.timeMs, ep.noRecordedValue]);
              expect(Object.is(lp.value, ep.value) && Object.is(lp.sum, ep.sum)).to.equal(true);
              expect(pointAttributes(bytes, lp)).to.deep.equal(ep.attributes);
            }),
          );
        });
        // Points encoded from equal attribute lists have equal keys, and from different lists different keys; a key
        // holds the attributes' field tags too, which differ between data point messages (7 in a NumberDataPoint, 9 in
        // a HistogramDataPoint, 1 in an ExponentialHistogramDataPoint), so a non-empty list in two messages keys apart.
        const points = lazy.flatMap((rm) => rm.metrics.flatMap((m) => m.points));
        const message = (kind: string): string => (kind === 'gauge' || kind === 'sum' ? 'number' : kind);
        const specs = r.flatMap((rm) =>
          rm.metrics
            .filter((m) => WANTED.has(m.name) && m.kind !== 'summary')
            .flatMap((m) => m.points.map((p) => ({ attrs: p.attrs, message: message(m.kind) }))),
        );
        points.forEach((a, i) =>
          points.forEach((b, j) => {
            const list = JSON.stringify(Object.entries(specs[i]!.attrs));
            const sameEncoding = list === JSON.stringify(Object.entries(specs[j]!.attrs)) && (list === '[]' || specs[i]!.message === specs[j]!.message);
            expect(a.attrKey === b.attrKey).to.equal(sameEncoding);
          }),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('skips metrics whose name bytes mayWant refuses, and mayHaveRole refuses no name that has a role', () => {
    const names = [
      'process.cpu.time',
      'process.runtime.cpython.memory',
      'cpython.gc.collections',
      'http.server.duration',
      'http.server.request.duration',
      'system.cpu.time',
      'proc',
      'cpython.gc_count',
      'http.client.duration',
      '',
    ];
    for (const n of names) {
      const b = Buffer.from(`xx${n}`);
      if (roleOf(n) !== undefined) expect(mayHaveRole(b, 2, b.length), n).to.equal(true);
    }
    expect(['system.cpu.time', 'proc', 'http.client.duration', ''].map((n) => mayHaveRole(Buffer.from(n), 0, n.length))).to.deep.equal([
      false,
      false,
      false,
      false,
    ]);
    const bytes = type
      .encode(
        type.fromObject(
          toJson([
            {
              resource: {},
              scope: 's',
              metrics: ['process.cpu.time', 'system.cpu.time'].map((name) => ({ name, unit: 's', kind: 'sum', temporality: 2, monotonic: true, points: [] })),
            },
          ] as unknown as Req) as Record<string, unknown>,
        ),
      )
      .finish();
    const seen: string[] = [];
    const got = readMetricsRequest(
      bytes,
      (n) => {
        seen.push(n);
        return true;
      },
      { mayWant: (buf, s, e) => Buffer.from(buf.subarray(s, e)).toString() !== 'system.cpu.time' },
    );
    expect(seen).to.deep.equal(['process.cpu.time']);
    expect(got[0]!.metrics.map((m) => m.name)).to.deep.equal(['process.cpu.time']);
  });

  it('throws DecodeError on truncated or mistyped input, never anything else (property)', () => {
    fc.assert(
      fc.property(request, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 }), (r, cut, junk) => {
        const bytes = type.encode(type.fromObject(toJson(r) as Record<string, unknown>)).finish();
        const broken = Buffer.concat([bytes.subarray(0, cut % (bytes.length + 1)), junk]);
        for (const lazy of [false, true]) {
          try {
            readMetricsRequest(broken, () => true, { lazy });
          } catch (e) {
            expect(e).to.be.instanceOf(DecodeError);
          }
        }
        // Lazy reading checks what it does not decode: it throws exactly when eager reading does.
        const threw = (lazy: boolean): boolean => {
          try {
            readMetricsRequest(broken, () => true, { lazy });
            return false;
          } catch {
            return true;
          }
        };
        expect(threw(true)).to.equal(threw(false));
      }),
      { numRuns: 300 },
    );
  });
});
