/**
 * A VTEP MAC that never changes for a given host (docs/pitfalls.md A7: flannel draws a random one per device
 * creation, so a reboot or a deleted device changes it and peers keep the old one → black hole).
 *
 * MAC = first 6 bytes of SHA-256("weft-vtep" | node identity | public IP | VNI | family), made
 * locally administered unicast. The node identity is /etc/machine-id when present, else a random id
 * persisted once in `<stateDir>/node-id`; the public IP keeps cloned machines apart. So a restart, a
 * reboot, or a re-created device all yield the same MAC.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/atomic-write.js';
import { readRegularFile } from '../files/read-regular.js';
import type { Logger } from '../log/logger.js';
import { bytesToMac, type IpFamily } from '../netlink/index.js';

const MACHINE_ID = /^[0-9a-f]{32}$/;

export function deriveVtepMac(
  identity: string,
  publicIp: string,
  vni: number,
  family: IpFamily,
): string {
  const h = createHash('sha256')
    .update(`weft-vtep|${identity}|${publicIp}|${vni}|${family}`)
    .digest();
  const b = h.subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  return bytesToMac(b);
}

/** A 32-hex id from a small regular file (a FIFO or device there is no id: it could hang or flood). */
async function readId(path: string): Promise<string | null> {
  const r = await readRegularFile(path, 256);
  if (!r.ok) return null;
  const s = r.buf.toString('utf8').trim().toLowerCase();
  return MACHINE_ID.test(s) ? s : null;
}

/** The stable node identity (see the file comment); '' when neither source is usable (logged). */
export async function nodeIdentity(
  stateDir: string,
  log: Logger,
  machineIdPath = '/etc/machine-id',
): Promise<string> {
  const machine = await readId(machineIdPath);
  if (machine) return machine;
  const file = join(stateDir, 'node-id');
  const stored = await readId(file);
  if (stored) return stored;
  const id = randomBytes(16).toString('hex');
  try {
    // synced before it is renamed into place (and no temp file left when the write fails): a node-id
    // lost to a power cut would change the VTEP MAC at the next start, the black hole this file avoids
    await writeFileAtomic(file, `${id}\n`);
    return id;
  } catch (err) {
    log.warn(
      'no machine id and cannot persist a node id: the VTEP MAC is derived from the public IP alone',
      {
        stateDir,
        err,
      },
    );
    return '';
  }
}
