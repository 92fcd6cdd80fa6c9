/**
 * Our own lease key overwritten with a value that is no lease at all (a hostile or broken writer) must be
 * repaired by the keeper — not reported as "lease lost", which made weftd exit 5 and, on restart, lease
 * a different subnet (the garbage key still occupies the old one): every container renumbered. Likewise
 * a garbage value at the previous subnet's key when weftd starts is taken back, not routed around.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../../src/errors.js';
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../../src/lease/codec.js';
import type { LeaseAttrs } from '../../../src/lease/lease.js';
import { nullLogger } from '../../../src/log/logger.js';
import { createLocalManager } from '../../../src/subnet/local-manager.js';
import { MemoryLeaseRegistry } from '../../fakes/memory-registry.js';

const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}';
const attrs = (n: number): LeaseAttrs => ({
  publicIp: `198.18.0.${n}`,
  publicIpv6: null,
  backendType: 'vxlan',
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('keeper with a garbage value at our key', () => {
  it.each([
    ['without a store lease', false],
    ['under a foreign store lease', true],
  ])('rewrites it %s and keeps the subnet', async (_what, withLease) => {
    const registry = new MemoryLeaseRegistry(CONFIG);
    const manager = createLocalManager({ registry, log: nullLogger, ttlSeconds: 60 });
    cleanups.push(() => manager.close());
    const lease = await manager.acquireLease(attrs(1));
    const ac = new AbortController();
    cleanups.push(() => ac.abort());
    let failure: unknown = null;
    const keeping = manager.keepLease(lease, ac.signal).catch((e: unknown) => (failure = e));
    registry.put(lease.key, '{"PublicIP": [1,2,3]', withLease ? await registry.grant(60) : null);
    for (let i = 0; i < 40 && failure === null; i++) {
      const now = await registry.get(lease.key);
      if (now && now.value === encodeLeaseAttrs(attrs(1))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(failure === null || !hasCode(failure, 'E_LEASE_LOST'), String(failure)).toBe(true);
    expect(failure).toBeNull();
    const now = await registry.get(lease.key);
    expect(decodeLeaseAttrs(now!.value)).toEqual(attrs(1));
    expect(now!.leaseId).not.toBeNull();
    ac.abort();
    await keeping;
  });
});

describe('acquire with a garbage value at our previous subnet key', () => {
  it('takes the previous subnet back instead of leasing another one', async () => {
    const registry = new MemoryLeaseRegistry(CONFIG);
    const manager = createLocalManager({ registry, log: nullLogger, ttlSeconds: 60 });
    cleanups.push(() => manager.close());
    registry.put('10.5.7.0-24', 'not json at all', null);
    registry.put('10.5.8.0-24', encodeLeaseAttrs(attrs(8)), await registry.grant(60));
    const lease = await manager.acquireLease(attrs(1), { previousSubnet: '10.5.7.0/24' });
    expect(lease.subnet).toBe('10.5.7.0/24');
    const now = await registry.get('10.5.7.0-24');
    expect(decodeLeaseAttrs(now!.value)).toEqual(attrs(1));
    expect(now!.leaseId).not.toBeNull();
    // A valid lease of another host at the previous subnet is never taken.
    const other = await manager.acquireLease(attrs(2), { previousSubnet: '10.5.8.0/24' });
    expect(other.subnet).not.toBe('10.5.8.0/24');
  });
});
