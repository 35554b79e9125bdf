/**
 * `npm run bench [-- options]`: routelens vs the OpenTelemetry Collector on the same workload, same fake
 * Kubernetes API server, same counting sink, alternating A/B/A/B per scenario. See bench/README.md.
 *
 *   --quick                     short run (≤ 3 min): both collectors, both rates, saturation, 2 reps
 *   --reps N --warmup S --measure S   override the run lengths (warm-up: at least S seconds…)
 *   --warmup-requests N         …and until the collector has accepted N requests (default 1200, --quick 0):
 *                               V8 optimises per call, so at 20 requests/s the first minute is still compiling
 *   --harness-node-args "…"     node flags for the generator and sink (default --no-memory-reducer)
 *   --harness-warmup S          generator → sink at saturation before the first scenario (default 3 s, --quick 1)
 *   --scenarios a,b             subset of rate10k, rate50k, saturation, or any scenario of the shape matrix by name
 *                               (<lg|tg><spans>-<1k|10k|50k|sat>-<full|bare>, e.g. tg100-10k-bare; bench/scenarios.ts),
 *                               metrics10k, logs10k, …, or rate10k-beside / rate50k-beside (traces with a Python
 *                               fleet's metrics and logs beside them)
 *   --matrix                    the shape matrix instead of the standard scenarios: 10-, 100-, 512- and 8192-span
 *                               requests at 1k/10k/50k spans/s (and saturation), bare and full pipelines, from
 *                               loadgen and telemetrygen; warm-up ≥ 10 s and 1200 requests, ≤ 30 s; 20 s windows
 *   --sources / --shapes / --rates / --pipelines a,b   narrow the matrix (loadgen,telemetrygen / 10,100,512,8192 /
 *                               1k,10k,50k,sat / bare,full)
 *   --warmup-max S              the warm-up ends after S seconds even short of --warmup-requests (default: --warmup
 *                               + 180; --matrix 30)
 *   --first-window S            report CPU per span over the first S seconds of load, against the window (default 10)
 *   --list                      print the scenarios the other options select and the run's estimated length, and exit
 *   --only routelens|otelcol    one collector (no ratios)
 *   --routelens-pipeline NAME   full | k8s | passthrough | auto (default: configs.ts ROUTELENS_PIPELINE)
 *   --profile                   one routelens saturation run (or the one --scenarios names) under `node --cpu-prof`;
 *                               prints the top self-time functions, writes bench/results/routelens-*.cpuprofile
 *   --no-pin                    do not use taskset
 *   --no-md                     do not rewrite the results section of BENCHMARKS.md
 *   --no-baseline               skip the generator → sink run without a collector (harness ceiling)
 *   --sat-streams CxN           saturation load shape: C channels (TCP connections), N calls outstanding
 *   --routelens-node-args "…"   extra node flags for the routelens process, e.g. "--max-semi-space-size=64"
 *   --keep-tmp                  keep the temporary directory (configs, collector logs) and print its path
 *   --cores N                   N cores per collector, unpinned (routelens --workers N, otelcol GOMAXPROCS=N);
 *                               CPU and RSS are summed over routelens's worker processes
 *   --summarise-profile FILE    print the self-time summary of a .cpuprofile and exit
 *   --render-md FILE.json       rewrite the results section of BENCHMARKS.md from a results file and exit
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeKubeApi } from '../test/support/fake-kube-api';
import { workloadKubeObjects } from './kube-objects';
import { freePorts } from '../test/support/free-port';
import {
  OTELCOL_PIPELINE_DESCRIPTIONS,
  otelcolEnv,
  otelcolSignalYaml,
  otelcolYaml,
  routelensSignalYaml,
  SIGNAL_PIPELINE_DESCRIPTION,
  ROUTELENS_PIPELINE,
  ROUTELENS_PIPELINES,
  withAppSignalPipelines,
  ROUTELENS_WHY_PIPELINE,
  type CollectorEnv,
  type PipelineShape,
  type RoutelensPipeline,
} from './configs';
import { IpcClient } from './ipc';
import type { ExactRoute, GenCounters, GenWindow, StartArgs } from './loadgen';
import type { SinkStats, WindowResult } from './sink';
import type { AppSignal } from './signals-workload';
import {
  MATRIX_DEFAULT,
  matrixScenarios,
  scenarioByName,
  STANDARD_SCENARIOS,
  telemetrygenPlan,
  type BesideLoad,
  type MatrixFilter,
  type Scenario,
  type Source,
} from './scenarios';
import { acceptedSpansOf, buildTelemetrygen, startTelemetrygen, stopTelemetrygen } from './telemetrygen';
import { PODS, SERVICES, SPANS_PER_REQUEST } from './workload';
import { cpuBusySeconds, cpuSeconds, shebangNodeFlags, tcpReady } from './proc';

const ROOT = path.resolve(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');
type CollectorName = 'routelens' | 'otelcol';
type ScenarioName = string;

/** A scenario's row label in the tables. */
function labelOf(name: ScenarioName): string {
  try {
    return scenarioByName(name).label;
  } catch {
    return name;
  }
}

interface Options {
  quick: boolean;
  reps: number;
  warmupS: number;
  /** The warm-up also lasts until the collector has accepted this many requests (JIT tier-up is per call). */
  warmupRequests: number;
  measureS: number;
  scenarios: ScenarioName[];
  /** Run the shape matrix (narrowed by `filter`) instead of `scenarios`. */
  matrix: boolean;
  filter: MatrixFilter;
  /** The warm-up ends after this many seconds of load even short of warmupRequests. */
  warmupMaxS: number;
  /** CPU per span over the first seconds of load, reported against the window's. */
  firstWindowS: number;
  /** Saturation load shape (channels × outstanding calls), when not the default. */
  satStreams: { channels: number; concurrency: number } | undefined;
  list: boolean;
  only: CollectorName | undefined;
  pipeline: string;
  profile: boolean;
  pin: boolean;
  writeMd: boolean;
  poolSize: number;
  baseline: boolean;
  routelensNodeArgs: string[];
  /** Node flags for the load generator and the sink (the harness), the same for both collectors. */
  harnessNodeArgs: string[];
  /** Seconds of generator → sink at saturation before the first scenario, so the harness's own JIT work is done. */
  harnessWarmupS: number;
  keepTmp: boolean;
  /** Cores each collector may use: 1 (pinned, the default) or more (unpinned; routelens --workers N, GOMAXPROCS=N). */
  cores: number;
}

function listOf<T extends string>(v: string, known: readonly T[], flag: string): T[] {
  const out = v.split(',') as T[];
  for (const x of out) if (!known.includes(x)) throw new Error(`${flag}: unknown ${x}; known: ${known.join(', ')}`);
  return out;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    reps: 3,
    warmupS: 5,
    warmupRequests: 1200,
    measureS: 30,
    scenarios: [...STANDARD_SCENARIOS],
    matrix: false,
    filter: { ...MATRIX_DEFAULT },
    warmupMaxS: NaN,
    firstWindowS: 10,
    satStreams: undefined,
    list: false,
    only: undefined,
    pipeline: ROUTELENS_PIPELINE,
    profile: false,
    pin: true,
    writeMd: true,
    poolSize: 256,
    baseline: true,
    routelensNodeArgs: [],
    harnessNodeArgs: ['--no-memory-reducer'],
    harnessWarmupS: 3,
    keepTmp: false,
    cores: 1,
  };
  const explicit = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        o.quick = true;
        break;
      case '--reps':
        o.reps = Number(val());
        explicit.add('reps');
        break;
      case '--warmup':
        o.warmupS = Number(val());
        explicit.add('warmup');
        break;
      case '--warmup-requests':
        o.warmupRequests = Number(val());
        explicit.add('warmup-requests');
        break;
      case '--measure':
        o.measureS = Number(val());
        explicit.add('measure');
        break;
      case '--scenarios':
        explicit.add('scenarios');
        o.scenarios = val().split(',');
        for (const s of o.scenarios) scenarioByName(s); // throws on an unknown name
        break;
      case '--matrix':
        o.matrix = true;
        break;
      case '--list':
        o.list = true;
        break;
      case '--sources':
        o.filter.sources = listOf(val(), ['loadgen', 'telemetrygen'] as const, a);
        break;
      case '--shapes':
        o.filter.shapes = val()
          .split(',')
          .map((x) => {
            const n = Number(x);
            if (!Number.isInteger(n) || n < 1 || n > 8192) throw new Error(`${a}: ${x} is not a number of spans per request (1–8192)`);
            return n;
          });
        break;
      case '--rates':
        o.filter.rates = listOf(val(), ['1k', '10k', '50k', 'sat'] as const, a);
        break;
      case '--pipelines':
        o.filter.pipelines = listOf(val(), ['bare', 'full'] as const, a);
        break;
      case '--warmup-max':
        o.warmupMaxS = Number(val());
        break;
      case '--first-window':
        o.firstWindowS = Number(val());
        explicit.add('first-window');
        break;
      case '--only': {
        const v = val();
        if (v !== 'routelens' && v !== 'otelcol') throw new Error('--only expects routelens or otelcol');
        o.only = v;
        break;
      }
      case '--routelens-pipeline':
        o.pipeline = val();
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--no-pin':
        o.pin = false;
        break;
      case '--cores':
        o.cores = Number(val());
        if (!Number.isInteger(o.cores) || o.cores < 1) throw new Error('--cores expects a positive integer');
        if (o.cores > 1) o.pin = false;
        break;
      case '--no-md':
        o.writeMd = false;
        break;
      case '--sat-streams': {
        // saturation load shape: CHANNELSxCONCURRENCY, e.g. 4x16
        const m = /^(\d+)x(\d+)$/.exec(val());
        if (m === null) throw new Error('--sat-streams expects CHANNELSxCONCURRENCY, e.g. 4x16');
        o.satStreams = { channels: Number(m[1]), concurrency: Number(m[2]) };
        break;
      }
      case '--routelens-node-args':
        o.routelensNodeArgs = val()
          .split(/\s+/)
          .filter((x) => x !== '');
        break;
      case '--harness-node-args':
        o.harnessNodeArgs = val()
          .split(/\s+/)
          .filter((x) => x !== '');
        break;
      case '--harness-warmup':
        o.harnessWarmupS = Number(val());
        explicit.add('harness-warmup');
        break;
      case '--keep-tmp':
        o.keepTmp = true;
        break;
      case '--no-baseline':
        o.baseline = false;
        break;
      default:
        throw new Error(`unknown option ${a} (see the header of bench/run.ts)`);
    }
  }
  if (o.matrix) {
    if (explicit.has('scenarios'))
      throw new Error('--matrix and --scenarios exclude each other (narrow the matrix with --sources, --shapes, --rates, --pipelines)');
    o.scenarios = matrixScenarios(o.filter).map((sc) => sc.name);
    if (o.scenarios.length === 0) throw new Error('the matrix filters leave no scenario');
    if (!explicit.has('warmup')) o.warmupS = 10;
    if (!explicit.has('measure')) o.measureS = 20;
    if (Number.isNaN(o.warmupMaxS)) o.warmupMaxS = 30;
  }
  if (Number.isNaN(o.warmupMaxS)) o.warmupMaxS = o.warmupS + MAX_EXTRA_WARMUP_MS / 1000;
  if (o.quick) {
    if (!explicit.has('reps')) o.reps = 2;
    if (!explicit.has('warmup')) o.warmupS = 2;
    if (!explicit.has('warmup-requests')) o.warmupRequests = 0;
    if (!explicit.has('harness-warmup')) o.harnessWarmupS = 1;
    if (!explicit.has('measure')) o.measureS = 5;
    if (!explicit.has('first-window')) o.firstWindowS = 5;
    o.poolSize = 64;
  }
  if (o.profile) {
    o.only = 'routelens';
    if (!explicit.has('scenarios')) o.scenarios = ['saturation'];
    o.reps = 1;
    if (!explicit.has('measure')) o.measureS = 20;
    o.writeMd = false;
    o.baseline = false;
  }
  return o;
}

// ---- small helpers -----------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

function median(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function maxOf(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length === 0 ? null : Math.max(...v);
}

function round(v: number | null, digits = 3): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** utime + stime of a process (all threads), seconds. */
/** Direct children of a process (routelens --workers forks its workers). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds of a process and its children (workers), read from /proc; `system` counts kernel time only. */
function treeCpuSeconds(pid: number, system = false): number {
  let total = cpuSeconds(pid, system);
  for (const c of childPids(pid)) {
    try {
      total += cpuSeconds(c, system);
    } catch {
      /* gone */
    }
  }
  return total;
}

/** VmRSS and VmHWM of a process and its children, summed. */
function treeMemory(pid: number): { rss: number; hwm: number } {
  const m = memory(pid);
  for (const c of childPids(pid)) {
    try {
      const cm = memory(c);
      m.rss += cm.rss;
      m.hwm += cm.hwm;
    } catch {
      /* gone */
    }
  }
  return m;
}

/**
 * Seconds all threads of a process spent waiting on a run queue (runnable, not running): /proc/PID/task/TID/
 * schedstat field 2. On a shared machine this is the CPU the process wanted and did not get.
 */
function runqueueWaitSeconds(pid: number): number {
  let ns = 0;
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // thread exited
    }
  }
  return ns / 1e9;
}

/** VmRSS and VmHWM in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

function haveTaskset(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) c.kill('SIGKILL');
});

/** Spawn pinned to `cpu` (through taskset, so every thread inherits the affinity). */
function spawnPinned(cpu: string | undefined, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; ipc?: boolean; log?: string }): ChildProcess {
  const [file, argv] = cpu === undefined ? [cmd, args] : ['taskset', ['-c', cpu, cmd, ...args]];
  const out = opts.log === undefined ? 'inherit' : fs.openSync(opts.log, 'a');
  const child = spawn(file, argv, {
    cwd: ROOT,
    env: opts.env ?? process.env,
    stdio: opts.ipc === true ? ['ignore', out, out, 'ipc'] : ['ignore', out, out],
  });
  if (typeof out === 'number') fs.closeSync(out);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

// ---- environment -------------------------------------------------------------------------------------------

interface Machine {
  nproc: number;
  cpu_model: string;
  mem_gib: number;
  kernel: string;
  node: string;
  go: string;
  otelcol: string;
  routelens_commit: string;
  pinning: string;
  /** /proc/loadavg at the start and end: other work on the machine competes for the same cores. */
  load_average_start: string;
  load_average_end: string;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function machineInfo(otelcolBin: string | undefined, pinning: string): Machine {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    nproc: os.cpus().length,
    cpu_model: `${/^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown'} (family ${/^cpu family\s*:\s*(\d+)/m.exec(cpuinfo)?.[1] ?? '?'} model ${/^model\s*:\s*(\d+)/m.exec(cpuinfo)?.[1] ?? '?'}${/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) ? ', virtual machine' : ''})`,
    mem_gib: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    go: sh('go', ['version']),
    otelcol: otelcolBin === undefined ? 'not run' : sh(otelcolBin, ['--version']),
    routelens_commit: `${sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])}${dirty ? '+dirty' : ''}`,
    pinning,
    load_average_start: loadAverage(),
    load_average_end: '',
  };
}

/**
 * Copy the compiled routelens (bin/, dist/src/, proto/, package.json; node_modules linked) into `dir`, so the
 * code under test stays the same for the whole run while others rebuild dist/ in the shared tree. Returns the
 * snapshot's bin/routelens.js.
 */
function snapshotRoutelens(dir: string): string {
  const snap = path.join(dir, 'routelens');
  for (const p of ['bin', 'dist/src', 'proto', 'package.json']) fs.cpSync(path.join(ROOT, p), path.join(snap, p), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(snap, 'node_modules'), 'dir');
  return path.join(snap, 'bin', 'routelens.js');
}

function buildOtelcol(): string {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'build-otelcol.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('scripts/build-otelcol.sh failed');
  const bin = r.stdout.trim().split('\n').pop() ?? '';
  if (!fs.existsSync(bin)) throw new Error(`build-otelcol.sh printed ${bin}, which does not exist`);
  return bin;
}

async function startKube(): Promise<FakeKubeApi> {
  const api = await FakeKubeApi.start();
  const objects = workloadKubeObjects();
  for (const ns of objects.namespaces) api.add('namespaces', ns);
  for (const rs of objects.replicaSets) api.add('replicasets', rs);
  for (const pod of objects.pods) api.addPod(pod);
  return api;
}

// ---- one run -----------------------------------------------------------------------------------------------

interface RunResult {
  collector: RunTarget;
  scenario: ScenarioName;
  rep: number;
  /** The routelens pipeline's name, `full` or `bare` for the Collector, `none` without a collector. */
  pipeline: string;
  source: Source;
  spans_per_request: number;
  window_s: number;
  cpu_s: number;
  core_utilisation: number;
  /** Kernel time (stime) as a share of the window's CPU: syscalls, and on loopback the peer's TCP receive work. */
  cpu_system_share: number | null;
  cpu_s_per_million_spans: number | null;
  offered_spans_per_s: number | null;
  accepted_spans_per_s: number | null;
  delivered_spans_per_s: number;
  rss_mib: number;
  rss_hwm_mib: number;
  added_latency_p50_ms: number | null;
  added_latency_p99_ms: number | null;
  latency_samples: number;
  /** Seconds from listening to the measured window (at least --warmup, and --warmup-requests accepted). */
  warmup_s: number;
  /** Collector CPU seconds from spawn to the measured window: start-up plus warm-up, JIT compilation included. */
  warmup_cpu_s: number | null;
  /** Collector CPU seconds from spawn until it listened (before any load). */
  startup_cpu_s: number | null;
  /** Length of the first window: from the start of the load, `--first-window` seconds (or less in a short run). */
  first_window_s: number | null;
  /** Collector CPU per million spans delivered over that first window: start-up compilation at work. */
  first_cpu_s_per_million_spans: number | null;
  ack_latency_p50_ms: number | null;
  ack_latency_p99_ms: number | null;
  /** Spans the generator sent (null for telemetrygen, which does not say). */
  spans_sent: number | null;
  spans_accepted: number | null;
  spans_refused: number | null;
  spans_failed: number | null;
  /** Spans the collector counted as accepted (`otelcol_receiver_accepted_spans` on its /metrics), whole run. */
  collector_accepted_spans: number | null;
  spans_received: number;
  /** Sent − received (loadgen), or accepted by the collector − received (telemetrygen), whole run. */
  spans_lost: number | null;
  duplicate_markers: number;
  malformed_at_sink: number;
  enriched_fraction: number | null;
  generator_core_utilisation: number;
  sink_core_utilisation: number;
  /** Run-queue wait ÷ window (summed over threads): CPU wanted but not given, e.g. by other load on the machine. */
  collector_runqueue_wait: number | null;
  harness_runqueue_wait: number;
  /**
   * Busy time of the collector's CPU not spent by the collector, ÷ window (other work on the machine, plus
   * hypervisor steal); null without pinning. The cleanest sign of a disturbed run.
   */
  collector_core_foreign_load: number | null;
  /** The same for the harness CPU, minus generator and sink (includes the orchestrator and fake API). */
  harness_core_foreign_load: number | null;
  percentile_max_rel_error: number | null;
  percentile_detail: string;
  startup_s: number;
  /** rate scenarios: most requests the generator owed at once (it fell behind its schedule when > 1). */
  generator_max_backlog: number;
  last_error: string;
  /** `-beside` scenarios: metric points + log records per second delivered to the sink in the window. */
  beside_items_per_s: number | null;
  /** `-beside` scenarios: metric points + log records sent − received, whole run. */
  beside_items_lost: number | null;
}

interface Harness {
  opts: Options;
  gen: IpcClient;
  genPid: number;
  sink: IpcClient;
  sinkPid: number;
  sinkPort: number;
  kubeconfig: string;
  otelcolBin: string;
  /** Built on first use (the first telemetrygen scenario). */
  telemetrygenBin: string | undefined;
  routelensBin: string;
  routelensPipelines: Record<PipelineShape, RoutelensPipeline>;
  tmp: string;
  pin: { collector: string | undefined; harness: string | undefined };
  /** Starts a harness child (loadgen.js, sink.js) pinned to the harness CPU. */
  helper: (script: string) => HarnessChild;
  /** Generators of the metrics and logs sent beside traces, started on first use. */
  besideGens: Map<AppSignal, HarnessChild>;
}

interface HarnessChild {
  client: IpcClient;
  pid: number;
  child: ChildProcess;
}

async function percentileError(adminPort: number, gen: IpcClient): Promise<{ err: number | null; detail: string }> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${adminPort}/api/v1/routes?window=1h&limit=1000`);
  } catch (e) {
    return { err: null, detail: `query failed: ${(e as Error).message}` };
  }
  if (res.status === 404) return { err: null, detail: 'no routelatency connector (404)' };
  if (res.status !== 200) return { err: null, detail: `HTTP ${res.status}` };
  const body = (await res.json()) as {
    routes?: {
      service: string;
      method: string;
      route: string;
      count: number;
      p50_ms: number | null;
      p90_ms: number | null;
      p95_ms: number | null;
      p99_ms: number | null;
    }[];
  };
  const exact = await gen.call<ExactRoute[]>('exact');
  const got = new Map((body.routes ?? []).map((r) => [`${r.service} ${r.method} ${r.route}`, r]));
  let worst = 0;
  let worstWhat = '';
  let missing = 0;
  let countOff = 0;
  for (const e of exact) {
    const g = got.get(e.route);
    if (g === undefined) {
      missing++;
      continue;
    }
    if (g.count !== e.count) countOff++;
    for (const [q, ev] of [
      ['p50', e.p50_ms],
      ['p90', e.p90_ms],
      ['p95', e.p95_ms],
      ['p99', e.p99_ms],
    ] as const) {
      const gv = g[`${q}_ms`];
      if (gv === null) continue;
      const rel = Math.abs(gv - ev) / ev;
      if (rel > worst) {
        worst = rel;
        worstWhat = `${e.route} ${q}: ${gv.toFixed(3)} vs exact ${ev.toFixed(3)} ms`;
      }
    }
  }
  const detail = `${exact.length} routes, ${missing} missing, ${countOff} with another count; worst ${worstWhat || '-'}`;
  return { err: missing === exact.length ? null : worst, detail };
}

/** The spans a collector says it accepted (its self-telemetry on the admin port); null when it cannot be read. */
async function collectorAccepted(adminPort: number): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    return res.status === 200 ? acceptedSpansOf(await res.text()) : null;
  } catch {
    return null;
  }
}

type RunTarget = CollectorName | 'direct';

/** The saturation load shape, with --sat-streams applied. */
function genArgs(h: Harness, sc: Scenario): Omit<StartArgs, 'target'> {
  const s = h.opts.satStreams;
  return sc.gen.mode === 'saturate' && s !== undefined ? { ...sc.gen, ...s } : sc.gen;
}

/** The loadgen's request pool for `sc`: at most ≈ 64 MiB of requests, and at least twice the outstanding calls. */
async function usePool(h: Harness, spansPerRequest: number, concurrency: number, signal: Scenario['signal'] = 'traces'): Promise<Built> {
  const bytesPerRequest = spansPerRequest * (signal === 'traces' ? 500 : 100);
  const poolSize = Math.max(2 * concurrency, Math.min(h.opts.poolSize, Math.floor((64 * 2 ** 20) / bytesPerRequest)));
  return h.gen.call<Built>('build', { poolSize, seed: 42, spansPerRequest, ...(signal === 'traces' ? {} : { signal }) });
}

interface Built {
  routes: number;
  spanBytes: number;
  attributesPerSpan: number;
  requestBytes: number;
}

/** Zero the generator's and the sink's counters, then start the scenario's load on `port`. */
async function startLoad(h: Harness, sc: Scenario, port: number): Promise<void> {
  await h.sink.call('reset', sc.beside === undefined ? undefined : { appSignalsApart: true });
  await h.gen.call('reset');
  await h.gen.call('start', { ...genArgs(h, sc), target: `127.0.0.1:${port}` } satisfies StartArgs);
}

/** The generators of a `-beside` scenario's metrics and logs, each with its pool built and its counters zeroed. */
async function besideGenerators(h: Harness, sc: Scenario): Promise<{ load: BesideLoad; gen: HarnessChild }[]> {
  const out: { load: BesideLoad; gen: HarnessChild }[] = [];
  for (const load of sc.beside ?? []) {
    let gen = h.besideGens.get(load.signal);
    if (gen === undefined) {
      gen = h.helper('loadgen.js');
      h.besideGens.set(load.signal, gen);
    }
    await gen.client.call<Built>('build', { poolSize: 64, seed: 7, spansPerRequest: load.itemsPerRequest, signal: load.signal });
    await gen.client.call('reset');
    out.push({ load, gen });
  }
  return out;
}

/**
 * Generator → sink at saturation for a few seconds, nothing measured: at 20 requests a second the generator's and
 * the sink's per-request functions would otherwise still be compiled by V8 during the first measured windows,
 * on the harness CPU, and show up as latency of whichever collector runs then.
 */
async function warmHarness(h: Harness): Promise<void> {
  const sat = scenarioByName('saturation');
  await usePool(h, sat.spansPerRequest, genArgs(h, sat).concurrency);
  await startLoad(h, sat, h.sinkPort);
  await sleep(h.opts.harnessWarmupS * 1000);
  await h.gen.call<GenCounters>('stop');
}

/** A warm-up waiting for --warmup-requests gives up this long after --warmup (a collector refusing everything). */
const MAX_EXTRA_WARMUP_MS = 180_000;

/** CPU seconds of a set of processes (telemetrygen's), ignoring ones that are gone. */
function sumCpu(pids: number[]): number {
  let t = 0;
  for (const p of pids) {
    try {
      t += cpuSeconds(p);
    } catch {
      /* exited */
    }
  }
  return t;
}

async function runOne(h: Harness, collector: RunTarget, sc: Scenario, rep: number, profileDir?: string): Promise<RunResult> {
  const [grpcPort, adminPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const env: CollectorEnv = { grpcPort, sinkPort: h.sinkPort, kubeconfig: h.kubeconfig, adminPort, metricsPort };
  const cfgFile = path.join(h.tmp, `${collector}-${sc.name}-${rep}.yaml`);
  const log = path.join(h.tmp, `${collector}-${sc.name}-${rep}.log`);
  const routelensPipeline = h.routelensPipelines[sc.pipeline];
  let child: ChildProcess | undefined;
  let target = grpcPort;
  if (collector === 'routelens') {
    const yaml = sc.signal === 'traces' ? routelensPipeline.yaml(env) : routelensSignalYaml(env, sc.signal);
    fs.writeFileSync(cfgFile, sc.beside === undefined ? yaml : withAppSignalPipelines(yaml));
    const nodeArgs = [
      ...shebangNodeFlags(h.routelensBin), // routelens runs as its bin runs it
      ...h.opts.routelensNodeArgs,
      ...(profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=routelens-${sc.name}-${Date.now()}.cpuprofile`]),
    ];
    child = spawnPinned(h.pin.collector, process.execPath, [...nodeArgs, h.routelensBin, 'run', '--config', cfgFile, '--workers', String(h.opts.cores)], {
      log,
    });
  } else if (collector === 'otelcol') {
    const yaml = sc.signal === 'traces' ? otelcolYaml(env, sc.pipeline) : otelcolSignalYaml(env, sc.signal);
    fs.writeFileSync(cfgFile, sc.beside === undefined ? yaml : withAppSignalPipelines(yaml));
    child = spawnPinned(h.pin.collector, h.otelcolBin, ['--config', cfgFile], { log, env: otelcolEnv(env, h.opts.cores) });
  } else {
    target = h.sinkPort; // baseline: generator straight into the sink
  }
  const pid = child?.pid;
  const t0 = Date.now();
  while (child !== undefined) {
    if (child.exitCode !== null) throw new Error(`${collector} exited during start-up; log: ${log}\n${fs.readFileSync(log, 'utf8').slice(-3000)}`);
    if (await tcpReady(grpcPort)) break;
    if (Date.now() - t0 > 60_000) throw new Error(`${collector} did not listen on ${grpcPort} within 60 s; log: ${log}`);
    await sleep(50);
  }
  const startup = (Date.now() - t0) / 1000;
  const tg = sc.source === 'telemetrygen';
  let tgProcs: ChildProcess[] = [];
  const beside = await besideGenerators(h, sc);
  const genPids = (): number[] => [
    ...(tg ? tgProcs.map((p) => p.pid).filter((p): p is number => p !== undefined) : [h.genPid]),
    ...beside.map((b) => b.gen.pid),
  ];
  try {
    const cStart = pid === undefined ? null : treeCpuSeconds(pid);
    if (tg) {
      h.telemetrygenBin ??= buildTelemetrygen(ROOT);
      await h.sink.call('reset');
      tgProcs = startTelemetrygen(
        h.telemetrygenBin,
        sc,
        `127.0.0.1:${target}`,
        (cmd, args, tgEnv, tgLog) => spawnPinned(h.pin.harness, cmd, args, { env: tgEnv, log: tgLog }),
        path.join(h.tmp, `telemetrygen-${collector}-${sc.name}-${rep}.log`),
      );
    } else {
      await startLoad(h, sc, target);
    }
    for (const b of beside) {
      await b.gen.client.call('start', {
        mode: 'rate',
        spansPerSec: b.load.itemsPerSec,
        concurrency: 8,
        channels: 1,
        target: `127.0.0.1:${target}`,
      } satisfies StartArgs);
    }
    const loadStart = Date.now();
    // The first window: CPU per span while the collector is new to the load (compilation, first collections).
    let first: { s: number; cpuPerM: number | null } | undefined;
    const firstWindowMs = Math.min(h.opts.firstWindowS, h.opts.warmupS + h.opts.measureS) * 1000;
    const checkFirst = async (): Promise<void> => {
      if (first !== undefined || Date.now() - loadStart < firstWindowMs) return;
      // The why pipelines forward a sample: count the spans the collector accepted instead.
      const spans = sc.pipeline === 'why' && !tg ? (await h.gen.call<GenCounters>('stats')).acceptedSpans : (await h.sink.call<SinkStats>('stats')).spans;
      const cpu = pid === undefined || cStart === null ? null : treeCpuSeconds(pid) - cStart;
      first = { s: (Date.now() - loadStart) / 1000, cpuPerM: cpu === null || spans === 0 ? null : cpu / (spans / 1e6) };
    };
    const requestsSoFar = async (): Promise<number> =>
      tg ? (await h.sink.call<SinkStats>('stats')).requests : (await h.gen.call<GenCounters>('stats')).acceptedRequests;
    const warmupUntil = loadStart + Math.max(h.opts.warmupS, sc.minWarmupS ?? 0) * 1000;
    const warmupDeadline = loadStart + h.opts.warmupMaxS * 1000;
    while (Date.now() < warmupUntil || ((await requestsSoFar()) < h.opts.warmupRequests && Date.now() < warmupDeadline)) {
      await sleep(250);
      await checkFirst();
    }
    const warmupS = (Date.now() - t0) / 1000 - startup;

    const c0 = pid === undefined ? 0 : treeCpuSeconds(pid);
    const k0 = pid === undefined ? 0 : treeCpuSeconds(pid, true);
    const g0 = sumCpu(genPids());
    const s0 = cpuSeconds(h.sinkPid);
    const q0 = pid === undefined ? 0 : runqueueWaitSeconds(pid);
    const b0 = h.pin.collector === undefined ? undefined : cpuBusySeconds(h.pin.collector);
    const hb0 = h.pin.harness === undefined ? undefined : cpuBusySeconds(h.pin.harness);
    const hq0 = genPids().reduce((a, p) => a + runqueueWaitSeconds(p), 0) + runqueueWaitSeconds(h.sinkPid);
    const a0 = pid === undefined ? null : await collectorAccepted(adminPort);
    await Promise.all([h.sink.call('windowStart'), tg ? undefined : h.gen.call('windowStart')]);
    const w0 = process.hrtime.bigint();
    let rssMax = 0;
    const deadline = Date.now() + h.opts.measureS * 1000;
    while (Date.now() < deadline) {
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
      await checkFirst();
      if (pid !== undefined) rssMax = Math.max(rssMax, treeMemory(pid).rss);
    }
    const [sw, gw] = await Promise.all([h.sink.call<WindowResult>('windowEnd'), tg ? undefined : h.gen.call<GenWindow>('windowEnd')]);
    const windowS = Number(process.hrtime.bigint() - w0) / 1e9;
    const c1 = pid === undefined ? 0 : treeCpuSeconds(pid);
    const k1 = pid === undefined ? 0 : treeCpuSeconds(pid, true);
    const g1 = sumCpu(genPids());
    const s1 = cpuSeconds(h.sinkPid);
    const q1 = pid === undefined ? 0 : runqueueWaitSeconds(pid);
    const b1 = h.pin.collector === undefined ? undefined : cpuBusySeconds(h.pin.collector);
    const hb1 = h.pin.harness === undefined ? undefined : cpuBusySeconds(h.pin.harness);
    const hq1 = genPids().reduce((a, p) => a + runqueueWaitSeconds(p), 0) + runqueueWaitSeconds(h.sinkPid);
    const a1 = pid === undefined ? null : await collectorAccepted(adminPort);
    const mem = pid === undefined ? { rss: 0, hwm: 0 } : treeMemory(pid);

    let gc: GenCounters | undefined;
    if (tg) await stopTelemetrygen(tgProcs);
    else gc = await h.gen.call<GenCounters>('stop');
    const besideSent =
      beside.length === 0 ? null : (await Promise.all(beside.map((b) => b.gen.client.call<GenCounters>('stop')))).reduce((a, c) => a + c.sentSpans, 0);
    // Drain: wait until everything accepted has arrived, or nothing arrived for 1.5 s.
    let acceptedSpans = gc?.acceptedSpans ?? (pid === undefined ? null : await collectorAccepted(adminPort));
    let st = await h.sink.call<SinkStats>('stats');
    let lastChange = Date.now();
    let lastSpans = st.spans + st.appItems;
    const drainDeadline = Date.now() + 15_000;
    while (
      (acceptedSpans === null || st.spans < acceptedSpans || (besideSent !== null && st.appItems < besideSent)) &&
      Date.now() - lastChange < 1500 &&
      Date.now() < drainDeadline
    ) {
      await sleep(100);
      st = await h.sink.call<SinkStats>('stats');
      if (st.spans + st.appItems !== lastSpans) {
        lastSpans = st.spans + st.appItems;
        lastChange = Date.now();
      }
      if (tg && pid !== undefined) acceptedSpans = await collectorAccepted(adminPort);
    }
    const collectorAcceptedSpans = pid === undefined ? null : await collectorAccepted(adminPort);
    const pe =
      collector === 'routelens' && !tg ? await percentileError(adminPort, h.gen) : { err: null, detail: tg ? 'n/a (telemetrygen)' : `n/a (${collector})` };
    const cpu = c1 - c0;
    const lat = sw.latenciesMs;
    const gcw = gw;
    return {
      collector,
      scenario: sc.name,
      rep,
      pipeline:
        sc.signal !== 'traces' && collector !== 'direct'
          ? `${sc.signal}: ${SIGNAL_PIPELINE_DESCRIPTION}`
          : collector === 'routelens'
            ? routelensPipeline.name
            : collector === 'otelcol'
              ? sc.pipeline
              : 'none',
      source: sc.source,
      spans_per_request: sc.spansPerRequest,
      window_s: round(windowS, 2) as number,
      cpu_s: round(cpu, 2) as number,
      core_utilisation: round(cpu / windowS) as number,
      cpu_system_share: cpu > 0 ? round((k1 - k0) / cpu) : null,
      // The why pipelines forward a sample of the traces: their work is per span accepted, not per span delivered.
      cpu_s_per_million_spans:
        sc.pipeline === 'why'
          ? gcw !== undefined && gcw.acceptedSpans > 0
            ? round(cpu / (gcw.acceptedSpans / 1e6))
            : null
          : sw.spans > 0
            ? round(cpu / (sw.spans / 1e6))
            : null,
      offered_spans_per_s: gcw === undefined ? null : Math.round(gcw.sentSpans / gcw.elapsedS),
      accepted_spans_per_s:
        gcw !== undefined ? Math.round(gcw.acceptedSpans / gcw.elapsedS) : a0 !== null && a1 !== null ? Math.round((a1 - a0) / windowS) : null,
      delivered_spans_per_s: Math.round(sw.spans / windowS),
      rss_mib: round(Math.max(rssMax, mem.rss), 1) as number,
      rss_hwm_mib: round(mem.hwm, 1) as number,
      added_latency_p50_ms: round(percentile(lat, 0.5)),
      added_latency_p99_ms: round(percentile(lat, 0.99)),
      latency_samples: lat.length,
      ack_latency_p50_ms: gcw === undefined ? null : round(percentile(gcw.ackLatenciesMs, 0.5)),
      ack_latency_p99_ms: gcw === undefined ? null : round(percentile(gcw.ackLatenciesMs, 0.99)),
      spans_sent: gc?.sentSpans ?? null,
      spans_accepted: gc?.acceptedSpans ?? collectorAcceptedSpans,
      spans_refused: gc?.refusedSpans ?? null,
      spans_failed: gc?.failedSpans ?? null,
      collector_accepted_spans: collectorAcceptedSpans,
      spans_received: st.spans,
      // Lost = acknowledged but never delivered: a refused span was answered with an error its client may retry, so
      // it is counted as refused, not lost. The why pipelines forward a sample: what the sink lacks was dropped by
      // design, not lost.
      spans_lost:
        sc.pipeline === 'why'
          ? null
          : gc !== undefined
            ? gc.acceptedSpans - st.spans
            : collectorAcceptedSpans === null
              ? null
              : collectorAcceptedSpans - st.spans,
      duplicate_markers: st.duplicateMarkers,
      malformed_at_sink: st.malformed,
      enriched_fraction: st.sampledResources > 0 ? round(st.enrichedResources / st.sampledResources) : null,
      generator_core_utilisation: round((g1 - g0) / windowS) as number,
      sink_core_utilisation: round((s1 - s0) / windowS) as number,
      collector_runqueue_wait: pid === undefined ? null : round((q1 - q0) / windowS),
      harness_runqueue_wait: round((hq1 - hq0) / windowS) as number,
      collector_core_foreign_load: b0 === undefined || b1 === undefined ? null : round(Math.max(0, b1.busy - b0.busy - cpu) / windowS),
      harness_core_foreign_load: hb0 === undefined || hb1 === undefined ? null : round(Math.max(0, hb1.busy - hb0.busy - (g1 - g0) - (s1 - s0)) / windowS),
      percentile_max_rel_error: round(pe.err, 4),
      percentile_detail: pe.detail,
      startup_s: round(startup, 2) as number,
      warmup_s: round(warmupS, 1) as number,
      warmup_cpu_s: pid === undefined ? null : round(c0, 2),
      startup_cpu_s: cStart === null ? null : round(cStart, 2),
      first_window_s: first === undefined ? null : round(first.s, 1),
      first_cpu_s_per_million_spans: first === undefined ? null : round(first.cpuPerM),
      generator_max_backlog: gc?.maxBacklog ?? 0,
      last_error: gc?.lastError ?? '',
      beside_items_per_s: besideSent === null ? null : Math.round(sw.appItems / windowS),
      beside_items_lost: besideSent === null ? null : besideSent - st.appItems,
    };
  } finally {
    if (tg) await stopTelemetrygen(tgProcs);
    else await h.gen.call('stop').catch(() => undefined);
    for (const b of beside) await b.gen.client.call('stop').catch(() => undefined);
    if (child !== undefined) await stopProcess(child);
  }
}

// ---- aggregation and output --------------------------------------------------------------------------------

interface Summary {
  pipeline: string;
  cpu_s_per_million_spans: number | null;
  peak_spans_per_s: number | null;
  rss_mib: number | null;
  rss_hwm_mib: number | null;
  added_latency_p50_ms: number | null;
  added_latency_p99_ms: number | null;
  spans_sent: number | null;
  spans_received: number;
  percentile_max_rel_error: number | null;
}

const SUMMARY_BASIS = {
  cpu_s_per_million_spans: 'median over reps at 50k spans/s (10k if 50k was not run)',
  peak_spans_per_s: 'median over reps of accepted spans/s in the saturation scenario',
  rss_mib: 'largest VmRSS sampled at 50k spans/s (the same offered load for both; 10k if 50k was not run)',
  rss_hwm_mib: 'largest VmHWM over all runs, saturation included (a Collector queue filling up shows here)',
  added_latency_p50_ms: 'median over reps at 10k spans/s: sink arrival − generator send, marker span per request',
  added_latency_p99_ms: 'same, p99',
  spans_sent: 'total over all runs (including warm-up)',
  spans_received: 'total over all runs, at the sink after draining',
  percentile_max_rel_error: 'worst |routelens − exact| / exact over routes × {p50,p90,p95,p99} over all runs',
};

type PerScenario = Partial<Record<ScenarioName, Partial<Record<RunTarget, Record<string, number | null | string>>>>>;

function aggregate(results: RunResult[], collector: RunTarget, sc: ScenarioName): Record<string, number | null | string> | undefined {
  const rs = results.filter((r) => r.collector === collector && r.scenario === sc);
  if (rs.length === 0) return undefined;
  const med = (f: (r: RunResult) => number | null): number | null => round(median(rs.map(f)));
  return {
    reps: rs.length,
    pipeline: rs[0]?.pipeline ?? '',
    cpu_s_per_million_spans: med((r) => r.cpu_s_per_million_spans),
    core_utilisation: med((r) => r.core_utilisation),
    cpu_system_share: med((r) => r.cpu_system_share),
    offered_spans_per_s: med((r) => r.offered_spans_per_s),
    accepted_spans_per_s: med((r) => r.accepted_spans_per_s),
    delivered_spans_per_s: med((r) => r.delivered_spans_per_s),
    rss_mib: round(maxOf(rs.map((r) => r.rss_mib)), 1),
    rss_hwm_mib: round(maxOf(rs.map((r) => r.rss_hwm_mib)), 1),
    added_latency_p50_ms: med((r) => r.added_latency_p50_ms),
    added_latency_p99_ms: med((r) => r.added_latency_p99_ms),
    ack_latency_p50_ms: med((r) => r.ack_latency_p50_ms),
    ack_latency_p99_ms: med((r) => r.ack_latency_p99_ms),
    spans_sent: sumOf(rs.map((r) => r.spans_sent)),
    spans_refused: sumOf(rs.map((r) => r.spans_refused)),
    spans_received: rs.reduce((a, r) => a + r.spans_received, 0),
    spans_lost: sumOf(rs.map((r) => r.spans_lost)),
    enriched_fraction: med((r) => r.enriched_fraction),
    generator_core_utilisation: round(maxOf(rs.map((r) => r.generator_core_utilisation))),
    sink_core_utilisation: round(maxOf(rs.map((r) => r.sink_core_utilisation))),
    collector_runqueue_wait: med((r) => r.collector_runqueue_wait),
    harness_runqueue_wait: round(maxOf(rs.map((r) => r.harness_runqueue_wait))),
    collector_core_foreign_load: round(maxOf(rs.map((r) => r.collector_core_foreign_load))),
    harness_core_foreign_load: round(maxOf(rs.map((r) => r.harness_core_foreign_load))),
    percentile_max_rel_error: round(maxOf(rs.map((r) => r.percentile_max_rel_error)), 4),
    warmup_s: med((r) => r.warmup_s),
    warmup_cpu_s: med((r) => r.warmup_cpu_s),
    startup_cpu_s: med((r) => r.startup_cpu_s),
    first_window_s: med((r) => r.first_window_s),
    first_cpu_s_per_million_spans: med((r) => r.first_cpu_s_per_million_spans),
    beside_items_per_s: med((r) => r.beside_items_per_s),
    beside_items_lost: sumOf(rs.map((r) => r.beside_items_lost)),
  };
}

/** The sum of values, or null when any is unknown (telemetrygen does not say what it sent). */
function sumOf(values: readonly (number | null)[]): number | null {
  let t = 0;
  for (const v of values) {
    if (v === null) return null;
    t += v;
  }
  return t;
}

/**
 * Per-pair ratios routelens / otelcol of one figure in one scenario: rep i of routelens against rep i of the
 * Collector, which ran right after it, so the same drift of the machine hit both.
 */
function pairRatios(results: RunResult[], sc: ScenarioName, f: (r: RunResult) => number | null): (number | null)[] {
  const of = (c: CollectorName): RunResult[] => results.filter((r) => r.collector === c && r.scenario === sc).sort((a, b) => a.rep - b.rep);
  const rl = of('routelens');
  const oc = of('otelcol');
  const out: (number | null)[] = [];
  for (let i = 0; i < Math.min(rl.length, oc.length); i++) out.push(ratio(f(rl[i] as RunResult), f(oc[i] as RunResult)));
  return out;
}

function summarise(results: RunResult[], collector: CollectorName, pipeline: string): Summary | undefined {
  const rs = results.filter((r) => r.collector === collector);
  if (rs.length === 0) return undefined;
  const at = (sc: ScenarioName, f: (r: RunResult) => number | null): number | null => round(median(rs.filter((r) => r.scenario === sc).map(f)));
  const cpu50 = at('rate50k', (r) => r.cpu_s_per_million_spans);
  const rssAt = (sc: ScenarioName): number | null => round(maxOf(rs.filter((r) => r.scenario === sc).map((r) => r.rss_mib)), 1);
  return {
    pipeline,
    cpu_s_per_million_spans: cpu50 ?? at('rate10k', (r) => r.cpu_s_per_million_spans),
    peak_spans_per_s: at('saturation', (r) => r.accepted_spans_per_s),
    rss_mib: rssAt('rate50k') ?? rssAt('rate10k'),
    rss_hwm_mib: round(maxOf(rs.map((r) => r.rss_hwm_mib)), 1),
    added_latency_p50_ms: at('rate10k', (r) => r.added_latency_p50_ms),
    added_latency_p99_ms: at('rate10k', (r) => r.added_latency_p99_ms),
    spans_sent: sumOf(rs.map((r) => r.spans_sent)),
    spans_received: rs.reduce((a, r) => a + r.spans_received, 0),
    percentile_max_rel_error: round(maxOf(rs.map((r) => r.percentile_max_rel_error)), 4),
  };
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return round(a / b, 3);
}

function fmt(v: number | null | string | undefined): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (Number.isInteger(v) && Math.abs(v) >= 10) return v.toLocaleString('en-US');
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(Math.abs(v) >= 1 ? 2 : 3);
}

/** The markdown table printed and recorded in BENCHMARKS.md: one row per figure and scenario. */
function table(per: PerScenario, scenarios: ScenarioName[]): string {
  const rows: [string, string, string][] = [
    ['CPU s per million spans', 'cpu_s_per_million_spans', 'lower'],
    ['collector core utilisation', 'core_utilisation', ''],
    ['kernel share of the collector CPU', 'cpu_system_share', ''],
    ['collector run-queue wait (Σ threads, core fraction)', 'collector_runqueue_wait', ''],
    ['other load on the collector CPU (max)', 'collector_core_foreign_load', ''],
    ['offered spans/s', 'offered_spans_per_s', ''],
    ['accepted spans/s', 'accepted_spans_per_s', 'higher'],
    ['delivered spans/s (sink)', 'delivered_spans_per_s', ''],
    ['RSS MiB (max VmRSS)', 'rss_mib', 'lower'],
    ['VmHWM MiB', 'rss_hwm_mib', 'lower'],
    ['added latency p50 ms', 'added_latency_p50_ms', 'lower'],
    ['added latency p99 ms', 'added_latency_p99_ms', 'lower'],
    ['spans sent', 'spans_sent', ''],
    ['spans refused', 'spans_refused', ''],
    ['spans received', 'spans_received', ''],
    ['spans lost (acknowledged − received)', 'spans_lost', ''],
    ['metric points + log records/s beside (sink)', 'beside_items_per_s', ''],
    ['metric points + log records lost beside', 'beside_items_lost', ''],
    ['enriched resources (sampled)', 'enriched_fraction', ''],
    ['percentile max rel. error', 'percentile_max_rel_error', ''],
    ['warm-up before the window, s', 'warmup_s', ''],
    ['CPU s before the window (start-up + warm-up)', 'warmup_cpu_s', 'lower'],
    ['CPU s of start-up (spawn to listening)', 'startup_cpu_s', 'lower'],
    ['CPU s per million spans, first seconds of load', 'first_cpu_s_per_million_spans', 'lower'],
    ['generator / sink core (max)', 'harness', ''],
    ['generator + sink run-queue wait (max)', 'harness_runqueue_wait', ''],
    ['other load on the harness CPU (max)', 'harness_core_foreign_load', ''],
  ];
  const lines = ['| scenario | figure | routelens | otelcol | routelens / otelcol | no collector (generator → sink) |', '|---|---|---:|---:|---:|---:|'];
  const noRatio = new Set([
    'warmup_s',
    'harness_core_foreign_load',
    'collector_core_foreign_load',
    'harness_runqueue_wait',
    'collector_runqueue_wait',
    'spans_sent',
    'spans_received',
    'spans_refused',
    'spans_lost',
    'enriched_fraction',
    'offered_spans_per_s',
    'beside_items_per_s',
    'beside_items_lost',
  ]);
  const baselineKeys = new Set([
    'harness_core_foreign_load',
    'harness_runqueue_wait',
    'offered_spans_per_s',
    'accepted_spans_per_s',
    'delivered_spans_per_s',
    'added_latency_p50_ms',
    'added_latency_p99_ms',
    'spans_lost',
    'harness',
  ]);
  for (const sc of scenarios) {
    const label = labelOf(sc);
    const r = per[sc]?.routelens;
    const o = per[sc]?.otelcol;
    const d = per[sc]?.direct;
    for (const [name, key] of rows) {
      const dv = d === undefined || !baselineKeys.has(key) ? '' : key === 'harness' ? undefined : fmt(d[key] as number | null | undefined);
      if (key === 'harness') {
        const hv = (x: Record<string, number | null | string> | undefined): string =>
          x === undefined ? '—' : `${fmt(x['generator_core_utilisation'] as number | null)} / ${fmt(x['sink_core_utilisation'] as number | null)}`;
        lines.push(`| ${label} | ${name} | ${hv(r)} | ${hv(o)} | | ${d === undefined ? '' : hv(d)} |`);
        continue;
      }
      const rv = r?.[key] as number | null | undefined;
      const ov = o?.[key] as number | null | undefined;
      if (key.startsWith('beside_') && (rv ?? null) === null && (ov ?? null) === null) continue;
      if (key === 'percentile_max_rel_error') {
        lines.push(`| ${label} | ${name} | ${fmt(rv)} | n/a | | |`);
        continue;
      }
      const rat = noRatio.has(key) ? null : ratio(rv, ov);
      lines.push(`| ${label} | ${name} | ${fmt(rv)} | ${fmt(ov)} | ${rat === null ? '' : fmt(rat)} | ${dv ?? ''} |`);
    }
  }
  return lines.join('\n');
}

/** The headline figures, in table order: the summary table's rows and the routelens / otelcol ratios. */
const SUMMARY_FIGURES = [
  'cpu_s_per_million_spans',
  'peak_spans_per_s',
  'rss_mib',
  'rss_hwm_mib',
  'added_latency_p50_ms',
  'added_latency_p99_ms',
  'spans_sent',
  'spans_received',
  'percentile_max_rel_error',
] as const satisfies readonly (keyof Summary)[];

/**
 * The side-by-side table at the top of the results section: per scenario, routelens / otelcol (ratio) for the
 * figures a reader compares first, and the harness's own latency beside them.
 */
function headlineTable(per: PerScenario, scenarios: ScenarioName[]): string {
  const rows: [string, string][] = [
    ['CPU s per million spans', 'cpu_s_per_million_spans'],
    ['accepted spans/s', 'accepted_spans_per_s'],
    ['added latency p50 ms', 'added_latency_p50_ms'],
    ['added latency p99 ms', 'added_latency_p99_ms'],
    ['RSS MiB (largest VmRSS of the reps)', 'rss_mib'],
    ['spans lost (acknowledged − received)', 'spans_lost'],
  ];
  const labels = scenarios.map(labelOf);
  const lines = [`| routelens / otelcol (ratio) | ${labels.join(' | ')} |`, `|---|${scenarios.map(() => '---:').join('|')}|`];
  const cell = (sc: ScenarioName, key: string): string => {
    const r = per[sc]?.routelens?.[key] as number | null | undefined;
    const o = per[sc]?.otelcol?.[key] as number | null | undefined;
    if (r === undefined && o === undefined) return '—';
    const rat = key === 'spans_lost' ? null : ratio(r, o);
    return `${fmt(r)} / ${fmt(o)}${rat === null ? '' : ` (${rat.toFixed(2)}×)`}`;
  };
  for (const [name, key] of rows) lines.push(`| ${name} | ${scenarios.map((sc) => cell(sc, key)).join(' | ')} |`);
  const alone = (sc: ScenarioName): string => {
    const d = per[sc]?.direct;
    return d === undefined ? '—' : `${fmt(d['added_latency_p50_ms'] as number | null)} / ${fmt(d['added_latency_p99_ms'] as number | null)}`;
  };
  lines.push(`| latency p50 / p99 ms of generator → sink alone | ${scenarios.map(alone).join(' | ')} |`);
  lines.push(
    `| routelens percentile max rel. error | ${scenarios.map((sc) => fmt(per[sc]?.routelens?.['percentile_max_rel_error'] as number | null | undefined)).join(' | ')} |`,
  );
  return lines.join('\n');
}

/** The fields of a results file (latest.json and the files kept beside it) the markdown section is made of. */
interface ResultsFile {
  generated_at: string;
  command: string;
  machine: Machine;
  options: { reps: number; warmup_s: number; warmup_requests?: number; measure_s: number; harness_node_args?: string[]; harness_warmup_s?: number };
  workload: { spans_per_request: number; bytes_per_span: number | null; attributes_per_span: number | null; routes: number; services: number; pods: number };
  pipelines: { routelens: string; otelcol: string };
  scenarios: PerScenario;
}

/** The results section of BENCHMARKS.md: how the run was made, the side-by-side table, every figure per scenario. */
function resultsMarkdown(out: ResultsFile): { header: string; headline: string; detail: string } {
  const { machine: m, options: o, workload: w } = out;
  const warmupRequests = o.warmup_requests ?? 0;
  const header =
    `Machine: ${m.nproc} × ${m.cpu_model}, ${m.mem_gib} GiB, Linux ${m.kernel}; Node ${m.node}; ${m.go}; ${m.otelcol}.\n` +
    `Pinning: ${m.pinning}. Load average ${m.load_average_start} at the start, ${m.load_average_end} at the end.\n` +
    `Command: \`${out.command}\` (${o.reps} reps × ${o.measure_s} s measured after a warm-up of at least ${o.warmup_s} s${warmupRequests > 0 ? ` and ${fmt(warmupRequests)} accepted requests` : ''} per collector and scenario, alternating; harness node flags: ${(o.harness_node_args ?? []).join(' ') || 'none'}, harness warm-up ${o.harness_warmup_s ?? 0} s), ${out.generated_at}, routelens ${m.routelens_commit}.\n` +
    `Workload: ${w.spans_per_request} spans/request, ${w.bytes_per_span} B/span, ${w.attributes_per_span} attributes/span, ${w.routes} routes, ${w.services} services, ${w.pods} pods.\n` +
    `Pipelines: routelens ${out.pipelines.routelens}; otelcol ${out.pipelines.otelcol}.`;
  const scenarios = Object.keys(out.scenarios);
  return { header, headline: headlineTable(out.scenarios, scenarios), detail: table(out.scenarios, scenarios) };
}

function writeBenchmarksMd(md: { header: string; headline: string; detail: string }): void {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const section = `<!-- bench:latest:start (written by bench/run.ts) -->\n${md.header}\n\n${md.headline}\n\n<details><summary>Every figure per scenario</summary>\n\n${md.detail}\n\n</details>\n<!-- bench:latest:end -->`;
  const prev = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n<!-- bench:latest:start --><!-- bench:latest:end -->\n';
  const re = /<!-- bench:latest:start[^]*?<!-- bench:latest:end -->/;
  fs.writeFileSync(file, re.test(prev) ? prev.replace(re, () => section) : `${prev.trimEnd()}\n\n${section}\n`);
  console.log('updated: BENCHMARKS.md');
}

/**
 * Seconds a run of `sc` takes: start-up, warm-up (by time and requests, capped), window, drain and stop. The
 * saturation and request-count estimates assume the offered rate is met.
 */
function estimatedRunS(o: Options, sc: Scenario): number {
  const requestsPerS = (sc.spansPerSec ?? 200_000) / sc.spansPerRequest;
  const warmup = Math.min(o.warmupMaxS, Math.max(o.warmupS, o.warmupRequests / requestsPerS));
  return 3 + warmup + o.measureS + 3;
}

function listScenarios(o: Options): void {
  const collectors = o.only === undefined ? 2 : 1;
  let total = o.harnessWarmupS;
  for (const name of o.scenarios) {
    const sc = scenarioByName(name);
    const run = estimatedRunS(o, sc);
    const runs = collectors * o.reps + (o.baseline ? 1 : 0);
    total += runs * run;
    console.log(`${name.padEnd(18)} ${sc.label.padEnd(34)} ${runs} runs × ≈ ${run.toFixed(0)} s`);
  }
  console.log(`${o.scenarios.length} scenarios, ≈ ${(total / 60).toFixed(0)} min (${(total / 3600).toFixed(1)} h) on a quiet machine`);
}

// ---- the shape table ---------------------------------------------------------------------------------------

/** What a shape run's results file holds beyond ResultsFile: per-pair ratios per scenario. */
interface ShapesFile extends Omit<ResultsFile, 'workload' | 'pipelines'> {
  options: ResultsFile['options'] & { warmup_max_s?: number; first_window_s?: number };
  workloads: Record<string, string>;
  pipelines: Record<string, string>;
  pairs: Record<string, { cpu: (number | null)[]; rss: (number | null)[] }>;
}

/** The CPU per span target of issue 31 for a scenario, as a ratio to the Collector's, where it sets one. */
function cpuTarget(sc: Scenario): number | undefined {
  if (sc.spansPerSec !== 10_000 && sc.spansPerSec !== 50_000) return undefined;
  if (sc.spansPerRequest === 10) return 0.75;
  if (sc.spansPerRequest === 100 || sc.spansPerRequest === 512) return 0.5;
  return undefined;
}

/** The shape table: one row per scenario, routelens / Collector side by side. */
function shapesMarkdown(out: ShapesFile): { header: string; table: string } {
  const { machine: m, options: o } = out;
  const header =
    `Machine: ${m.nproc} × ${m.cpu_model}, ${m.mem_gib} GiB, Linux ${m.kernel}; Node ${m.node}; ${m.otelcol}.\n` +
    `Pinning: ${m.pinning}. Load average ${m.load_average_start} at the start, ${m.load_average_end} at the end.\n` +
    `Command: \`${out.command}\` (${o.reps} pairs × ${o.measure_s} s windows, alternating; warm-up at least ${o.warmup_s} s and ${fmt(o.warmup_requests ?? 0)} requests, at most ${o.warmup_max_s ?? '?'} s; first window ${o.first_window_s ?? '?'} s), ${out.generated_at}, routelens ${m.routelens_commit}.\n` +
    `Load: ${Object.entries(out.workloads)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}.\n` +
    `Pipelines: ${Object.entries(out.pipelines)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}.`;
  const lines = [
    '| scenario | CPU s/M spans routelens / otelcol | ratio (per pair) | target | RSS MiB (ratio) | p99 ms (harness alone) | accepted spans/s | first window ÷ steady CPU/span | start-up CPU s | lost | other load on CPU 1 |',
    '|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [name, per] of Object.entries(out.scenarios)) {
    const r = per?.routelens;
    const c = per?.otelcol;
    const d = per?.direct;
    const v = (x: Record<string, number | null | string> | undefined, k: string): number | null => (x?.[k] as number | null | undefined) ?? null;
    const pair = (k: string, digits?: number): string => {
      const a = v(r, k);
      const b = v(c, k);
      return `${digits === undefined ? fmt(a) : a === null ? '—' : a.toFixed(digits)} / ${digits === undefined ? fmt(b) : b === null ? '—' : b.toFixed(digits)}`;
    };
    const cpuRatio = ratio(v(r, 'cpu_s_per_million_spans'), v(c, 'cpu_s_per_million_spans'));
    const pairs = out.pairs[name]?.cpu ?? [];
    let sc: Scenario | undefined;
    try {
      sc = scenarioByName(name);
    } catch {
      sc = undefined;
    }
    const target = sc === undefined ? undefined : cpuTarget(sc);
    const met = target === undefined || cpuRatio === null ? '' : `≤ ${target.toFixed(2)}×: ${cpuRatio <= target ? 'met' : 'not met'}`;
    const first = (x: Record<string, number | null | string> | undefined): string => {
      const f = ratio(v(x, 'first_cpu_s_per_million_spans'), v(x, 'cpu_s_per_million_spans'));
      return f === null ? '—' : f.toFixed(2);
    };
    const rssRatio = ratio(v(r, 'rss_mib'), v(c, 'rss_mib'));
    const lost = `${fmt(v(r, 'spans_lost'))} / ${fmt(v(c, 'spans_lost'))}`;
    const foreign = maxOf([v(r, 'collector_core_foreign_load'), v(c, 'collector_core_foreign_load')]);
    lines.push(
      `| ${sc?.label ?? name} | ${pair('cpu_s_per_million_spans')} | ${cpuRatio === null ? '—' : `${cpuRatio.toFixed(2)}×`} (${pairs.map((x) => (x === null ? '—' : x.toFixed(2))).join(', ')}) | ${met} | ` +
        `${pair('rss_mib')} (${rssRatio === null ? '—' : `${rssRatio.toFixed(2)}×`}) | ${pair('added_latency_p99_ms')} (${fmt(v(d, 'added_latency_p99_ms'))}) | ${pair('accepted_spans_per_s')} | ` +
        `${first(r)} / ${first(c)} | ${pair('startup_cpu_s', 2)} | ${lost} | ${fmt(foreign)} |`,
    );
  }
  return { header, table: lines.join('\n') };
}

function writeShapesMd(md: { header: string; table: string }): void {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const section = `<!-- bench:shapes:start (written by bench/run.ts) -->\n${md.header}\n\n${md.table}\n<!-- bench:shapes:end -->`;
  const prev = fs.readFileSync(file, 'utf8');
  const re = /<!-- bench:shapes:start[^]*?<!-- bench:shapes:end -->/;
  fs.writeFileSync(file, re.test(prev) ? prev.replace(re, () => section) : `${prev.trimEnd()}\n\n${section}\n`);
  console.log('updated: BENCHMARKS.md (shape table)');
}

// ---- profile summary ---------------------------------------------------------------------------------------

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the stack a profile frame belongs to, for the by-component view. */
function component(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native / builtins)';
  const m = /(?:^|\/)dist\/src\/([^/]+(?:\/[^/]+)?)\//.exec(url);
  if (m !== null) return `routelens src/${m[1] ?? ''}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm !== null) return nm[1] ?? url;
  const ni = /^node:(?:internal\/)?([^/:]+)/.exec(url);
  if (ni !== null) return `node:${ni[1] ?? ''}`;
  return url;
}

function summariseProfile(file: string, top = 30): string {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byComponent = new Map<string, number>();
  let total = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    if (n === undefined) return;
    if (n.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${url === '' ? '' : `${url}:${n.callFrame.lineNumber + 1}`}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const c = component(url, n.callFrame.functionName);
    byComponent.set(c, (byComponent.get(c) ?? 0) + dt);
  });
  const busy = total - idle;
  // Callers of the hottest functions: self time of each sample attributed to the nearest routelens frame above.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frameKey = (id: number): string => {
    const n = byId.get(id);
    if (n === undefined) return '?';
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
    return `${n.callFrame.functionName || '(anonymous)'}  ${url === '' ? '' : `${url}:${n.callFrame.lineNumber + 1}`}`;
  };
  const hot = new Set(
    [...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k]) => k),
  );
  const callers = new Map<string, Map<string, number>>();
  p.samples.forEach((id, i) => {
    const k = frameKey(id);
    if (!hot.has(k) || k.includes('dist/src/')) return;
    let cur = parent.get(id);
    while (cur !== undefined && !(byId.get(cur)?.callFrame.url.includes('/dist/src/') ?? false)) cur = parent.get(cur);
    const by = cur === undefined ? '(no routelens frame above)' : frameKey(cur);
    const m = callers.get(k) ?? new Map<string, number>();
    m.set(by, (m.get(by) ?? 0) + (p.timeDeltas[i] ?? 0));
    callers.set(k, m);
  });
  const pct = (v: number): string => `${((100 * v) / busy).toFixed(1).padStart(5)} %`;
  const lines = [
    `${path.relative(ROOT, file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (idle ${((100 * idle) / total).toFixed(0)} %); percentages are of busy time`,
    '',
    `top ${top} functions by self time:`,
  ];
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(v)}  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  lines.push('', 'nearest routelens caller of the hottest non-routelens functions:');
  for (const [k, m] of callers) {
    lines.push(`  ${k}`);
    for (const [by, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, 4)) lines.push(`    ${pct(v)}  ${by}`);
  }
  lines.push('', 'self time by component:');
  for (const [k, v] of [...byComponent].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`${pct(v)}  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return lines.join('\n');
}

// ---- main --------------------------------------------------------------------------------------------------

async function chooseRoutelensPipeline(bin: string, name: string, env: CollectorEnv, tmp: string, log: (m: string) => void): Promise<RoutelensPipeline> {
  const candidates = name === 'auto' ? ROUTELENS_PIPELINES : ROUTELENS_PIPELINES.filter((p) => p.name === name);
  if (candidates.length === 0) throw new Error(`unknown routelens pipeline ${name}; known: ${ROUTELENS_PIPELINES.map((p) => p.name).join(', ')}`);
  const problems: string[] = [];
  for (const p of candidates) {
    const f = path.join(tmp, `validate-${p.name}.yaml`);
    fs.writeFileSync(f, p.yaml(env));
    const r = spawnSync(process.execPath, [bin, 'validate', '--config', f], { encoding: 'utf8' });
    if (r.status === 0) return p;
    const why = `${p.name}: ${(r.stderr || r.stdout).trim().split('\n').slice(0, 4).join(' | ')}`;
    problems.push(why);
    log(`routelens pipeline skipped, it does not validate: ${why}`);
  }
  throw new Error(`no routelens pipeline validates:\n  ${problems.join('\n  ')}`);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--summarise-profile') {
    const f = process.argv[3];
    if (f === undefined) throw new Error('--summarise-profile FILE.cpuprofile');
    console.log(summariseProfile(path.resolve(f)));
    return;
  }
  if (process.argv[2] === '--render-md') {
    const f = process.argv[3];
    if (f === undefined) throw new Error('--render-md FILE.json (a results file written by a run of both collectors)');
    const parsed = JSON.parse(fs.readFileSync(path.resolve(f), 'utf8')) as ResultsFile | ShapesFile;
    if ('pairs' in parsed) writeShapesMd(shapesMarkdown(parsed));
    else writeBenchmarksMd(resultsMarkdown(parsed));
    return;
  }
  const opts = parseArgs(process.argv.slice(2));
  if (opts.list) {
    listScenarios(opts);
    return;
  }
  const started = Date.now();
  const log = (msg: string): void => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}`);
  fs.mkdirSync(RESULTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-bench-'));

  const pinnable = opts.pin && os.cpus().length >= 2 && haveTaskset();
  const pin = pinnable ? { collector: '1', harness: '0' } : { collector: undefined, harness: undefined };
  if (pinnable) spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  const pinning = pinnable
    ? 'collector under test on CPU 1 (taskset -c 1; otelcol GOMAXPROCS=1); load generator, sink, orchestrator and fake API on CPU 0'
    : opts.cores > 1
      ? `no pinning, ${opts.cores} cores per collector (routelens --workers ${opts.cores}, otelcol GOMAXPROCS=${opts.cores}); the load generator and sink share the same cores`
      : 'no pinning (taskset unavailable, fewer than 2 CPUs, or --no-pin); otelcol GOMAXPROCS=1';

  const otelcolBin = opts.only === 'routelens' ? 'otelcol (not run)' : buildOtelcol();
  const machine = machineInfo(opts.only === 'routelens' ? undefined : otelcolBin, pinning);
  log(`${machine.cpu_model}, ${machine.nproc} CPUs; node ${machine.node}; ${machine.otelcol}; ${pinning}; load average ${machine.load_average_start}`);
  if (Number(machine.load_average_start.split(' ')[0]) > machine.nproc / 2) {
    log(
      `warning: the machine is busy (load average ${machine.load_average_start} on ${machine.nproc} CPUs): throughput and latency will be lower and noisier; CPU s per million spans holds up best (see run-queue wait)`,
    );
  }

  const kube = await startKube();
  const kubeconfig = kube.writeKubeconfig({ file: path.join(tmp, 'kubeconfig.yaml') });

  const helper = (script: string): HarnessChild => {
    const child = spawnPinned(pin.harness, process.execPath, [...opts.harnessNodeArgs, path.join(__dirname, script)], { ipc: true });
    return { client: new IpcClient(child, script), pid: child.pid as number, child };
  };
  const sink = helper('sink.js');
  const gen = helper('loadgen.js');
  const sinkPort = await sink.client.call<number>('port');
  const scenarios = opts.scenarios.map(scenarioByName);
  const standard = opts.scenarios.every((n) => (STANDARD_SCENARIOS as readonly string[]).includes(n));

  const routelensBin = snapshotRoutelens(tmp);
  const probeEnv: CollectorEnv = { grpcPort: 4317, sinkPort, kubeconfig, adminPort: 8888, metricsPort: 8889 };
  const bare = ROUTELENS_PIPELINES.find((p) => p.name === 'bare') as RoutelensPipeline;
  const routelensPipeline =
    opts.only === 'otelcol' || !scenarios.some((sc) => sc.pipeline === 'full')
      ? (ROUTELENS_PIPELINES[0] as RoutelensPipeline)
      : await chooseRoutelensPipeline(routelensBin, opts.pipeline, probeEnv, tmp, log);
  const routelensPipelines: Record<PipelineShape, RoutelensPipeline> = { full: routelensPipeline, bare, why: ROUTELENS_WHY_PIPELINE };
  for (const shape of new Set(scenarios.map((sc) => sc.pipeline))) {
    log(`${shape} pipeline: routelens ${routelensPipelines[shape].describe}; otelcol ${OTELCOL_PIPELINE_DESCRIPTIONS[shape]}`);
  }
  if (scenarios.some((sc) => sc.signal !== 'traces'))
    log(`metrics and logs scenarios: both collectors ${SIGNAL_PIPELINE_DESCRIPTION}, one pipeline of the signal`);

  const h: Harness = {
    opts,
    gen: gen.client,
    genPid: gen.pid,
    sink: sink.client,
    sinkPid: sink.pid,
    sinkPort,
    kubeconfig,
    otelcolBin,
    telemetrygenBin: undefined,
    routelensBin,
    routelensPipelines,
    tmp,
    pin,
    helper,
    besideGens: new Map(),
  };
  /** What each request shape of the loadgen looks like, for the results header. */
  const workloads: Record<string, string> = {};
  let built: Built | undefined;
  const collectors: CollectorName[] = opts.only === undefined ? ['routelens', 'otelcol'] : [opts.only];
  const results: RunResult[] = [];
  const profileDir = opts.profile ? RESULTS : undefined;

  if (opts.harnessWarmupS > 0) {
    await warmHarness(h);
    log(`harness warmed up: ${opts.harnessWarmupS} s of generator → sink at saturation`);
  }

  for (const sc of scenarios) {
    if (sc.source === 'loadgen') {
      const b = await usePool(h, sc.spansPerRequest, genArgs(h, sc).concurrency, sc.signal);
      if (sc.spansPerRequest === SPANS_PER_REQUEST && sc.signal === 'traces') built = b;
      const key =
        sc.signal === 'traces'
          ? `loadgen ${sc.spansPerRequest} spans/request`
          : `loadgen Python ${sc.signal}, ${sc.spansPerRequest} ${sc.signal === 'metrics' ? 'points' : 'records'}/request`;
      if (workloads[key] === undefined) {
        workloads[key] =
          `${(b.requestBytes / 1024).toFixed(b.requestBytes < 10240 ? 1 : 0)} KiB, ${b.spanBytes.toFixed(0)} B/span, ${b.attributesPerSpan.toFixed(1)} attributes/span`;
        log(`workload: ${key}: ${workloads[key]}, ${b.routes} routes, ${SERVICES.length} services, ${PODS.length} pods`);
      }
    } else {
      const plan = telemetrygenPlan(sc);
      const key = `telemetrygen ${sc.spansPerRequest} spans/request`;
      workloads[key] ??=
        `traces of 1 CLIENT + 10 SERVER spans, 4 attributes/span; ${plan.processes} process(es) × ${plan.workersPerProcess} worker(s) at ${fmt(plan.ratePerWorker)} spans/s`;
    }
    if (opts.baseline) {
      const b = await runOne(h, 'direct', sc, 1);
      results.push(b);
      log(
        `${sc.label.padEnd(12)} baseline (${sc.source} → sink, no collector): accepted ${fmt(b.accepted_spans_per_s)}/s, delivered ${fmt(b.delivered_spans_per_s)}/s, ` +
          `lat p50/p99 ${fmt(b.added_latency_p50_ms)}/${fmt(b.added_latency_p99_ms)} ms, gen/sink core ${fmt(b.generator_core_utilisation)}/${fmt(b.sink_core_utilisation)}`,
      );
    }
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const c of collectors) {
        const r = await runOne(h, c, sc, rep, profileDir);
        results.push(r);
        log(
          `${sc.label.padEnd(12)} ${c.padEnd(9)} rep ${rep}: cpu ${fmt(r.cpu_s_per_million_spans)} s/M spans (${fmt(r.core_utilisation)} core, kernel ${fmt(r.cpu_system_share)}), ` +
            `accepted ${fmt(r.accepted_spans_per_s)}/s, delivered ${fmt(r.delivered_spans_per_s)}/s, lat p50/p99 ${fmt(r.added_latency_p50_ms)}/${fmt(r.added_latency_p99_ms)} ms, ` +
            `RSS ${fmt(r.rss_mib)} MiB, start-up ${fmt(r.startup_cpu_s)} CPU s, first ${fmt(r.first_window_s)} s ${fmt(r.first_cpu_s_per_million_spans)} s/M, ` +
            `warm-up ${fmt(r.warmup_s)} s / ${fmt(r.warmup_cpu_s)} CPU s, lost ${fmt(r.spans_lost)}, refused ${fmt(r.spans_refused)}, gen/sink core ${fmt(r.generator_core_utilisation)}/${fmt(r.sink_core_utilisation)}, ` +
            `run-queue wait collector ${fmt(r.collector_runqueue_wait)} harness ${fmt(r.harness_runqueue_wait)}, ` +
            `other load on CPU collector ${fmt(r.collector_core_foreign_load)} harness ${fmt(r.harness_core_foreign_load)}` +
            (c === 'routelens' ? `, pct err ${fmt(r.percentile_max_rel_error)} (${r.percentile_detail})` : '') +
            (r.last_error === '' ? '' : `, last error: ${r.last_error}`),
        );
      }
    }
  }

  await gen.client.call('stop').catch(() => undefined);
  gen.child.disconnect();
  for (const b of h.besideGens.values()) b.child.disconnect();
  sink.child.disconnect();
  await kube.close();
  machine.load_average_end = loadAverage();

  if (opts.profile) {
    const profiles = fs
      .readdirSync(RESULTS)
      .filter((f) => f.startsWith('routelens-') && f.endsWith('.cpuprofile'))
      .map((f) => path.join(RESULTS, f))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
    const latest = profiles[0];
    if (latest === undefined) throw new Error('no .cpuprofile was written (did routelens exit cleanly on SIGTERM?)');
    const text = summariseProfile(latest);
    console.log(`\n${text}`);
    fs.writeFileSync(path.join(RESULTS, 'profile-summary.txt'), `${text}\n`);
    fs.writeFileSync(path.join(RESULTS, 'profile-run.json'), `${JSON.stringify({ machine, options: opts, results }, null, 2)}\n`);
    if (!opts.keepTmp) fs.rmSync(tmp, { recursive: true, force: true });
    return;
  }

  const per: PerScenario = {};
  for (const sc of opts.scenarios) {
    per[sc] = {};
    for (const c of [...collectors, 'direct'] as RunTarget[]) {
      const a = aggregate(results, c, sc);
      if (a !== undefined) (per[sc] as Partial<Record<RunTarget, Record<string, number | null | string>>>)[c] = a;
    }
  }
  const command = `npm run bench --${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`.replace(/ --$/, '');
  const sat = scenarioByName('saturation');
  const options = {
    quick: opts.quick,
    reps: opts.reps,
    warmup_s: opts.warmupS,
    warmup_requests: opts.warmupRequests,
    warmup_max_s: opts.warmupMaxS,
    first_window_s: opts.firstWindowS,
    harness_warmup_s: opts.harnessWarmupS,
    measure_s: opts.measureS,
    pool_size: opts.poolSize,
    routelens_node_args: opts.routelensNodeArgs,
    harness_node_args: opts.harnessNodeArgs,
    saturation_streams: `${genArgs(h, sat).channels}x${genArgs(h, sat).concurrency}`,
  };
  // Only a run of both collectors is "the latest result"; partial runs (--only) go elsewhere (bench/.gitignore).
  const partial = opts.only === undefined ? '' : `partial-${opts.only}-`;
  if (!standard) {
    const pairs: ShapesFile['pairs'] = {};
    for (const sc of opts.scenarios) {
      pairs[sc] = { cpu: pairRatios(results, sc, (r) => r.cpu_s_per_million_spans), rss: pairRatios(results, sc, (r) => r.rss_mib) };
    }
    const pipelines: Record<string, string> = {};
    for (const shape of new Set(scenarios.map((sc) => sc.pipeline))) {
      pipelines[shape] = `routelens ${routelensPipelines[shape].describe}, otelcol ${OTELCOL_PIPELINE_DESCRIPTIONS[shape]}`;
    }
    const out: ShapesFile & { runs: RunResult[] } = {
      generated_at: new Date().toISOString(),
      command,
      machine,
      options,
      workloads,
      pipelines,
      scenarios: per,
      pairs,
      runs: results,
    };
    const jsonFile = path.join(RESULTS, opts.only === undefined ? 'shapes-latest.json' : `${partial}shapes.json`);
    fs.writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
    const md = shapesMarkdown(out);
    console.log(`\n${md.header}\n\n${md.table}\n\n${table(per, opts.scenarios)}\n\nwritten: ${path.relative(ROOT, jsonFile)}`);
    if (opts.writeMd && opts.only === undefined) writeShapesMd(md);
  } else {
    const rl = summarise(results, 'routelens', routelensPipeline.name);
    const oc = summarise(results, 'otelcol', 'full');
    const ratios: Record<string, number | null> = {};
    for (const k of SUMMARY_FIGURES) ratios[k] = ratio(rl?.[k], oc?.[k]);
    const b = built as Built;
    const out = {
      generated_at: new Date().toISOString(),
      command,
      machine,
      options,
      workload: {
        spans_per_request: SPANS_PER_REQUEST,
        bytes_per_span: round(b.spanBytes, 0),
        attributes_per_span: round(b.attributesPerSpan, 1),
        routes: b.routes,
        services: SERVICES.length,
        pods: PODS.length,
      },
      pipelines: { routelens: `${routelensPipeline.name}: ${routelensPipeline.describe}`, otelcol: OTELCOL_PIPELINE_DESCRIPTIONS.full },
      summary_basis: SUMMARY_BASIS,
      routelens: rl ?? null,
      otelcol: oc ?? null,
      ratios,
      scenarios: per,
      runs: results,
    };
    const jsonFile = path.join(RESULTS, opts.only === undefined ? 'latest.json' : `partial-${opts.only}.json`);
    fs.writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);
    const md = resultsMarkdown(out);
    console.log(`\n${md.header}\n\n${md.headline}\n\n${md.detail}\n\nwritten: ${path.relative(ROOT, jsonFile)}`);
    if (opts.writeMd && opts.only === undefined) writeBenchmarksMd(md);
  }
  // Configs, collector logs and the routelens snapshot; kept on failure and with --keep-tmp.
  if (opts.keepTmp) log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  log('done');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
