/**
 * Reads a small file that another program (or an attacker with write access to its directory) may have
 * replaced: opened non-blocking so a FIFO planted at the path cannot hang the reader, only a regular
 * file, at most `maxBytes` read (a huge or endless file costs no memory). weftd and weftctl read
 * subnet.env through it; the synchronous form below serves the CNI plugin's subnet.env, the etcd TLS
 * files and the WireGuard key (not following a symbolic link).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

export type RegularFileRead =
  | { readonly ok: true; readonly buf: Buffer }
  | { readonly ok: false; readonly missing: boolean; readonly problem: string };

export async function readRegularFile(path: string, maxBytes: number): Promise<RegularFileRead> {
  try {
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await fh.stat();
      if (!st.isFile())
        return { ok: false, missing: false, problem: `${path} is not a regular file` };
      const buf = Buffer.alloc(Math.min(st.size, maxBytes));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return { ok: true, buf: buf.subarray(0, bytesRead) };
    } finally {
      await fh.close();
    }
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    const problem = missing
      ? `${path} does not exist`
      : `cannot read ${path}: ${(err as Error).message}`;
    return { ok: false, missing, problem };
  }
}

/** Thrown by withRegularFileSync for a FIFO, device, directory or socket at the path. */
export class NotRegularFileError extends Error {
  constructor(readonly path: string) {
    super(`${path} is not a regular file`);
  }
}

/**
 * The synchronous form, for readers that run before anything else can (weftd's start, the CNI plugin):
 * runs `use` with the descriptor of `path` opened non-blocking (a FIFO cannot hang the caller) once it
 * is known to be a regular file (a device cannot feed endless data), and closes it. Throws the open's
 * error as it is (ENOENT …: the caller decides what absent means; ELOOP for a symbolic link with
 * `noFollow`) and NotRegularFileError.
 */
export function withRegularFileSync<T>(
  path: string,
  use: (fd: number, stat: Stats) => T,
  noFollow = false,
): T {
  const { O_RDONLY, O_NONBLOCK, O_NOCTTY, O_NOFOLLOW } = constants;
  const fd = openSync(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | (noFollow ? O_NOFOLLOW : 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFileError(path);
    return use(fd, st);
  } finally {
    closeSync(fd);
  }
}

/** Up to `maxBytes` from the start of `fd` (fewer at the end of the file). */
export function readAtMostSync(fd: number, maxBytes: number): Buffer {
  const buf = Buffer.alloc(maxBytes);
  let n = 0;
  while (n < buf.length) {
    const r = readSync(fd, buf, n, buf.length - n, n);
    if (r === 0) break;
    n += r;
  }
  return buf.subarray(0, n);
}
