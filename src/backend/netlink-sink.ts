/**
 * The peer sink of the kernel backends (vxlan, host-gw): peers are neighbour + FDB + route entries
 * (peer-entries.ts), programmed in pipelined batches through the netlink façade, and a full reconcile
 * diffs them against the kernel entries in the backend's scope (reconcile.ts).
 */
import type { NetlinkOps } from '../netlink/index.js';
import {
  deleteStale,
  leftovers,
  programPeers,
  staleCount,
  streamPeers,
  type PeerEntries,
  type StaleEntries,
} from './peer-entries.js';
import type { PeerSink, ReconcileStream, SinkResult } from './peer-loop.js';
import type { Claim } from './peer-plan.js';
import { entryIds } from './entry-guard.js';
import { ReconcileDiff, type KernelView } from './reconcile.js';

/**
 * What one peer's entries hold exclusively: its route (one per destination) and, for VXLAN, its VTEP
 * MAC on the device (the kernel keeps one FDB remote per MAC, so a second lease publishing the same
 * VtepMAC with another public IP — e.g. copying another host's — would redirect that host's traffic).
 * A stale lease of the same host (same MAC and public IP) shares the MAC claim.
 */
export function netlinkClaims(e: PeerEntries): readonly Claim[] {
  // `route|` + routeKey(e.route), built in one step.
  const route: Claim = [`route|${e.route.table ?? 254}|${e.route.dst}`, e.key];
  return e.fdb ? [route, [`fdb|${e.fdb.ifindex}|${e.fdb.mac}`, e.fdb.dst]] : [route];
}

/** The backend's device side of the sink (its programmer). */
export interface NetlinkSinkDevice {
  /** Creates / repairs the backend's device(s) and refreshes its planner scope. */
  ensureReady(): Promise<void>;
  /** Kernel entries in the backend's scope. */
  readKernel(): Promise<KernelView>;
}

export function netlinkSink(ops: NetlinkOps, device: NetlinkSinkDevice): PeerSink<PeerEntries> {
  /** Programs `program`, then deletes `stale`; counts both. */
  const run = async (
    program: readonly PeerEntries[],
    stale: StaleEntries,
  ): Promise<SinkResult<PeerEntries>> => {
    const failed = (await programPeers(ops, program)).map(({ peer, err }) => ({
      entry: peer,
      err,
    }));
    const errors = await deleteStale(ops, stale);
    return { programmed: program.length, deleted: staleCount(stale), failed, errors };
  };
  // The full reconcile, streamed: the kernel is read first, then each planned peer that differs goes
  // to the kernel while the planner goes on (streamPeers); stale entries are deleted at the end.
  const beginReconcile = async (): Promise<ReconcileStream<PeerEntries>> => {
    const diff = new ReconcileDiff(await device.readKernel());
    const stream = streamPeers(ops);
    let programmed = 0;
    return {
      add(e) {
        if (!diff.needs(e)) return;
        programmed++;
        stream.add(e);
      },
      async finish() {
        const failed = (await stream.finish()).map(({ peer, err }) => ({ entry: peer, err }));
        const stale = diff.stale();
        const errors = await deleteStale(ops, stale);
        return { programmed, deleted: staleCount(stale), failed, errors };
      },
    };
  };
  return {
    claims: netlinkClaims,
    entryIds,
    ensureReady: () => device.ensureReady(),
    apply: (program, remove, keep) => run(program, leftovers(remove, [...program, ...keep])),
    // The full reconcile in one call is the streamed one fed all at once.
    async reconcile(desired) {
      const r = await beginReconcile();
      for (const e of desired) r.add(e);
      return r.finish();
    },
    beginReconcile,
  };
}
