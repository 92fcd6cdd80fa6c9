/**
 * Programming peers (docs/design.md C5): the kernel entries that make one remote subnet reachable, applied
 * as one unit. Order neighbour → FDB → route, so that by the time the route exists the kernel never has
 * to resolve the gateway (flannel's order); replace semantics throughout, so re-applying is harmless; on
 * failure the entries already written are undone. Removal attempts every delete and reports what failed
 * (an entry already absent is not a failure).
 */
import {
  isAbsent,
  type FdbSpec,
  type Mutation,
  type NeighSpec,
  type NetlinkOps,
  type RouteSpec,
} from '../netlink/index.js';
import type { PeerEntry } from './peer-plan.js';

export interface PeerEntries extends PeerEntry {
  readonly neigh?: NeighSpec;
  readonly fdb?: FdbSpec;
  readonly route: RouteSpec;
}

export const routeKey = (r: { dst: string; table?: number | undefined }): string =>
  `${r.table ?? 254}|${r.dst}`;
export const neighKey = (n: { ifindex: number; dst: string }): string => `${n.ifindex}|${n.dst}`;
export const fdbKey = (f: { ifindex: number; mac: string; dst: string | null }): string =>
  `${f.ifindex}|${f.mac}|${f.dst ?? ''}`;

/** Individual kernel entries to remove (stale ones found by reconcile, or leftovers of a changed peer). */
export interface StaleEntries {
  readonly routes: readonly RouteSpec[];
  readonly neighs: readonly Pick<NeighSpec, 'ifindex' | 'dst'>[];
  readonly fdb: readonly FdbSpec[];
}

export function staleCount(s: StaleEntries): number {
  return s.routes.length + s.neighs.length + s.fdb.length;
}

/** What `before` programmed that `after` no longer wants (e.g. the old FDB entry after a VTEP MAC change). */
export function leftovers(
  before: readonly PeerEntries[],
  after: readonly PeerEntries[],
): StaleEntries {
  const keepRoutes = new Set(after.map((e) => routeKey(e.route)));
  const keepNeighs = new Set(after.flatMap((e) => (e.neigh ? [neighKey(e.neigh)] : [])));
  const keepFdb = new Set(after.flatMap((e) => (e.fdb ? [fdbKey(e.fdb)] : [])));
  return {
    routes: before.map((e) => e.route).filter((r) => !keepRoutes.has(routeKey(r))),
    neighs: before.flatMap((e) => (e.neigh && !keepNeighs.has(neighKey(e.neigh)) ? [e.neigh] : [])),
    fdb: before.flatMap((e) => (e.fdb && !keepFdb.has(fdbKey(e.fdb)) ? [e.fdb] : [])),
  };
}

/**
 * Programs many peers with the guarantees of this file's header (per peer neighbour → FDB → route,
 * undone on failure), in three phases (all neighbours, then all FDB entries, then all routes) so that
 * the kernel sees thousands of requests pipelined while each peer still gets neighbour → FDB → route. A peer whose neighbour or FDB entry failed gets no route and
 * has what was written undone. Returns the failed peers with their error.
 */
export async function programPeers(
  ops: NetlinkOps,
  peers: readonly PeerEntries[],
): Promise<{ peer: PeerEntries; err: unknown }[]> {
  const failed = new Map<PeerEntries, unknown>();
  const phase = async (
    list: PeerEntries[],
    mutation: (p: PeerEntries) => Mutation,
  ): Promise<Set<PeerEntries>> => {
    if (list.length === 0) return new Set();
    const results = await ops.applyBatch(list.map(mutation));
    const ok = new Set<PeerEntries>();
    results.forEach((err, i) => (err ? failed.set(list[i]!, err) : ok.add(list[i]!)));
    return ok;
  };
  const neighOk = await phase(
    peers.filter((p) => p.neigh),
    (p) => ({ op: 'neighReplace', neigh: p.neigh! }),
  );
  const fdbOk = await phase(
    peers.filter((p) => p.fdb && !failed.has(p)),
    (p) => ({ op: 'fdbReplace', fdb: p.fdb! }),
  );
  await phase(
    peers.filter((p) => !failed.has(p)),
    (p) => ({ op: 'routeReplace', route: p.route }),
  );
  const bad = [...failed.keys()];
  if (bad.length > 0) {
    await ops.applyBatch(
      bad.filter((p) => fdbOk.has(p)).map((p) => ({ op: 'fdbDelete', fdb: p.fdb! })),
    );
    await ops.applyBatch(
      bad.filter((p) => neighOk.has(p)).map((p) => ({ op: 'neighDelete', neigh: p.neigh! })),
    );
  }
  return [...failed].map(([peer, err]) => ({ peer, err }));
}

/** Peers handed to the kernel one by one while the caller goes on planning (`streamPeers`). */
export interface PeerStream {
  add(peer: PeerEntries): void;
  /** Every added peer's outcome: the failed ones with their error (their entries undone). */
  finish(): Promise<{ peer: PeerEntries; err: unknown }[]>;
}

/**
 * Programs peers as they are added, over the façade's ordered stream (the native sender, when the
 * addon is available): each peer's neighbour → FDB → route go out in that order while the caller keeps
 * planning, so planning and the kernel's work overlap. The guarantee is the one of `programPeers`, with
 * one difference in how it is kept: a peer's three requests are already sent when the neighbour's
 * answer arrives, so a peer whose neighbour or FDB entry failed may have had its route written — it is
 * deleted again with the peer's other entries (written, then removed; never left behind). Without a
 * stream (no native addon) the peers are collected and handed to `programPeers` at `finish`.
 */
export function streamPeers(ops: NetlinkOps): PeerStream {
  const stream = ops.openStream?.();
  if (!stream) {
    const peers: PeerEntries[] = [];
    return { add: (p) => void peers.push(p), finish: () => programPeers(ops, peers) };
  }
  const peers: PeerEntries[] = [];
  /** Per peer: the result indexes of its neighbour, FDB entry and route (-1: none). */
  const at: number[] = [];
  return {
    add(p) {
      peers.push(p);
      at.push(
        p.neigh ? stream.push({ op: 'neighReplace', neigh: p.neigh }) : -1,
        p.fdb ? stream.push({ op: 'fdbReplace', fdb: p.fdb }) : -1,
        stream.push({ op: 'routeReplace', route: p.route }),
      );
    },
    async finish() {
      const results = await stream.end();
      const failed: { peer: PeerEntries; err: unknown }[] = [];
      const undo = { routes: [] as Mutation[], fdb: [] as Mutation[], neighs: [] as Mutation[] };
      for (let k = 0; k < peers.length; k++) {
        const n = at[3 * k]!;
        const f = at[3 * k + 1]!;
        const r = at[3 * k + 2]!;
        const err = (n >= 0 ? results[n] : null) ?? (f >= 0 ? results[f] : null) ?? results[r];
        if (!err) continue;
        const p = peers[k]!;
        failed.push({ peer: p, err });
        if (!results[r]) undo.routes.push({ op: 'routeDelete', route: p.route });
        if (f >= 0 && !results[f]) undo.fdb.push({ op: 'fdbDelete', fdb: p.fdb! });
        if (n >= 0 && !results[n]) undo.neighs.push({ op: 'neighDelete', neigh: p.neigh! });
      }
      // Routes first, then FDB, then neighbours (the reverse of programming).
      for (const batch of [undo.routes, undo.fdb, undo.neighs])
        if (batch.length > 0) await ops.applyBatch(batch);
      return failed;
    },
  };
}

/** Deletes every entry of `stale` (routes, then FDB, then neighbours), best effort; returns the errors
 *  other than "absent". */
export async function deleteStale(ops: NetlinkOps, stale: StaleEntries): Promise<unknown[]> {
  const errors: unknown[] = [];
  const run = async (mutations: Mutation[]): Promise<void> => {
    if (mutations.length === 0) return;
    for (const err of await ops.applyBatch(mutations)) if (err && !isAbsent(err)) errors.push(err);
  };
  await run(stale.routes.map((route) => ({ op: 'routeDelete', route })));
  await run(stale.fdb.map((fdb) => ({ op: 'fdbDelete', fdb })));
  await run(stale.neighs.map((neigh) => ({ op: 'neighDelete', neigh })));
  return errors;
}
