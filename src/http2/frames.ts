/**
 * HTTP/2 framing (RFC 9113 §4 and §6): the frame types, flags, error codes and SETTINGS identifiers, a reader that
 * cuts frames out of socket chunks, and writers for every frame this stack sends.
 *
 * The reader hands out each payload as a view into the chunk it arrived in (no copy) unless the frame straddled
 * two chunks, in which case only that frame is assembled. It checks the length against SETTINGS_MAX_FRAME_SIZE
 * before waiting for the payload, so an oversized frame is refused from its 9-byte header.
 */

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes of RST_STREAM and GOAWAY (RFC 9113 §7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** The name of an error code, for messages (`0xb` → `ENHANCE_YOUR_CALM`). */
export function errorCodeName(code: number): string {
  for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
  return `0x${code.toString(16)}`;
}

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The 24 octets a client sends first (RFC 9113 §3.4). */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_LENGTH = 9;
/** Initial flow-control window of every stream and of the connection, and the initial SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const MAX_ALLOWED_FRAME_SIZE = 2 ** 24 - 1;

/**
 * Cuts frames out of a byte stream. `push` a chunk, then call `next` until it returns false; after a true return
 * the fields describe one frame. A payload stays valid as long as the chunk it came from (the reader never reuses
 * memory). A frame longer than `maxFrameSize` stops the reader: `next` returns false and `oversized` holds the
 * declared length (the header's type and stream id are set, so the caller can decide between a stream and a
 * connection error; this stack always treats it as a connection error).
 */
const EMPTY = Buffer.alloc(0);

export class FrameReader {
  type = 0;
  flags = 0;
  streamId = 0;
  payload: Buffer = EMPTY;
  /** Length of a frame that exceeded `maxFrameSize`; 0 while none did. */
  oversized = 0;
  maxFrameSize: number;
  /** The bytes being read from, and where the next frame starts in them. */
  #chunk: Buffer = EMPTY;
  #offset = 0;
  /** The rest of a pushed chunk, read once `#chunk` (a frame assembled across chunks) is done. */
  #tail: Buffer = EMPTY;
  /**
   * A frame that straddles chunks, being assembled: its 9-byte header first, then (once the length is known) the
   * whole frame. Only that frame is copied; the chunk it ends in is read in place after it.
   */
  #partial: Buffer | undefined = undefined;
  #partialFill = 0;

  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.#chunk.length - this.#offset + this.#tail.length + this.#partialFill;
  }

  push(chunk: Buffer): void {
    if (this.#partial !== undefined) {
      const rest = this.#fill(chunk);
      if (this.#partial !== undefined) return; // still incomplete: the whole chunk went into it
      this.#tail = rest;
      return;
    }
    const rest = this.#chunk.length - this.#offset;
    if (rest === 0 && this.#tail.length === 0) this.#chunk = chunk;
    else {
      // Bytes left unread by a caller that stopped early (the connection preface, or an error): keep them all.
      const parts = [this.#chunk.subarray(this.#offset), this.#tail, chunk];
      this.#chunk = Buffer.concat(parts, rest + this.#tail.length + chunk.length);
      this.#tail = EMPTY;
    }
    this.#offset = 0;
  }

  /** Remove `n` bytes from the front (the client preface); false while fewer are buffered. */
  skip(n: number): boolean {
    if (this.#chunk.length - this.#offset < n) return false;
    this.#offset += n;
    return true;
  }

  /** The next `n` buffered bytes without consuming them (fewer if fewer are buffered). */
  peek(n: number): Buffer {
    return this.#chunk.subarray(this.#offset, this.#offset + n);
  }

  next(): boolean {
    if (this.oversized !== 0 || this.#partial !== undefined) return false;
    let c = this.#chunk;
    let o = this.#offset;
    if (c.length - o === 0 && this.#tail.length > 0) {
      c = this.#chunk = this.#tail;
      o = this.#offset = 0;
      this.#tail = EMPTY;
    }
    const avail = c.length - o;
    if (avail < FRAME_HEADER_LENGTH) {
      if (avail > 0) this.#startPartial(c.subarray(o), FRAME_HEADER_LENGTH);
      return false;
    }
    const length = ((c[o] as number) << 16) | ((c[o + 1] as number) << 8) | (c[o + 2] as number);
    this.type = c[o + 3] as number;
    this.flags = c[o + 4] as number;
    this.streamId = c.readUInt32BE(o + 5) & 0x7fffffff;
    if (length > this.maxFrameSize) {
      this.oversized = length;
      return false;
    }
    if (avail < FRAME_HEADER_LENGTH + length) {
      this.#startPartial(c.subarray(o), FRAME_HEADER_LENGTH + length);
      return false;
    }
    this.payload = c.subarray(o + FRAME_HEADER_LENGTH, o + FRAME_HEADER_LENGTH + length);
    this.#offset = o + FRAME_HEADER_LENGTH + length;
    if (this.#offset === c.length) {
      this.#chunk = EMPTY;
      this.#offset = 0;
    }
    return true;
  }

  /** Copy the start of a frame (`size` bytes: its header, or the whole frame) that the next chunks complete. */
  #startPartial(start: Buffer, size: number): void {
    const p = Buffer.allocUnsafe(size);
    start.copy(p, 0);
    this.#partial = p;
    this.#partialFill = start.length;
    this.#chunk = EMPTY;
    this.#offset = 0;
  }

  /**
   * Add a chunk's first bytes to the frame being assembled; returns the chunk's rest. When the frame is complete it
   * becomes `#chunk`; when only its header is, the frame's buffer replaces the header's (or the frame is oversized).
   */
  #fill(chunk: Buffer): Buffer {
    let p = this.#partial as Buffer;
    let take = Math.min(p.length - this.#partialFill, chunk.length);
    chunk.copy(p, this.#partialFill, 0, take);
    this.#partialFill += take;
    if (this.#partialFill < p.length) return EMPTY;
    if (p.length === FRAME_HEADER_LENGTH) {
      const length = ((p[0] as number) << 16) | ((p[1] as number) << 8) | (p[2] as number);
      if (length > 0) {
        if (length > this.maxFrameSize) {
          // Left for next() to report from the header, before any payload is buffered.
          this.#partial = undefined;
          this.#partialFill = 0;
          this.#chunk = p;
          this.#offset = 0;
          return chunk.subarray(take);
        }
        const whole = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
        p.copy(whole, 0);
        p = this.#partial = whole;
        const more = Math.min(length, chunk.length - take);
        chunk.copy(p, FRAME_HEADER_LENGTH, take, take + more);
        this.#partialFill += more;
        take += more;
        if (this.#partialFill < p.length) return EMPTY;
      }
    }
    this.#partial = undefined;
    this.#partialFill = 0;
    this.#chunk = p;
    this.#offset = 0;
    return chunk.subarray(take);
  }
}

/** Write a frame header into `buf` at `at`. */
export function writeFrameHeader(buf: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  buf[at] = (length >>> 16) & 0xff;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId & 0x7fffffff, at + 5);
}

/** One frame with the payload copied after its header. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  payload.copy(out, FRAME_HEADER_LENGTH);
  return out;
}

/** A SETTINGS frame with `[id, value]` pairs, or the empty ACK. */
export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 6 * settings.length);
  writeFrameHeader(out, 0, 6 * settings.length, FrameType.SETTINGS, 0, 0);
  let at = FRAME_HEADER_LENGTH;
  for (const [id, value] of settings) {
    out.writeUInt16BE(id, at);
    out.writeUInt32BE(value, at + 2);
    at += 6;
  }
  return out;
}

export const SETTINGS_ACK: Buffer = frame(FrameType.SETTINGS, Flag.ACK, 0);

/** A PING (8 octets of opaque data), or its ACK carrying the same data. */
export function pingFrame(data: Buffer, ack: boolean): Buffer {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(out, 0, 4, FrameType.RST_STREAM, 0, streamId);
  out.writeUInt32BE(code, FRAME_HEADER_LENGTH);
  return out;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const text = Buffer.from(debug, 'utf8');
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 8 + text.length);
  writeFrameHeader(out, 0, 8 + text.length, FrameType.GOAWAY, 0, 0);
  out.writeUInt32BE(lastStreamId & 0x7fffffff, FRAME_HEADER_LENGTH);
  out.writeUInt32BE(code, FRAME_HEADER_LENGTH + 4);
  text.copy(out, FRAME_HEADER_LENGTH + 8);
  return out;
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 4);
  writeFrameHeader(out, 0, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  out.writeUInt32BE(increment, FRAME_HEADER_LENGTH);
  return out;
}

/** A header block as HEADERS and as many CONTINUATION frames as `maxFrameSize` needs, in one buffer. */
export function headersFrames(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number): Buffer {
  const first = endStream ? Flag.END_STREAM : 0;
  if (block.length <= maxFrameSize) {
    const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + block.length);
    writeFrameHeader(out, 0, block.length, FrameType.HEADERS, first | Flag.END_HEADERS, streamId);
    block.copy(out, FRAME_HEADER_LENGTH);
    return out;
  }
  const count = Math.ceil(block.length / maxFrameSize);
  const out = Buffer.allocUnsafe(count * FRAME_HEADER_LENGTH + block.length);
  let at = 0;
  for (let i = 0, from = 0; i < count; i++, from += maxFrameSize) {
    const part = block.subarray(from, from + maxFrameSize);
    const last = i === count - 1 ? Flag.END_HEADERS : 0;
    writeFrameHeader(out, at, part.length, i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, (i === 0 ? first : 0) | last, streamId);
    part.copy(out, at + FRAME_HEADER_LENGTH);
    at += FRAME_HEADER_LENGTH + part.length;
  }
  return out;
}

/** The header of one DATA frame (the payload is written after it separately, uncopied). */
export function dataFrameHeader(streamId: number, length: number, endStream: boolean): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  writeFrameHeader(out, 0, length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  return out;
}

/** SETTINGS payload → `[id, value]` pairs; undefined when the length is not a multiple of 6. */
export function parseSettings(payload: Buffer): [number, number][] | undefined {
  if (payload.length % 6 !== 0) return undefined;
  const out: [number, number][] = [];
  for (let at = 0; at < payload.length; at += 6) out.push([payload.readUInt16BE(at), payload.readUInt32BE(at + 2)]);
  return out;
}
