/**
 * Differential tests of MetricsBatch and LogsBatch (the signal-generic OtlpBatch with the metrics and logs
 * layouts) against the protobufjs reference codec, as trace-batch.test.ts does for traces:
 *
 * - Random valid requests (every metric type with exemplars, packed buckets, optional sum/min/max, metadata;
 *   log records with AnyValue bodies, ids, flags, event names) encoded by protobufjs: the batch accepts them,
 *   counts the same data points / log records and resources as the Collector would, reads the same resource
 *   attributes, writes bytes protobufjs decodes to the same object (also after adding and setting resource
 *   attributes, with every scope-level message copied byte for byte), and concat/split keep everything.
 * - The OTLP/JSON path: the reference's JSON of a request converts back to the same request.
 * - Mutated, truncated and random bytes: the batch either accepts (and then protobufjs accepts too, with the
 *   same counts) or throws DecodeError, never anything else.
 * - Hand-made cases: wrong id lengths, packed fields in both encodings, wire type mismatches, deep log bodies.
 * - Real payloads of the OpenTelemetry JS SDK metrics and logs exporters (gRPC and HTTP/protobuf).
 */
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import {
  type KeyValueObj,
  anyValue,
  attributes,
  int64,
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
  u64,
} from '../../test/support/otlp-arbitraries';
import { OtlpSink } from '../../test/support/otlp-sink';
import { BufferPool, type BufferLease } from './buffer-pool';
import { DecodeError } from './errors';
import { LogsBatch } from './logs-batch';
import { MetricsBatch } from './metrics-batch';
import type { OtlpBatch } from './otlp-batch';
import { logsRequestFromJson, metricsRequestFromJson, toOtlpJsonObject } from './otlp-json';
import { TYPES, protoType } from './proto';
import { MAX_NESTING_DEPTH, Msg, validate, validateHistogramDataPoint, validateLogRecord, validateNumberDataPoint } from './validate';

// ---- plain object model (protobufjs fromObject / toObject shape) ---------------------------------------

type Obj = Record<string, unknown>;

interface ScopeObj {
  scope?: { name?: string; version?: string; attributes?: KeyValueObj[]; droppedAttributesCount?: number };
  schemaUrl?: string;
  [items: string]: unknown;
}
interface ResourceObj {
  resource?: { attributes?: KeyValueObj[]; droppedAttributesCount?: number };
  schemaUrl?: string;
  [scopes: string]: unknown;
}

// ---- generators ---------------------------------------------------------------------------------------

const f64 = fc.double();
const NEGATIVE_ZERO = '__otlp_json_negative_zero__';
const optionalF64 = fc.option(f64, { nil: undefined });
const sint32 = fc.oneof(fc.integer({ min: -20, max: 20 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
const temporality = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: 3, max: 1000 }) });

const exemplar = fc.record(
  {
    filteredAttributes: attributes(2),
    timeUnixNano: time,
    value: fc.oneof(
      f64.map((d) => ({ asDouble: d })),
      int64.map((i) => ({ asInt: i })),
    ),
    spanId: optionalId(8),
    traceId: optionalId(16),
  },
  { requiredKeys: [] },
);
const exemplars = fc.array(exemplar, { maxLength: 2 }).map((xs) => xs.map(({ value, ...x }) => ({ ...x, ...(value ?? {}) })));

const numberPoint = fc
  .record(
    {
      attributes: attributes(3),
      startTimeUnixNano: time,
      timeUnixNano: time,
      value: fc.oneof(
        f64.map((d) => ({ asDouble: d })),
        int64.map((i) => ({ asInt: i })),
      ),
      exemplars,
      flags: u32,
    },
    { requiredKeys: [] },
  )
  .map(({ value, ...p }) => ({ ...p, ...(value ?? {}) }));

const histogramPoint = fc.record(
  {
    attributes: attributes(3),
    startTimeUnixNano: time,
    timeUnixNano: time,
    count: u64,
    sum: optionalF64,
    bucketCounts: fc.array(u64, { maxLength: 16 }),
    explicitBounds: fc.array(f64, { maxLength: 15 }),
    exemplars,
    flags: u32,
    min: optionalF64,
    max: optionalF64,
  },
  { requiredKeys: [] },
);

const buckets = fc.record({ offset: sint32, bucketCounts: fc.array(u64, { maxLength: 8 }) }, { requiredKeys: [] });
const exponentialPoint = fc.record(
  {
    attributes: attributes(3),
    startTimeUnixNano: time,
    timeUnixNano: time,
    count: u64,
    sum: optionalF64,
    scale: sint32,
    zeroCount: u64,
    positive: buckets,
    negative: buckets,
    flags: u32,
    exemplars,
    min: optionalF64,
    max: optionalF64,
    zeroThreshold: f64,
  },
  { requiredKeys: [] },
);

const summaryPoint = fc.record(
  {
    attributes: attributes(3),
    startTimeUnixNano: time,
    timeUnixNano: time,
    count: u64,
    sum: f64,
    quantileValues: fc.array(fc.record({ quantile: f64, value: f64 }, { requiredKeys: [] }), { maxLength: 3 }),
    flags: u32,
  },
  { requiredKeys: [] },
);

const points = <T>(p: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(p, { maxLength: 4 });
const metricData = fc.oneof(
  fc.record({ gauge: fc.record({ dataPoints: points(numberPoint) }, { requiredKeys: [] }) }),
  fc.record({ sum: fc.record({ dataPoints: points(numberPoint), aggregationTemporality: temporality, isMonotonic: fc.boolean() }, { requiredKeys: [] }) }),
  fc.record({ histogram: fc.record({ dataPoints: points(histogramPoint), aggregationTemporality: temporality }, { requiredKeys: [] }) }),
  fc.record({
    exponentialHistogram: fc.record({ dataPoints: points(exponentialPoint), aggregationTemporality: temporality }, { requiredKeys: [] }),
  }),
  fc.record({ summary: fc.record({ dataPoints: points(summaryPoint) }, { requiredKeys: [] }) }),
  fc.constant({}), // a metric without data
);
const metricArb: fc.Arbitrary<Obj> = fc
  .tuple(fc.record({ name: text, description: text, unit: text, metadata: attributes(2) }, { requiredKeys: [] }), metricData)
  .map(([m, data]) => ({ ...m, ...data }));

const logRecordArb: fc.Arbitrary<Obj> = fc.record(
  {
    timeUnixNano: time,
    observedTimeUnixNano: time,
    severityNumber: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 24 }) }, { weight: 1, arbitrary: fc.integer({ min: 25, max: 1000 }) }),
    severityText: text,
    body: anyValue,
    attributes: attributes(4),
    droppedAttributesCount: u32,
    flags: u32,
    traceId: optionalId(16),
    spanId: optionalId(8),
    eventName: text,
  },
  { requiredKeys: [] },
);

/** Data points of a metric as the Collector counts them (every metric type; a metric without data has none). */
function dataPoints(m: Obj): number {
  let n = 0;
  for (const k of ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary']) {
    const d = m[k] as { dataPoints?: unknown[] } | undefined;
    n += d?.dataPoints?.length ?? 0;
  }
  return n;
}

// ---- the two signals, as cases of one suite -----------------------------------------------------------

interface SignalCase {
  name: 'metrics' | 'logs';
  requestType: string;
  resourceKey: string;
  scopeKey: string;
  itemsKey: string;
  item: fc.Arbitrary<Obj>;
  /** Items (data points, log records) of one scope-level item (a metric, a log record). */
  count(item: Obj): number;
  decode(bytes: Uint8Array): OtlpBatch;
  concat(batches: OtlpBatch[]): OtlpBatch;
  fromJson(json: string): Uint8Array;
}

const cases: SignalCase[] = [
  {
    name: 'metrics',
    requestType: TYPES.exportMetricsRequest,
    resourceKey: 'resourceMetrics',
    scopeKey: 'scopeMetrics',
    itemsKey: 'metrics',
    item: metricArb,
    count: dataPoints,
    decode: (b) => MetricsBatch.decode(b),
    concat: (bs) => MetricsBatch.concat(bs as MetricsBatch[]),
    fromJson: metricsRequestFromJson,
  },
  {
    name: 'logs',
    requestType: TYPES.exportLogsRequest,
    resourceKey: 'resourceLogs',
    scopeKey: 'scopeLogs',
    itemsKey: 'logRecords',
    item: logRecordArb,
    count: () => 1,
    decode: (b) => LogsBatch.decode(b),
    concat: (bs) => LogsBatch.concat(bs as LogsBatch[]),
    fromJson: logsRequestFromJson,
  },
];

for (const sc of cases) {
  const Type = protoType(sc.requestType);
  const encode = (obj: Obj): Uint8Array => Type.encode(Type.fromObject(obj)).finish();
  const refDecode = (bytes: Uint8Array): Obj => Type.toObject(Type.decode(bytes), { longs: String, bytes: String, defaults: false }) as Obj;
  const resources = (req: Obj): ResourceObj[] => (req[sc.resourceKey] as ResourceObj[] | undefined) ?? [];
  const scopes = (r: ResourceObj): ScopeObj[] => (r[sc.scopeKey] as ScopeObj[] | undefined) ?? [];
  const itemsOf = (s: ScopeObj): Obj[] => (s[sc.itemsKey] as Obj[] | undefined) ?? [];
  const resourceItems = (r: ResourceObj): number => scopes(r).reduce((n, s) => n + itemsOf(s).reduce((m, i) => m + sc.count(i), 0), 0);
  const totalItems = (req: Obj): number => resources(req).reduce((n, r) => n + resourceItems(r), 0);

  const scopeArb = fc.record(
    {
      scope: fc.record({ name: text, version: text, attributes: attributes(2), droppedAttributesCount: u32 }, { requiredKeys: [] }),
      [sc.itemsKey]: fc.array(sc.item, { maxLength: 4 }),
      schemaUrl: text,
    },
    { requiredKeys: [] },
  );
  const resourceArb = fc.record(
    {
      resource: fc.record({ attributes: resourceAttributes, droppedAttributesCount: u32 }, { requiredKeys: [] }),
      [sc.scopeKey]: fc.array(scopeArb, { maxLength: 3 }),
      schemaUrl: text,
    },
    { requiredKeys: [] },
  );
  const requestArb: fc.Arbitrary<Obj> = fc.record({ [sc.resourceKey]: fc.array(resourceArb, { maxLength: 4 }) }, { requiredKeys: [] });
  const nonEmpty = requestArb.filter((r) => resources(r).length > 0);

  /** The scope-level fields (field 2) of each resource-level message, as bytes. */
  const scopeBytes = (request: Uint8Array): Buffer[][] =>
    rawFields(request)
      .filter((f) => f.no === 1)
      .map((r) =>
        rawFields(r.content)
          .filter((f) => f.no === 2)
          .map((f) => Buffer.from(f.whole)),
      );

  /** The batch either accepts (and protobufjs agrees on the content) or throws DecodeError; nothing else. */
  const checkRobust = (bytes: Uint8Array): 'accepted' | 'rejected' => {
    let batch: OtlpBatch;
    try {
      batch = sc.decode(bytes);
    } catch (err) {
      if (!(err instanceof DecodeError))
        throw new Error(`decode threw ${String(err)} (not a DecodeError) for ${Buffer.from(bytes).toString('hex')}`, { cause: err });
      expect(err.message).to.be.a('string').and.not.equal('');
      return 'rejected';
    }
    let ref: Obj;
    try {
      ref = refDecode(bytes);
    } catch (err) {
      throw new Error(`${sc.name} batch accepted what protobufjs rejects (${String(err)}): ${Buffer.from(bytes).toString('hex')}`, { cause: err });
    }
    expect(batch.resourceCount).to.equal(resources(ref).length);
    expect(batch.itemCount).to.equal(totalItems(ref));
    if (batch.resourceCount > 0) {
      void batch.resourceAttribute(0, 'service.name');
      batch.addResourceAttributes(0, [['k8s.pod.name', 'p']]);
      expect(resources(refDecode(batch.encode())).length).to.equal(batch.resourceCount);
    }
    return 'accepted';
  };

  describe(`${sc.name} batch vs protobufjs (differential)`, function () {
    this.timeout(120_000);

    it(`accepts every valid request, counts its ${sc.name === 'metrics' ? 'data points' : 'log records'} and resources as the reference does, and re-encodes it losslessly`, () => {
      fc.assert(
        fc.property(requestArb, (obj) => {
          const bytes = encode(obj);
          const ref = refDecode(bytes);
          const batch = sc.decode(bytes);
          expect(batch.signal).to.equal(sc.name);
          expect(batch.itemCount).to.equal(totalItems(ref));
          expect(batch.resourceCount).to.equal(resources(ref).length);
          resources(ref).forEach((r, i) => expect(batch.resourceItemCount(i)).to.equal(resourceItems(r)));
          // Unmodified: the very bytes that arrived.
          expect(batch.encode()).to.equal(bytes);
          expect(refDecode(batch.encode())).to.deep.equal(ref);
          expect(batch.byteLength).to.equal(bytes.length);
        }),
        { numRuns: runs(300) },
      );
    });

    it('reads the resource attributes protobufjs reads', () => {
      fc.assert(
        fc.property(requestArb, (obj) => {
          const bytes = encode(obj);
          const batch = sc.decode(bytes);
          resources(refDecode(bytes)).forEach((r, i) => {
            for (const a of r.resource?.attributes ?? []) {
              expect(batch.resourceAttribute(i, a.key), a.key).to.deep.equal(scalarOf(a.value));
              expect(batch.hasResourceAttribute(i, a.key)).to.equal(true);
            }
          });
        }),
        { numRuns: runs(200) },
      );
    });

    it('add/set resource attributes in any order: encode and encodeParts agree with a model, scope-level messages byte-identical, clones unaffected', () => {
      const keyOf = fc.constantFrom('service.name', 'k', 'host.name', 'k8s.pod.name', 'extra');
      const op = fc.record({
        kind: fc.constantFrom('add' as const, 'set' as const),
        at: fc.nat(),
        attrs: fc.uniqueArray(fc.tuple(keyOf, fc.string({ maxLength: 6 })), { minLength: 1, maxLength: 3, selector: ([k]) => k }),
      });
      fc.assert(
        fc.property(nonEmpty, fc.array(op, { minLength: 1, maxLength: 5 }), (obj, ops) => {
          const bytes = encode(obj);
          const ref = refDecode(bytes);
          const n = resources(ref).length;
          const batch = sc.decode(bytes);
          const copy = batch.clone();
          const model = resources(ref).map((r) => ({ orig: r.resource?.attributes ?? [], replaced: new Set<string>(), extra: [] as KeyValueObj[] }));
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
            const r = resources(want)[i]!;
            if (m.extra.length === 0) return;
            r.resource = { ...(r.resource ?? {}), attributes: [...m.orig.filter((a) => !m.replaced.has(a.key)), ...m.extra] };
          });
          const parts = batch.encodeParts();
          const length = batch.byteLength;
          const out = batch.encode();
          expect(Buffer.concat(parts).equals(out)).to.equal(true);
          expect(length).to.equal(out.length);
          expect(refDecode(out)).to.deep.equal(want);
          expect(scopeBytes(out)).to.deep.equal(scopeBytes(bytes));
          const again = sc.decode(out);
          expect(again.itemCount).to.equal(batch.itemCount);
          for (let i = 0; i < n; i++) {
            const m = model[i]!;
            for (const k of ['service.name', 'k', 'host.name', 'k8s.pod.name', 'extra']) {
              const orig = m.replaced.has(k) ? undefined : m.orig.find((a) => a.key === k);
              const expected = orig !== undefined ? scalarOf(orig.value) : scalarOf(m.extra.find((a) => a.key === k)?.value);
              expect(batch.resourceAttribute(i, k), `resource ${i} ${k}`).to.deep.equal(expected);
              expect(again.resourceAttribute(i, k), `re-decoded resource ${i} ${k}`).to.deep.equal(expected);
            }
          }
          expect(copy.encode()).to.equal(bytes);
        }),
        { numRuns: runs(200) },
      );
    });

    it('concat and split keep every resource and item in order, never cutting a resource', () => {
      fc.assert(
        fc.property(fc.array(requestArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 8 }), (objs, max) => {
          const batches = objs.map((o) => sc.decode(encode(o)));
          const all = objs.flatMap((o) => resources(refDecode(encode(o))));
          const joined = sc.concat(batches);
          expect(resources(refDecode(joined.encode()))).to.deep.equal(all);
          const parts = joined.split(max);
          expect(parts.reduce((n, p) => n + p.itemCount, 0)).to.equal(joined.itemCount);
          expect(parts.flatMap((p) => resources(refDecode(p.encode())))).to.deep.equal(all);
          for (const p of parts) {
            let withItems = 0;
            for (let i = 0; i < p.resourceCount; i++) if (p.resourceItemCount(i) > 0) withItems++;
            expect(p.itemCount <= max || withItems === 1).to.equal(true);
          }
        }),
        { numRuns: runs(100) },
      );
    });

    it('OTLP/JSON: the JSON of any request converts back to the same request', () => {
      fc.assert(
        fc.property(requestArb, (obj) => {
          const bytes = encode(obj);
          // JSON.stringify writes -0 as 0; an OTLP/JSON writer (Go's protojson) writes -0, which a oneof double keeps.
          const json = JSON.stringify(toOtlpJsonObject(sc.requestType, bytes), (_k, v: unknown) => (Object.is(v, -0) ? NEGATIVE_ZERO : v)).replaceAll(
            `"${NEGATIVE_ZERO}"`,
            '-0',
          );
          const converted = sc.fromJson(json);
          // Compared with defaults filled in: OTLP/JSON leaves out empty ids, which proto3 reads as the same value.
          const withDefaults = (b: Uint8Array): Obj => Type.toObject(Type.decode(b), { longs: String, bytes: String, defaults: true }) as Obj;
          expect(withDefaults(converted)).to.deep.equal(withDefaults(bytes));
          expect(sc.decode(converted).itemCount).to.equal(sc.decode(bytes).itemCount);
        }),
        { numRuns: runs(200) },
      );
    });
  });

  describe(`${sc.name} batch on malformed input`, function () {
    this.timeout(120_000);

    it('random bytes: accepted consistently with protobufjs or DecodeError', () => {
      const outcomes = { accepted: 0, rejected: 0 };
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          outcomes[checkRobust(bytes)]++;
        }),
        { numRuns: runs(4000) },
      );
      expect(outcomes.rejected).to.be.greaterThan(0);
    });

    it('random bytes framed as a scope-level item: accepted consistently with protobufjs or DecodeError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 100 }), (inner) => {
          const lenField = (no: number, content: Uint8Array): Buffer =>
            Buffer.from(
              protobuf.Writer.create()
                .uint32((no << 3) | 2)
                .bytes(content)
                .finish(),
            );
          checkRobust(lenField(1, lenField(2, lenField(2, inner))));
        }),
        { numRuns: runs(3000) },
      );
    });

    it('mutated valid requests (flips, truncations, insertions, deletions): accepted consistently or DecodeError', () => {
      const outcomes = { accepted: 0, rejected: 0 };
      fc.assert(
        fc.property(requestArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (obj, ms) => {
          outcomes[checkRobust(mutate(encode(obj), ms))]++;
        }),
        { numRuns: runs(3000) },
      );
      expect(outcomes.rejected).to.be.greaterThan(0);
      expect(outcomes.accepted).to.be.greaterThan(0);
    });

    it('every truncation of a valid request is a DecodeError or a shorter valid message', () => {
      fc.assert(
        fc.property(nonEmpty, (obj) => {
          const bytes = encode(obj);
          for (let n = 0; n < bytes.length; n++) checkRobust(bytes.subarray(0, n));
        }),
        { numRuns: runs(10) },
      );
    });

    it(`a request of another signal is refused or read with the counts protobufjs reads for ${sc.name}`, () => {
      // A client that sends traces to /v1/metrics: field numbers overlap, so some requests happen to be valid.
      const other = cases.find((c) => c !== sc)!;
      const otherType = protoType(other.requestType);
      fc.assert(
        fc.property(fc.array(fc.record({ [other.scopeKey]: fc.array(fc.record({ [other.itemsKey]: fc.array(other.item, { maxLength: 2 }) })) })), (rs) => {
          checkRobust(otherType.encode(otherType.fromObject({ [other.resourceKey]: rs })).finish());
        }),
        { numRuns: runs(300) },
      );
    });
  });
}

// ---- hand-made cases ----------------------------------------------------------------------------------

const lenField = (no: number, content: Uint8Array): Buffer =>
  Buffer.from(
    protobuf.Writer.create()
      .uint32((no << 3) | 2)
      .bytes(content)
      .finish(),
  );
/** A request with one resource, one scope and one item of the given content. */
const frameItem = (itemContent: Uint8Array): Buffer => lenField(1, lenField(2, lenField(2, itemContent)));

function expectDecodeError(decode: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    decode();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'decode should throw').to.be.instanceOf(DecodeError);
  expect((caught as DecodeError).message).to.match(message);
}

describe('validation fast paths for data points and log records', function () {
  this.timeout(120_000);
  // Each fast path against the field table it stands for (`validate` at that message: the path the request takes
  // for anything unusual): the same verdict on every input, and the same error message.
  const cases = [
    {
      name: 'NumberDataPoint',
      msg: Msg.NumberDataPoint,
      fast: validateNumberDataPoint,
      type: 'opentelemetry.proto.metrics.v1.NumberDataPoint',
      arb: numberPoint,
    },
    {
      name: 'HistogramDataPoint',
      msg: Msg.HistogramDataPoint,
      fast: validateHistogramDataPoint,
      type: 'opentelemetry.proto.metrics.v1.HistogramDataPoint',
      arb: histogramPoint,
    },
    { name: 'LogRecord', msg: Msg.LogRecord, fast: validateLogRecord, type: 'opentelemetry.proto.logs.v1.LogRecord', arb: logRecordArb },
  ] as const;
  const verdict = (f: () => unknown): string => {
    try {
      f();
      return 'ok';
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return err.message;
    }
  };
  for (const c of cases) {
    it(`${c.name}: the fast path and the field table agree on valid, mutated and random messages (property)`, () => {
      const type = protoType(c.type);
      const outcomes = { ok: 0, refused: 0 };
      const check = (bytes: Uint8Array): void => {
        const want = verdict(() => validate(bytes, c.msg, 0, bytes.length, 5));
        expect(
          verdict(() => c.fast(bytes, 0, bytes.length, 5)),
          Buffer.from(bytes).toString('hex'),
        ).to.equal(want);
        outcomes[want === 'ok' ? 'ok' : 'refused']++;
      };
      // Fields of any one-byte tag, each with a random body, framed as a length-delimited field or not: odd lengths
      // of packed and fixed fields, ids of every size, short varints.
      const tag = fc.oneof(
        fc.integer({ min: 0, max: 0x7f }),
        fc.tuple(fc.integer({ min: 1, max: 15 }), fc.constantFrom(0, 1, 2, 5)).map(([no, wire]) => (no << 3) | wire),
      );
      const soup = fc.array(fc.record({ tag, body: fc.uint8Array({ maxLength: 20 }), framed: fc.boolean() }), { maxLength: 6 });
      fc.assert(
        fc.property(c.arb as fc.Arbitrary<Obj>, fc.array(mutation, { maxLength: 3 }), soup, (obj, ms, fields) => {
          const bytes = type.encode(type.fromObject(obj)).finish();
          check(bytes);
          check(mutate(bytes, ms));
          check(Buffer.concat(fields.map((f) => Buffer.from([f.tag, ...(f.framed ? [f.body.length] : []), ...f.body]))));
        }),
        { numRuns: runs(3000) },
      );
      expect(outcomes.ok).to.be.greaterThan(0);
      expect(outcomes.refused).to.be.greaterThan(0);
    });
  }
});

describe('MetricsBatch on hand-made requests', () => {
  const Type = protoType(TYPES.exportMetricsRequest);
  const encode = (obj: Obj): Uint8Array => Type.encode(Type.fromObject(obj)).finish();
  const ref = (bytes: Uint8Array): Obj => Type.toObject(Type.decode(bytes), { longs: String, bytes: String, defaults: false }) as Obj;
  const metric = (m: Obj): Uint8Array => encode({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm', ...m }] }] }] });

  it('exemplar ids of the wrong length are a DecodeError naming the field', () => {
    const gauge = (ex: Obj): Uint8Array => metric({ gauge: { dataPoints: [{ asDouble: 1, exemplars: [ex] }] } });
    expectDecodeError(() => MetricsBatch.decode(gauge({ traceId: Buffer.alloc(15, 1) })), /Exemplar trace_id is 15 bytes, expected 16/);
    expectDecodeError(() => MetricsBatch.decode(gauge({ spanId: Buffer.alloc(9, 1) })), /Exemplar span_id is 9 bytes, expected 8/);
    expect(MetricsBatch.decode(gauge({ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2) })).dataPointCount).to.equal(1);
  });

  it('histogram bucket counts and bounds are read packed or unpacked, as protobufjs reads them; a packed run that is not whole 8-byte values is refused', () => {
    const w = protobuf.Writer.create();
    // HistogramDataPoint: count=3, bucket_counts unpacked (field 6 as I64 twice), explicit_bounds unpacked (field 7 as I64)
    w.uint32((4 << 3) | 1).fixed64(3);
    w.uint32((6 << 3) | 1).fixed64(1);
    w.uint32((6 << 3) | 1).fixed64(2);
    w.uint32((7 << 3) | 1).double(10);
    const point = w.finish();
    const bytes = frameItem(Buffer.concat([lenField(1, Buffer.from('h')), lenField(9, lenField(1, point))]));
    const batch = MetricsBatch.decode(bytes);
    expect(batch.dataPointCount).to.equal(1);
    const dp = (((ref(bytes).resourceMetrics as Obj[])[0]!.scopeMetrics as Obj[])[0]!.metrics as Obj[])[0]!.histogram as { dataPoints: Obj[] };
    expect(dp.dataPoints[0]).to.deep.include({ bucketCounts: ['1', '2'], explicitBounds: [10] });
    const ragged = frameItem(Buffer.concat([lenField(1, Buffer.from('h')), lenField(9, lenField(1, lenField(6, Buffer.alloc(12))))]));
    expectDecodeError(() => MetricsBatch.decode(ragged), /HistogramDataPoint field 6 is packed 64-bit values of 12 bytes, not a multiple of 8/);
    // Exponential buckets: uint64 varints, packed (any length up to 10 bytes each) or unpacked.
    const expo = (bucketsContent: Uint8Array): Buffer =>
      frameItem(Buffer.concat([lenField(1, Buffer.from('e')), lenField(10, lenField(1, lenField(8, bucketsContent)))]));
    const packed = expo(lenField(2, Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])));
    expect(MetricsBatch.decode(packed).dataPointCount).to.equal(1);
    expect(ref(packed)).to.be.an('object');
    const unpacked = expo(Buffer.from([0x10, 0x05, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]));
    expect(MetricsBatch.decode(unpacked).dataPointCount).to.equal(1);
    const e = (((ref(unpacked).resourceMetrics as Obj[])[0]!.scopeMetrics as Obj[])[0]!.metrics as Obj[])[0]!.exponentialHistogram as { dataPoints: Obj[] };
    expect(e.dataPoints[0]!.positive).to.deep.equal({ bucketCounts: ['5', String(2 ** 35)] });
    expectDecodeError(() => MetricsBatch.decode(expo(lenField(2, Buffer.from([0x01, 0x80])))), /truncated varint/);
  });

  it('wire type mismatches and over-long 32-bit varints are a DecodeError naming the message and field', () => {
    expectDecodeError(() => MetricsBatch.decode(Buffer.from([0x08, 0x01])), /resource_metrics has wire type 0, expected 2/);
    expectDecodeError(() => MetricsBatch.decode(frameItem(Buffer.from([0x08, 0x01]))), /Metric field 1 has wire type 0, expected 2/);
    const sum = (content: Uint8Array): Buffer => frameItem(lenField(7, content));
    expectDecodeError(() => MetricsBatch.decode(sum(Buffer.from([0x12, 0x00]))), /Sum field 2 has wire type 2, expected 0/);
    expectDecodeError(() => MetricsBatch.decode(sum(Buffer.from([0x10, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00]))), /Sum field 2 is a 6-byte varint/);
    expect(MetricsBatch.decode(sum(Buffer.from([0x10, 0x02, 0x18, 0x01]))).dataPointCount).to.equal(0);
    // NumberDataPoint time as fixed32
    expectDecodeError(
      () => MetricsBatch.decode(frameItem(lenField(5, lenField(1, Buffer.from([0x1d, 0, 0, 0, 0]))))),
      /NumberDataPoint field 3 has wire type 5, expected 1/,
    );
  });

  it('random bytes framed as a data point of each metric type: accepted consistently with protobufjs or DecodeError', () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.constantFrom(5, 7, 9, 10, 11), (inner, dataField) => {
        const bytes = frameItem(lenField(dataField, lenField(1, inner)));
        let batch: MetricsBatch;
        try {
          batch = MetricsBatch.decode(bytes);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          outcomes.rejected++;
          return;
        }
        expect(() => ref(bytes), Buffer.from(bytes).toString('hex')).to.not.throw();
        expect(batch.dataPointCount).to.equal(1);
        outcomes.accepted++;
      }),
      { numRuns: runs(5000) },
    );
    expect(outcomes.accepted).to.be.greaterThan(0);
    expect(outcomes.rejected).to.be.greaterThan(0);
  });

  it('counts the data points of every metric type, and of a metric carrying two of them (protobuf merges, the Collector counts both)', () => {
    const bytes = metric({
      sum: { dataPoints: [{ asInt: 1 }, { asInt: 2 }], aggregationTemporality: 2, isMonotonic: true },
    });
    expect(MetricsBatch.decode(bytes).dataPointCount).to.equal(2);
    const two = frameItem(
      Buffer.concat([lenField(5, lenField(1, Buffer.alloc(0))), lenField(11, Buffer.concat([lenField(1, Buffer.alloc(0)), lenField(1, Buffer.alloc(0))]))]),
    );
    expect(MetricsBatch.decode(two).dataPointCount).to.equal(3);
    expect(MetricsBatch.decode(two).metricCount()).to.equal(1);
  });

  it('encodeToKeep: bytes that outlive a reused pooled buffer, copied only when they are that buffer', () => {
    const bytes = encode({
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'orders' } }] },
          scopeMetrics: [{ metrics: [{ name: 'm', gauge: { dataPoints: [{ asInt: 7 }] } }] }],
        },
      ],
    });
    const pool = new BufferPool({ poison: true });
    const decodeLeased = (): { batch: MetricsBatch; lease: BufferLease } => {
      const lease = pool.gather([bytes], bytes.length);
      return { batch: MetricsBatch.decode(lease.bytes, lease), lease };
    };
    // Unmodified, in a pooled buffer: a copy, which the buffer's reuse (poisoned on release) leaves intact.
    const pristine = decodeLeased();
    const kept = pristine.batch.encodeToKeep();
    expect(kept.buffer).to.not.equal(pristine.lease.bytes.buffer);
    pristine.lease.release();
    expect(Buffer.compare(kept, bytes)).to.equal(0);
    // Modified: the encoding made once (what encode() returns), outside the pooled buffer.
    const enriched = decodeLeased();
    enriched.batch.addResourceAttributes(0, [['k8s.pod.name', 'orders-1']]);
    const encoded = enriched.batch.encodeToKeep();
    expect(encoded).to.equal(enriched.batch.encode());
    expect(encoded.buffer).to.not.equal(enriched.lease.bytes.buffer);
    enriched.lease.release();
    expect(ref(encoded)).to.deep.equal(
      ref(
        encode({
          resourceMetrics: [
            {
              resource: {
                attributes: [
                  { key: 'service.name', value: { stringValue: 'orders' } },
                  { key: 'k8s.pod.name', value: { stringValue: 'orders-1' } },
                ],
              },
              scopeMetrics: [{ metrics: [{ name: 'm', gauge: { dataPoints: [{ asInt: 7 }] } }] }],
            },
          ],
        }),
      ),
    );
    // Not pooled (an inflated body): the received bytes themselves, which nothing reuses.
    const own = Buffer.from(bytes);
    expect(MetricsBatch.decode(own).encodeToKeep()).to.equal(own);
  });
});

describe('LogsBatch on hand-made requests', () => {
  const Type = protoType(TYPES.exportLogsRequest);
  const encode = (obj: Obj): Uint8Array => Type.encode(Type.fromObject(obj)).finish();
  const ref = (bytes: Uint8Array): Obj => Type.toObject(Type.decode(bytes), { longs: String, bytes: String, defaults: false }) as Obj;
  const record = (r: Obj): Uint8Array => encode({ resourceLogs: [{ scopeLogs: [{ logRecords: [r] }] }] });

  it('trace and span ids of the wrong length are a DecodeError naming the field; empty ids are fine', () => {
    expectDecodeError(() => LogsBatch.decode(record({ traceId: Buffer.alloc(8, 1) })), /LogRecord trace_id is 8 bytes, expected 16/);
    expectDecodeError(() => LogsBatch.decode(record({ spanId: Buffer.alloc(16, 1) })), /LogRecord span_id is 16 bytes, expected 8/);
    expect(LogsBatch.decode(record({ traceId: new Uint8Array(0), spanId: new Uint8Array(0) })).logRecordCount).to.equal(1);
  });

  it('flags is a fixed32 and severity_number a 32-bit enum: other wire types and 6-9 byte varints are refused', () => {
    expectDecodeError(() => LogsBatch.decode(frameItem(Buffer.from([0x40, 0x01]))), /LogRecord field 8 has wire type 0, expected 5/);
    expectDecodeError(() => LogsBatch.decode(frameItem(Buffer.from([0x10, 0x89, 0x80, 0x80, 0x80, 0x80, 0x00]))), /LogRecord field 2 is a 6-byte varint/);
    const negative = frameItem(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(LogsBatch.decode(negative).logRecordCount).to.equal(1);
    expect((((ref(negative).resourceLogs as Obj[])[0]!.scopeLogs as Obj[])[0]!.logRecords as Obj[])[0]!.severityNumber).to.equal(-1);
  });

  it(`a body nested deeper than the limit (${MAX_NESTING_DEPTH} message levels) is a DecodeError, exactly where protobufjs gives up`, () => {
    const nest = (levels: number): Buffer => {
      let v: Buffer = lenField(1, Buffer.from('leaf'));
      for (let i = 0; i < levels; i++)
        v = i % 2 === 0 ? lenField(5, lenField(1, v)) : lenField(6, lenField(1, Buffer.concat([lenField(1, Buffer.from('k')), lenField(2, v)])));
      return v;
    };
    let accepted = 0;
    let rejected = 0;
    for (let levels = 20; levels < 70; levels++) {
      const bytes = frameItem(lenField(5, nest(levels)));
      let refOk = true;
      try {
        ref(bytes);
      } catch (err) {
        expect(String(err)).to.match(/maximum nesting depth/);
        refOk = false;
      }
      if (refOk) {
        expect(LogsBatch.decode(bytes).logRecordCount, `${levels} levels`).to.equal(1);
        accepted++;
      } else {
        expectDecodeError(() => LogsBatch.decode(bytes), new RegExp(`nesting deeper than ${MAX_NESTING_DEPTH} levels`));
        rejected++;
      }
    }
    expect(accepted).to.be.greaterThan(10);
    expect(rejected).to.be.greaterThan(10);
  });
});

// ---- real SDK payloads --------------------------------------------------------------------------------

describe('MetricsBatch and LogsBatch on real OpenTelemetry JS SDK payloads', function () {
  this.timeout(60_000);
  let sink: OtlpSink;
  before(async () => {
    sink = await new OtlpSink().start();
  });
  after(async () => {
    await sink?.stop();
  });

  async function emitMetrics(exporter: PushMetricExporter): Promise<void> {
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'sdk-diff', 'host.cores': 8 }), readers: [reader] });
    const meter = provider.getMeter('diff-test', '0.0.1');
    meter.createCounter('requests', { unit: '{request}' }).add(3, { route: '/a' });
    meter.createUpDownCounter('queue.depth').add(-2);
    const h = meter.createHistogram('http.server.duration', { unit: 'ms' });
    for (const v of [1, 7, 30, 700]) h.record(v, { 'http.target': '/users/<id>', 'http.status_code': 200 });
    meter.createObservableGauge('process.memory.usage', { unit: 'By' }).addCallback((r) => r.observe(123456789));
    await reader.forceFlush();
    await provider.shutdown();
  }

  async function emitLogs(exporter: LogRecordExporter): Promise<void> {
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'sdk-diff' }),
      processors: [new BatchLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('diff-test', '0.0.1');
    logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: 'disk almost full', attributes: { 'code.lineno': 42 } });
    logger.emit({ severityNumber: SeverityNumber.ERROR, body: { nested: { list: [1, 'two'] } }, eventName: 'app.failure' });
    await provider.forceFlush();
    await provider.shutdown();
  }

  it('counts, reads and writes back what the gRPC and HTTP/protobuf metrics exporters send, as protobufjs reads it', async () => {
    sink.clear();
    await emitMetrics(new ProtoMetricExporter({ url: `${sink.httpEndpoint}/v1/metrics`, temporalityPreference: AggregationTemporality.CUMULATIVE }));
    await emitMetrics(new GrpcMetricExporter({ url: `http://${sink.grpcEndpoint}`, temporalityPreference: AggregationTemporality.DELTA }));
    // The first export of each exporter (the forced flush; shutdown exports once more).
    const first = (['http', 'grpc'] as const).map((t) => sink.requests.find((r) => r.path === '/v1/metrics' && r.transport === t));
    const bodies = first.map((r) => r!.body);
    const Type = protoType(TYPES.exportMetricsRequest);
    for (const body of bodies) {
      const batch = MetricsBatch.decode(body);
      // counter 1, up-down counter 1, histogram 1, gauge 1
      expect(batch.dataPointCount).to.equal(4);
      expect(batch.metricCount()).to.equal(4);
      expect(batch.resourceAttribute(0, 'service.name')).to.equal('sdk-diff');
      batch.addResourceAttributes(0, [['k8s.pod.name', 'web-0']]);
      const out = Type.toObject(Type.decode(batch.encode()), { longs: String, defaults: false }) as Obj;
      const want = Type.toObject(Type.decode(body), { longs: String, defaults: false }) as Obj;
      ((want.resourceMetrics as ResourceObj[])[0]!.resource!.attributes as KeyValueObj[]).push({ key: 'k8s.pod.name', value: { stringValue: 'web-0' } });
      expect(out).to.deep.equal(want);
    }
  });

  it('counts, reads and writes back what the gRPC and HTTP/protobuf logs exporters send, as protobufjs reads it', async () => {
    sink.clear();
    await emitLogs(new ProtoLogExporter({ url: `${sink.httpEndpoint}/v1/logs` }));
    await emitLogs(new GrpcLogExporter({ url: `http://${sink.grpcEndpoint}` }));
    const reqs = sink.requests.filter((r) => r.path === '/v1/logs');
    expect(reqs.map((r) => r.transport).sort()).to.deep.equal(['grpc', 'http']);
    const Type = protoType(TYPES.exportLogsRequest);
    for (const { body } of reqs) {
      const batch = LogsBatch.decode(body);
      expect(batch.logRecordCount).to.equal(2);
      batch.addResourceAttributes(0, [['k8s.namespace.name', 'shop']]);
      const out = Type.toObject(Type.decode(batch.encode()), { longs: String, defaults: false }) as Obj;
      const want = Type.toObject(Type.decode(body), { longs: String, defaults: false }) as Obj;
      ((want.resourceLogs as ResourceObj[])[0]!.resource!.attributes as KeyValueObj[]).push({ key: 'k8s.namespace.name', value: { stringValue: 'shop' } });
      expect(out).to.deep.equal(want);
      const records = ((want.resourceLogs as ResourceObj[])[0]!.scopeLogs as ScopeObj[])[0]!.logRecords as Obj[];
      expect(records.map((r) => r.eventName)).to.deep.equal([undefined, 'app.failure']);
    }
  });
});
