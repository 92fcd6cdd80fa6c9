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
import type { Uplink } from '../backend/backend.js';
import { FAMILY_V4, FAMILY_V6 } from '../backend/family.js';
import { ipFamily } from '../ip/index.js';
import type { Logger } from '../log/logger.js';
import { bytesToMac, type IpFamily, type LinkInfo } from '../netlink/index.js';

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

/** The node identity as far as it exists (machine id, else the stored node id); null when none. */
export async function readNodeIdentity(
  stateDir: string,
  machineIdPath = '/etc/machine-id',
): Promise<string | null> {
  return (await readId(machineIdPath)) ?? (await readId(join(stateDir, 'node-id')));
}

/**
 * True when `link` is a VXLAN device carrying the VTEP MAC weft derives for this node, the uplink's
 * published address of the device's family and the device's own VNI: weft made it, under any config
 * (the mark src/backend/leftovers.ts checks before deleting a device of an earlier backend).
 */
export function isOwnVtep(identity: string, uplink: Uplink, link: LinkInfo): boolean {
  const family = link.vxlan?.local ? ipFamily(link.vxlan.local) : null;
  if (!link.vxlan || family === null || link.mac === null) return false;
  const fam = family === 4 ? FAMILY_V4 : FAMILY_V6;
  const publicIp = fam.uplinkPublicIp(uplink) ?? link.vxlan.local!;
  return deriveVtepMac(identity, publicIp, link.vxlan.vni, family) === link.mac;
}

/** The stable node identity (see the file comment); '' when neither source is usable (logged). */
export async function nodeIdentity(
  stateDir: string,
  log: Logger,
  machineIdPath = '/etc/machine-id',
): Promise<string> {
  const existing = await readNodeIdentity(stateDir, machineIdPath);
  if (existing) return existing;
  const file = join(stateDir, 'node-id');
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
