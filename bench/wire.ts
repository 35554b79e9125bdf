/**
 * Protobuf bits the benchmark's load generator and sink share: a minimal writer (used once, to pre-encode the
 * request pool), the marker layout that carries a send timestamp through the collectors, and a span counter
 * that walks `ExportTraceServiceRequest` bytes without decoding anything.
 *
 * Marker: the first span of every request the generator sends has
 *   trace_id = MARKER_MAGIC (8 bytes) ‖ sequence number (uint64 LE)
 *   span_id  = send time, process.hrtime.bigint() (CLOCK_MONOTONIC, shared by all processes), uint64 LE
 * The generator patches those 16 + 8 bytes in place before each send; the sink finds marker spans by the magic
 * and subtracts. Collectors forward span ids unchanged, so this survives any re-encoding.
 */

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
export const LOGS_EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

/** 8 bytes no random id will realistically start with. */
export const MARKER_MAGIC = Buffer.from('52c0de5bb0a7e11e', 'hex');
/** Placeholder span id written at encode time so the patch offset can be found. */
export const MARKER_SPAN_ID_PLACEHOLDER = Buffer.from('feedfacecafebeef', 'hex');

// ---- writer ---------------------------------------------------------------------------------------------------

const SMALL = Array.from({ length: 128 }, (_, i) => Buffer.from([i]));

/** Builds one message; nested messages are built with their own writer and added with `message()`. */
export class PbWriter {
  readonly #parts: Buffer[] = [];
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #push(b: Buffer): void {
    this.#parts.push(b);
    this.#len += b.length;
  }

  #varint(v: number): void {
    if (v < 128) {
      this.#push(SMALL[v] as Buffer);
      return;
    }
    const bytes: number[] = [];
    let n = v;
    while (n >= 0x80) {
      bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    bytes.push(n);
    this.#push(Buffer.from(bytes));
  }

  #tag(field: number, wire: number): void {
    this.#varint(field * 8 + wire);
  }

  uint(field: number, v: number): this {
    if (v === 0) return this;
    this.#tag(field, 0);
    this.#varint(v);
    return this;
  }

  /** int64 (non-negative only, which is all the generator writes). */
  int64(field: number, v: number): this {
    this.#tag(field, 0);
    this.#varint(v);
    return this;
  }

  bool(field: number, v: boolean): this {
    this.#tag(field, 0);
    this.#varint(v ? 1 : 0);
    return this;
  }

  double(field: number, v: number): this {
    this.#tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.#push(b);
    return this;
  }

  fixed64(field: number, v: bigint): this {
    this.#tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.#push(b);
    return this;
  }

  fixed32(field: number, v: number): this {
    this.#tag(field, 5);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.#push(b);
    return this;
  }

  bytes(field: number, v: Buffer): this {
    this.#tag(field, 2);
    this.#varint(v.length);
    this.#push(v);
    return this;
  }

  string(field: number, v: string): this {
    if (v === '') return this;
    return this.bytes(field, Buffer.from(v, 'utf8'));
  }

  message(field: number, w: PbWriter): this {
    return this.bytes(field, w.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts, this.#len);
  }
}

export type AttrValue = string | number | boolean | { double: number };

/** `KeyValue { key = 1; AnyValue value = 2 }`; integers become int_value, `{double}` double_value. */
export function keyValue(key: string, value: AttrValue): PbWriter {
  const any = new PbWriter();
  if (typeof value === 'string') any.bytes(1, Buffer.from(value, 'utf8'));
  else if (typeof value === 'boolean') any.bool(2, value);
  else if (typeof value === 'number') any.int64(3, value);
  else any.double(4, value.double);
  return new PbWriter().string(1, key).message(2, any);
}

// ---- counting reader ------------------------------------------------------------------------------------------

/** What the sink learns from one request. */
export interface CountResult {
  spans: number;
  resources: number;
  /** Resources carrying a `k8s.pod.name` attribute (only computed when asked). */
  enrichedResources: number;
  /** Marker spans found: [sequence, sendNs] pairs are pushed to `markers`. */
  markers: number;
}

const M0 = MARKER_MAGIC[0] as number;
const M1 = MARKER_MAGIC[1] as number;
const K8S_POD_NAME = Buffer.from('k8s.pod.name', 'utf8');

function readVarint(b: Buffer, pos: number, out: { pos: number }): number {
  let result = 0;
  let mul = 1;
  let p = pos;
  for (;;) {
    if (p >= b.length) throw new Error('truncated varint');
    const byte = b[p++] as number;
    result += (byte & 0x7f) * mul;
    if (byte < 0x80) break;
    mul *= 128;
    if (mul > 2 ** 63) throw new Error('varint too long');
  }
  out.pos = p;
  return result;
}

/** Position after skipping a field of `wire` type starting at `pos` (just after the tag). */
function skip(b: Buffer, wire: number, pos: number, cur: { pos: number }): number {
  switch (wire) {
    case 0:
      readVarint(b, pos, cur);
      return cur.pos;
    case 1:
      return pos + 8;
    case 2: {
      const len = readVarint(b, pos, cur);
      return cur.pos + len;
    }
    case 5:
      return pos + 4;
    default:
      throw new Error(`unsupported wire type ${wire}`);
  }
}

/**
 * Count the spans of an `ExportTraceServiceRequest` and collect marker spans. Walks tags and lengths only:
 * ResourceSpans(1) → ScopeSpans(2) → Span(2); for every span it looks at its trace_id (field 1) to recognise a
 * marker. `checkEnrichment` also looks for a `k8s.pod.name` key in every resource (a byte search).
 */
export function countSpans(b: Buffer, markers: (seq: number, sendNs: number) => void, checkEnrichment: boolean): CountResult {
  const res: CountResult = { spans: 0, resources: 0, enrichedResources: 0, markers: 0 };
  const cur = { pos: 0 };
  let p = 0;
  while (p < b.length) {
    const tag = readVarint(b, p, cur);
    p = cur.pos;
    if (tag !== 0x0a) {
      p = skip(b, tag & 7, p, cur);
      continue;
    }
    const rsLen = readVarint(b, p, cur);
    const rsStart = cur.pos;
    const rsEnd = rsStart + rsLen;
    res.resources++;
    let q = rsStart;
    while (q < rsEnd) {
      const t = readVarint(b, q, cur);
      q = cur.pos;
      if (t === 0x0a && checkEnrichment) {
        const len = readVarint(b, q, cur);
        const rStart = cur.pos;
        const idx = b.indexOf(K8S_POD_NAME, rStart);
        if (idx >= 0 && idx < rStart + len) res.enrichedResources++;
        q = rStart + len;
        continue;
      }
      if (t !== 0x12) {
        q = skip(b, t & 7, q, cur);
        continue;
      }
      const ssLen = readVarint(b, q, cur);
      const ssEnd = cur.pos + ssLen;
      let r = cur.pos;
      while (r < ssEnd) {
        const st = readVarint(b, r, cur);
        r = cur.pos;
        if (st !== 0x12) {
          r = skip(b, st & 7, r, cur);
          continue;
        }
        const spLen = readVarint(b, r, cur);
        const spStart = cur.pos;
        const spEnd = spStart + spLen;
        res.spans++;
        // trace_id is field 1 and every encoder we know writes it first; fall back to a walk otherwise.
        if (b[spStart] === 0x0a && b[spStart + 1] === 0x10) {
          if (b[spStart + 2] === M0 && b[spStart + 3] === M1 && b.compare(MARKER_MAGIC, 0, 8, spStart + 2, spStart + 10) === 0) {
            readMarker(b, spStart, spEnd, markers, res, cur);
          }
        } else {
          const tid = findField(b, spStart, spEnd, 0x0a, cur);
          if (tid >= 0 && b[tid] === 0x10 && b.compare(MARKER_MAGIC, 0, 8, tid + 1, tid + 9) === 0) readMarker(b, spStart, spEnd, markers, res, cur);
        }
        r = spEnd;
      }
      q = ssEnd;
    }
    p = rsEnd;
  }
  return res;
}

/** Offset of the length varint of the first field with `tag` in [start, end), or -1. */
function findField(b: Buffer, start: number, end: number, tag: number, cur: { pos: number }): number {
  let p = start;
  while (p < end) {
    const t = readVarint(b, p, cur);
    p = cur.pos;
    if (t === tag) return p;
    p = skip(b, t & 7, p, cur);
  }
  return -1;
}

function readMarker(b: Buffer, spStart: number, spEnd: number, markers: (seq: number, sendNs: number) => void, res: CountResult, cur: { pos: number }): void {
  const tid = findField(b, spStart, spEnd, 0x0a, cur);
  const sid = findField(b, spStart, spEnd, 0x12, cur);
  if (tid < 0 || sid < 0 || b[tid] !== 0x10 || b[sid] !== 0x08) return;
  const seq = Number(b.readBigUInt64LE(tid + 1 + 8));
  const sendNs = Number(b.readBigUInt64LE(sid + 1));
  res.markers++;
  markers(seq, sendNs);
}

/**
 * Offsets of the 16 trace-id bytes of every span of an encoded ExportTraceServiceRequest, except the marker's:
 * where the generator writes a fresh id per send, so that traces do not repeat when the pool comes round again
 * (trace assembly and tail sampling would otherwise see every pooled trace again every few seconds).
 */
export function traceIdOffsets(b: Buffer): number[] {
  const out: number[] = [];
  const cur = { pos: 0 };
  const within = (start: number, end: number, tag: number, visit: (s: number, e: number) => void): void => {
    let p = start;
    while (p < end) {
      const t = readVarint(b, p, cur);
      p = cur.pos;
      if (t !== tag) {
        p = skip(b, t & 7, p, cur);
        continue;
      }
      const len = readVarint(b, p, cur);
      const from = cur.pos;
      visit(from, from + len);
      p = from + len;
    }
  };
  within(0, b.length, 0x0a, (rs, re) =>
    within(rs, re, 0x12, (ss, se) =>
      within(ss, se, 0x12, (sp, spEnd) => {
        const tid = findField(b, sp, spEnd, 0x0a, cur);
        if (tid >= 0 && b[tid] === 0x10 && b.compare(MARKER_MAGIC, 0, 8, tid + 1, tid + 9) !== 0) out.push(tid + 1);
      }),
    ),
  );
  return out;
}
