/**
 * The reconcile diff (docs/design.md C4, docs/pitfalls.md A4/A6): desired peer entries against what the kernel has
 * in weft's scope (the backend decides the scope: routes/neighbours/FDB on its device, cluster-subnet
 * routes on the uplink). Pure: the result says which peers to (re)program and which entries to delete,
 * including those of peers that vanished while weftd was down.
 */
import { cidrCovers, networkAddress } from '../ip/index.js';
import type { FdbEntry, NeighEntry, RouteEntry } from '../netlink/index.js';
import type { PeerSubnetScope } from './peer-check.js';
import { fdbKey, neighKey, routeKey, type PeerEntries, type StaleEntries } from './peer-entries.js';
import { isClusterGatewayRoute } from './uplink-routes.js';

/** Kernel entries in the backend's scope (already filtered by it). */
export interface KernelView {
  readonly routes: readonly RouteEntry[];
  readonly neighs: readonly NeighEntry[];
  readonly fdb: readonly FdbEntry[];
}

/** What a backend owns in the kernel: its devices, and cluster-subnet gateway routes on the uplink. */
export interface KernelScope {
  readonly devices: readonly number[];
  readonly uplink: number | null;
  readonly clusters: readonly PeerSubnetScope[];
}

/**
 * The part of a kernel dump in a backend's scope (weftd's reconcile and weftctl's stale entries): on
 * its devices the unicast routes (not the kernel's own) into a cluster network or of weft's shape (a
 * subnet via its own network address, e.g. of an earlier network config), and their neighbour and FDB
 * entries; on the uplink the routes for one cluster subnet via a gateway. An operator's route on weft's
 * device to somewhere else (`ip route add 192.168.77.0/24 dev weft.1`) is not weft's and stays.
 */
export function inScope(kernel: KernelView, s: KernelScope): KernelView {
  const devs = new Set(s.devices);
  return {
    routes: kernel.routes.filter((r) =>
      r.oif !== null && devs.has(r.oif)
        ? r.protocol !== 'KERNEL' && r.type === 'UNICAST' && isWeftDeviceRoute(r, s.clusters)
        : r.oif === s.uplink &&
          s.clusters.some((c) => isClusterGatewayRoute(r, c.network, c.subnetLen, c.ownSubnet)),
    ),
    neighs: kernel.neighs.filter((n) => devs.has(n.ifindex)),
    fdb: kernel.fdb.filter((f) => devs.has(f.ifindex)),
  };
}

/** A route on weft's device that is weft's: into a cluster network, or `S via <S's network address>`. */
function isWeftDeviceRoute(r: RouteEntry, clusters: readonly PeerSubnetScope[]): boolean {
  try {
    return (
      clusters.some((c) => cidrCovers(c.network, r.dst)) ||
      (r.gateway !== null && networkAddress(r.dst) === r.gateway)
    );
  } catch {
    return false; // not a CIDR (e.g. 'default'): not one of ours
  }
}

export interface ReconcilePlan {
  /** Peers with at least one entry missing or different. */
  readonly program: readonly PeerEntries[];
  readonly stale: StaleEntries;
}

export function planReconcile(desired: readonly PeerEntries[], kernel: KernelView): ReconcilePlan {
  const diff = new ReconcileDiff(kernel);
  const program = desired.filter((p) => diff.needs(p));
  return { program, stale: diff.stale() };
}

/**
 * `planReconcile` one peer at a time (weftd's full reconcile streams the planner's peers to the kernel
 * as they come): `needs` says whether a desired peer must be (re)programmed and records it as wanted;
 * `stale` then lists the kernel entries no desired peer wants.
 */
export class ReconcileDiff {
  private readonly empty: boolean;
  private readonly routes: Map<string, RouteEntry>;
  private readonly neighs: Map<string, NeighEntry>;
  private readonly fdb: Set<string>;
  private readonly wantRoutes = new Set<string>();
  private readonly wantNeighs = new Set<string>();
  private readonly wantFdb = new Set<string>();

  constructor(private readonly kernel: KernelView) {
    this.empty =
      kernel.routes.length === 0 && kernel.neighs.length === 0 && kernel.fdb.length === 0;
    this.routes = new Map(kernel.routes.map((r) => [routeKey(r), r]));
    this.neighs = new Map(kernel.neighs.filter((n) => n.permanent).map((n) => [neighKey(n), n]));
    this.fdb = new Set(kernel.fdb.filter((f) => f.permanent).map((f) => fdbKey(f)));
  }

  needs(peer: PeerEntries): boolean {
    // Nothing in scope (a fresh host, or after a reboot): everything is programmed, nothing is stale.
    if (this.empty) return true;
    const routeK = routeKey(peer.route);
    this.wantRoutes.add(routeK);
    const nk = peer.neigh ? neighKey(peer.neigh) : null;
    const fk = peer.fdb ? fdbKey(peer.fdb) : null;
    if (nk !== null) this.wantNeighs.add(nk);
    if (fk !== null) this.wantFdb.add(fk);
    const r = this.routes.get(routeK);
    const routeOk =
      r !== undefined &&
      (r.gateway ?? null) === (peer.route.gateway ?? null) &&
      (peer.route.oif == null || r.oif === peer.route.oif) &&
      r.onlink === (peer.route.onlink ?? false);
    const neighOk = nk === null || this.neighs.get(nk)?.mac === peer.neigh!.mac;
    const fdbOk = fk === null || this.fdb.has(fk);
    return !routeOk || !neighOk || !fdbOk;
  }

  stale(): StaleEntries {
    if (this.empty) return { routes: [], neighs: [], fdb: [] };
    const k = this.kernel;
    return {
      routes: k.routes.filter((r) => !this.wantRoutes.has(routeKey(r))),
      neighs: k.neighs.filter((n) => n.permanent && !this.wantNeighs.has(neighKey(n))),
      fdb: k.fdb
        .filter(
          (f): f is FdbEntry & { dst: string } =>
            f.permanent && f.dst !== null && !this.wantFdb.has(fdbKey(f)),
        )
        .map((f) => ({ ifindex: f.ifindex, mac: f.mac, dst: f.dst })),
    };
  }
}
