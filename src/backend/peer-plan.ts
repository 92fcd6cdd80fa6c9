/**
 * The desired state of one network, planned purely from the leases (docs/design.md C4): every backend turns
 * one lease into the entries that make it reachable (or refuses it, with the reason) through its own
 * pure planner (backend-vxlan/plan.ts, backend-hostgw/plan.ts, backend-udp/plan.ts,
 * backend-wireguard/plan.ts); this file holds what they share — the shapes, and the claims that decide
 * which lease wins when two want the same kernel entry (or forwarder route, or WireGuard public key).
 * weftd's peer loop applies the plan; weftctl renders the very same plan against the kernel it reads,
 * so the two can never disagree about which lease is refused and why.
 */
import type { Lease } from '../lease/lease.js';

/** One unit of programming for one lease and family (netlink entries, a forwarder route, …). */
export interface PeerEntry {
  /** `<lease key>/<family>`, unique within a network. */
  readonly key: string;
  /** The remote subnet this makes reachable. */
  readonly subnet: string;
}

/**
 * What an entry holds exclusively, as [claim, value]: two entries of different leases conflict on the
 * same claim with different values (the same value — e.g. one host's two leases sharing its VTEP MAC
 * and public IP — is shared, not a conflict).
 */
export type Claim = readonly [claim: string, value: string];

export interface PeerRefusal {
  /** The family refused, or null for the whole lease. */
  readonly family: 4 | 6 | null;
  readonly reason: string;
}

/** One lease through a backend's planner. */
export interface LeasePlan<E extends PeerEntry> {
  readonly entries: readonly E[];
  /** Families (or the whole lease) this backend refuses to program, each with the reason. */
  readonly refused: readonly PeerRefusal[];
  /** Set when the lease is not for this backend at all (another backend type): not a fault. */
  readonly ignored?: string;
}

export const refuse = <E extends PeerEntry>(
  reason: string,
  family: 4 | 6 | null = null,
): LeasePlan<E> => ({ entries: [], refused: [{ family, reason }] });

/** A lease of another backend type: not this backend's peer, and not a fault. */
export const ignore = <E extends PeerEntry>(reason: string): LeasePlan<E> => ({
  entries: [],
  refused: [],
  ignored: reason,
});

export interface RefusedLease extends PeerRefusal {
  readonly lease: Lease;
}

export interface NetworkPlan<E extends PeerEntry> {
  /** Every entry to program, all leases together. */
  readonly entries: readonly E[];
  /** The entries each lease gets (leases with none are absent). */
  readonly byLease: ReadonlyMap<string, readonly E[]>;
  readonly refused: readonly RefusedLease[];
  readonly ignored: readonly { readonly lease: Lease; readonly reason: string }[];
  /** Leases that lost a claim to another lease (re-planned when that one lets go). */
  readonly blocked: ReadonlySet<string>;
}

/** Who holds each claim, by lease key: the index that makes a claim check O(1) per entry. Almost every
 *  claim has one holder, kept as its key; a Set only when leases share it. */
export class ClaimIndex {
  private readonly byClaim = new Map<string, { value: string; holders: string | Set<string> }>();

  /** The lease holding `claim` with another value than `value` (i.e. the conflict), or null. */
  conflict(lease: string, c: Claim): string | null {
    // Indexed, not destructured: array destructuring runs the iterator protocol (and allocates) in
    // unoptimized code, and the first full reconcile of thousands of peers runs mostly unoptimized.
    const value = c[1];
    const held = this.byClaim.get(c[0]);
    if (held === undefined || held.value === value) return null;
    if (typeof held.holders === 'string') return held.holders !== lease ? held.holders : null;
    for (const h of held.holders) if (h !== lease) return h;
    return null;
  }

  /** Other leases holding the same claims (sharing a value with `lease`). */
  sharers(lease: string, claims: readonly Claim[]): Set<string> {
    const out = new Set<string>();
    for (const [claim] of claims) {
      const holders = this.byClaim.get(claim)?.holders;
      if (typeof holders === 'string') {
        if (holders !== lease) out.add(holders);
      } else for (const h of holders ?? []) if (h !== lease) out.add(h);
    }
    return out;
  }

  take(lease: string, claims: readonly Claim[]): void {
    for (let i = 0; i < claims.length; i++) {
      const claim = claims[i]![0];
      const value = claims[i]![1];
      const held = this.byClaim.get(claim);
      if (held === undefined) this.byClaim.set(claim, { value, holders: lease });
      else if (typeof held.holders !== 'string') held.holders.add(lease);
      else if (held.holders !== lease) held.holders = new Set([held.holders, lease]);
    }
  }

  release(lease: string, claims: readonly Claim[]): void {
    for (const [claim] of claims) {
      const held = this.byClaim.get(claim);
      if (!held) continue;
      if (typeof held.holders === 'string') {
        if (held.holders === lease) this.byClaim.delete(claim);
        continue;
      }
      held.holders.delete(lease);
      if (held.holders.size === 0) this.byClaim.delete(claim);
    }
  }

  clear(): void {
    this.byClaim.clear();
  }
}

/**
 * Leases in the order they claim entries when two want the same one: those already programmed first (a
 * newcomer cannot take over a live peer's subnet or MAC), then reservations (no expiration), then the
 * one that expires last (the live, renewed lease beats a stale one), then by key, so every resync — and
 * weftctl — picks the same one.
 */
export function preferred(
  leases: Iterable<Lease>,
  incumbents: { has(key: string): boolean },
): Lease[] {
  // Each lease's sort keys computed once, not in every comparison.
  const keyed = [...leases].map((l) => ({
    l,
    inc: incumbents.has(l.key) ? 0 : 1,
    exp: l.expiration?.getTime() ?? Number.POSITIVE_INFINITY,
  }));
  keyed.sort(
    (a, b) =>
      a.inc - b.inc || b.exp - a.exp || (a.l.key < b.l.key ? -1 : a.l.key > b.l.key ? 1 : 0),
  );
  return keyed.map((k) => k.l);
}

/**
 * Entries of `plan` that are free to take in `index` (the others are refused, naming the holder).
 * Takes the claims of the entries it keeps.
 */
export function claimEntries<E extends PeerEntry>(
  lease: Lease,
  entries: readonly E[],
  claims: (e: E) => readonly Claim[],
  index: ClaimIndex,
): { kept: E[]; refused: RefusedLease[] } {
  const kept: E[] = [];
  const refused: RefusedLease[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const cs = claims(e);
    let holder: string | null = null;
    let what = '';
    for (let k = 0; k < cs.length; k++) {
      const c = cs[k]!;
      holder = index.conflict(lease.key, c);
      if (holder !== null) {
        const kind = c[0].split('|')[0];
        what =
          kind === 'route'
            ? `the route to ${e.subnet}`
            : kind === 'fdb'
              ? 'the VTEP MAC'
              : `its ${kind}`;
        break;
      }
    }
    if (holder === null) {
      index.take(lease.key, cs);
      kept.push(e);
    } else {
      refused.push({
        lease,
        family: e.subnet.includes(':') ? 6 : 4,
        reason: `lease ${holder} already holds ${what} (two leases claim the same entry; one is programmed)`,
      });
    }
  }
  return { kept, refused };
}

/**
 * The plan for a whole network: each lease through `planLease`, in `preferred` order, keeping only the
 * entries whose claims no earlier lease holds. `incumbents` are the leases programmed now (weftd: its
 * own memory; weftctl: the leases whose entries the kernel holds). `kept` sees each kept entry as soon
 * as it is decided (a kept entry stays kept: later leases come after it in claim order).
 *
 * Incumbency is per entry when `programmed` says which of an incumbent lease's entries are in the
 * dataplane: a dual-stack lease whose IPv4 entry is programmed but whose IPv6 entry lost its claim to
 * a live peer is an incumbent, yet its IPv6 entry must not take that peer's route at the next full
 * reconcile (it would, by expiring later or being a reservation). So the entries of incumbent leases
 * that are not programmed claim only after every programmed entry, before the other leases.
 */
export function planPeers<E extends PeerEntry>(
  leases: Iterable<Lease>,
  planLease: (lease: Lease) => LeasePlan<E>,
  claims: (e: E) => readonly Claim[],
  incumbents: ReadonlySet<string> = new Set(),
  kept?: (e: E) => void,
  programmed?: (lease: Lease, e: E) => boolean,
): NetworkPlan<E> & { readonly index: ClaimIndex } {
  const index = new ClaimIndex();
  const entries: E[] = [];
  const byLease = new Map<string, E[]>();
  const refused: RefusedLease[] = [];
  const ignored: { lease: Lease; reason: string }[] = [];
  const blocked = new Set<string>();
  const ordered = preferred(leases, incumbents);
  // Entries of incumbent leases not in the dataplane yet (rare), claimed after the programmed ones.
  let deferred: { lease: Lease; entries: E[] }[] | null = null;
  const claim = (lease: Lease, planned: readonly E[]): void => {
    const c = claimEntries(lease, planned, claims, index);
    if (c.refused.length > 0) blocked.add(lease.key);
    for (let k = 0; k < c.refused.length; k++) refused.push(c.refused[k]!);
    if (c.kept.length > 0) {
      const had = byLease.get(lease.key);
      byLease.set(lease.key, had ? [...had, ...c.kept] : c.kept);
    }
    for (let k = 0; k < c.kept.length; k++) {
      entries.push(c.kept[k]!);
      kept?.(c.kept[k]!);
    }
  };
  const flush = (): void => {
    for (const d of deferred ?? []) claim(d.lease, d.entries);
    deferred = null;
  };
  for (let i = 0; i < ordered.length; i++) {
    const lease = ordered[i]!;
    const p = planLease(lease);
    if (p.ignored !== undefined) ignored.push({ lease, reason: p.ignored });
    for (let k = 0; k < p.refused.length; k++) refused.push({ lease, ...p.refused[k]! });
    let now = p.entries;
    if (programmed !== undefined && incumbents.has(lease.key)) {
      let later: E[] | null = null;
      for (let k = 0; k < p.entries.length; k++)
        if (!programmed(lease, p.entries[k]!)) (later ??= []).push(p.entries[k]!);
      if (later !== null) {
        now = p.entries.filter((e) => !later.includes(e));
        (deferred ??= []).push({ lease, entries: later });
      }
    } else if (deferred !== null) flush(); // the first lease that is no incumbent
    claim(lease, now);
  }
  flush();
  return { entries, byLease, refused, ignored, blocked, index };
}
