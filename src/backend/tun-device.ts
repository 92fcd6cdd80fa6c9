/**
 * The kernel side of a TUN device of the udp and wireguard backends, through the netlink façade, as
 * flannel configures its TUN and wireguard links: MTU, address = this host's subnet IP as a host route
 * (`<subnet IP>/32`, and `<subnet6 IP>/128` when the device carries an IPv6 address), up, and one route
 * per cluster network to the device. Idempotent; the periodic resync calls it again so a removed
 * address or route heals.
 */
import { WeftError } from '../errors.js';
import { parseCidr } from '../ip/index.js';
import type { NetlinkOps } from '../netlink/index.js';

export interface TunSpec {
  readonly name: string;
  readonly mtu: number;
  /** This host's IPv4 subnet and the IPv4 network, when the device carries IPv4. */
  readonly subnet: string | null;
  readonly network: string | null;
  /** This host's IPv6 subnet (null: no IPv6 address) and the IPv6 network (null: no IPv6 route). */
  readonly subnet6: string | null;
  readonly network6: string | null;
}

function base(cidr: string): string {
  return parseCidr(cidr).toString().split('/')[0]!;
}

/** Configures the TUN; returns its ifindex. Rejects with E_INTERFACE when the device is missing, named
 *  as `device` says (`udp: TUN device`, `wireguard: device`). */
export async function configureTun(
  ops: NetlinkOps,
  spec: TunSpec,
  device: string,
): Promise<number> {
  const link = await ops.getLink(spec.name);
  if (!link) {
    throw new WeftError('E_INTERFACE', `${device} ${spec.name} does not exist`, {
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
