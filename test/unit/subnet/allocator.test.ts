import { describe, expect, it } from 'vitest';
import {
  freeSubnets4,
  freeSubnets6,
  isCompatible,
  MAX_CANDIDATES,
  pickFreeSubnet,
} from '../../../src/subnet/allocator.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';

const v4 = parseNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
const dual = parseNetworkConfig({
  Network: '10.5.0.0/16',
  EnableIPv6: true,
  IPv6Network: 'fc00::/48',
  Backend: { Type: 'vxlan' },
});
const tiny = parseNetworkConfig({ Network: '10.9.0.0/28', Backend: { Type: 'vxlan' } });

describe('allocator', () => {
  it('compatibility: length and [SubnetMin, SubnetMax]; v6 part only when enabled', () => {
    expect(isCompatible(v4, { subnet: '10.5.1.0/24', subnet6: null })).toBe(true);
    expect(isCompatible(v4, { subnet: '10.5.0.0/24', subnet6: null })).toBe(false); // first subnet skipped
    expect(isCompatible(v4, { subnet: '10.5.1.0/25', subnet6: null })).toBe(false);
    expect(isCompatible(v4, { subnet: '10.6.1.0/24', subnet6: null })).toBe(false);
    expect(isCompatible(v4, { subnet: '10.5.1.0/24', subnet6: 'fc00:0:0:1::/64' })).toBe(false);
    expect(isCompatible(dual, { subnet: '10.5.1.0/24', subnet6: 'fc00:0:0:1::/64' })).toBe(true);
    expect(isCompatible(dual, { subnet: '10.5.1.0/24', subnet6: null })).toBe(false);
    expect(isCompatible(dual, { subnet: '10.5.1.0/24', subnet6: 'fc00::/64' })).toBe(false);
  });

  it('walks from SubnetMin, skips taken and overlapping subnets, stops at 100 candidates', () => {
    const free = freeSubnets4(v4, ['10.5.1.0/24', '10.5.2.128/25', '10.5.4.0/22']);
    expect(free.slice(0, 3)).toEqual(['10.5.3.0/24', '10.5.8.0/24', '10.5.9.0/24']);
    expect(free).toHaveLength(MAX_CANDIDATES);
    expect(freeSubnets4(tiny, [])).toEqual(['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30']);
    expect(freeSubnets6(dual, ['fc00:0:0:1::/64']).slice(0, 2)).toEqual([
      'fc00:0:0:2::/64',
      'fc00:0:0:3::/64',
    ]);
  });

  it('picks uniformly among the candidates, null when a family is exhausted', () => {
    expect(pickFreeSubnet(v4, [], [], () => 0)).toEqual({ subnet: '10.5.1.0/24', subnet6: null });
    expect(pickFreeSubnet(v4, [], [], () => 0.999)).toEqual({
      subnet: '10.5.100.0/24',
      subnet6: null,
    });
    expect(pickFreeSubnet(dual, [], [], () => 0)).toEqual({
      subnet: '10.5.1.0/24',
      subnet6: 'fc00:0:0:1::/64',
    });
    expect(pickFreeSubnet(tiny, ['10.9.0.4/30', '10.9.0.8/30', '10.9.0.12/30'], [])).toBeNull();
  });
});
