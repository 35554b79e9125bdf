/** What bench/run.ts and bench/compare-builds.ts read of processes and CPUs, and how they start a routelens bin. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Clock ticks per second of /proc/PID/stat and /proc/stat times. */
export const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** CPU seconds of a process (all threads): user + kernel, or kernel alone with `system`. */
export function cpuSeconds(pid: number, system = false): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return ((system ? 0 : Number(fields[11])) + Number(fields[12])) / CLK_TCK;
}

/** Busy and steal seconds of one CPU from /proc/stat (busy = user + nice + system + irq + softirq + steal). */
export function cpuBusySeconds(cpu: string): { busy: number; steal: number } {
  const line = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) return { busy: NaN, steal: NaN };
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return { busy: (user + nice + system + irq + softirq + steal) / CLK_TCK, steal: steal / CLK_TCK };
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function tcpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** The node flags of a script's `#!/usr/bin/env -S node …` line. */
export function shebangNodeFlags(script: string): string[] {
  const first = fs.readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!.*\bnode((?:\s+--[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  return m === null
    ? []
    : (m[1] ?? '')
        .trim()
        .split(/\s+/)
        .filter((f) => f !== '');
}
