/**
 * HPACK (RFC 7541): a decoder for the header blocks a peer sends, and a stateless encoder for the ones we send.
 *
 * Strings are Latin-1 on both sides: a header field is octets, and Latin-1 maps each octet to one UTF-16 code unit
 * and back, so nothing is lost or reinterpreted (node:http2 sends header strings the same way).
 */

/** A malformed header block: the connection must end with COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  override name = 'HpackError';
}

/** The decoded list exceeds SETTINGS_MAX_HEADER_LIST_SIZE: a stream error; the dynamic table stays consistent. */
export class HeaderListTooLargeError extends Error {
  override name = 'HeaderListTooLargeError';
}

/** RFC 7541 Appendix A. Index 1 is STATIC_TABLE[0]. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;

/** The default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** Per-entry overhead in the table's size and in the header list's size (RFC 7541 §4.1, RFC 9113 §6.5.2). */
const ENTRY_OVERHEAD = 32;

/**
 * Code lengths in bits of RFC 7541 Appendix B, symbols 0–255 and EOS (256). The code is canonical: codes are
 * assigned in order of length, then of symbol, so the lengths determine every code (built below).
 */
// prettier-ignore
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //         ' ' … '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //              '0' … '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                '@' … 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //             'P' … '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                '`' … 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //            'p' … 0x7f
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
  30, //                                                             EOS
];
const EOS = 256;

/** The canonical codes of HUFFMAN_LENGTHS, right-aligned. */
function canonicalCodes(lengths: readonly number[]): number[] {
  const order = lengths.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  const codes = new Array<number>(lengths.length).fill(0);
  let code = 0;
  let len = order[0]!.len;
  for (let i = 0; i < order.length; i++) {
    const e = order[i]!;
    if (i > 0) code = (code + 1) * 2 ** (e.len - len);
    len = e.len;
    codes[e.sym] = code;
  }
  return codes;
}

/**
 * The decoder walks the code's tree one input byte at a time. A state is an internal node (0 is the root); for
 * each state and byte, HUFFMAN_STEP holds the state reached, the symbols completed on the way (at most two, as no
 * code is shorter than 5 bits) and whether EOS was met. HUFFMAN_ACCEPT says whether a block may end in a state:
 * at the root, or within the first 7 bits of EOS (the padding, RFC 7541 §5.2).
 *
 * Entry layout: bits 0–7 next state, 8–15 first symbol, 16–23 second symbol, 24–25 symbol count, 26 EOS met.
 */
const HUFFMAN_STEP = new Uint32Array(256 * 256);
const HUFFMAN_ACCEPT = new Uint8Array(256);
const STEP_EOS = 1 << 26;

function buildHuffmanDecoder(): void {
  const codes = canonicalCodes(HUFFMAN_LENGTHS);
  // The tree: children[2 * node + bit] is ≥ 0 for an internal node, -1 - symbol for a leaf.
  const children: number[] = [-0x10000, -0x10000];
  const depth: number[] = [0];
  const allOnes: boolean[] = [true];
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = HUFFMAN_LENGTHS[sym]!;
    const code = codes[sym]!;
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * node + bit;
      if (i === 0) {
        children[slot] = -1 - sym;
        break;
      }
      if (children[slot] === -0x10000) {
        children[slot] = nodes;
        children.push(-0x10000, -0x10000);
        depth.push(depth[node]! + 1);
        allOnes.push(allOnes[node]! && bit === 1);
        nodes++;
      }
      node = children[slot]!;
    }
  }
  if (nodes !== 256 || children.includes(-0x10000)) throw new Error('HPACK Huffman table is not a complete code');
  for (let state = 0; state < 256; state++) {
    HUFFMAN_ACCEPT[state] = state === 0 || (allOnes[state]! && depth[state]! <= 7) ? 1 : 0;
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let count = 0;
      let syms = 0;
      let eos = 0;
      for (let i = 7; i >= 0; i--) {
        const next = children[2 * node + ((byte >> i) & 1)]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        const sym = -1 - next;
        if (sym === EOS) eos = STEP_EOS;
        else syms |= sym << (8 + 8 * count++);
        node = 0;
      }
      HUFFMAN_STEP[state * 256 + byte] = node | syms | (count << 24) | eos;
    }
  }
}
buildHuffmanDecoder();

/** Buffer's own Latin-1 decoder without toString's argument handling (node's typings leave it out). */
type Latin1Slicer = { latin1Slice(start: number, end: number): string };

/**
 * Bytes [start, end) as a Latin-1 string. Up to 8 bytes are built in JavaScript: a call into the runtime costs
 * about four times as much as the string, and most header names and values that are not indexed are short.
 */
function latin1(b: Buffer, start: number, end: number): string {
  const s = start;
  switch (end - start) {
    case 0:
      return '';
    case 1:
      return String.fromCharCode(b[s]!);
    case 2:
      return String.fromCharCode(b[s]!, b[s + 1]!);
    case 3:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
    case 5:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!);
    case 6:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!);
    case 7:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!);
    case 8:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!);
    default:
      return (b as unknown as Latin1Slicer).latin1Slice(start, end);
  }
}

/** One reusable output area for Huffman-decoded strings (a string of n coded bytes decodes to at most 8n/5). */
let huffmanScratch = Buffer.allocUnsafe(4096);

function huffmanDecode(block: Buffer, start: number, end: number): string {
  const need = Math.ceil(((end - start) * 8) / 5);
  if (huffmanScratch.length < need) huffmanScratch = Buffer.allocUnsafe(Math.max(need, huffmanScratch.length * 2));
  const out = huffmanScratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const step = HUFFMAN_STEP[(state << 8) | block[i]!]!;
    if ((step & STEP_EOS) !== 0) throw new HpackError('HPACK: EOS in a Huffman-coded string');
    const count = (step >>> 24) & 3;
    if (count !== 0) {
      out[n++] = (step >>> 8) & 0xff;
      if (count === 2) out[n++] = (step >>> 16) & 0xff;
    }
    state = step & 0xff;
  }
  if (HUFFMAN_ACCEPT[state] === 0) throw new HpackError('HPACK: Huffman padding longer than 7 bits or not the EOS prefix');
  return latin1(out, 0, n);
}

/** Integers larger than this are refused: no header field, table size or index comes near it. */
const MAX_INTEGER = 0x7fffffff;

export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE we advertise: the largest dynamic table size update the peer may send. */
  maxTableSize?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded list, counting name + value + 32 per field. */
  maxHeaderListSize?: number;
}

const EMPTY = Buffer.alloc(0);

export class HpackDecoder {
  private readonly maxTableSize: number;
  private readonly maxHeaderListSize: number;
  /** The size limit the peer chose with its last dynamic table size update (≤ maxTableSize). */
  private tableLimit: number;
  private tableSize = 0;
  /** The dynamic table as a ring: entry k (0 = newest) is at names/values[(head - k) mod capacity]. */
  private names: string[] = new Array<string>(16);
  private values: string[] = new Array<string>(16);
  private head = -1;
  private count = 0;
  // The decoder's cursor over the block being decoded.
  private block: Buffer = EMPTY;
  private pos = 0;

  constructor(opts: HpackDecoderOptions = {}) {
    this.maxTableSize = opts.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.maxHeaderListSize = opts.maxHeaderListSize ?? Infinity;
    this.tableLimit = this.maxTableSize;
  }

  /**
   * One complete header block (HEADERS + CONTINUATION payloads concatenated, padding and priority removed).
   * Returns [name0, value0, name1, value1, …]. Throws HpackError on malformed input. A list larger than
   * maxHeaderListSize is decoded to the end (so the dynamic table stays in step with the peer's) and then
   * refused with HeaderListTooLargeError.
   */
  decode(block: Buffer): string[] {
    this.block = block;
    this.pos = 0;
    try {
      return this.fields();
    } finally {
      this.block = EMPTY;
    }
  }

  private fields(): string[] {
    const block = this.block;
    const out: string[] = [];
    let listSize = 0;
    let fields = 0;
    let sizeUpdates = 0;
    const end = block.length;
    while (this.pos < end) {
      const b = block[this.pos]!;
      let name: string;
      let value: string;
      if (b >= 0x80) {
        // Indexed header field (§6.1).
        const index = this.integer(7);
        if (index === 0) throw new HpackError('HPACK: index 0');
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if (b >= 0x40) {
        // Literal with incremental indexing (§6.2.1).
        name = b === 0x40 ? this.skipAndString() : this.indexedName(6);
        value = this.string();
        this.insert(name, value);
      } else if (b >= 0x20) {
        // Dynamic table size update (§6.3): only at the start of a block (§4.2), at most two (a lowered and a
        // raised limit between two blocks).
        if (fields !== 0 || ++sizeUpdates > 2) throw new HpackError('HPACK: dynamic table size update after a header field');
        const size = this.integer(5);
        if (size > this.maxTableSize) throw new HpackError(`HPACK: table size update to ${size} above the advertised ${this.maxTableSize}`);
        this.tableLimit = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        name = (b & 0x0f) === 0 ? this.skipAndString() : this.indexedName(4);
        value = this.string();
      }
      fields++;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= this.maxHeaderListSize) out.push(name, value);
    }
    if (listSize > this.maxHeaderListSize) {
      throw new HeaderListTooLargeError(`header list of ${listSize} bytes exceeds ${this.maxHeaderListSize}`);
    }
    return out;
  }

  /** The current dynamic table size (RFC 7541 §4.1), for tests and diagnostics. */
  get dynamicTableSize(): number {
    return this.tableSize;
  }

  /** An integer with an n-bit prefix at pos (§5.1). */
  private integer(n: number): number {
    const block = this.block;
    const max = (1 << n) - 1;
    let value = block[this.pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= block.length) throw new HpackError('HPACK: integer truncated');
      const b = block[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) throw new HpackError('HPACK: integer too large');
      if ((b & 0x80) === 0) return value;
      shift += 7;
      // Zero continuation bytes add nothing but length; 5 of them already exceed 31 bits.
      if (shift > 28) throw new HpackError('HPACK: integer too long');
    }
  }

  /** A string literal at pos (§5.2), within the block. */
  private string(): string {
    const block = this.block;
    if (this.pos >= block.length) throw new HpackError('HPACK: string literal truncated');
    const huffman = block[this.pos]! >= 0x80;
    const len = this.integer(7);
    const start = this.pos;
    if (len > block.length - start) throw new HpackError('HPACK: string literal longer than the block');
    this.pos = start + len;
    return huffman ? huffmanDecode(block, start, start + len) : latin1(block, start, start + len);
  }

  private skipAndString(): string {
    this.pos++;
    return this.string();
  }

  private indexedName(n: number): string {
    return this.nameAt(this.integer(n));
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) {
      if (index === 0) throw new HpackError('HPACK: index 0');
      return STATIC_TABLE[index - 1]![0];
    }
    return this.names[this.slot(index)]!;
  }

  private valueAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]![1];
    return this.values[this.slot(index)]!;
  }

  /** The ring slot of dynamic table index (62 = the newest entry). */
  private slot(index: number): number {
    const k = index - STATIC_COUNT - 1;
    if (k >= this.count) throw new HpackError(`HPACK: index ${index} beyond the table (${STATIC_COUNT + this.count} entries)`);
    const capacity = this.names.length;
    return (this.head - k + capacity) % capacity;
  }

  /** Adds an entry, evicting old ones first (§4.4); an entry larger than the table empties it and is not added. */
  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.tableLimit) {
      this.evict(this.tableLimit);
      return;
    }
    this.evict(size);
    if (this.count === this.names.length) this.grow();
    const capacity = this.names.length;
    this.head = (this.head + 1) % capacity;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.tableSize += size;
  }

  /** Evicts the oldest entries until `room` more bytes fit under the limit. */
  private evict(room: number): void {
    const capacity = this.names.length;
    while (this.count > 0 && this.tableSize + room > this.tableLimit) {
      const oldest = (this.head - this.count + 1 + capacity) % capacity;
      this.tableSize -= this.names[oldest]!.length + this.values[oldest]!.length + ENTRY_OVERHEAD;
      this.names[oldest] = '';
      this.values[oldest] = '';
      this.count--;
    }
  }

  private grow(): void {
    const capacity = this.names.length;
    const names = new Array<string>(capacity * 2);
    const values = new Array<string>(capacity * 2);
    for (let k = this.count - 1, i = 0; k >= 0; k--, i++) {
      const from = (this.head - k + capacity) % capacity;
      names[i] = this.names[from]!;
      values[i] = this.values[from]!;
    }
    this.names = names;
    this.values = values;
    this.head = this.count - 1;
  }
}
/** Static-table lookups for the encoder: "name\0value" → index, and name → its first index. */
const STATIC_PAIR = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_PAIR.has(`${name}\0${value}`)) STATIC_PAIR.set(`${name}\0${value}`, i + 1);
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
});
/** Fields sent "never indexed" (§6.2.3), so no intermediary puts credentials in a table. */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie']);

const integerLength = (value: number, n: number): number => {
  const max = (1 << n) - 1;
  if (value < max) return 1;
  let len = 2;
  for (let v = value - max; v >= 0x80; v = Math.floor(v / 128)) len++;
  return len;
};

const writeInteger = (out: Buffer, pos: number, value: number, n: number, first: number): number => {
  const max = (1 << n) - 1;
  if (value < max) {
    out[pos++] = first | value;
    return pos;
  }
  out[pos++] = first | max;
  let v = value - max;
  while (v >= 0x80) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
};

const checkLatin1 = (s: string): void => {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new TypeError(`header string ${JSON.stringify(s)} has a character outside Latin-1`);
  }
};

/**
 * Stateless encoding: static-table indexes and literals without indexing, no Huffman, so the same headers give
 * the same bytes on every connection and constant header blocks can be built once at module load.
 * `headers` is [name0, value0, name1, value1, …]; names must already be lowercase.
 */
export function encodeHeaderBlock(headers: readonly string[]): Buffer {
  if (headers.length % 2 !== 0) throw new TypeError('headers must be name, value pairs');
  let size = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    checkLatin1(name);
    checkLatin1(value);
    const pair = SENSITIVE.has(name) ? undefined : STATIC_PAIR.get(`${name}\0${value}`);
    if (pair !== undefined) {
      size += integerLength(pair, 7);
      continue;
    }
    const nameIndex = STATIC_NAME.get(name);
    size += nameIndex !== undefined ? integerLength(nameIndex, 4) : 1 + integerLength(name.length, 7) + name.length;
    size += integerLength(value.length, 7) + value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    const sensitive = SENSITIVE.has(name);
    const pair = sensitive ? undefined : STATIC_PAIR.get(`${name}\0${value}`);
    if (pair !== undefined) {
      pos = writeInteger(out, pos, pair, 7, 0x80);
      continue;
    }
    const first = sensitive ? 0x10 : 0x00;
    const nameIndex = STATIC_NAME.get(name);
    if (nameIndex !== undefined) pos = writeInteger(out, pos, nameIndex, 4, first);
    else {
      out[pos++] = first;
      pos = writeInteger(out, pos, name.length, 7, 0);
      pos += out.write(name, pos, 'latin1');
    }
    pos = writeInteger(out, pos, value.length, 7, 0);
    pos += out.write(value, pos, 'latin1');
  }
  return out;
}

/** Prefix for the first block after the peer lowered SETTINGS_HEADER_TABLE_SIZE to n (§6.3). */
export function tableSizeUpdate(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > MAX_INTEGER) throw new RangeError(`table size ${n}`);
  const out = Buffer.allocUnsafe(integerLength(n, 5));
  writeInteger(out, 0, n, 5, 0x20);
  return out;
}
