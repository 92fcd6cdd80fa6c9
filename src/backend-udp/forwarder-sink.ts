/**
 * The udp backend's peer sink: peers are routes in the native forwarder's table (subnet → peer public
 * IP and port). Setting a route replaces the one for the same subnet; the forwarder's table is the
 * dataplane the reconcile compares against. The TUN (its address and the cluster route) is repaired
 * before every full reconcile.
 */
import type { PeerSink, SinkResult } from '../backend/peer-loop.js';
import type { Forwarder } from '../dataplane/forwarder.js';
import { udpClaims, type UdpPeerRoute } from './plan.js';

export interface ForwarderPeerSink extends PeerSink<UdpPeerRoute> {
  /** Programs `next` from now on (a forwarder started anew after its TUN was deleted): its table is
   *  empty, so the next full reconcile sets every peer's route on it. */
  replaceForwarder(next: Forwarder): void;
}

export function forwarderSink(fwd: Forwarder, ensureReady: () => Promise<void>): ForwarderPeerSink {
  const failed: { entry: UdpPeerRoute; err: unknown }[] = [];
  const set = (routes: readonly UdpPeerRoute[]): number => {
    const current = new Map(fwd.routes().map((r) => [r.dst, r]));
    let n = 0;
    for (const r of routes) {
      const c = current.get(r.subnet);
      if (c && c.peerIp === r.peerIp && c.port === r.port) continue;
      try {
        fwd.setRoute(r.subnet, r.peerIp, r.port);
        n++;
      } catch (err) {
        failed.push({ entry: r, err });
      }
    }
    return n;
  };
  const del = (dsts: Iterable<string>): number => {
    let n = 0;
    for (const dst of dsts) if (fwd.deleteRoute(dst)) n++;
    return n;
  };
  const result = (programmed: number, deleted: number): SinkResult<UdpPeerRoute> => ({
    programmed,
    deleted,
    failed: failed.splice(0),
    errors: [],
  });
  return {
    replaceForwarder(next) {
      fwd = next;
    },
    claims: udpClaims,
    ensureReady,
    async apply(program, remove, keep) {
      const wanted = new Set([...program, ...keep].map((r) => r.subnet));
      const deleted = del(remove.map((r) => r.subnet).filter((d) => !wanted.has(d)));
      const programmed = set(program);
      return result(programmed, deleted);
    },
    async reconcile(desired) {
      const wanted = new Set(desired.map((r) => r.subnet));
      const deleted = del(fwd.routes().flatMap((r) => (wanted.has(r.dst) ? [] : [r.dst])));
      const programmed = set(desired);
      return result(programmed, deleted);
    },
  };
}
