/**
 * A short soak (≈ 30 s): steady traffic through routelens to a downstream that flaps every few seconds.
 * Every span routelens acknowledged must reach the sink. Duplicates are allowed (at-least-once): a request
 * the sink recorded just before it was force-stopped is retried by the exporter because its answer was lost.
 * The long version is `node dist/bench/soak.js --minutes 30`.
 */
import { expect } from 'chai';
import { runSoak } from '../../bench/soak';

describe('soak (short): steady load, flapping downstream', function () {
  this.timeout(90_000);

  it('loses nothing that was acknowledged', async () => {
    const lines: string[] = [];
    const r = await runSoak({
      durationMs: 25_000,
      rate: 800,
      upMs: 2_500,
      downMs: 1_500,
      reportEveryMs: 5_000,
      drainTimeoutMs: 20_000,
      log: (l) => lines.push(l),
    });
    const summary = `${JSON.stringify(r)}\n${lines.join('\n')}`;
    expect(r.flaps, summary).to.be.at.least(3);
    expect(r.sent, summary).to.be.at.least(5_000);
    expect(r.lost, summary).to.equal(0);
    expect(r.received, summary).to.equal(r.sent);
  });
});
