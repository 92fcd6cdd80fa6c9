/**
 * The wireguard planner (pure): one peer lease → the WireGuard peer(s) that make its subnets reachable
 * (one per device of this host), or the reason it is refused. A lease comes from etcd, i.e. from any
 * host, so everything in it is checked: the backend type, the `PublicKey` in `BackendData` /
 * `BackendV6Data` (`{"PublicKey":"<base64 X25519>"}`, flannel's format, field name matched like Go's
 * encoding/json), the public address of the device's underlay family and every subnet
 * (src/backend/peer-check.ts). weftd programs from it (wg-sink.ts); weftctl renders it (src/cli/peers.ts).
 *
 * Devices (flannel's modes): `separate` has one device per enabled family — IPv4 subnets over an IPv4
 * underlay (ListenPort, BackendData's key) and IPv6 subnets over an IPv6 underlay (ListenPortV6,
 * BackendV6Data's key); `ipv4`/`ipv6`/`auto` have one device on ListenPort carrying both families'
 * subnets over one underlay family (the key from BackendV6Data when IPv6 is on, else BackendData, as
 * flannel reads it).
 *
 * Claims (src/backend/peer-plan.ts): each allowed subnet is a route claim and the public key is a claim
 * on its device, so two leases with one key (a host that re-leased, or a copied key) or one subnet are
 * decided by the shared `preferred` order, like every other backend's conflicts.
 */
import { showValue } from '../errors.js';
import { cidrContainsIp, tryParseIp4, tryParseIp6 } from '../ip/index.js';
import { jsonField, spelledTwice } from '../backend/backend-config.js';
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
  type PeerRefusal,
} from '../backend/peer-plan.js';
import type { WireGuardPeerSpec } from '../dataplane/wireguard-device.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { planDevices, type DevicePlan, type UplinkMtu } from '../backend/device-plan.js';
import { BASE64_KEY, WG_OVERHEAD, type WireguardConfig } from './config.js';

/** What one device programs. */
export interface DeviceScope {
  /** The device (TUN) name: the sink programs the entry on this device. */
  readonly device: string;
  /** Underlay family of the device's socket (endpoints). */
  readonly underlay: 4 | 6;
  /** UDP port every peer listens on for this device (flannel: all nodes use the same). */
  readonly port: number;
  /** Which lease subnets this device carries, with the checks they must pass. */
  readonly v4: PeerSubnetScope | null;
  readonly v6: PeerSubnetScope | null;
  /** Where the peer's key is: 'v4' = BackendData, 'v6' = BackendV6Data. */
  readonly keyFrom: 'v4' | 'v6';
  /** This host's own underlay addresses (a lease with one of them is stale, refused). */
  readonly ownIps: readonly (string | null)[];
  /** This host's own public key (a lease publishing it is a cloned key, refused) and its file. */
  readonly ownKey: OwnKey | null;
  readonly psk: string | null;
  readonly persistentKeepalive: number;
}

/** The scope of every device of this host (one, or two in Mode separate with both families). */
export interface WgPeerScope {
  readonly devices: readonly DeviceScope[];
  /** True in Mode separate: a device's refusal concerns only its family. */
  readonly separate: boolean;
}

/** One device of this host as the config lays it out (weftd starts it; weftctl plans over it). */
export interface WgDeviceLayout {
  readonly name: string;
  /** Underlay family of its UDP socket. */
  readonly family: 4 | 6;
  readonly port: number;
  /** Which families' subnets it carries. */
  readonly v4: boolean;
  readonly v6: boolean;
  readonly keyFrom: 'v4' | 'v6';
}

/**
 * The devices of this host: `separate` one per enabled family; `ipv4`/`ipv6`/`auto` one for both
 * (`auto`: the IPv4 underlay when this host has an IPv4 address — flannel prefers IPv4 too — else
 * IPv6). `hasV4Underlay` says whether this host has an IPv4 address on its interface.
 */
export function wgDeviceLayout(
  cfg: WireguardConfig,
  config: NetworkConfig,
  hasV4Underlay: boolean,
): WgDeviceLayout[] {
  const v4on = config.enableIPv4 && config.network !== null;
  const v6on = config.enableIPv6 && config.ipv6Network !== null;
  if (cfg.mode === 'separate') {
    return [
      ...(v4on
        ? [{ name: cfg.name, family: 4 as const, port: cfg.listenPort, v4: true, v6: false }]
        : []),
      ...(v6on
        ? [{ name: cfg.nameV6, family: 6 as const, port: cfg.listenPortV6, v4: false, v6: true }]
        : []),
    ].map((d) => ({ ...d, keyFrom: d.family === 4 ? ('v4' as const) : ('v6' as const) }));
  }
  const family: 4 | 6 = cfg.mode === 'ipv4' ? 4 : cfg.mode === 'ipv6' ? 6 : hasV4Underlay ? 4 : 6;
  if (!v4on && !v6on) return [];
  return [
    {
      name: cfg.name,
      family,
      port: cfg.listenPort,
      v4: v4on,
      v6: v6on,
      keyFrom: v6on ? 'v6' : 'v4',
    },
  ];
}

/** The TUNs of `layout`: MTU = base − 80 (flannel's rule), and so FLANNEL_MTU. */
export function planWgDevices(
  cfg: WireguardConfig,
  layout: readonly WgDeviceLayout[],
  uplink: UplinkMtu,
): DevicePlan {
  const devices = layout.map((d) => ({
    name: d.name,
    kind: 'tun' as const,
    overhead: WG_OVERHEAD,
  }));
  return planDevices(devices, cfg.mtu, uplink);
}

/** This host's public key and where its private key is (named in the refusal of a cloned key). */
export interface OwnKey {
  readonly publicKey: string;
  readonly file: string;
}

/** This host as the planner needs it. */
export interface WgHost {
  /** This host's own subnets (from its lease). */
  readonly own4: string | null;
  readonly own6: string | null;
  /** This host's own underlay addresses per family (public IP, interface addresses). */
  readonly ownIps: {
    readonly 4: readonly (string | null)[];
    readonly 6: readonly (string | null)[];
  };
  /** This host's own public key (weftd: from its key file; weftctl: from its own lease). */
  readonly ownKey?: OwnKey | null;
}

/** The planner's scope for the devices `layout` over this host. */
export function wgPeerScope(
  cfg: WireguardConfig,
  config: NetworkConfig,
  layout: readonly WgDeviceLayout[],
  host: WgHost,
): WgPeerScope {
  return {
    separate: cfg.mode === 'separate',
    devices: layout.map((d): DeviceScope => ({
      device: d.name,
      underlay: d.family,
      port: d.port,
      v4:
        d.v4 && host.own4 && config.network
          ? { network: config.network, subnetLen: config.subnetLen, ownSubnet: host.own4 }
          : null,
      v6:
        d.v6 && host.own6 && config.ipv6Network
          ? { network: config.ipv6Network, subnetLen: config.ipv6SubnetLen, ownSubnet: host.own6 }
          : null,
      keyFrom: d.keyFrom,
      ownIps: host.ownIps[d.family],
      ownKey: host.ownKey ?? null,
      psk: cfg.psk,
      persistentKeepalive: cfg.persistentKeepalive,
    })),
  };
}

/** One WireGuard peer on one device: `subnet` (and `peer.allowedIps`) go to `peer.endpoint`. */
export interface WgPeerEntry extends PeerEntry {
  readonly device: string;
  readonly peer: WireGuardPeerSpec;
}

/** Every allowed subnet is a route; the public key is unique on its device. */
export const wgClaims = (e: WgPeerEntry): readonly Claim[] => [
  ...e.peer.allowedIps.map((c): Claim => [`route|${c}`, e.key]),
  [`public key|${e.device}|${e.peer.publicKey}`, e.key],
];

/**
 * How the engine shows a programmed peer (`<device>|<public key>|<endpoint>`, the labels of
 * weft_wireguard_peer_last_handshake_seconds): weftctl counts a lease whose peers the engine holds as
 * programmed (an incumbent of the claim order), as weftd's memory does. A roamed endpoint no longer
 * matches: that lease then competes by expiry, in weftctl only.
 */
export function wgLiveId(e: WgPeerEntry): string {
  const ep = e.peer.endpoint;
  const addr = ep ? (ep.address.includes(':') ? `[${ep.address}]` : ep.address) : '';
  return `${e.device}|${e.peer.publicKey}|${ep ? `${addr}:${ep.port}` : ''}`;
}

/**
 * The X25519 points of order 1, 2, 4 or 8 (and their encodings ≥ p), as libsodium lists them
 * (crypto_scalarmult/curve25519/ref10's `has_small_order`; bit 255 is ignored). A Diffie-Hellman with
 * one gives the all-zero secret, which libsodium refuses, so the engine (native/src/wg_session.c,
 * `ss_ok`) never handshakes with such a peer: programmed, it would hold the lease's routes and show as
 * a healthy peer that never sends a single initiation.
 */
const LOW_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((h) => Buffer.from(h, 'hex'));

function isLowOrderPoint(key: Buffer): boolean {
  const k = Buffer.from(key);
  k[31] = k[31]! & 0x7f;
  return LOW_ORDER_POINTS.some((p) => p.equals(k));
}

/** The base64 public key in a lease's BackendData/BackendV6Data, or a reason it is unusable. */
export function leasePublicKey(data: unknown): { key: string } | { reason: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { reason: 'BackendData is not an object' };
  }
  // The field as Go's encoding/json (flannel) reads it: any spelling equal ignoring case, a null
  // leaves it unset. Of two spellings Go takes the one written last, which the parsed object no longer
  // tells: refused, not guessed (like a config naming one field twice, src/subnet/config-keys.ts).
  const d = data as Record<string, unknown>;
  const twice = spelledTwice(d, 'PublicKey');
  if (twice !== null) {
    return {
      reason: `BackendData names PublicKey twice (${twice.map((f) => showValue(f)).join(', ')}): write it once`,
    };
  }
  const k = jsonField(d, 'PublicKey');
  if (typeof k !== 'string' || !BASE64_KEY.test(k)) {
    return { reason: `BackendData.PublicKey ${showValue(k)} is not a base64 WireGuard key` };
  }
  const bytes = Buffer.from(k, 'base64');
  if (bytes.every((b) => b === 0)) {
    return { reason: 'BackendData.PublicKey is all zeros' };
  }
  if (isLowOrderPoint(bytes)) {
    return {
      reason:
        'BackendData.PublicKey is a low-order X25519 point: no key exchange with it is possible ' +
        '(the engine never starts a handshake), so it is no host’s real key',
    };
  }
  // Canonical form: a last character with non-zero padding bits ("…B=" for "…A=") is the same key to
  // Go's decoder (flannel) and to the engine, which reports it canonically; kept as written, the key
  // would escape the one-key-one-lease claim and the sink would re-add the peer at every reconcile.
  return { key: bytes.toString('base64') };
}

export function isWireguardLease(lease: Lease): boolean {
  return lease.attrs.backendType === 'wireguard';
}

/** The peer `lease` is for one device, or why that device refuses it. */
export function planDevicePeer(
  lease: Lease,
  scope: DeviceScope,
): { entry: WgPeerEntry } | { reason: string } | null {
  const data = scope.keyFrom === 'v6' ? lease.attrs.backendV6Data : lease.attrs.backendData;
  const ip = scope.underlay === 4 ? lease.attrs.publicIp : lease.attrs.publicIpv6;
  const allowed: string[] = [];
  const subnets: [string | null, PeerSubnetScope | null][] = [
    [lease.subnet, scope.v4],
    [lease.subnet6, scope.v6],
  ];
  if (subnets.every(([s, sc]) => !s || !sc)) return null; // nothing of this lease for this device
  const pk = leasePublicKey(data);
  if ('reason' in pk) return { reason: pk.reason };
  if (scope.ownKey && pk.key === scope.ownKey.publicKey) {
    // Two hosts with one private key (a cloned state dir or VM image) would both answer for it: the
    // peers' sessions flip between them and neither host's pods are reachable reliably.
    return {
      reason:
        `BackendData.PublicKey is this host's own public key: two hosts share one private key ` +
        `(a cloned state dir or VM image); delete ${scope.ownKey.file} on one of them and restart its ` +
        'weftd (it generates a new key and publishes it)',
    };
  }
  const ok = scope.underlay === 4 ? tryParseIp4(ip ?? '') !== null : tryParseIp6(ip ?? '') !== null;
  if (!ip || !ok || ip === '0.0.0.0') {
    return {
      reason: `no IPv${scope.underlay} public address (${showValue(ip)}) for the IPv${scope.underlay} underlay`,
    };
  }
  const ipProblem = peerAddressProblem(ip, scope.ownIps);
  if (ipProblem !== null) return { reason: ipProblem };
  for (const [subnet, sc] of subnets) {
    if (!subnet || !sc) continue;
    const problem = peerSubnetProblem(subnet, sc);
    if (problem !== null) return { reason: problem };
    // The cluster network is routed into our device: an endpoint inside the peer's own allowed IPs
    // would send its encrypted datagrams back into the engine, sealed again for that same endpoint,
    // and so on (backend-udp/plan.ts refuses the same loop).
    if (cidrContainsIp(subnet, ip)) {
      return {
        reason: `public IP ${ip} lies inside the lease's own subnet ${subnet} (its datagrams would loop through this host's WireGuard device)`,
      };
    }
    allowed.push(subnet);
  }
  return {
    entry: {
      key: `${lease.key}/${scope.device}`,
      subnet: allowed[0]!,
      device: scope.device,
      peer: {
        publicKey: pk.key,
        presharedKey: scope.psk,
        endpoint: { address: ip, port: scope.port },
        persistentKeepalive: scope.persistentKeepalive,
        allowedIps: allowed,
      },
    },
  };
}

/**
 * The peers that make `lease`'s subnets reachable through this host's device(s). A device refuses the
 * lease whole when its key, its address of the device's underlay family or one of its subnets fails
 * the checks (the engine also accepts inner sources by the allowed IPs, so a hostile subnet would let
 * that peer spoof our own or others' addresses). In Mode separate the other family's device is not
 * concerned.
 */
export function planWgPeer(lease: Lease, scope: WgPeerScope): LeasePlan<WgPeerEntry> {
  if (!isWireguardLease(lease)) {
    return ignore(`backend type ${showValue(lease.attrs.backendType)} is not wireguard`);
  }
  const entries: WgPeerEntry[] = [];
  const refused: PeerRefusal[] = [];
  for (const d of scope.devices) {
    const p = planDevicePeer(lease, d);
    if (p === null) continue;
    if ('entry' in p) entries.push(p.entry);
    else refused.push({ family: scope.separate ? d.underlay : null, reason: p.reason });
  }
  if (entries.length === 0 && refused.length === 0) return refuse('no subnet for this host');
  return { entries, refused };
}
