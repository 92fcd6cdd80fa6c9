/**
 * Helpers for routes weft puts on the uplink (host-gw, and vxlan DirectRouting): which networks the
 * uplink is attached to, and which main-table routes on it are weft's (a cluster subnet via a gateway).
 */
import { canonicalCidr, cidrCovers, parseCidr } from '../ip/index.js';
import type { IpFamily, NetlinkOps, RouteEntry } from '../netlink/index.js';

/** A route for one cluster subnet (exactly `subnetLen` long, inside `network`, not `ownSubnet` unless
 *  that is '' = unknown) via a gateway. */
export function isClusterGatewayRoute(
  r: RouteEntry,
  network: string,
  subnetLen: number,
  ownSubnet: string,
): boolean {
  try {
    return (
      r.gateway !== null &&
      r.type === 'UNICAST' &&
      parseCidr(r.dst).prefixLen === subnetLen &&
      cidrCovers(network, r.dst) &&
      (ownSubnet === '' || canonicalCidr(r.dst) !== canonicalCidr(ownSubnet))
    );
  } catch {
    return false; // not a CIDR (e.g. 'default'): not one of ours
  }
}

/** Networks the uplink is directly attached to (its addresses' prefixes; IPv6 link-local excluded). */
export async function onLinkNetworks(
  ops: NetlinkOps,
  index: number,
  family: IpFamily,
): Promise<string[]> {
  return onLinkOf(await ops.listAddrs(index, family));
}

/** The networks of these addresses (IPv6 link-local excluded): what `onLinkNetworks` reads. */
export function onLinkOf(addrs: readonly { readonly cidr: string }[]): string[] {
  return addrs.map((a) => canonicalCidr(a.cidr)).filter((n) => !n.startsWith('fe80:'));
}
