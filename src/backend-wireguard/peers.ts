/**
 * Pure mapping from leases to the WireGuard peers of one device (the "peer → native peer" mapping,
 * kept in this one file so it can move onto a generic peer loop unchanged). A lease comes from etcd,
 * i.e. from any host, so everything in it is checked: the backend type, the `PublicKey` in
 * `BackendData` / `BackendV6Data` (`{"PublicKey":"<base64 X25519>"}`, flannel's format, field name
 * matched like Go's encoding/json), the public address of the device's underlay family and every
 * subnet (src/backend/peer-check.ts). A bad lease is skipped whole with a reason.
 *
 * Devices (flannel's modes): `separate` has one device per enabled family — IPv4 subnets over an IPv4
 * underlay (ListenPort, BackendData's key) and IPv6 subnets over an IPv6 underlay (ListenPortV6,
 * BackendV6Data's key); `ipv4`/`ipv6`/`auto` have one device on ListenPort carrying both families'
 * subnets over one underlay family (the key from BackendV6Data when IPv6 is on, else BackendData,
 * as flannel reads it).
 */
import { showValue } from '../errors.js';
import { tryParseIp4, tryParseIp6 } from '../ip/index.js';
import type { Lease } from '../lease/lease.js';
import {
  peerAddressProblem,
  peerSubnetProblem,
  type PeerSubnetScope,
} from '../backend/peer-check.js';
import type { WireGuardPeerSpec } from '../dataplane/wireguard-device.js';

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** What one device programs. */
export interface DeviceScope {
  /** Underlay family of the device's socket (endpoints). */
  readonly underlay: 4 | 6;
  /** UDP port every peer listens on for this device (flannel: all nodes use the same). */
  readonly port: number;
  /** Which lease subnets this device carries, with the checks they must pass. */
  readonly v4: PeerSubnetScope | null;
  readonly v6: PeerSubnetScope | null;
  /** Where the peer's key is: 'v4' = BackendData, 'v6' = BackendV6Data. */
  readonly keyFrom: 'v4' | 'v6';
  /** This host's own underlay addresses (a lease with one of them is stale, skipped). */
  readonly ownIps: readonly (string | null)[];
  readonly psk: string | null;
  readonly persistentKeepalive: number;
}

export type PeerPlan =
  | { readonly kind: 'peer'; readonly peer: WireGuardPeerSpec }
  | { readonly kind: 'skip'; readonly reason: string };

function field(d: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(d, name)) return d[name];
  const lower = name.toLowerCase();
  const key = Object.keys(d).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : d[key];
}

/** The base64 public key in a lease's BackendData/BackendV6Data, or a reason it is unusable. */
export function leasePublicKey(data: unknown): { key: string } | { reason: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { reason: 'BackendData is not an object' };
  }
  const k = field(data as Record<string, unknown>, 'PublicKey');
  if (typeof k !== 'string' || !BASE64_KEY.test(k)) {
    return { reason: `BackendData.PublicKey ${showValue(k)} is not a base64 WireGuard key` };
  }
  if (Buffer.from(k, 'base64').every((b) => b === 0)) {
    return { reason: 'BackendData.PublicKey is all zeros' };
  }
  return { key: k };
}

export function isWireguardLease(lease: Lease): boolean {
  return lease.attrs.backendType === 'wireguard';
}

/** The peer `lease` is for `scope`'s device, or why it is skipped. */
export function peerFor(lease: Lease, scope: DeviceScope): PeerPlan {
  if (!isWireguardLease(lease)) {
    return { kind: 'skip', reason: `backend type ${showValue(lease.attrs.backendType)}` };
  }
  const data = scope.keyFrom === 'v6' ? lease.attrs.backendV6Data : lease.attrs.backendData;
  const pk = leasePublicKey(data);
  if ('reason' in pk) return { kind: 'skip', reason: pk.reason };
  const ip = scope.underlay === 4 ? lease.attrs.publicIp : lease.attrs.publicIpv6;
  const ok = scope.underlay === 4 ? tryParseIp4(ip ?? '') !== null : tryParseIp6(ip ?? '') !== null;
  if (!ip || !ok) {
    return {
      kind: 'skip',
      reason: `no IPv${scope.underlay} public address (${showValue(ip)}) for the IPv${scope.underlay} underlay`,
    };
  }
  const ipProblem = peerAddressProblem(ip, scope.ownIps);
  if (ipProblem !== null) return { kind: 'skip', reason: ipProblem };
  const allowed: string[] = [];
  if (scope.v4 && lease.subnet) {
    const problem = peerSubnetProblem(lease.subnet, scope.v4);
    if (problem !== null) return { kind: 'skip', reason: problem };
    allowed.push(lease.subnet);
  }
  if (scope.v6 && lease.subnet6) {
    const problem = peerSubnetProblem(lease.subnet6, scope.v6);
    if (problem !== null) return { kind: 'skip', reason: problem };
    allowed.push(lease.subnet6);
  }
  if (allowed.length === 0) return { kind: 'skip', reason: 'no subnet for this device' };
  return {
    kind: 'peer',
    peer: {
      publicKey: pk.key,
      presharedKey: scope.psk,
      endpoint: { address: ip, port: scope.port },
      persistentKeepalive: scope.persistentKeepalive,
      allowedIps: allowed,
    },
  };
}

/**
 * The desired peers of a device from all leases: keyed by public key. Two leases with one key (a
 * host that re-leased, or a copied key) or claiming one subnet: the lease with the latest expiry
 * wins (then the key order), the other is skipped with a reason.
 */
export function desiredPeers(
  leases: Iterable<Lease>,
  scope: DeviceScope,
): { peers: Map<string, WireGuardPeerSpec>; skipped: Map<string, string> } {
  const exp = (l: Lease): number => l.expiration?.getTime() ?? Number.POSITIVE_INFINITY;
  const ordered = [...leases].sort(
    (a, b) => exp(b) - exp(a) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  const peers = new Map<string, WireGuardPeerSpec>();
  const skipped = new Map<string, string>();
  const claimed = new Set<string>();
  for (const l of ordered) {
    const plan = peerFor(l, scope);
    if (plan.kind === 'skip') {
      skipped.set(l.key, plan.reason);
      continue;
    }
    if (peers.has(plan.peer.publicKey)) {
      skipped.set(l.key, `public key ${plan.peer.publicKey} is already used by another lease`);
      continue;
    }
    const taken = plan.peer.allowedIps.find((c) => claimed.has(c));
    if (taken) {
      skipped.set(l.key, `subnet ${taken} is claimed by another lease`);
      continue;
    }
    for (const c of plan.peer.allowedIps) claimed.add(c);
    peers.set(plan.peer.publicKey, plan.peer);
  }
  return { peers, skipped };
}
