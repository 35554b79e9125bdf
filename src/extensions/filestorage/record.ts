/**
 * The on-disk record of the persistent queue. A segment file is a sequence of records:
 *
 * ```
 * offset  size  field
 *  0      4     magic "RLQ1" (0x52 0x4c 0x51 0x31)
 *  4      4     payload length, little endian
 *  8      8     sequence number, little endian
 *  16     4     item count (spans or points), little endian
 *  20     4     CRC-32 of bytes 4..20 and of the payload
 *  24     n     payload (an encoded OTLP export request)
 * ```
 *
 * The checksum covers the length, so a damaged length cannot send the reader astray: a record whose checksum
 * fails is skipped by searching forward for the next magic whose record verifies. A torn tail (the process
 * died mid-write) looks the same and is handled the same way.
 */
import { crc32 } from './crc32';

export const MAGIC = Buffer.from('RLQ1', 'latin1');
export const HEADER_BYTES = 24;
/** Larger payload lengths are treated as corruption (no OTLP request is that large). */
export const MAX_PAYLOAD_BYTES = 1 << 30;

/** The header of a record, with its checksum computed over header fields and payload. */
export function encodeHeader(seq: number, items: number, payload: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(payload.byteLength, 4);
  h.writeBigUInt64LE(BigInt(seq), 8);
  h.writeUInt32LE(items >>> 0, 16);
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(4, 20))), 20);
  return h;
}

/** A whole record as one buffer (header + payload). */
export function encodeRecord(seq: number, items: number, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeHeader(seq, items, payload), payload]);
}

export interface ScannedRecord {
  seq: number;
  items: number;
  /** Offset of the record (its header) in the scanned buffer. */
  offset: number;
  /** Header + payload bytes. */
  length: number;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Damaged regions skipped (each contiguous run of bytes that is not a valid record counts once). */
  corrupt: number;
}

/** Verify the record at `offset`; returns it or undefined when the bytes there are not a valid record. */
export function recordAt(buf: Uint8Array, offset: number): ScannedRecord | undefined {
  if (offset + HEADER_BYTES > buf.length) return undefined;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.readUInt32BE(offset) !== MAGIC.readUInt32BE(0)) return undefined;
  const len = b.readUInt32LE(offset + 4);
  if (len > MAX_PAYLOAD_BYTES || offset + HEADER_BYTES + len > b.length) return undefined;
  const want = b.readUInt32LE(offset + 20);
  const got = crc32(b.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + len), crc32(b.subarray(offset + 4, offset + 20)));
  if (want !== got) return undefined;
  return { seq: Number(b.readBigUInt64LE(offset + 8)), items: b.readUInt32LE(offset + 16), offset, length: HEADER_BYTES + len };
}

/** Read every valid record of a segment's bytes, skipping (and counting) damaged regions. */
export function scanRecords(buf: Uint8Array): ScanResult {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: ScannedRecord[] = [];
  let corrupt = 0;
  let pos = 0;
  while (pos < b.length) {
    const r = recordAt(b, pos);
    if (r !== undefined) {
      records.push(r);
      pos += r.length;
      continue;
    }
    // Not a record here: one damaged region up to the next offset where a valid record starts.
    corrupt++;
    let next = b.indexOf(MAGIC, pos + 1);
    while (next !== -1 && recordAt(b, next) === undefined) next = b.indexOf(MAGIC, next + 1);
    if (next === -1) break;
    pos = next;
  }
  return { records, corrupt };
}
