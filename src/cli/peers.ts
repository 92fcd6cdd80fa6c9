/**
 * Peer verdicts (pure): what this host's kernel holds for each other host's lease — route, neighbour,
 * FDB entry — compared with what weftd programs for it. weftctl does not re-derive that: it renders the
 * backend's own plan (peer-planner.ts), so a lease weftd refuses is shown as refused with weftd's
 * reason, never as "missing" with a fix that would undo the refusal. Kernel entries no planned entry
 * explains are stale (a peer that left, an old VTEP MAC, a refused lease's leftovers). Each problem
 * carries the command that fixes it by hand.
 */
import { parseVxlanBackendData } from '../backend-vxlan/backend-data.js';
import { FAMILIES } from '../backend/family.js';
import type { PeerEntries, StaleEntries } from '../backend/peer-entries.js';
import { networkAddress } from '../ip/index.js';
import type { NeighEntry, RouteEntry } from '../netlink/index.js';
import {
  fdbFix,
  linkName,
  lookupRoute,
  neighFix,
  routeVia,
  showFdb,
  showNeigh,
  showRoute,
  type KernelState,
} from './kernel-entries.js';
import { overlayDevices } from './overlay-devices.js';
import {
  familyOf,
  planNetwork,
  planOfLease,
  type PeerInput,
  type PlannedNetwork,
} from './peer-planner.js';

export type PeerVerdict =
  | 'ok'
  | 'missing'
  | 'stale'
  | 'wrong-mac'
  | 'wrong-public-ip'
  | 'wrong-route'
  | 'refused'
  | 'skipped';

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

/** One peer lease and family with what the backend's planner wants programmed for it. */
type Want = ReturnType<typeof wants>[number];

function wants(input: PeerInput, planned: PlannedNetwork | null) {
  const { config, own } = input;
  const devs = overlayDevices(config);
  const out = [];
  const ignoredBy = new Map(planned?.plan.ignored.map((i) => [i.lease.key, i.reason]) ?? []);
  for (const lease of input.leases) {
    if (own && lease.key === own.key) continue;
    for (const fam of FAMILIES) {
      const { family } = fam;
      const subnetRaw = fam.subnet(lease);
      if (!(family === 4 ? config.enableIPv4 : config.enableIPv6) || !subnetRaw) continue;
      const data = parseVxlanBackendData(fam.backendData(lease));
      const { entry, refusal } = planOfLease(planned, lease, family);
      const devName = devs[family];
      out.push({
        lease,
        family,
        subnet: entry && familyOf(entry.subnet) === family ? entry.subnet : subnetRaw,
        publicIp: fam.publicIp(lease),
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

/** A row of `who`, its kernel entries null unless `fields` gives them. */
const row = (
  who: Pick<PeerRow, 'lease' | 'family' | 'subnet' | 'publicIp'>,
  fields: Pick<PeerRow, 'verdict' | 'reason' | 'problems' | 'fixes'> & Partial<PeerRow>,
): PeerRow => ({ ...who, vtepMac: null, route: null, neigh: null, fdb: null, ...fields });

/** The row of peer `w`: its lease, family, subnet and public IP, plus `fields`. */
const peerRow = (
  w: Want,
  fields: Pick<PeerRow, 'verdict' | 'problems' | 'fixes'> & Partial<PeerRow>,
) =>
  row(
    { lease: w.lease.key, family: w.family, subnet: w.subnet, publicIp: w.publicIp },
    { reason: null, ...fields },
  );

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
  const want = routeVia(e, devName);
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
function staleRows(k: KernelState, entries: StaleEntries): PeerRow[] {
  const stale = (subnet: string, what: Partial<PeerRow>, problem: string, fix: string) =>
    row(
      { lease: null, family: familyOf(subnet), subnet, publicIp: null },
      { verdict: 'stale', reason: null, problems: [problem], fixes: [fix], ...what },
    );
  const host = (ip: string): string => `${ip}/${familyOf(ip) === 4 ? 32 : 128}`;
  return [
    ...entries.routes.map((r) =>
      stale(
        r.dst,
        { route: showRoute(k, r as RouteEntry) },
        `route to ${r.dst}: no lease holds this subnet`,
        `ip route del ${r.dst}`,
      ),
    ),
    ...entries.neighs.map((n) =>
      stale(
        host(n.dst),
        { neigh: showNeigh(k, n as NeighEntry) },
        `neighbour ${n.dst}: no lease has this gateway`,
        `ip neigh del ${n.dst} dev ${linkName(k, n.ifindex)}`,
      ),
    ),
    ...entries.fdb.map((f) =>
      stale(
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
