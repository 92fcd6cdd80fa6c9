/**
 * The reconcile diff (docs/design.md C4, docs/pitfalls.md A4/A6): desired peer entries against what the kernel has
 * in weft's scope (the backend decides the scope: routes/neighbours/FDB on its device, cluster-subnet
 * routes on the uplink). Pure: the result says which peers to (re)program and which entries to delete,
 * including those of peers that vanished while weftd was down.
 */
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
 * its devices every route but the kernel's own, and their neighbour and FDB entries; on the uplink the
 * routes for one cluster subnet via a gateway.
 */
export function inScope(kernel: KernelView, s: KernelScope): KernelView {
  const devs = new Set(s.devices);
  return {
    routes: kernel.routes.filter((r) =>
      r.oif !== null && devs.has(r.oif)
        ? r.protocol !== 'KERNEL' && r.type === 'UNICAST'
        : r.oif === s.uplink &&
          s.clusters.some((c) => isClusterGatewayRoute(r, c.network, c.subnetLen, c.ownSubnet)),
    ),
    neighs: kernel.neighs.filter((n) => devs.has(n.ifindex)),
    fdb: kernel.fdb.filter((f) => devs.has(f.ifindex)),
  };
}

export interface ReconcilePlan {
  /** Peers with at least one entry missing or different. */
  readonly program: readonly PeerEntries[];
  readonly stale: StaleEntries;
}

export function planReconcile(desired: readonly PeerEntries[], kernel: KernelView): ReconcilePlan {
  // Nothing in scope (a fresh host, or after a reboot): everything is programmed, nothing is stale.
  if (kernel.routes.length === 0 && kernel.neighs.length === 0 && kernel.fdb.length === 0)
    return { program: desired, stale: { routes: [], neighs: [], fdb: [] } };
  const routes = new Map(kernel.routes.map((r) => [routeKey(r), r]));
  const neighs = new Map(kernel.neighs.filter((n) => n.permanent).map((n) => [neighKey(n), n]));
  const fdb = new Set(kernel.fdb.filter((f) => f.permanent).map((f) => fdbKey(f)));

  const program: PeerEntries[] = [];
  for (const peer of desired) {
    const r = routes.get(routeKey(peer.route));
    const routeOk =
      r !== undefined &&
      (r.gateway ?? null) === (peer.route.gateway ?? null) &&
      (peer.route.oif == null || r.oif === peer.route.oif) &&
      r.onlink === (peer.route.onlink ?? false);
    const neighOk = !peer.neigh || neighs.get(neighKey(peer.neigh))?.mac === peer.neigh.mac;
    const fdbOk = !peer.fdb || fdb.has(fdbKey(peer.fdb));
    if (!routeOk || !neighOk || !fdbOk) program.push(peer);
  }

  const wantRoutes = new Set<string>();
  const wantNeighs = new Set<string>();
  const wantFdb = new Set<string>();
  for (const p of desired) {
    wantRoutes.add(routeKey(p.route));
    if (p.neigh) wantNeighs.add(neighKey(p.neigh));
    if (p.fdb) wantFdb.add(fdbKey(p.fdb));
  }
  return {
    program,
    stale: {
      routes: kernel.routes.filter((r) => !wantRoutes.has(routeKey(r))),
      neighs: kernel.neighs.filter((n) => n.permanent && !wantNeighs.has(neighKey(n))),
      fdb: kernel.fdb
        .filter(
          (f): f is FdbEntry & { dst: string } =>
            f.permanent && f.dst !== null && !wantFdb.has(fdbKey(f)),
        )
        .map((f) => ({ ifindex: f.ifindex, mac: f.mac, dst: f.dst })),
    },
  };
}
