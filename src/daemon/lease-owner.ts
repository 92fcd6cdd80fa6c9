/**
 * `<state dir>/subnet-lease`: the subnet key and etcd lease this host last acquired. On the next start
 * it proves that the previous subnet's key is still ours when this host's public IP changed meanwhile
 * (the key names the old IP), so weftd takes it back instead of renumbering the host's containers
 * (docs/pitfalls.md A1). Hostile file: read non-blocking, at most 4 KiB, anything odd is ignored.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../files/atomic-write.js';
import { readRegularFile } from '../files/read-regular.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export const LEASE_OWNER_FILE = 'subnet-lease';
const LEASE_ID = /^[\w-]{1,64}$/;

/** The etcd lease ID recorded by the previous run, or null. */
export async function readLeaseOwner(stateDir: string): Promise<string | null> {
  const r = await readRegularFile(join(stateDir, LEASE_OWNER_FILE), 4096);
  if (!r.ok) return null;
  try {
    const v = JSON.parse(r.buf.toString('utf8')) as { leaseId?: unknown };
    return typeof v.leaseId === 'string' && LEASE_ID.test(v.leaseId) ? v.leaseId : null;
  } catch {
    return null;
  }
}

/** Records the acquired lease (a failed write is logged: it only costs the IP-change recovery). */
export function writeLeaseOwner(
  stateDir: string,
  key: string,
  leaseId: string | null,
  log: Logger,
): Promise<void> {
  const path = join(stateDir, LEASE_OWNER_FILE);
  return writeFileAtomic(path, JSON.stringify({ key, leaseId }) + '\n', 0o600).catch(
    (err: unknown) =>
      log.warn('cannot record the acquired lease in the state dir', {
        path,
        error: describeError(err),
      }),
  );
}
