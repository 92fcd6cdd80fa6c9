/**
 * The udp planner (pure): one peer lease → the forwarder routes that make its subnets reachable, or the
 * reason it is refused. flannel's UDP backend applies every lease it sees (a bug: a VXLAN host's subnet
 * would be routed to a host that never listens on the UDP port); weft takes only leases of UDP hosts:
 * flannel's UDP backend writes no BackendType, weft's writes none either, and 'udp' is accepted too.
 * weftd programs from it (forwarder-sink.ts); weftctl renders it (src/cli/peers.ts).
 */
import { showValue } from '../errors.js';
import { cidrContainsIp, tryParseIp4 } from '../ip/index.js';
import type { Lease } from '../lease/lease.js';
import {
  peerAddressProblem,
  peerSubnetProblem,
  type PeerSubnetScope,
} from '../backend/peer-check.js';
import {
  ignore,
  refuse,
  type Claim,
  type LeasePlan,
  type PeerEntry,
} from '../backend/peer-plan.js';
import { planDevices, type DevicePlan, type UplinkMtu } from '../backend/device-plan.js';
import { UDP_OVERHEAD, type UdpConfig } from './config.js';

/** One TUN for both families over an IPv4 underlay: MTU = base − 28, and so FLANNEL_MTU. */
export function planUdpDevices(cfg: UdpConfig, uplink: UplinkMtu): DevicePlan {
  return planDevices([{ name: cfg.name, kind: 'tun', overhead: UDP_OVERHEAD }], cfg.mtu, uplink);
}

/** One forwarder route: `subnet` goes, as UDP, to `peerIp`:`port`. */
export interface UdpPeerRoute extends PeerEntry {
  readonly peerIp: string;
  readonly port: number;
}

/** One route per subnet: the forwarder also accepts that subnet's inner sources only from its peer. */
export const udpClaims = (e: UdpPeerRoute): readonly Claim[] => [[`route|${e.subnet}`, e.key]];

export function isUdpLease(lease: Lease): boolean {
  return lease.attrs.backendType === '' || lease.attrs.backendType === 'udp';
}

/** What a peer lease is checked against (src/backend/peer-check.ts). */
export interface UdpPeerScope {
  readonly port: number;
  readonly v4: PeerSubnetScope;
  /** null when IPv6 is off: a lease's IPv6 subnet is then ignored. */
  readonly v6: PeerSubnetScope | null;
  /** This host's own IPv4 addresses (interface and public IP). */
  readonly ownIps: readonly (string | null)[];
}

/**
 * The routes that make `lease`'s subnets reachable through this host's forwarder. A lease whose subnet
 * or public IP fails the shared peer checks is refused whole (the forwarder also accepts inner sources
 * by these routes, so a hostile subnet would let that peer spoof our own or others' addresses).
 */
export function planUdpPeer(lease: Lease, scope: UdpPeerScope): LeasePlan<UdpPeerRoute> {
  if (!isUdpLease(lease)) {
    return ignore(`backend type ${showValue(lease.attrs.backendType)} is not udp`);
  }
  const ip = lease.attrs.publicIp;
  if (tryParseIp4(ip) === null || ip === '0.0.0.0') {
    return refuse(`no usable IPv4 PublicIP (${showValue(ip)})`);
  }
  const ipProblem = peerAddressProblem(ip, scope.ownIps);
  if (ipProblem !== null) return refuse(ipProblem);
  const entries: UdpPeerRoute[] = [];
  const port = scope.port;
  if (lease.subnet) {
    const problem = peerSubnetProblem(lease.subnet, scope.v4);
    if (problem !== null) return refuse(problem);
    // The cluster network is routed into our TUN: a datagram to a public IP inside the lease's own
    // subnet would come back to the forwarder, be routed to that same peer, sent again one header
    // deeper, and so on until it outgrew the MTU (kernel VXLAN refuses such a circular route itself).
    if (cidrContainsIp(lease.subnet, ip)) {
      return refuse(
        `public IP ${ip} lies inside the lease's own subnet ${lease.subnet} (its datagrams would loop through this host's TUN)`,
      );
    }
    entries.push({ key: `${lease.key}/4`, subnet: lease.subnet, peerIp: ip, port });
  }
  if (scope.v6 && lease.subnet6) {
    const problem = peerSubnetProblem(lease.subnet6, scope.v6);
    if (problem !== null) return refuse(problem);
    entries.push({ key: `${lease.key}/6`, subnet: lease.subnet6, peerIp: ip, port });
  }
  return entries.length > 0 ? { entries, refused: [] } : refuse('no subnet');
}
