/**
 * Peer verdicts (pure): what this host's kernel holds for each other host's lease — route, neighbour,
 * FDB entry — compared with what weftd programs for it. weftctl does not re-derive that: it runs the
 * backend's own planner (backend-vxlan/plan.ts, backend-hostgw/plan.ts, backend-udp/plan.ts,
 * backend-wireguard/plan.ts, over the
 * shared claims of backend/peer-plan.ts) on the leases and this host's kernel, so a lease weftd refuses
 * is shown as refused with weftd's reason, never as "missing" with a fix that would undo the refusal.
 * Kernel entries no planned entry explains are stale (a peer that left, an old VTEP MAC, a refused
 * lease's leftovers). Each problem carries the command that fixes it by hand.
 */
import { parseVxlanBackendData } from '../backend-vxlan/backend-data.js';
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
import { inScope, planReconcile, type KernelScope, type KernelView } from '../backend/reconcile.js';
import { onLinkOf } from '../backend/uplink-routes.js';
import { parseWireguardConfig, type WireguardConfig } from '../backend-wireguard/config.js';
import {
  planWgPeer,
  wgClaims,
  wgDeviceLayout,
  wgLiveId,
  wgPeerScope,
  type WgPeerEntry,
} from '../backend-wireguard/plan.js';
import type { Lease } from '../lease/lease.js';
import { cidrCovers, networkAddress, parseCidr } from '../ip/index.js';
import type { AddrEntry, FdbEntry, LinkInfo, NeighEntry, RouteEntry } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';

export type PeerVerdict =
  | 'ok'
  | 'missing'
  | 'stale'
  | 'wrong-mac'
  | 'wrong-public-ip'
  | 'wrong-route'
  | 'refused'
  | 'skipped';

/** The kernel state weftctl read (main routing table, neighbours and FDB of the overlay devices). */
export interface KernelState extends KernelView {
  readonly links: readonly LinkInfo[];
}

export interface PeerRow {
  /** Lease key, or null for a stale entry no lease explains. */
  readonly lease: string | null;
  readonly family: 4 | 6;
  readonly subnet: string;
  readonly publicIp: string | null;
  readonly vtepMac: string | null;
  /** What the kernel holds, as `ip` would print it (null when absent or not applicable). */
  readonly route: string | null;
  readonly neigh: string | null;
  readonly fdb: string | null;
  readonly verdict: PeerVerdict;
  /** Why weftd refuses this peer (verdict 'refused'), else null. */
  readonly reason: string | null;
  readonly problems: readonly string[];
  readonly fixes: readonly string[];
}

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

interface PlannedNetwork {
  readonly plan: NetworkPlan<PeerEntry>;
  /** The kernel entries weftd would delete (none for udp, whose peers live in the forwarder). */
  readonly stale: StaleEntries;
}

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
      const uplink = uplinkByIp(4);
      const v6 = famBase.find((b) => b.fam.family === 6 && b.ownSubnet !== '');
      const scope = {
        port: cfg.port,
        v4: famBase.find((b) => b.fam.family === 4)!,
        v6: v6 ?? null,
        ownIps: ownIps(input, publicIpOf(4), uplink, 4),
      };
      return {
        plan: (l) => planUdpPeer(l, scope),
        claims: (e) => udpClaims(e as UdpPeerRoute),
        kernel: null,
      };
    }
    if (config.backend.type === 'wireguard') {
      const cfg = parseWireguardConfig(config.backend.raw);
      const ips = (family: 4 | 6): (string | null)[] =>
        ownIps(input, publicIpOf(family), uplinkByIp(family), family);
      const base = (family: 4 | 6): string | null =>
        famBase.find((b) => b.fam.family === family && b.ownSubnet !== '')?.ownSubnet ?? null;
      const scope = wgPeerScope(cfg, config, wgLayoutOf(cfg, config, own), {
        own4: base(4),
        own6: base(6),
        ownIps: { 4: ips(4), 6: ips(6) },
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
  const incumbents = new Set<string>();
  const scoped = planner.kernel ? inScope(input.kernel, planner.kernel) : null;
  if (scoped) {
    for (const [key, p] of plans) {
      const entries = p.entries as readonly PeerEntries[];
      if (entries.length > 0 && planReconcile(entries, scoped).program.length === 0)
        incumbents.add(key);
    }
  }
  const { liveId } = planner;
  if (!scoped && liveId && input.programmed) {
    for (const [key, p] of plans)
      if (p.entries.length > 0 && p.entries.every((e) => input.programmed!.has(liveId(e))))
        incumbents.add(key);
  }
  const plan = planPeers(peers, (l) => plans.get(l.key)!, planner.claims, incumbents);
  const stale = scoped
    ? planReconcile(plan.entries as readonly PeerEntries[], scoped).stale
    : { routes: [], neighs: [], fdb: [] };
  return { plan, stale };
}

/**
 * Overlay device names for the config, as the backends name them: vxlan 'weft.<VNI>' / 'weft-v6.<VNI>'
 * (or Backend.Name); udp one TUN ('weft0') for both families; wireguard 'weft-wg' (+ 'weft-wg-v6' in
 * Mode separate); host-gw none.
 */
export function overlayDevices(config: NetworkConfig): { 4: string | null; 6: string | null } {
  try {
    if (config.backend.type === 'vxlan') {
      const c = parseVxlanConfig(config.backend.raw);
      return { 4: config.enableIPv4 ? c.name : null, 6: config.enableIPv6 ? c.name6 : null };
    }
    if (config.backend.type === 'udp') {
      const c = parseUdpConfig(config.backend.raw);
      return { 4: config.enableIPv4 ? c.name : null, 6: config.enableIPv6 ? c.name : null };
    }
    if (config.backend.type === 'wireguard') {
      // one TUN per family in flannel's `separate` mode, else one for both (src/backend-wireguard)
      const c = parseWireguardConfig(config.backend.raw);
      const six = c.mode === 'separate' ? c.nameV6 : c.name;
      return { 4: config.enableIPv4 ? c.name : null, 6: config.enableIPv6 ? six : null };
    }
  } catch {
    // an invalid backend section is reported by the config check
  }
  return { 4: null, 6: null };
}

/** The overlay devices to read, each once (udp, and WireGuard outside `separate` mode, carry both
 *  families on one device). */
export function overlayDeviceNames(config: NetworkConfig | null): string[] {
  const d = config ? overlayDevices(config) : { 4: null, 6: null };
  return [...new Set([d[4], d[6]])].filter((n): n is string => n !== null);
}

/** Longest-prefix match over the routes read (main table). */
export function lookupRoute(routes: readonly RouteEntry[], dst: string): RouteEntry | null {
  let best: RouteEntry | null = null;
  let bestLen = -1;
  for (const r of routes) {
    if (r.type !== 'UNICAST') continue;
    let len: number;
    try {
      len = r.dst === 'default' ? 0 : parseCidr(r.dst).prefixLen;
    } catch {
      continue;
    }
    if ((r.dst === 'default' || cidrCovers(r.dst, dst)) && len > bestLen) {
      best = r;
      bestLen = len;
    }
  }
  return best;
}

/** The commands that put a neighbour / FDB entry in place by hand (peers' and trace's fixes). */
export const neighFix = (ip: string, mac: string, dev: string): string =>
  `ip neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`;
export const fdbFix = (mac: string, dev: string, dst: string): string =>
  `bridge fdb replace ${mac} dev ${dev} dst ${dst} self permanent`;

const linkName = (k: KernelState, index: number | null): string =>
  k.links.find((l) => l.index === index)?.name ?? (index === null ? '?' : `if${index}`);

export function showRoute(k: KernelState, r: RouteEntry): string {
  const via = r.gateway ? ` via ${r.gateway}` : '';
  return `${r.dst}${via} dev ${linkName(k, r.oif)}${r.onlink ? ' onlink' : ''}`;
}

const showNeigh = (k: KernelState, n: NeighEntry): string =>
  `${n.dst} lladdr ${n.mac ?? '(none)'} dev ${linkName(k, n.ifindex)}${n.permanent ? ' PERMANENT' : ''}`;
const showFdb = (k: KernelState, f: FdbEntry): string =>
  `${f.mac} dev ${linkName(k, f.ifindex)} dst ${f.dst ?? '(none)'}${f.permanent ? ' permanent' : ''}`;

function familyOf(cidrOrIp: string): 4 | 6 {
  return cidrOrIp.includes(':') ? 6 : 4;
}

/** One peer lease and family with what the backend's planner wants programmed for it. */
type Want = ReturnType<typeof wants>[number];

function wants(input: PeerInput, planned: PlannedNetwork | null) {
  const { config, own } = input;
  const devs = overlayDevices(config);
  const out = [];
  const refusals = new Map<string, RefusedLease[]>();
  for (const r of planned?.plan.refused ?? [])
    refusals.set(r.lease.key, [...(refusals.get(r.lease.key) ?? []), r]);
  const ignoredBy = new Map(planned?.plan.ignored.map((i) => [i.lease.key, i.reason]) ?? []);
  for (const lease of input.leases) {
    if (own && lease.key === own.key) continue;
    for (const family of [4, 6] as const) {
      const enabled = family === 4 ? config.enableIPv4 : config.enableIPv6;
      const subnetRaw = family === 4 ? lease.subnet : lease.subnet6;
      if (!enabled || !subnetRaw) continue;
      const publicIpRaw = family === 4 ? lease.attrs.publicIp : lease.attrs.publicIpv6;
      const publicIp = publicIpRaw && publicIpRaw !== '0.0.0.0' ? publicIpRaw : null;
      const data = parseVxlanBackendData(
        family === 4 ? lease.attrs.backendData : lease.attrs.backendV6Data,
      );
      // a wireguard peer of one device carries both families' subnets (its allowed IPs)
      const entry =
        planned?.plan.byLease
          .get(lease.key)
          ?.find((e) =>
            (e as Partial<WgPeerEntry>).peer
              ? (e as WgPeerEntry).peer.allowedIps.includes(subnetRaw)
              : familyOf(e.subnet) === family,
          ) ?? null;
      const ofLease = refusals.get(lease.key) ?? [];
      // no refusal of this family but no entry either: the lease's refusal (e.g. a claim lost by the
      // other family's subnet of the same WireGuard peer)
      const refusal =
        ofLease.find((r) => r.family === family || r.family === null) ??
        (entry === null ? (ofLease[0] ?? null) : null);
      const devName = devs[family];
      out.push({
        lease,
        family,
        subnet: entry && familyOf(entry.subnet) === family ? entry.subnet : subnetRaw,
        publicIp,
        vtepMac: data.ok ? data.value.vtepMac : null,
        devName,
        dev: devName ? (input.kernel.links.find((l) => l.name === devName) ?? null) : null,
        entry, // null when refused or ignored
        /** Why weftd refuses this peer (the planner's reason), or null. */
        refused: refusal?.reason ?? (planned ? null : `backend ${config.backend.type} unknown`),
        /** Set when the lease is of another backend type. */
        ignored: ignoredBy.get(lease.key) ?? null,
      });
    }
  }
  return out;
}

/** A row's kernel entries and reason before a check fills them in. */
const NO_ENTRIES = { vtepMac: null, route: null, neigh: null, fdb: null, reason: null } as const;

/** The row of peer `w`: its lease, family, subnet and public IP, plus `fields` (kernel entries null unless given). */
function peerRow(
  w: Want,
  fields: Pick<PeerRow, 'verdict' | 'problems' | 'fixes'> & Partial<PeerRow>,
): PeerRow {
  return {
    lease: w.lease.key,
    family: w.family,
    subnet: w.subnet,
    publicIp: w.publicIp,
    ...NO_ENTRIES,
    ...fields,
  };
}

/**
 * vxlan and host-gw: the kernel against the planned entries — the route (via the gateway on the planned
 * device, or via the peer's public IP on the uplink), and for VXLAN the neighbour and FDB entry — each
 * problem with the command that puts the planned entry in place.
 */
function netlinkRow(k: KernelState, w: Want, e: PeerEntries, vxlan: boolean): PeerRow {
  const problems: string[] = [];
  const fixes: string[] = [];
  const verdicts = new Set<PeerVerdict>();
  const bad = (v: PeerVerdict, problem: string, ...fix: string[]): void => {
    verdicts.add(v);
    problems.push(problem);
    fixes.push(...fix);
  };
  const r = e.route;
  const devName = w.devName ?? '?';
  // the overlay route names its device; a route via the public IP is found by the kernel
  const want = `via ${r.gateway}${e.neigh ? ` dev ${devName} onlink` : ''}`;
  const route = k.routes.find((x) => x.dst === r.dst) ?? null;
  if (e.neigh && !w.dev)
    bad(
      'missing',
      `device ${devName} does not exist`,
      'systemctl restart weftd   # re-creates the device and programs every peer',
    );
  if (!route) bad('missing', `no route to ${r.dst}`, `ip route replace ${r.dst} ${want}`);
  else if (route.gateway !== r.gateway || (r.oif !== 0 && route.oif !== r.oif))
    bad(
      route.gateway === r.gateway || e.neigh ? 'wrong-route' : 'wrong-public-ip',
      `route to ${r.dst} goes ${showRoute(k, route)}, want ${want}`,
      `ip route replace ${r.dst} ${want}`,
    );
  const n = e.neigh && w.dev ? e.neigh : null;
  const neigh = n
    ? (k.neighs.find((x) => x.ifindex === n.ifindex && x.dst === n.dst) ?? null)
    : null;
  const replaceNeigh = n ? neighFix(n.dst, n.mac, devName) : '';
  if (n && !neigh) bad('missing', `no neighbour entry for ${n.dst} on ${devName}`, replaceNeigh);
  else if (n && neigh && neigh.mac !== n.mac)
    bad(
      'wrong-mac',
      `neighbour ${n.dst} has MAC ${neigh.mac ?? '(none)'}, the lease publishes ${n.mac}`,
      replaceNeigh,
    );
  const f = e.fdb && w.dev ? e.fdb : null;
  const devFdb = f ? k.fdb.filter((x) => x.ifindex === f.ifindex) : [];
  const fdbMac = f ? (devFdb.find((x) => x.mac === f.mac) ?? null) : null;
  const fdbIp = f
    ? (devFdb.find((x) => x.dst === f.dst && x.mac !== '00:00:00:00:00:00') ?? null)
    : null;
  const replaceFdb = f ? fdbFix(f.mac, devName, f.dst) : '';
  if (f && !fdbMac && !fdbIp) bad('missing', `no FDB entry for ${f.mac} on ${devName}`, replaceFdb);
  else if (f && fdbMac && fdbMac.dst !== f.dst)
    bad(
      'wrong-public-ip',
      `FDB entry for ${f.mac} sends to ${fdbMac.dst ?? '(none)'}, the lease's public IP is ${f.dst}`,
      `bridge fdb del ${f.mac} dev ${devName} dst ${fdbMac.dst} self`,
      replaceFdb,
    );
  else if (f && !fdbMac && fdbIp)
    bad(
      'wrong-mac',
      `FDB entry for ${f.dst} has MAC ${fdbIp.mac}, the lease publishes ${f.mac}`,
      replaceFdb,
    );
  const fdb = fdbMac ?? fdbIp;
  return peerRow(w, {
    vtepMac: vxlan ? w.vtepMac : null,
    route: route ? showRoute(k, route) : null,
    neigh: neigh ? showNeigh(k, neigh) : null,
    fdb: fdb ? showFdb(k, fdb) : null,
    verdict: pickVerdict(verdicts),
    problems,
    fixes,
  });
}

/** udp and wireguard: the peer's subnet must route into the TUN (the forwarder or the WireGuard engine
 *  picks the peer by its own table; the commands add wireguard's live handshake/bytes/endpoint). */
function udpRow(k: KernelState, w: Want): PeerRow {
  const route = lookupRoute(k.routes, networkAddress(w.subnet));
  const problems: string[] = [];
  const fixes: string[] = [];
  const dev = w.dev;
  if (!dev) {
    problems.push(`TUN device ${w.devName ?? '?'} does not exist`);
    fixes.push('systemctl restart weftd   # re-creates the TUN and its cluster route');
  } else if (!route || route.oif !== dev.index) {
    problems.push(
      `${w.subnet} is routed ${route ? showRoute(k, route) : 'nowhere'}, not into ${dev.name}`,
    );
    fixes.push(`ip route replace <cluster network> dev ${dev.name}`);
  }
  return peerRow(w, {
    route: route ? showRoute(k, route) : null,
    verdict: problems.length ? (dev && route ? 'wrong-route' : 'missing') : 'ok',
    problems,
    fixes,
  });
}

/** The worst of several verdicts (wrong MAC / public IP name the cause better than "missing"). */
function pickVerdict(v: ReadonlySet<PeerVerdict>): PeerVerdict {
  for (const x of ['wrong-mac', 'wrong-public-ip', 'wrong-route', 'missing'] as const)
    if (v.has(x)) return x;
  return 'ok';
}

/** The kernel entries weftd's reconcile would delete (no planned peer wants them, refused leases'
 *  leftovers included), with their fix. */
function staleRows(k: KernelState, stale: StaleEntries): PeerRow[] {
  const row = (subnet: string, what: Partial<PeerRow>, problem: string, fix: string): PeerRow => ({
    lease: null,
    family: familyOf(subnet),
    subnet,
    publicIp: null,
    vtepMac: null,
    route: null,
    neigh: null,
    fdb: null,
    verdict: 'stale',
    reason: null,
    problems: [problem],
    fixes: [fix],
    ...what,
  });
  const host = (ip: string): string => `${ip}/${familyOf(ip) === 4 ? 32 : 128}`;
  return [
    ...stale.routes.map((r) =>
      row(
        r.dst,
        { route: showRoute(k, r as RouteEntry) },
        `route to ${r.dst}: no lease holds this subnet`,
        `ip route del ${r.dst}`,
      ),
    ),
    ...stale.neighs.map((n) =>
      row(
        host(n.dst),
        { neigh: showNeigh(k, n as NeighEntry) },
        `neighbour ${n.dst}: no lease has this gateway`,
        `ip neigh del ${n.dst} dev ${linkName(k, n.ifindex)}`,
      ),
    ),
    ...stale.fdb.map((f) =>
      row(
        host(f.dst),
        { fdb: showFdb(k, { ...f, permanent: true }), vtepMac: f.mac, publicIp: f.dst },
        `FDB entry ${f.mac}: no lease publishes this VTEP MAC for ${f.dst} (an old MAC or a peer that left)`,
        `bridge fdb del ${f.mac} dev ${linkName(k, f.ifindex)} dst ${f.dst} self`,
      ),
    ),
  ];
}

/** One row per peer and family, then the stale entries. */
export function peerVerdicts(input: PeerInput): PeerRow[] {
  const planned = planNetwork(input);
  const ws = wants(input, planned);
  const type = input.config.backend.type;
  const rows = ws.map((w): PeerRow => {
    if (w.ignored !== null)
      return peerRow(w, {
        verdict: 'skipped',
        problems: [
          `lease backend ${w.lease.attrs.backendType || 'udp'} differs from the network's ${type}`,
        ],
        fixes: [`run the ${type} backend on that host, or change Backend.Type`],
      });
    if (w.entry === null) {
      const reason = w.refused ?? 'weftd plans no entry for it';
      return peerRow(w, {
        vtepMac: w.vtepMac,
        verdict: 'refused',
        reason,
        problems: [`lease ${w.lease.key}: ${reason}; weftd refuses this peer and programs nothing`],
        fixes: [
          `correct or remove ${
            w.publicIp
              ? `the lease of the host with public IP ${w.publicIp}`
              : `lease ${w.lease.key} (subnet ${[w.lease.subnet, w.lease.subnet6].filter(Boolean).join(' ') || '-'}, no public IP)`
          } (restarting weftd there re-publishes it)`,
        ],
      });
    }
    if (type === 'vxlan' || type === 'host-gw')
      return netlinkRow(input.kernel, w, w.entry as PeerEntries, type === 'vxlan');
    return udpRow(input.kernel, w);
  });
  return [...rows, ...(planned ? staleRows(input.kernel, planned.stale) : [])];
}

/** True when a row is a fault (skipped peers of another backend are reported but not counted). */
export function isFault(row: PeerRow): boolean {
  return row.verdict !== 'ok' && row.verdict !== 'skipped';
}
