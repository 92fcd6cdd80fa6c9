import { describe, expect, it } from 'vitest';
import { ClaimIndex, planPeers, preferred, type PeerEntry } from '../../src/backend/peer-plan.js';
import type { Lease } from '../../src/lease/lease.js';

describe('ClaimIndex', () => {
  it('finds the conflicting holder, shares an equal value, and frees a claim with its last holder', () => {
    const ix = new ClaimIndex();
    const mac = ['fdb|5|0e:00:00:00:00:02', '198.18.0.2'] as const;
    ix.take('a', [mac]);
    expect(ix.conflict('b', mac)).toBeNull(); // same value: shared, not a conflict
    expect(ix.conflict('b', [mac[0], '198.18.0.9'])).toBe('a');
    expect(ix.conflict('a', [mac[0], '198.18.0.9'])).toBeNull(); // its own claim
    ix.take('b', [mac]);
    ix.take('b', [mac]); // idempotent
    expect([...ix.sharers('a', [mac])]).toEqual(['b']);
    expect([...ix.sharers('b', [mac])]).toEqual(['a']);
    ix.release('a', [mac]);
    expect(ix.conflict('c', [mac[0], '198.18.0.9'])).toBe('b');
    expect([...ix.sharers('c', [mac])]).toEqual(['b']);
    ix.release('b', [mac]);
    expect(ix.conflict('c', [mac[0], '198.18.0.9'])).toBeNull();
    expect(ix.sharers('c', [mac]).size).toBe(0);
    ix.release('x', [mac]); // unknown claim: nothing happens
    ix.take('c', [mac]);
    ix.release('d', [mac]); // not a holder: c keeps it
    expect(ix.conflict('e', [mac[0], 'other'])).toBe('c');
  });
});

describe('preferred', () => {
  const lease = (key: string, exp: number | null): Lease =>
    ({ key, expiration: exp === null ? null : new Date(exp) }) as unknown as Lease;

  it('orders incumbents, then reservations, then the latest expiry, then by key', () => {
    const order = preferred(
      [lease('d', 5), lease('c', 9), lease('b', null), lease('a', 5), lease('z', 1)],
      new Set(['z']),
    ).map((l) => l.key);
    expect(order).toEqual(['z', 'b', 'c', 'a', 'd']);
  });
});

describe('planPeers: incumbency is per entry', () => {
  // A live dual-stack peer A, and a newcomer N (a reservation: it sorts before A among incumbents)
  // whose IPv6 subnet is A's: N's IPv4 entry is programmed, its IPv6 entry lost the claim to A's.
  const A = {
    key: '10.5.1.0-24&fd05:0:0:1::-64',
    expiration: new Date(Date.now() + 3600_000),
  } as unknown as Lease;
  const N = { key: '10.5.9.0-24&fd05:0:0:1::-64', expiration: null } as unknown as Lease;
  const entries = (l: Lease, v4: string): PeerEntry[] => [
    { key: `${l.key}/4`, subnet: v4 },
    { key: `${l.key}/6`, subnet: 'fd05:0:0:1::/64' },
  ];
  const plans = new Map([
    [A.key, entries(A, '10.5.1.0/24')],
    [N.key, entries(N, '10.5.9.0/24')],
  ]);
  const claims = (e: PeerEntry) => [[`route|${e.subnet}`, e.key.split('/')[0]!] as const];
  const programmed = new Set([`${A.key}/4`, `${A.key}/6`, `${N.key}/4`]);

  it("a partly programmed lease does not take a live peer's IPv6 route at the next full reconcile", () => {
    // Before, N (an incumbent by its IPv4 entry, and a reservation) claimed first and took
    // fd05:0:0:1::/64 from A, whose IPv6 traffic went to N's host from then on.
    const plan = planPeers(
      [A, N],
      (l) => ({ entries: plans.get(l.key)!, refused: [] }),
      claims,
      new Set([A.key, N.key]),
      undefined,
      (_l, e) => programmed.has(e.key),
    );
    expect(plan.entries.map((e) => e.key).sort()).toEqual(
      [`${A.key}/4`, `${A.key}/6`, `${N.key}/4`].sort(),
    );
    expect(plan.refused.map((r) => [r.lease.key, r.family])).toEqual([[N.key, 6]]);
    expect([...plan.blocked]).toEqual([N.key]);
    expect(plan.byLease.get(A.key)?.map((e) => e.key)).toEqual([`${A.key}/4`, `${A.key}/6`]);
  });

  it("an incumbent's new entry still claims before a lease that has none programmed", () => {
    const C = { key: '10.5.7.0-24&fd05:0:0:1::-64', expiration: null } as unknown as Lease;
    const all = new Map([...plans, [C.key, entries(C, '10.5.7.0/24')]]);
    const plan = planPeers(
      [C, N],
      (l) => ({ entries: all.get(l.key)!, refused: [] }),
      claims,
      new Set([N.key]),
      undefined,
      (_l, e) => e.key === `${N.key}/4`,
    );
    expect(plan.refused.map((r) => [r.lease.key, r.family])).toEqual([[C.key, 6]]);
    expect(plan.byLease.get(N.key)?.map((e) => e.key)).toEqual([`${N.key}/4`, `${N.key}/6`]);
  });
});
