/**
 * The `LOCK` file of a persistent queue directory: which process uses the queue, and whether a process that
 * finds it held may take over, must wait, or must refuse. The protocol is described in README.md ("The LOCK
 * file"); in short:
 *
 * - The holder writes one line `pid=<pid> start=<start> primary=<pid>`: its pid, its start time (clock ticks
 *   since boot, from /proc; 0 where unknown) and, for a `--workers` worker, the pid of its primary (else 0).
 * - A starter takes over a lock whose holder is gone: no such process, a zombie, or a pid now used by another
 *   process (its start time differs, as after a container restart reuses pids).
 * - It waits (bounded) for a holder that is going away: a worker whose primary is gone. Workers stop at once
 *   when their primary disconnects, and the kernel re-parents an orphan the instant its primary dies, so the
 *   starter sees this before the orphan has run a line of JavaScript and without the orphan writing anything.
 * - Any other live holder is another routelens using the directory: refused at once.
 */
import cluster from 'node:cluster';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';

export const LOCK_FILE = 'LOCK';

/** What a LOCK file says about its holder. */
export interface LockOwner {
  pid: number;
  /** Start time of the process, clock ticks since boot (field 22 of /proc/<pid>/stat); 0 when unknown. */
  start: number;
  /** For a `--workers` worker, the pid of its primary; 0 for a process that runs on its own. */
  primary: number;
}

/** What can be known of a process: whether it runs, and on Linux its parent and start time. */
export interface ProcessFacts {
  alive: boolean;
  ppid?: number;
  start?: number;
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Facts about `pid` from /proc where there is one, else from `kill(pid, 0)` (which counts a zombie as alive). */
export function processFacts(pid: number): ProcessFacts {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { alive: signalable(pid) };
  }
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X' || state === 'x') return { alive: false };
  const ppid = Number(fields[1]);
  const start = Number(fields[19]);
  return { alive: true, ...(Number.isInteger(ppid) ? { ppid } : {}), ...(Number.isInteger(start) ? { start } : {}) };
}

/** This process as a lock holder. A worker whose primary is already gone refuses to take a queue. */
export function currentOwner(): LockOwner {
  let primary = 0;
  if (cluster.isWorker) {
    if (!process.connected) throw new Error('the primary of this worker is gone; not opening a persistent queue a successor will use');
    primary = process.ppid;
  }
  return { pid: process.pid, start: processFacts(process.pid).start ?? 0, primary };
}

export function formatLock(o: LockOwner): string {
  return `pid=${o.pid} start=${o.start} primary=${o.primary}\n`;
}

/** Parse a LOCK file's text; a bare pid (older routelens) is accepted. Undefined when it names no process. */
export function parseLock(text: string): LockOwner | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) > 0 ? { pid: Number(t), start: 0, primary: 0 } : undefined;
  const m = /^pid=(\d+) start=(\d+) primary=(\d+)$/.exec(t);
  if (m === null || Number(m[1]) <= 0) return undefined;
  return { pid: Number(m[1]), start: Number(m[2]), primary: Number(m[3]) };
}

export type LockVerdict =
  /** No holder, or one that is gone: take the lock. */
  | { kind: 'free'; why: string }
  /** A worker whose primary is gone: it stops on its own; wait for it. */
  | { kind: 'going-away'; holder: LockOwner }
  /** Another routelens uses the queue. */
  | { kind: 'held'; holder: LockOwner };

/** Decide what a starter (`self`) may do about the lock `holder` left. */
export function judgeLock(holder: LockOwner | undefined, self: Pick<LockOwner, 'pid'>, facts: (pid: number) => ProcessFacts = processFacts): LockVerdict {
  if (holder === undefined) return { kind: 'free', why: 'no lock' };
  // Our own pid in a lock means a previous run in a fresh pid namespace (a restarted container).
  if (holder.pid === self.pid) return { kind: 'free', why: 'our own pid' };
  const f = facts(holder.pid);
  if (!f.alive) return { kind: 'free', why: 'holder is gone' };
  if (holder.start > 0 && f.start !== undefined && f.start !== holder.start) return { kind: 'free', why: 'pid reused by another process' };
  if (holder.primary > 0) {
    const orphaned = f.ppid !== undefined ? f.ppid !== holder.primary : !facts(holder.primary).alive;
    if (orphaned) return { kind: 'going-away', holder };
  }
  return { kind: 'held', holder };
}

function readLock(file: string): LockOwner | undefined {
  try {
    return parseLock(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface AcquireOptions {
  /** How long to wait for a holder that is going away. */
  timeoutMs: number;
  logger: Logger;
  /** Delay between looks at a holder that is going away. @default 50 */
  pollMs?: number;
  /** Who takes the lock. @default currentOwner() */
  owner?: LockOwner;
}

/**
 * Take the LOCK of `dir` (which must exist): at once when free, after waiting for a holder that is going away
 * (at most `timeoutMs`), never while another routelens holds it. Resolves with the owner written.
 */
export async function acquireLock(dir: string, o: AcquireOptions): Promise<LockOwner> {
  const self = o.owner ?? currentOwner();
  const file = path.join(dir, LOCK_FILE);
  const started = Date.now();
  let waitingFor: LockOwner | undefined;
  for (;;) {
    const verdict = judgeLock(readLock(file), self);
    if (verdict.kind === 'held') {
      throw new Error(`file_storage queue ${dir} is in use by process ${verdict.holder.pid} (remove ${file} if that process is not routelens)`);
    }
    if (verdict.kind === 'free') {
      // Written whole and renamed, so a starter never reads a half-written lock.
      const tmp = `${file}.${self.pid}.tmp`;
      fs.writeFileSync(tmp, formatLock(self));
      fs.renameSync(tmp, file);
      if (waitingFor !== undefined) {
        o.logger.info({ dir, holder: waitingFor.pid, waited_ms: Date.now() - started }, 'The worker holding the queue has stopped; took the queue over');
      }
      return self;
    }
    const h = verdict.holder;
    if (waitingFor?.pid !== h.pid) {
      waitingFor = h;
      o.logger.warn(
        { dir, holder: h.pid, holder_primary: h.primary, timeout_ms: o.timeoutMs },
        'The queue is held by a routelens worker whose primary is gone; waiting for it to stop',
      );
    }
    if (Date.now() - started >= o.timeoutMs) {
      throw new Error(
        `file_storage queue ${dir} is still held by process ${h.pid}, a routelens worker whose primary (process ${h.primary}) is gone, after waiting ${o.timeoutMs} ms (see the file_storage timeout key)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 50));
  }
}

/** Remove the LOCK of `dir` if it still names `owner`. */
export function releaseLock(dir: string, owner: LockOwner): void {
  const file = path.join(dir, LOCK_FILE);
  const now = readLock(file);
  if (now !== undefined && (now.pid !== owner.pid || now.start !== owner.start)) return;
  fs.rmSync(file, { force: true });
}
