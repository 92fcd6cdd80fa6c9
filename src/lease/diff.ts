/**
 * The watch diff (docs/design.md C4): given the leases delivered so far and a fresh full listing, the
 * added/changed/removed events that turn one into the other. Used after a re-list (compaction, lost
 * history) so consumers never see an empty snapshot followed by a refill.
 */
import type { Lease, LeaseEvent } from './lease.js';

/**
 * Structural equality of two JSON values (as JSON.parse builds them), without recursion: a value from
 * etcd nested arbitrarily deep cannot overflow the stack here (JSON.stringify of one did, and the
 * RangeError escaped the watch). Object key order does not matter; `undefined` members equal absent ones.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) {
      if (typeof x === 'number' && typeof y === 'number' && Number.isNaN(x) && Number.isNaN(y))
        continue;
      return false;
    }
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x)) {
      const ya = y as unknown[];
      if (x.length !== ya.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], ya[i]]);
      continue;
    }
    const xo = x as Record<string, unknown>;
    const yo = y as Record<string, unknown>;
    const xk = Object.keys(xo).filter((k) => xo[k] !== undefined);
    const yk = Object.keys(yo).filter((k) => yo[k] !== undefined);
    if (xk.length !== yk.length) return false;
    for (const k of xk) {
      if (!Object.prototype.hasOwnProperty.call(yo, k)) return false;
      stack.push([xo[k], yo[k]]);
    }
  }
  return true;
}

/** True when two leases differ in anything a consumer programs from (attrs or subnets). */
export function leaseChanged(a: Lease, b: Lease): boolean {
  return (
    a.subnet !== b.subnet ||
    a.subnet6 !== b.subnet6 ||
    a.attrs.publicIp !== b.attrs.publicIp ||
    a.attrs.publicIpv6 !== b.attrs.publicIpv6 ||
    a.attrs.backendType !== b.attrs.backendType ||
    !sameJson(a.attrs.backendData, b.attrs.backendData) ||
    !sameJson(a.attrs.backendV6Data, b.attrs.backendV6Data) ||
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
