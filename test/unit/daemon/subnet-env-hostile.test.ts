/**
 * weftd reads the previous subnet.env at startup (to reuse its subnet), weftctl reads it for status and
 * doctor; the file is hostile: a FIFO at that path must be reported as "not a regular file" at once, not
 * block startup (and SIGTERM) or the operator's command forever. A file over the 64 KiB limit is named
 * as such in weftd's warning (it was read up to the limit exactly, and the warning blamed a line).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSubnetEnvState } from '../../../src/cli/host-view.js';
import { readSubnetEnv } from '../../../src/daemon/subnet-env.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-subnetenv-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fifo = join(dir, 'subnet.env');
execFileSync('mkfifo', [fifo]);
const link = join(dir, 'zero.env');
execFileSync('ln', ['-s', '/dev/zero', link]);

describe('readSubnetEnv (hostile file)', () => {
  it('a FIFO is reported as not a regular file without blocking', async () => {
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
    expect((await readSubnetEnv(link))?.problems[0]).toMatch(/not a regular file/);
  });

  it('a file over 64 KiB is named as such; its start is still read', async () => {
    const big = join(dir, 'big-weftd.env');
    writeFileSync(
      big,
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.3.1/24\n' + '#'.repeat(200_000),
    );
    const prev = await readSubnetEnv(big);
    expect(prev?.problems).toEqual(['larger than 65536 bytes (only the start was read)']);
    expect(prev?.subnet).toBe('10.5.3.0/24');
  });
});

describe("weftctl's subnet.env reader (hostile file)", () => {
  it('a FIFO is reported as not a regular file without blocking', async () => {
    const result = await Promise.race([
      readSubnetEnvState(fifo),
      new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 1500).unref()),
    ]);
    expect(result).not.toBe('blocked');
    expect(result).toMatchObject({
      text: null,
      parsed: null,
      error: `${fifo} is not a regular file`,
    });
  });

  it('/dev/zero is reported, not read; a missing file is named', async () => {
    expect((await readSubnetEnvState(link)).error).toMatch(/not a regular file/);
    const missing = join(dir, 'missing.env');
    expect((await readSubnetEnvState(missing)).error).toBe(`${missing} does not exist`);
  });

  it('reads at most 64 KiB of a large file', async () => {
    const big = join(dir, 'big.env');
    writeFileSync(big, 'FLANNEL_NETWORK=10.5.0.0/16\n' + '#'.repeat(200_000));
    const st = await readSubnetEnvState(big);
    expect(st.error).toBeNull();
    expect(st.text?.length).toBe(64 * 1024);
  });
});
