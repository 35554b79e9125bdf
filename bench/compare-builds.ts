/**
 * `node dist/bench/compare-builds.js [options] NAME=DIR NAME=DIR …`: routelens builds side by side (a regression
 * hunt, a change against main), alternating, each alone on CPU 1 under the same 512-span load from CPU 0. DIR is a
 * built checkout (`bin/`, `dist/src/`, `proto/`), e.g. a `git worktree` of another commit. The generator, sink and
 * fake Kubernetes API are this checkout's; the config is the standard `full` pipeline (without its `analysis` line
 * for builds older than trace analysis). Per run: CPU while idle before any load (ms per s), then CPU per million
 * spans delivered over windows of the load measured from its start (0-5, 5-10, 10-30, 30-60, 60-90, 90-120 s,
 * those within --load): the first ones are start-up compilation, the later ones steady cost. CPU is the
 * process's time on CPU (schedstat, all threads); `main` is its main thread's and `sys` its kernel time, both per
 * million spans; `other` is the rest of CPU 1's busy time in cores (other processes, when the machine is shared).
 *
 *   --reps N          alternating rounds (default 3; the order reverses every other round)
 *   --load S          seconds of load per run (default 60)
 *   --idle S          seconds measured idle before the load (default 5)
 *   --scenario NAME   rate10k (default), rate50k, saturation, or a metrics/logs scenario (metrics10k, logs10k, …:
 *                     the pipeline is then otlp → k8sattributes → otlp/sink for that signal, and "spans" count its
 *                     data points or log records)
 *   --node-args "…"   extra node flags for routelens; NAME in them becomes <build>-<rep>, e.g.
 *                     "--cpu-prof --cpu-prof-dir=/tmp/p --cpu-prof-name=NAME.cpuprofile"
 *   --keep-tmp        keep the configs and routelens logs (e.g. with --node-args --trace-gc) and print where
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeKubeApi } from '../test/support/fake-kube-api';
import { workloadKubeObjects } from './kube-objects';
import { freePorts } from '../test/support/free-port';
import { ROUTELENS_PIPELINES, routelensSignalYaml, type CollectorEnv } from './configs';
import { IpcClient } from './ipc';
import type { StartArgs } from './loadgen';
import type { SinkStats } from './sink';
import { scenarioByName } from './scenarios';
import { CLK_TCK, cpuBusySeconds, cpuSeconds, shebangNodeFlags, tcpReady } from './proc';

/** Clock ticks per second of /proc/PID/stat and /proc/stat times. */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** User + kernel ticks of the main thread (tid = pid). */
function mainThreadTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
/** Nanoseconds on CPU of all threads (schedstat: finer than ticks). */
function schedNs(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* gone */
    }
  }
  return ns;
}
const kids = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of kids) if (c.exitCode === null) c.kill('SIGKILL');
});
process.on('SIGTERM', () => process.exit(143));
function spawnPinned(cpu: string, cmd: string, args: string[], ipc: boolean, log?: string, cwd?: string): ChildProcess {
  const out = log === undefined ? 'inherit' : fs.openSync(log, 'a');
  const c = spawn('taskset', ['-c', cpu, cmd, ...args], { cwd, stdio: ipc ? ['ignore', out, out, 'ipc'] : ['ignore', out, out] });
  if (typeof out === 'number') fs.closeSync(out);
  kids.add(c);
  c.on('exit', () => kids.delete(c));
  return c;
}
async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const e = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 15000);
  await e;
  clearTimeout(t);
}
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let reps = 3;
  let loadS = 60;
  let idleS = 5;
  let rate = 'rate10k';
  let extraNodeArgs: string[] = [];
  let keepTmp = false;
  const cands: { name: string; dir: string; yaml?: (e: CollectorEnv) => string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--reps') reps = Number(argv[++i]);
    else if (a === '--load') loadS = Number(argv[++i]);
    else if (a === '--idle') idleS = Number(argv[++i]);
    else if (a === '--scenario') rate = argv[++i] as string;
    else if (a === '--keep-tmp') keepTmp = true;
    else if (a === '--node-args') extraNodeArgs = (argv[++i] as string).split(' ').filter((x) => x !== '');
    else {
      const m = /^([^=-][^=]*)=(.+)$/.exec(a);
      if (m === null) throw new Error(`unknown argument ${a}: expected an option or NAME=DIR`);
      cands.push({ name: m[1] as string, dir: path.resolve(m[2] as string) });
    }
  }
  if (cands.length === 0) throw new Error('give at least one build: NAME=DIR');
  const sc = scenarioByName(rate);
  const signal = sc.signal;
  spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-compare-'));
  const kube = await FakeKubeApi.start();
  const objs = workloadKubeObjects();
  for (const ns of objs.namespaces) kube.add('namespaces', ns);
  for (const rs of objs.replicaSets) kube.add('replicasets', rs);
  for (const p of objs.pods) kube.addPod(p);
  const kubeconfig = kube.writeKubeconfig({ file: path.join(tmp, 'kubeconfig.yaml') });
  const helper = (script: string): { client: IpcClient; pid: number; child: ChildProcess } => {
    const child = spawnPinned('0', process.execPath, ['--no-memory-reducer', path.join(__dirname, script)], true);
    return { client: new IpcClient(child, script), pid: child.pid as number, child };
  };
  const sink = helper('sink.js');
  const gen = helper('loadgen.js');
  const sinkPort = await sink.client.call<number>('port');
  const full = ROUTELENS_PIPELINES.find((p) => p.name === 'full');
  if (full === undefined) throw new Error('no full pipeline');
  for (const c of cands) {
    if (signal !== 'traces') {
      c.yaml = (e: CollectorEnv) => routelensSignalYaml(e, signal);
      continue;
    }
    const probe: CollectorEnv = { grpcPort: 4317, sinkPort, kubeconfig, adminPort: 8888, metricsPort: 8889 };
    const bin = path.join(c.dir, 'bin', 'routelens.js');
    for (const y of [full.yaml, (e: CollectorEnv) => full.yaml(e).replace(/^\s*analysis: \{ enabled: false \}\n/m, '')]) {
      const f = path.join(tmp, `v-${c.name}.yaml`);
      fs.writeFileSync(f, y(probe));
      const r = spawnSync(process.execPath, [bin, 'validate', '--config', f], { encoding: 'utf8' });
      if (r.status === 0) {
        c.yaml = y;
        break;
      }
      console.log(`${c.name}: config variant rejected: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
    }
    if (c.yaml === undefined) throw new Error(`${c.name}: no config validates`);
  }
  // The harness's own compilation before the first run: generator → sink at saturation for 3 s.
  await gen.client.call('build', { poolSize: 64, seed: 42, spansPerRequest: sc.spansPerRequest, ...(signal === 'traces' ? {} : { signal }) });
  const sat = scenarioByName('saturation');
  await sink.client.call('reset');
  await gen.client.call('reset');
  await gen.client.call('start', { ...sat.gen, target: `127.0.0.1:${sinkPort}` } satisfies StartArgs);
  await sleep(3000);
  await gen.client.call('stop');
  const windows: [number, number][] = (
    [
      [0, 5],
      [5, 10],
      [10, 30],
      [30, 60],
      [60, 90],
      [90, 120],
    ] as [number, number][]
  ).filter((w) => w[1] <= loadS);
  const rows: Record<string, number[][]> = {};
  const idle: Record<string, number[]> = {};
  for (let rep = 1; rep <= reps; rep++) {
    const order = rep % 2 === 1 ? cands : [...cands].reverse();
    for (const c of order) {
      const [grpcPort, adminPort, metricsPort] = (await freePorts(3)) as [number, number, number];
      const env: CollectorEnv = { grpcPort, sinkPort, kubeconfig, adminPort, metricsPort };
      const cfg = path.join(tmp, `${c.name}-${rep}.yaml`);
      fs.writeFileSync(cfg, (c.yaml as (e: CollectorEnv) => string)(env));
      const bin = path.join(c.dir, 'bin', 'routelens.js');
      const log = path.join(tmp, `${c.name}-${rep}.log`);
      const child = spawnPinned(
        '1',
        process.execPath,
        [...shebangNodeFlags(bin), ...extraNodeArgs.map((x) => x.replace('NAME', `${c.name}-${rep}`)), bin, 'run', '--config', cfg, '--workers', '1'],
        false,
        log,
        c.dir,
      );
      const pid = child.pid as number;
      const t0 = Date.now();
      while (!(await tcpReady(grpcPort))) {
        if (child.exitCode !== null) throw new Error(`${c.name} exited; ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
        if (Date.now() - t0 > 60000) throw new Error('no listen');
        await sleep(50);
      }
      await sleep(3000);
      const i0 = schedNs(pid);
      await sleep(idleS * 1000);
      const idleMsPerS = (schedNs(pid) - i0) / 1e6 / idleS;
      await sink.client.call('reset');
      await gen.client.call('reset');
      await gen.client.call('start', { ...sc.gen, target: `127.0.0.1:${grpcPort}` } satisfies StartArgs);
      const ls = Date.now();
      const samples: { t: number; ns: number; spans: number; mt: number; busy: number; s: number }[] = [];
      const sample = async (): Promise<void> => {
        const st = await sink.client.call<SinkStats>('stats');
        samples.push({
          t: (Date.now() - ls) / 1000,
          ns: schedNs(pid),
          spans: st.spans,
          mt: mainThreadTicks(pid),
          busy: cpuBusySeconds('1').busy,
          s: cpuSeconds(pid, true),
        });
      };
      await sample();
      for (const [, end] of windows) {
        while (Date.now() - ls < end * 1000) await sleep(Math.min(500, end * 1000 - (Date.now() - ls)));
        await sample();
      }
      await gen.client.call('stop');
      await stop(child);
      const per: number[] = [];
      let line = `${c.name.padEnd(10)} rep ${rep}: idle ${idleMsPerS.toFixed(2)} ms/s`;
      for (let w = 0; w < windows.length; w++) {
        const a = samples[w] as (typeof samples)[number];
        const b = samples[w + 1] as (typeof samples)[number];
        const spans = b.spans - a.spans;
        const cpu = (b.ns - a.ns) / 1e9;
        const perM = cpu / (spans / 1e6);
        const foreign = (b.busy - a.busy - cpu) / (b.t - a.t);
        per.push(perM);
        line += ` | ${windows[w]?.[0]}-${windows[w]?.[1]}s: ${perM.toFixed(3)} s/M (${(spans / (b.t - a.t)).toFixed(0)} sp/s, main ${(((b.mt - a.mt) / CLK_TCK / (spans / 1e6)) as number).toFixed(2)}, sys ${(((b.s - a.s) / (spans / 1e6)) as number).toFixed(2)}, other ${foreign.toFixed(2)} core)`;
      }
      console.log(line);
      (rows[c.name] ??= []).push(per);
      (idle[c.name] ??= []).push(idleMsPerS);
    }
  }
  console.log('\nmedians:');
  for (const c of cands) {
    const r = rows[c.name] ?? [];
    console.log(
      `${c.name.padEnd(10)} idle ${median(idle[c.name] ?? []).toFixed(2)} ms/s | ` +
        windows
          .map((w, i) => `${w[0]}-${w[1]}s ${median(r.map((x) => x[i] as number)).toFixed(3)} s/M [${r.map((x) => (x[i] as number).toFixed(2)).join(' ')}]`)
          .join(' | '),
    );
  }
  gen.child.disconnect();
  sink.child.disconnect();
  await kube.close();
  if (keepTmp) console.log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
