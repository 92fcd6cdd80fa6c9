/**
 * The serial peer loop shared by the kernel backends (design.md C4): lease batches from
 * `SubnetManager.watchLeases`, a periodic resync, and "something changed under us" triggers (link
 * events) all funnel into ONE queue, so no two kernel mutations of this network ever interleave.
 *
 * - snapshot batch → full reconcile (adds the missing, deletes stale entries, including those of peers
 *   that vanished while weftd was down);
 * - added / changed / removed → incremental: program the new entries, remove leftovers;
 * - no retries inside the loop: a failure is logged with the peer and marks the state dirty; the next
 *   resync (default every 60 s) reconciles everything again;
 * - before the first snapshot nothing is deleted (an etcd outage at start must not empty the kernel);
 * - on abort the loop stops; devices, routes, neighbours and FDB entries stay in place.
 */
import type { Lease, LeaseEvent } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { describeError } from '../errors.js';
import type { LinkEvent, NetlinkOps } from '../netlink/index.js';
import type { SubnetManager } from '../subnet/manager.js';
import {
  deleteStale,
  leftovers,
  programPeers,
  routeKey,
  staleCount,
  unprogramPeer,
  type PeerEntries,
} from './peer-entries.js';
import { planReconcile, type KernelView } from './reconcile.js';

export const DEFAULT_RESYNC_MS = 60_000;

/** The backend-specific part of the loop. */
export interface PeerProgrammer {
  /** Entries that make `lease` reachable ([] when the lease is not for this backend or is invalid —
   *  the programmer logs why). Must not throw. */
  entriesFor(lease: Lease): PeerEntries[];
  /** Re-creates / re-configures the device(s) if needed; called before every full reconcile. */
  ensureReady(): Promise<void>;
  /** Kernel entries in this backend's scope. */
  readKernel(): Promise<KernelView>;
}

export interface ReconcileReport {
  readonly ms: number;
  readonly peers: number;
  readonly programmed: number;
  readonly deleted: number;
  readonly failures: number;
}

/** Optional hooks for metrics (the daemon's Prometheus gauges) and tests. */
export interface PeerLoopObserver {
  reconciled?(report: ReconcileReport): void;
  peers?(count: number): void;
  failed?(err: unknown): void;
}

export interface PeerLoopOptions {
  readonly subnets: SubnetManager;
  readonly ownLease: Lease;
  readonly ops: NetlinkOps;
  readonly programmer: PeerProgrammer;
  readonly log: Logger;
  readonly resyncMs?: number;
  /** Decides whether a link event calls for a reconcile (e.g. our device vanished). */
  readonly linkTrigger?: (event: LinkEvent) => boolean;
  readonly observer?: PeerLoopObserver;
}

export class PeerLoop {
  private readonly leases = new Map<string, Lease>();
  private readonly programmed = new Map<string, PeerEntries[]>();
  private haveSnapshot = false;
  private dirty = false;
  private queue: Promise<void> = Promise.resolve();
  private reconcileQueued = false;

  constructor(private readonly o: PeerLoopOptions) {}

  /** True while a previous failure waits for the next resync. */
  get isDirty(): boolean {
    return this.dirty;
  }

  get peerCount(): number {
    return this.leases.size;
  }

  /** Runs until `signal` aborts (resolves) or the lease watch fails (rejects). */
  async run(signal: AbortSignal): Promise<void> {
    const timer = setInterval(
      () => this.requestReconcile('resync'),
      this.o.resyncMs ?? DEFAULT_RESYNC_MS,
    );
    const unsubscribe = this.o.linkTrigger
      ? this.o.ops.subscribeLinks((e) => {
          if (this.o.linkTrigger!(e)) this.requestReconcile(`link event ${e.kind}`);
        })
      : () => {};
    try {
      for await (const batch of this.o.subnets.watchLeases(this.o.ownLease, signal)) {
        if (signal.aborted) break;
        await this.enqueue(() => this.apply(batch));
      }
    } finally {
      clearInterval(timer);
      unsubscribe();
      await this.queue;
    }
  }

  /** Queues a full reconcile unless one is already waiting. */
  requestReconcile(reason: string): Promise<void> {
    if (this.reconcileQueued) return this.queue;
    this.reconcileQueued = true;
    return this.enqueue(async () => {
      this.reconcileQueued = false;
      this.o.log.debug('reconcile', { reason });
      await this.reconcile();
    });
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((err: unknown) => {
      this.dirty = true;
      this.o.observer?.failed?.(err);
      this.o.log.warn('peer programming failed; the next resync retries', {
        err: describeError(err),
      });
    });
    return this.queue;
  }

  /** Applies one batch of lease events. */
  async apply(batch: readonly LeaseEvent[]): Promise<void> {
    let full = false;
    const touched = new Map<string, { before: PeerEntries[]; lease: Lease | null }>();
    for (const ev of batch) {
      if (ev.kind === 'snapshot') {
        this.leases.clear();
        for (const l of ev.leases) this.leases.set(l.key, l);
        this.haveSnapshot = true;
        full = true;
        continue;
      }
      const lease = ev.lease;
      if (!touched.has(lease.key))
        touched.set(lease.key, { before: this.programmed.get(lease.key) ?? [], lease: null });
      if (ev.kind === 'removed') {
        this.leases.delete(lease.key);
        touched.get(lease.key)!.lease = null;
      } else {
        this.leases.set(lease.key, lease);
        touched.get(lease.key)!.lease = lease;
      }
    }
    this.o.observer?.peers?.(this.leases.size);
    if (!full && this.collides(touched)) {
      // Two leases want the same kernel entry (e.g. '10.5.2.0-24' and a stale '10.5.2.0-24&…'):
      // incremental removal would delete what the other still needs; the full reconcile picks one.
      full = true;
    }
    if (full || this.dirty) {
      await this.reconcile();
      return;
    }
    await Promise.all([...touched].map(([key, t]) => this.applyOne(key, t.before, t.lease)));
  }

  /** The programmer's entries for one lease; a programmer that throws anyway (a bug, or input it did
   *  not foresee) costs that one peer, never the reconcile of all the others. */
  private entriesFor(lease: Lease): PeerEntries[] {
    try {
      return this.o.programmer.entriesFor(lease);
    } catch (err) {
      this.o.log.warn('skipping peer: its lease could not be turned into kernel entries', {
        peer: lease.key,
        err: describeError(err),
      });
      return [];
    }
  }

  /** Whether a touched lease's old or new entries share a route or a VTEP MAC with another lease's
   *  (even with the same value: removing one lease incrementally would delete the shared entry). */
  private collides(
    touched: ReadonlyMap<string, { before: PeerEntries[]; lease: Lease | null }>,
  ): boolean {
    const owner = new Map<string, string>();
    const claim = (key: string, entries: readonly PeerEntries[]): boolean => {
      for (const [c] of entries.flatMap(claimKeys)) {
        const other = owner.get(c);
        if (other !== undefined && other !== key) return true;
        owner.set(c, key);
      }
      return false;
    };
    for (const [key, entries] of this.programmed)
      if (!touched.has(key) && claim(key, entries)) return true;
    for (const [key, t] of touched) {
      const after = t.lease ? this.entriesFor(t.lease) : [];
      if (claim(key, t.before) || claim(key, after)) return true;
    }
    return false;
  }

  private async applyOne(key: string, before: PeerEntries[], lease: Lease | null): Promise<void> {
    const after = lease ? this.entriesFor(lease) : [];
    let failed = false;
    for (const { peer, err } of await programPeers(this.o.ops, after)) {
      failed = true;
      this.o.log.warn('cannot program peer; the next resync retries', {
        peer: peer.key,
        subnet: peer.subnet,
        err: describeError(err),
      });
    }
    if (!failed)
      for (const e of after) this.o.log.debug('peer programmed', { peer: e.key, subnet: e.subnet });
    const gone = lease
      ? await deleteStale(this.o.ops, leftovers(before, after))
      : await this.unprogramAll(before);
    if (gone.length > 0) {
      failed = true;
      this.o.log.warn('cannot remove peer entries; the next resync retries', {
        peer: key,
        errors: gone.map(describeError),
      });
    }
    if (after.length > 0) this.programmed.set(key, after);
    else this.programmed.delete(key);
    if (!lease && before.length > 0) this.o.log.info('peer removed', { peer: key });
    if (lease && before.length === 0 && after.length > 0)
      this.o.log.info('peer added', { peer: key, subnets: after.map((e) => e.subnet) });
    if (failed) this.dirty = true;
  }

  private async unprogramAll(entries: readonly PeerEntries[]): Promise<unknown[]> {
    const errs = await Promise.all(entries.map((e) => unprogramPeer(this.o.ops, e)));
    return errs.flat();
  }

  /** Full reconcile: device(s) first, then the diff against the kernel. */
  async reconcile(): Promise<ReconcileReport> {
    const t0 = performance.now();
    this.dirty = false;
    try {
      await this.o.programmer.ensureReady();
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    if (!this.haveSnapshot) {
      return { ms: performance.now() - t0, peers: 0, programmed: 0, deleted: 0, failures: 0 };
    }
    const desired: PeerEntries[] = [];
    const incumbents = new Set(this.programmed.keys());
    this.programmed.clear();
    const claimed = new Map<string, { lease: string; value: string }>();
    for (const lease of preferred(this.leases.values(), incumbents)) {
      const entries = this.entriesFor(lease).filter((e) => {
        const taken = claimKeys(e).find(([c, value]) => {
          const holder = claimed.get(c);
          return holder !== undefined && holder.value !== value;
        });
        if (taken === undefined) return true;
        this.o.log.warn('two leases claim the same subnet or VTEP MAC; programming only one', {
          subnet: e.subnet,
          claim: taken[0],
          programmed: claimed.get(taken[0])?.lease,
          ignored: lease.key,
        });
        return false;
      });
      for (const e of entries)
        for (const [c, value] of claimKeys(e)) claimed.set(c, { lease: lease.key, value });
      if (entries.length > 0) this.programmed.set(lease.key, entries);
      desired.push(...entries);
    }
    const plan = planReconcile(desired, await this.o.programmer.readKernel());
    const failedPeers = await programPeers(this.o.ops, plan.program);
    let failures = failedPeers.length;
    for (const { peer, err } of failedPeers) {
      this.o.log.warn('cannot program peer; the next resync retries', {
        peer: peer.key,
        subnet: peer.subnet,
        err: describeError(err),
      });
    }
    const errors = await deleteStale(this.o.ops, plan.stale);
    failures += errors.length;
    for (const err of errors)
      this.o.log.warn('cannot remove stale entry', { err: describeError(err) });
    if (failures > 0) this.dirty = true;
    const report: ReconcileReport = {
      ms: performance.now() - t0,
      peers: this.leases.size,
      programmed: plan.program.length,
      deleted: staleCount(plan.stale),
      failures,
    };
    if (report.programmed > 0 || report.deleted > 0 || failures > 0)
      this.o.log.info('reconciled', { ...report });
    this.o.observer?.reconciled?.(report);
    return report;
  }
}

/**
 * What one peer's entries hold exclusively: its route (one per destination) and, for VXLAN, its VTEP
 * MAC on the device (the kernel keeps one FDB remote per MAC, so a second lease publishing the same
 * VtepMAC with another public IP — e.g. copying another host's — would redirect that host's traffic).
 * Two claims conflict when they name the same thing with different values (a stale lease of the same
 * host, same MAC and public IP, does not conflict over the MAC).
 */
function claimKeys(e: PeerEntries): [claim: string, value: string][] {
  return [
    [`route|${routeKey(e.route)}`, e.key],
    ...(e.fdb ? [[`fdb|${e.fdb.ifindex}|${e.fdb.mac}`, e.fdb.dst] as [string, string]] : []),
  ];
}

/**
 * Leases in the order they claim kernel entries when two want the same one: those already programmed
 * first (a newcomer cannot take over a live peer's subnet or MAC), then reservations (no expiration),
 * then the one that expires last (the live, renewed lease beats a stale one), then by key, so every
 * resync picks the same one.
 */
function preferred(leases: Iterable<Lease>, incumbents: ReadonlySet<string>): Lease[] {
  const exp = (l: Lease): number => l.expiration?.getTime() ?? Number.POSITIVE_INFINITY;
  const inc = (l: Lease): number => (incumbents.has(l.key) ? 0 : 1);
  return [...leases].sort(
    (a, b) => inc(a) - inc(b) || exp(b) - exp(a) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}
