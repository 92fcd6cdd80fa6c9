/**
 * The kernel side of a WireGuard TUN device, through the netlink façade, as flannel configures its
 * wireguard links: MTU, address = this host's subnet IP as a host route (`<subnet IP>/32`, and
 * `<subnet6 IP>/128` when the device carries IPv6), up, and one route per cluster network to the
 * device. Idempotent; the periodic resync calls it again so a removed address or route heals.
 */
import { WeftError } from '../errors.js';
import { parseCidr } from '../ip/index.js';
import type { NetlinkOps } from '../netlink/index.js';

export interface WgTunSpec {
  readonly name: string;
  readonly mtu: number;
  /** This host's IPv4 subnet and the IPv4 network, when the device carries IPv4. */
  readonly subnet: string | null;
  readonly network: string | null;
  /** This host's IPv6 subnet and the IPv6 network, when the device carries IPv6. */
  readonly subnet6: string | null;
  readonly network6: string | null;
}

function base(cidr: string): string {
  return parseCidr(cidr).toString().split('/')[0]!;
}

/** Configures the TUN; returns its ifindex. Rejects with E_INTERFACE when the device is missing. */
export async function configureWgTun(ops: NetlinkOps, spec: WgTunSpec): Promise<number> {
  const link = await ops.getLink(spec.name);
  if (!link) {
    throw new WeftError('E_INTERFACE', `wireguard: device ${spec.name} does not exist`, {
      details: { device: spec.name },
    });
  }
  if (link.mtu !== spec.mtu) await ops.setLinkMtu(link.index, spec.mtu);
  if (spec.subnet && spec.network) {
    await ops.ensureAddr(link.index, `${base(spec.subnet)}/32`, [spec.network]);
  }
  if (spec.subnet6 && spec.network6) {
    await ops.ensureAddr(link.index, `${base(spec.subnet6)}/128`, [spec.network6]);
  }
  if (!link.up) await ops.setLinkUp(link.index);
  if (spec.network) await ops.routeReplace({ dst: spec.network, oif: link.index });
  if (spec.network6) await ops.routeReplace({ dst: spec.network6, oif: link.index });
  return link.index;
}
