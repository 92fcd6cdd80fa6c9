/**
 * The one-weftd-per-host lock (src/daemon/instance-lock.ts) on the real kernel's abstract unix sockets:
 * a second taker of the same state dir gets E_ALREADY_RUNNING, another state dir is free, and a local
 * process that connects to the lock is disconnected at once (it must not hold a weftd descriptor).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockInstance } from '../../../src/daemon/instance-lock.js';

describe('weftd instance lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the same state dir is taken once; another one is free', async () => {
    await lockInstance(join(dir, 'a'));
    await expect(lockInstance(join(dir, 'a'))).rejects.toMatchObject({
      code: 'E_ALREADY_RUNNING',
      message: expect.stringContaining(`--state-dir ${resolve(dir, 'a')}`),
    });
    // The same dir spelled differently is the same lock.
    await expect(lockInstance(join(dir, 'x', '..', 'a'))).rejects.toMatchObject({
      code: 'E_ALREADY_RUNNING',
    });
    await expect(lockInstance(join(dir, 'b'))).resolves.toBeUndefined();
  });

  it('a process connecting to the lock is disconnected at once', async () => {
    const stateDir = join(dir, 'c');
    await lockInstance(stateDir);
    const hash = createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 32);
    const closed = await new Promise<string>((done, fail) => {
      const s = connect({ path: `\0weft/weftd/${hash}` });
      const timer = setTimeout(() => {
        s.destroy();
        done('still open after 2 s');
      }, 2000);
      s.on('error', fail);
      s.on('close', () => {
        clearTimeout(timer);
        done('closed');
      });
      s.resume();
    });
    expect(closed).toBe('closed');
  });
});
