/**
 * The TUN device's kernel side, through the netlink façade: MTU, address `<subnet>.0/32`, up, and one
 * route for the whole cluster network (and the IPv6 one when enabled) to the device. Idempotent; the
 * periodic resync calls it again so a removed address or route heals.
 */
import { WeftError } from '../errors.js';
import { parseCidr } from '../ip/index.js';
import type { NetlinkOps } from '../netlink/index.js';

export interface TunSpec {
  readonly name: string;
  readonly mtu: number;
  /** This host's IPv4 subnet (the lease's). */
  readonly subnet: string;
  /** The IPv4 cluster network. */
  readonly network: string;
  /** The IPv6 cluster network, when IPv6 is enabled. */
  readonly network6: string | null;
}

/** Configures the TUN; returns its ifindex. Rejects with E_INTERFACE when the device is missing. */
export async function configureTun(ops: NetlinkOps, spec: TunSpec): Promise<number> {
  const link = await ops.getLink(spec.name);
  if (!link) {
    throw new WeftError('E_INTERFACE', `udp: TUN device ${spec.name} does not exist`, {
      details: { device: spec.name },
    });
  }
  if (link.mtu !== spec.mtu) await ops.setLinkMtu(link.index, spec.mtu);
  const base = parseCidr(spec.subnet).toString().split('/')[0]!;
  await ops.ensureAddr(link.index, `${base}/32`, [spec.network]);
  if (!link.up) await ops.setLinkUp(link.index);
  await ops.routeReplace({ dst: spec.network, oif: link.index });
  if (spec.network6) await ops.routeReplace({ dst: spec.network6, oif: link.index });
  return link.index;
}
