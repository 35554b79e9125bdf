/**
 * fast-check arbitraries of OTLP values shared by the differential tests of the pdata readers and writers
 * (src/pdata/*.test.ts), in the plain object shape protobufjs `fromObject` / `toObject` use (camelCase, 64-bit
 * integers as decimal strings), plus byte-level helpers: raw protobuf fields and mutations of valid requests.
 */
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import type { AttrValue } from '../../src/pdata/attributes';

/** Multiplies the number of generated cases (ROUTELENS_FUZZ_SCALE=20 for a long local fuzzing run). */
export const SCALE = Math.max(1, Number(process.env.ROUTELENS_FUZZ_SCALE ?? 1) || 1);
export const runs = (n: number): number => Math.round(n * SCALE);

export interface AnyValueObj {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values: AnyValueObj[] };
  kvlistValue?: { values: KeyValueObj[] };
  bytesValue?: Uint8Array;
}
export interface KeyValueObj {
  key: string;
  value?: AnyValueObj;
}

export const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 }));
export const commonKeys = ['service.name', 'http.route', 'http.method', 'http.request.method', 'http.response.status_code', 'url.path', 'db.system', 'k', ''];
export const keyArb = fc.oneof(fc.constantFrom(...commonKeys), text);
export const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((b) => b.toString());
export const time = fc.oneof(
  u64,
  fc.bigInt({ min: 1_600_000_000_000_000_000n, max: 1_900_000_000_000_000_000n }).map(String),
  fc.constantFrom('0', '18446744073709551615', '9007199254740993'),
);
export const int64 = fc
  .oneof(
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
    fc.integer({ min: -1000, max: 1000 }).map(BigInt),
    fc.constantFrom(-(1n << 63n), (1n << 63n) - 1n, -1n, 0n, (1n << 53n) + 1n),
  )
  .map(String);
export const u32 = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.nat({ max: 0xffffffff }));
export const bytesOf = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
export const optionalId = (n: number): fc.Arbitrary<Uint8Array | undefined> =>
  fc.oneof({ weight: 6, arbitrary: bytesOf(n) }, { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.constant(undefined) });

const scalarValue: fc.Arbitrary<AnyValueObj> = fc.oneof(
  text.map((s) => ({ stringValue: s })),
  fc.boolean().map((b) => ({ boolValue: b })),
  int64.map((i) => ({ intValue: i })),
  fc.double().map((d) => ({ doubleValue: d })),
  fc.uint8Array({ maxLength: 10 }).map((b) => ({ bytesValue: b })),
  fc.constant({}), // a KeyValue whose AnyValue has no value set
);

export const { anyValue } = fc.letrec<{ anyValue: AnyValueObj; kv: KeyValueObj }>((tie) => ({
  anyValue: fc.oneof(
    { maxDepth: 4, depthSize: 'small' },
    scalarValue,
    fc.array(tie('anyValue'), { maxLength: 3 }).map((values) => ({ arrayValue: { values } })),
    fc.array(tie('kv'), { maxLength: 3 }).map((values) => ({ kvlistValue: { values } })),
  ),
  kv: fc.record({ key: keyArb, value: tie('anyValue') }, { requiredKeys: ['key'] }),
}));

/** Attributes with unique keys (as OTLP requires): the view's first-match lookup is then unambiguous. */
export const attributes = (maxLength: number): fc.Arbitrary<KeyValueObj[]> =>
  fc.uniqueArray(fc.record({ key: keyArb, value: anyValue }, { requiredKeys: ['key'] }), { maxLength, selector: (kv) => kv.key });

export const resourceAttributes: fc.Arbitrary<KeyValueObj[]> = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: text.map((s): AnyValueObj => ({ stringValue: s })) },
      { weight: 1, arbitrary: fc.constant<AnyValueObj>({ stringValue: '' }) },
      { weight: 1, arbitrary: int64.map((i): AnyValueObj => ({ intValue: i })) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    attributes(4),
  )
  .map(([service, rest]) => {
    const others = rest.filter((kv) => kv.key !== 'service.name');
    return service === undefined ? others : [{ key: 'service.name', value: service }, ...others];
  });

/** Raw fields of a message: tag number and the byte range of the whole field and of its content. */
export function rawFields(buf: Uint8Array): { no: number; whole: Uint8Array; content: Uint8Array }[] {
  const r = protobuf.Reader.create(buf);
  const out: { no: number; whole: Uint8Array; content: Uint8Array }[] = [];
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    let cStart = r.pos;
    if ((tag & 7) === 2) {
      const len = r.uint32();
      cStart = r.pos;
      r.skip(len);
    } else r.skipType(tag & 7);
    out.push({ no: tag >>> 3, whole: buf.subarray(start, r.pos), content: buf.subarray(cStart, r.pos) });
  }
  return out;
}

/** The scalar an AnyValue reads as through the hot-path attribute lookup. */
export function scalarOf(v: AnyValueObj | undefined): AttrValue | undefined {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(BigInt(v.intValue));
  if (v.doubleValue !== undefined) return v.doubleValue;
  return undefined; // arrays, maps, bytes, empty
}

/** Byte-level damage to a valid request: flips, sets, truncations, insertions, deletions. */
export const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08, 0x0b, 0x0c) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
);
export type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

export function mutate(bytes: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = Buffer.from(bytes);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = (b[at] as number) ^ m.xor;
    else if (m.kind === 'set') b[at] = m.value;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
  }
  return b;
}
