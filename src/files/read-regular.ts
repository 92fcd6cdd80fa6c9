/**
 * Reads a small file that another program (or an attacker with write access to its directory) may have
 * replaced: opened non-blocking so a FIFO planted at the path cannot hang the reader, only a regular
 * file, at most `maxBytes` read (a huge or endless file costs no memory). weftd and weftctl read
 * subnet.env through it.
 */
import { constants } from 'node:fs';
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
