/**
 * A `--workers` process tree holding a persistent queue, for tests of file_storage's LOCK protocol:
 * `node queue-holder.js DIR RECORDS` forks one cluster worker that opens a FileQueueStore in DIR (as a routelens
 * worker does), pushes RECORDS records and prints `{"primary":P,"worker":W}`. Both stay up until killed.
 *
 * On SIGUSR2 the worker blocks its event loop (as a worker busy with a large request or a long collection
 * would) until the file DIR.release exists, after writing DIR.blocked: a test can then kill -9 the primary and
 * see an orphan that has not yet noticed, and exits (Node's cluster module) as soon as it unblocks.
 */
import cluster from 'node:cluster';
import * as fs from 'node:fs';
import pino from 'pino';
import { FileQueueStore } from '../../src/extensions/filestorage/file-queue';

const [dir, records] = process.argv.slice(2) as [string, string];

if (cluster.isPrimary) {
  const w = cluster.fork();
  w.on('message', (m: { worker?: number }) => {
    if (typeof m.worker === 'number') process.stdout.write(`${JSON.stringify({ primary: process.pid, worker: m.worker })}\n`);
  });
} else {
  void (async () => {
    const q = await FileQueueStore.open({ dir, fsync: false, maxBytes: 0, logger: pino({ level: 'silent' }) });
    for (let i = 0; i < Number(records); i++) await q.push({ body: Buffer.from(`record ${i}`), items: 1 });
    process.on('SIGUSR2', () => {
      fs.writeFileSync(`${dir}.blocked`, '');
      const pause = new Int32Array(new SharedArrayBuffer(4));
      while (!fs.existsSync(`${dir}.release`)) Atomics.wait(pause, 0, 0, 10);
    });
    process.send?.({ worker: process.pid });
    setInterval(() => undefined, 60_000);
  })();
}
