import { describe, expect, it } from 'vitest';
import { applyLeaseEvents, diffLeases, sameJson } from '../../../src/lease/diff.js';
import type { Lease } from '../../../src/lease/lease.js';

const lease = (n: number, ip = `198.18.0.${n}`): Lease => ({
  key: `10.5.${n}.0-24`,
  subnet: `10.5.${n}.0/24`,
  subnet6: null,
  attrs: { publicIp: ip, publicIpv6: null, backendType: 'vxlan' },
  expiration: new Date(1000 * n),
});

describe('watch diff', () => {
  it('emits removed, then added and changed; ignores expiration-only changes', () => {
    const known = new Map([lease(1), lease(2), lease(3)].map((l) => [l.key, l]));
    const next = [{ ...lease(2), expiration: new Date(99_999) }, lease(3, '198.18.0.99'), lease(4)];
    const events = diffLeases(known, next);
    expect(events.map((e) => [e.kind, 'lease' in e ? e.lease.key : ''])).toEqual([
      ['removed', '10.5.1.0-24'],
      ['changed', '10.5.3.0-24'],
      ['added', '10.5.4.0-24'],
    ]);
    const view = new Map(known);
    applyLeaseEvents(view, events);
    expect([...view.keys()].sort()).toEqual(['10.5.2.0-24', '10.5.3.0-24', '10.5.4.0-24']);
    expect(view.get('10.5.3.0-24')?.attrs.publicIp).toBe('198.18.0.99');
  });

  it('no events when nothing changed', () => {
    const known = new Map([lease(1)].map((l) => [l.key, l]));
    expect(diffLeases(known, [lease(1)])).toEqual([]);
  });
});

describe('watch diff on hostile values', () => {
  const N = 100_000;
  const deep = (leaf: number): unknown =>
    JSON.parse('['.repeat(N) + String(leaf) + ']'.repeat(N)) as unknown;
  const withData = (backendData: unknown): Lease => ({
    ...lease(1),
    attrs: { ...lease(1).attrs, backendData },
  });

  it('compares values nested 100k deep without overflowing the stack (JSON.stringify did)', () => {
    expect(() => JSON.stringify(deep(1))).toThrow(RangeError);
    const known = new Map([[lease(1).key, withData(deep(1))]]);
    expect(diffLeases(known, [withData(deep(1))])).toEqual([]);
    expect(diffLeases(known, [withData(deep(2))]).map((e) => e.kind)).toEqual(['changed']);
  });

  it('sameJson: key order does not matter, types and lengths do', () => {
    expect(sameJson({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameJson([1, 2], [1, 2, 3])).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson([], {})).toBe(false);
    expect(sameJson(undefined, undefined)).toBe(true);
    expect(sameJson({ a: undefined }, {})).toBe(true);
  });
});
