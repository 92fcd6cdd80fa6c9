/**
 * weftd's peer plan for this host, as weftctl read it: the backend's own planner (backend-vxlan/plan.ts,
 * backend-hostgw/plan.ts, backend-udp/plan.ts, backend-wireguard/plan.ts, over the shared claims of
 * backend/peer-plan.ts) run on the leases and this host's kernel, so `peers`, `doctor` and `trace`
 * render what weftd programs and refuses instead of re-deriving it. Pure.
 */
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { planVxlanPeer } from '../backend-vxlan/plan.js';
import { planHostGwPeer } from '../backend-hostgw/plan.js';
import { parseUdpConfig } from '../backend-udp/config.js';
import { planUdpPeer, udpClaims, type UdpPeerRoute } from '../backend-udp/plan.js';
import { FAMILIES } from '../backend/family.js';
import { netlinkClaims } from '../backend/netlink-sink.js';
import type { PeerEntries, StaleEntries } from '../backend/peer-entries.js';
import {
  planPeers,
  type Claim,
  type LeasePlan,
  type NetworkPlan,
  type PeerEntry,
  type RefusedLease,
} from '../backend/peer-plan.js';
import { inScope, planReconcile, type KernelScope } from '../backend/reconcile.js';
import { onLinkOf } from '../backend/uplink-routes.js';
import { parseWireguardConfig, type WireguardConfig } from '../backend-wireguard/config.js';
import {
  leasePublicKey,
  planWgPeer,
  wgClaims,
  wgDeviceLayout,
  wgLiveId,
  wgPeerScope,
  type WgPeerEntry,
} from '../backend-wireguard/plan.js';
import type { Lease } from '../lease/lease.js';
import type { AddrEntry } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import type { KernelState } from './kernel-entries.js';
import { overlayDevices } from './overlay-devices.js';

export interface PeerInput {
  readonly config: NetworkConfig;
  /** This host's lease (never a peer of itself); null when unknown. */
  readonly own: Lease | null;
  /** Every valid lease in etcd (own included or not). */
  readonly leases: readonly Lease[];
  readonly kernel: KernelState;
  /** This host's addresses (the uplink's networks decide on-link peers and directed broadcasts). */
  readonly addrs?: readonly AddrEntry[];
  /** The peers weftd's engine holds, for a backend whose peers are not kernel entries (wireguard: the
   *  `<device>|<public key>|<endpoint>` read from /metrics): their leases are the claim order's
   *  incumbents, as in weftd's memory. Absent: no lease counts as programmed. */
  readonly programmed?: ReadonlySet<string>;
}

export interface PlannedNetwork {
  readonly plan: NetworkPlan<PeerEntry>;
  /** The kernel entries weftd would delete (none for udp, whose peers live in the forwarder). */
  readonly stale: StaleEntries;
}

/** The family of an address or subnet weftctl read (validated leases, kernel entries). */
export const familyOf = (cidrOrIp: string): 4 | 6 => (cidrOrIp.includes(':') ? 6 : 4);

/** This host's addresses of `family` on link `index`. */
function addrsOn(input: PeerInput, index: number | null, family: 4 | 6): AddrEntry[] {
  return (input.addrs ?? []).filter((a) => a.index === index && familyOf(a.cidr) === family);
}

/** The link carrying `ip` (this host's public address), or null. */
export function linkOfAddr(
  addrs: readonly AddrEntry[],
  ip: string | null | undefined,
): number | null {
  return ip ? (addrs.find((a) => a.cidr.split('/')[0] === ip)?.index ?? null) : null;
}

/** weftd's WireGuard device layout: Mode auto picks its underlay by the interface's IPv4 address,
 *  which weftd also publishes in its lease. */
export const wgLayoutOf = (cfg: WireguardConfig, config: NetworkConfig, own: Lease | null) =>
  wgDeviceLayout(cfg, config, !!own && own.attrs.publicIp !== '0.0.0.0' && !!own.attrs.publicIp);

/** This host's own addresses as weftd counts them: its public IP and the uplink's addresses (weftctl
 *  cannot single out the interface address weftd picked). */
function ownIps(input: PeerInput, publicIp: string | null, uplink: number | null, family: 4 | 6) {
  return [publicIp, ...addrsOn(input, uplink, family).map((a) => a.cidr.split('/')[0]!)];
}

/** The backend's planner for one lease, over this host as weftctl read it (null: unknown backend). */
function plannerFor(input: PeerInput): {
  plan: (l: Lease) => LeasePlan<PeerEntry>;
  claims: (e: PeerEntry) => readonly Claim[];
  /** What weftd owns in this kernel (null: its peers are not kernel entries, e.g. udp). */
  kernel: KernelScope | null;
  /** How `input.programmed` names an entry (backends whose peers are not kernel entries). */
  liveId?: (e: PeerEntry) => string;
} | null {
  const { config, own } = input;
  const families = FAMILIES.filter((f) => f.network(config) !== null);
  const famBase = families.map((fam) => ({
    fam,
    network: fam.network(config)!,
    subnetLen: fam.subnetLen(config),
    ownSubnet: (own && fam.subnet(own)) || '',
  }));
  const publicIpOf = (family: 4 | 6): string | null =>
    own ? (family === 4 ? own.attrs.publicIp : own.attrs.publicIpv6) : null;
  const uplinkByIp = (family: 4 | 6): number | null =>
    linkOfAddr(input.addrs ?? [], publicIpOf(family));
  const ipsOf = (family: 4 | 6) => ownIps(input, publicIpOf(family), uplinkByIp(family), family);
  try {
    if (config.backend.type === 'vxlan') {
      const cfg = parseVxlanConfig(config.backend.raw);
      const devs = overlayDevices(config);
      const scopes = famBase.map((b) => {
        const dev = input.kernel.links.find((l) => l.name === devs[b.fam.family]) ?? null;
        const uplink = dev?.vxlan?.underlayIndex ?? uplinkByIp(b.fam.family);
        return {
          ...b,
          deviceIndex: dev?.index ?? 0,
          deviceMac: dev?.mac ?? '',
          ownIps: [dev?.vxlan?.local ?? null, own ? b.fam.publicIp(own) : null],
          onlink: onLinkOf(addrsOn(input, uplink, b.fam.family)),
          uplink,
        };
      });
      const scope = {
        vni: cfg.vni,
        directRouting: cfg.directRouting,
        uplinkIndex: scopes[0]?.uplink ?? 0,
        families: scopes,
      };
      return {
        plan: (l) => planVxlanPeer(l, scope),
        claims: (e) => netlinkClaims(e as PeerEntries),
        kernel: {
          devices: scopes.flatMap((f) => (f.deviceIndex ? [f.deviceIndex] : [])),
          uplink: scope.uplinkIndex,
          clusters: famBase,
        },
      };
    }
    if (config.backend.type === 'host-gw') {
      const uplink = uplinkByIp(4) ?? uplinkByIp(6);
      const scope = {
        uplinkIndex: uplink ?? 0,
        uplinkName: input.kernel.links.find((l) => l.index === uplink)?.name ?? '?',
        families: famBase.map((b) => ({
          ...b,
          ownIps: ownIps(input, own ? b.fam.publicIp(own) : null, uplink, b.fam.family),
          onlink: onLinkOf(addrsOn(input, uplink, b.fam.family)),
        })),
      };
      return {
        plan: (l) => planHostGwPeer(l, scope),
        claims: (e) => netlinkClaims(e as PeerEntries),
        kernel: { devices: [], uplink, clusters: famBase },
      };
    }
    if (config.backend.type === 'udp' && config.network) {
      const cfg = parseUdpConfig(config.backend.raw);
      const v6 = famBase.find((b) => b.fam.family === 6 && b.ownSubnet !== '');
      const scope = {
        port: cfg.port,
        v4: famBase.find((b) => b.fam.family === 4)!,
        v6: v6 ?? null,
        ownIps: ipsOf(4),
      };
      return {
        plan: (l) => planUdpPeer(l, scope),
        claims: (e) => udpClaims(e as UdpPeerRoute),
        kernel: null,
      };
    }
    if (config.backend.type === 'wireguard') {
      const cfg = parseWireguardConfig(config.backend.raw);
      const base = (family: 4 | 6): string | null =>
        famBase.find((b) => b.fam.family === family && b.ownSubnet !== '')?.ownSubnet ?? null;
      // this host's key as its own lease publishes it (weftd reads it from its key file)
      const ownPk = own ? leasePublicKey(own.attrs.backendData ?? own.attrs.backendV6Data) : null;
      const scope = wgPeerScope(cfg, config, wgLayoutOf(cfg, config, own), {
        own4: base(4),
        own6: base(6),
        ownIps: { 4: ipsOf(4), 6: ipsOf(6) },
        ownKey:
          ownPk && 'key' in ownPk
            ? { publicKey: ownPk.key, file: '<state-dir>/wireguard.key' }
            : null,
      });
      return {
        plan: (l) => planWgPeer(l, scope),
        claims: (e) => wgClaims(e as WgPeerEntry),
        kernel: null,
        liveId: (e) => wgLiveId(e as WgPeerEntry),
      };
    }
  } catch {
    // an invalid backend section is reported by the config check
  }
  return null;
}

/**
 * The plan weftd makes for these leases on this host: the backend's planner per lease, and the shared
 * claims deciding between two leases that want the same entry — those whose entries the kernel holds
 * now are the incumbents, as they are in weftd's memory.
 */
export function planNetwork(input: PeerInput): PlannedNetwork | null {
  const planner = plannerFor(input);
  if (!planner) return null;
  const peers = input.leases.filter((l) => !input.own || l.key !== input.own.key);
  const plans = new Map(peers.map((l) => [l.key, planner.plan(l)]));
  // As in weftd's memory: a lease with an entry in the dataplane is an incumbent, and its entries that
  // are not there claim after every one that is (planPeers).
  const inDataplane = new Set<PeerEntry>();
  const incumbents = new Set<string>();
  const scoped = planner.kernel ? inScope(input.kernel, planner.kernel) : null;
  const { liveId } = planner;
  for (const [key, p] of plans) {
    for (const e of p.entries) {
      const held = scoped
        ? planReconcile([e as PeerEntries], scoped).program.length === 0
        : !!liveId && !!input.programmed && input.programmed.has(liveId(e));
      if (held) {
        inDataplane.add(e);
        incumbents.add(key);
      }
    }
  }
  const plan = planPeers(
    peers,
    (l) => plans.get(l.key)!,
    planner.claims,
    incumbents,
    undefined,
    (_l, e) => inDataplane.has(e),
  );
  const stale = scoped
    ? planReconcile(plan.entries as readonly PeerEntries[], scoped).stale
    : { routes: [], neighs: [], fdb: [] };
  return { plan, stale };
}

/**
 * What the plan holds for one lease and family: the planned entry (a WireGuard peer of one device
 * carries both families' subnets, its allowed IPs), else why weftd refuses it — a refusal of this
 * family or of the whole lease, or, with no entry either, the lease's refusal (e.g. a claim lost by
 * the other family's subnet of the same WireGuard peer).
 */
export function planOfLease(
  planned: PlannedNetwork | null,
  lease: Lease,
  family: 4 | 6,
): { entry: PeerEntry | null; refusal: RefusedLease | null } {
  const subnet = family === 4 ? lease.subnet : lease.subnet6;
  const entry =
    planned?.plan.byLease
      .get(lease.key)
      ?.find((e) =>
        (e as Partial<WgPeerEntry>).peer
          ? (e as WgPeerEntry).peer.allowedIps.includes(subnet ?? '')
          : familyOf(e.subnet) === family,
      ) ?? null;
  const ofLease = planned?.plan.refused.filter((r) => r.lease.key === lease.key) ?? [];
  const refusal =
    ofLease.find((r) => r.family === family || r.family === null) ??
    (entry === null ? (ofLease[0] ?? null) : null);
  return { entry, refusal };
}
