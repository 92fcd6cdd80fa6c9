/** Ordering of CNI calls inside weftd (src/daemon/cni-locks.ts). */
import { describe, expect, it } from 'vitest';
import { CniLocks } from '../../../src/daemon/cni-locks.js';

const deferred = () => {
  let resolve!: () => void;
  const p = new Promise<void>((r) => (resolve = r));
  return { p, resolve };
};
const tick = () => new Promise((r) => setTimeout(r, 5));

describe('CniLocks', () => {
  it('runs calls for one container one after another, other containers concurrently', async () => {
    const locks = new CniLocks();
    const log: string[] = [];
    const a = deferred();
    const first = locks.shared('c1', async () => {
      log.push('c1 first start');
      await a.p;
      log.push('c1 first end');
    });
    const second = locks.shared('c1', async () => void log.push('c1 second'));
    const other = locks.shared('c2', async () => void log.push('c2'));
    await other;
    await tick();
    expect(log).toEqual(['c1 first start', 'c2']);
    a.resolve();
    await Promise.all([first, second]);
    expect(log).toEqual(['c1 first start', 'c2', 'c1 first end', 'c1 second']);
    expect(locks.size).toBe(0);
  });

  it('a failing call releases its container', async () => {
    const locks = new CniLocks();
    await expect(locks.shared('c1', async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    await expect(locks.shared('c1', async () => 'ok')).resolves.toBe('ok');
    expect(locks.size).toBe(0);
  });

  it('GC waits for running calls and holds back later ones', async () => {
    const locks = new CniLocks();
    const log: string[] = [];
    const a = deferred();
    const running = locks.shared('c1', async () => {
      await a.p;
      log.push('add');
    });
    const gc = locks.exclusive(async () => void log.push('gc'));
    const later = locks.shared('c2', async () => void log.push('later'));
    await tick();
    expect(log).toEqual([]);
    a.resolve();
    await Promise.all([running, gc, later]);
    expect(log).toEqual(['add', 'gc', 'later']);
  });
});
