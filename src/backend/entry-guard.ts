/**
 * The kernel backends' (vxlan, host-gw) guard of their peers' entries against other actors: an
 * operator's `ip route del`, `ip neigh flush dev weft.1`, `bridge fdb del`, NetworkManager, a cleanup
 * script or another CNI changing or deleting a route, neighbour or FDB entry weft programmed broke the
 * overlay to that peer until the next resync (60 s by default). The guard reads route and neighbour
 * events (NetlinkOps.watchEntries) and, when one changes or deletes an entry weft owns, asks the peer
 * loop to program that peer again (PeerLoop.repair: its entries only, not a full reconcile).
 *
 * - Echoes of weft's own changes cost one parse and one map lookup: an event showing the entry weft
 *   wants, or an entry no peer owns (weft's own deletions: the loop forgets an entry before deleting
 *   it), is dropped. The full reconcile mutes the socket instead (thousands of changes of its own).
 * - A burst of events (a flush of 1000 neighbours) coalesces: peers are marked and drained together
 *   after `coalesceMs`, in one batch.
 * - A fight with another actor that keeps undoing weft's entry cannot spin: each peer has a bucket of
 *   `burst` repairs refilled at `perSecond`; an empty bucket delays the peer's next repair until a
 *   repair is refilled (one repair per second per peer, three netlink requests, while the fight lasts).
 * - What the other actor did is logged as a warning once per peer per `warnMs` (one line per drain,
 *   naming the first few effects and the count).
 * - Lost events (the socket overflowed: ENOBUFS) ask for a full reconcile.
 */
import type { Logger } from '../log/logger.js';
import type { EntryEvent, NetlinkOps } from '../netlink/index.js';
import { fdbKey, neighKey, routeKey, type PeerEntries } from './peer-entries.js';
import type { LoopWatcher, WatchedLoop } from './peer-loop.js';
import type { Owner } from './programmed-peers.js';

/** Events of one burst are drained together this long after the first. */
export const REPAIR_COALESCE_MS = 50;
/** Repairs of one peer in a row; then `REPAIR_PER_SECOND`. */
export const REPAIR_BURST = 10;
export const REPAIR_PER_SECOND = 1;
/** A peer's other-actor warning is logged at most once per this interval. */
export const REPAIR_WARN_MS = 60_000;
/** Effects named in one warning line. */
const EFFECTS_LOGGED = 5;

export interface EntryGuardOptions {
  readonly log: Logger;
  readonly coalesceMs?: number;
  readonly burst?: number;
  readonly perSecond?: number;
  readonly warnMs?: number;
  /** Monotonic milliseconds (tests). */
  readonly now?: () => number;
}

/** The identities of one peer's kernel entries (PeerSink.entryIds), as `tampered` looks them up. */
export function entryIds(e: PeerEntries): string[] {
  const ids = [`r|${routeKey(e.route)}`];
  if (e.neigh) ids.push(`n|${neighKey(e.neigh)}`);
  if (e.fdb) ids.push(`f|${e.fdb.ifindex}|${e.fdb.mac}`);
  return ids;
}

/**
 * What `ev` did to an entry weft owns, as a text for the log, with the owning lease; null when it did
 * nothing to one (an echo of weft's own change, another actor's entry, or one weft no longer wants).
 */
export function tampered(
  ev: EntryEvent,
  owner: (id: string) => Owner<PeerEntries> | undefined,
): { lease: string; effect: string } | null {
  switch (ev.kind) {
    case 'route': {
      const r = ev.route;
      const o = owner(`r|${routeKey(r)}`);
      if (!o) return null;
      const want = o.entry.route;
      const same =
        r.type === 'UNICAST' &&
        r.gateway === (want.gateway ?? null) &&
        (want.oif == null || r.oif === want.oif) &&
        r.onlink === (want.onlink ?? false);
      // a deletion of another route with this destination (another metric or device) leaves ours
      if (ev.removed) return same ? { lease: o.lease, effect: `route ${r.dst} deleted` } : null;
      if (same) return null;
      const via = r.gateway ? ` via ${r.gateway}` : '';
      return { lease: o.lease, effect: `route ${r.dst} changed to ${r.type}${via} oif ${r.oif}` };
    }
    case 'neigh': {
      const n = ev.neigh;
      const o = owner(`n|${neighKey(n)}`);
      if (!o?.entry.neigh) return null;
      // one neighbour per device and address: any deletion is ours (`ip neigh del` first marks it
      // failed, without a lladdr)
      if (ev.removed || (!n.permanent && n.mac === null))
        return { lease: o.lease, effect: `neighbour ${n.dst} deleted` };
      if (n.permanent && n.mac === o.entry.neigh.mac) return null;
      return {
        lease: o.lease,
        effect: `neighbour ${n.dst} changed to lladdr ${n.mac ?? 'none'}${n.permanent ? ' permanent' : ''}`,
      };
    }
    case 'fdb': {
      const f = ev.fdb;
      const o = owner(`f|${f.ifindex}|${f.mac}`);
      if (!o?.entry.fdb) return null;
      const ours = fdbKey(f) === fdbKey(o.entry.fdb);
      if (ev.removed) return ours ? { lease: o.lease, effect: `FDB ${f.mac} deleted` } : null;
      if (ours && f.permanent) return null;
      return { lease: o.lease, effect: `FDB ${f.mac} changed to dst ${f.dst ?? 'none'}` };
    }
    case 'resync':
      return null;
  }
}

/**
 * `{ watch }` for a kernel backend's peer loop options (the guard over `ops`'s entry events), or
 * nothing when `ops` has no entry events.
 */
export function watchEntries(
  ops: NetlinkOps,
  log: Logger,
): { watch?: (loop: WatchedLoop<PeerEntries>) => LoopWatcher } {
  const watchEntries = ops.watchEntries?.bind(ops);
  if (!watchEntries) return {};
  return {
    watch: (loop) => {
      const guard = new EntryGuard(loop, { log });
      const watch = watchEntries((ev) => guard.handle(ev));
      return {
        mute: (on) => watch.mute(on),
        close() {
          watch.close();
          guard.close();
        },
      };
    },
  };
}

interface PeerBudget {
  /** Repairs left, as of `at`. */
  tokens: number;
  at: number;
  warnedAt: number;
}

export class EntryGuard {
  /** Peers to repair, with the first effect seen. */
  private readonly marked = new Map<string, string>();
  private readonly budgets = new Map<string, PeerBudget>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private closed = false;
  /** Repairs asked of the loop (peers), for tests and logs. */
  repairs = 0;

  constructor(
    private readonly loop: WatchedLoop<PeerEntries>,
    private readonly o: EntryGuardOptions,
  ) {}

  private now(): number {
    return this.o.now ? this.o.now() : performance.now();
  }

  handle(ev: EntryEvent): void {
    if (this.closed) return;
    if (ev.kind === 'resync') {
      this.loop.reconcile('entry events lost');
      return;
    }
    const hit = tampered(ev, (id) => this.loop.owner(id));
    if (!hit) return;
    if (!this.marked.has(hit.lease)) this.marked.set(hit.lease, hit.effect);
    this.schedule(this.now() + (this.o.coalesceMs ?? REPAIR_COALESCE_MS));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.drain(), Math.max(0, at - this.now()));
    this.timer.unref?.();
  }

  /** Repairs the marked peers within their budget; the others wait for a refilled repair. */
  private drain(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.closed) return;
    const now = this.now();
    const burst = this.o.burst ?? REPAIR_BURST;
    const perMs = (this.o.perSecond ?? REPAIR_PER_SECOND) / 1000;
    const warnMs = this.o.warnMs ?? REPAIR_WARN_MS;
    const ready: string[] = [];
    const effects: string[] = [];
    let next = Infinity;
    for (const [lease, effect] of this.marked) {
      let b = this.budgets.get(lease);
      if (!b) this.budgets.set(lease, (b = { tokens: burst, at: now, warnedAt: -Infinity }));
      b.tokens = Math.min(burst, b.tokens + (now - b.at) * perMs);
      b.at = now;
      if (b.tokens < 1) {
        next = Math.min(next, now + (1 - b.tokens) / perMs);
        continue;
      }
      b.tokens--;
      ready.push(lease);
      this.marked.delete(lease);
      if (now - b.warnedAt >= warnMs) {
        b.warnedAt = now;
        effects.push(`${lease}: ${effect}`);
      }
    }
    // peers with a full bucket and no recent warning are forgotten (the map stays as small as the fight)
    if (this.budgets.size > 4 * this.marked.size + 1024)
      for (const [lease, b] of this.budgets)
        if (b.tokens + (now - b.at) * perMs >= burst && now - b.warnedAt >= warnMs)
          this.budgets.delete(lease);
    if (effects.length > 0)
      this.o.log.warn("another actor changed weft's kernel entries; repairing them", {
        peers: effects.length,
        effects: effects.slice(0, EFFECTS_LOGGED),
      });
    if (ready.length > 0) {
      this.repairs += ready.length;
      this.loop.repair(ready);
    }
    if (next < Infinity) this.schedule(next);
  }
}
