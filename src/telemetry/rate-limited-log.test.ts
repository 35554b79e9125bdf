/** Warnings at most once per interval and key, saying how many were held back. */
import { expect } from 'chai';
import fc from 'fast-check';
import { capturedLogger } from '../../test/support/captured-logs';
import { RateLimitedLog } from './rate-limited-log';

describe('RateLimitedLog', () => {
  it('logs the first warning of a key, holds back the rest of the interval, then logs one saying how many it held back', () => {
    let now = 0;
    const log = new RateLimitedLog(10_000, () => now);
    const { logger, lines } = capturedLogger();
    const warn = (key: string, at: number): void => {
      now = at;
      log.warn(logger, key, { client: key }, 'Rejected an export request');
    };
    warn('a', 0);
    warn('a', 5_000);
    warn('b', 6_000); // another key has its own interval
    warn('a', 9_999);
    warn('a', 10_000);
    warn('a', 20_000);
    expect(lines.map((l) => [l.client, l.suppressed_since_last, l.msg, l.level])).to.deep.equal([
      ['a', undefined, 'Rejected an export request', 40],
      ['b', undefined, 'Rejected an export request', 40],
      ['a', 2, 'Rejected an export request', 40],
      ['a', undefined, 'Rejected an export request', 40],
    ]);
  });

  it('accounts for every warning: per key, those logged plus those reported held back plus those still held back are all of them', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 4000 })), { maxLength: 60 }), (calls) => {
        let now = 0;
        const log = new RateLimitedLog(5000, () => now);
        const { logger, lines } = capturedLogger();
        // A reference model: when each key last logged, and how many it held back since.
        const model = new Map<string, { at: number; held: number }>();
        const expected: [string, number | undefined][] = [];
        for (const [key, dt] of calls) {
          now += dt;
          log.warn(logger, key, { key }, 'w');
          const m = model.get(key);
          if (m !== undefined && now - m.at < 5000) m.held++;
          else {
            expected.push([key, m?.held ? m.held : undefined]);
            model.set(key, { at: now, held: 0 });
          }
        }
        expect(lines.map((l) => [l.key, l.suppressed_since_last])).to.deep.equal(expected);
        for (const key of ['a', 'b', 'c']) {
          const calledFor = calls.filter(([k]) => k === key).length;
          const mine = lines.filter((l) => l.key === key);
          const reported = mine.reduce((n, l) => n + ((l.suppressed_since_last as number | undefined) ?? 0), 0);
          expect(mine.length + reported + (model.get(key)?.held ?? 0)).to.equal(calledFor);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps at most about a thousand keys: past that it forgets them all (a key logs again at once)', () => {
    const log = new RateLimitedLog(60_000, () => 0);
    const { logger, lines } = capturedLogger();
    log.warn(logger, 'first', {}, 'w');
    log.warn(logger, 'first', {}, 'w');
    expect(lines).to.have.length(1);
    for (let i = 0; i < 1001; i++) log.warn(logger, `client-${i}`, {}, 'w');
    log.warn(logger, 'first', {}, 'w');
    expect(lines).to.have.length(1 + 1001 + 1);
  });
});
