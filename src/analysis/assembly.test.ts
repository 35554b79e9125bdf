/** Trace assembly: spans across batches and services, the decision wait, late spans, orphans and the bounds. */
import { expect } from 'chai';
import fc from 'fast-check';
import { db, http, rec, server } from '../../test/support/span-records';
import { RecentKeys, TraceAssembler, type AssemblyOptions } from './assembly';
import type { SpanRecord } from './span-record';
import type { RequestAnalysis, TraceAnalysis } from './trace';

function collect(options: AssemblyOptions = {}): { asm: TraceAssembler; analysed: RequestAnalysis[]; calls: TraceAnalysis[] } {
  const analysed: RequestAnalysis[] = [];
  const calls: TraceAnalysis[] = [];
  const asm = new TraceAssembler((a) => {
    calls.push(a);
    analysed.push(...a.requests);
  }, options);
  return { asm, analysed, calls };
}

const add = (asm: TraceAssembler, trace: number, spans: SpanRecord[], at: number): void => {
  for (const s of spans) asm.add(trace, 7, () => trace.toString(16).padStart(32, '0'), s, at);
};

const selfMs = (r: RequestAnalysis): number => r.targets.find((t) => t.category === 'self')?.unionMs ?? NaN;

describe('trace assembly', () => {
  it('a request is analysed a decision wait after it arrives, with the children that came in earlier batches', () => {
    const { asm, analysed } = collect({ decisionWaitMs: 2000 });
    add(asm, 1, [db(2, 1, 10, 30, 'SELECT 1 FROM t')], 0);
    add(asm, 1, [server(1, 0, 100)], 4000);
    asm.expire(5999);
    expect(analysed).to.have.length(0);
    asm.expire(6000);
    expect(analysed).to.have.length(1);
    expect(selfMs(analysed[0]!)).to.equal(80);
    expect(asm.stats()).to.include({ tracesInFlight: 0, spansInFlight: 0, requestsAnalysed: 1 });
    expect(asm.stats().bytesInFlight).to.equal(0);
  });

  it('a trace across two services: each request analysed when it arrives; the caller’s spans are not late', () => {
    const { asm, analysed } = collect({ decisionWaitMs: 1000 });
    // B (the callee) exports first; A's client span and A's request come 3 s later in A's next batch
    add(asm, 5, [server(3, 20, 80, { parent: 2, service: 'back', route: 'back GET /x' }), db(4, 3, 30, 70, 'SELECT 1 FROM t', { service: 'back' })], 0);
    asm.expire(1000);
    expect(analysed.map((r) => r.route)).to.deep.equal(['back GET /x']);
    add(asm, 5, [http(2, 1, 10, 90, 'http://back/x', { service: 'front' }), server(1, 0, 100, { service: 'front', route: 'front GET /' })], 3000);
    asm.expire(4000);
    expect(analysed.map((r) => r.route)).to.deep.equal(['back GET /x', 'front GET /']);
    const front = analysed[1]!;
    expect(front.targets.map((t) => [t.category, t.target, t.unionMs])).to.deep.equal([
      ['self', '', 20],
      ['http', 'back', 80],
    ]);
    expect(asm.stats()).to.include({ lateSpans: 0, orphanSpans: 0, tracesInFlight: 0 });
  });

  it('a span whose request was already analysed is late: counted and dropped', () => {
    const { asm, analysed } = collect({ decisionWaitMs: 1000 });
    add(asm, 9, [server(1, 0, 100), db(2, 1, 10, 20, 'SELECT 1 FROM t')], 0);
    asm.expire(1000);
    add(asm, 9, [db(3, 1, 30, 40, 'SELECT 2 FROM t')], 1500);
    expect(asm.stats()).to.include({ lateSpans: 1, tracesInFlight: 0 });
    asm.expire(100_000);
    expect(analysed).to.have.length(1);
  });

  it('spans whose parent never arrives are orphans after the max wait; traces without any request are unrooted', () => {
    const { asm } = collect({ maxTraceWaitMs: 15_000 });
    add(asm, 1, [db(10, 99, 0, 5, 'SELECT 1 FROM t')], 0);
    add(asm, 2, [rec({ id: 20, kind: 'client', start: 0, end: 5 }), rec({ id: 21, parent: 20, start: 1, end: 2 })], 0);
    asm.expire(14_999);
    expect(asm.stats().tracesInFlight).to.equal(2);
    asm.expire(15_000);
    expect(asm.stats()).to.include({ tracesInFlight: 0, orphanSpans: 1, unrootedSpans: 2, spansInFlight: 0, bytesInFlight: 0 });
  });

  it('the max wait counts from the trace’s last span, not its first', () => {
    const { asm } = collect({ maxTraceWaitMs: 10_000 });
    add(asm, 1, [db(10, 99, 0, 5, 'SELECT 1 FROM t')], 0);
    add(asm, 1, [db(11, 99, 0, 5, 'SELECT 1 FROM t')], 8000);
    asm.expire(12_000);
    expect(asm.stats().tracesInFlight).to.equal(1);
    asm.expire(18_000);
    expect(asm.stats()).to.include({ tracesInFlight: 0, orphanSpans: 2 });
  });

  it('a trace id seen again after its trace was analysed waits its own max wait, not the old trace’s', () => {
    const { asm } = collect({ maxTraceWaitMs: 10_000 });
    add(asm, 1, [server(1, 0, 10)], 0);
    asm.expire(2000); // the request is analysed and the trace forgotten; its age entry stays behind
    expect(asm.stats()).to.include({ tracesInFlight: 0, requestsAnalysed: 1 });
    add(asm, 1, [db(10, 99, 0, 5, 'SELECT 1 FROM t')], 5000);
    add(asm, 2, [db(20, 99, 0, 5, 'SELECT 1 FROM t')], 5000);
    asm.expire(10_000); // the old entry of key 1 (time 0) is skipped: the new trace is quiet only 5 s
    expect(asm.stats()).to.include({ tracesInFlight: 2, orphanSpans: 0 });
    add(asm, 1, [db(11, 99, 0, 5, 'SELECT 1 FROM t')], 12_000);
    asm.expire(15_000);
    expect(asm.stats()).to.include({ tracesInFlight: 1, orphanSpans: 1 });
    asm.expire(22_000);
    expect(asm.stats()).to.include({ tracesInFlight: 0, orphanSpans: 3, spansInFlight: 0, bytesInFlight: 0 });
  });

  it('bounds: spans per trace, traces in flight and bytes; what was cut is counted', () => {
    const { asm, analysed } = collect({ maxSpansPerTrace: 2, maxTraces: 2 });
    add(asm, 1, [server(1, 0, 100), db(2, 1, 10, 20, 'SELECT 1 FROM t'), db(3, 1, 30, 40, 'SELECT 1 FROM t')], 0);
    expect(asm.stats().droppedSpans).to.equal(1);
    add(asm, 2, [server(1, 0, 100)], 0);
    add(asm, 3, [server(1, 0, 100)], 0); // a third trace evicts the oldest: analysed at once
    expect(asm.stats().evictedTraces).to.equal(1);
    expect(analysed).to.have.length(1);
    expect(asm.stats().tracesInFlight).to.equal(2);
    const small = collect({ maxBytes: 2000 });
    for (let t = 1; t <= 20; t++) add(small.asm, t, [server(1, 0, 100)], 0);
    expect(small.asm.stats().bytesInFlight).to.be.at.most(2000);
    expect(small.asm.stats().evictedTraces).to.be.greaterThan(10);
  });

  it('duplicate span ids are counted once', () => {
    const { asm, analysed } = collect({ decisionWaitMs: 0 });
    add(asm, 1, [server(1, 0, 100), db(2, 1, 10, 20, 'SELECT 1 FROM t')], 0);
    add(asm, 1, [db(2, 1, 10, 20, 'SELECT 1 FROM t')], 0);
    asm.expire(0);
    expect(analysed[0]!.calls[0]!.durations).to.deep.equal([10]);
    expect(asm.stats()).to.include({ duplicateSpans: 1, tracesInFlight: 0 });
  });

  it('whatever order the spans of a request arrive in, within the decision wait, the analysis is the same (property)', () => {
    const spans = (): SpanRecord[] => [
      server(1, 0, 100),
      rec({ id: 2, parent: 1, start: 5, end: 95, name: 'handler' }),
      db(3, 2, 10, 20, 'SELECT 1 FROM a'),
      db(4, 2, 20, 35, 'SELECT 1 FROM b'),
      http(5, 2, 40, 80, 'http://x/y'),
    ];
    const want = collect({ decisionWaitMs: 1000 });
    add(want.asm, 1, spans(), 0);
    want.asm.expire(1000);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 5, maxLength: 5 }), (times) => {
        const got = collect({ decisionWaitMs: 1000 });
        const list = spans();
        const order = list.map((s, i) => [s, times[i] as number] as const).sort((a, b) => a[1] - b[1]);
        const root = order.find(([s]) => s.idLo === 1)?.[1] as number;
        for (const [s, at] of order) add(got.asm, 1, [s], at);
        got.asm.expire(root + 1000);
        expect(got.analysed).to.deep.equal(want.analysed);
        expect(got.asm.stats().tracesInFlight).to.equal(0);
      }),
      { numRuns: 50 },
    );
  });
});

describe('trace assembly, expiry in time slices', () => {
  // Traces of 1–3 requests (one per service), some spans orphaned (parent never sent), arriving over 0–5 s.
  const traces = fc.array(
    fc.record({
      requests: fc.integer({ min: 1, max: 3 }),
      arrive: fc.integer({ min: 0, max: 5000 }),
      orphan: fc.boolean(),
      dbCalls: fc.integer({ min: 0, max: 7 }),
    }),
    { minLength: 1, maxLength: 120 },
  );
  const feed = (asm: TraceAssembler, ts: { requests: number; arrive: number; orphan: boolean; dbCalls: number }[]): void => {
    ts.forEach((t, i) => {
      const id = i + 1;
      for (let r = 0; r < t.requests; r++) {
        const root = 1 + r * 100;
        const spans = [server(root, 0, 100, { service: `svc${r}`, route: `svc${r} GET /r${r}` })];
        for (let k = 0; k < t.dbCalls; k++)
          spans.push(db(root + 1 + k, root, 10 + k * 5, 14 + k * 5, `SELECT ${k} FROM t WHERE id = ${id}`, { service: `svc${r}` }));
        if (t.orphan) spans.push(db(root + 50, root + 99, 1, 2, 'SELECT 1', { service: `svc${r}` }));
        add(asm, id, spans, t.arrive + r * 10);
      }
    });
  };

  it('analyses the same requests in the same order whether in one call or in slices as small as they come (property)', () => {
    fc.assert(
      fc.property(traces, fc.integer({ min: 0, max: 12_000 }), (ts, at) => {
        const whole = collect({ decisionWaitMs: 1000, maxTraceWaitMs: 3000 });
        feed(whole.asm, ts);
        expect(whole.asm.expire(at)).to.equal(true);
        const sliced = collect({ decisionWaitMs: 1000, maxTraceWaitMs: 3000 });
        feed(sliced.asm, ts);
        let calls = 1;
        while (!sliced.asm.expire(at, () => true)) calls++;
        expect(sliced.analysed).to.deep.equal(whole.analysed);
        expect(sliced.asm.stats()).to.deep.equal(whole.asm.stats());
        // More than a chunk of traces due: the slices did stop early.
        if (whole.calls.length > 64) expect(calls).to.be.greaterThan(1);
      }),
      { numRuns: 60 },
    );
  });
});

describe('RecentKeys', () => {
  it('remembers at least `capacity` keys, in fixed memory, and forgets older ones', () => {
    const r = new RecentKeys(1000, 0);
    for (let k = 1; k <= 5000; k++) r.add(k * 7919, 0);
    for (let k = 4001; k <= 5000; k++) expect(r.has(k * 7919)).to.equal(true);
    expect(r.has(1 * 7919)).to.equal(false);
    expect(r.has(123)).to.equal(false);
  });

  it('keeps keys for minAgeMs when they arrive slowly enough', () => {
    const r = new RecentKeys(100, 10_000);
    for (let k = 1; k <= 140; k++) r.add(k, k); // 140 keys within 10 s: still one generation
    expect(r.has(1)).to.equal(true);
    expect(r.has(140)).to.equal(true);
  });
});
