/**
 * Pure mapping from leases to forwarder routes, and the diff that brings a forwarder's table to it.
 * flannel's UDP backend applies every lease it sees (a bug: a VXLAN host's subnet would be routed to a
 * host that never listens on the UDP port); weft takes only leases of UDP hosts: flannel's UDP backend
 * writes no BackendType, weft's writes none either, and 'udp' is accepted too.
 */
import { showValue } from '../errors.js';
import { tryParseIp4 } from '../ip/index.js';
import type { Lease } from '../lease/lease.js';
import {
  peerAddressProblem,
  peerSubnetProblem,
  type PeerSubnetScope,
} from '../backend/peer-check.js';
import type { Forwarder, ForwarderRoute } from '../dataplane/forwarder.js';

export interface DesiredRoute {
  readonly dst: string;
  readonly peerIp: string;
  readonly port: number;
}

export type PeerPlan =
  | { readonly kind: 'routes'; readonly routes: readonly DesiredRoute[] }
  | { readonly kind: 'skip'; readonly reason: string };

export function isUdpLease(lease: Lease): boolean {
  return lease.attrs.backendType === '' || lease.attrs.backendType === 'udp';
}

/** What a peer lease is checked against (src/backend/peer-check.ts). */
export interface UdpPeerScope {
  readonly v4: PeerSubnetScope;
  /** null when IPv6 is off: a lease's IPv6 subnet is then ignored. */
  readonly v6: PeerSubnetScope | null;
  /** This host's own IPv4 addresses (interface and public IP). */
  readonly ownIps: readonly (string | null)[];
}

/**
 * The routes that make `lease`'s subnets reachable through this host's forwarder. A lease whose subnet
 * or public IP fails the shared peer checks is skipped whole (the forwarder also accepts inner sources
 * by these routes, so a hostile subnet would let that peer spoof our own or others' addresses).
 */
export function peerRoutes(lease: Lease, port: number, scope: UdpPeerScope): PeerPlan {
  if (!isUdpLease(lease)) {
    return { kind: 'skip', reason: `backend type ${showValue(lease.attrs.backendType)}` };
  }
  const ip = lease.attrs.publicIp;
  if (tryParseIp4(ip) === null || ip === '0.0.0.0') {
    return { kind: 'skip', reason: `no usable IPv4 PublicIP (${showValue(ip)})` };
  }
  const ipProblem = peerAddressProblem(ip, scope.ownIps);
  if (ipProblem !== null) return { kind: 'skip', reason: ipProblem };
  const routes: DesiredRoute[] = [];
  if (lease.subnet) {
    const problem = peerSubnetProblem(lease.subnet, scope.v4);
    if (problem !== null) return { kind: 'skip', reason: problem };
    routes.push({ dst: lease.subnet, peerIp: ip, port });
  }
  if (scope.v6 && lease.subnet6) {
    const problem = peerSubnetProblem(lease.subnet6, scope.v6);
    if (problem !== null) return { kind: 'skip', reason: problem };
    routes.push({ dst: lease.subnet6, peerIp: ip, port });
  }
  return routes.length > 0 ? { kind: 'routes', routes } : { kind: 'skip', reason: 'no subnet' };
}

/**
 * Leases in the order they claim forwarder routes when two want the same subnet: a lease whose subnet
 * is already routed to its PublicIP first (a newcomer cannot take over a live peer's subnet — the
 * forwarder also trusts inner sources by these routes), then reservations, then the latest expiry,
 * then by key.
 */
export function claimOrder(leases: Iterable<Lease>, current: readonly ForwarderRoute[]): Lease[] {
  const live = new Set(current.map((r) => `${r.dst}|${r.peerIp}`));
  const inc = (l: Lease): number => (live.has(`${l.subnet}|${l.attrs.publicIp}`) ? 0 : 1);
  const exp = (l: Lease): number => l.expiration?.getTime() ?? Number.POSITIVE_INFINITY;
  return [...leases].sort(
    (a, b) => inc(a) - inc(b) || exp(b) - exp(a) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}

export interface SyncResult {
  readonly set: number;
  readonly deleted: number;
}

/** Makes `fwd`'s routes equal `desired` (keyed by dst): deletes extras first, then sets. */
export function syncRoutes(fwd: Forwarder, desired: ReadonlyMap<string, DesiredRoute>): SyncResult {
  let deleted = 0;
  let set = 0;
  for (const r of fwd.routes()) {
    if (!desired.has(r.dst) && fwd.deleteRoute(r.dst)) deleted++;
  }
  const current = new Map(fwd.routes().map((r) => [r.dst, r]));
  for (const d of desired.values()) {
    const c = current.get(d.dst);
    if (c && c.peerIp === d.peerIp && c.port === d.port) continue;
    fwd.setRoute(d.dst, d.peerIp, d.port);
    set++;
  }
  return { set, deleted };
}
