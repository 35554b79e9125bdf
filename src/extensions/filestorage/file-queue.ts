/**
 * A persistent, crash-safe exporter queue in one directory:
 *
 * - `<seq>.seg`: append-only segment files of checksummed records (see record.ts), named after the sequence
 *   number of their first record. A new segment starts when the current one would exceed `segmentBytes`;
 *   a segment is deleted once every record in it is acknowledged.
 * - `acks`: the acknowledgement journal, one 12-byte entry per delivered (or dropped) record: sequence number
 *   and its CRC-32. Records are delivered by several senders at once, so acknowledgements arrive out of order
 *   and a single cursor could not describe them.
 * - `cursor`: every record below this sequence number is acknowledged (8 bytes + CRC-32), written with
 *   write-temp-then-rename; it lets the journal be compacted to the entries of live segments.
 * - `LOCK`: the process using the queue (lock.ts).
 *
 * `push` resolves once the record is written (and, with `fsync`, flushed to the device), so a receiver
 * answers its client only when the data would survive the process dying. After a crash, start-up replays
 * every record that is neither below the cursor nor in the journal; a record whose checksum fails (a torn
 * tail, flipped bits) is skipped and counted, never fatal. Delivery is at least once: a record delivered but
 * whose acknowledgement did not reach the journal before a crash is sent again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { PipelineError } from '../../core/errors';
import type { QueueItem, QueueStore } from '../../core/storage';
import { bodyBytes } from '../../core/storage';
import { crc32 } from './crc32';
import { acquireLock, releaseLock, type LockOwner } from './lock';
import { HEADER_BYTES, encodeHeader, recordAt, scanRecords } from './record';

/** Low-level writes, replaceable in tests to simulate a full disk. */
export interface QueueIo {
  /** Write all of `buffers` at `position` of `fd` (a short write is continued, an error rejects). */
  write(fd: number, buffers: Buffer[], position: number | null): Promise<void>;
  datasync(fd: number): Promise<void>;
}

function writeAll(fd: number, buffers: Buffer[], position: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    const step = (bufs: Buffer[], pos: number | null, left: number): void => {
      fs.writev(fd, bufs, pos, (err, written) => {
        if (err) return reject(err);
        if (written >= left) return resolve();
        // Short write: continue after the bytes that made it.
        let skip = written;
        const rest: Buffer[] = [];
        for (const b of bufs) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        step(rest, pos === null ? null : pos + written, left - written);
      });
    };
    step(buffers, position, total);
  });
}

export const nodeQueueIo: QueueIo = {
  write: writeAll,
  datasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
};

export interface FileQueueOptions {
  /** Directory of this queue (created if missing). */
  dir: string;
  /** fdatasync segment and journal writes before `push` / `ack` resolve. */
  fsync: boolean;
  /** Refuse pushes that would grow the queue's files beyond this many bytes (0: no limit). */
  maxBytes: number;
  /** Size at which a new segment file is started. @default 8 MiB */
  segmentBytes?: number;
  /** Compact the ack journal when it holds more than this many entries beyond the live ones. @default 4096 */
  journalSlack?: number;
  logger: Logger;
  /** How long to wait for a LOCK held by a routelens worker that is going away (lock.ts). @default 10 s */
  lockTimeoutMs?: number;
  /** Called with the number of damaged records or journal entries skipped. */
  onCorrupt?: (n: number) => void;
  /** Called when the queue is closed. */
  onClose?: () => void;
  io?: QueueIo;
}

interface Segment {
  /** Sequence number of its first record; also its file name. */
  id: number;
  file: string;
  fd: number;
  /** Bytes written or reserved for writes in flight. */
  size: number;
  /** Records not yet acknowledged (pending or in flight). */
  outstanding: number;
  /** Writes not yet completed. */
  writing: number;
  /** No more appends (a newer segment exists). */
  sealed: boolean;
  /** Acknowledged sequence numbers of this segment (kept for journal compaction). */
  acked: number[];
  syncQueued?: Promise<void> | undefined;
  syncRunning?: Promise<void> | undefined;
}

interface Entry {
  seq: number;
  seg: Segment;
  offset: number;
  length: number;
  items: number;
}

const SEGMENT_RE = /^(\d{20})\.seg$/;
const ACK_ENTRY_BYTES = 12;
/** Queues open in this process, by real path (a second open would corrupt the files). */
const openDirs = new Set<string>();

function segName(id: number): string {
  return `${String(id).padStart(20, '0')}.seg`;
}

function ackEntry(seq: number): Buffer {
  const b = Buffer.allocUnsafe(ACK_ENTRY_BYTES);
  b.writeBigUInt64LE(BigInt(seq), 0);
  b.writeUInt32LE(crc32(b.subarray(0, 8)), 8);
  return b;
}

export class FileQueueStore implements QueueStore {
  /** Items left unsent at shutdown stay on disk for the next start. */
  readonly persistent = true;
  readonly #o: Required<Omit<FileQueueOptions, 'onCorrupt' | 'onClose'>> & Pick<FileQueueOptions, 'onCorrupt' | 'onClose'>;
  readonly #dir: string;
  readonly #segments: Segment[] = [];
  #active: Segment | undefined;
  readonly #pending: Entry[] = [];
  #head = 0;
  readonly #inFlight = new Map<QueueItem, Entry>();
  #nextSeq = 0;
  #diskBytes = 0;
  #liveAcked = 0;
  #journalFd = -1;
  #journalEntries = 0;
  readonly #ackQueue: { seq: number; done: () => void; fail: (e: unknown) => void }[] = [];
  readonly #compactWaiters: { done: () => void; fail: (e: unknown) => void }[] = [];
  /** The journal worker: appends acknowledgements and compacts, one operation at a time. */
  #journalBusy: Promise<void> | undefined;
  readonly #writes = new Set<Promise<unknown>>();
  #recovered = 0;
  #closed = false;
  #owner: LockOwner | undefined;
  #lastWriteWarning = -Infinity;
  #writeFailures = 0;

  private constructor(options: FileQueueOptions) {
    this.#o = { segmentBytes: 8 << 20, journalSlack: 4096, lockTimeoutMs: 10_000, io: nodeQueueIo, ...options };
    this.#dir = path.resolve(options.dir);
  }

  /** Open (creating or recovering) the queue in `options.dir`. */
  static async open(options: FileQueueOptions): Promise<FileQueueStore> {
    const q = new FileQueueStore(options);
    await q.#lock();
    try {
      q.#load();
      await q.#compact();
    } catch (err) {
      q.#release();
      throw err;
    }
    return q;
  }

  /** Records found unacknowledged at open (they are sent first). */
  get recovered(): number {
    return this.#recovered;
  }

  /** Bytes of the queue's segment files. */
  get diskBytes(): number {
    return this.#diskBytes;
  }

  /** Items waiting to be taken. */
  get size(): number {
    return this.#pending.length - this.#head;
  }

  // ---- open / recover ---------------------------------------------------------------------------------

  async #lock(): Promise<void> {
    fs.mkdirSync(this.#dir, { recursive: true });
    const real = fs.realpathSync(this.#dir);
    if (openDirs.has(real)) throw new Error(`file_storage queue ${this.#dir} is already open in this process`);
    openDirs.add(real);
    try {
      this.#owner = await acquireLock(this.#dir, { timeoutMs: this.#o.lockTimeoutMs, logger: this.#o.logger });
    } catch (err) {
      openDirs.delete(real);
      throw err;
    }
  }

  #release(): void {
    try {
      openDirs.delete(fs.realpathSync(this.#dir));
      if (this.#owner !== undefined) releaseLock(this.#dir, this.#owner);
    } catch {
      /* the directory may be gone */
    }
  }

  #corrupt(n: number, what: string, file: string): void {
    if (n <= 0) return;
    this.#o.onCorrupt?.(n);
    this.#o.logger.warn({ dir: this.#dir, file, damaged: n }, `Skipped damaged ${what} (checksum mismatch or torn write)`);
  }

  #load(): void {
    const dir = this.#dir;
    // Cursor: every sequence number below it is acknowledged.
    let floor = 0;
    const cursorFile = path.join(dir, 'cursor');
    if (fs.existsSync(cursorFile)) {
      const b = fs.readFileSync(cursorFile);
      if (b.length === 12 && crc32(b.subarray(0, 8)) === b.readUInt32LE(8)) floor = Number(b.readBigUInt64LE(0));
      else this.#corrupt(1, 'queue cursor', cursorFile);
    }
    // Journal: acknowledged sequence numbers at or above the cursor.
    const acked = new Set<number>();
    let maxSeq = floor - 1;
    const journalFile = path.join(dir, 'acks');
    if (fs.existsSync(journalFile)) {
      const b = fs.readFileSync(journalFile);
      let bad = 0;
      for (let p = 0; p + ACK_ENTRY_BYTES <= b.length; p += ACK_ENTRY_BYTES) {
        if (crc32(b.subarray(p, p + 8)) !== b.readUInt32LE(p + 8)) {
          bad++;
          continue;
        }
        const seq = Number(b.readBigUInt64LE(p));
        acked.add(seq);
        if (seq > maxSeq) maxSeq = seq;
      }
      if (b.length % ACK_ENTRY_BYTES !== 0) bad++;
      this.#corrupt(bad, 'ack journal entries', journalFile);
    }
    // Segments, oldest first.
    const ids = fs
      .readdirSync(dir)
      .map((f) => SEGMENT_RE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const id of ids) {
      if (id > maxSeq) maxSeq = id - 1;
      const file = path.join(dir, segName(id));
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const { records, corrupt } = scanRecords(bytes);
      this.#corrupt(corrupt, 'queue records', file);
      const seg: Segment = { id, file, fd: -1, size: bytes.length, outstanding: 0, writing: 0, sealed: true, acked: [] };
      for (const r of records) {
        if (r.seq > maxSeq) maxSeq = r.seq;
        if (r.seq < floor) continue;
        if (acked.has(r.seq)) {
          seg.acked.push(r.seq);
          continue;
        }
        seg.outstanding++;
        this.#pending.push({ seq: r.seq, seg, offset: r.offset, length: r.length, items: r.items });
      }
      if (seg.outstanding === 0) {
        fs.rmSync(file, { force: true });
        continue;
      }
      seg.fd = fs.openSync(file, 'r');
      this.#segments.push(seg);
      this.#diskBytes += seg.size;
      this.#liveAcked += seg.acked.length;
    }
    this.#recovered = this.#pending.length;
    this.#nextSeq = Math.max(floor, maxSeq + 1);
    // Old temp files of an interrupted compaction.
    for (const f of ['cursor.tmp', 'acks.tmp']) fs.rmSync(path.join(dir, f), { force: true });
    if (this.#recovered > 0) this.#o.logger.info({ dir, records: this.#recovered, bytes: this.#diskBytes }, 'Recovered queued data from disk');
  }

  // ---- push -------------------------------------------------------------------------------------------

  async push(item: QueueItem): Promise<void> {
    if (this.#closed) throw new PipelineError('shutting_down', `file_storage queue ${this.#dir} is closed`);
    const body = bodyBytes(item.body);
    const length = HEADER_BYTES + body.byteLength;
    if (this.#o.maxBytes > 0 && this.#diskBytes + length > this.#o.maxBytes) {
      throw new PipelineError('refused', `file_storage queue ${this.#dir} is full (max_size_mib: ${(this.#o.maxBytes / 1048576).toFixed(0)} MiB)`, {
        retryAfterMs: 5000,
      });
    }
    let seg: Segment;
    try {
      seg = this.#segmentFor(length);
    } catch (err) {
      throw this.#writeError(err);
    }
    const seq = this.#nextSeq++;
    const offset = seg.size;
    seg.size += length;
    seg.writing++;
    this.#diskBytes += length;
    const write = this.#o.io.write(seg.fd, [encodeHeader(seq, item.items, body), body], offset);
    this.#writes.add(write);
    try {
      await write;
      if (this.#o.fsync) await this.#sync(seg);
    } catch (err) {
      // The reserved bytes stay (a gap later start-ups skip as damaged); the client retries.
      throw this.#writeError(err);
    } finally {
      this.#writes.delete(write);
      seg.writing--;
    }
    seg.outstanding++;
    this.#pending.push({ seq, seg, offset, length, items: item.items });
  }

  #writeError(err: unknown): PipelineError {
    const code = (err as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOSPC'
        ? 'the disk is full'
        : code === 'EDQUOT'
          ? 'the disk quota is exhausted'
          : `write failed: ${err instanceof Error ? err.message : String(err)}`;
    // One warning per 10 s at most: a full disk fails every request.
    this.#writeFailures++;
    if (Date.now() - this.#lastWriteWarning >= 10_000) {
      this.#o.logger.warn(
        { dir: this.#dir, code, err: err instanceof Error ? err.message : String(err), failed_writes: this.#writeFailures },
        'Cannot write to the persistent queue; refusing data',
      );
      this.#lastWriteWarning = Date.now();
      this.#writeFailures = 0;
    }
    return new PipelineError('refused', `file_storage queue ${this.#dir}: ${what}`, { retryAfterMs: 5000, cause: err });
  }

  /** The segment to append `length` bytes to, starting a new one when the active one is full. */
  #segmentFor(length: number): Segment {
    const a = this.#active;
    if (a !== undefined && (a.size === 0 || a.size + length <= this.#o.segmentBytes)) return a;
    if (a !== undefined) {
      a.sealed = true;
      this.#maybeRemove(a);
    }
    const id = this.#nextSeq;
    const file = path.join(this.#dir, segName(id));
    const fd = fs.openSync(file, 'w+');
    if (this.#o.fsync) this.#syncDir();
    const seg: Segment = { id, file, fd, size: 0, outstanding: 0, writing: 0, sealed: false, acked: [] };
    this.#segments.push(seg);
    this.#active = seg;
    return seg;
  }

  #syncDir(): void {
    const fd = fs.openSync(this.#dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Group commit: one fdatasync serves every write completed before it started. */
  #sync(seg: Segment): Promise<void> {
    if (seg.syncQueued !== undefined) return seg.syncQueued;
    const before = seg.syncRunning ?? Promise.resolve();
    const p: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        seg.syncQueued = undefined;
        seg.syncRunning = p;
        return this.#o.io.datasync(seg.fd);
      })
      .finally(() => {
        if (seg.syncRunning === p) seg.syncRunning = undefined;
      });
    seg.syncQueued = p;
    return p;
  }

  // ---- take / ack / nack ------------------------------------------------------------------------------

  take(): QueueItem | undefined {
    while (this.#head < this.#pending.length) {
      const e = this.#pending[this.#head] as Entry;
      this.#pending[this.#head++] = undefined as unknown as Entry;
      if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
        this.#pending.splice(0, this.#head);
        this.#head = 0;
      }
      const body = this.#read(e);
      if (body === undefined) {
        // Damaged since it was written or recovered: drop it for good.
        this.#corrupt(1, 'queue records', e.seg.file);
        void this.#acknowledge(e).catch(() => undefined);
        continue;
      }
      const item: QueueItem = { body, items: e.items };
      this.#inFlight.set(item, e);
      return item;
    }
    return undefined;
  }

  /** Read and verify a record's payload (synchronously: `take` is synchronous; the page cache usually has it). */
  #read(e: Entry): Uint8Array | undefined {
    const buf = Buffer.allocUnsafe(e.length);
    try {
      let got = 0;
      while (got < e.length) {
        const n = fs.readSync(e.seg.fd, buf, got, e.length - got, e.offset + got);
        if (n === 0) return undefined;
        got += n;
      }
    } catch {
      return undefined;
    }
    const r = recordAt(buf, 0);
    if (r === undefined || r.seq !== e.seq || r.length !== e.length) return undefined;
    return buf.subarray(HEADER_BYTES);
  }

  async ack(item: QueueItem): Promise<void> {
    const e = this.#inFlight.get(item);
    if (e === undefined) return;
    this.#inFlight.delete(item);
    await this.#acknowledge(e);
  }

  async nack(item: QueueItem): Promise<void> {
    const e = this.#inFlight.get(item);
    if (e === undefined) return;
    this.#inFlight.delete(item);
    // Still on disk and unacknowledged: sent again by this process, or by the next one.
    if (this.#head > 0) this.#pending[--this.#head] = e;
    else this.#pending.unshift(e);
  }

  async #acknowledge(e: Entry): Promise<void> {
    const seg = e.seg;
    seg.outstanding--;
    seg.acked.push(e.seq);
    this.#liveAcked++;
    const durable = new Promise<void>((done, fail) => this.#ackQueue.push({ seq: e.seq, done, fail }));
    this.#maybeRemove(seg);
    if (this.#journalEntries > this.#liveAcked + this.#o.journalSlack && this.#compactWaiters.length === 0 && !this.#closed) {
      this.#compact().catch((err: unknown) => this.#o.logger.warn({ dir: this.#dir, err: String(err) }, 'Ack journal compaction failed'));
    }
    this.#runJournal();
    try {
      await durable;
    } catch (err) {
      // A lost acknowledgement only means the record may be sent again after a restart.
      this.#o.logger.warn({ dir: this.#dir, err: err instanceof Error ? err.message : String(err) }, 'Cannot record an acknowledgement');
    }
  }

  /**
   * Run the journal worker until nothing is queued: a requested compaction first, then acknowledgements in
   * batches (one write, and one sync with `fsync`, per batch: group commit).
   */
  #runJournal(): void {
    if (this.#journalBusy !== undefined) return;
    this.#journalBusy = (async () => {
      for (;;) {
        if (this.#compactWaiters.length > 0) {
          const waiters = this.#compactWaiters.splice(0);
          try {
            this.#compactNow();
            for (const w of waiters) w.done();
          } catch (err) {
            for (const w of waiters) w.fail(err);
          }
          continue;
        }
        if (this.#ackQueue.length === 0) return;
        const batch = this.#ackQueue.splice(0);
        try {
          await this.#o.io.write(
            this.#journalFd,
            batch.map((a) => ackEntry(a.seq)),
            null,
          );
          if (this.#o.fsync) await this.#o.io.datasync(this.#journalFd);
          this.#journalEntries += batch.length;
          for (const a of batch) a.done();
        } catch (err) {
          for (const a of batch) a.fail(err);
        }
      }
    })().finally(() => {
      this.#journalBusy = undefined;
      if (this.#ackQueue.length > 0 || this.#compactWaiters.length > 0) this.#runJournal();
    });
  }

  /** Delete a sealed segment once nothing in it is outstanding. */
  #maybeRemove(seg: Segment): void {
    if (!seg.sealed || seg.outstanding > 0 || seg.writing > 0) return;
    const i = this.#segments.indexOf(seg);
    if (i < 0) return;
    this.#segments.splice(i, 1);
    this.#diskBytes -= seg.size;
    this.#liveAcked -= seg.acked.length;
    seg.acked = [];
    try {
      fs.closeSync(seg.fd);
    } catch {
      /* already closed */
    }
    try {
      fs.rmSync(seg.file, { force: true });
    } catch (err) {
      this.#o.logger.warn({ file: seg.file, err: err instanceof Error ? err.message : String(err) }, 'Cannot delete an acknowledged queue segment');
    }
  }

  /**
   * Write the cursor (oldest live segment, or the next sequence number) and rewrite the journal with the
   * acknowledgements of live segments only. Cursor first: a crash in between leaves extra journal entries,
   * which are harmless.
   */
  #compact(): Promise<void> {
    const p = new Promise<void>((done, fail) => this.#compactWaiters.push({ done, fail }));
    this.#runJournal();
    return p;
  }

  #compactNow(): void {
    const floor = this.#segments[0]?.id ?? this.#nextSeq;
    const cursor = Buffer.allocUnsafe(12);
    cursor.writeBigUInt64LE(BigInt(floor), 0);
    cursor.writeUInt32LE(crc32(cursor.subarray(0, 8)), 8);
    this.#replaceFile('cursor', [cursor]);
    const live = this.#segments.flatMap((s) => s.acked).filter((s) => s >= floor);
    if (this.#journalFd >= 0) fs.closeSync(this.#journalFd);
    this.#journalFd = -1;
    this.#replaceFile('acks', live.map(ackEntry));
    this.#journalFd = fs.openSync(path.join(this.#dir, 'acks'), 'a');
    this.#journalEntries = live.length;
  }

  /** Atomically replace `name` with `buffers` (temp file, optional fsync, rename). */
  #replaceFile(name: string, buffers: Buffer[]): void {
    const tmp = path.join(this.#dir, `${name}.tmp`);
    const fd = fs.openSync(tmp, 'w');
    try {
      if (buffers.length > 0) fs.writeSync(fd, Buffer.concat(buffers));
      if (this.#o.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(this.#dir, name));
    if (this.#o.fsync) this.#syncDir();
  }

  /**
   * Test hook: behave as if the process died now. File descriptors are closed without writing anything
   * (no cursor, no compaction) and the LOCK file stays, as after `kill -9`.
   */
  crashForTesting(): void {
    this.#closed = true;
    for (const s of this.#segments) {
      try {
        fs.closeSync(s.fd);
      } catch {
        /* already closed */
      }
    }
    if (this.#journalFd >= 0) fs.closeSync(this.#journalFd);
    this.#journalFd = -1;
    this.#segments.length = 0;
    try {
      openDirs.delete(fs.realpathSync(this.#dir));
    } catch {
      /* gone */
    }
  }

  /** Stop accepting; wait for writes and acknowledgements, then persist the cursor. Unsent items stay on disk. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.onClose?.();
    await Promise.allSettled([...this.#writes]);
    for (const s of [...this.#segments])
      if (s.outstanding === 0) {
        s.sealed = true;
        this.#maybeRemove(s);
      }
    try {
      await this.#compact();
      while (this.#journalBusy !== undefined) await this.#journalBusy;
    } finally {
      if (this.#journalFd >= 0) fs.closeSync(this.#journalFd);
      this.#journalFd = -1;
      for (const s of this.#segments) {
        try {
          fs.closeSync(s.fd);
        } catch {
          /* already closed */
        }
      }
      this.#segments.length = 0;
      this.#active = undefined;
      this.#release();
    }
    const left = this.size + this.#inFlight.size;
    if (left > 0) this.#o.logger.info({ dir: this.#dir, records: left }, 'Queued data kept on disk for the next start');
  }
}
