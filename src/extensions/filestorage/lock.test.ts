import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { waitFor } from '../../../test/support/free-port';
import { FileQueueStore } from './file-queue';
import { LOCK_FILE, acquireLock, formatLock, judgeLock, parseLock, processFacts, releaseLock, type LockOwner } from './lock';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
const children: ChildProcess[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-lock-'));
  dirs.push(d);
  return d;
}

function capture(): { logger: pino.Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const out = new Writable({
    write: (c: Buffer, _e, cb) => {
      for (const line of c.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, out), logs };
}

/** A process that runs until killed (`sleep`), or with `zombie`, the pid of its exited, never reaped child. */
async function sleeper(opts: { zombie?: boolean } = {}): Promise<{ proc: ChildProcess; pid: number }> {
  const script = opts.zombie === true ? 'sleep 0 & echo $!; exec sleep 60' : 'echo $$; exec sleep 60';
  const proc = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(proc);
  const pid = await new Promise<number>((resolve) => proc.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  if (opts.zombie === true) await waitFor(async () => (processFacts(pid).alive ? undefined : true), { timeoutMs: 5000, what: 'a zombie' });
  return { proc, pid };
}

/** test/support/queue-holder.ts: a cluster primary and a worker holding the queue in `dir`. */
async function queueHolder(dir: string, records: number): Promise<{ primary: ChildProcess; primaryPid: number; worker: number }> {
  const script = path.resolve(__dirname, '../../../test/support/queue-holder.js');
  const primary = spawn(process.execPath, [script, dir, String(records)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(primary);
  const line = await new Promise<string>((resolve, reject) => {
    primary.stdout?.once('data', (d: Buffer) => resolve(d.toString()));
    primary.once('exit', (code) => reject(new Error(`queue-holder exited with ${code}`)));
  });
  const { primary: primaryPid, worker } = JSON.parse(line) as { primary: number; worker: number };
  return { primary, primaryPid, worker };
}

/** A queue holder whose worker blocks its event loop, then whose primary is killed -9: a busy orphan. */
async function orphanBusy(dir: string, records: number): Promise<{ primaryPid: number; worker: number }> {
  const h = await queueHolder(dir, records);
  process.kill(h.worker, 'SIGUSR2');
  await waitFor(async () => (fs.existsSync(`${dir}.blocked`) ? true : undefined), { timeoutMs: 10_000, intervalMs: 10, what: 'the worker to block' });
  h.primary.kill('SIGKILL');
  await new Promise((resolve) => h.primary.once('exit', resolve));
  return h;
}

function settle<T>(p: Promise<T>): { state: () => 'pending' | 'resolved' | 'rejected'; value: Promise<T> } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  return { state: () => state, value: p };
}

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('file_storage LOCK', () => {
  const self: LockOwner = { pid: process.pid, start: processFacts(process.pid).start ?? 0, primary: 0 };

  it('writes pid, start time and primary, and reads them back; a bare pid (older routelens) is read too', () => {
    const o = { pid: 4242, start: 987654, primary: 17 };
    expect(formatLock(o)).to.equal('pid=4242 start=987654 primary=17\n');
    expect(parseLock(formatLock(o))).to.deep.equal(o);
    expect(parseLock('4242\n')).to.deep.equal({ pid: 4242, start: 0, primary: 0 });
    for (const bad of ['', '0', 'garbage', 'pid=12 start=x primary=0', 'pid=0 start=1 primary=0']) expect(parseLock(bad), bad).to.equal(undefined);
  });

  it('reads this process from /proc: alive, its parent, a start time', () => {
    const f = processFacts(process.pid);
    expect(f).to.deep.include({ alive: true, ppid: process.ppid });
    expect(f.start).to.be.a('number').greaterThan(0);
  });

  it('takes over from nobody, a gone pid, a zombie, our own pid, and a pid reused by another process', async () => {
    expect(judgeLock(undefined, self)).to.deep.equal({ kind: 'free', why: 'no lock' });
    expect(judgeLock({ pid: 999_999_999, start: 0, primary: 0 }, self).kind).to.equal('free');
    expect(judgeLock({ pid: process.pid, start: 1, primary: 0 }, self)).to.deep.equal({ kind: 'free', why: 'our own pid' });
    const zombie = await sleeper({ zombie: true });
    expect(judgeLock({ pid: zombie.pid, start: 0, primary: 0 }, self)).to.deep.equal({ kind: 'free', why: 'holder is gone' });
    const live = await sleeper();
    const start = processFacts(live.pid).start as number;
    expect(judgeLock({ pid: live.pid, start: start + 1, primary: 0 }, self)).to.deep.equal({ kind: 'free', why: 'pid reused by another process' });
    // The same process: another routelens using the directory.
    expect(judgeLock({ pid: live.pid, start, primary: 0 }, self).kind).to.equal('held');
    expect(judgeLock({ pid: live.pid, start: 0, primary: 0 }, self).kind).to.equal('held');
    // A worker whose recorded primary is still its parent is running; one whose parent changed is an orphan.
    expect(judgeLock({ pid: live.pid, start, primary: process.pid }, self).kind).to.equal('held');
    expect(judgeLock({ pid: live.pid, start, primary: 999_999_999 }, self).kind).to.equal('going-away');
    // Without /proc facts, an orphan is known by its primary being gone.
    const noProc = (pid: number): { alive: boolean } => ({ alive: pid === live.pid });
    expect(judgeLock({ pid: live.pid, start, primary: 999_999_999 }, self, noProc).kind).to.equal('going-away');
    expect(judgeLock({ pid: live.pid, start, primary: 0 }, self, noProc).kind).to.equal('held');
  });

  it('refuses at once a queue a live routelens holds, naming its pid', async () => {
    const dir = tmpDir();
    const live = await sleeper();
    fs.writeFileSync(path.join(dir, LOCK_FILE), formatLock({ pid: live.pid, start: processFacts(live.pid).start as number, primary: 0 }));
    const { logger, logs } = capture();
    const err = await acquireLock(dir, { timeoutMs: 60_000, logger, owner: self }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.equal(
      `file_storage queue ${dir} is in use by process ${live.pid} (remove ${path.join(dir, LOCK_FILE)} if that process is not routelens)`,
    );
    expect(logs).to.deep.equal([]);
  });

  it('releases only its own lock', async () => {
    const dir = tmpDir();
    const mine = await acquireLock(dir, { timeoutMs: 0, logger: silent, owner: self });
    expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).to.equal(formatLock(self));
    fs.writeFileSync(path.join(dir, LOCK_FILE), formatLock({ pid: 1, start: 5, primary: 0 }));
    releaseLock(dir, mine);
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).to.equal(true);
    fs.writeFileSync(path.join(dir, LOCK_FILE), formatLock(self));
    releaseLock(dir, mine);
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).to.equal(false);
  });

  describe('a --workers worker holding the queue (test/support/queue-holder.ts)', function () {
    this.timeout(30_000);

    it('while its primary lives: refused at once', async () => {
      const dir = path.join(tmpDir(), 'queue');
      const h = await queueHolder(dir, 3);
      expect(parseLock(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).to.deep.include({ pid: h.worker, primary: h.primaryPid });
      const err = await FileQueueStore.open({ dir, fsync: false, maxBytes: 0, logger: silent }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).to.match(new RegExp(`in use by process ${h.worker} `));
    });

    it('after kill -9 of its primary, a starter waits for the orphan (logged with its pid), then takes over what it persisted', async () => {
      const dir = path.join(tmpDir(), 'queue');
      const h = await orphanBusy(dir, 5);

      const { logger, logs } = capture();
      const opening = settle(FileQueueStore.open({ dir, fsync: false, maxBytes: 0, logger, lockTimeoutMs: 60_000 }));
      await waitFor(async () => (logs.some((l) => l.holder === h.worker) ? true : undefined), { timeoutMs: 10_000, intervalMs: 10, what: 'the waiting log' });
      expect(logs[0]).to.deep.include({
        level: 40,
        dir,
        holder: h.worker,
        holder_primary: h.primaryPid,
        timeout_ms: 60_000,
        msg: 'The queue is held by a routelens worker whose primary is gone; waiting for it to stop',
      });
      // The orphan is blocked: nothing it holds can be taken yet.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(opening.state()).to.equal('pending');
      expect(processFacts(h.worker).alive).to.equal(true);

      fs.writeFileSync(`${dir}.release`, '');
      const q = await opening.value;
      expect(processFacts(h.worker).alive, 'the orphan exited once it saw its primary gone').to.equal(false);
      expect(q.recovered).to.equal(5);
      expect(logs[1]).to.deep.include({ level: 30, holder: h.worker, msg: 'The worker holding the queue has stopped; took the queue over' });
      expect(logs.map((l) => l.msg)).to.deep.equal([
        'The queue is held by a routelens worker whose primary is gone; waiting for it to stop',
        'The worker holding the queue has stopped; took the queue over',
        'Recovered queued data from disk',
      ]);
      expect(parseLock(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).to.deep.include({ pid: process.pid, primary: 0 });
      await q.close();
    });

    it('gives up after `timeout` on an orphan that does not stop, naming it', async () => {
      const dir = path.join(tmpDir(), 'queue');
      const h = await orphanBusy(dir, 1);
      const err = await FileQueueStore.open({ dir, fsync: false, maxBytes: 0, logger: silent, lockTimeoutMs: 300 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).to.equal(
        `file_storage queue ${dir} is still held by process ${h.worker}, a routelens worker whose primary (process ${h.primaryPid}) is gone, after waiting 300 ms (see the file_storage timeout key)`,
      );
      expect(processFacts(h.worker).alive).to.equal(true);
      // Not opened: the lock is still the orphan's.
      expect(parseLock(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).to.deep.include({ pid: h.worker });
      fs.writeFileSync(`${dir}.release`, '');
    });
  });
});
