/**
 * writeFileAtomic (subnet.env, docker-opts' env file) on a full disk: the kernel's ENOSPC from the
 * temp file's write. The error names the file (E_IO) and no partial temp file is left: weftd retries
 * the write every few seconds while the disk stays full, and each failed attempt used to leave a
 * `.subnet.env.<pid>.tmp` behind. The temp path is made a symlink to /dev/full, whose writes fail with
 * ENOSPC, so a real full-disk write error happens without filling a file system.
 */
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/files/atomic-write.js';
import { hasCode } from '../../src/errors.js';

describe('writeFileAtomic on a full disk', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('fails with E_IO naming the file, leaves no temp file and keeps the old content', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
    dirs.push(dir);
    const file = join(dir, 'subnet.env');
    await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.1.1/24\n');
    const tmp = join(dir, `.subnet.env.${process.pid}.tmp`);
    symlinkSync('/dev/full', tmp);
    const err = await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.2.1/24\n').catch(
      (e: unknown) => e,
    );
    expect(hasCode(err, 'E_IO')).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/ENOSPC/);
    expect(() => lstatSync(tmp)).toThrow(/ENOENT/);
    expect(readFileSync(file, 'utf8')).toBe('FLANNEL_SUBNET=10.5.1.1/24\n');
    // And the next attempt, the disk no longer full, succeeds.
    await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.2.1/24\n');
    expect(readFileSync(file, 'utf8')).toBe('FLANNEL_SUBNET=10.5.2.1/24\n');
  });
});
