import { expect } from 'chai';
import { StopOnce } from './component';

describe('StopOnce', () => {
  it('runs the stop once; every caller waits for that run to end', async () => {
    let runs = 0;
    let finish = (): void => undefined;
    const once = new StopOnce(new AbortController(), async () => {
      runs++;
      await new Promise<void>((resolve) => (finish = resolve));
    });
    const ended: string[] = [];
    const first = once.stop().then(() => ended.push('first'));
    const second = once.stop().then(() => ended.push('second'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).to.deep.equal([]);
    finish();
    await Promise.all([first, second]);
    expect(runs).to.equal(1);
    expect(ended).to.have.members(['first', 'second']);
  });

  it('a later caller’s deadline cuts the run short; without a signal nothing aborts it', async () => {
    const deadline = new AbortController();
    const once = new StopOnce(deadline, () => new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => resolve())));
    const first = once.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(deadline.signal.aborted).to.equal(false);
    const late = new AbortController();
    const second = once.stop(late.signal);
    late.abort();
    await Promise.all([first, second]);
    expect(deadline.signal.aborted).to.equal(true);
  });

  it('an already aborted signal aborts the deadline before the run starts', async () => {
    const deadline = new AbortController();
    let abortedAtStart: boolean | undefined;
    const once = new StopOnce(deadline, async () => void (abortedAtStart = deadline.signal.aborted));
    await once.stop(AbortSignal.abort());
    expect(abortedAtStart).to.equal(true);
  });
});
