import { describe, expect, it } from 'vitest';
import { makeSubnetKey, parseSubnetKey } from '../../../src/subnet/keys.js';

describe('subnet keys (flannel layout)', () => {
  it.each([
    ['10.5.34.0/24', null, '10.5.34.0-24'],
    ['10.5.1.0/24', 'fc00::/64', '10.5.1.0-24&fc00::-64'],
    ['10.12.13.0/24', 'fd00:12:13::/56', '10.12.13.0-24&fd00:12:13::-56'],
  ])('%s + %s ↔ %s', (subnet, subnet6, key) => {
    expect(makeSubnetKey(subnet, subnet6)).toBe(key);
    expect(parseSubnetKey(key)).toEqual({ subnet, subnet6 });
  });

  it('writes the IPv6 part in canonical form', () => {
    expect(makeSubnetKey('10.5.1.0/24', 'FC00:0:0:0::/64')).toBe('10.5.1.0-24&fc00::-64');
  });

  it('refuses to make a key with host bits', () => {
    expect(() => makeSubnetKey('10.5.1.1/24')).toThrow(/invalid IPv4 CIDR/);
  });

  it.each([
    ['empty', ''],
    ['no length', '10.5.1.0'],
    ['/32 (flannel parses the v4 length as 0-31)', '10.5.1.0-32'],
    ['v6 length 128', '10.5.1.0-24&fc00::-128'],
    ['prefix garbage (flannel anchors only the end)', 'x10.5.1.0-24'],
    ['suffix garbage', '10.5.1.0-24x'],
    ['octet > 255', '10.5.256.0-24'],
    ['leading zero', '10.5.01.0-24'],
    ['host bits', '10.5.1.7-24'],
    ['v6 host bits', '10.5.1.0-24&fc00::1-64'],
    ['upper-case v6', '10.5.1.0-24&FC00::-64'],
    ['bad v6', '10.5.1.0-24&fc00:::1-64'],
    ['any character for a dot', '10x5.1.0-24'],
    ['path traversal', '../config'],
  ])('rejects %s', (_name, key) => {
    expect(parseSubnetKey(key)).toBeNull();
  });
});
