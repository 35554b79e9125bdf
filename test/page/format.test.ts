/**
 * The page's formatting functions (a classic browser script) run in a fresh V8 context: known answers for the
 * values the tables and cards show.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

interface PageFormat {
  fmtMs(ms: number | null): string;
  fmtRate(r: number): string;
  fmtPct(ratio: number): string;
  fmtCount(n: number): string;
  fmtBytes(b: number | null): string;
  fmtImpact(msPerS: number | null): string;
  fmtError(relative: number): string;
  isMaxOnly(q: number, n: number): boolean;
}

function loadFormat(): PageFormat {
  const code = fs.readFileSync(path.join(__dirname, '../../src/extensions/routequery/page/format.js'), 'utf8');
  const ctx = vm.createContext({});
  vm.runInContext(code, ctx);
  return vm.runInContext('({ fmtMs, fmtRate, fmtPct, fmtCount, fmtBytes, fmtImpact, fmtError, isMaxOnly })', ctx) as PageFormat;
}

describe('page formatting', () => {
  const f = loadFormat();

  it('durations: 3 significant digits, unit chosen after rounding', () => {
    expect([0.4321, 12.34, 123.4, 999.6, 1204, 95_000, 150_000, 0, null].map((v) => f.fmtMs(v))).to.deep.equal([
      '432µs',
      '12.3ms',
      '123ms',
      '1.00s',
      '1.20s',
      '95.0s',
      '2.50m',
      '0',
      '–',
    ]);
  });

  it('rates, percentages, counts, bytes, impact and the error bound', () => {
    expect([0, 0.004, 0.35, 20.14, 1204.4].map((v) => f.fmtRate(v))).to.deep.equal(['0', '<0.01', '0.35', '20.1', '1204']);
    expect([0, 0.0004, 0.025, 0.125].map((v) => f.fmtPct(v))).to.deep.equal(['0%', '<0.1%', '2.5%', '13%']);
    expect(f.fmtCount(1234567)).to.equal('1\u202f234\u202f567');
    expect([512, 14_540, 100_663_296, null].map((v) => f.fmtBytes(v))).to.deep.equal(['512 B', '14.2 KiB', '96.0 MiB', '–']);
    expect([412, 1200, -1, null].map((v) => f.fmtImpact(v))).to.deep.equal(['412ms/s', '1.20s/s', '–', '–']);
    expect(f.fmtError(0.00541516)).to.equal('±0.54%');
  });

  it('a percentile from too few spans is the slowest span: p99 needs 100, p95 20, p50 2', () => {
    expect([1, 50, 99, 100, 101].map((n) => f.isMaxOnly(0.99, n))).to.deep.equal([true, true, true, false, false]);
    expect([19, 20].map((n) => f.isMaxOnly(0.95, n))).to.deep.equal([true, false]);
    expect([1, 2].map((n) => f.isMaxOnly(0.5, n))).to.deep.equal([true, false]);
    expect(f.isMaxOnly(0.99, 0)).to.equal(false);
  });
});
