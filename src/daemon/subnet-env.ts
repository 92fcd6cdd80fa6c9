/**
 * subnet.env on disk (the format is src/lease/subnet-env.ts): written atomically (temp + fsync + rename,
 * 0644, directory 0755), read back on restart for the previous subnet. The file is treated as hostile:
 * opened non-blocking, only a regular file, at most 64 KiB read.
 */
import { constants } from 'node:fs';
import { open, chmod } from 'node:fs/promises';
import { writeFileAtomic } from '../files/atomic-write.js';
import {
  formatSubnetEnv,
  MAX_SUBNET_ENV_BYTES,
  previousSubnets,
  type PreviousSubnets,
  type SubnetEnvValues,
} from '../lease/subnet-env.js';

export type { PreviousSubnets, SubnetEnvValues };

export async function writeSubnetEnv(path: string, v: SubnetEnvValues): Promise<void> {
  await writeFileAtomic(path, formatSubnetEnv(v));
  await chmod(path, 0o644).catch(() => undefined);
}

const unreadable = (problem: string): PreviousSubnets => ({
  subnet: null,
  subnet6: null,
  network: null,
  ipv6Network: null,
  problems: [problem],
});

/** Reads the previous subnet.env; null when absent. Never throws for bad content. */
export async function readSubnetEnv(path: string): Promise<PreviousSubnets | null> {
  let buf: Buffer;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not block startup until some writer appears.
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return unreadable(`${path} is not a regular file`);
      buf = Buffer.alloc(Math.min(st.size, MAX_SUBNET_ENV_BYTES));
      await fh.read(buf, 0, buf.length, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return unreadable(`cannot read ${path}: ${(err as Error).message}`);
  }
  return previousSubnets(buf.toString('utf8'));
}
