import { expect } from 'chai';
import fc from 'fast-check';
import { FRAME_HEADER_LENGTH, FrameReader, frame } from './frames';

interface Read {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** The payload is a view into one of the pushed chunks (not a copy). */
  inChunk: boolean;
}

/** Push `chunks` one by one, reading every frame after each push, as Http2Connection does. */
function readAll(reader: FrameReader, chunks: readonly Buffer[]): Read[] {
  const out: Read[] = [];
  for (const c of chunks) {
    reader.push(c);
    while (reader.next()) {
      const p = reader.payload;
      out.push({
        type: reader.type,
        flags: reader.flags,
        streamId: reader.streamId,
        payload: Buffer.from(p),
        inChunk: chunks.some((x) => x.buffer === p.buffer),
      });
    }
  }
  return out;
}

/** A copy in memory of its own (not Buffer's shared pool), as a socket delivers a chunk. */
function own(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

/** `bytes` cut at the given positions (sorted, deduplicated, inside the buffer). */
function cut(bytes: Buffer, at: readonly number[]): Buffer[] {
  const points = [...new Set(at.filter((n) => n > 0 && n < bytes.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(own(bytes.subarray(from, p)));
    from = p;
  }
  out.push(own(bytes.subarray(from)));
  return out;
}

const arbFrame = fc.record({
  type: fc.integer({ min: 0, max: 9 }),
  flags: fc.integer({ min: 0, max: 255 }),
  streamId: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  payload: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 100, maxLength: 3000 })).map((u) => Buffer.from(u)),
});

describe('FrameReader', () => {
  it('reads the same frames however the bytes are cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 12 }), fc.array(fc.nat({ max: 40_000 }), { maxLength: 30 }), (frames, at) => {
        const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.flags, f.streamId, f.payload)));
        const got = readAll(new FrameReader(4096), cut(bytes, at));
        expect(got.map(({ type, flags, streamId, payload }) => ({ type, flags, streamId, payload }))).to.deep.equal(frames);
      }),
    );
  });

  it('reads byte by byte', () => {
    const frames = [frame(0, 1, 3, Buffer.alloc(300, 7)), frame(4, 0, 0), frame(1, 4, 5, Buffer.from('abc'))];
    const bytes = Buffer.concat(frames);
    const got = readAll(
      new FrameReader(),
      cut(
        bytes,
        Array.from({ length: bytes.length }, (_, i) => i),
      ),
    );
    expect(got.map((r) => [r.type, r.flags, r.streamId, r.payload.length])).to.deep.equal([
      [0, 1, 3, 300],
      [4, 0, 0, 0],
      [1, 4, 5, 3],
    ]);
    expect(got[0]?.payload.equals(Buffer.alloc(300, 7))).to.equal(true);
  });

  it('copies only a frame that straddles two chunks; the others stay views into their chunk', () => {
    // Four 1000-byte frames in chunks of 2500 bytes: frames 2 and 3 straddle a boundary, 1 and 4 do not.
    const frames = [1, 2, 3, 4].map((n) => frame(0, 0, n, Buffer.alloc(1000 - FRAME_HEADER_LENGTH, n)));
    const bytes = Buffer.concat(frames);
    const reader = new FrameReader();
    const got = readAll(reader, cut(bytes, [2500]));
    expect(got.map((r) => [r.streamId, r.inChunk])).to.deep.equal([
      [1, true],
      [2, true],
      [3, false],
      [4, true],
    ]);
    expect(reader.buffered).to.equal(0);
  });

  it('refuses an oversized frame from its header, also when the header straddles chunks', () => {
    for (const at of [[], [4], [9], [4, 6]]) {
      const reader = new FrameReader(100);
      const bytes = Buffer.concat([frame(0, 0, 1, Buffer.alloc(50)), frame(0, 0, 1, Buffer.alloc(101))]);
      const got = readAll(
        reader,
        cut(
          bytes.subarray(0, 59 + 9),
          at.map((n) => n + 59),
        ),
      );
      expect(got.length, `cut at ${JSON.stringify(at)}`).to.equal(1);
      expect(reader.oversized).to.equal(101);
    }
  });

  it('keeps bytes a caller left unread (the connection preface) in front of the next chunk', () => {
    const reader = new FrameReader();
    const bytes = Buffer.concat([Buffer.from('PREFACE'), frame(6, 0, 0, Buffer.alloc(8, 1))]);
    reader.push(bytes.subarray(0, 5));
    expect(reader.skip(7)).to.equal(false);
    reader.push(bytes.subarray(5, 12));
    expect(reader.peek(7).toString()).to.equal('PREFACE');
    expect(reader.skip(7)).to.equal(true);
    expect(reader.next()).to.equal(false);
    reader.push(bytes.subarray(12));
    expect(reader.next()).to.equal(true);
    expect([reader.type, reader.payload.length]).to.deep.equal([6, 8]);
  });
});
