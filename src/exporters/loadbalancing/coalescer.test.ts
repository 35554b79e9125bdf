/**
 * The per-backend coalescer against a model, on a clock the test moves: every part travels in exactly one call,
 * to its backend, in arrival order; a call is made only when a bound says so (min_size reached, flush_timeout
 * passed since the group's first part, max_size would be passed, or a drain); no part waits past flush_timeout;
 * and each part's promise settles with the outcome of the call that carried it.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Coalescer, type CoalesceBounds, type Schedule } from './coalescer';

interface Part {
  id: number;
  key: string;
  size: number;
  addedAt: number;
}

interface Call {
  key: string;
  parts: Part[];
  at: number;
  settle: (ok: boolean | Error) => void;
  outcome?: boolean | Error;
}

/** A clock and timers the test advances by hand. */
class ManualClock {
  now = 0;
  #timers: { at: number; fn: () => void; live: boolean }[] = [];

  readonly schedule: Schedule = (fn, ms) => {
    const t = { at: this.now + ms, fn, live: true };
    this.#timers.push(t);
    return () => {
      t.live = false;
    };
  };

  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.now = due.at;
      due.live = false;
      due.fn();
    }
    this.now = until;
  }
}

type Op = { t: 'add'; key: number; size: number } | { t: 'tick'; ms: number } | { t: 'settle'; which: number; outcome: 'ok' | 'dropped' | 'error' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('add' as const), key: fc.integer({ min: 0, max: 2 }), size: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 120 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('settle' as const),
      which: fc.nat(),
      outcome: fc.constantFrom('ok' as const, 'dropped' as const, 'error' as const),
    }),
  },
);

const boundsArb: fc.Arbitrary<CoalesceBounds> = fc
  .record({ flushTimeoutMs: fc.integer({ min: 1, max: 200 }), minSize: fc.integer({ min: 0, max: 100 }), maxSize: fc.integer({ min: 0, max: 120 }) })
  .map((b) => ({ ...b, maxSize: b.maxSize === 0 ? 0 : Math.max(b.maxSize, b.minSize) }));

describe('loadbalancing coalescer', () => {
  it('sends every part once, to its backend, in order, only when a bound says so, and settles it with its call (property)', async () => {
    await fc.assert(
      fc.asyncProperty(boundsArb, fc.array(opArb, { maxLength: 80 }), async (bounds, ops) => {
        const clock = new ManualClock();
        const calls: Call[] = [];
        const unsent = new Map<number, Part>();
        let adding: Part | undefined;
        let draining = false;
        const c = new Coalescer<Part>(
          bounds,
          (p) => p.size,
          (key, parts) => {
            const size = parts.reduce((n, p) => n + p.size, 0);
            const first = parts[0] as Part;
            expect(parts.every((p) => p.key === key)).to.equal(true);
            const byMinSize = size >= bounds.minSize;
            const byTimeout = clock.now - first.addedAt >= bounds.flushTimeoutMs;
            // The part being added is not in this call: it would have taken it past max_size.
            const byMaxSize =
              adding !== undefined && !parts.includes(adding) && adding.key === key && bounds.maxSize > 0 && size + adding.size > bounds.maxSize;
            expect(byMinSize || byTimeout || byMaxSize || draining, `call of ${size} spans at ${clock.now}`).to.equal(true);
            if (bounds.maxSize > 0 && parts.length > 1) expect(size).to.be.at.most(bounds.maxSize);
            for (const p of parts) expect(unsent.delete(p.id), `part ${p.id} sent twice`).to.equal(true);
            return new Promise<boolean>((resolve, reject) => {
              const call: Call = {
                key,
                parts,
                at: clock.now,
                settle: (o) => {
                  call.outcome = o;
                  if (o instanceof Error) reject(o);
                  else resolve(o);
                },
              };
              calls.push(call);
            });
          },
          clock.schedule,
        );
        const results = new Map<number, Promise<boolean | Error>>();
        let nextId = 0;
        const add = (p: Part): void => {
          unsent.set(p.id, p);
          adding = p;
          results.set(
            p.id,
            c.add(p.key, p).catch((err: unknown) => err as Error),
          );
          adding = undefined;
        };
        const settle = (call: Call, outcome: 'ok' | 'dropped' | 'error'): void => {
          call.settle(outcome === 'ok' ? true : outcome === 'dropped' ? false : new Error(`call ${calls.indexOf(call)} failed`));
        };
        for (const op of ops) {
          if (op.t === 'add') add({ id: nextId++, key: `b${op.key}`, size: op.size, addedAt: clock.now });
          else if (op.t === 'tick') clock.advance(op.ms);
          else {
            const open = calls.filter((x) => x.outcome === undefined);
            if (open.length > 0) settle(open[op.which % open.length] as Call, op.outcome);
          }
          // Nothing waits that a bound says should be on its way: flush_timeout, or min_size for its backend.
          const waitingSize = new Map<string, number>();
          for (const p of unsent.values()) {
            expect(clock.now - p.addedAt, `part ${p.id} waiting`).to.be.below(bounds.flushTimeoutMs);
            waitingSize.set(p.key, (waitingSize.get(p.key) ?? 0) + p.size);
          }
          for (const [key, size] of waitingSize) expect(size, `spans waiting for ${key}`).to.be.below(bounds.minSize);
          expect(c.waiting).to.equal(unsent.size);
        }
        draining = true;
        c.drain();
        expect(unsent.size).to.equal(0);
        expect(c.waiting).to.equal(0);
        for (const call of calls) if (call.outcome === undefined) settle(call, 'ok');
        // Every part in exactly one call, its backend's parts in the order they were added.
        const sent = calls.flatMap((call) => call.parts.map((p) => p.id));
        expect([...sent].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: nextId }, (_, i) => i));
        for (const key of ['b0', 'b1', 'b2']) {
          const order = calls.filter((x) => x.key === key).flatMap((x) => x.parts.map((p) => p.id));
          expect(order).to.deep.equal([...order].sort((a, b) => a - b));
        }
        for (const call of calls) for (const p of call.parts) expect(await results.get(p.id)).to.equal(call.outcome);
      }),
      { numRuns: 300 },
    );
  });

  it('after a drain, each part goes at once in a call of its own', () => {
    const sent: number[][] = [];
    const c = new Coalescer<number>(
      { flushTimeoutMs: 1000, minSize: 100, maxSize: 0 },
      (n) => n,
      (_key, parts) => {
        sent.push(parts);
        return Promise.resolve(true);
      },
      () => () => undefined,
    );
    void c.add('a', 1);
    void c.add('a', 2);
    void c.add('b', 3);
    expect(sent).to.deep.equal([]);
    c.drain();
    expect(sent).to.deep.equal([[1, 2], [3]]);
    void c.add('a', 4);
    expect(sent).to.deep.equal([[1, 2], [3], [4]]);
  });
});
