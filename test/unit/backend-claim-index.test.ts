import { describe, expect, it } from 'vitest';
import { ClaimIndex, preferred } from '../../src/backend/peer-plan.js';
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

describe('preferred, many leases (a full reconcile: ordered without a comparator)', () => {
  const lease = (key: string, exp: number | null): Lease =>
    ({ key, expiration: exp === null ? null : new Date(exp) }) as unknown as Lease;
  /** The order as documented, by a comparator (what `preferred` did for every size). */
  const reference = (leases: readonly Lease[], incumbents: ReadonlySet<string>): string[] =>
    leases
      .map((l) => ({
        l,
        inc: incumbents.has(l.key) ? 0 : 1,
        exp: l.expiration?.getTime() ?? Number.POSITIVE_INFINITY,
      }))
      .sort(
        (a, b) =>
          a.inc - b.inc || b.exp - a.exp || (a.l.key < b.l.key ? -1 : a.l.key > b.l.key ? 1 : 0),
      )
      .map((k) => k.l.key);
  /** A small deterministic generator (the same cases on every run). */
  const rng = (seed: number) => () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };

  it('gives the comparator order for random leases (ties, reservations, incumbents)', () => {
    const r = rng(7);
    for (const n of [64, 65, 100, 1000]) {
      for (let round = 0; round < 20; round++) {
        // Few distinct expirations (many ties, as leases written in the same millisecond) or many.
        const spread = round % 2 === 0 ? 3 : 1_000_000;
        const leases = Array.from({ length: n }, (_, i) =>
          lease(
            // keys of different lengths and cases, so string order is not numeric order
            `${Math.floor(r() * 1000)}-${i}${r() < 0.3 ? 'A' : 'a'}`,
            r() < 0.1 ? null : 1_800_000_000_000 + Math.floor(r() * spread),
          ),
        );
        const incumbents = new Set(leases.filter(() => r() < 0.2).map((l) => l.key));
        expect(preferred(leases, incumbents).map((l) => l.key)).toEqual(
          reference(leases, incumbents),
        );
      }
    }
  });

  it('takes any iterable and leaves input it cannot order plainly to the comparator', () => {
    const leases = Array.from({ length: 70 }, (_, i) => lease(`k${i % 50}`, 1000 + (i % 7)));
    // repeated keys: the comparator's (stable) order
    expect(preferred(new Set(leases), new Set(['k3'])).map((l) => l.key)).toEqual(
      reference(leases, new Set(['k3'])),
    );
    const invalid = [...leases.slice(0, 60), lease('bad', Number.NaN)];
    const out = preferred(invalid, new Set());
    expect(out).toHaveLength(61);
    expect(new Set(out)).toEqual(new Set(invalid));
  });
});
