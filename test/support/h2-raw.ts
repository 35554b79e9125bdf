/**
 * An HTTP/2 peer that writes whatever frames a test makes (valid or not) and records every frame it receives, for
 * hostile-input tests of src/http2 and the OTLP/gRPC receiver.
 */
import * as net from 'node:net';
import { CLIENT_PREFACE, FrameReader, FrameType, frame, settingsFrame } from '../../src/http2/frames';

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export class RawH2Peer {
  readonly socket: net.Socket;
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<void>;
  #reader = new FrameReader(2 ** 24 - 1);
  #waiters: (() => void)[] = [];
  #ended = false;

  /** A server's peer first reads the client preface (24 octets, not a frame). */
  private constructor(socket: net.Socket, server = false) {
    this.socket = socket;
    let preface = !server;
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => {
      this.#reader.push(c);
      if (!preface) {
        if (!this.#reader.skip(CLIENT_PREFACE.length)) return;
        preface = true;
      }
      while (this.#reader.next()) {
        const r = this.#reader;
        this.frames.push({ type: r.type, flags: r.flags, streamId: r.streamId, payload: Buffer.from(r.payload) });
      }
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#ended = true;
        this.#wake();
        resolve();
      }),
    );
  }

  /** Connect; unless `preface` is false, send the client preface and an empty SETTINGS frame. */
  static async connect(port: number, opts: { preface?: boolean } = {}): Promise<RawH2Peer> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new RawH2Peer(socket);
    if (opts.preface !== false) peer.send(CLIENT_PREFACE, settingsFrame([]));
    return peer;
  }

  /**
   * A server whose accepted connections are RawH2Peers that send nothing of their own (the test writes the server's
   * SETTINGS, ACKs and answers): `next()` gives the next connection accepted.
   */
  static async listen(): Promise<{ port: number; next(): Promise<RawH2Peer>; close(): void }> {
    const accepted: RawH2Peer[] = [];
    const waiting: ((p: RawH2Peer) => void)[] = [];
    const server = net.createServer((socket) => {
      const peer = new RawH2Peer(socket, true);
      const w = waiting.shift();
      if (w !== undefined) w(peer);
      else accepted.push(peer);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      next: () => {
        const p = accepted.shift();
        return p !== undefined ? Promise.resolve(p) : new Promise((resolve) => waiting.push(resolve));
      },
      close: () => server.close(),
    };
  }

  send(...parts: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts));
  }

  /** Send a frame. */
  frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): void {
    this.send(frame(type, flags, streamId, payload));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The first received frame matching `pred`; rejects if the connection closes first or after `timeoutMs`. */
  async waitFor(pred: (f: ReceivedFrame) => boolean, what: string, timeoutMs = 5000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit !== undefined) return hit;
      if (this.#ended) throw new Error(`connection closed before ${what}; frames: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY received: last stream id, error code, debug text. */
  async goaway(timeoutMs = 5000): Promise<{ lastStreamId: number; code: number; debug: string }> {
    const f = await this.waitFor((x) => x.type === FrameType.GOAWAY, 'GOAWAY', timeoutMs);
    return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString('utf8') };
  }

  /** The error code of the RST_STREAM received on `streamId`. */
  async rstCode(streamId: number, timeoutMs = 5000): Promise<number> {
    const f = await this.waitFor((x) => x.type === FrameType.RST_STREAM && x.streamId === streamId, `RST_STREAM on stream ${streamId}`, timeoutMs);
    return f.payload.readUInt32BE(0);
  }

  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.flags}/${f.streamId}/${f.payload.length}`).join(' ');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
