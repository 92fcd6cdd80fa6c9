/**
 * The shared gate every backend puts a peer lease through before it programs anything for it. A lease
 * comes from etcd, i.e. from any host of the cluster (or anyone with write access to the prefix), so its
 * subnet and public address are hostile until checked here:
 *
 * - the subnet must lie inside the cluster network, be exactly SubnetLen long (flannel only ever leases
 *   that length, and weft's reconcile only recognises routes of that length as its own), and must not
 *   overlap this host's own subnet (a more specific route would hijack part of our containers' traffic);
 * - the public address must be a unicast address (not 0.0.0.0/8, loopback, multicast, reserved, the
 *   limited broadcast, IPv6 ::/::1/ff00::/8 or v4-mapped) and must not be one of this host's own.
 *
 * Each check returns null when the value is acceptable, else a short reason for the warning that names
 * the lease.
 */
import {
  Ip4Net,
  Ip6Net,
  type IpNet,
  netContains,
  netOverlaps,
  tryParseCidr,
  tryParseIp4,
  tryParseIp6,
} from '../ip/index.js';
import type { FamilyDescriptor } from './family.js';

/**
 * Parsed networks of the host's own scope values (cluster network, own subnet, the uplink's networks):
 * the same few strings for every lease of a plan, parsed once here instead of once per lease. Only
 * scope values come in (never a lease's: hostile input must not fill it); bounded all the same.
 */
const scopeNets = new Map<string, IpNet | null>();
function scopeNet(text: string): IpNet | null {
  let n = scopeNets.get(text);
  if (n === undefined) {
    if (scopeNets.size >= 256) scopeNets.clear();
    n = tryParseCidr(text);
    scopeNets.set(text, n);
  }
  return n;
}

/** Whether the address `ip` lies in one of the uplink's networks (scope values, parsed once each). */
export function isOnLink(networks: readonly string[], ip: string): boolean {
  const v4 = tryParseIp4(ip);
  const v6 = v4 === null ? tryParseIp6(ip) : null;
  for (const text of networks) {
    const n = scopeNet(text);
    if (
      n instanceof Ip4Net
        ? v4 !== null && n.containsIp(v4)
        : n !== null && v6 !== null && n.containsIp(v6)
    )
      return true;
  }
  return false;
}

export interface PeerSubnetScope {
  /** The cluster network of this family. */
  readonly network: string;
  /** The configured subnet length of this family (SubnetLen / IPv6SubnetLen). */
  readonly subnetLen: number;
  /** This host's own subnet of this family. */
  readonly ownSubnet: string;
}

/** One address family of a kernel backend's peers (vxlan, host-gw): the subnet scope, this host's
 *  addresses of the family and the uplink's networks (on-link peers, directed broadcasts). */
export interface FamilyPeerScope extends PeerSubnetScope {
  readonly fam: FamilyDescriptor;
  readonly ownIps: readonly (string | null)[];
  readonly onlink: readonly string[];
}

/** Why a peer's subnet must not be programmed, or null when it is acceptable. */
export function peerSubnetProblem(subnet: string | IpNet, scope: PeerSubnetScope): string | null {
  const net = typeof subnet === 'string' ? tryParseCidr(subnet) : subnet;
  if (!net) return `subnet ${JSON.stringify(subnet)} is not a CIDR`;
  const network = scopeNet(scope.network);
  const own = scopeNet(scope.ownSubnet);
  // IPv4 (nearly every lease) in plain compares: netContains / netOverlaps cost about ten calls per
  // lease, and the first full reconcile of thousands of peers runs mostly unoptimized.
  if (
    net instanceof Ip4Net &&
    network instanceof Ip4Net &&
    (own === null || own instanceof Ip4Net)
  ) {
    if (net.prefixLen < network.prefixLen || !network.containsIp(net.ip))
      return `subnet ${net.toString()} is outside the network ${scope.network}`;
    if (net.prefixLen !== scope.subnetLen)
      return `subnet ${net.toString()} is not /${scope.subnetLen} (the network's subnet length)`;
    // Two networks overlap when the shorter contains the longer's base address.
    if (
      own !== null &&
      (own.prefixLen <= net.prefixLen ? own.containsIp(net.ip) : net.containsIp(own.ip))
    )
      return `subnet ${net.toString()} overlaps this host's own subnet ${own.toString()}`;
    return null;
  }
  if (!network || !netContains(network, net))
    return `subnet ${net.toString()} is outside the network ${scope.network}`;
  if (net.prefixLen !== scope.subnetLen)
    return `subnet ${net.toString()} is not /${scope.subnetLen} (the network's subnet length)`;
  if (own && netOverlaps(own, net))
    return `subnet ${net.toString()} overlaps this host's own subnet ${own.toString()}`;
  return null;
}

const V6_NOT_UNICAST: readonly Ip6Net[] = [
  Ip6Net.parse('::/128'),
  Ip6Net.parse('::1/128'),
  Ip6Net.parse('ff00::/8'),
  Ip6Net.parse('::ffff:0:0/96'),
];

/**
 * Why a peer's public (underlay) address must not be used as a tunnel endpoint or gateway, or null when
 * it is acceptable. `ours` are this host's own addresses of that family (null entries are ignored);
 * `onLink` the uplink's networks, whose network and broadcast addresses are refused (a VXLAN FDB entry
 * to a directed broadcast would send the overlay's traffic to every host on the segment).
 */
export function peerAddressProblem(
  ip: string,
  ours: readonly (string | null)[],
  onLink: readonly string[] = [],
): string | null {
  const v4 = tryParseIp4(ip);
  if (v4 !== null) {
    // Indexed loops and plain compares: this runs for every lease of every plan, mostly unoptimized on
    // the first one. Not unicast: 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 (multicast), 240.0.0.0/4
    // (reserved, incl. the limited broadcast), i.e. by the first octet.
    const first = v4 >>> 24;
    if (first === 0 || first === 127 || first >= 224)
      return `public IP ${ip} is not a unicast host address`;
    for (let i = 0; i < onLink.length; i++) {
      const n = scopeNet(onLink[i]!);
      if (
        n instanceof Ip4Net &&
        n.prefixLen <= 30 &&
        n.containsIp(v4) &&
        (v4 === n.ip || v4 === n.last)
      )
        return `public IP ${ip} is the network or broadcast address of the on-link network ${n.toString()}`;
    }
    // tryParseIp4 accepts only the canonical text, so the same address is the same text.
    for (let i = 0; i < ours.length; i++)
      if (ours[i] === ip) return `public IP ${ip} is this host's own (stale lease of this host?)`;
    return null;
  }
  const v6 = tryParseIp6(ip);
  if (v6 === null) return `public IP ${JSON.stringify(ip)} is not an IP address`;
  if (V6_NOT_UNICAST.some((n) => n.containsIp(v6)))
    return `public IP ${ip} is not a unicast host address`;
  if (ours.some((o) => o !== null && tryParseIp6(o) === v6))
    return `public IP ${ip} is this host's own (stale lease of this host?)`;
  return null;
}
