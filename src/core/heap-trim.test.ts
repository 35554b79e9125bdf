import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { HeapTrimmer, type HeapTrimOptions } from './heap-trim';

const MB = 1 << 20;
const OPTIONS: HeapTrimOptions = { stepBytes: MB, minIntervalMs: 15_000, fallbackMs: 5_000, maxUtilization: 0.5 };

/** A heap and a clock driven by the test; `gc` brings the old generation back to `live`. */
function fakeProcess(live = 10 * MB) {
  const p = { used: live, live, utilization: 0.05, now: 0, gcs: [] as number[] };
  const trimmer = new HeapTrimmer(
    {
      gc: () => {
        p.gcs.push(p.now);
        p.used = p.live;
      },
      oldGenerationUsed: () => p.used,
      loopUtilization: () => p.utilization,
      now: () => p.now,
    },
    OPTIONS,
  );
  return { p, trimmer };
}

describe('HeapTrimmer', () => {
  it('waits for a step of growth, then collects at the next safe point and measures from there', () => {
    const { p, trimmer } = fakeProcess();
    p.now = 20_000;
    p.used = p.live + MB - 1;
    trimmer.check();
    trimmer.atSafePoint();
    expect(p.gcs).to.deep.equal([]);
    p.used = p.live + MB;
    trimmer.check();
    expect(trimmer.due).to.equal(true);
    expect(p.gcs, 'the check only marks it due').to.deep.equal([]);
    trimmer.atSafePoint();
    expect(p.gcs).to.deep.equal([20_000]);
    expect(trimmer.collections).to.equal(1);
    expect(trimmer.due).to.equal(false);
    trimmer.atSafePoint();
    expect(p.gcs).to.have.length(1);
  });

  it('leaves a busy process to V8', () => {
    const { p, trimmer } = fakeProcess();
    p.now = 20_000;
    p.used = p.live + 5 * MB;
    p.utilization = 0.9;
    trimmer.check();
    trimmer.atSafePoint();
    expect(trimmer.due).to.equal(false);
    expect(p.gcs).to.deep.equal([]);
  });

  it('collects from the timer when no safe point comes within fallbackMs', () => {
    const { p, trimmer } = fakeProcess();
    p.used = p.live + 2 * MB;
    for (p.now = 20_000; p.now <= 30_000; p.now += 1000) trimmer.check();
    expect(p.gcs).to.deep.equal([25_000]);
  });

  it("restarts the count from the heap V8's own full collection left", () => {
    const { p, trimmer } = fakeProcess();
    p.now = 20_000;
    p.used = p.live + 3 * MB;
    p.live += 2.5 * MB; // what V8 found alive
    p.used = p.live;
    trimmer.majorCollectionDone();
    p.used = p.live + MB / 2;
    trimmer.check();
    expect(trimmer.due).to.equal(false);
  });

  it('random runs: forced collections only when idle enough, grown a step, minIntervalMs apart', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let run = 0; run < 200; run++) {
      const { p, trimmer } = fakeProcess(5 * MB + Math.floor(random() * 20 * MB));
      let floor = p.used;
      const checks: Array<{ at: number; grown: number; utilization: number }> = [];
      for (let step = 0; step < 400; step++) {
        p.now += Math.floor(random() * 3000);
        p.used += Math.floor(random() * 0.3 * MB);
        const r = random();
        if (r < 0.02) {
          p.used = p.live; // V8's own collection
          trimmer.majorCollectionDone();
          floor = p.used;
        } else if (r < 0.5) {
          trimmer.atSafePoint();
        } else {
          p.utilization = random();
          checks.push({ at: p.now, grown: p.used - floor, utilization: p.utilization });
          trimmer.check();
        }
        if (p.gcs.length > 0 && p.gcs[p.gcs.length - 1] === p.now && p.used === p.live) floor = p.live;
      }
      for (let i = 1; i < p.gcs.length; i++) expect((p.gcs[i] as number) - (p.gcs[i - 1] as number)).to.be.at.least(OPTIONS.minIntervalMs);
      for (const at of p.gcs) {
        // The last check at or before the collection made it due: idle enough and grown a step.
        const due = checks.filter((c) => c.at <= at).pop();
        expect(due, `collection at ${at} without a check before it`).to.not.equal(undefined);
        expect(due?.utilization).to.be.at.most(OPTIONS.maxUtilization);
        expect(due?.grown).to.be.at.least(OPTIONS.stepBytes);
      }
      expect(trimmer.collections).to.equal(p.gcs.length);
    }
  });

  it("with node's --expose-gc, one collection gives the promoted garbage back", () => {
    const script = `
      const { HeapTrimmer, exposedGc, oldGenerationUsed } = require(${JSON.stringify(require.resolve('./heap-trim'))});
      const fullGc = exposedGc();
      if (fullGc === undefined) throw new Error('no gc under --expose-gc');
      let clock = 60000;
      const t = new HeapTrimmer({ gc: fullGc, oldGenerationUsed, loopUtilization: () => 0, now: () => clock }, { stepBytes: 1 << 20, minIntervalMs: 0, fallbackMs: 0, maxUtilization: 0.5 });
      let garbage = [];
      for (let i = 0; i < 100000; i++) garbage.push({ i, s: 'x' + i });
      globalThis.gc({ type: 'minor' });
      globalThis.gc({ type: 'minor' });
      const before = oldGenerationUsed();
      garbage = undefined;
      t.check();
      const due = t.due;
      t.atSafePoint();
      process.stdout.write(JSON.stringify({ due, before, after: oldGenerationUsed(), collections: t.collections, pause: t.pauseSeconds }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })) as Record<string, number | boolean>;
    expect(out.due).to.equal(true);
    expect(out.collections).to.equal(1);
    expect(out.pause).to.be.greaterThan(0);
    expect((out.before as number) - (out.after as number), JSON.stringify(out)).to.be.greaterThan(3 * MB);
  });

  it('without --expose-gc there is nothing to collect with', () => {
    const out = execFileSync(process.execPath, ['-e', `const h = require(${JSON.stringify(require.resolve('./heap-trim'))}); process.stdout.write(String(h.startHeapTrim() === undefined && h.exposedGc() === undefined))`], { encoding: 'utf8' });
    expect(out).to.equal('true');
  });
});
