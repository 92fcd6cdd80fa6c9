/**
 * waitApplied (src/dataplane/forwarder-args.ts) polls until the forwarder thread has applied its route
 * commands, within a deadline of elapsed time: a wall clock stepped back (NTP, an operator) must not
 * stretch a 1 ms poll of a stuck forwarder by the length of the step.
 */
import { describe, expect, it, vi } from 'vitest';
import { waitApplied } from '../../../src/dataplane/forwarder-args.js';

describe('waitApplied', () => {
  it('times out after timeoutMs of elapsed time, however the wall clock is stepped', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-06-01T12:00:00Z') });
    try {
      let polls = 0;
      const applied = (): number => {
        if (++polls === 3) vi.setSystemTime(new Date('2026-06-01T11:00:00Z')); // stepped back 1 h
        return 0;
      };
      const started = performance.now();
      const err = await Promise.race([
        waitApplied(1, applied, () => undefined, 100).catch((e: unknown) => e),
        new Promise((r) => setTimeout(() => r('still waiting after 2 s'), 2000)),
      ]);
      expect(err).toMatchObject({ code: 'E_NATIVE', details: { code: 'ETIMEDOUT' } });
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('returns once the target is applied and throws what failure() reports', async () => {
    let n = 0;
    await waitApplied(
      3,
      () => ++n,
      () => undefined,
      1000,
    );
    expect(n).toBe(3);
    await expect(
      waitApplied(
        1,
        () => 0,
        () => new Error('thread died'),
        1000,
      ),
    ).rejects.toThrow('thread died');
  });
});
