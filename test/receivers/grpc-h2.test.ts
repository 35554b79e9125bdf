/**
 * The OTLP/gRPC receiver on routelens's own HTTP/2 stack, seen from real clients and from hostile ones:
 *  - differential: random valid calls sent through node:http2 and through @grpc/grpc-js arrive as the same bytes
 *    and metadata, and get the same answer (status and message);
 *  - node:http2 Huffman-codes header values when that is shorter: such headers arrive intact;
 *  - hostile frame sequences end in the right GOAWAY or RST_STREAM, and other connections' calls still succeed.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import fc from 'fast-check';
import * as zlib from 'node:zlib';
import pino from 'pino';
import type { PipelineContext } from '../../src/core/component';
import { PipelineError } from '../../src/core/errors';
import { Telemetry } from '../../src/core/telemetry';
import { ErrorCode, Flag, FrameType, frame } from '../../src/http2/frames';
import { HpackDecoder, encodeHeaderBlock } from '../../src/http2/hpack';
import type { TraceBatch } from '../../src/pdata/trace-batch';
import { otlpReceiverConfigSchema } from '../../src/receivers/otlp/config';
import { OtlpReceiver } from '../../src/receivers/otlp/factory';
import { MAX_CONNECTION_BUFFERED } from '../../src/receivers/otlp/grpc';
import { ConfigErrorList } from '../../src/core/schema';
import { RawH2Peer } from '../support/h2-raw';
import { grpcFrame, h2Call, TRACE_EXPORT_PATH } from '../support/raw-grpc';
import { spanIds, traceRequest } from '../support/trace-requests';

interface Received {
  bytes: string;
  metadata: Record<string, string>;
}

/** A traces consumer that records what arrives and answers as the call's `x-outcome` header says. */
class Recorder {
  readonly got: Received[] = [];
  async consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void> {
    const metadata = Object.fromEntries(Object.entries(ctx.headers ?? {}).filter(([k]) => k.startsWith('x-')));
    this.got.push({ bytes: Buffer.from(batch.encode()).toString('hex'), metadata });
    const outcome = metadata['x-outcome'];
    if (outcome === 'unavailable') throw new PipelineError('refused', 'sending queue is full', { retryAfterMs: 1500 });
    if (outcome === 'invalid') throw new PipelineError('malformed', 'refused by the test: ünïcode % message');
  }
}

async function startReceiver(recorder: Recorder): Promise<{ port: number; stop: () => Promise<void> }> {
  const issues = new ConfigErrorList();
  const config = otlpReceiverConfigSchema.parse({ protocols: { grpc: { endpoint: '127.0.0.1:0', include_metadata: true } } }, 'receivers.otlp', issues);
  if (!issues.empty) throw new Error(issues.format());
  const receiver = new OtlpReceiver({ id: 'otlp', logger: pino({ level: 'silent' }), telemetry: new Telemetry() }, config, { traces: recorder });
  await receiver.start({ getExtension: () => undefined } as never);
  return { port: (receiver.grpc as { port: number }).port, stop: () => receiver.shutdown() };
}

const identity = (b: Buffer): Buffer => b;

describe('otlp receiver over its own HTTP/2 stack', () => {
  let recorder: Recorder;
  let rx: { port: number; stop: () => Promise<void> };
  let grpcClient: grpc.Client;
  let gzipClient: grpc.Client;
  before(async () => {
    recorder = new Recorder();
    rx = await startReceiver(recorder);
    const opts = { 'grpc.max_send_message_length': -1 };
    grpcClient = new grpc.Client(`127.0.0.1:${rx.port}`, grpc.credentials.createInsecure(), opts);
    gzipClient = new grpc.Client(`127.0.0.1:${rx.port}`, grpc.credentials.createInsecure(), { ...opts, 'grpc.default_compression_algorithm': 2 });
  });
  after(async () => {
    grpcClient.close();
    gzipClient.close();
    await rx.stop();
  });

  function viaGrpcJs(body: Buffer, metadata: Record<string, string>, gzip: boolean): Promise<{ code: number; message: string }> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve) =>
      (gzip ? gzipClient : grpcClient).makeUnaryRequest(TRACE_EXPORT_PATH, identity, identity, body, md, { deadline: Date.now() + 20_000 }, (err) =>
        resolve(err === null || err === undefined ? { code: 0, message: '' } : { code: err.code, message: err.details }),
      ),
    );
  }

  async function viaNodeHttp2(body: Buffer, metadata: Record<string, string>, gzip: boolean): Promise<{ code: number; message: string }> {
    const framed = gzip ? grpcFrame(zlib.gzipSync(body), { compressed: 1 }) : grpcFrame(body);
    const a = await h2Call(rx.port, framed, { headers: { ...metadata, ...(gzip ? { 'grpc-encoding': 'gzip' } : {}) } });
    return { code: a?.grpcStatus ?? -1, message: a?.grpcMessage ?? '' };
  }

  it('random valid calls through node:http2 and through grpc-js arrive byte-identical and are answered identically (property)', async () => {
    const value = fc.stringMatching(/^[ -~]{0,60}$/).filter((v) => v.trim() === v);
    const call = fc.record({
      spans: fc.integer({ min: 1, max: 40 }),
      service: fc.stringMatching(/^[a-z]{1,12}$/),
      padBytes: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50_000 })),
      // text metadata only: a key ending in -bin is binary metadata (grpc-js refuses a string value for it)
      metadata: fc.dictionary(
        fc.stringMatching(/^x-[a-z0-9]{1,10}$/).filter((k) => !k.endsWith('-bin')),
        value,
        { maxKeys: 4 },
      ),
      outcome: fc.constantFrom('ok', 'ok', 'unavailable', 'invalid'),
      gzip: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(call, async (c) => {
        const body = Buffer.from(traceRequest(spanIds(7, c.spans), { service: c.service, padBytes: c.padBytes }));
        const metadata = { ...c.metadata, 'x-outcome': c.outcome };
        recorder.got.length = 0;
        const fromNode = await viaNodeHttp2(body, metadata, c.gzip);
        const fromGrpcJs = await viaGrpcJs(body, metadata, c.gzip);
        expect(fromGrpcJs).to.deep.equal(fromNode);
        const expected = { ok: 0, unavailable: grpc.status.UNAVAILABLE, invalid: grpc.status.INVALID_ARGUMENT }[c.outcome];
        expect(fromNode.code).to.equal(expected);
        expect(recorder.got).to.have.length(2);
        const [a, b] = recorder.got as [Received, Received];
        expect(a.bytes).to.equal(body.toString('hex'));
        expect(b.bytes).to.equal(body.toString('hex'));
        expect(a.metadata).to.deep.equal(metadata);
        expect(b.metadata).to.deep.equal(metadata);
      }),
      { numRuns: 40 },
    );
  });

  it('decodes header values node:http2 Huffman-codes (long lower-case text, digits) exactly', async () => {
    // HPACK's Huffman code is shorter for these, so nghttp2 sends them Huffman-coded.
    const metadata = { 'x-long': 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(20), 'x-digits': '0123456789'.repeat(5), 'x-outcome': 'ok' };
    recorder.got.length = 0;
    const a = await viaNodeHttp2(Buffer.from(traceRequest(spanIds(9, 1))), metadata, false);
    expect(a.code).to.equal(0);
    expect(recorder.got.map((g) => g.metadata)).to.deep.equal([metadata]);
  });

  describe('hostile frames', () => {
    const REQ = encodeHeaderBlock([':method', 'POST', ':scheme', 'http', ':path', TRACE_EXPORT_PATH, 'content-type', 'application/grpc', 'te', 'trailers']);

    async function stillServes(): Promise<void> {
      const ok = await viaGrpcJs(Buffer.from(traceRequest(spanIds(3, 2))), { 'x-outcome': 'ok' }, false);
      expect(ok).to.deep.equal({ code: 0, message: '' });
    }

    const cases: [string, (p: RawH2Peer) => void, number][] = [
      [
        'a frame above 16 KiB',
        (p) => {
          const h = Buffer.alloc(9);
          h.writeUIntBE(1 << 20, 0, 3);
          p.send(h);
        },
        ErrorCode.FRAME_SIZE_ERROR,
      ],
      [
        'a CONTINUATION flood',
        (p) => p.send(frame(FrameType.HEADERS, 0, 1, REQ), ...Array.from({ length: 100 }, () => frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(1000)))),
        ErrorCode.ENHANCE_YOUR_CALM,
      ],
      [
        'rapid reset',
        (p) => {
          for (let id = 1; id < 1000; id += 2)
            p.send(frame(FrameType.HEADERS, Flag.END_HEADERS, id, REQ), frame(FrameType.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
        },
        ErrorCode.ENHANCE_YOUR_CALM,
      ],
      // Three times the 10,000 a second the receiver allows: the server reads 64 KiB (7,281 empty frames) at a time, and
      // more than 10,000 must fall within 0.9 s of each other even when a loaded machine spaces the reads out.
      ['a SETTINGS flood', (p) => p.send(...Array.from({ length: 30_000 }, () => frame(FrameType.SETTINGS, 0, 0))), ErrorCode.ENHANCE_YOUR_CALM],
      [
        'garbage HPACK',
        (p) => p.frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
        ErrorCode.COMPRESSION_ERROR,
      ],
      ['PUSH_PROMISE from a client', (p) => p.frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
    ];
    for (const [what, send, code] of cases) {
      it(`${what} → GOAWAY ${Object.entries(ErrorCode).find(([, v]) => v === code)?.[0]}; other connections are served`, async () => {
        const peer = await RawH2Peer.connect(rx.port);
        try {
          send(peer);
          const g = await peer.goaway(10_000);
          expect(g.code, g.debug).to.equal(code);
          await stillServes();
        } finally {
          peer.destroy();
        }
      });
    }

    it('a request body beyond max_recv_msg_size_mib is answered RESOURCE_EXHAUSTED and the rest is refused with RST_STREAM NO_ERROR', async () => {
      const peer = await RawH2Peer.connect(rx.port);
      try {
        const prefix = Buffer.from([0, 0, 0x50, 0, 0]); // declares 5 MiB
        peer.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, REQ), frame(FrameType.DATA, 0, 1, Buffer.concat([prefix, Buffer.alloc(1000)])));
        const answer = await peer.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1, 'the answer');
        expect(answer.flags & Flag.END_STREAM).to.equal(Flag.END_STREAM);
        expect(await peer.rstCode(1)).to.equal(ErrorCode.NO_ERROR);
        await stillServes();
      } finally {
        peer.destroy();
      }
    });

    it('bodies held at once on one connection are bounded: past the budget a call gets UNAVAILABLE, not more memory', async () => {
      const peer = await RawH2Peer.connect(rx.port);
      try {
        const perStream = 4 * 1024 * 1024 - 1024; // under max_recv_msg_size_mib (4)
        const streams = Math.ceil(MAX_CONNECTION_BUFFERED / perStream) + 1;
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(perStream, 1);
        const chunk = Buffer.alloc(16_384);
        for (let k = 0; k < streams; k++) {
          const id = 1 + 2 * k;
          const parts = [frame(FrameType.HEADERS, Flag.END_HEADERS, id, REQ), frame(FrameType.DATA, 0, id, prefix)];
          // The whole body but its last byte: no call completes, so every byte is held.
          for (let sent = 0; sent < perStream - 1; sent += chunk.length)
            parts.push(frame(FrameType.DATA, 0, id, chunk.subarray(0, Math.min(chunk.length, perStream - 1 - sent))));
          peer.send(...parts);
        }
        const answer = await peer.waitFor((f) => f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM) !== 0, 'a trailers-only answer', 30_000);
        const fields = new HpackDecoder().decode(answer.payload);
        expect(fields[fields.indexOf('grpc-status') + 1]).to.equal(String(grpc.status.UNAVAILABLE));
        expect(fields[fields.indexOf('grpc-message') + 1]).to.match(/bytes of requests arriving at once on this connection/);
        await stillServes();
      } finally {
        peer.destroy();
      }
    });

    it('random frame sequences never take the receiver down (property)', async () => {
      const anyFrame = fc.record({
        type: fc.integer({ min: 0, max: 10 }),
        flags: fc.integer({ min: 0, max: 255 }),
        id: fc.constantFrom(0, 1, 3, 4, 2 ** 31 - 1),
        payload: fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.constant(REQ), fc.constant(grpcFrame(traceRequest(spanIds(1, 1))))),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 25 }), async (frames) => {
          const peer = await RawH2Peer.connect(rx.port);
          peer.send(...frames.map((f) => frame(f.type, f.flags, f.id, Buffer.from(f.payload))));
          await new Promise((r) => setTimeout(r, 5));
          peer.destroy();
        }),
        { numRuns: 200 },
      );
      await stillServes();
    });
  });
});
