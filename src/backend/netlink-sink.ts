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
  routeKey,
  staleCount,
  type PeerEntries,
} from './peer-entries.js';
import type { PeerSink, SinkResult } from './peer-loop.js';
import type { Claim } from './peer-plan.js';
import { planReconcile, type KernelView } from './reconcile.js';

/**
 * What one peer's entries hold exclusively: its route (one per destination) and, for VXLAN, its VTEP
 * MAC on the device (the kernel keeps one FDB remote per MAC, so a second lease publishing the same
 * VtepMAC with another public IP — e.g. copying another host's — would redirect that host's traffic).
 * A stale lease of the same host (same MAC and public IP) shares the MAC claim.
 */
export function netlinkClaims(e: PeerEntries): readonly Claim[] {
  return [
    [`route|${routeKey(e.route)}`, e.key],
    ...(e.fdb ? [[`fdb|${e.fdb.ifindex}|${e.fdb.mac}`, e.fdb.dst] as const] : []),
  ];
}

export interface NetlinkSinkOptions {
  readonly ops: NetlinkOps;
  /** Creates / repairs the backend's device(s) and refreshes its planner scope. */
  ensureReady(): Promise<void>;
  /** Kernel entries in the backend's scope. */
  readKernel(): Promise<KernelView>;
}

export function netlinkSink(o: NetlinkSinkOptions): PeerSink<PeerEntries> {
  return {
    claims: netlinkClaims,
    ensureReady: () => o.ensureReady(),
    async apply(program, remove, keep): Promise<SinkResult<PeerEntries>> {
      const failed = (await programPeers(o.ops, program)).map(({ peer, err }) => ({
        entry: peer,
        err,
      }));
      const stale = leftovers(remove, [...program, ...keep]);
      const errors = await deleteStale(o.ops, stale);
      return { programmed: program.length, deleted: staleCount(stale), failed, errors };
    },
    async reconcile(desired): Promise<SinkResult<PeerEntries>> {
      const plan = planReconcile(desired, await o.readKernel());
      const failed = (await programPeers(o.ops, plan.program)).map(({ peer, err }) => ({
        entry: peer,
        err,
      }));
      const errors = await deleteStale(o.ops, plan.stale);
      return {
        programmed: plan.program.length,
        deleted: staleCount(plan.stale),
        failed,
        errors,
      };
    },
  };
}
