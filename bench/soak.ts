/**
 * Soak: an in-process routelens (otlp receiver → otlp exporter) forwarding to a recording OtlpSink that
 * flaps (stopped and restarted on the same ports every few seconds), fed at a steady rate with spans whose
 * ids carry a sequence number. Every ~10 s it prints sent / acknowledged / received (unique) / lost /
 * duplicates / RSS; at the end it waits for the queue to drain and prints a summary.
 *
 *   node dist/bench/soak.js --minutes 30 [--rate 1000] [--up 4] [--down 2]
 *
 * Exit code 0 only if nothing acknowledged was lost. A span counts as sent once routelens acknowledged
 * its request (OK); refused requests (queue full while the sink is down) are retried by the generator
 * with the same ids, as an OTLP SDK would. Duplicates are possible and allowed: when the sink records a
 * request and is then force-stopped before its answer reaches routelens, the exporter retries the
 * request (at-least-once delivery).
 */
import { randomBytes } from 'node:crypto';
import { TYPES, protoType } from '../src/pdata/proto';
import { OtlpSink } from '../test/support/otlp-sink';
import { startRoutelens } from '../test/support/routelens';
import { RawGrpcClient } from '../test/support/raw-clients';

export interface SoakOptions {
  durationMs: number;
  /** Spans per second. */
  rate: number;
  /** Sink up / down phases. */
  upMs: number;
  downMs: number;
  reportEveryMs: number;
  /** After sending stops (sink kept up), how long to wait for every acknowledged span. */
  drainTimeoutMs: number;
  log: (line: string) => void;
}

export interface SoakResult {
  /** Spans acknowledged by routelens. */
  sent: number;
  /** Unique acknowledged spans at the sink. */
  received: number;
  lost: number;
  duplicates: number;
  /** Requests refused by routelens and retried by the generator. */
  refusals: number;
  flaps: number;
  maxRssMiB: number;
  /** A few sequence numbers of lost spans, for debugging. */
  lostSample: number[];
}

const BATCH = 50;
const MAX_IN_FLIGHT = 8;

/** Counts per sequence number (saturating at 255), growing as needed. */
class SeqCounts {
  #a = new Uint8Array(1 << 16);
  inc(seq: number): number {
    if (seq >= this.#a.length) {
      const b = new Uint8Array(Math.max(this.#a.length * 2, seq + 1));
      b.set(this.#a);
      this.#a = b;
    }
    const v = this.#a[seq] as number;
    if (v < 255) this.#a[seq] = v + 1;
    return v + 1;
  }
  get(seq: number): number {
    return seq < this.#a.length ? (this.#a[seq] as number) : 0;
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const runTag = randomBytes(4);
  const T = protoType(TYPES.exportTraceRequest);
  const sink = await new OtlpSink().start();
  const rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    timeout: 5s
    retry_on_failure: { initial_interval: 100ms, max_interval: 1s }
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
`);
  const client = new RawGrpcClient(rl.grpcPort());
  const acked = new SeqCounts();
  const got = new SeqCounts();
  let sent = 0;
  let nextSeq = 0;
  let received = 0;
  let duplicates = 0;
  let refusals = 0;
  let flaps = 0;
  let maxRss = 0;
  let sinkUp = true;

  /** Decode and forget what the sink recorded (keeps memory flat over long runs). */
  const collect = (): void => {
    for (const r of sink.requests.splice(0)) {
      if (r.path !== '/v1/traces') continue;
      const msg = T.decode(r.body) as unknown as { resourceSpans: { scopeSpans: { spans: { spanId: Uint8Array }[] }[] }[] };
      for (const rs of msg.resourceSpans) {
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            const id = Buffer.from(s.spanId);
            if (id.length !== 8 || !id.subarray(0, 4).equals(runTag)) continue;
            const n = got.inc(id.readUInt32BE(4));
            if (n === 1) received++;
            else duplicates++;
          }
        }
      }
    }
  };

  const buildBatch = (first: number, n: number): Uint8Array => {
    const traceId = randomBytes(16);
    const start = BigInt(Date.now()) * 1_000_000n;
    const spans = [];
    for (let i = 0; i < n; i++) {
      const id = Buffer.alloc(8);
      runTag.copy(id, 0);
      id.writeUInt32BE(first + i, 4);
      spans.push({
        traceId,
        spanId: id,
        name: 'GET /soak/{id}',
        kind: 2,
        startTimeUnixNano: String(start),
        endTimeUnixNano: String(start + 2_000_000n),
        attributes: [{ key: 'http.route', value: { stringValue: '/soak/{id}' } }],
      });
    }
    return T.encode(
      T.fromObject({
        resourceSpans: [
          { resource: { attributes: [{ key: 'service.name', value: { stringValue: 'soak' } }] }, scopeSpans: [{ scope: { name: 'soak' }, spans }] },
        ],
      }),
    ).finish();
  };

  /** Send one batch until routelens acknowledges it. */
  const sendBatch = async (first: number, n: number): Promise<void> => {
    const body = buildBatch(first, n);
    for (;;) {
      const r = await client.export(body);
      if (r.code === 0) break;
      refusals++;
      await new Promise((res) => setTimeout(res, 200));
    }
    for (let i = 0; i < n; i++) acked.inc(first + i);
    sent += n;
  };

  const t0 = Date.now();
  const rss = (): number => {
    const mib = process.memoryUsage.rss() / (1 << 20);
    maxRss = Math.max(maxRss, mib);
    return mib;
  };
  const report = (what: string): void => {
    collect();
    o.log(
      `${what} t=${((Date.now() - t0) / 1000).toFixed(0)}s sent=${sent} received=${received} missing=${sent - received} (queued or lost) duplicates=${duplicates} refusals=${refusals} flaps=${flaps} sink=${sinkUp ? 'up' : 'down'} rss=${rss().toFixed(0)}MiB`,
    );
  };

  let stopping = false;
  // flapping downstream
  const flapper = (async () => {
    while (!stopping) {
      await sleepUnless(o.upMs, () => stopping);
      if (stopping) break;
      await sink.stop();
      sinkUp = false;
      flaps++;
      await sleepUnless(o.downMs, () => false);
      await sink.start();
      sinkUp = true;
    }
  })();
  const collector = setInterval(collect, 250);
  const reporter = setInterval(() => report('progress'), o.reportEveryMs);

  // steady-rate generator with bounded concurrency
  const inFlight = new Set<Promise<void>>();
  while (Date.now() - t0 < o.durationMs) {
    const due = Math.floor(((Date.now() - t0) / 1000) * o.rate);
    if (nextSeq + BATCH <= due && inFlight.size < MAX_IN_FLIGHT) {
      const p = sendBatch(nextSeq, BATCH).finally(() => inFlight.delete(p));
      inFlight.add(p);
      nextSeq += BATCH;
      continue;
    }
    await new Promise((res) => setTimeout(res, 5));
  }
  await Promise.all(inFlight);
  stopping = true;
  await flapper;
  clearInterval(reporter);
  report('sending stopped, draining');

  // drain: the sink stays up until every acknowledged span arrived or the timeout passed
  const deadline = Date.now() + o.drainTimeoutMs;
  while (Date.now() < deadline) {
    collect();
    if (received >= sent) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  collect();
  clearInterval(collector);
  const lostSample: number[] = [];
  let lost = 0;
  for (let seq = 0; seq < nextSeq; seq++) {
    if (acked.get(seq) > 0 && got.get(seq) === 0) {
      lost++;
      if (lostSample.length < 10) lostSample.push(seq);
    }
  }
  client.close();
  await rl.stop();
  await sink.stop();
  const result: SoakResult = { sent, received, lost, duplicates, refusals, flaps, maxRssMiB: Math.round(maxRss), lostSample };
  o.log(`summary ${JSON.stringify(result)}`);
  return result;
}

async function sleepUnless(ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && !stop()) await new Promise((res) => setTimeout(res, Math.min(100, end - Date.now())));
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

if (require.main === module) {
  const minutes = arg('minutes', 30);
  runSoak({
    durationMs: minutes * 60_000,
    rate: arg('rate', 1000),
    upMs: arg('up', 4) * 1000,
    downMs: arg('down', 2) * 1000,
    reportEveryMs: 10_000,
    drainTimeoutMs: 120_000,
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  }).then(
    (r) => process.exit(r.lost === 0 ? 0 : 1),
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
