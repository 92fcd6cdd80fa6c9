/**
 * The one serial peer loop of every backend (docs/design.md C4), generic over where peers are programmed (a
 * PeerSink: netlink entries, the UDP forwarder's routes, WireGuard peers): lease batches from
 * `SubnetManager.watchLeases`, a periodic resync, and "something changed under us" triggers (link
 * events) all funnel into ONE queue, so no two mutations of this network ever interleave.
 *
 * - snapshot batch → full reconcile: the backend's planner over every lease (peer-plan.ts), then the
 *   sink brings the dataplane to exactly that (adds the missing, deletes stale entries, including those
 *   of peers that vanished while weftd was down);
 * - added / changed / removed → incremental, O(1) per touched lease: the planner runs once for it, its
 *   claims are checked through an index (no scan of the other peers), and the sink programs the new
 *   entries and removes the leftovers in one batch;
 * - a removed lease keeps its entries for a short grace (`removalGraceMs`): when the same lease comes
 *   straight back (weftd on that host re-acquiring its subnet after a lost key) nothing is touched, and
 *   when it comes back different it is changed in place; a peer that really left is gone once the
 *   grace ends; a lease that was only missing from a re-list (etcd reset, compaction) waits longer
 *   (`relistRemovalGraceMs`), since its host re-creates its key only once it notices the reset;
 * - no retries inside the loop: a failure is logged with the peer and marks the state dirty; the next
 *   event or resync (default every 60 s) reconciles everything again;
 * - an entry of a peer changed or deleted by another actor (`ip route del`, `ip neigh flush`, …) is
 *   seen by the backend's watcher (`watch`, entry-guard.ts), which asks for that peer's entries to be
 *   programmed again (`repair`, O(1) per peer, not a full reconcile); the periodic resync stays the
 *   safety net (events lost, or a change made while a full reconcile ran: the watcher is muted then);
 * - before the first snapshot nothing is deleted (an etcd outage at start must not empty the kernel);
 * - on abort the loop stops; the dataplane stays in place.
 */
import { applyLeaseEvents } from '../lease/diff.js';
import type { Lease, LeaseEvent } from '../lease/lease.js';
import { rateLimited, type Logger } from '../log/logger.js';
import { describeError } from '../errors.js';
import type { SubnetManager } from '../subnet/manager.js';
import { ProgrammedPeers, type Owner } from './programmed-peers.js';
import {
  ClaimIndex,
  claimEntries,
  planPeers,
  preferred,
  type Claim,
  type LeasePlan,
  type PeerEntry,
  type RefusedLease,
} from './peer-plan.js';

export const DEFAULT_RESYNC_MS = 60_000;
/** The refusals of a lease with none (one shared array, not one per lease of a full reconcile). */
const NO_REFUSALS: readonly RefusedLease[] = Object.freeze([]);
/** How long a removed lease's entries stay, waiting for the same lease to come back. */
export const DEFAULT_REMOVAL_GRACE_MS = 500;
/**
 * The grace of a lease that was not seen deleted but is missing from a re-list (`relisted`: after an
 * etcd reset or restore, a compaction or a broken watch). After a reset every weftd notices it when its
 * watch reconnects (backoff at most 2 s; a silent member is left within ~8 s by the liveness probe) and
 * re-creates its key at once, so a healthy peer is back within ~10 s; 30 s is three times that. A peer
 * that really left during the gap keeps its entries that long at most (its subnet is unused meanwhile),
 * and never past its lease's own expiration.
 */
export const RELIST_REMOVAL_GRACE_MS = 30_000;

/**
 * The grace of `lease` missing from a re-list: `long` (RELIST_REMOVAL_GRACE_MS), but not past the
 * lease's own expiration, and never shorter than the ordinary `grace`.
 */
export function relistGraceMs(lease: Lease, grace: number, long: number, now: number): number {
  const left = lease.expiration === null ? long : lease.expiration.getTime() - now;
  return Math.max(grace, Math.min(long, left));
}

/** What one sink call did; `failed` peers and `errors` mark the loop dirty. */
export interface SinkResult<E extends PeerEntry> {
  readonly programmed: number;
  readonly deleted: number;
  readonly failed: readonly { readonly entry: E; readonly err: unknown }[];
  readonly errors: readonly unknown[];
}

/**
 * Where a backend's peers are programmed: a set of peers, each with its key, its subnet(s) and whatever
 * reaches it (netlink neighbour/FDB/route; forwarder route to an endpoint; WireGuard public key,
 * endpoint and allowed IPs).
 */
export interface PeerSink<E extends PeerEntry> {
  /** What `e` holds exclusively (see Claim): its destination, and e.g. a VTEP MAC or a public key. */
  claims(e: E): readonly Claim[];
  /** The identities of the kernel entries `e` is made of, as the loop's watcher names them (optional:
   *  without it the watcher finds no owner for anything). */
  entryIds?(e: E): readonly string[];
  /** Creates / repairs the device(s) and refreshes what the planner reads; before every full reconcile. */
  ensureReady(): Promise<void>;
  /**
   * Programs `program` (replace semantics, so re-applying is harmless), then removes whatever of
   * `remove` neither `program` nor `keep` (entries of other peers sharing a claim) still uses.
   */
  apply(program: readonly E[], remove: readonly E[], keep: readonly E[]): Promise<SinkResult<E>>;
  /** Brings the whole dataplane in this sink's scope to exactly `desired`. */
  reconcile(desired: readonly E[]): Promise<SinkResult<E>>;
  /**
   * `reconcile`, streamed (optional): the sink reads the dataplane first, then takes the desired
   * entries one by one as the planner keeps them (and may program them at once); `finish` completes
   * the reconcile with exactly the entries added.
   */
  beginReconcile?(): Promise<ReconcileStream<E>>;
}

/** A full reconcile fed entry by entry (`PeerSink.beginReconcile`). */
export interface ReconcileStream<E extends PeerEntry> {
  add(e: E): void;
  finish(): Promise<SinkResult<E>>;
}

export interface ReconcileReport {
  readonly ms: number;
  /** Of `ms`, the sink's ensureReady (devices checked / repaired). */
  readonly readyMs: number;
  /** Of `ms`, a streaming sink reading the dataplane before planning (kernel dumps); else 0. */
  readonly readMs: number;
  /** Of `ms`, planning every lease (planner, claims, and handing the entries to a streaming sink, whose
   *  kernel work goes on meanwhile); 0 when nothing was planned. */
  readonly planMs: number;
  /** Of `ms`, after planning: the bookkeeping, and waiting for the sink to finish (the kernel's work
   *  not done by the end of planning, then stale entries deleted). */
  readonly tailMs: number;
  readonly peers: number;
  readonly programmed: number;
  readonly deleted: number;
  readonly failures: number;
}

/** Optional hooks for metrics (the daemon's Prometheus gauges) and tests. */
export interface PeerLoopObserver {
  reconciled?(report: ReconcileReport): void;
  /** Peers with programmed entries. */
  peers?(count: number): void;
  /** What weftd refuses of a lease now (the planner's and the claims' reasons; [] when no longer). */
  refused?(lease: string, reasons: readonly string[]): void;
  failed?(err: unknown): void;
}

/** What a watcher of the dataplane (`PeerLoopOptions.watch`) gets from the loop. */
export interface WatchedLoop<E extends PeerEntry> {
  /** The lease and entry that own the kernel entry `id` (PeerSink.entryIds), or undefined. */
  owner(id: string): Owner<E> | undefined;
  /** Programs these leases' entries again (queued; skipped when a full reconcile is waiting). */
  repair(leases: readonly string[]): void;
  /** Queues a full reconcile (the watcher lost events). */
  reconcile(reason: string): void;
}

/** A running watcher of the dataplane. */
export interface LoopWatcher {
  /** Muted while a full reconcile runs (its own changes are not worth reading back). */
  mute(on: boolean): void;
  close(): void;
}

export interface PeerLoopOptions<E extends PeerEntry> {
  readonly subnets: SubnetManager;
  readonly ownLease: Lease;
  /** The backend's planner for one lease (pure, over the state `sink.ensureReady` refreshed). */
  readonly plan: (lease: Lease) => LeasePlan<E>;
  readonly sink: PeerSink<E>;
  readonly log: Logger;
  readonly resyncMs?: number;
  readonly removalGraceMs?: number;
  /** The grace of a lease missing from a re-list (default RELIST_REMOVAL_GRACE_MS). */
  readonly relistRemovalGraceMs?: number;
  /** Subscribes to "reconcile now" triggers (e.g. our device vanished); returns the unsubscribe. */
  readonly triggers?: (request: (reason: string) => void) => () => void;
  /** Starts watching the dataplane for changes by other actors (entry-guard.ts); stopped at the end. */
  readonly watch?: (loop: WatchedLoop<E>) => LoopWatcher;
  readonly observer?: PeerLoopObserver;
}

export class PeerLoop<E extends PeerEntry> {
  private readonly leases = new Map<string, Lease>();
  /** What is in the dataplane on behalf of each lease (also during a removal grace). */
  private readonly programmed: ProgrammedPeers<E>;
  /** Leases whose last programming failed (their entries were undone: nothing to repair). */
  private readonly failing = new Set<string>();
  private watcher: LoopWatcher | null = null;
  private claims = new ClaimIndex();
  /** Leases that lost a claim to another lease. */
  private blocked = new Set<string>();
  /** Removed leases whose entries wait out the grace. */
  private readonly pending = new Map<string, { lease: Lease; timer: NodeJS.Timeout }>();
  /** The last refusal logged per lease (each is logged once, not on every resync). */
  private readonly refusalLogged = new Map<string, string>();
  private haveSnapshot = false;
  private dirty = false;
  private queue: Promise<void> = Promise.resolve();
  private reconcileQueued = false;
  private stopped = false;

  /** Refusals are logged once per lease and reason, and no more than a burst per interval. */
  private readonly peerLog: Logger;

  constructor(private readonly o: PeerLoopOptions<E>) {
    this.peerLog = rateLimited(o.log);
    this.programmed = new ProgrammedPeers<E>().withIds(o.sink.entryIds?.bind(o.sink));
  }

  /** True while a previous failure waits for the next resync. */
  get isDirty(): boolean {
    return this.dirty;
  }

  /** Peers with programmed entries. */
  get peerCount(): number {
    return this.programmed.size;
  }

  /** Runs until `signal` aborts (resolves) or the lease watch fails (rejects). */
  async run(signal: AbortSignal): Promise<void> {
    const timer = setInterval(
      () => void this.requestReconcile('resync'),
      this.o.resyncMs ?? DEFAULT_RESYNC_MS,
    );
    const unsubscribe = this.o.triggers?.((reason) => void this.requestReconcile(reason));
    this.watcher =
      this.o.watch?.({
        owner: (id) => this.programmed.owner(id),
        repair: (leases) => void this.repair(leases),
        reconcile: (reason) => void this.requestReconcile(reason),
      }) ?? null;
    try {
      for await (const batch of this.o.subnets.watchLeases(this.o.ownLease, signal)) {
        if (signal.aborted) break;
        await this.enqueue(() => this.apply(batch));
      }
    } finally {
      this.stopped = true;
      clearInterval(timer);
      unsubscribe?.();
      this.watcher?.close();
      this.watcher = null;
      await this.queue;
      // Stopping the daemon removes nothing: a peer in its grace is reconciled by the next start.
      for (const p of this.pending.values()) clearTimeout(p.timer);
      this.pending.clear();
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

  /**
   * Programs the entries of `leases` again (replace semantics: what is still right is rewritten as is):
   * the watcher saw another actor change or delete one of them. Not while a full reconcile waits (it
   * repairs them too), and not for a lease whose programming failed (its entries were undone on
   * purpose; the next resync retries it).
   */
  repair(leases: readonly string[]): Promise<void> {
    return this.enqueue(async () => {
      if (this.reconcileQueued || this.stopped) return;
      const keys = leases.filter((k) => !this.failing.has(k));
      const program = keys.flatMap((k) => this.programmed.get(k) ?? []);
      if (program.length === 0) return;
      this.noteFailures(await this.o.sink.apply(program, [], []));
      this.o.log.debug('peer entries repaired', { peers: keys });
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
    applyLeaseEvents(this.leases, batch);
    const snapshot = batch.findLastIndex((ev) => ev.kind === 'snapshot');
    if (snapshot >= 0) this.haveSnapshot = true;
    // Each lease touched since the last snapshot, once (null: removed, with its last value kept).
    const touched = new Map<string, Lease | null>();
    const removed = new Map<string, Lease>();
    const relisted = new Set<string>();
    for (const ev of batch.slice(snapshot + 1)) {
      if (ev.kind === 'snapshot') continue;
      touched.set(ev.lease.key, ev.kind === 'removed' ? null : ev.lease);
      if (ev.kind === 'removed') removed.set(ev.lease.key, ev.lease);
      if (ev.kind === 'removed' && ev.relisted) relisted.add(ev.lease.key);
      else relisted.delete(ev.lease.key);
    }
    const full = snapshot >= 0;
    if (full || this.dirty || !this.haveSnapshot) {
      await this.reconcile();
      return;
    }
    const grace = this.o.removalGraceMs ?? DEFAULT_REMOVAL_GRACE_MS;
    const changes: Change<E>[] = [];
    const gone: string[] = [];
    for (const [key, lease] of touched) {
      if (lease !== null) continue;
      if (this.refusalLogged.delete(key)) this.o.observer?.refused?.(key, []);
      this.blocked.delete(key);
      if (!this.programmed.has(key)) continue;
      const last = removed.get(key);
      const g = last && relisted.has(key) ? this.relistGrace(last, grace) : grace;
      if (g > 0 && last) this.deferRemoval(last, g);
      else gone.push(key);
    }
    const arrived = [...touched.values()].filter((l): l is Lease => l !== null);
    for (const l of arrived) this.cancelRemoval(l.key);
    for (const key of gone) changes.push(this.unclaim(key));
    // Leases taking claims, in the order a full reconcile would give them (incumbents first).
    changes.push(...this.claimFor(preferred(arrived, this.programmed)));
    if (this.blocked.size > 0 && changes.some((c) => c.before.length > 0))
      changes.push(...this.retryBlocked(touched));
    await this.applyChanges(changes);
  }

  /** The planner for one lease; a planner that throws anyway (a bug, or input it did not foresee)
   *  costs that one peer, never the others. */
  private planOne(lease: Lease): LeasePlan<E> {
    try {
      return this.o.plan(lease);
    } catch (err) {
      return {
        entries: [],
        refused: [{ family: null, reason: `cannot be turned into entries: ${describeError(err)}` }],
      };
    }
  }

  private logRefusals(lease: Lease, refused: readonly RefusedLease[], ignored?: string): void {
    // The common case on every plan: nothing refused now, nothing logged before.
    if (refused.length === 0 && !ignored && !this.refusalLogged.has(lease.key)) return;
    const text = [...refused.map((r) => r.reason), ...(ignored ? [ignored] : [])].join('; ');
    if ((this.refusalLogged.get(lease.key) ?? '') === text) return;
    this.o.observer?.refused?.(
      lease.key,
      refused.map((r) => r.reason),
    );
    if (text === '') {
      this.refusalLogged.delete(lease.key);
      return;
    }
    this.refusalLogged.set(lease.key, text);
    if (refused.length === 0) this.peerLog.info('peer ignored', { peer: lease.key, reason: text });
    else
      for (const r of refused)
        this.peerLog.warn('skipping peer lease', {
          peer: lease.key,
          ...(r.family !== null ? { family: `IPv${r.family}` } : {}),
          problem: r.reason,
        });
  }

  /** Plans `leases` (already in claim order) and takes their claims: the changes to apply. */
  private claimFor(leases: readonly Lease[]): Change<E>[] {
    const changes: Change<E>[] = [];
    for (const lease of leases) {
      const p = this.planOne(lease);
      const before = this.programmed.get(lease.key) ?? [];
      this.claims.release(lease.key, this.claimsOf(before));
      const c = claimEntries(lease, p.entries, (e) => this.o.sink.claims(e), this.claims);
      this.logRefusals(
        lease,
        [...p.refused.map((r) => ({ lease, ...r })), ...c.refused],
        p.ignored,
      );
      if (c.refused.length > 0) this.blocked.add(lease.key);
      else this.blocked.delete(lease.key);
      if (c.kept.length > 0) this.programmed.set(lease.key, c.kept);
      else this.programmed.delete(lease.key);
      if (sameEntries(before, c.kept)) continue;
      changes.push({ key: lease.key, before, after: c.kept });
    }
    return changes;
  }

  private claimsOf(entries: readonly E[]): Claim[] {
    return entries.flatMap((e) => this.o.sink.claims(e));
  }

  /** Logs what the sink could not do; any failure marks the loop dirty (the next event reconciles). */
  private noteFailures(res: SinkResult<E>): number {
    for (const { entry } of res.failed) this.failing.add(leaseOf(entry));
    for (const { entry, err } of res.failed)
      this.o.log.warn('cannot program peer; the next resync retries', {
        peer: entry.key,
        subnet: entry.subnet,
        err: describeError(err),
      });
    if (res.errors.length > 0)
      this.o.log.warn('cannot remove stale peer entries; the next resync retries', {
        errors: res.errors.map(describeError),
      });
    const failures = res.failed.length + res.errors.length;
    if (failures > 0) this.dirty = true;
    return failures;
  }

  /** Drops `key`'s entries and claims (its lease is gone): the change to apply. */
  private unclaim(key: string): Change<E> {
    const before = this.programmed.get(key) ?? [];
    this.claims.release(key, this.claimsOf(before));
    this.programmed.delete(key);
    return { key, before, after: [] };
  }

  /** Claims were freed: leases that lost one get another chance (only they, not every peer). */
  private retryBlocked(skip: ReadonlyMap<string, unknown>): Change<E>[] {
    const retry = [...this.blocked].flatMap((k) => {
      const l = this.leases.get(k) ?? this.pending.get(k)?.lease;
      return l && !skip.has(k) ? [l] : [];
    });
    return retry.length > 0 ? this.claimFor(preferred(retry, this.programmed)) : [];
  }

  /** A lease missing from a re-list: the longer grace, but not past the lease's own expiration. */
  private relistGrace(lease: Lease, grace: number): number {
    const long = this.o.relistRemovalGraceMs ?? RELIST_REMOVAL_GRACE_MS;
    return relistGraceMs(lease, grace, long, Date.now());
  }

  private deferRemoval(lease: Lease, grace: number): void {
    const key = lease.key;
    if (this.pending.has(key)) return;
    const timer = setTimeout(() => {
      if (this.stopped) return;
      void this.enqueue(() => this.expire(key, timer));
    }, grace);
    this.pending.set(key, { lease, timer });
  }

  private cancelRemoval(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
  }

  /** The grace of a removed lease ended without it coming back: its entries go. */
  private async expire(key: string, timer: NodeJS.Timeout): Promise<void> {
    if (this.pending.get(key)?.timer !== timer) return;
    this.pending.delete(key);
    if (this.leases.has(key)) return;
    const changes = [this.unclaim(key), ...this.retryBlocked(new Map([[key, null]]))];
    await this.applyChanges(changes);
  }

  private async applyChanges(changes: readonly Change<E>[]): Promise<void> {
    this.o.observer?.peers?.(this.programmed.size);
    if (changes.length === 0) return;
    const program = changes.flatMap((c) => c.after);
    const remove = changes.flatMap((c) => c.before);
    const keys = new Set(changes.map((c) => c.key));
    const keep: E[] = [];
    for (const k of this.claims.sharers('', this.claimsOf(remove)))
      if (!keys.has(k)) keep.push(...(this.programmed.get(k) ?? []));
    for (const k of keys) this.failing.delete(k);
    this.noteFailures(await this.o.sink.apply(program, remove, keep));
    for (const c of changes) {
      if (c.after.length === 0) this.o.log.info('peer removed', { peer: c.key });
      else if (c.before.length === 0)
        this.o.log.info('peer added', { peer: c.key, subnets: c.after.map((e) => e.subnet) });
      else this.o.log.info('peer changed', { peer: c.key, subnets: c.after.map((e) => e.subnet) });
    }
  }

  /** Full reconcile: device(s) first, then the whole plan against the dataplane. */
  async reconcile(): Promise<ReconcileReport> {
    // Its own thousands of changes are not read back (they would overflow the watcher's socket).
    this.watcher?.mute(true);
    try {
      return await this.fullReconcile();
    } finally {
      this.watcher?.mute(false);
    }
  }

  private async fullReconcile(): Promise<ReconcileReport> {
    const t0 = performance.now();
    this.dirty = false;
    try {
      await this.o.sink.ensureReady();
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    const readyMs = performance.now() - t0;
    if (!this.haveSnapshot) {
      const ms = performance.now() - t0;
      return {
        ms,
        readyMs,
        readMs: 0,
        planMs: 0,
        tailMs: 0,
        peers: 0,
        programmed: 0,
        deleted: 0,
        failures: 0,
      };
    }
    // Leases in their removal grace stay planned (their timers still remove them).
    const all = [...this.leases.values()];
    for (const [key, p] of this.pending) if (!this.leases.has(key)) all.push(p.lease);
    const pendingEntries = new Map(
      [...this.pending.keys()].map((k) => [k, this.programmed.get(k) ?? []]),
    );
    // A streaming sink gets each kept entry as soon as it is planned (kernel work overlaps planning).
    const streamed = this.o.sink.beginReconcile ? await this.o.sink.beginReconcile() : null;
    const planT0 = performance.now();
    const readMs = streamed ? planT0 - t0 - readyMs : 0;
    const plan = planPeers(
      all,
      (l) =>
        pendingEntries.has(l.key) && !this.leases.has(l.key)
          ? { entries: pendingEntries.get(l.key)!, refused: [] }
          : this.planOne(l),
      (e) => this.o.sink.claims(e),
      new Set(this.programmed.keys()),
      streamed ? (e) => streamed.add(e) : undefined,
      (l, e) => this.programmed.get(l.key)?.some((p) => p.key === e.key) === true,
    );
    const planT1 = performance.now();
    const planMs = planT1 - planT0;
    // The kernel gets the rest of the plan now (a streaming sink: the last, partial chunk) and works on
    // it while the bookkeeping below runs.
    const applied = streamed ? streamed.finish() : this.o.sink.reconcile(plan.entries);
    applied.catch(() => {}); // awaited below (this only keeps a throw in between from leaving it unhandled)
    this.programmed.clear();
    // forEach and indexed loops here: for-of over thousands of leases allocates an iterator result
    // per step until V8 optimizes it, and the first full reconcile runs mostly unoptimized.
    plan.byLease.forEach((entries, key) => this.programmed.set(key, entries));
    this.claims = plan.index; // the planner took exactly the kept entries' claims
    this.blocked = new Set(plan.blocked);
    const refused = new Map<string, RefusedLease[]>();
    for (const r of plan.refused)
      refused.set(r.lease.key, [...(refused.get(r.lease.key) ?? []), r]);
    const ignored = new Map(plan.ignored.map((i) => [i.lease.key, i.reason]));
    for (let i = 0; i < all.length; i++) {
      const l = all[i]!;
      this.logRefusals(l, refused.get(l.key) ?? NO_REFUSALS, ignored.get(l.key));
    }
    if (this.refusalLogged.size > 0) {
      const planned = new Set(all.map((l) => l.key));
      for (const key of [...this.refusalLogged.keys()].filter((k) => !planned.has(k))) {
        this.refusalLogged.delete(key);
        this.o.observer?.refused?.(key, []);
      }
    }
    const res = await applied;
    this.failing.clear();
    const failures = this.noteFailures(res);
    const t1 = performance.now();
    const report: ReconcileReport = {
      ms: t1 - t0,
      readyMs,
      readMs,
      planMs,
      tailMs: t1 - planT1,
      peers: this.programmed.size,
      programmed: res.programmed,
      deleted: res.deleted,
      failures,
    };
    if (report.programmed > 0 || report.deleted > 0 || failures > 0)
      this.o.log.info('reconciled', { ...report });
    this.o.observer?.peers?.(this.programmed.size);
    this.o.observer?.reconciled?.(report);
    return report;
  }
}

interface Change<E> {
  readonly key: string;
  readonly before: readonly E[];
  readonly after: readonly E[];
}

/** The lease key of an entry (`<lease key>/<family>`). */
function leaseOf(e: PeerEntry): string {
  const slash = e.key.lastIndexOf('/');
  return slash < 0 ? e.key : e.key.slice(0, slash);
}

/** Entries are plain data built by the same planner: equal JSON means equal programming. */
function sameEntries<E>(a: readonly E[], b: readonly E[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}
