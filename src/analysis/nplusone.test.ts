/**
 * A labelled N+1 corpus: traces that are N+1 (DB and HTTP, with and without parameter values) and near misses
 * that must not be (4 repeats, an IN-list batch, the same statement under different parents, under 50 ms,
 * concurrent fan-out, the same values repeated, a different call in between, truncated text).
 */
import { expect } from 'chai';
import { db, http, rec, server } from '../../test/support/span-records';
import type { SpanRecord } from './span-record';
import { analyzeTrace } from './trace';
import type { NPlusOneFinding } from './nplusone';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const ITEMS = 'SELECT items.id, items.sku FROM items WHERE items.order_id = %(param_1)s';
const ORDERS = 'SELECT orders.id FROM orders WHERE orders.user_id = %(user_id_1)s';

/** Source query then `n` sequential executions of `stmt(i)`, each `ms` long, under the request span. */
function lazyLoad(n: number, ms: number, stmt: (i: number) => string = () => ITEMS, gap = 1): SpanRecord[] {
  const spans = [server(1, 0, 1000), db(2, 1, 1, 5, ORDERS)];
  let t = 6;
  for (let i = 0; i < n; i++) {
    spans.push(db(10 + i, 1, t, t + ms, stmt(i)));
    t += ms + gap;
  }
  return spans;
}

function findings(spans: SpanRecord[]): NPlusOneFinding[] {
  return analyzeTrace(T, spans).requests.flatMap((r) => r.nPlusOne);
}

interface Case {
  name: string;
  spans: () => SpanRecord[];
  /** Expected finding: [kind, fingerprint, repeats, costMs, evidence], or undefined for none. */
  want: [string, string, number, number, string] | undefined;
}

const ITEMS_FP = 'SELECT items.id, items.sku FROM items WHERE items.order_id = ?';

const corpus: Case[] = [
  // ---- positives
  {
    name: 'SQLAlchemy lazy loading: 6 sequential placeholder-only executions, 60 ms',
    spans: () => lazyLoad(6, 10),
    want: ['db', ITEMS_FP, 6, 60, 'sequential'],
  },
  {
    name: 'literal values, all different: 5 executions, 55 ms',
    spans: () => lazyLoad(5, 11, (i) => `SELECT items.id, items.sku FROM items WHERE items.order_id = ${i + 1}`),
    want: ['db', ITEMS_FP, 5, 55, 'values'],
  },
  {
    name: 'recorded parameters (capture_parameters=True), all different, even when overlapping',
    spans: () => {
      const spans = [server(1, 0, 1000)];
      for (let i = 0; i < 5; i++) spans.push(db(10 + i, 1, 10 + i * 8, 30 + i * 8, ITEMS, { attrs: { 'db.statement.parameters': `(${i},)` } }));
      return spans;
    },
    want: ['db', ITEMS_FP, 5, 52, 'values'],
  },
  {
    name: 'outbound HTTP: 6 sequential GETs of /users/{id}, 60 ms',
    spans: () => {
      const spans = [server(1, 0, 1000)];
      for (let i = 0; i < 6; i++) spans.push(http(10 + i, 1, 10 + i * 11, 20 + i * 11, `http://users:8000/users/${i + 1}`));
      return spans;
    },
    want: ['http', 'GET users:8000 /users/{id}', 6, 60, 'values'],
  },
  {
    name: 'under a handler span, with the source query and 30 repeats',
    spans: () => [
      server(1, 0, 1000),
      rec({ id: 2, parent: 1, start: 1, end: 900, name: 'handler' }),
      db(3, 2, 2, 5, ORDERS),
      ...Array.from({ length: 30 }, (_, i) => db(10 + i, 2, 6 + i * 3, 8 + i * 3, ITEMS)),
    ],
    want: ['db', ITEMS_FP, 30, 60, 'sequential'],
  },
  // ---- near misses
  { name: 'only 4 repeats (80 ms)', spans: () => lazyLoad(4, 20), want: undefined },
  {
    name: 'an IN-list batch: one statement for all ids',
    spans: () => [
      server(1, 0, 1000),
      db(2, 1, 1, 5, ORDERS),
      db(3, 1, 6, 200, 'SELECT items.id FROM items WHERE items.order_id IN (%(id_1_1)s, %(id_1_2)s, %(id_1_3)s, %(id_1_4)s, %(id_1_5)s, %(id_1_6)s)'),
    ],
    want: undefined,
  },
  {
    name: 'the same statement under different parents (3 + 3)',
    spans: () => [
      server(1, 0, 1000),
      rec({ id: 2, parent: 1, start: 0, end: 400, name: 'a' }),
      rec({ id: 3, parent: 1, start: 400, end: 800, name: 'b' }),
      ...[0, 1, 2].map((i) => db(10 + i, 2, 10 + i * 30, 30 + i * 30, ITEMS)),
      ...[0, 1, 2].map((i) => db(20 + i, 3, 410 + i * 30, 430 + i * 30, ITEMS)),
    ],
    want: undefined,
  },
  { name: 'under 50 ms in all (6 × 5 ms)', spans: () => lazyLoad(6, 5), want: undefined },
  {
    name: 'concurrent fan-out without values (asyncio.gather)',
    spans: () => [server(1, 0, 1000), ...Array.from({ length: 6 }, (_, i) => db(10 + i, 1, 10 + i, 60 + i, ITEMS))],
    want: undefined,
  },
  {
    name: 'the same literal value six times (redundant, not N+1)',
    spans: () => lazyLoad(6, 10, () => 'SELECT items.id, items.sku FROM items WHERE items.order_id = 7'),
    want: undefined,
  },
  {
    name: 'another call in between breaks the run (3 + HTTP + 3)',
    spans: () => {
      const s = lazyLoad(6, 10);
      s.push(http(50, 1, 38.5, 39, 'http://x/y'));
      return s;
    },
    want: undefined,
  },
  {
    name: 'truncated statements never group',
    spans: () => lazyLoad(6, 10, () => 'SELECT items.id, items.sku FROM items WHERE items.order_id = ...'),
    want: undefined,
  },
  {
    name: 'outbound HTTP to a fixed URL with no ids, overlapping: fan-out',
    spans: () => [server(1, 0, 1000), ...Array.from({ length: 6 }, (_, i) => http(10 + i, 1, 10 + i, 40 + i, 'http://flags/all'))],
    want: undefined,
  },
];

describe('N+1 detection: labelled corpus', () => {
  for (const c of corpus) {
    it(`${c.want === undefined ? 'near miss' : 'N+1'}: ${c.name}`, () => {
      const got = findings(c.spans()).map((f) => [f.kind, f.fingerprint, f.repeats, f.costMs, f.evidence]);
      expect(got).to.deep.equal(c.want === undefined ? [] : [c.want]);
    });
  }

  it('a finding names the offending spans (the first ten) and thresholds are configurable', () => {
    const spans = lazyLoad(12, 10);
    const [f] = analyzeTrace(T, spans).requests[0]!.nPlusOne;
    expect(f?.spanIds).to.deep.equal(spans.slice(2, 12).map((s) => s.spanIdHex()));
    expect(analyzeTrace(T, lazyLoad(4, 20), { minRepeats: 4 }).requests[0]!.nPlusOne).to.have.length(1);
    expect(analyzeTrace(T, lazyLoad(6, 10), { minTotalMs: 100 }).requests[0]!.nPlusOne).to.have.length(0);
  });
});
