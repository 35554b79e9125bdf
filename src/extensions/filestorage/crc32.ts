/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial). Node 20.15+ has it natively as `zlib.crc32`; older Node 20
 * releases get the table-driven fallback below, which computes the same function.
 */
import * as zlib from 'node:zlib';

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** Table-driven CRC-32; `crc` continues a previous result (0 to start). */
export function crc32Fallback(data: Uint8Array, crc = 0): number {
  table ??= makeTable();
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `crc` (0 to start). */
export const crc32: (data: Uint8Array, crc?: number) => number = typeof native === 'function' ? (data, crc = 0) => native(data, crc) >>> 0 : crc32Fallback;
