import { expect } from 'chai';
import fc from 'fast-check';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { RawH2Peer } from '../../test/support/h2-raw';
import { h2Call, type H2Answer } from '../../test/support/raw-grpc';
import { Http2Connection, RateCounter, type Http2Error, type ConnectionOptions, type Http2Stream, type ServerHandler } from './connection';
import { ErrorCode, Flag, FrameType, frame, rstStreamFrame, settingsFrame, windowUpdateFrame, Setting, SETTINGS_ACK, headersFrames, pingFrame } from './frames';
import { encodeHeaderBlock } from './hpack';

interface Req {
  headers: string[];
  body: Buffer[];
}

/** A server that records each request and answers through `answer` (default: echo the body with fixed headers). */
class TestServer implements ServerHandler {
  readonly requests = new Map<Http2Stream, Req>();
  readonly completed: Req[] = [];
  readonly aborted: number[] = [];
  readonly conns: Http2Connection[] = [];
  answer: (s: Http2Stream, r: Req) => void = (s, r) =>
    s.respond(
      encodeHeaderBlock([':status', '200', 'x-n', String(Buffer.concat(r.body).length)]),
      Buffer.concat(r.body),
      encodeHeaderBlock(['grpc-status', '0']),
    );
  server: net.Server;
  constructor(opts: ConnectionOptions = {}) {
    this.server = net.createServer((socket) => this.conns.push(Http2Connection.server(socket, this, opts)));
  }
  port = 0;
  async listen(): Promise<number> {
    if (this.port !== 0) return this.port;
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }
  onHeaders(stream: Http2Stream, headers: string[]): void {
    this.requests.set(stream, { headers, body: [] });
  }
  onData(stream: Http2Stream, data: Buffer): void {
    this.requests.get(stream)?.body.push(data);
  }
  onEnd(stream: Http2Stream): void {
    const r = this.requests.get(stream) as Req;
    this.completed.push(r);
    this.answer(stream, r);
  }
  onAbort(stream: Http2Stream, code: number): void {
    this.aborted.push(code);
  }
  close(): void {
    for (const c of this.conns) c.destroy();
    this.server.close();
  }
}

interface Answer {
  err: Http2Error | undefined;
  headers: string[] | undefined;
  data: Buffer;
  trailers: string[] | undefined;
}

function call(conn: Http2Connection, headers: string[], body: Buffer[]): Promise<Answer> {
  return new Promise((resolve) =>
    conn.request(
      encodeHeaderBlock(headers),
      body,
      (err, s) => resolve({ err, headers: s.headers, data: Buffer.concat(s.data), trailers: s.trailers }),
      undefined,
    ),
  );
}

const REQ = [':method', 'POST', ':scheme', 'http', ':path', '/svc/Method', ':authority', 'localhost', 'content-type', 'application/grpc', 'te', 'trailers'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('http2 connection', () => {
  let server: TestServer;
  let clients: Http2Connection[];
  const connect = async (opts: ConnectionOptions = {}): Promise<Http2Connection> => {
    const c = Http2Connection.connect({ host: '127.0.0.1', port: await server.listen() }, opts);
    clients.push(c);
    return c;
  };
  beforeEach(() => {
    clients = [];
  });
  afterEach(() => {
    for (const c of clients) c.destroy();
    server?.close();
  });

  it('carries requests and answers byte for byte through both roles, whatever the windows, frame splits and sizes (property)', async () => {
    // Small windows on both sides force DATA to wait for WINDOW_UPDATEs and frames to split.
    server = new TestServer({ streamWindow: 1000, connectionWindow: 70_000 });
    const port = await server.listen();
    const client = Http2Connection.connect({ host: '127.0.0.1', port }, { streamWindow: 700, connectionWindow: 66_000 });
    clients.push(client);
    const header = fc.tuple(
      fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
      fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'a')),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.array(header, { maxLength: 5 }), fc.array(fc.uint8Array({ maxLength: 40_000 }), { maxLength: 4 })), {
          minLength: 1,
          maxLength: 6,
        }),
        async (calls) => {
          server.completed.length = 0;
          const answers = await Promise.all(
            calls.map(([hs, parts]) =>
              call(
                client,
                [...REQ, ...hs.flat()],
                parts.map((p) => Buffer.from(p)),
              ),
            ),
          );
          for (let i = 0; i < calls.length; i++) {
            const parts = (calls[i] as [unknown, Uint8Array[]])[1];
            const body = Buffer.concat(parts.map((p) => Buffer.from(p)));
            const a = answers[i] as Answer;
            expect(a.err).to.equal(undefined);
            expect(a.headers).to.deep.equal([':status', '200', 'x-n', String(body.length)]);
            expect(a.data.equals(body), 'echoed body').to.equal(true);
            expect(a.trailers).to.deep.equal(['grpc-status', '0']);
          }
          const received = server.completed.map((r) => ({ h: r.headers, b: Buffer.concat(r.body).toString('hex') }));
          const sent = calls.map(([hs, parts]) => ({ h: [...REQ, ...hs.flat()], b: Buffer.concat(parts.map((p) => Buffer.from(p))).toString('hex') }));
          expect(received).to.have.deep.members(sent);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('answers headers, data and trailers in one socket write', async () => {
    server = new TestServer();
    const port = await server.listen();
    const peer = await RawH2Peer.connect(port);
    try {
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaderBlock(REQ));
      peer.frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('hello'));
      const writes: Buffer[] = [];
      const conn = await waitFor(() => server.conns[0]);
      const write = conn.socket.write.bind(conn.socket);
      conn.socket.write = ((b: Buffer, ...rest: never[]) => {
        writes.push(b);
        return write(b, ...rest);
      }) as typeof conn.socket.write;
      await peer.waitFor((f) => f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, 'trailers');
      const answer = writes.find((w) => w.includes(Buffer.from('hello')));
      expect(answer, 'one write with the answer').to.not.equal(undefined);
      // HEADERS, DATA, HEADERS(END_STREAM) of stream 1 in that one buffer (beside the SETTINGS ACK read with them).
      const types: number[] = [];
      for (let at = 0; at < (answer as Buffer).length;) {
        const len = (answer as Buffer).readUIntBE(at, 3);
        if ((answer as Buffer).readUInt32BE(at + 5) === 1) types.push((answer as Buffer)[at + 3] as number);
        at += 9 + len;
      }
      expect(types).to.deep.equal([FrameType.HEADERS, FrameType.DATA, FrameType.HEADERS]);
    } finally {
      peer.destroy();
    }
  });

  it('sends the connection window top-up with the answer written in the same turn, or alone at its end when there is none', async () => {
    // Half of a 16 KiB window: a 10,000-byte body (one DATA frame, one socket write, so one read) crosses it.
    server = new TestServer({ connectionWindow: 16 * 1024 });
    // Answered after a promise, as the receiver answers once the pipeline has taken the request: after the read.
    server.answer = (s) => {
      if (s.id === 1)
        void Promise.resolve().then(() => s.respond(encodeHeaderBlock([':status', '200']), Buffer.from('ok'), encodeHeaderBlock(['grpc-status', '0'])));
    };
    const port = await server.listen();
    const peer = await RawH2Peer.connect(port);
    try {
      await peer.waitFor((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0, 'the SETTINGS ACK');
      const conn = await waitFor(() => server.conns[0]);
      const writes: Buffer[] = [];
      const write = conn.socket.write.bind(conn.socket);
      conn.socket.write = ((b: Buffer, ...rest: never[]) => {
        writes.push(b);
        return write(b, ...rest);
      }) as typeof conn.socket.write;
      const body = (id: number, end: boolean): Buffer[] => [
        frame(FrameType.HEADERS, Flag.END_HEADERS, id, encodeHeaderBlock(REQ)),
        frame(FrameType.DATA, end ? Flag.END_STREAM : 0, id, Buffer.alloc(10_000, id)),
      ];
      const topUps = (): number =>
        peer.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0 && f.payload.readUInt32BE(0) === 10_000).length;
      peer.send(...body(1, true));
      await peer.waitFor((f) => f.streamId === 1 && f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, 'the answer');
      await waitFor(() => (topUps() === 1 ? true : undefined));
      const framesOf = (w: Buffer): [number, number][] => {
        const out: [number, number][] = [];
        for (let at = 0; at < w.length; at += 9 + w.readUIntBE(at, 3)) out.push([w[at + 3] as number, w.readUInt32BE(at + 5)]);
        return out;
      };
      expect(writes.map(framesOf)).to.deep.equal([
        [
          [FrameType.HEADERS, 1],
          [FrameType.DATA, 1],
          [FrameType.HEADERS, 1],
          [FrameType.WINDOW_UPDATE, 0],
        ],
      ]);
      // The second call is not answered: its top-up still leaves, alone, at the end of the turn.
      peer.send(...body(3, false));
      await waitFor(() => (topUps() === 2 ? true : undefined));
      expect(writes.slice(1).map(framesOf)).to.deep.equal([[[FrameType.WINDOW_UPDATE, 0]]]);
    } finally {
      peer.destroy();
    }
  });

  it('client queues requests beyond the peer’s SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    server = new TestServer({ maxConcurrentStreams: 2 });
    const release: (() => void)[] = [];
    let unanswered = 0;
    let most = 0;
    server.answer = (s, r) => {
      most = Math.max(most, ++unanswered);
      release.push(() => {
        unanswered--;
        s.respond(encodeHeaderBlock([':status', '200']), Buffer.concat(r.body), encodeHeaderBlock(['grpc-status', '0']));
      });
    };
    const client = await connect();
    await new Promise<void>((resolve) => client.ping(() => resolve())); // settings exchanged
    const all = Promise.all(Array.from({ length: 7 }, (_, i) => call(client, REQ, [Buffer.from(`r${i}`)])));
    for (let released = 0; released < 7;) {
      // Answer only once the server holds as many calls as the limit lets in (or all that are left), so each round
      // fills the limit whatever the scheduling: a call beyond it would show in `most`.
      await waitFor(() => (release.length >= Math.min(2, 7 - released) ? true : undefined), 30_000);
      for (const r of release.splice(0)) {
        r();
        released++;
      }
    }
    const answers = await all;
    expect(answers.map((a) => [a.err, a.data.toString()])).to.deep.equal(Array.from({ length: 7 }, (_, i) => [undefined, `r${i}`]));
    expect(most).to.equal(2);
  });

  it('GOAWAY from the server: calls in flight finish, new ones fail unprocessed, the connection closes', async () => {
    server = new TestServer();
    let hold: (() => void) | undefined;
    server.answer = (s) => (hold = () => s.respond(encodeHeaderBlock([':status', '200']), Buffer.from('late'), encodeHeaderBlock(['grpc-status', '0'])));
    const client = await connect();
    const inFlight = call(client, REQ, [Buffer.from('x')]);
    await waitFor(() => hold);
    (server.conns[0] as Http2Connection).goaway();
    await waitFor(() => (client.usable ? undefined : true));
    const refused = await call(client, REQ, [Buffer.from('y')]);
    expect([refused.err?.unprocessed, refused.err?.code]).to.deep.equal([true, ErrorCode.REFUSED_STREAM]);
    (hold as () => void)();
    const a = await inFlight;
    expect([a.err, a.data.toString(), a.trailers]).to.deep.equal([undefined, 'late', ['grpc-status', '0']]);
    await waitFor(() => (client.closed ? true : undefined));
  });

  it('an answer larger than maxResponseBytes fails that call with CANCEL; one at the limit and the next call succeed', async () => {
    server = new TestServer();
    server.answer = (s, r) =>
      s.respond(encodeHeaderBlock([':status', '200']), Buffer.alloc(Number(Buffer.concat(r.body).toString()), 7), encodeHeaderBlock(['grpc-status', '0']));
    const client = await connect({ maxResponseBytes: 4096 });
    const over = await call(client, REQ, [Buffer.from('4097')]);
    expect([over.err?.code, over.err?.message]).to.deep.equal([ErrorCode.CANCEL, 'the response body is larger than 4096 bytes']);
    const atLimit = await call(client, REQ, [Buffer.from('4096')]);
    expect([atLimit.err, atLimit.data.length, atLimit.trailers]).to.deep.equal([undefined, 4096, ['grpc-status', '0']]);
  });

  it('cancel sends RST_STREAM CANCEL: the server hears of it, the caller gets CANCEL', async () => {
    server = new TestServer();
    server.answer = () => undefined;
    const client = await connect();
    const p = new Promise<Http2Error | undefined>((resolve) => {
      const s = client.request(encodeHeaderBlock(REQ), [Buffer.from('x')], (err) => resolve(err), undefined);
      void waitFor(() => (server.completed.length > 0 ? true : undefined)).then(() => s.cancel());
    });
    expect((await p)?.code).to.equal(ErrorCode.CANCEL);
    await waitFor(() => (server.aborted.length > 0 ? true : undefined));
    expect(server.aborted).to.deep.equal([ErrorCode.CANCEL]);
  });

  it('serves node:http2 clients (Huffman-coded headers, its own SETTINGS and window updates)', async () => {
    server = new TestServer();
    const port = await server.listen();
    const long = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(30);
    const body = Buffer.alloc(300_000, 7);
    const answer = (await h2Call(port, body, { path: '/svc/Method', headers: { 'x-long': long } })) as H2Answer;
    expect([answer.httpStatus, answer.headers['x-n'], answer.trailers['grpc-status'], answer.data.equals(body)]).to.deep.equal([200, '300000', '0', true]);
    const got = server.completed[0] as Req;
    expect(got.headers.slice(got.headers.indexOf('x-long'), got.headers.indexOf('x-long') + 2)).to.deep.equal(['x-long', long]);
  });

  it('calls a node:http2 server: Huffman-coded answers, its flow control, trailers-only answers', async () => {
    server = new TestServer(); // for afterEach
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (headers['x-trailers-only'] !== undefined) {
          stream.respond({ ':status': 200, 'grpc-status': '5', 'grpc-message': 'not found here' }, { endStream: true });
          return;
        }
        stream.respond({ ':status': 200, 'x-echo': String(headers['x-long']) }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const client = Http2Connection.connect({ host: '127.0.0.1', port: (h2.address() as net.AddressInfo).port });
    clients.push(client);
    try {
      const long = 'zyxwvutsrqponmlkjihgfedcba9876543210'.repeat(30);
      const body = Buffer.alloc(500_000, 3);
      const a = await call(client, [...REQ, 'x-long', long], [body.subarray(0, 100), body.subarray(100)]);
      expect([a.err, a.headers?.slice(0, 2), a.headers?.[a.headers.indexOf('x-echo') + 1], a.trailers, a.data.equals(body)]).to.deep.equal([
        undefined,
        [':status', '200'],
        long,
        ['grpc-status', '0'],
        true,
      ]);
      const t = await call(client, [...REQ, 'x-trailers-only', '1'], [Buffer.from('x')]);
      expect(t.trailers).to.equal(t.headers);
      const field = (name: string): string | undefined => t.trailers?.[t.trailers.indexOf(name) + 1];
      expect([field('grpc-status'), field('grpc-message')]).to.deep.equal(['5', 'not found here']);
    } finally {
      client.destroy();
      h2.close();
    }
  });

  describe('hostile peers', () => {
    const STREAM_WINDOW = 3000;
    let peer: RawH2Peer;
    let port: number;
    beforeEach(async () => {
      server = new TestServer({
        streamWindow: STREAM_WINDOW,
        maxConcurrentStreams: 4,
        maxResetsPerSecond: 50,
        maxControlFramesPerSecond: 100,
        maxHeaderListSize: 4096,
      });
      port = await server.listen();
      peer = await RawH2Peer.connect(port);
    });
    afterEach(() => peer.destroy());

    /** The connection ends with GOAWAY `code`, and a well-behaved client on another connection still gets answers. */
    async function expectGoaway(code: number): Promise<void> {
      const g = await peer.goaway();
      expect(g.code, g.debug).to.equal(code);
      await peer.closed;
      const client = await connect();
      const a = await call(client, REQ, [Buffer.from('still here')]);
      expect([a.err, a.data.toString()]).to.deep.equal([undefined, 'still here']);
    }

    it('a bad preface → PROTOCOL_ERROR', async () => {
      const p = await RawH2Peer.connect(port, { preface: false });
      p.send(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'));
      expect((await p.goaway()).code).to.equal(ErrorCode.PROTOCOL_ERROR);
      p.destroy();
    });
    it('a frame above SETTINGS_MAX_FRAME_SIZE → FRAME_SIZE_ERROR from its header alone', async () => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(16_385, 0, 3);
      h[3] = FrameType.DATA;
      h.writeUInt32BE(1, 5);
      peer.send(h); // no payload follows
      await expectGoaway(ErrorCode.FRAME_SIZE_ERROR);
    });
    it('DATA beyond the stream window → RST_STREAM FLOW_CONTROL_ERROR', async () => {
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, encodeHeaderBlock(REQ));
      peer.frame(FrameType.DATA, 0, 1, Buffer.alloc(STREAM_WINDOW + 1));
      expect(await peer.rstCode(1)).to.equal(ErrorCode.FLOW_CONTROL_ERROR);
    });
    it('a CONTINUATION flood → ENHANCE_YOUR_CALM, never an unbounded header block', async () => {
      peer.frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock(REQ));
      for (let i = 0; i < 200; i++) peer.frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(0));
      await expectGoaway(ErrorCode.ENHANCE_YOUR_CALM);
    });
    it('rapid reset (open and reset streams) → ENHANCE_YOUR_CALM', async () => {
      const block = encodeHeaderBlock(REQ);
      for (let id = 1; id < 400; id += 2) peer.send(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block), rstStreamFrame(id, ErrorCode.CANCEL));
      await expectGoaway(ErrorCode.ENHANCE_YOUR_CALM);
    });
    it('a PING flood → ENHANCE_YOUR_CALM', async () => {
      for (let i = 0; i < 300; i++) peer.frame(FrameType.PING, 0, 0, Buffer.alloc(8, i & 0xff));
      await expectGoaway(ErrorCode.ENHANCE_YOUR_CALM);
    });
    it('streams beyond SETTINGS_MAX_CONCURRENT_STREAMS → REFUSED_STREAM for those only', async () => {
      server.answer = () => undefined;
      const block = encodeHeaderBlock(REQ);
      for (let id = 1; id <= 11; id += 2) peer.frame(FrameType.HEADERS, Flag.END_HEADERS, id, block);
      expect(await peer.rstCode(9)).to.equal(ErrorCode.REFUSED_STREAM);
      expect(await peer.rstCode(11)).to.equal(ErrorCode.REFUSED_STREAM);
      expect(peer.frames.filter((f) => f.type === FrameType.RST_STREAM).map((f) => f.streamId)).to.deep.equal([9, 11]);
    });
    it('a header list above the limit → 431 on that stream; the connection goes on', async () => {
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeHeaderBlock([...REQ, 'x-big', 'v'.repeat(4000)]));
      const h = await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1, 'the 431');
      expect(h.flags & Flag.END_STREAM).to.equal(Flag.END_STREAM);
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, encodeHeaderBlock(REQ));
      await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 3 && (f.flags & Flag.END_STREAM) !== 0, 'the answer on stream 3');
    });
    it('malformed HPACK → COMPRESSION_ERROR', async () => {
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
      await expectGoaway(ErrorCode.COMPRESSION_ERROR);
    });
    it('an upper-case header name or a missing :path → RST_STREAM PROTOCOL_ERROR, the connection goes on', async () => {
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeHeaderBlock([...REQ, 'X-Upper', 'v']));
      expect(await peer.rstCode(1)).to.equal(ErrorCode.PROTOCOL_ERROR);
      peer.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, encodeHeaderBlock(REQ.slice(0, 4)));
      expect(await peer.rstCode(3)).to.equal(ErrorCode.PROTOCOL_ERROR);
      expect(server.completed).to.have.length(0);
    });
    it('frames in the wrong place → PROTOCOL_ERROR (DATA on stream 0, an even stream id, an idle stream, a frame inside a header block)', async () => {
      const cases: Buffer[][] = [
        [frame(FrameType.DATA, 0, 0, Buffer.from('x'))],
        [frame(FrameType.HEADERS, Flag.END_HEADERS, 2, encodeHeaderBlock(REQ))],
        [frame(FrameType.DATA, 0, 7, Buffer.from('x'))],
        [frame(FrameType.HEADERS, 0, 1, encodeHeaderBlock(REQ)), frame(FrameType.PING, 0, 0, Buffer.alloc(8))],
        [frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4))],
      ];
      for (const c of cases) {
        const p = await RawH2Peer.connect(port);
        p.send(...c);
        expect((await p.goaway()).code, p.describe()).to.equal(ErrorCode.PROTOCOL_ERROR);
        p.destroy();
      }
    });
    it('a window above 2^31-1 → FLOW_CONTROL_ERROR', async () => {
      peer.send(windowUpdateFrame(0, 2 ** 31 - 1));
      await expectGoaway(ErrorCode.FLOW_CONTROL_ERROR);
    });
    it('random frame sequences: the server survives, answers or sends GOAWAY/RST, and serves other connections (property)', async () => {
      const anyFrame = fc.record({
        type: fc.integer({ min: 0, max: 10 }),
        flags: fc.integer({ min: 0, max: 255 }),
        id: fc.constantFrom(0, 1, 2, 3, 5, 2 ** 31 - 1),
        payload: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(encodeHeaderBlock(REQ))),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 20 }), async (frames) => {
          const p = await RawH2Peer.connect(port);
          p.send(...frames.map((f) => frame(f.type, f.flags, f.id, Buffer.from(f.payload))));
          p.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1]]));
          await sleep(5);
          p.destroy();
        }),
        { numRuns: 150 },
      );
      const client = await connect();
      const a = await call(client, REQ, [Buffer.from('ok')]);
      expect([a.err, a.data.toString()]).to.deep.equal([undefined, 'ok']);
    });
  });
});

describe('RateCounter (flood limits over a sliding second)', () => {
  it('catches a burst of 1.2 × the limit that straddles a second boundary', () => {
    const c = new RateCounter(10_000);
    const hits = [...Array.from({ length: 6000 }, () => c.hit(1_000_999)), ...Array.from({ length: 6000 }, () => c.hit(1_001_000))];
    expect(hits.indexOf(true)).to.equal(10_000);
  });

  it('more than the limit within 0.9 s is always caught, no more than the limit within 1 s never is (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 300 }), (limit, gaps) => {
        const c = new RateCounter(limit);
        const times: number[] = [];
        let t = 1_700_000_000_000;
        for (const gap of gaps) {
          t += gap;
          times.push(t);
          const over = c.hit(t);
          const within = (ms: number): number => times.filter((x) => x > t - ms).length;
          if (within(900) > limit) expect(over, `at ${t}: ${within(900)} hits within 0.9 s`).to.equal(true);
          if (within(1000) <= limit) expect(over, `at ${t}: ${within(1000)} hits within 1 s`).to.equal(false);
        }
      }),
      { numRuns: 300 },
    );
  });
});

async function waitFor<T>(get: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('http2 client liveness, against a hand-framed server', () => {
  let raw: Awaited<ReturnType<typeof RawH2Peer.listen>>;
  let conns: Http2Connection[];
  beforeEach(async () => {
    raw = await RawH2Peer.listen();
    conns = [];
  });
  afterEach(() => {
    for (const c of conns) c.destroy();
    raw.close();
  });
  const dial = (opts: ConnectionOptions): Http2Connection => {
    const c = Http2Connection.connect({ host: '127.0.0.1', port: raw.port }, opts);
    conns.push(c);
    return c;
  };
  const answer = (id: number): Buffer =>
    Buffer.concat([
      headersFrames(id, encodeHeaderBlock([':status', '200']), false, 16384),
      frame(FrameType.DATA, 0, id, Buffer.from('ok')),
      headersFrames(id, encodeHeaderBlock(['grpc-status', '0']), true, 16384),
    ]);
  const isRequestEnd = (f: { type: number; flags: number; streamId: number }): boolean =>
    f.streamId !== 0 && (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && (f.flags & Flag.END_STREAM) !== 0;
  const isPing = (f: { type: number; flags: number }): boolean => f.type === FrameType.PING && (f.flags & Flag.ACK) === 0;

  it('a server that never acknowledges our SETTINGS gets GOAWAY SETTINGS_TIMEOUT, and the open call fails', async () => {
    const c = dial({ settingsTimeoutMs: 150 });
    const pending = call(c, REQ, [Buffer.from('x')]);
    const peer = await raw.next();
    peer.send(settingsFrame([])); // its own SETTINGS, but no ACK of ours
    await peer.waitFor(isRequestEnd, 'the request');
    const goaway = await peer.goaway();
    expect(goaway.code).to.equal(ErrorCode.SETTINGS_TIMEOUT);
    expect(goaway.debug).to.match(/did not acknowledge our SETTINGS within 150 ms/);
    const a = await pending;
    expect(a.err?.code).to.equal(ErrorCode.SETTINGS_TIMEOUT);
    expect(c.usable).to.equal(false);
  });

  it('a server that acknowledges our SETTINGS keeps the connection: calls before and after the timeout succeed', async () => {
    const c = dial({ settingsTimeoutMs: 500 });
    const first = call(c, REQ, [Buffer.from('x')]);
    const peer = await raw.next();
    peer.send(settingsFrame([]), SETTINGS_ACK);
    await peer.waitFor(isRequestEnd, 'the first request');
    peer.send(answer(1));
    expect((await first).err).to.equal(undefined);
    await sleep(600); // past the timeout
    const second = call(c, REQ, [Buffer.from('y')]);
    await peer.waitFor((f) => isRequestEnd(f) && f.streamId === 3, 'the second request');
    peer.send(answer(3));
    const a = await second;
    expect(a.err).to.equal(undefined);
    expect(a.data.toString()).to.equal('ok');
    expect(peer.frames.some((f) => f.type === FrameType.GOAWAY)).to.equal(false);
  });

  it('keepalive: a server gone silent during a call is noticed by the PING it leaves unanswered', async () => {
    const c = dial({ keepaliveMs: 50, keepaliveTimeoutMs: 100 });
    const pending = call(c, REQ, [Buffer.from('x')]);
    const peer = await raw.next();
    peer.send(settingsFrame([]), SETTINGS_ACK);
    await peer.waitFor(isRequestEnd, 'the request');
    // From here on the server reads but never writes (a peer behind a silent network).
    await peer.waitFor(isPing, 'a keepalive PING');
    const a = await pending;
    expect(a.err?.message).to.match(/no answer to a keepalive PING within 100 ms/);
    expect(c.usable).to.equal(false);
  });

  it('keepalive: a server that answers PINGs keeps a slow call alive; no PINGs while no call is open', async () => {
    // A long timeout: the PINGs are answered, so only a stall of this test's own process could make one look lost.
    const c = dial({ keepaliveMs: 40, keepaliveTimeoutMs: 5000 });
    const pending = call(c, REQ, [Buffer.from('x')]);
    const peer = await raw.next();
    peer.send(settingsFrame([]), SETTINGS_ACK);
    await peer.waitFor(isRequestEnd, 'the request');
    // Each PING answered, and the call only after the third: it outlives several keepalive periods.
    let answered = 0;
    while (answered < 3) {
      await peer.waitFor(() => peer.frames.filter(isPing).length > answered, `PING ${answered + 1}`);
      const pings = peer.frames.filter(isPing);
      for (const p of pings.slice(answered)) peer.send(pingFrame(p.payload, true));
      answered = pings.length;
    }
    peer.send(answer(1));
    const a = await pending;
    expect(a.err).to.equal(undefined);
    expect(c.usable).to.equal(true);
    const before = peer.frames.filter(isPing).length;
    await sleep(200); // five keepalive periods without a call
    expect(peer.frames.filter(isPing).length - before).to.be.at.most(1); // at most one already due as the call ended
    expect(c.usable).to.equal(true);
  });
});
