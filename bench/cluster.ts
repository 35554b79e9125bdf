/**
 * `npm run bench:cluster [-- options]`: the cluster's two costs, with figures to compare.
 *
 * 1. **A cluster-wide query**: 5 routelens replicas (one process each) holding 1,000 routes each (the same routes,
 *    spans spread over the replicas); `GET /api/v1/routes?scope=cluster` on one of them, sequentially: latency
 *    (p50, p99) and the bytes moved per query (the peers' compressed answers; also their JSON size), against the
 *    same query with `scope=local`.
 * 2. **The loadbalancing exporter's CPU per span** against the Collector's `loadbalancing` exporter: an agent
 *    (otlp receiver → loadbalancing, routing_key traceID, a static list of 3 backends) fed by the benchmark's
 *    load generator at a fixed rate, the backends the benchmark's counting sinks. CPU seconds of the agent process
 *    over the window per million spans the sinks received. Alternating routelens / otelcol, `--reps` each.
 *
 *   --quick                  fewer queries and shorter windows (≈ 2 min)
 *   --only query|lb          one of the two
 *   --rate N                 spans/s offered to the agent (default 10000)
 *   --reps N --warmup S --measure S
 *   --queries N              cluster queries measured (default 200, --quick 50)
 *   --batch both|routelens   \`sending_queue.batch: {}\` (the Collector's defaults: 200ms, 8192 spans) on both agents'
 *                            backend sends, or on routelens's alone
 *   --no-pin                 do not pin the agent to CPU 1 (the harness otherwise runs on CPU 0)
 *   --profile DIR            run the routelens agent under `node --cpu-prof` into DIR (its figures then include the profiler)
 *
 * Not part of `npm test`; results in bench/results/<commit>-cluster[-query|-lb][-rate<N>k][-quick]-<date>.json. On a shared machine treat the figures as indicative.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../test/support/free-port';
import { IpcClient } from './ipc';
import { shebangNodeFlags } from './proc';
import type { StartArgs } from './loadgen';
import type { SinkStats } from './sink';
import { SPANS_PER_REQUEST } from './workload';

const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');
const CLK_TCK = ((): number => {
  const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

interface Options {
  quick: boolean;
  only: 'query' | 'lb' | undefined;
  rate: number;
  reps: number;
  warmupS: number;
  measureS: number;
  queries: number;
  pin: boolean;
  profileDir: string | undefined;
  batch: 'both' | 'routelens' | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const num = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] as 'query' | 'lb') : undefined;
  return {
    quick,
    only,
    rate: num('--rate', 10_000),
    reps: num('--reps', quick ? 2 : 3),
    warmupS: num('--warmup', quick ? 5 : 15),
    measureS: num('--measure', quick ? 10 : 30),
    queries: num('--queries', quick ? 50 : 200),
    profileDir: argv.includes('--profile') ? path.resolve(argv[argv.indexOf('--profile') + 1] as string) : undefined,
    batch: argv.includes('--batch') ? (argv[argv.indexOf('--batch') + 1] as 'both' | 'routelens') : undefined,
    pin: !argv.includes('--no-pin') && os.availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0,
  };
}

const log = (msg: string): void => void process.stderr.write(`[bench:cluster] ${msg}\n`);

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function spawnChild(
  cpu: string | undefined,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; ipc?: boolean; logFile?: string } = {},
): ChildProcess {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', cpu, cmd, ...args]];
  const out = opts.logFile === undefined ? 'ignore' : fs.openSync(opts.logFile, 'a');
  const child = spawn(file, argv, { cwd: ROOT, env: opts.env ?? process.env, stdio: opts.ipc === true ? ['ignore', out, out, 'ipc'] : ['ignore', out, out] });
  if (typeof out === 'number') fs.closeSync(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** User and kernel CPU seconds of a process so far. */
function cpuSeconds(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
}

async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitTcp(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

const routelensBin = path.join(ROOT, 'bin', 'routelens.js');

// ---- 1. cluster query --------------------------------------------------------------------------------------

interface QueryResult {
  replicas: number;
  routesPerReplica: number;
  spansPerReplica: number;
  queries: number;
  cluster: { p50_ms: number; p99_ms: number; peer_bytes_per_query: number; peer_json_bytes_per_query: number; answer_bytes: number };
  local: { p50_ms: number; p99_ms: number };
}

/** An OTLP/HTTP JSON request of `n` server spans over routes `[from, to)`. */
function routeSpans(replica: number, routes: number, spansPerRoute: number, endNs: bigint): string[] {
  const bodies: string[] = [];
  const perRequest = 1000;
  const spans: unknown[] = [];
  let seq = 0;
  for (let r = 0; r < routes; r++) {
    for (let k = 0; k < spansPerRoute; k++) {
      const durNs = BigInt(1_000_000 + ((r * 7919 + k * 104_729 + replica * 31) % 200_000_000));
      const id = (++seq).toString(16).padStart(16, '0');
      spans.push({
        traceId: `${replica.toString(16).padStart(16, '0')}${id}`,
        spanId: id,
        name: `GET /r${r}/{id}`,
        kind: 2,
        startTimeUnixNano: String(endNs - durNs),
        endTimeUnixNano: String(endNs),
        attributes: [
          { key: 'http.route', value: { stringValue: `/r${r}/{id}` } },
          { key: 'http.request.method', value: { stringValue: 'GET' } },
          { key: 'http.response.status_code', value: { intValue: k % 50 === 0 ? '500' : '200' } },
        ],
      });
    }
  }
  for (let i = 0; i < spans.length; i += perRequest) {
    bodies.push(
      JSON.stringify({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc-${i % 5}` } }] },
            scopeSpans: [{ scope: { name: 'bench' }, spans: spans.slice(i, i + perRequest) }],
          },
        ],
      }),
    );
  }
  return bodies;
}

function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function clusterQuery(o: Options, tmp: string): Promise<QueryResult> {
  const replicas = 5;
  const routes = 1000;
  const spansPerRoute = o.quick ? 10 : 40;
  const ports = await freePorts(replicas * 2);
  const queryPorts = ports.slice(0, replicas);
  const peers = queryPorts.map((p) => `127.0.0.1:${p}`);
  const procs: ChildProcess[] = [];
  for (let i = 0; i < replicas; i++) {
    const cfg = path.join(tmp, `replica-${i}.yaml`);
    fs.writeFileSync(
      cfg,
      `receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${ports[replicas + i]} }
connectors:
  routelatency:
    max_routes_per_service: 2000
extensions:
  routequery:
    endpoint: 127.0.0.1:${queryPorts[i]}
    cluster:
      resolver: { static: { hostnames: [${peers.join(', ')}] } }
      timeout: 10s
      handoff: { enabled: false }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
`,
    );
    procs.push(
      spawnChild(undefined, process.execPath, [...shebangNodeFlags(routelensBin), routelensBin, 'run', '--config', cfg, '--workers', '1'], {
        logFile: path.join(tmp, `replica-${i}.log`),
      }),
    );
  }
  try {
    for (const p of queryPorts) await waitHttp(`http://127.0.0.1:${p}/healthz`);
    const endNs = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < replicas; i++) {
      for (const body of routeSpans(i, routes, spansPerRoute, endNs)) {
        const status = await post(`http://127.0.0.1:${ports[replicas + i]}/v1/traces`, body);
        if (status !== 200) throw new Error(`replica ${i} answered ${status}`);
      }
    }
    log(`5 replicas × ${routes} routes × ${spansPerRoute} spans each loaded`);
    // What the four other replicas send for this query, uncompressed: the states request a cluster query makes
    // (a version that does not scope its snapshots to the query ignores the parameters and sends everything).
    const statesQuery = new URLSearchParams({ path: '/api/v1/routes', query: 'window=5m&limit=100', at: String(Date.now()) }).toString();
    let jsonBytes = 0;
    for (const p of queryPorts.slice(1))
      jsonBytes += (
        await (await fetch(`http://127.0.0.1:${p}/internal/v1/states?${statesQuery}`, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer()
      ).byteLength;
    const measure = async (scope: 'cluster' | 'local'): Promise<{ ms: number[]; peerBytes: number[]; answerBytes: number }> => {
      const ms: number[] = [];
      const peerBytes: number[] = [];
      let answerBytes = 0;
      const url = `http://127.0.0.1:${queryPorts[0]}/api/v1/routes?window=5m&limit=100${scope === 'cluster' ? '&scope=cluster' : ''}`;
      for (let q = 0; q < 5; q++) await (await fetch(url)).arrayBuffer(); // warm-up
      for (let q = 0; q < o.queries; q++) {
        const t0 = performance.now();
        const res = await fetch(url);
        const text = await res.text();
        ms.push(performance.now() - t0);
        if (res.status !== 200) throw new Error(`query answered ${res.status}: ${text.slice(0, 200)}`);
        answerBytes = text.length;
        if (scope === 'cluster') {
          const body = JSON.parse(text) as { partial: boolean; peers: { bytes: number; ok: boolean; self: boolean }[]; routes: unknown[] };
          if (body.partial) throw new Error('partial cluster answer');
          // The four other replicas' answers (a version that asks itself over HTTP too counts that as `self`).
          peerBytes.push(body.peers.reduce((n, p) => n + (p.self ? 0 : p.bytes), 0));
        }
      }
      ms.sort((a, b) => a - b);
      return { ms, peerBytes, answerBytes };
    };
    const cluster = await measure('cluster');
    const local = await measure('local');
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return {
      replicas,
      routesPerReplica: routes,
      spansPerReplica: routes * spansPerRoute,
      queries: o.queries,
      cluster: {
        p50_ms: quantile(cluster.ms, 0.5),
        p99_ms: quantile(cluster.ms, 0.99),
        peer_bytes_per_query: Math.round(avg(cluster.peerBytes)),
        peer_json_bytes_per_query: jsonBytes,
        answer_bytes: cluster.answerBytes,
      },
      local: { p50_ms: quantile(local.ms, 0.5), p99_ms: quantile(local.ms, 0.99) },
    };
  } finally {
    await Promise.all(procs.map(stop));
  }
}

// ---- 2. loadbalancing CPU per span -------------------------------------------------------------------------

interface LbRun {
  collector: 'routelens' | 'otelcol';
  cpu_s: number;
  /** The kernel's part of cpu_s (network system calls, mostly). */
  kernel_share: number;
  spans: number;
  cpu_s_per_million_spans: number;
  offered_spans_per_s: number;
  delivered_spans_per_s: number;
}

function buildOtelcol(): string {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'build-otelcol.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('scripts/build-otelcol.sh failed');
  return r.stdout.trim().split('\n').pop() ?? '';
}

function agentConfig(collector: 'routelens' | 'otelcol', grpcPort: number, adminPort: number, sinks: readonly string[], batch: Options['batch']): string {
  const queueBatch = batch === 'both' || (batch === 'routelens' && collector === 'routelens') ? ', batch: {}' : '';
  const lb = `    routing_key: traceID
    resolver:
      static: { hostnames: [${sinks.join(', ')}] }
    protocol:
      otlp:
        tls: { insecure: true }
        compression: none
`;
  if (collector === 'routelens') {
    return `receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${grpcPort} }
exporters:
  loadbalancing:
${lb}    sending_queue: { num_consumers: 32, queue_size: 1000${queueBatch} }
extensions:
  routequery: { endpoint: 127.0.0.1:${adminPort} }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [loadbalancing] }
`;
  }
  return `receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:${grpcPort} }
exporters:
  loadbalancing:
${lb}        sending_queue: { num_consumers: 32, queue_size: 1000${queueBatch} }
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: { receivers: [otlp], exporters: [loadbalancing] }
`;
}

async function loadBalancing(o: Options, tmp: string): Promise<LbRun[]> {
  const otelcolBin = buildOtelcol();
  const harnessCpu = o.pin ? '0' : undefined;
  const agentCpu = o.pin ? '1' : undefined;
  const helper = (script: string): IpcClient => new IpcClient(spawnChild(harnessCpu, process.execPath, [path.join(__dirname, script)], { ipc: true }), script);
  const sinks = [helper('sink.js'), helper('sink.js'), helper('sink.js')];
  const sinkEndpoints = await Promise.all(sinks.map(async (s) => `127.0.0.1:${await s.call<number>('port')}`));
  const gen = helper('loadgen.js');
  await gen.call('build', { poolSize: 64, seed: 42, spansPerRequest: SPANS_PER_REQUEST });
  const runs: LbRun[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    for (const collector of ['routelens', 'otelcol'] as const) {
      const [grpcPort, adminPort] = (await freePorts(2)) as [number, number];
      const cfg = path.join(tmp, `agent-${collector}.yaml`);
      fs.writeFileSync(cfg, agentConfig(collector, grpcPort, adminPort, sinkEndpoints, o.batch));
      const logFile = path.join(tmp, `agent-${collector}-${rep}.log`);
      const child =
        collector === 'routelens'
          ? spawnChild(
              agentCpu,
              process.execPath,
              [
                ...shebangNodeFlags(routelensBin),
                ...(o.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`]),
                routelensBin,
                'run',
                '--config',
                cfg,
                '--workers',
                '1',
              ],
              { logFile },
            )
          : spawnChild(agentCpu, otelcolBin, ['--config', cfg], { logFile, env: { ...process.env, GOMAXPROCS: '1' } });
      try {
        if (collector === 'routelens') await waitHttp(`http://127.0.0.1:${adminPort}/healthz`);
        else await waitTcp(grpcPort);
        await Promise.all(sinks.map((s) => s.call('reset')));
        await gen.call('reset');
        await gen.call('start', {
          target: `127.0.0.1:${grpcPort}`,
          mode: 'rate',
          spansPerSec: o.rate,
          concurrency: 16,
          channels: 4,
        } satisfies StartArgs);
        await new Promise((r) => setTimeout(r, o.warmupS * 1000));
        const spans0 = (await Promise.all(sinks.map((s) => s.call<SinkStats>('stats')))).reduce((n, s) => n + s.spans, 0);
        const cpu0 = cpuSeconds(child.pid as number);
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, o.measureS * 1000));
        const cpu1 = cpuSeconds(child.pid as number);
        const elapsed = (performance.now() - t0) / 1000;
        const spans1 = (await Promise.all(sinks.map((s) => s.call<SinkStats>('stats')))).reduce((n, s) => n + s.spans, 0);
        await gen.call('stop');
        const spans = spans1 - spans0;
        const cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
        const run: LbRun = {
          collector,
          cpu_s: cpu,
          kernel_share: (cpu1.system - cpu0.system) / cpu,
          spans,
          cpu_s_per_million_spans: (cpu / spans) * 1e6,
          offered_spans_per_s: o.rate,
          delivered_spans_per_s: spans / elapsed,
        };
        runs.push(run);
        log(
          `${collector} rep ${rep + 1}: ${run.cpu_s_per_million_spans.toFixed(2)} CPU s per million spans (kernel ${(100 * run.kernel_share).toFixed(0)} %), ${Math.round(run.delivered_spans_per_s)} spans/s delivered`,
        );
      } finally {
        await gen.call('stop').catch(() => undefined);
        await stop(child);
      }
    }
  }
  return runs;
}

/** The checked-out commit (short), `-dirty` when the code (src/, bench/*.ts) has changes. */
function commitOf(): string {
  const head = spawnSync('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  const dirty = spawnSync('git', ['diff', '--quiet', 'HEAD', '--', 'src', 'bench/*.ts'], { cwd: ROOT }).status === 1;
  return dirty ? `${head}-dirty` : head;
}

/**
 * `<commit>-cluster[-query|-lb][-rate<N>k][-quick]-<date>.json` (the rate when the loadbalancing part ran), as the
 * other results here are named by the code they measured.
 */
function resultsName(o: Options): string {
  const rate = o.only === 'query' ? '' : `-rate${Math.round(o.rate / 1000)}k`;
  const batch = o.only === 'query' || o.batch === undefined ? '' : `-batch-${o.batch}`;
  return `${commitOf()}-cluster${o.only === undefined ? '' : `-${o.only}`}${rate}${batch}${o.quick ? '-quick' : ''}-${new Date().toISOString().slice(0, 10)}.json`;
}

// ---- main --------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-bench-cluster-'));
  const loadavg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const result: Record<string, unknown> = { date: new Date().toISOString(), load_average_start: loadavg(), options: o };
  try {
    if (o.only !== 'lb') {
      const q = await clusterQuery(o, tmp);
      result['query'] = q;
      process.stdout.write(
        `\ncluster query: ${q.replicas} replicas × ${q.routesPerReplica} routes (${q.spansPerReplica} spans each), ${q.queries} queries of the top 100 routes over 5m\n` +
          `| scope | p50 | p99 | bytes from the 4 peers per query (gzip) | their JSON | answer |\n|---|---|---|---|---|---|\n` +
          `| cluster | ${q.cluster.p50_ms.toFixed(1)} ms | ${q.cluster.p99_ms.toFixed(1)} ms | ${(q.cluster.peer_bytes_per_query / 1024).toFixed(0)} KiB | ${(q.cluster.peer_json_bytes_per_query / 1024).toFixed(0)} KiB | ${(q.cluster.answer_bytes / 1024).toFixed(0)} KiB |\n` +
          `| local | ${q.local.p50_ms.toFixed(1)} ms | ${q.local.p99_ms.toFixed(1)} ms | – | – | – |\n`,
      );
    }
    if (o.only !== 'query') {
      const runs = await loadBalancing(o, tmp);
      result['loadbalancing'] = runs;
      const med = (c: 'routelens' | 'otelcol'): number => {
        const xs = runs
          .filter((r) => r.collector === c)
          .map((r) => r.cpu_s_per_million_spans)
          .sort((a, b) => a - b);
        return xs[Math.floor(xs.length / 2)] as number;
      };
      const rl = med('routelens');
      const oc = med('otelcol');
      result['loadbalancing_ratio'] = rl / oc;
      process.stdout.write(
        `\nloadbalancing exporter at ${o.rate} spans/s offered, 3 backends, ${o.reps} reps (median):\n` +
          `| | CPU s per million spans |\n|---|---|\n| routelens | ${rl.toFixed(2)} |\n| otelcol | ${oc.toFixed(2)} |\n| ratio | ${(rl / oc).toFixed(2)}× |\n`,
      );
    }
    result['load_average_end'] = loadavg();
    fs.mkdirSync(RESULTS, { recursive: true });
    const file = path.join(RESULTS, resultsName(o));
    result['commit'] = commitOf();
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      `\nload average ${String(result['load_average_start'])} → ${String(result['load_average_end'])}; results in ${path.relative(ROOT, file)}\n`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
