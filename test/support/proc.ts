/**
 * What Linux says about a process, sampled over time: CPU seconds (utime + stime of /proc/<pid>/stat), RSS
 * (VmRSS of /proc/<pid>/status), threads and open file descriptors, each sample with its wall-clock time.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface ProcSample {
  timeMs: number;
  cpuSeconds: number;
  rssBytes: number;
  threads: number;
  fds: number;
}

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime and stime. */
function ticksPerSecond(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return clockTicks;
}

export function readProc(pid: number): ProcSample {
  const timeMs = Date.now();
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start after the last ')': state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { timeMs, cpuSeconds, rssBytes: kb('VmRSS') * 1024, threads: kb('Threads'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

/** Samples a process every `everyMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    everyMs = 100,
  ) {
    this.samples.push(readProc(pid));
    this.#timer = setInterval(() => {
      try {
        this.samples.push(readProc(pid));
      } catch {
        // the process is gone
      }
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** CPU seconds at `timeMs`, interpolated between the samples around it. */
  cpuAt(timeMs: number): number {
    const s = this.samples;
    let i = 1;
    while (i < s.length - 1 && (s[i] as ProcSample).timeMs < timeMs) i++;
    const a = s[i - 1] as ProcSample;
    const b = s[i] as ProcSample;
    if (b.timeMs === a.timeMs) return b.cpuSeconds;
    return a.cpuSeconds + ((b.cpuSeconds - a.cpuSeconds) * (timeMs - a.timeMs)) / (b.timeMs - a.timeMs);
  }

  /** The sample taken closest to `timeMs`. */
  nearest(timeMs: number): ProcSample {
    let best = this.samples[0] as ProcSample;
    for (const s of this.samples) if (Math.abs(s.timeMs - timeMs) < Math.abs(best.timeMs - timeMs)) best = s;
    return best;
  }
}
