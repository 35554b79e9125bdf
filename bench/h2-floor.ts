/**
 * What receiving a gRPC unary request costs on node:http2 and on routelens's own HTTP/2 stack, against the least any
 * HTTP/2 server written in Node can spend on it. Three servers that only receive and answer (no decoding, no
 * pipeline), each alone on CPU 1 with routelens's V8 flags, under the same telemetrygen load on CPU 0, alternating,
 * rounds of runs:
 *
 * - `node`: node:http2 used as the otlp receiver uses it (1 MiB stream window, 256 KiB connection window, the
 *   request gathered from 'data' events, the answer sent after a promise, trailers through `waitForTrailers`);
 * - `raw`: frames read off the socket by hand, header blocks skipped undecoded, windows opened wide once, and the
 *   answer (HEADERS, the 5-byte message, trailers) written with one `socket.write`. Not a server anyone should
 *   run: it is the floor that kernel, event loop and V8 set, which an HTTP/2 of our own could approach;
 * - `own`: src/http2's server connection used as the otlp receiver uses it (same windows, the request gathered
 *   from onData, the answer built once and sent after a promise with `stream.respond`).
 *
 *   npm run build && node dist/bench/h2-floor.js [--spans 100] [--rate 10000] [--pairs 3] [--warmup 10] [--measure 20]
 *
 * Prints CPU µs per request of each server, per pair and as medians. Used by BENCHMARKS.md ("What limits each
 * figure": small requests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePorts } from '../test/support/free-port';
import { IpcClient, serveIpc } from './ipc';
import { scenarioByName } from './scenarios';
import { buildTelemetrygen, startTelemetrygen, stopTelemetrygen } from './telemetrygen';
import { Http2Connection, type Http2Stream, type ServerHandler } from '../src/http2/connection';
import { encodeHeaderBlock } from '../src/http2/hpack';

type Mode = 'node' | 'raw' | 'own';
const MODES: readonly Mode[] = ['node', 'raw', 'own'];
let requests = 0;

/** The receiver's answer to an accepted call (src/receivers/otlp/grpc.ts): headers, the empty message, trailers. */
const OK_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': 'identity,gzip,deflate' });
const OK_OPTIONS = Object.freeze({ waitForTrailers: true, sendDate: false }) as http2.ServerStreamResponseOptions;
const OK_TRAILERS = Object.freeze({ 'grpc-status': '0' });
function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

function serveNode(port: number): Promise<void> {
  const server = http2.createServer({ settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 1000 }, maxSessionMemory: 64 });
  server.on('session', (s) => s.setLocalWindowSize(256 * 1024));
  const empty = Buffer.alloc(5);
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      requests++;
      void Promise.resolve().then(() => {
        stream.respond(OK_HEADERS, OK_OPTIONS);
        stream.on('wantTrailers', sendOkTrailers);
        stream.end(empty);
      });
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK: literal header field without indexing, new name, no Huffman coding. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

function serveRaw(port: number): Promise<void> {
  // :status 200 is entry 8 of HPACK's static table.
  const headers = Buffer.concat([Buffer.from([0x88]), literal('content-type', 'application/grpc'), literal('grpc-encoding', 'identity')]);
  const trailers = literal('grpc-status', '0');
  const answer = (id: number): Buffer => Buffer.concat([frame(1, 0x4, id, headers), frame(0, 0, id, Buffer.alloc(5)), frame(1, 0x5, id, trailers)]);
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(2 ** 30, 2);
  const connectionWindow = Buffer.alloc(4);
  connectionWindow.writeUInt32BE(2 ** 31 - 1 - 65_535, 0);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([frame(4, 0, 0, settings), frame(8, 0, 0, connectionWindow)]));
    let buf: Buffer = Buffer.alloc(0);
    let preface = false;
    const open = new Map<number, Buffer[]>();
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      let p = 0;
      if (!preface) {
        if (buf.length < 24) return;
        p = 24;
        preface = true;
      }
      const out: Buffer[] = [];
      while (buf.length - p >= 9) {
        const len = buf.readUIntBE(p, 3);
        if (buf.length - p < 9 + len) break;
        const type = buf[p + 3] as number;
        const flags = buf[p + 4] as number;
        const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
        const payload = buf.subarray(p + 9, p + 9 + len);
        p += 9 + len;
        if (type === 4 && (flags & 1) === 0) out.push(frame(4, 1, 0, Buffer.alloc(0)));
        else if (type === 6 && (flags & 1) === 0) out.push(frame(6, 1, 0, payload));
        else if (type === 1) open.set(id, []);
        else if (type === 0) {
          const chunks = open.get(id);
          if (chunks === undefined) continue;
          chunks.push(Buffer.from(payload));
          if ((flags & 1) === 0) continue;
          open.delete(id);
          requests++;
          out.push(answer(id));
        }
      }
      buf = p === buf.length ? Buffer.alloc(0) : buf.subarray(p);
      if (out.length > 0) socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

function serveOwn(port: number): Promise<void> {
  const headers = encodeHeaderBlock([':status', '200', 'content-type', 'application/grpc', 'grpc-accept-encoding', 'identity,gzip,deflate']);
  const trailers = encodeHeaderBlock(['grpc-status', '0']);
  const empty = Buffer.alloc(5);
  const answer = (stream: Http2Stream): void => void stream.respond(headers, empty, trailers);
  const handler: ServerHandler = {
    onHeaders: (stream) => void (stream.user = [] as Buffer[]),
    onData: (stream, data) => void (stream.user as Buffer[]).push(data),
    onEnd: (stream) => {
      requests++;
      void Promise.resolve(stream).then(answer);
    },
    onAbort: () => undefined,
  };
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    Http2Connection.server(socket, handler, { streamWindow: 1 << 20, connectionWindow: 256 * 1024, maxConcurrentStreams: 1000 });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** One run: a server of `mode` on CPU 1, telemetrygen on CPU 0; CPU µs per request over the window. */
async function runOnce(mode: Mode, tg: string, shape: string, warmupS: number, measureS: number): Promise<{ us: number; requests: number }> {
  const [port] = (await freePorts(1)) as [number];
  const root = path.resolve(__dirname, '..', '..');
  const flags = (fs.readFileSync(path.join(root, 'bin', 'routelens.js'), 'utf8').split('\n', 1)[0] ?? '').split(/\s+/).filter((f) => f.startsWith('--'));
  const server = spawn('taskset', ['-c', '1', process.execPath, ...flags, __filename, '--serve', mode, String(port)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const client = new IpcClient(server, `${mode} server`);
  await client.call('ready');
  const sc = scenarioByName(shape);
  const procs: ChildProcess[] = startTelemetrygen(
    tg,
    sc,
    `127.0.0.1:${port}`,
    (cmd, args, env) => spawn('taskset', ['-c', '0', cmd, ...args], { env, stdio: 'ignore' }),
    '/dev/null',
  );
  try {
    await sleep(warmupS * 1000);
    const c0 = cpuSeconds(server.pid as number);
    const r0 = await client.call<number>('requests');
    await sleep(measureS * 1000);
    const c1 = cpuSeconds(server.pid as number);
    const r1 = await client.call<number>('requests');
    return { us: ((c1 - c0) * 1e6) / Math.max(1, r1 - r0), requests: r1 - r0 };
  } finally {
    await stopTelemetrygen(procs);
    server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const serve = process.argv.indexOf('--serve');
  if (serve >= 0) {
    const mode = process.argv[serve + 1] as Mode;
    const port = Number(process.argv[serve + 2]);
    await (mode === 'raw' ? serveRaw(port) : mode === 'own' ? serveOwn(port) : serveNode(port));
    serveIpc((cmd) => (cmd === 'requests' ? requests : true));
    return;
  }
  const spans = option('spans', 100);
  const rate = option('rate', 10_000);
  const pairs = option('pairs', 3);
  const warmupS = option('warmup', 10);
  const measureS = option('measure', 20);
  const shape = `tg${spans}-${rate >= 50_000 ? '50k' : rate >= 10_000 ? '10k' : '1k'}-bare`;
  const root = path.resolve(__dirname, '..', '..');
  const tg = buildTelemetrygen(root);
  const got: Record<Mode, number[]> = { node: [], raw: [], own: [] };
  for (let i = 1; i <= pairs; i++) {
    for (const mode of MODES) {
      const r = await runOnce(mode, tg, shape, warmupS, measureS);
      got[mode].push(r.us);
      console.log(`round ${i} ${mode.padEnd(4)}: ${r.us.toFixed(0)} µs CPU per request (${r.requests} requests in ${measureS} s)`);
    }
  }
  const n = median(got.node);
  const r = median(got.raw);
  const o = median(got.own);
  const ratios = (m: Mode): string => got[m].map((x, k) => (x / (got.node[k] as number)).toFixed(2)).join(', ');
  console.log(
    `${shape} (telemetrygen ${spans}-span requests): node:http2 ${n.toFixed(0)} µs, src/http2 ${o.toFixed(0)} µs, hand-framed ${r.toFixed(0)} µs ` +
      `per request (medians of ${pairs}); per round own/node ${ratios('own')}, raw/node ${ratios('raw')}`,
  );
}

main().then(
  () => undefined,
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
