/**
 * weftd reads the previous subnet.env at startup (to reuse its subnet); the file is hostile: a FIFO at
 * that path must be reported as "not a regular file" at once, not block startup (and SIGTERM) forever.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSubnetEnv } from '../../../src/daemon/subnet-env.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-subnetenv-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readSubnetEnv (hostile file)', () => {
  it('a FIFO is reported as not a regular file without blocking', async () => {
    const fifo = join(dir, 'subnet.env');
    execFileSync('mkfifo', [fifo]);
    const result = await Promise.race([
      readSubnetEnv(fifo),
      new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 1500).unref()),
    ]);
    expect(result).not.toBe('blocked');
    expect(result).toMatchObject({
      subnet: null,
      problems: [expect.stringMatching(/not a regular file/)],
    });
  });

  it('a symlink to /dev/zero is reported, not read', async () => {
    const link = join(dir, 'zero.env');
    execFileSync('ln', ['-s', '/dev/zero', link]);
    expect((await readSubnetEnv(link))?.problems[0]).toMatch(/not a regular file/);
  });
});
