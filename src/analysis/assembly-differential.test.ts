/**
 * The columnar assembler (spans held as columns, records made only for an analysis) against the object-per-span
 * assembler it replaced (test/support/assembly-reference.ts), on random traces with the traps of trace analysis:
 * clock skew between services (within and beyond the maximum correction), async children outliving their
 * parent, children wholly outside it, SQLAlchemy-plus-driver double spans, N+1 runs, late spans, spans split
 * across batches in any order, orphans, duplicate span ids, and bounds small enough to evict. Every analysis
 * handed to the sink, every stats figure and every route's /api/v1/why answer must be identical.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ReferenceTraceAssembler } from '../../test/support/assembly-reference';
import { rec, type RecordSpec } from '../../test/support/span-records';
import { TraceAssembler, type AssemblyOptions } from './assembly';
import { RouteAnalysisStore, routeKeyOf } from './route-analysis';
import type { TraceAnalysis } from './trace';
import { buildWhy } from './why';

const ROUTES = [
  { service: 'front', method: 'GET', route: '/orders/{id}' },
  { service: 'front', method: 'POST', route: '/orders' },
  { service: 'back', method: 'GET', route: '/items/{id}' },
];
const STATEMENTS = [
  'SELECT orders.id FROM orders WHERE orders.id = %(id_1)s',
  'SELECT items.id, items.sku FROM items WHERE items.order_id = %(param_1)s',
  'SELECT * FROM users WHERE id = 42',
  'SELECT * FROM users WHERE id IN (%(id_1_1)s, %(id_1_2)s)',
  'INSERT INTO audit (a, b) VALUES (?, ?)',
  'SELECT very_long_column_list FROM t WHERE x = ...',
];

/** One child of a request, as drawn; made into one or more span specs by `childSpans`. */
const child = fc.record({
  kind: fc.constantFrom('db', 'double', 'nplus1', 'http', 'internal', 'cache', 'producer', 'consumer', 'unknown', 'orphan', 'duplicate'),
  start: fc.integer({ min: -30, max: 220 }),
  length: fc.integer({ min: 0, max: 150 }),
  statement: fc.integer({ min: 0, max: STATEMENTS.length - 1 }),
  repeats: fc.integer({ min: 3, max: 8 }),
  params: fc.boolean(),
  /** Skew of the callee's clock (ms): none, small, or beyond the 10 s maximum. */
  skew: fc.constantFrom(0, 0, 35, -60, 25_000),
});

const trace = fc.record({
  route: fc.integer({ min: 0, max: 1 }),
  duration: fc.integer({ min: 1, max: 200 }),
  version: fc.constantFrom('1.0', '1.1'),
  node: fc.constantFrom('node-1', 'node-2', 'node-3'),
  error: fc.boolean(),
  children: fc.array(child, { maxLength: 6 }),
  /** When the trace's first batch arrives (ms), and each span's delay after it. */
  arrive: fc.integer({ min: 0, max: 8000 }),
  delays: fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 40, maxLength: 40 }),
});

const options = fc.record({
  decisionWaitMs: fc.constantFrom(0, 500, 2000),
  maxTraceWaitMs: fc.constantFrom(3000, 15_000),
  lateWindowMs: fc.constantFrom(0, 30_000),
  lateKeys: fc.constantFrom(8, 65_536),
  maxTraces: fc.constantFrom(3, 200_000),
  maxSpansPerTrace: fc.constantFrom(5, 1000),
  maxBytes: fc.constantFrom(2500, 64 * 1024 * 1024),
});

type Child = typeof child extends fc.Arbitrary<infer T> ? T : never;
type Trace = typeof trace extends fc.Arbitrary<infer T> ? T : never;

/** The span specs of one trace: the front request, its children, and a back request under each HTTP call. */
function traceSpecs(t: Trace): RecordSpec[] {
  const r = ROUTES[t.route] as (typeof ROUTES)[number];
  const front = { service: 'front', clock: 'host-a', version: t.version, resourceAttrs: { 'k8s.node.name': t.node } };
  const specs: RecordSpec[] = [
    {
      id: 1,
      kind: 'server',
      start: 1000,
      end: 1000 + t.duration,
      route: routeKeyOf(r.service, r.method, r.route),
      error: t.error,
      attrs: { 'http.route': r.route },
      ...front,
    },
  ];
  let next = 2;
  const dbSpec = (c: Child, parent: number, start: number, length: number, statement: string, scope: string, k: number): RecordSpec => ({
    id: next++,
    parent,
    kind: 'client',
    start,
    end: start + length,
    scope,
    name: statement.split(' ')[0],
    attrs: { 'db.system': 'postgresql', 'db.statement': statement, ...(c.params ? { 'db.statement.parameters': `(${k},)` } : {}) },
    ...front,
  });
  for (const c of t.children) {
    const start = 1000 + c.start;
    const statement = STATEMENTS[c.statement] as string;
    switch (c.kind) {
      case 'db':
        specs.push(dbSpec(c, 1, start, c.length, statement, 'sqlalchemy', 0));
        break;
      case 'double':
        specs.push(dbSpec(c, 1, start, c.length + 2, statement, 'opentelemetry.instrumentation.sqlalchemy', 0));
        specs.push(dbSpec(c, 1, start + 1, c.length, statement, 'opentelemetry.instrumentation.psycopg2', 0));
        break;
      case 'nplus1': {
        const own = next++;
        specs.push({ id: own, parent: 1, kind: 'internal', start, end: start + c.repeats * 12 + 5, name: 'load', ...front });
        for (let k = 0; k < c.repeats; k++) specs.push(dbSpec(c, own, start + 1 + k * 12, 11, statement, 'sqlalchemy', k % (c.params ? 6 : 1)));
        break;
      }
      case 'http': {
        const client = next++;
        specs.push({
          id: client,
          parent: 1,
          kind: 'client',
          start,
          end: start + c.length,
          name: 'GET',
          attrs: { 'http.method': 'GET', 'http.url': `http://back:8000/items/${c.statement}` },
          ...front,
        });
        const callee = next++;
        const back = ROUTES[2] as (typeof ROUTES)[number];
        const backRes = { service: 'back', clock: 'host-b', version: '2.0' };
        // the callee's clock is off by `skew`, and its request may be longer than the call (async work)
        specs.push({
          id: callee,
          parent: client,
          kind: 'server',
          start: start + 1 + c.skew,
          end: start + c.length + c.skew + (c.params ? 20 : -1),
          route: routeKeyOf(back.service, back.method, back.route),
          ...backRes,
        });
        specs.push({
          id: next++,
          parent: callee,
          kind: 'client',
          start: start + 2 + c.skew,
          end: start + 2 + c.skew + c.length / 2,
          scope: 'sqlalchemy',
          name: 'SELECT',
          attrs: { 'db.system': 'sqlite', 'db.statement': statement },
          ...backRes,
        });
        break;
      }
      case 'internal': {
        // own work, on another host's clock when skewed (a sidecar), with a DB call that may outlive it
        const own = next++;
        const clock = c.skew === 0 ? front.clock : 'host-c';
        specs.push({ id: own, parent: 1, kind: 'internal', start: start + c.skew, end: start + c.skew + c.length, name: 'work', ...front, clock });
        specs.push({ ...dbSpec(c, own, start + c.skew + c.length / 4, c.length, statement, 'sqlalchemy', 0), clock });
        break;
      }
      case 'cache':
        specs.push({
          id: next++,
          parent: 1,
          kind: 'client',
          start,
          end: start + c.length,
          name: 'GET',
          attrs: { 'db.system': 'redis', 'db.statement': 'GET ?', 'net.peer.name': 'redis' },
          ...front,
        });
        break;
      case 'producer':
        specs.push({
          id: next++,
          parent: 1,
          kind: 'producer',
          start,
          end: start + c.length,
          name: 'send',
          attrs: { 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'q' },
          ...front,
        });
        break;
      case 'consumer':
        specs.push({
          id: next++,
          parent: 1,
          kind: 'consumer',
          start,
          end: start + c.length * 3,
          name: 'run',
          route: routeKeyOf('front', 'GET', '/orders/{id}'),
          ...front,
        });
        break;
      case 'unknown':
        specs.push({ id: next++, parent: 1, kind: 'internal', start, end: start + c.length, name: `GET ${r.route} http send`, ...front });
        break;
      case 'orphan':
        specs.push(dbSpec(c, 999, start, c.length, statement, 'sqlalchemy', 0));
        break;
      case 'duplicate': {
        const last = specs[specs.length - 1] as RecordSpec;
        specs.push({ ...last });
        break;
      }
    }
  }
  return specs;
}

interface Event {
  at: number;
  trace: number;
  spec: RecordSpec;
}

function events(traces: Trace[]): Event[] {
  const out: Event[] = [];
  traces.forEach((t, i) => {
    traceSpecs(t).forEach((spec, k) => out.push({ at: t.arrive + (t.delays[k % t.delays.length] as number), trace: i + 1, spec }));
  });
  return out.sort((a, b) => a.at - b.at); // stable: spans of one batch keep their order
}

/** What an analysis handed to the sink says, every field; the records used are named by id and (adjusted) times. */
function seen(a: TraceAnalysis, nowMs: number): unknown {
  return { ...a, nowMs, used: [...a.used].map((s) => [s.key, s.startMs, s.endMs, s.skewMs, s.resource.service]) };
}

interface Assembler {
  add: TraceAssembler['add'];
  expire: TraceAssembler['expire'];
  flush: TraceAssembler['flush'];
  stats: TraceAssembler['stats'];
}

function run(make: (sink: (a: TraceAnalysis, now: number) => void) => Assembler, evs: Event[], slices: boolean, flushAfterMs: number) {
  const log: unknown[] = [];
  const store = new RouteAnalysisStore({ windowsMs: [60_000, 300_000] });
  const asm = make((a, now) => {
    log.push(seen(a, now));
    for (const req of a.requests) store.record(req, now);
  });
  let tick = 0;
  const advance = (to: number): void => {
    for (; tick <= to; tick += 250) {
      if (slices) while (!asm.expire(tick, () => true));
      else asm.expire(tick);
      log.push(asm.stats());
    }
  };
  for (const e of evs) {
    advance(e.at);
    // fresh records per assembler: analysis adjusts a record's times for clock skew
    asm.add(e.trace, 7, () => e.trace.toString(16).padStart(32, '0'), rec(e.spec), e.at);
  }
  advance((evs[evs.length - 1]?.at ?? 0) + flushAfterMs);
  asm.flush(tick);
  log.push(asm.stats());
  const why = ROUTES.map((r) =>
    buildWhy({ ...r, window: '5m', latency: { count: 100, p50: 40, p95: 150, p99: 190 }, errorCount: 3, data: store.aggregate(r, 300_000, tick) }),
  );
  return { log, why };
}

describe('trace assembly: columnar against the object-per-span reference (property)', () => {
  it('every analysis, stats figure and why answer is identical on random traces with skew, async children, double spans, late and split spans', () => {
    fc.assert(
      fc.property(
        fc.array(trace, { minLength: 1, maxLength: 25 }),
        options,
        fc.boolean(),
        fc.constantFrom(0, 1000, 20_000),
        (traces, opts: AssemblyOptions, slices, flushAfterMs) => {
          const evs = events(traces);
          const want = run((sink) => new ReferenceTraceAssembler(sink, opts), evs, slices, flushAfterMs);
          const got = run((sink) => new TraceAssembler(sink, opts), evs, slices, flushAfterMs);
          expect(got.log).to.deep.equal(want.log);
          expect(got.why).to.deep.equal(want.why);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('the random traces do reach the traps (the property is not vacuous)', () => {
    const totals = {
      requests: 0,
      late: 0,
      evicted: 0,
      orphans: 0,
      duplicates: 0,
      skewRefused: 0,
      truncated: 0,
      outside: 0,
      skewAdjusted: 0,
      doubleSpans: 0,
      nPlusOne: 0,
    };
    fc.assert(
      fc.property(fc.array(trace, { minLength: 1, maxLength: 25 }), options, (traces, opts: AssemblyOptions) => {
        const asm = new TraceAssembler((a) => {
          for (const r of a.requests) {
            totals.truncated += r.quality.truncated;
            totals.outside += r.quality.outside;
            totals.skewAdjusted += r.quality.skewAdjusted;
            totals.doubleSpans += r.quality.doubleSpans;
            totals.nPlusOne += r.nPlusOne.length;
          }
        }, opts);
        let tick = 0;
        for (const e of events(traces)) {
          for (; tick <= e.at; tick += 250) asm.expire(tick);
          asm.add(e.trace, 7, () => '', rec(e.spec), e.at);
        }
        asm.flush(tick + 20_000);
        const s = asm.stats();
        totals.requests += s.requestsAnalysed;
        totals.late += s.lateSpans;
        totals.evicted += s.evictedTraces;
        totals.orphans += s.orphanSpans;
        totals.duplicates += s.duplicateSpans;
        totals.skewRefused += s.skewRefused;
      }),
      { numRuns: 150, seed: 28 },
    );
    for (const [k, v] of Object.entries(totals)) expect(v, k).to.be.greaterThan(0);
  });
});
