/**
 * What a metrics or logs request costs routelens's JavaScript apart from HTTP/2, without sockets: for the pooled
 * requests of the `metrics*` and `logs*` scenarios (bench/signals-workload.ts), CPU per data point and per log
 * record of each step the pipeline takes on a request, measured on its own (the steps before it are run and
 * subtracted):
 *
 * - decode: validate and index the request (MetricsBatch.decode / LogsBatch.decode), as the receiver does;
 * - enrich: k8sattributes as the side-by-side run configures it (association by k8s.pod.ip, the Collector's
 *   default metadata), fed the workload's pods directly (kube-objects.ts);
 * - encodeParts: the parts the exporter writes (the enriched resource re-encoded, the rest sliced);
 * - runtime view (metrics only): `RuntimeView.offer` and the decode of the copy, as a routelatency exporter on the
 *   metrics pipeline does.
 *
 * The medians over `--rounds` rounds are printed (the spread is a few % on a quiet machine).
 *
 *   npm run bench:signals-hot-path [-- --rounds 7 --requests 20000]
 */
import type { K8sAttributesProcessor } from '../src/processors/k8sattributes/processor';
import { LogsBatch } from '../src/pdata/logs-batch';
import { MetricsBatch } from '../src/pdata/metrics-batch';
import type { OtlpBatch } from '../src/pdata/otlp-batch';
import { RuntimeView } from '../src/runtimeview/view';
import { workloadEnrichment } from './kube-objects';
import { buildSignalPool, type AppSignal } from './signals-workload';
import { METRIC_POINTS_PER_REQUEST, LOG_RECORDS_PER_REQUEST } from './scenarios';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

function processor(): K8sAttributesProcessor {
  return workloadEnrichment();
}

const STEPS = ['decode', 'enrich', 'encodeParts'] as const;
type Step = (typeof STEPS)[number];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function measure(signal: AppSignal, rounds: number, requests: number): Promise<void> {
  const itemsPerRequest = signal === 'metrics' ? METRIC_POINTS_PER_REQUEST : LOG_RECORDS_PER_REQUEST;
  const pool = buildSignalPool(signal, 64, itemsPerRequest);
  const k8s = processor();
  const ctx = { clientAddress: '127.0.0.1' };
  const decode = (bytes: Uint8Array): OtlpBatch => (signal === 'metrics' ? MetricsBatch.decode(bytes) : LogsBatch.decode(bytes));
  const steps: Step[] = [...STEPS];
  let items = 0;
  let sink = 0;
  /** CPU µs of `n` requests running the steps up to and including `upTo`. */
  const run = async (n: number, upTo: number): Promise<number> => {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const req = pool.requests[i % pool.requests.length];
      if (req === undefined) throw new Error('empty request pool');
      const batch = decode(req.bytes);
      items += batch.itemCount;
      if (upTo >= 1) k8s.enrich(batch, ctx);
      if (upTo >= 2) for (const p of batch.encodeParts()) sink += p.length;
    }
    const cpu = process.cpuUsage(cpu0);
    return cpu.user + cpu.system;
  };
  const probe = decode((pool.requests[0] as { bytes: Uint8Array }).bytes);
  k8s.enrich(probe, ctx);
  if (probe.resourceAttribute(0, 'k8s.deployment.name') === undefined) throw new Error('enrichment found no pod: the workload and its pods disagree');
  for (let s = 0; s < steps.length; s++) await run(requests / 2, s); // warm-up: JIT
  const cumulative: number[][] = steps.map(() => []);
  for (let r = 0; r < rounds; r++) for (let s = 0; s < steps.length; s++) (cumulative[s] as number[]).push(await run(requests, s));
  const perItem = (us: number): number => (us * 1000) / (requests * itemsPerRequest);
  const unit = signal === 'metrics' ? 'data point' : 'log record';
  console.log(`${signal}: ${itemsPerRequest} ${unit}s per request, ${rounds} rounds of ${requests} requests; median ns CPU per ${unit} (µs per request)`);
  let prev = 0;
  for (let s = 0; s < steps.length; s++) {
    const total = median(cumulative[s] as number[]);
    const own = total - prev;
    console.log(
      `  ${(steps[s] as string).padEnd(14)} ${perItem(own).toFixed(0).padStart(5)} ns  (${(own / requests).toFixed(1)} µs)   cumulative ${perItem(total).toFixed(0)} ns`,
    );
    prev = total;
  }
  if (sink === 0 || items === 0) throw new Error('nothing measured');
  if (signal === 'metrics') await runtimeView(pool, rounds);
}

/** Offsets of the `start_time_unix_nano` / `time_unix_nano` (fixed64, fields 2 and 3) values within a day of `nowNs`. */
function timeOffsets(bytes: Uint8Array, nowNs: bigint): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  const day = 86_400_000_000_000n;
  for (let i = 0; i + 9 <= bytes.length; i++) {
    if (bytes[i] !== 0x11 && bytes[i] !== 0x19) continue;
    const v = dv.getBigUint64(i + 1, true);
    if (v > nowNs - day && v < nowNs + day) {
      out.push(i + 1);
      i += 8;
    }
  }
  return out;
}

/**
 * The runtime view as a routelatency exporter on the metrics pipeline runs it (offer, then the decode of the copy
 * on its own schedule), per data point of the request. Each pooled request is one instance; the view is fed
 * `exports` successive exports of every instance, `intervalS` apart (their times moved forward), in a fresh view
 * each round, as a stream of Python exports arrives.
 */
async function runtimeView(pool: ReturnType<typeof buildSignalPool>, rounds: number): Promise<void> {
  const exports = 30;
  const intervalNs = 60_000_000_000n;
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const requests: Uint8Array[] = [];
  for (let e = 0; e < exports; e++) {
    for (const r of pool.requests) {
      const copy = Uint8Array.prototype.slice.call(r.bytes) as Uint8Array;
      const dv = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
      for (const at of timeOffsets(r.bytes, nowNs)) dv.setBigUint64(at, dv.getBigUint64(at, true) + BigInt(e) * intervalNs, true);
      requests.push(copy);
    }
  }
  const points = requests.length * METRIC_POINTS_PER_REQUEST;
  const run = async (): Promise<{ us: number; view: RuntimeView }> => {
    const view = new RuntimeView({ windowsMs: [300_000, 3_600_000] });
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < requests.length; i++) {
      view.offer(requests[i] as Uint8Array);
      if (i % 64 === 63) await view.drained();
    }
    await view.drained();
    const cpu = process.cpuUsage(cpu0);
    return { us: cpu.user + cpu.system, view };
  };
  for (let r = 0; r < 3; r++) await run(); // warm-up: JIT
  const us: number[] = [];
  let last: RuntimeView | undefined;
  for (let r = 0; r < rounds; r++) {
    const x = await run();
    us.push(x.us);
    last = x.view;
  }
  const m = median(us);
  const st = (last as RuntimeView).stats;
  console.log(
    `  runtime view   ${((m * 1000) / points).toFixed(0).padStart(5)} ns  (${(m / requests.length).toFixed(1)} µs)   offer + decode of the copy; ` +
      `${requests.length} exports of ${pool.requests.length} instances per round, ${st.points} points recorded, ${st.dropped} dropped`,
  );
}

async function main(): Promise<void> {
  const rounds = option('rounds', 7);
  const requests = option('requests', 20000);
  if (process.argv.includes('--runtime-view-only')) {
    await runtimeView(buildSignalPool('metrics', 64, METRIC_POINTS_PER_REQUEST), rounds);
    return;
  }
  await measure('metrics', rounds, requests);
  await measure('logs', rounds, requests);
}

void main();
