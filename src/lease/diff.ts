/**
 * The watch diff (design.md C4): given the leases delivered so far and a fresh full listing, the
 * added/changed/removed events that turn one into the other. Used after a re-list (compaction, lost
 * history) so consumers never see an empty snapshot followed by a refill.
 */
import type { Lease, LeaseEvent } from './lease.js';

/** True when two leases differ in anything a consumer programs from (attrs or subnets). */
export function leaseChanged(a: Lease, b: Lease): boolean {
  return (
    a.subnet !== b.subnet ||
    a.subnet6 !== b.subnet6 ||
    JSON.stringify(a.attrs) !== JSON.stringify(b.attrs) ||
    (a.expiration === null) !== (b.expiration === null)
  );
}

/**
 * Events turning `known` (by key) into `next`: removals first, then additions and changes in `next`'s
 * order. Leases equal apart from their expiration produce no event.
 */
export function diffLeases(
  known: ReadonlyMap<string, Lease>,
  next: readonly Lease[],
): LeaseEvent[] {
  const events: LeaseEvent[] = [];
  const nextKeys = new Set(next.map((l) => l.key));
  for (const [key, lease] of known) if (!nextKeys.has(key)) events.push({ kind: 'removed', lease });
  for (const lease of next) {
    const previous = known.get(lease.key);
    if (!previous) events.push({ kind: 'added', lease });
    else if (leaseChanged(previous, lease)) events.push({ kind: 'changed', lease, previous });
  }
  return events;
}

/** Applies events to a key → lease map (the consumer-side view of the watch). */
export function applyLeaseEvents(view: Map<string, Lease>, events: readonly LeaseEvent[]): void {
  for (const ev of events) {
    if (ev.kind === 'snapshot') {
      view.clear();
      for (const l of ev.leases) view.set(l.key, l);
    } else if (ev.kind === 'removed') view.delete(ev.lease.key);
    else view.set(ev.lease.key, ev.lease);
  }
}
