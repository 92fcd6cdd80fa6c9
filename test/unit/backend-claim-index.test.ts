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
