/**
 * The load generator (a child process of bench/run.ts, pinned to the sink's core, away from the collector).
 * Requests are encoded once (workload.ts) and reused; before each send only 16 bytes are patched in place: the
 * marker's sequence number and send time (wire.ts). They are written as they are, behind a 5-byte gRPC prefix
 * kept per request, by a minimal gRPC unary client on node:http2 over a few channels (separate TCP connections),
 * each with several concurrent calls (HTTP/2 streams). grpc-js, used before, copied every request into a framed
 * buffer of its own: that external memory drove a full GC in the generator every ≈ 2 s at 10k spans/s, each a
 * 4–12 ms stall that was most of the harness's own p99 latency. The pool is at least twice the outstanding calls,
 * so a request's bytes are not patched again while they are still being written.
 *
 * Modes: `rate` offers a fixed spans/s open loop (ticks every ms, catches up when behind, never more than
 * `maxInflight` outstanding calls); `saturate` keeps `concurrency` calls outstanding (closed loop) and waits
 * 10 ms after a refusal.
 *
 * IPC commands: build, start, stop, windowStart, windowEnd, stats, reset, exact.
 */
import * as http2 from 'node:http2';
import { GrpcStatus } from '../src/core/errors';
import { serveIpc } from './ipc';
import { buildSignalPool, type AppSignal } from './signals-workload';
import { LOGS_EXPORT_PATH, METRICS_EXPORT_PATH, TRACE_EXPORT_PATH } from './wire';
import { buildPool, type Pool } from './workload';

/** One gRPC unary call's outcome: a grpc-status and its message. */
interface CallResult {
  code: number;
  details: string;
}

/** A gRPC channel: one HTTP/2 connection, re-opened when it is lost. */
class Channel {
  readonly #authority: string;
  #session: http2.ClientHttp2Session | undefined;

  constructor(target: string) {
    this.#authority = `http://${target}`;
  }

  call(path: string, prefix: Buffer, body: Buffer, timeoutMs: number, done: (r: CallResult) => void): void {
    if (this.#session === undefined || this.#session.closed || this.#session.destroyed) {
      // Writes waiting for the collector's flow-control window count against maxSessionMemory (MB).
      this.#session = http2.connect(this.#authority, { maxSessionMemory: 1024 });
      this.#session.on('error', () => undefined); // the calls on it fail with UNAVAILABLE below
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.#session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    } catch (e) {
      this.#session = undefined;
      done({ code: GrpcStatus.UNAVAILABLE, details: (e as Error).message });
      return;
    }
    let meta: http2.IncomingHttpHeaders | undefined;
    let httpStatus = 0;
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      if (h['grpc-status'] !== undefined) meta = h; // trailers-only answer
    });
    stream.on('trailers', (t) => (meta = t));
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.on('close', () => {
      if (meta !== undefined) done({ code: Number(meta['grpc-status']), details: String(meta['grpc-message'] ?? '') });
      else done({ code: GrpcStatus.UNAVAILABLE, details: `no grpc-status (HTTP ${httpStatus}, RST_STREAM ${stream.rstCode})` });
    });
    stream.write(prefix);
    stream.end(body);
  }

  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }
}

export interface StartArgs {
  target: string;
  mode: 'rate' | 'saturate';
  spansPerSec?: number;
  /** saturate: outstanding calls; rate: the cap on outstanding calls. */
  concurrency: number;
  channels: number;
  /**
   * Give every send's traces ids of their own (the send's sequence number in each trace id's last 4 bytes), so a
   * pooled request sent again is new traces, as real traffic is, for trace assembly and tail sampling.
   */
  freshTraceIds?: boolean;
}

export interface GenCounters {
  sentRequests: number;
  acceptedRequests: number;
  refusedRequests: number;
  failedRequests: number;
  sentSpans: number;
  acceptedSpans: number;
  refusedSpans: number;
  failedSpans: number;
  inflight: number;
  /** rate mode: most requests owed at once (the generator fell behind the schedule). */
  maxBacklog: number;
  lastError: string;
}

export interface GenWindow {
  sentSpans: number;
  acceptedSpans: number;
  refusedSpans: number;
  failedSpans: number;
  /** Send → OK response, ms. */
  ackLatenciesMs: number[];
  elapsedS: number;
}

export interface ExactRoute {
  route: string;
  count: number;
  p50_ms: number;
  p90_ms: number;
  p95_ms: number;
  p99_ms: number;
}

let pool: Pool | undefined;
/** The Export method the pool's requests go to (traces, or the metrics or logs of the app-signal scenarios). */
let exportPath = TRACE_EXPORT_PATH;
/** Pools already built, by signal, spans per request and size (a run switches between request shapes). */
const pools = new Map<string, Pool>();
/** Per route, the SERVER samples sorted by duration: [durationNs, poolIndex]. */
let routeSamples: [number, number][][] = [];
let acceptedPerPool = new Uint32Array(0);

let counters: GenCounters = zeroCounters();
let clients: Channel[] = [];
/** Per pooled request, its gRPC length prefix (uncompressed). */
let prefixes: Buffer[] = [];
let running = false;
let timer: NodeJS.Timeout | undefined;
let seq = 0;
let freshTraceIds = false;
let cursor = 0;

let win: GenWindow | undefined;
let winStart = 0n;

function zeroCounters(): GenCounters {
  return {
    sentRequests: 0,
    acceptedRequests: 0,
    refusedRequests: 0,
    failedRequests: 0,
    sentSpans: 0,
    acceptedSpans: 0,
    refusedSpans: 0,
    failedSpans: 0,
    inflight: 0,
    maxBacklog: 0,
    lastError: '',
  };
}

function send(onDone: (ok: boolean) => void): void {
  const p = pool as Pool;
  const idx = cursor;
  cursor = (cursor + 1) % p.requests.length;
  const req = p.requests[idx];
  if (req === undefined) throw new Error('empty pool');
  const client = clients[seq % clients.length] as Channel;
  seq++;
  if (freshTraceIds) for (const off of req.traceIds) req.bytes.writeUInt32BE(seq >>> 0, off + 12);
  const sentAt = process.hrtime.bigint();
  // Metrics and logs requests carry no marker (offsets -1).
  if (req.traceIdOffset >= 0) {
    req.bytes.writeBigUInt64LE(BigInt(seq), req.traceIdOffset);
    req.bytes.writeBigUInt64LE(sentAt, req.spanIdOffset);
  }
  const spans = req.spans;
  counters.sentRequests++;
  counters.sentSpans += spans;
  counters.inflight++;
  const w = win;
  if (w !== undefined) w.sentSpans += spans;
  client.call(exportPath, prefixes[idx] as Buffer, req.bytes, 30_000, (r) => {
    counters.inflight--;
    const cw = win;
    if (r.code === GrpcStatus.OK) {
      counters.acceptedRequests++;
      counters.acceptedSpans += spans;
      acceptedPerPool[idx] = (acceptedPerPool[idx] ?? 0) + 1;
      if (cw !== undefined) {
        cw.acceptedSpans += spans;
        cw.ackLatenciesMs.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
      }
      onDone(true);
      return;
    }
    counters.lastError = `${r.code} ${r.details}`;
    if (r.code === GrpcStatus.UNAVAILABLE || r.code === GrpcStatus.RESOURCE_EXHAUSTED) {
      counters.refusedRequests++;
      counters.refusedSpans += spans;
      if (cw !== undefined) cw.refusedSpans += spans;
    } else {
      counters.failedRequests++;
      counters.failedSpans += spans;
      if (cw !== undefined) cw.failedSpans += spans;
    }
    onDone(false);
  });
}

function start(a: StartArgs): void {
  if (pool === undefined) throw new Error('build the pool first');
  if (running) throw new Error('already running');
  if (pool.requests.length < 2 * a.concurrency) throw new Error('pool must hold at least 2× the outstanding calls');
  clients = Array.from({ length: a.channels }, () => new Channel(a.target));
  prefixes = pool.requests.map((r) => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(r.bytes.length, 1);
    return prefix;
  });
  running = true;
  freshTraceIds = a.freshTraceIds === true;
  if (a.mode === 'saturate') {
    const loop = (): void => {
      if (!running) return;
      send((ok) => {
        if (!running) return;
        if (ok) setImmediate(loop);
        else setTimeout(loop, 10);
      });
    };
    for (let i = 0; i < a.concurrency; i++) loop();
    return;
  }
  const perNs = (a.spansPerSec ?? 10_000) / pool.spansPerRequest / 1e9;
  const t0 = process.hrtime.bigint();
  let issued = 0;
  timer = setInterval(() => {
    const due = Math.floor(Number(process.hrtime.bigint() - t0) * perNs) - issued;
    if (due > counters.maxBacklog) counters.maxBacklog = due;
    for (let i = 0; i < due && counters.inflight < a.concurrency; i++) {
      issued++;
      send(() => undefined);
    }
  }, 1);
}

async function stop(): Promise<GenCounters> {
  running = false;
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
  const deadline = Date.now() + 35_000;
  while (counters.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  for (const c of clients) c.close();
  clients = [];
  return counters;
}

function exact(): ExactRoute[] {
  const p = pool as Pool;
  const out: ExactRoute[] = [];
  routeSamples.forEach((samples, ri) => {
    let total = 0;
    for (const [, pi] of samples) total += acceptedPerPool[pi] ?? 0;
    if (total === 0) return;
    const qs = [0.5, 0.9, 0.95, 0.99];
    const ranks = qs.map((q) => Math.max(1, Math.ceil(q * total)));
    const values: number[] = [];
    let cum = 0;
    let k = 0;
    for (const [d, pi] of samples) {
      cum += acceptedPerPool[pi] ?? 0;
      while (k < ranks.length && cum >= (ranks[k] as number)) {
        values.push(d / 1e6);
        k++;
      }
      if (k === ranks.length) break;
    }
    out.push({
      route: p.routes[ri] ?? '?',
      count: total,
      p50_ms: values[0] ?? NaN,
      p90_ms: values[1] ?? NaN,
      p95_ms: values[2] ?? NaN,
      p99_ms: values[3] ?? NaN,
    });
  });
  return out;
}

serveIpc(async (cmd, args) => {
  switch (cmd) {
    case 'build': {
      const { poolSize, seed, spansPerRequest, signal } = args as { poolSize: number; seed: number; spansPerRequest: number; signal?: AppSignal };
      if (running) throw new Error('stop before switching the request pool');
      const key = `${signal ?? 'traces'} ${spansPerRequest} ${poolSize}`;
      pool = pools.get(key) ?? (signal === undefined ? buildPool(poolSize, seed, spansPerRequest) : buildSignalPool(signal, poolSize, spansPerRequest));
      pools.set(key, pool);
      exportPath = signal === 'metrics' ? METRICS_EXPORT_PATH : signal === 'logs' ? LOGS_EXPORT_PATH : TRACE_EXPORT_PATH;
      routeSamples = pool.routes.map(() => []);
      pool.requests.forEach((r, pi) => {
        for (const s of r.samples) routeSamples[s.route]?.push([s.durationNs, pi]);
      });
      for (const rs of routeSamples) rs.sort((a, b) => a[0] - b[0]);
      acceptedPerPool = new Uint32Array(pool.requests.length);
      const requestBytes = pool.requests.reduce((a, r) => a + r.bytes.length, 0) / pool.requests.length;
      return { routes: pool.routes.length, spanBytes: pool.spanBytes, attributesPerSpan: pool.attributesPerSpan, requestBytes };
    }
    case 'start':
      start(args as StartArgs);
      return true;
    case 'stop':
      return stop();
    case 'windowStart':
      win = { sentSpans: 0, acceptedSpans: 0, refusedSpans: 0, failedSpans: 0, ackLatenciesMs: [], elapsedS: 0 };
      winStart = process.hrtime.bigint();
      return true;
    case 'windowEnd': {
      const w = win;
      win = undefined;
      if (w === undefined) throw new Error('no window open');
      w.elapsedS = Number(process.hrtime.bigint() - winStart) / 1e9;
      return w;
    }
    case 'stats':
      return counters;
    case 'reset':
      counters = zeroCounters();
      acceptedPerPool.fill(0);
      cursor = 0;
      return true;
    case 'exact':
      return exact();
    default:
      throw new Error(`unknown command ${cmd}`);
  }
});
