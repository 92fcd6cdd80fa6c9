/**
 * The state lock's two ways of taking flock(2) (src/cni/lock.ts) against another process holding the
 * file with util-linux's flock: the standalone plugin's (a `flock` child locking an inherited descriptor)
 * and weftd's (a non-blocking try, polled). Both wait while the other process holds it, answer code 11 at
 * their deadline, and get it once that process is killed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pollingFlock, slotName, utilFlock } from '../../../src/cni/lock.js';

let dir: string;
let holder: ChildProcess | undefined;
const fds: number[] = [];

/** Another process holding `file` (shared or exclusive) until killed. */
async function hold(file: string, exclusive: boolean): Promise<void> {
  // one process: the shell takes the lock on its fd 3 and becomes `sleep`, which keeps it
  holder = spawn(
    'sh',
    [
      '-c',
      `exec 3>>"$0" && flock ${exclusive ? '-x' : '-s'} 3 && echo held && exec sleep 60`,
      file,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  await new Promise((r) => holder!.stdout!.once('data', r));
}

const open = (): number => {
  const fd = openSync(join(dir, 'l'), 'a');
  fds.push(fd);
  return fd;
};
/** Whether a third process could take the file exclusively now. */
const free = () => spawnSync('flock', ['-n', '-x', join(dir, 'l'), 'true']).status === 0;

/** weftd's shape: a non-blocking try (util-linux `flock -n` on this fd stands in for the addon). */
const tryLock = (fd: number, exclusive: boolean): boolean =>
  spawnSync('flock', ['-n', exclusive ? '-x' : '-s', '3'], {
    stdio: ['ignore', 'ignore', 'ignore', fd],
  }).status === 0;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-cni-lock-'));
});
afterEach(() => {
  holder?.kill('SIGKILL');
  holder = undefined;
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['util-linux flock child', utilFlock],
  ['polled non-blocking try', pollingFlock(tryLock)],
] as const)('state lock through a %s', (_name, flock) => {
  it('waits for another process, answers code 11 at its deadline, and keeps the lock after it returns', async () => {
    await hold(join(dir, 'l'), true);
    const t0 = Date.now();
    await expect(flock(open(), false, 1_000)).rejects.toMatchObject({ code: 11 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    holder!.kill('SIGKILL'); // a holder that dies holds nothing
    const fd = open();
    await flock(fd, true, 5_000);
    expect(free()).toBe(false); // held by this process' open file, not by a child
    closeSync(fds.pop()!);
    expect(free()).toBe(true);
  });

  it('shared holders share; exclusive waits for them', async () => {
    await hold(join(dir, 'l'), false);
    await flock(open(), false, 1_000);
    await expect(flock(open(), true, 300)).rejects.toMatchObject({ code: 11 });
  });
});

it('attachments map to fixed slot files', () => {
  expect(slotName('c1', 'eth0')).toMatch(/^\.lock-[0-9a-f]{2}$/);
  expect(slotName('c1', 'eth0')).toBe(slotName('c1', 'eth0'));
  const slots = new Set(Array.from({ length: 200 }, (_, i) => slotName(`c${i}`, 'eth0')));
  expect(slots.size).toBeGreaterThan(100);
});

it('a failing try (weftd: the addon throws, e.g. EBADF) is code 5, not an internal error', async () => {
  const broken = pollingFlock(() => {
    throw new Error('flock: EBADF');
  });
  await expect(broken(-1, true, 1_000)).rejects.toMatchObject({
    code: 5,
    message: expect.stringContaining('EBADF'),
  });
});
