/**
 * N+1 detection, DB and outbound HTTP, on one request's spans.
 *
 * Sentry's rule is the floor (reference/trace-analysis.md §1.2): under one parent, a run of at least
 * `minRepeats` (5) consecutive children with one statement fingerprint (or one HTTP call template) — any other
 * kind of child in between ends the run, as does a different fingerprint — whose intervals' union lasts at least
 * `minTotalMs` (50 ms). Truncated statements and statements without a space never form a run (Sentry).
 *
 * "With different parameters": where the values are visible — `db.statement.parameters`, literals in the SQL,
 * ids or a query string in the URL — the run needs `minRepeats` distinct values (the same values again and again
 * are redundant calls, not N+1). Where they are not (the Python DB instrumentations record `… = %s` and never
 * the values), a run counts only as a strictly sequential chain: each call starts when the previous one has ended
 * (perf-sentinel's sanitizer-aware rule), which concurrent fan-out (asyncio.gather, thread pools) is not.
 */
import { length, union } from './intervals';
import { SpanClass, type Category, type SpanRecord } from './span-record';
import type { SqlFingerprint } from './sql';
import type { HttpTemplate } from './http-template';

export interface NPlusOneOptions {
  /** Repeats needed. @default 5 */
  minRepeats?: number;
  /** Union of the repeats' intervals needed, ms. @default 50 */
  minTotalMs?: number;
}

export interface NPlusOneFinding {
  kind: 'db' | 'http';
  /** Statement fingerprint text or HTTP call template. */
  fingerprint: string;
  /** db.system, or the HTTP server. */
  system: string;
  repeats: number;
  /** Union of the repeats' intervals, ms. */
  costMs: number;
  /** The repeated spans' ids (hex), the first ten. */
  spanIds: string[];
  /** How "different parameters" was established. */
  evidence: 'values' | 'sequential';
}

/** A direct child of a span, clipped to it (what the request walk collected). */
interface Child {
  rec: SpanRecord;
  start: number;
  end: number;
  category: Category;
}

export const DEFAULT_MIN_REPEATS = 5;
export const DEFAULT_MIN_TOTAL_MS = 50;
const MAX_SPAN_IDS = 10;
/** Clocks round to microseconds or worse: a call may appear to start a hair before the previous one ended. */
const SEQUENTIAL_TOLERANCE_MS = 0.001;

/**
 * Findings of one request. `siblings` maps a parent span key to its direct children (any category, clipped);
 * `fingerprints` gives each DB or HTTP child's fingerprint or template.
 */
export function detectNPlusOne(
  siblings: ReadonlyMap<number, readonly Child[]>,
  fingerprints: ReadonlyMap<SpanRecord, SqlFingerprint | HttpTemplate>,
  options: NPlusOneOptions = {},
): NPlusOneFinding[] {
  const minRepeats = options.minRepeats ?? DEFAULT_MIN_REPEATS;
  const minTotalMs = options.minTotalMs ?? DEFAULT_MIN_TOTAL_MS;
  const out: NPlusOneFinding[] = [];
  for (const kids of siblings.values()) {
    const ordered = [...kids].sort((a, b) => a.start - b.start || a.end - b.end);
    let run: Child[] = [];
    let runKey = '';
    const close = (): void => {
      if (run.length >= minRepeats) {
        const f = evaluate(run, fingerprints, minRepeats, minTotalMs);
        if (f !== undefined) out.push(f);
      }
      run = [];
      runKey = '';
    };
    for (const c of ordered) {
      const fp = fingerprints.get(c.rec);
      const eligible = fp !== undefined && (c.rec.cls === SpanClass.Db || c.rec.cls === SpanClass.Http) && isGroupable(fp);
      if (!eligible) {
        close();
        continue;
      }
      const key = `${c.rec.cls}\u0000${fp.text}`;
      if (key !== runKey) {
        close();
        runKey = key;
      }
      run.push(c);
    }
    close();
  }
  return out;
}

function isSql(fp: SqlFingerprint | HttpTemplate): fp is SqlFingerprint {
  return (fp as SqlFingerprint).truncated !== undefined;
}

function isGroupable(fp: SqlFingerprint | HttpTemplate): boolean {
  if (!isSql(fp)) return true;
  return !fp.truncated && fp.text.includes(' ');
}

function evaluate(
  run: readonly Child[],
  fingerprints: ReadonlyMap<SpanRecord, SqlFingerprint | HttpTemplate>,
  minRepeats: number,
  minTotalMs: number,
): NPlusOneFinding | undefined {
  const costMs = length(union(run.flatMap((c) => [c.start, c.end])));
  if (costMs < minTotalMs) return undefined;
  const first = run[0] as Child;
  const fp = fingerprints.get(first.rec) as SqlFingerprint | HttpTemplate;
  let evidence: 'values' | 'sequential';
  const values = valuesOf(run, fingerprints);
  if (values !== undefined) {
    if (new Set(values).size < minRepeats) return undefined;
    evidence = 'values';
  } else {
    for (let i = 1; i < run.length; i++) {
      if ((run[i] as Child).start < (run[i - 1] as Child).end - SEQUENTIAL_TOLERANCE_MS) return undefined;
    }
    evidence = 'sequential';
  }
  return {
    kind: first.rec.cls === SpanClass.Db ? 'db' : 'http',
    fingerprint: fp.text,
    system: isSql(fp) ? first.rec.system : fp.server,
    repeats: run.length,
    costMs,
    spanIds: run.slice(0, MAX_SPAN_IDS).map((c) => c.rec.spanIdHex()),
    evidence,
  };
}

/** The parameter values of each call when every call shows them; undefined when they are not visible. */
function valuesOf(run: readonly Child[], fingerprints: ReadonlyMap<SpanRecord, SqlFingerprint | HttpTemplate>): string[] | undefined {
  const out: string[] = [];
  for (const c of run) {
    const fp = fingerprints.get(c.rec) as SqlFingerprint | HttpTemplate;
    if (isSql(fp)) {
      if (c.rec.parameters !== '') out.push(c.rec.parameters);
      else if (fp.literals) out.push(c.rec.statement);
      else return undefined;
    } else {
      if (!fp.parameterised && !fp.raw.includes('?')) return undefined;
      out.push(fp.raw);
    }
  }
  return out;
}
