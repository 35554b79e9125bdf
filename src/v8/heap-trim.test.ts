import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { DEFAULT_HEAP_TRIM, HeapTrimmer } from './heap-trim';

const MB = 1 << 20;
// The policy as shipped.
const OPTIONS = DEFAULT_HEAP_TRIM;

/** A heap, a clock and V8's marking request driven by the test. */
function fakeProcess(live = 10 * MB) {
  const p = { used: live, live, utilization: 0.05, now: 0, marking: false, requests: [] as number[] };
  const trimmer = new HeapTrimmer(
    {
      requestMarking: (on) => {
        if (on) p.requests.push(p.now);
        p.marking = on;
      },
      oldGenerationUsed: () => p.used,
      loopUtilization: () => p.utilization,
      now: () => p.now,
    },
    OPTIONS,
  );
  /** V8 runs a full collection. */
  const collect = (): void => {
    p.used = p.live;
    trimmer.majorCollectionDone();
  };
  return { p, trimmer, collect };
}

describe('HeapTrimmer', () => {
  it('asks V8 for a collection once the old generation grew a step, and stops asking when it came', () => {
    const { p, trimmer, collect } = fakeProcess();
    p.now = 20_000;
    p.used = p.live + MB - 1;
    trimmer.check();
    expect(p.marking).to.equal(false);
    p.used = p.live + MB;
    trimmer.check();
    expect(p.marking).to.equal(true);
    expect(trimmer.pending).to.equal(true);
    p.now += 3000;
    collect();
    expect(p.marking).to.equal(false);
    expect(trimmer.collections).to.equal(1);
    p.used = p.live + MB / 2;
    p.now += 20_000;
    trimmer.check();
    expect(p.marking, 'measured from what the collection left').to.equal(false);
  });

  it('leaves a busy process to V8', () => {
    const { p, trimmer } = fakeProcess();
    p.now = 20_000;
    p.used = p.live + 5 * MB;
    p.utilization = 0.9;
    trimmer.check();
    expect(p.marking).to.equal(false);
  });

  it('withdraws a request V8 does not answer within timeoutMs', () => {
    const { p, trimmer } = fakeProcess();
    p.used = p.live + 2 * MB;
    for (p.now = 20_000; p.now <= 30_000; p.now += 1000) trimmer.check();
    expect(p.marking).to.equal(false);
    expect(trimmer.withdrawn).to.equal(1);
    expect(trimmer.collections).to.equal(0);
  });

  it('a full collection V8 ran on its own restarts the count and is not counted as asked for', () => {
    const { p, trimmer, collect } = fakeProcess();
    p.now = 20_000;
    p.live += 2.5 * MB;
    collect();
    p.used = p.live + MB / 2;
    trimmer.check();
    expect(p.marking).to.equal(false);
    expect(trimmer.collections).to.equal(0);
  });

  it('a full collection V8 ran on its own and did not report (nobody observes while not asking) restarts the count at the next check', () => {
    const { p, trimmer } = fakeProcess();
    // Busy: the heap grows 4 MB and nothing is asked.
    p.utilization = 0.9;
    for (p.now = 20_000; p.now <= 24_000; p.now += 1000) {
      p.used += MB;
      trimmer.check();
    }
    expect(p.requests).to.deep.equal([]);
    // V8 collects on its own and leaves 2.5 MB more live than before: use falls, unreported.
    p.live += 2.5 * MB;
    p.used = p.live;
    p.utilization = 0.05;
    trimmer.check();
    expect(p.marking).to.equal(false);
    // Growing less than a step past the new live size asks for nothing; a step past it does.
    p.used = p.live + MB / 2;
    p.now += 1000;
    trimmer.check();
    expect(p.marking).to.equal(false);
    p.used = p.live + 1.5 * MB;
    p.now += 1000;
    trimmer.check();
    expect(p.marking).to.equal(true);
  });

  it('random runs: asks only when idle enough and grown a step, minIntervalMs apart, never left asking', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let run = 0; run < 200; run++) {
      const { p, trimmer, collect } = fakeProcess(5 * MB + Math.floor(random() * 20 * MB));
      let floor = p.used;
      let askedAt = -Infinity;
      for (let step = 0; step < 400; step++) {
        p.now += Math.floor(random() * 3000);
        p.used += Math.floor(random() * 0.3 * MB);
        if (random() < (p.marking ? 0.3 : 0.01)) {
          collect();
          floor = p.used;
          expect(p.marking).to.equal(false);
          continue;
        }
        p.utilization = random();
        const before = p.marking;
        const grown = p.used - floor;
        trimmer.check();
        if (!before && p.marking) {
          expect(grown).to.be.at.least(OPTIONS.stepBytes);
          expect(p.utilization).to.be.at.most(OPTIONS.maxUtilization);
          expect(p.now - askedAt).to.be.at.least(OPTIONS.minIntervalMs);
          askedAt = p.now;
        }
        if (p.marking) expect(p.now - askedAt).to.be.below(OPTIONS.timeoutMs);
      }
      expect(trimmer.collections + trimmer.withdrawn + (p.marking ? 1 : 0)).to.equal(p.requests.length);
    }
  });

  it('in node: V8 answers the request with an incremental full collection that gives the promoted garbage back', function () {
    // Marking advances with the child's allocations: on a starved machine that takes long, not forever.
    this.timeout(150_000);
    const script = `
      const { HeapTrimmer, oldGenerationUsed, requestV8Marking } = require(${JSON.stringify(require.resolve('./heap-trim'))});
      // Busy until the test asks: the trimmer's own once-a-second check must not ask first (on a starved machine
      // making the garbage below takes seconds).
      let utilization = 1;
      const t = new HeapTrimmer({ requestMarking: requestV8Marking, oldGenerationUsed, loopUtilization: () => utilization, now: Date.now },
        { stepBytes: 0, minIntervalMs: 0, timeoutMs: 60000, maxUtilization: 0.5 });
      t.start();
      // stepBytes 0: due at the first check. Garbage kept across scavenges until promoted, then dropped; made
      // again when V8 collected it on its own before the request (nothing would be left to give back).
      const makeGarbage = () => {
        let garbage = [];
        const until = Date.now() + 300;
        while (Date.now() < until || garbage.length < 200000) garbage.push({ i: garbage.length, s: 'x' + garbage.length });
        garbage = undefined;
      };
      let attempts = 0;
      const ask = () => {
        if (oldGenerationUsed() < 12 * 2 ** 20 && ++attempts < 20) {
          makeGarbage();
          return setTimeout(ask, 100);
        }
        const observingBefore = t.observing;
        const before = oldGenerationUsed();
        utilization = 0;
        t.check();
        const pending = t.pending;
        const observingWhileAsking = t.observing;
        // Requests go on allocating, and some of it outlives a scavenge (as a request in flight does): V8 checks
        // its old-generation limit, where the request starts marking, only when something is promoted.
        const ring = new Array(100000);
        let k = 0;
        // And a 256 KiB array every tick (as a request buffer): a large object, allocated in the old generation
        // at once, so the limit check comes even when the small objects all die young (a scavenge every ~25
        // ticks and a ring turned over every 5 left nothing promoted on a fast machine: no marking, withdrawn).
        const large = new Array(8);
        let l = 0;
        const tick = setInterval(() => {
          for (let i = 0; i < 20000; i++) ring[k++ % ring.length] = { i };
          large[l++ % large.length] = new Array(32768).fill(l);
          if (t.collections > 0 || t.withdrawn > 0) {
            clearInterval(tick);
            const observingAfter = t.observing;
            t.stop();
            process.stdout.write(JSON.stringify({ pending, observingBefore, observingWhileAsking, observingAfter, before, after: oldGenerationUsed(), collections: t.collections, withdrawn: t.withdrawn }));
          }
        }, 5);
      };
      ask();
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 })) as Record<string, number | boolean>;
    expect(out.pending).to.equal(true);
    // The gc observer (a performance entry for every scavenge) is connected only while V8 is asked.
    expect([out.observingBefore, out.observingWhileAsking, out.observingAfter], JSON.stringify(out)).to.deep.equal([false, true, false]);
    expect(out.collections, JSON.stringify(out)).to.equal(1);
    expect((out.before as number) - (out.after as number), JSON.stringify(out)).to.be.greaterThan(4 * MB);
  });

  it('ROUTELENS_HEAP_TRIM=off starts nothing', () => {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const h = require(${JSON.stringify(require.resolve('./heap-trim'))}); process.stdout.write(String(h.startHeapTrim({ ROUTELENS_HEAP_TRIM: 'off' }) === undefined && h.processHeapTrimmer() === undefined))`,
      ],
      { encoding: 'utf8' },
    );
    expect(out).to.equal('true');
  });
});
