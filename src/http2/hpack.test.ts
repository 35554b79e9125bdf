/**
 * HPACK against the RFC's own examples, against nghttp2 (node:http2) in both directions, and against hostile bytes.
 * The frames around the header blocks are read and written here by hand, so nothing of src/http2 but HPACK is
 * under test.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { HeaderListTooLargeError, HpackDecoder, HpackError, encodeHeaderBlock, tableSizeUpdate } from './hpack';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (flat: readonly string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
};

const FRAME_HEADERS = 1;
const FRAME_SETTINGS = 4;
const FRAME_CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, id: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
}

/** A header block as HEADERS plus as many CONTINUATION frames as 16 KiB frames need. */
function headerFrames(id: number, block: Buffer, endStream: boolean): Buffer {
  const max = 16384;
  const parts: Buffer[] = [];
  for (let at = 0; at === 0 || at < block.length; at += max) {
    const chunk = block.subarray(at, at + max);
    const last = at + max >= block.length;
    const type = at === 0 ? FRAME_HEADERS : FRAME_CONTINUATION;
    const flags = (last ? END_HEADERS : 0) | (at === 0 && endStream ? END_STREAM : 0);
    parts.push(frame(type, flags, id, chunk));
  }
  return Buffer.concat(parts);
}

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** Splits a byte stream into frames (after the client preface, when `preface` is set). */
class FrameReader {
  private buf = Buffer.alloc(0);
  constructor(private preface: boolean) {}
  push(data: Buffer): Frame[] {
    this.buf = Buffer.concat([this.buf, data]);
    if (this.preface) {
      if (this.buf.length < PREFACE.length) return [];
      expect(this.buf.subarray(0, PREFACE.length).equals(PREFACE)).to.equal(true);
      this.buf = this.buf.subarray(PREFACE.length);
      this.preface = false;
    }
    const out: Frame[] = [];
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      out.push({ type: this.buf[3]!, flags: this.buf[4]!, id: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) });
      this.buf = this.buf.subarray(9 + len);
    }
    return out;
  }
}

/** The header block fragment of a HEADERS frame: padding and priority removed. */
function headersFragment(f: Frame): Buffer {
  let p = f.payload;
  let pad = 0;
  if (f.flags & PADDED) {
    pad = p[0]!;
    p = p.subarray(1);
  }
  if (f.flags & PRIORITY) p = p.subarray(5);
  return p.subarray(0, p.length - pad);
}

function expectHpackError(block: Buffer, decoder = new HpackDecoder()): void {
  expect(() => decoder.decode(block)).to.throw(HpackError);
}

describe('HPACK (RFC 7541)', () => {
  describe('the examples of Appendix C', () => {
    it('C.1: integers with 5- and 8-bit prefixes, as table size updates', () => {
      expect(tableSizeUpdate(10)).to.deep.equal(hex('2a'));
      expect(tableSizeUpdate(1337)).to.deep.equal(hex('3f9a0a'));
      expect(tableSizeUpdate(31)).to.deep.equal(hex('3f00'));
      expect(tableSizeUpdate(0)).to.deep.equal(hex('20'));
    });

    it('C.2: one literal field of each kind, and an indexed one', () => {
      const d = new HpackDecoder();
      expect(d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'))).to.deep.equal(['custom-key', 'custom-header']);
      expect(d.dynamicTableSize).to.equal(55);
      expect(new HpackDecoder().decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).to.deep.equal([':path', '/sample/path']);
      const never = new HpackDecoder();
      expect(never.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).to.deep.equal(['password', 'secret']);
      expect(never.dynamicTableSize).to.equal(0);
      expect(new HpackDecoder().decode(hex('82'))).to.deep.equal([':method', 'GET']);
    });

    const requests = [
      [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
      [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
      [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
    ];

    it('C.3: three requests without Huffman on one connection', () => {
      const d = new HpackDecoder();
      expect(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'))).to.deep.equal(requests[0]);
      expect(d.dynamicTableSize).to.equal(57);
      expect(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'))).to.deep.equal(requests[1]);
      expect(d.dynamicTableSize).to.equal(110);
      expect(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'))).to.deep.equal(requests[2]);
      expect(d.dynamicTableSize).to.equal(164);
    });

    it('C.4: the same requests with Huffman', () => {
      const d = new HpackDecoder();
      expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).to.deep.equal(requests[0]);
      expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))).to.deep.equal(requests[1]);
      expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).to.deep.equal(requests[2]);
      expect(d.dynamicTableSize).to.equal(164);
    });

    const responses = [
      [':status', '302', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT', 'location', 'https://www.example.com'],
      [':status', '307', 'cache-control', 'private', 'date', 'Mon, 21 Oct 2013 20:13:21 GMT', 'location', 'https://www.example.com'],
      [
        ':status',
        '200',
        'cache-control',
        'private',
        'date',
        'Mon, 21 Oct 2013 20:13:22 GMT',
        'location',
        'https://www.example.com',
        'content-encoding',
        'gzip',
        'set-cookie',
        'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
      ],
    ];

    it('C.5: three responses evicting from a 256-byte table, without Huffman', () => {
      const d = new HpackDecoder({ maxTableSize: 256 });
      const first = hex(`4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32
        3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`);
      // The peer's encoder starts at the default 4096; the example's 256 is set with an update before the first field.
      expect(d.decode(Buffer.concat([tableSizeUpdate(256), first]))).to.deep.equal(responses[0]);
      expect(d.dynamicTableSize).to.equal(222);
      expect(d.decode(hex('4803 3330 37c1 c0bf'))).to.deep.equal(responses[1]);
      expect(d.dynamicTableSize).to.equal(222);
      const third = hex(`88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970
        7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33
        3630 303b 2076 6572 7369 6f6e 3d31`);
      expect(d.decode(third)).to.deep.equal(responses[2]);
      expect(d.dynamicTableSize).to.equal(215);
    });

    it('C.6: the same responses with Huffman', () => {
      const d = new HpackDecoder({ maxTableSize: 256 });
      const first = hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad
        1718 63c7 8f0b 97c8 e9ae 82ae 43d3`);
      expect(d.decode(Buffer.concat([tableSizeUpdate(256), first]))).to.deep.equal(responses[0]);
      expect(d.dynamicTableSize).to.equal(222);
      expect(d.decode(hex('4883 640e ffc1 c0bf'))).to.deep.equal(responses[1]);
      const third = hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2
        e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`);
      expect(d.decode(third)).to.deep.equal(responses[2]);
      expect(d.dynamicTableSize).to.equal(215);
    });
  });

  describe('encodeHeaderBlock', () => {
    it('indexes static pairs, names static names, and writes the rest as literals without indexing, no Huffman', () => {
      const block = encodeHeaderBlock([':method', 'POST', ':path', '/x', 'te', 'trailers', 'content-type', 'application/grpc']);
      // 83 = :method POST; 04 02 "/x" = :path (4) literal; 00 02 "te" 08 "trailers"; 0f 10 = content-type (31).
      expect(block).to.deep.equal(
        Buffer.concat([
          hex('83 04 02'),
          Buffer.from('/x'),
          hex('00 02'),
          Buffer.from('te'),
          hex('08'),
          Buffer.from('trailers'),
          hex('0f10 10'),
          Buffer.from('application/grpc'),
        ]),
      );
    });

    it('sends credentials never indexed, and is byte-identical for the same headers', () => {
      const headers = ['authorization', 'Bearer x', 'x-long', 'v'.repeat(300)];
      const block = encodeHeaderBlock(headers);
      expect(block[0]).to.equal(0x1f); // never indexed, name index 23 ≥ 15: 0x1f then 23 - 15 = 8
      expect(block[1]).to.equal(8);
      expect(encodeHeaderBlock(headers)).to.deep.equal(block);
      expect(new HpackDecoder().decode(block)).to.deep.equal(headers);
    });

    it('refuses characters outside Latin-1 and odd lists', () => {
      expect(() => encodeHeaderBlock(['x-a', 'snow ☃'])).to.throw(TypeError);
      expect(() => encodeHeaderBlock(['x-a'])).to.throw(TypeError);
    });

    it('round-trips any Latin-1 list through the decoder', () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }))),
          (list) => {
            const flat = list.flat();
            expect(new HpackDecoder().decode(encodeHeaderBlock(flat))).to.deep.equal(flat);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('malformed blocks are COMPRESSION_ERROR (HpackError)', () => {
    it('index 0, and indexes beyond the static and dynamic tables', () => {
      expectHpackError(hex('80'));
      expectHpackError(hex('be')); // 62 with an empty dynamic table
      expectHpackError(hex('7e 01 61')); // literal with indexing, name index 62
      expectHpackError(hex('ff 80 80 80 80 08')); // a huge index
    });

    it('integers truncated, too long or above 31 bits', () => {
      expectHpackError(hex('ff'));
      expectHpackError(hex('ff 80'));
      expectHpackError(hex('3f ff ff ff ff 0f')); // table size update of 2^35
      expectHpackError(hex('00 7f 80 80 80 80 80 80 80 80 00')); // zero continuation bytes without end
    });

    it('string literals longer than the block, or cut off', () => {
      expectHpackError(hex('00 05 61 62'));
      expectHpackError(hex('00 01 61'));
      expectHpackError(hex('00'));
      expectHpackError(hex('00 7f ff ff ff 07 61')); // claims 16 MiB
    });

    it('Huffman: EOS inside a string, padding of 8 bits or more, padding that is not the EOS prefix', () => {
      // 'a' (00011) then EOS (30 ones): 35 bits, padded with ones to 40.
      expectHpackError(hex('00 85 1f ff ff ff ff 00'));
      // 'a' then 11 ones of padding (16 bits): too long.
      expectHpackError(hex('00 82 1f ff 00'));
      // 'a' then 3 zero bits: not the EOS prefix.
      expectHpackError(hex('00 81 18 00'));
      // Well formed: 'a' then 3 ones.
      expect(new HpackDecoder().decode(hex('00 81 1f 00'))).to.deep.equal(['a', '']);
      // A whole byte of ones on its own is 8 bits of padding.
      expectHpackError(hex('00 81 ff 00'));
    });

    it('table size updates above the advertised size, after a field, or more than two', () => {
      expectHpackError(hex('3f e2 1f'), new HpackDecoder({ maxTableSize: 4096 })); // 4097
      expect(new HpackDecoder({ maxTableSize: 4096 }).decode(hex('3f e1 1f 82'))).to.deep.equal([':method', 'GET']);
      expectHpackError(hex('82 20'));
      expectHpackError(hex('20 20 20 82'));
      expect(new HpackDecoder().decode(hex('20 3f e1 1f 82'))).to.deep.equal([':method', 'GET']);
    });

    it('a table size update evicts, and an entry larger than the table empties it', () => {
      const d = new HpackDecoder();
      d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
      expect(d.decode(hex('be'))).to.deep.equal(['custom-key', 'custom-header']);
      d.decode(hex('20'));
      expect(d.dynamicTableSize).to.equal(0);
      expectHpackError(hex('be'), d);
      d.decode(Buffer.concat([tableSizeUpdate(60), hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')]));
      expect(d.dynamicTableSize).to.equal(55);
      // a: bbbbb is 1 + 5 + 32 = 38 bytes; 55 + 38 > 60 evicts custom-key.
      d.decode(hex('40 01 61 05 6262 6262 62'));
      expect(d.dynamicTableSize).to.equal(38);
      expect(d.decode(hex('be'))).to.deep.equal(['a', 'bbbbb']);
      expectHpackError(hex('bf'), d);
      // 1 + 30 + 32 = 63 > 60: the table empties and the entry is not added.
      expect(d.decode(Buffer.concat([hex('40 01 61 1e'), Buffer.alloc(30, 0x62)]))).to.deep.equal(['a', 'b'.repeat(30)]);
      expect(d.dynamicTableSize).to.equal(0);
      expectHpackError(hex('be'), d);
    });
  });

  describe('maxHeaderListSize', () => {
    it('decodes the whole block, keeps the table in step, then refuses the list', () => {
      const d = new HpackDecoder({ maxHeaderListSize: 100 });
      const block = Buffer.concat([hex('40 01 61 30'), Buffer.alloc(48, 0x62), hex('40 01 63 30'), Buffer.alloc(48, 0x64)]);
      expect(() => d.decode(block)).to.throw(HeaderListTooLargeError, /162 bytes exceeds 100/);
      // Both fields were added to the table: 62 is the newest (c), 63 the older (a).
      expect(d.decode(hex('bf'))).to.deep.equal(['a', 'b'.repeat(48)]);
      expect(d.decode(hex('be'))).to.deep.equal(['c', 'd'.repeat(48)]);
    });

    it('accepts a list of exactly the limit', () => {
      const d = new HpackDecoder({ maxHeaderListSize: 32 + 1 + 3 });
      expect(d.decode(hex('00 01 61 03 62 62 62'))).to.deep.equal(['a', 'bbb']);
      expect(() => d.decode(hex('00 01 61 04 62 62 62 62'))).to.throw(HeaderListTooLargeError);
    });
  });

  describe('hostile input', () => {
    const onlyHpackErrors = (d: HpackDecoder, block: Uint8Array): void => {
      try {
        d.decode(Buffer.from(block));
      } catch (e) {
        if (!(e instanceof HpackError) && !(e instanceof HeaderListTooLargeError)) throw e;
      }
    };

    it('random bytes give a list or HpackError/HeaderListTooLargeError, nothing else', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 }), fc.constantFrom(0, 64, 4096), (blocks, maxTableSize) => {
          const d = new HpackDecoder({ maxTableSize, maxHeaderListSize: 4096 });
          for (const b of blocks) onlyHpackErrors(d, b);
        }),
        { numRuns: 3000 },
      );
    });

    it('valid blocks with bytes changed give a list or HpackError, nothing else', () => {
      const valid = encodeHeaderBlock([':method', 'POST', ':path', '/a/b', 'x-key', 'value', 'authorization', 'Basic zzz']);
      const huffman = hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf');
      fc.assert(
        fc.property(
          fc.constantFrom(valid, huffman),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
          (base, edits) => {
            const b = Buffer.from(base);
            for (const [at, v] of edits) b[at % b.length] = v;
            onlyHpackErrors(new HpackDecoder(), b);
          },
        ),
        { numRuns: 3000 },
      );
    });

    it('a block of 1 MiB of single-byte fields decodes in one pass', () => {
      // 0x82 repeated: every byte is a field; the list is refused by size, after one linear pass.
      const d = new HpackDecoder({ maxHeaderListSize: 65536 });
      expect(() => d.decode(Buffer.alloc(1 << 20, 0x82))).to.throw(HeaderListTooLargeError);
    });
  });

  describe('against nghttp2 (node:http2)', () => {
    const tokenChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~".split(''));
    // Field values as HTTP/2 allows them: visible ASCII, space, tab and obs-text (0x80–0xff).
    const valueChar = fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
      { weight: 1, arbitrary: fc.constant(0x09) },
    );
    const name = fc.array(tokenChar, { minLength: 1, maxLength: 12 }).map((cs) => `x-${cs.join('')}`);
    const value = fc.oneof(
      { weight: 9, arbitrary: fc.array(valueChar, { maxLength: 40 }) },
      { weight: 1, arbitrary: fc.array(valueChar, { minLength: 100, maxLength: 9000 }) },
    );
    const field = fc.tuple(
      name,
      value.map((cs) => String.fromCharCode(...cs)),
    );
    // A field value must not start or end with whitespace (RFC 9113 §8.2.1): nghttp2 drops such fields on receipt.
    const trimmedField = field.map(([n, v]): [string, string] => [n, v.replace(/^[ \t]+|[ \t]+$/g, '')]);
    /** A pool of fields, requests drawing from it (so nghttp2 finds them in its dynamic table), a table size. */
    const scenario = fc.record({
      tableSize: fc.constantFrom(0, 48, 100, 256, 4096),
      pool: fc.array(field, { minLength: 1, maxLength: 16 }),
      requests: fc.array(fc.array(fc.nat(), { maxLength: 8 }), { minLength: 1, maxLength: 25 }),
    });
    const requestFields = (pool: readonly [string, string][], picks: readonly number[]): [string, string][] => {
      const byName = new Map<string, string>();
      for (const p of picks) {
        const [n, v] = pool[p % pool.length]!;
        if (!byName.has(n)) byName.set(n, v);
      }
      return [...byName];
    };

    /** What a raw server decoded of each request node:http2 sent it, what the blocks looked like, and the table. */
    interface Decoded {
      lists: [string, string][][];
      /** Blocks that began with a dynamic table size update. */
      sizeUpdates: number;
      /** Blocks shorter than the same list encoded plainly: nghttp2 used Huffman or its dynamic table. */
      compressed: number;
      /** The largest dynamic table size the decoder held after any block. */
      largestTable: number;
    }

    /** Sends `requests` one after the other on one node:http2 connection to a raw server advertising `tableSize`. */
    async function throughNghttp2(tableSize: number, requests: readonly (readonly [string, string])[][]): Promise<Decoded> {
      const out: Decoded = { lists: [], sizeUpdates: 0, compressed: 0, largestTable: 0 };
      const server = net.createServer((socket) => {
        const reader = new FrameReader(true);
        const decoder = new HpackDecoder({ maxTableSize: tableSize });
        let pending: Buffer[] = [];
        let streamId = 0;
        socket.write(frame(FRAME_SETTINGS, 0, 0, Buffer.from([0, 1, 0, 0, tableSize >> 8, tableSize & 0xff])));
        socket.on('data', (data: Buffer) => {
          for (const f of reader.push(data)) {
            if (f.type === FRAME_SETTINGS && (f.flags & 1) === 0) socket.write(frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0)));
            if (f.type === FRAME_HEADERS) {
              streamId = f.id;
              pending = [headersFragment(f)];
            } else if (f.type === FRAME_CONTINUATION) pending.push(f.payload);
            else continue;
            if ((f.flags & END_HEADERS) === 0) continue;
            const block = Buffer.concat(pending);
            const flat = decoder.decode(block);
            out.lists.push(pairs(flat));
            if ((block[0]! & 0xe0) === 0x20) out.sizeUpdates++;
            if (block.length < encodeHeaderBlock(flat).length) out.compressed++;
            out.largestTable = Math.max(out.largestTable, decoder.dynamicTableSize);
            socket.write(frame(FRAME_HEADERS, END_HEADERS | END_STREAM, streamId, encodeHeaderBlock([':status', '200'])));
          }
        });
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      const client = http2.connect(`http://127.0.0.1:${port}`);
      try {
        // Requests only after our SETTINGS arrived, so nghttp2's encoder already obeys the table size.
        await new Promise<void>((resolve, reject) => {
          client.once('remoteSettings', () => resolve());
          client.once('error', reject);
        });
        for (let i = 0; i < requests.length; i++) {
          const req = client.request({ ':path': `/r${i}`, ...Object.fromEntries(requests[i]!) }, { endStream: true });
          await new Promise<void>((resolve, reject) => {
            req.on('response', () => resolve());
            req.on('error', reject);
          });
          req.resume();
        }
      } finally {
        client.destroy();
        server.close();
      }
      expect(out.lists).to.have.length(requests.length);
      out.lists.forEach((got, i) => {
        expect(got.filter(([n]) => n.startsWith(':'))).to.have.deep.members([
          [':method', 'GET'],
          [':path', `/r${i}`],
          [':scheme', 'http'],
          [':authority', `127.0.0.1:${port}`],
        ]);
        expect(got.filter(([n]) => !n.startsWith(':'))).to.deep.equal(requests[i]);
      });
      expect(out.largestTable).to.be.at.most(tableSize);
      return out;
    }

    it('decodes what node:http2 sends (Huffman, dynamic table, eviction, size updates) exactly', async function () {
      this.timeout(180_000);
      let sizeUpdates = 0;
      let compressed = 0;
      let fullTables = 0;
      await fc.assert(
        fc.asyncProperty(scenario, async ({ tableSize, pool, requests }) => {
          const d = await throughNghttp2(
            tableSize,
            requests.map((picks) => requestFields(pool, picks)),
          );
          sizeUpdates += d.sizeUpdates;
          compressed += d.compressed;
          if (tableSize > 0 && tableSize < 4096 && d.largestTable > tableSize - 40) fullTables++;
        }),
        { numRuns: 60 },
      );
      // The runs did exercise what they are meant to (any one of these at 0 would make the property weak).
      expect(sizeUpdates, 'blocks with a size update').to.be.greaterThan(0);
      expect(compressed, 'blocks smaller than plain literals').to.be.greaterThan(0);
      expect(fullTables, 'runs that filled a small table (so evicted)').to.be.greaterThan(0);
    });

    it('decodes every byte value node:http2 sends in a value, Huffman-coded', async () => {
      // 40 × 'e' (5 bits each) and one byte: Huffman is shorter than plain for every byte, so nghttp2 uses it.
      const bytes = [0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
      const requests: [string, string][][] = [];
      for (let i = 0; i < bytes.length; i += 32) {
        requests.push(bytes.slice(i, i + 32).map((b) => [`x-${b}`, `${'e'.repeat(20)}${String.fromCharCode(b)}${'e'.repeat(20)}`]));
      }
      const d = await throughNghttp2(4096, requests);
      expect(d.compressed).to.equal(requests.length);
    });

    it('node:http2 reads what encodeHeaderBlock writes exactly', async function () {
      this.timeout(120_000);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(trimmedField, { maxLength: 10 }), { minLength: 1, maxLength: 10 }), async (requests) => {
          const received: string[][] = [];
          const server = http2.createServer();
          server.on('stream', (stream: http2.ServerHttp2Stream, _headers: unknown, _flags: unknown, rawHeaders: string[]) => {
            received.push(rawHeaders);
            stream.respond({ ':status': 200 }, { endStream: true });
          });
          await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
          const port = (server.address() as net.AddressInfo).port;
          const socket = net.connect(port, '127.0.0.1');
          const reader = new FrameReader(false);
          let answered = 0;
          let goaway: Frame | undefined;
          const allAnswered = new Promise<void>((resolve) => {
            socket.on('data', (data: Buffer) => {
              for (const f of reader.push(data)) {
                if (f.type === FRAME_SETTINGS && (f.flags & 1) === 0) socket.write(frame(FRAME_SETTINGS, 1, 0, Buffer.alloc(0)));
                if (f.type === 7) goaway = f;
                if (f.type === FRAME_HEADERS && ++answered === requests.length) resolve();
              }
            });
            socket.on('close', () => resolve());
          });
          const expected = requests.map((fields, i) => {
            const list = new Map<string, string>(fields);
            return [':method', 'GET', ':scheme', 'http', ':path', `/r${i}`, ':authority', 'localhost', ...[...list].flat()];
          });
          socket.write(
            Buffer.concat([
              PREFACE,
              frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)),
              ...expected.map((h, i) => headerFrames(2 * i + 1, encodeHeaderBlock(h), true)),
            ]),
          );
          try {
            await allAnswered;
            expect(goaway, 'no GOAWAY').to.equal(undefined);
            expect(received).to.deep.equal(expected);
          } finally {
            socket.destroy();
            server.close();
          }
        }),
        { numRuns: 60 },
      );
    });
  });
});
