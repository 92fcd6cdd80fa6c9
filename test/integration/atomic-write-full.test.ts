/**
 * writeFileAtomic (subnet.env, the subnet-lease record, docker-opts' env file) against what may sit at
 * its predictable temp path `.<name>.<pid>.tmp`, and on a full disk.
 * - A symbolic link planted there (the directory may be writable by others, or a stale link survives) was
 *   followed: weftd, as root, truncated and wrote the link's target (any file on the host). Now the
 *   temp file is always created new (O_EXCL, O_NOFOLLOW) and the target stays untouched.
 * - On a full disk (a real ENOSPC from a 8 KiB tmpfs in a private mount namespace) the error names the
 *   file (E_IO), no partial temp file is left (weftd retries while the disk stays full, and each failed
 *   attempt used to leave one behind) and the old content stays.
 */
import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/files/atomic-write.js';
import { requireCaps } from '../helpers/require.js';
import { assertBuilt, REPO } from '../e2e/weftd-harness.js';

const runnable = requireCaps('root');

describe('writeFileAtomic', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
    dirs.push(dir);
    return dir;
  };

  it('never writes through a symbolic link planted at its temp path', async () => {
    const dir = tempDir();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'root:x:0:0:root:/root:/bin/bash\n');
    const file = join(dir, 'subnet.env');
    const tmp = join(dir, `.subnet.env.${process.pid}.tmp`);
    symlinkSync(victim, tmp);
    await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.2.1/24\n');
    expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0:root:/root:/bin/bash\n');
    expect(readFileSync(file, 'utf8')).toBe('FLANNEL_SUBNET=10.5.2.1/24\n');
    expect(lstatSync(file).isFile()).toBe(true);
    expect(() => lstatSync(tmp)).toThrow(/ENOENT/);
  });

  it.skipIf(!runnable)(
    'on a full disk fails with E_IO naming the file, leaves no temp file and keeps the old content',
    () => {
      assertBuilt();
      const dir = tempDir();
      // A child in its own mount namespace mounts a tiny tmpfs over `dir` (nothing leaks to the host's
      // mounts) and reports what each write did.
      const script = `
        import { readFileSync, readdirSync } from 'node:fs';
        import { writeFileAtomic } from ${JSON.stringify(join(REPO, 'dist/files/atomic-write.js'))};
        const dir = process.argv[1], file = dir + '/subnet.env', out = {};
        await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.1.1/24\\n');
        out.full = await writeFileAtomic(file, 'x'.repeat(64 << 10)).then(() => 'written', (e) => ({ code: e.code, message: e.message }));
        out.afterFull = { files: readdirSync(dir), content: readFileSync(file, 'utf8') };
        await writeFileAtomic(file, 'FLANNEL_SUBNET=10.5.2.1/24\\n');
        out.next = readFileSync(file, 'utf8');
        process.stdout.write(JSON.stringify(out));`;
      const stdout = execFileSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t tmpfs -o size=8k weft-full "$1" && exec node --input-type=module -e "$0" "$1"',
          script,
          dir,
        ],
        { encoding: 'utf8' },
      );
      const out = JSON.parse(stdout) as {
        full: { code: string; message: string } | string;
        afterFull: { files: string[]; content: string };
        next: string;
      };
      expect(out.full).toMatchObject({ code: 'E_IO' });
      const err = out.full as { message: string };
      expect(err.message).toContain(join(dir, 'subnet.env'));
      expect(err.message).toMatch(/ENOSPC/);
      expect(out.afterFull).toEqual({
        files: ['subnet.env'],
        content: 'FLANNEL_SUBNET=10.5.1.1/24\n',
      });
      // And the next attempt, the disk no longer full, succeeds.
      expect(out.next).toBe('FLANNEL_SUBNET=10.5.2.1/24\n');
      expect(readdirSync(dir)).toEqual([]); // the tmpfs was the child's alone
    },
  );
});
