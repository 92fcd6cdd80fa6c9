/**
 * The host-gw planner (pure): one peer lease → per family a route `S via P dev <uplink>` or the reason
 * it is refused (hostile subnet or address, or a public IP that is not on the uplink's segment).
 * weftd programs from it (index.ts); weftctl renders it (src/cli/peers.ts).
 */
import type { Lease } from '../lease/lease.js';
import { canonicalCidr } from '../ip/index.js';
import type { PeerEntries } from '../backend/peer-entries.js';
import {
  isOnLink,
  peerAddressProblem,
  peerSubnetProblem,
  type FamilyPeerScope,
} from '../backend/peer-check.js';
import { ignore, type LeasePlan, type PeerRefusal } from '../backend/peer-plan.js';
import { planDevices, type DevicePlan, type UplinkMtu } from '../backend/device-plan.js';

/** host-gw creates no device: containers get the uplink's MTU. */
export const planHostGwDevices = (uplink: UplinkMtu): DevicePlan => planDevices([], null, uplink);

/** A peer must also be on one of the uplink's networks (`onlink`). */
export type HostGwFamilyScope = FamilyPeerScope;

export interface HostGwPlanScope {
  readonly uplinkIndex: number;
  readonly uplinkName: string;
  readonly families: readonly HostGwFamilyScope[];
}

export function planHostGwPeer(lease: Lease, scope: HostGwPlanScope): LeasePlan<PeerEntries> {
  if (lease.attrs.backendType !== 'host-gw')
    return ignore(`backend type ${lease.attrs.backendType || 'udp'} is not host-gw`);
  const entries: PeerEntries[] = [];
  const refused: PeerRefusal[] = [];
  for (const f of scope.families) {
    const family = f.fam.family;
    const raw = f.fam.subnet(lease);
    if (!raw) continue;
    const gw = f.fam.publicIp(lease);
    if (!gw) {
      refused.push({ family, reason: `the lease has no ${f.fam.label} public IP` });
      continue;
    }
    let subnet: string;
    try {
      subnet = canonicalCidr(raw);
    } catch {
      refused.push({ family, reason: `subnet ${JSON.stringify(raw)} is not a CIDR` });
      continue;
    }
    const problem =
      peerSubnetProblem(subnet, f) ??
      peerAddressProblem(gw, f.ownIps, f.onlink) ??
      (isOnLink(f.onlink, gw)
        ? null
        : `public IP ${gw} is not on-link on ${scope.uplinkName} (${f.onlink.join(', ') || 'no networks'}): host-gw needs one L2 segment`);
    if (problem !== null) {
      refused.push({ family, reason: problem });
      continue;
    }
    entries.push({
      key: `${lease.key}/${family}`,
      subnet,
      route: { dst: subnet, gateway: gw, oif: scope.uplinkIndex },
    });
  }
  return { entries, refused };
}
