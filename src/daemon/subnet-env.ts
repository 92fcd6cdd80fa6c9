/**
 * subnet.env on disk (the format is src/lease/subnet-env.ts): written atomically (temp + fsync + rename,
 * 0644, directory 0755), read back on restart for the previous subnet. The file is treated as hostile:
 * opened non-blocking, only a regular file, at most 64 KiB read (src/files/read-regular.ts).
 */
import { chmod } from 'node:fs/promises';
import { writeFileAtomic } from '../files/atomic-write.js';
import { readRegularFile } from '../files/read-regular.js';
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

/**
 * Null when `path` holds exactly what writeSubnetEnv writes for `v`; else what is wrong there (another
 * process rewrote it, removed it, or put something else at the path).
 */
export async function subnetEnvDrift(path: string, v: SubnetEnvValues): Promise<string | null> {
  const want = Buffer.from(formatSubnetEnv(v));
  const r = await readRegularFile(path, want.length + 1);
  if (!r.ok) return r.problem;
  return r.buf.equals(want) ? null : `${path} holds other content`;
}

/** Reads the previous subnet.env; null when absent. Never throws for bad content. */
export async function readSubnetEnv(path: string): Promise<PreviousSubnets | null> {
  // one byte more than the limit, so that the parser can name a larger file as such
  const r = await readRegularFile(path, MAX_SUBNET_ENV_BYTES + 1);
  if (r.ok) return previousSubnets(r.buf.toString('utf8'));
  if (r.missing) return null;
  return { subnet: null, subnet6: null, network: null, ipv6Network: null, problems: [r.problem] };
}
