/**
 * Subnet allocation, pure (docs/flannel-compat.md §4): compatibility of a lease with the config, and the
 * choice of a free subnet — walk from SubnetMin in SubnetLen steps up to SubnetMax, collect up to
 * `MAX_CANDIDATES` subnets that overlap nothing taken, pick one uniformly at random. IPv6 likewise,
 * independently.
 */
import { netContains, netOverlaps, tryParseCidr } from '../ip/cidr.js';
import { Ip4Net, tryParseIp4 } from '../ip/ip4.js';
import { Ip6Net, tryParseIp6 } from '../ip/ip6.js';
import type { NetworkConfig } from './manager.js';

/** flannel collects at most this many free candidates before picking one at random. */
export const MAX_CANDIDATES = 100;

export interface SubnetPair {
  readonly subnet: string;
  readonly subnet6: string | null;
}

/** True when the pair fits the config: lengths match and bases lie within [SubnetMin, SubnetMax]. */
export function isCompatible(config: NetworkConfig, pair: SubnetPair): boolean {
  const v4 = Ip4Net.tryParse(pair.subnet);
  if (!v4 || !config.enableIPv4 || config.subnetMin === null || config.subnetMax === null)
    return false;
  const min = tryParseIp4(config.subnetMin)!;
  const max = tryParseIp4(config.subnetMax)!;
  if (v4.prefixLen !== config.subnetLen || v4.ip < min || v4.ip > max) return false;
  if (!config.enableIPv6) return pair.subnet6 === null;
  if (pair.subnet6 === null || config.ipv6SubnetMin === null || config.ipv6SubnetMax === null)
    return false;
  const v6 = Ip6Net.tryParse(pair.subnet6);
  if (!v6 || v6.prefixLen !== config.ipv6SubnetLen) return false;
  return v6.ip >= tryParseIp6(config.ipv6SubnetMin)! && v6.ip <= tryParseIp6(config.ipv6SubnetMax)!;
}

/** Overlap test against a taken set, fast for the common case (all subnets of one length). */
class Taken<N extends Ip4Net | Ip6Net> {
  private readonly same = new Set<string>();
  private readonly other: N[] = [];
  constructor(len: number, nets: readonly N[]) {
    for (const n of nets) {
      if (n.prefixLen === len) this.same.add(String(n.ip));
      else this.other.push(n);
    }
  }
  overlaps(candidate: N): boolean {
    if (this.same.has(String(candidate.ip))) return true;
    return this.other.some((o) => (o as Ip4Net).overlaps(candidate as Ip4Net));
  }
  /** A taken net larger than `candidate` that contains it: the walk jumps past it in one step
   *  (a hostile lease like fd00::/17 in a /16 network would otherwise take 2^47 steps). */
  covering(candidate: N): N | undefined {
    return this.other.find(
      (o) => o.prefixLen < candidate.prefixLen && (o as Ip4Net).contains(candidate as Ip4Net),
    );
  }
}

/** Up to `limit` free subnets from `first` up to address `last`, in address order (either family). */
function freeSubnets<N extends Ip4Net | Ip6Net>(
  parse: (cidr: string) => N | null,
  at: (ip: N['ip']) => N,
  first: N['ip'],
  last: N['ip'],
  taken: readonly string[],
  limit: number,
): string[] {
  let n: N | null = at(first);
  const set = new Taken<N>(
    n.prefixLen,
    taken.map((t) => parse(t)).filter((t) => t !== null),
  );
  const out: string[] = [];
  while (n && n.ip <= last && out.length < limit) {
    const cover = set.covering(n);
    const after = cover ? cover.next() : null;
    if (cover) n = after ? at(after.ip) : null;
    else {
      if (!set.overlaps(n)) out.push(n.toString());
      n = n.next() as N | null;
    }
  }
  return out;
}

/** Up to `limit` free IPv4 subnets in address order. */
export function freeSubnets4(c: NetworkConfig, taken: readonly string[], limit = MAX_CANDIDATES) {
  if (c.subnetMin === null || c.subnetMax === null) return [];
  const [first, last] = [tryParseIp4(c.subnetMin)!, tryParseIp4(c.subnetMax)!];
  const at = (ip: number): Ip4Net => new Ip4Net(ip, c.subnetLen);
  return freeSubnets((t) => Ip4Net.tryParse(t), at, first, last, taken, limit);
}

/** Up to `limit` free IPv6 subnets in address order. */
export function freeSubnets6(c: NetworkConfig, taken: readonly string[], limit = MAX_CANDIDATES) {
  if (c.ipv6SubnetMin === null || c.ipv6SubnetMax === null) return [];
  const [first, last] = [tryParseIp6(c.ipv6SubnetMin)!, tryParseIp6(c.ipv6SubnetMax)!];
  const at = (ip: bigint): Ip6Net => new Ip6Net(ip, c.ipv6SubnetLen);
  return freeSubnets((t) => Ip6Net.tryParse(t), at, first, last, taken, limit);
}

/**
 * The taken subnets that can occupy part of this network: those inside it and smaller than it. A key
 * like `0.0.0.0-0`, `10.0.0.0-8` around a 10.5.0.0/16 network, or the network itself is no lease of this
 * network (flannel and weft only ever lease SubnetLen-long subnets inside it); counting it would make one
 * hostile key exhaust the whole network for every host.
 */
export function takenInNetwork(network: string | null, taken: readonly string[]): string[] {
  const net = network === null ? null : tryParseCidr(network);
  if (net === null) return [];
  return taken.filter((t) => {
    const n = tryParseCidr(t);
    return n !== null && n.prefixLen > net.prefixLen && netContains(net, n);
  });
}

/** True when `subnet` (v4 or v6 CIDR) overlaps any of `taken` of the same family. */
export function overlapsAny(subnet: string, taken: readonly string[]): boolean {
  const net = tryParseCidr(subnet);
  if (net === null) return false;
  return taken.some((t) => {
    const n = tryParseCidr(t);
    return n !== null && netOverlaps(net, n);
  });
}

/**
 * A random free subnet pair: IPv4 always (weft's etcd layout keys every lease by IPv4), IPv6 when the
 * config enables it. Null when either family has no free subnet. `random` is injectable for tests.
 */
export function pickFreeSubnet(
  config: NetworkConfig,
  taken4: readonly string[],
  taken6: readonly string[],
  random: () => number = Math.random,
): SubnetPair | null {
  const free4 = freeSubnets4(config, taken4);
  if (free4.length === 0) return null;
  return withIpv6(config, free4[Math.floor(random() * free4.length)]!, taken6, random);
}

/** `subnet` with a random free IPv6 subnet when IPv6 is on (null: none is free), or alone. */
function withIpv6(
  config: NetworkConfig,
  subnet: string,
  taken6: readonly string[],
  random: () => number,
): SubnetPair | null {
  if (!config.enableIPv6) return { subnet, subnet6: null };
  const free6 = freeSubnets6(config, taken6);
  if (free6.length === 0) return null;
  return { subnet, subnet6: free6[Math.floor(random() * free6.length)]! };
}

/** True when the IPv4 subnet alone fits the config (the IPv6 part left aside). */
export function isIpv4Compatible(config: NetworkConfig, subnet: string): boolean {
  return isCompatible({ ...config, enableIPv6: false }, { subnet, subnet6: null });
}

/**
 * The pair that keeps this host's IPv4 subnet `subnet` (compatible, not taken) when only its IPv6 part
 * no longer fits, i.e. EnableIPv6 was turned on or off: a random free IPv6 subnet when IPv6 is on,
 * none when it is off. Null when `subnet` is taken or IPv6 has no free subnet.
 */
export function keepIpv4Subnet(
  config: NetworkConfig,
  subnet: string,
  taken4: readonly string[],
  taken6: readonly string[],
  random: () => number = Math.random,
): SubnetPair | null {
  if (!isIpv4Compatible(config, subnet) || overlapsAny(subnet, taken4)) return null;
  return withIpv6(config, subnet, taken6, random);
}
