/**
 * The allocator against hostile leases in etcd: one key whose subnet is much larger than SubnetLen (any
 * host can write `10.5.9.0-24&fd00::-17`) must not make the free-subnet walk step through every subnet
 * it covers (2^47 steps here: weftd would hang at startup with its event loop blocked, SIGTERM unheard).
 */
import { describe, expect, it } from 'vitest';
import { freeSubnets4, freeSubnets6, pickFreeSubnet } from '../../../src/subnet/allocator.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import { encodeLeaseAttrs } from '../../../src/lease/codec.js';
import { nullLogger } from '../../../src/log/logger.js';
import { createLocalManager } from '../../../src/subnet/local-manager.js';
import { MemoryLeaseRegistry } from '../../fakes/memory-registry.js';

const wide = parseNetworkConfig({
  Network: '10.0.0.0/8',
  SubnetLen: 30,
  EnableIPv6: true,
  IPv6Network: 'fd00::/16',
  Backend: { Type: 'vxlan' },
});

describe('allocator with hostile oversized leases', () => {
  it('jumps over an IPv6 lease covering half the network in one step', () => {
    const t0 = performance.now();
    const free = freeSubnets6(wide, ['fd00::/17']);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(free[0]).toBe('fd00:8000::/64');
  }, 5000);

  it('jumps over IPv4 leases covering most of the network, nested ones included', () => {
    const t0 = performance.now();
    const free = freeSubnets4(wide, [
      '10.0.0.0/9',
      '10.0.0.0/10',
      '10.128.0.0/10',
      '10.192.0.0/31',
    ]);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(free.slice(0, 2)).toEqual(['10.192.0.4/30', '10.192.0.8/30']);
  });

  it('a lease covering the whole range leaves nothing, at once', () => {
    const t0 = performance.now();
    expect(pickFreeSubnet(wide, ['10.0.0.0/8'], [])).toBeNull();
    expect(freeSubnets6(wide, ['fd00::/16'])).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('keys that are no lease of this network', () => {
  it('0.0.0.0-0, a supernet or the network itself do not exhaust it; leases inside still count', async () => {
    const registry = new MemoryLeaseRegistry(
      '{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
    );
    // random 0: the first free subnet (10.5.1.0/24), never the 10.5.9.0/24 the second host wants back
    const manager = createLocalManager({
      registry,
      log: nullLogger,
      ttlSeconds: 60,
      random: () => 0,
    });
    try {
      const value = encodeLeaseAttrs({
        publicIp: '198.18.0.9',
        publicIpv6: null,
        backendType: 'vxlan',
      });
      for (const k of ['0.0.0.0-0', '10.0.0.0-8', '10.5.0.0-16']) registry.put(k, value, null);
      registry.put('10.5.7.0-24', value, null);
      const lease = await manager.acquireLease(
        { publicIp: '198.18.0.1', publicIpv6: null, backendType: 'vxlan' },
        { previousSubnet: '10.5.7.0/24' },
      );
      expect(lease.subnet).toMatch(/^10\.5\.\d+\.0\/24$/);
      expect(lease.subnet).not.toBe('10.5.7.0/24');
      const again = await manager.acquireLease(
        { publicIp: '198.18.0.2', publicIpv6: null, backendType: 'vxlan' },
        { previousSubnet: '10.5.9.0/24' },
      );
      expect(again.subnet).toBe('10.5.9.0/24');
    } finally {
      await manager.close();
    }
  });
});
