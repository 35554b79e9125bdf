import { expect } from 'chai';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { PipelineError } from '../../core/errors';
import type { QueueItem } from '../../core/storage';
import { bodyBytes, bodyLength } from '../../core/storage';
import { FileQueueStore, nodeQueueIo, type FileQueueOptions, type QueueIo } from './file-queue';
import { HEADER_BYTES } from './record';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-fq-'));
  dirs.push(d);
  return d;
}

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function item(n: number, size = 16): QueueItem {
  const body = Buffer.alloc(size, n & 0xff);
  body.writeUInt32BE(n, 0);
  return { body, items: n };
}

/** The id written into an item's first four bytes. */
function idOf(i: QueueItem): number {
  return bodyBytes(i.body).readUInt32BE(0);
}

async function open(dir: string, extra: Partial<FileQueueOptions> = {}): Promise<{ q: FileQueueStore; corrupt: () => number }> {
  let corrupt = 0;
  const q = await FileQueueStore.open({ dir, fsync: false, maxBytes: 0, logger: silent, onCorrupt: (n) => (corrupt += n), ...extra });
  return { q, corrupt: () => corrupt };
}

function drain(q: FileQueueStore): QueueItem[] {
  const out: QueueItem[] = [];
  for (let i = q.take(); i !== undefined; i = q.take()) out.push(i);
  return out;
}

function segments(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();
}

describe('FileQueueStore', () => {
  it('returns pushed items in order with their bodies and item counts', async () => {
    const { q } = await open(tmpDir());
    for (let n = 1; n <= 5; n++) await q.push(item(n, 100 + n));
    expect(q.size).to.equal(5);
    const got = drain(q);
    expect(got.map(idOf)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(got.map((i) => i.items)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(got.map((i) => bodyLength(i.body))).to.deep.equal([101, 102, 103, 104, 105]);
    expect(q.size).to.equal(0);
    await q.close();
  });

  it('resumes after a restart with unacknowledged items (in flight or never taken) and not acknowledged ones', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 6; n++) await a.q.push(item(n));
    const [i1, i2, i3] = [a.q.take(), a.q.take(), a.q.take()] as QueueItem[];
    await a.q.ack(i1 as QueueItem);
    await a.q.ack(i3 as QueueItem); // out of order; 2 stays in flight
    void i2;
    await a.q.close();

    const b = await open(dir);
    expect(b.q.recovered).to.equal(4);
    expect(drain(b.q).map(idOf)).to.deep.equal([2, 4, 5, 6]);
    await b.q.close();
  });

  it('keeps nacked items for this process and the next', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    await a.q.push(item(1));
    await a.q.push(item(2));
    const first = a.q.take() as QueueItem;
    await a.q.nack(first);
    expect(a.q.size).to.equal(2);
    expect(idOf(a.q.take() as QueueItem)).to.equal(1);
    await a.q.close();
    const b = await open(dir);
    expect(drain(b.q).map(idOf)).to.deep.equal([1, 2]);
    await b.q.close();
  });

  it('recovers after a crash (no close): every push that resolved and was not acknowledged, nothing acknowledged', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 4; n++) await a.q.push(item(n));
    await a.q.ack(a.q.take() as QueueItem);
    a.q.take(); // in flight when the process dies
    a.q.crashForTesting();
    const b = await open(dir);
    expect(drain(b.q).map(idOf)).to.deep.equal([2, 3, 4]);
    await b.q.close();
  });

  it('skips and counts a torn tail record and keeps the records before it', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 3; n++) await a.q.push(item(n, 64));
    a.q.crashForTesting();
    const seg = path.join(dir, segments(dir)[0] as string);
    fs.truncateSync(seg, fs.statSync(seg).size - 10);
    const b = await open(dir);
    expect(b.corrupt()).to.equal(1);
    expect(drain(b.q).map(idOf)).to.deep.equal([1, 2]);
    await b.q.close();
  });

  it('skips and counts a record with a flipped payload byte and keeps the records after it', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 3; n++) await a.q.push(item(n, 64));
    a.q.crashForTesting();
    const seg = path.join(dir, segments(dir)[0] as string);
    const bytes = fs.readFileSync(seg);
    const second = HEADER_BYTES + 64; // start of record 2
    bytes.writeUInt8(bytes.readUInt8(second + HEADER_BYTES + 30) ^ 0x01, second + HEADER_BYTES + 30);
    fs.writeFileSync(seg, bytes);
    const b = await open(dir);
    expect(b.corrupt()).to.equal(1);
    expect(drain(b.q).map(idOf)).to.deep.equal([1, 3]);
    await b.q.close();
  });

  it('resynchronises after a damaged length field', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 3; n++) await a.q.push(item(n, 64));
    a.q.crashForTesting();
    const seg = path.join(dir, segments(dir)[0] as string);
    const bytes = fs.readFileSync(seg);
    bytes.writeUInt32LE(5, 4); // record 1 claims a 5-byte payload
    fs.writeFileSync(seg, bytes);
    const b = await open(dir);
    expect(b.corrupt()).to.equal(1);
    expect(drain(b.q).map(idOf)).to.deep.equal([2, 3]);
    await b.q.close();
  });

  it('survives garbage after the last record and a damaged cursor and journal', async () => {
    const dir = tmpDir();
    const a = await open(dir);
    for (let n = 1; n <= 3; n++) await a.q.push(item(n));
    await a.q.ack(a.q.take() as QueueItem);
    await a.q.close();
    const seg = path.join(dir, segments(dir)[0] as string);
    fs.appendFileSync(seg, Buffer.from('\u0000\u0000garbage-from-a-torn-write'));
    fs.appendFileSync(path.join(dir, 'acks'), Buffer.from([1, 2, 3, 4, 5])); // torn journal entry
    const b = await open(dir);
    expect(b.corrupt()).to.equal(2);
    expect(drain(b.q).map(idOf)).to.deep.equal([2, 3]);
    await b.q.close();

    fs.writeFileSync(path.join(dir, 'cursor'), Buffer.from('not a cursor'));
    const c = await open(dir);
    expect(c.corrupt()).to.equal(2); // the cursor, and the garbage again (its segment is still live)
    expect(drain(c.q).map(idOf)).to.deep.equal([2, 3]);
    await c.q.close();
  });

  it('deletes segment files once every record in them is acknowledged', async () => {
    const dir = tmpDir();
    const { q } = await open(dir, { segmentBytes: 3 * (HEADER_BYTES + 100) });
    for (let n = 1; n <= 10; n++) await q.push(item(n, 100));
    expect(segments(dir)).to.have.length(4);
    const taken = drain(q);
    // Acknowledge all but the first: the first segment must stay.
    for (const i of taken.slice(1)) await q.ack(i);
    expect(segments(dir)).to.have.length(2); // first (one record outstanding) and the active one
    await q.ack(taken[0] as QueueItem);
    expect(segments(dir)).to.have.length(1); // the active segment
    await q.close();
    expect(segments(dir)).to.have.length(0);
  });

  it('refuses a push beyond max size with a retryable error and accepts again once space is freed', async () => {
    const dir = tmpDir();
    const rec = HEADER_BYTES + 100;
    const { q } = await open(dir, { maxBytes: 3 * rec, segmentBytes: rec });
    for (let n = 1; n <= 3; n++) await q.push(item(n, 100));
    const err = await q.push(item(4, 100)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(PipelineError);
    expect((err as PipelineError).retryable).to.equal(true);
    expect((err as PipelineError).message).to.match(/full \(max_size_mib/);
    await q.ack(q.take() as QueueItem);
    await q.push(item(4, 100));
    expect(drain(q).map(idOf)).to.deep.equal([2, 3, 4]);
    await q.close();
  });

  it('refuses a push retryably when the disk is full and keeps working after', async () => {
    const dir = tmpDir();
    let full = false;
    const io: QueueIo = {
      write: (fd, bufs, pos) =>
        full ? Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })) : nodeQueueIo.write(fd, bufs, pos),
      datasync: nodeQueueIo.datasync,
    };
    const a = await open(dir, { io, fsync: true });
    await a.q.push(item(1));
    full = true;
    const err = await a.q.push(item(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(PipelineError);
    expect((err as PipelineError).code).to.equal('refused');
    expect((err as PipelineError).message).to.match(/disk is full/);
    full = false;
    await a.q.push(item(3));
    expect(a.q.size).to.equal(2);
    a.q.crashForTesting();
    const b = await open(dir);
    expect(drain(b.q).map(idOf)).to.deep.equal([1, 3]);
    await b.q.close();
  });

  it('compacts the ack journal and stays correct across restarts', async () => {
    const dir = tmpDir();
    const a = await open(dir, { journalSlack: 8, segmentBytes: 4 * (HEADER_BYTES + 16) });
    const held: QueueItem[] = [];
    for (let n = 1; n <= 60; n++) {
      await a.q.push(item(n));
      const i = a.q.take() as QueueItem;
      if (n % 10 === 0)
        held.push(i); // never acknowledged
      else await a.q.ack(i);
    }
    const journal = fs.statSync(path.join(dir, 'acks')).size / 12;
    expect(journal).to.be.lessThan(60 - held.length);
    a.q.crashForTesting();
    const b = await open(dir);
    expect(drain(b.q).map(idOf)).to.deep.equal(held.map(idOf));
    await b.q.close();
  });

  it('refuses to open a queue another live process holds, and takes over a dead one', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'LOCK'), `${process.ppid}\n`);
    const err = await open(dir).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/in use by process/);
    fs.writeFileSync(path.join(dir, 'LOCK'), '999999999\n');
    const { q } = await open(dir);
    const twice = await open(dir).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(twice?.message).to.match(/already open in this process/);
    await q.close();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).to.equal(false);
  });

  it('property: after any crash, exactly the pushed and unacknowledged items come back', async () => {
    type Op = { op: 'push' } | { op: 'take' } | { op: 'ack'; k: number } | { op: 'nack'; k: number } | { op: 'crash' } | { op: 'restart' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { arbitrary: fc.constant<Op>({ op: 'push' }), weight: 5 },
      { arbitrary: fc.constant<Op>({ op: 'take' }), weight: 4 },
      { arbitrary: fc.nat(20).map<Op>((k) => ({ op: 'ack', k })), weight: 4 },
      { arbitrary: fc.nat(20).map<Op>((k) => ({ op: 'nack', k })), weight: 1 },
      { arbitrary: fc.constant<Op>({ op: 'crash' }), weight: 1 },
      { arbitrary: fc.constant<Op>({ op: 'restart' }), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), fc.boolean(), async (ops, perSegment, fsync) => {
        const dir = tmpDir();
        const options = { segmentBytes: perSegment * (HEADER_BYTES + 16), journalSlack: 4, fsync };
        let q = (await open(dir, options)).q;
        const live = new Set<number>(); // pushed, not acknowledged (the model)
        let inFlight: QueueItem[] = [];
        let next = 1;
        const reopen = async (crash: boolean): Promise<void> => {
          if (crash) q.crashForTesting();
          else await q.close();
          q = (await open(dir, options)).q;
          inFlight = [];
          expect(q.size).to.equal(live.size);
        };
        for (const o of ops) {
          if (o.op === 'push') {
            await q.push(item(next));
            live.add(next++);
          } else if (o.op === 'take') {
            const i = q.take();
            if (i !== undefined) inFlight.push(i);
          } else if ((o.op === 'ack' || o.op === 'nack') && inFlight.length > 0) {
            const [i] = inFlight.splice(o.k % inFlight.length, 1) as [QueueItem];
            if (o.op === 'ack') {
              await q.ack(i);
              live.delete(idOf(i));
            } else await q.nack(i);
          } else if (o.op === 'crash' || o.op === 'restart') await reopen(o.op === 'crash');
        }
        await reopen(true);
        const back = drain(q).map(idOf);
        expect(back).to.deep.equal([...live].sort((a, b) => a - b));
        await q.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 60 },
    );
  });
});
