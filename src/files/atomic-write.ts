/**
 * Atomic file replacement for files other programs read while weftd runs (subnet.env, docker-opts'
 * env file): a same-directory temp file, fsync, rename, fsync of the directory, so a reader sees the old
 * file or the new one, never a torn one.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WeftError } from '../errors.js';

/** Writes `content` to `path` atomically: same-directory temp file, fsync, rename, fsync of the dir. */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  try {
    const created = await mkdir(dir, { recursive: true, mode: 0o755 });
    if (created !== undefined) {
      // mkdir's mode is masked by the umask: set 0755 on every directory this call created
      for (let d = dir; d.length >= created.length; d = dirname(d)) {
        await chmod(d, 0o755);
        if (d === created) break;
      }
    }
    const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
    // The temp name is predictable: whatever sits there (a stale temp file of a crashed writer with our
    // pid, or a symbolic link planted to make root truncate and write another file) is removed, and the
    // file is created new, never opened through a link (O_EXCL does not follow one; EEXIST if one is
    // planted again in between, and the caller retries).
    await rm(tmp, { force: true });
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    try {
      try {
        await fh.writeFile(content);
        await fh.chmod(mode); // regardless of umask
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      // a partial temp file (disk full) is not left behind: each retry would leave another
      await rm(tmp, { force: true });
      throw err;
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    throw new WeftError('E_IO', `failed to write ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
