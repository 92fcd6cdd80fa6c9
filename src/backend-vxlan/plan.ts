/**
 * The vxlan planner (pure): one peer lease → per family either the kernel entries that make it
 * reachable (neighbour `S.0 lladdr M` + FDB `M dst P` + route `S via S.0 dev weft.<VNI> onlink`, or with
 * DirectRouting and an on-link peer one route `S via P` on the uplink) or the reason it is refused.
 * weftd programs from it (programmer.ts); weftctl renders it (src/cli/peers.ts).
 */
import type { Lease } from '../lease/lease.js';
import { Ip4Net, tryParseCidr } from '../ip/index.js';
import type { PeerEntries } from '../backend/peer-entries.js';
import {
  isOnLink,
  peerAddressProblem,
  peerSubnetProblem,
  type FamilyPeerScope,
} from '../backend/peer-check.js';
import { ignore, type LeasePlan, type PeerRefusal } from '../backend/peer-plan.js';
import { planDevices, type DevicePlan, type UplinkMtu } from '../backend/device-plan.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { parseVxlanBackendData } from './backend-data.js';
import type { VxlanConfig } from './config.js';

/** VXLAN header overhead by underlay family: outer IP + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = { 4: 50, 6: 70 } as const;

/** One device per enabled family (`weft.<VNI>`, `weft-v6.<VNI>` or Backend.Name), each over an
 *  underlay of its own family: MTU = base − 50 (IPv4) or − 70 (IPv6); containers get the smaller. */
export function planVxlanDevices(
  cfg: VxlanConfig,
  config: NetworkConfig,
  uplink: UplinkMtu,
): DevicePlan {
  const fams = ([4, 6] as const).filter((f) =>
    f === 4 ? config.enableIPv4 && config.network : config.enableIPv6 && config.ipv6Network,
  );
  const devices = fams.map((family) => ({
    name: family === 4 ? cfg.name : cfg.name6,
    kind: 'vxlan' as const,
    overhead: VXLAN_OVERHEAD[family],
    vxlan: { vni: cfg.vni, port: cfg.port, family },
  }));
  return planDevices(devices, cfg.mtu, uplink);
}

/** What one family's peers are checked against and programmed on. */
export interface VxlanFamilyScope extends FamilyPeerScope {
  /** The vxlan device (index 0 when it does not exist: nothing can be programmed on it). */
  readonly deviceIndex: number;
  readonly deviceMac: string;
}

export interface VxlanPlanScope {
  readonly vni: number;
  readonly directRouting: boolean;
  readonly uplinkIndex: number;
  readonly families: readonly VxlanFamilyScope[];
}

export function planVxlanPeer(lease: Lease, scope: VxlanPlanScope): LeasePlan<PeerEntries> {
  if (lease.attrs.backendType !== 'vxlan')
    return ignore(`backend type ${lease.attrs.backendType || 'udp'} is not vxlan`);
  const entries: PeerEntries[] = [];
  let refused: PeerRefusal[] | null = null; // allocated for the rare refusal only
  for (let i = 0; i < scope.families.length; i++) {
    const f = scope.families[i]!;
    const family = f.fam.family;
    const subnetRaw = f.fam.subnet(lease);
    if (!subnetRaw) continue;
    const checked = checkFamily(lease, f, subnetRaw, scope.vni);
    if (typeof checked === 'string') {
      (refused ??= []).push({ family, reason: checked });
      continue;
    }
    const { subnet, publicIp, vtepMac } = checked;
    const key = `${lease.key}/${family}`;
    if (scope.directRouting && isOnLink(f.onlink, publicIp)) {
      entries.push({
        key,
        subnet,
        route: { dst: subnet, gateway: publicIp, oif: scope.uplinkIndex },
      });
      continue;
    }
    const gw = subnet.slice(0, subnet.indexOf('/')); // the network address (subnet is canonical)
    entries.push({
      key,
      subnet,
      neigh: { ifindex: f.deviceIndex, dst: gw, mac: vtepMac },
      fdb: { ifindex: f.deviceIndex, mac: vtepMac, dst: publicIp },
      route: { dst: subnet, gateway: gw, oif: f.deviceIndex, onlink: true },
    });
  }
  return { entries, refused: refused ?? NO_REFUSALS };
}

const NO_REFUSALS: readonly PeerRefusal[] = Object.freeze([]);

/** Why `lease`'s family `f` is refused, or what it is programmed with (the subnet canonical, each value
 *  parsed once: this runs for every lease of every plan). */
function checkFamily(
  lease: Lease,
  f: VxlanFamilyScope,
  subnetRaw: string,
  vni: number,
): string | { subnet: string; publicIp: string; vtepMac: string } {
  const publicIp = f.fam.publicIp(lease);
  if (!publicIp) return `the lease has no ${f.fam.label} public IP`;
  const data = parseVxlanBackendData(f.fam.backendData(lease));
  if (!data.ok) return `invalid vxlan backend data: ${data.reason}`;
  if (data.value.vni !== null && data.value.vni !== vni)
    return `VNI ${data.value.vni} is not this network's ${vni}`;
  // Strict first: an IPv4 subnet that parses strictly (canonical dotted quad, no host bits, a length
  // without a leading zero) is its own canonical text, so it is kept as is instead of formatted again.
  const strict = tryParseCidr(subnetRaw, STRICT);
  const net = strict ?? tryParseCidr(subnetRaw);
  if (net === null) return `subnet ${JSON.stringify(subnetRaw)} is not a CIDR`;
  const problem = peerSubnetProblem(net, f) ?? peerAddressProblem(publicIp, f.ownIps, f.onlink);
  if (problem !== null) return problem;
  if (data.value.vtepMac === f.deviceMac) return `VtepMAC ${data.value.vtepMac} is this host's own`;
  const subnet = strict instanceof Ip4Net ? subnetRaw : net.toString();
  return { subnet, publicIp, vtepMac: data.value.vtepMac };
}

const STRICT: { strict?: boolean } = Object.freeze({ strict: true });
