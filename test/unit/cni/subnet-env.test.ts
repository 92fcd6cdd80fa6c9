/** subnet.env parsing (docs/flannel-compat.md §10): strict, hostile input, every problem named. */
import { describe, expect, it } from 'vitest';
import { formatCidr, formatNetwork, parseHostCidr } from '../../../src/ip/host-cidr.js';
import { parseSubnetEnv, SubnetEnvError } from '../../../src/lease/subnet-env.js';

const OK =
  'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';

describe('parseSubnetEnv', () => {
  it('parses what flanneld/weftd write', () => {
    const e = parseSubnetEnv(OK, 'f');
    expect(e.networks.map(formatNetwork)).toEqual(['10.5.0.0/16']);
    expect(formatNetwork(e.subnet!)).toBe('10.5.72.0/24');
    expect(formatCidr(e.subnet!)).toBe('10.5.72.1/24');
    expect(e.mtu).toBe(1450);
    expect(e.ipMasq).toBe(false);
    expect(e.ipv6Subnet).toBeUndefined();
  });

  it('accepts CRLF, blank lines, comments, unknown keys; de-duplicates networks', () => {
    const e = parseSubnetEnv(
      '# written by weftd\r\n\r\nFLANNEL_NETWORK=10.5.0.0/16,10.5.0.0/16\r\nFLANNEL_SUBNET=10.5.72.1/24\r\nFLANNEL_MTU=1450\r\nFLANNEL_IPMASQ=true\r\nWEFT_FUTURE=1\r\n',
      'f',
    );
    expect(e.networks).toHaveLength(1);
    expect(e.ipMasq).toBe(true);
  });

  it('parses an IPv6-only file', () => {
    const e = parseSubnetEnv(
      'FLANNEL_IPV6_NETWORK=fd00:5::/48\nFLANNEL_IPV6_SUBNET=fd00:5:0:72::1/64\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n',
      'f',
    );
    expect(formatNetwork(e.ipv6Subnet!)).toBe('fd00:5:0:72::/64');
    expect(e.subnet).toBeUndefined();
  });

  it.each([
    ['', 'missing FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ'],
    [OK.replace('FLANNEL_MTU=1450\n', ''), 'missing FLANNEL_MTU'],
    [OK.replace('1450', '1450abc'), 'FLANNEL_MTU: "1450abc"'],
    [OK.replace('1450', '70000'), 'FLANNEL_MTU: "70000"'],
    [OK.replace('=false', '=yes'), 'FLANNEL_IPMASQ: "yes" is not true or false'],
    [OK.replace('10.5.72.1/24', '10.5.72.1'), 'FLANNEL_SUBNET: "10.5.72.1" is not an IPv4 CIDR'],
    [
      OK.replace('10.5.72.1/24', '10.9.72.1/24'),
      'FLANNEL_SUBNET is not inside any of the cluster networks',
    ],
    [OK.replace('10.5.72.1/24', '10.5.72.1/31'), 'leaves no room'],
    [OK.replace('10.5.0.0/16', '10.5.0.0/16,; rm -rf /'), '"; rm -rf /" is not an IPv4 CIDR'],
    [OK + 'FLANNEL_MTU=1400\n', 'FLANNEL_MTU is set twice'],
    [OK + 'export FOO=1\n', 'line 5 is not KEY=value'],
    [OK.replace('10.5.0.0/16', '"10.5.0.0/16"'), 'is not an IPv4 CIDR'],
    [OK.replace('10.5.0.0/16', '010.5.0.0/16'), 'is not an IPv4 CIDR'],
    [OK.replace('10.5.0.0/16', '10.5.0.0/33'), 'is not an IPv4 CIDR'],
    ['\0\0\0garbage', 'line 1 is not KEY=value'],
    ['X='.padEnd(70_000, 'a'), 'larger than'],
  ])('rejects hostile input %#', (text, problem) => {
    let err: unknown;
    try {
      parseSubnetEnv(text, '/run/flannel/subnet.env');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SubnetEnvError);
    expect((err as Error).message).toContain('/run/flannel/subnet.env is invalid');
    expect((err as Error).message).toContain(problem);
  });
});

describe('cidr', () => {
  it.each([
    ['10.1.2.3/24', '10.1.2.0/24'],
    ['fd00::1/64', 'fd00::/64'],
    ['FD00:0:0:0:0:0:0:1/128', 'fd00::1/128'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['::/0', '::/0'],
    ['0.0.0.0/0', '0.0.0.0/0'],
  ])('%s → network %s', (input, net) => {
    expect(formatNetwork(parseHostCidr(input)!)).toBe(net);
  });
  it.each([
    '10.1.2/24',
    '10.1.2.3',
    '1.2.3.256/8',
    'fd00:::1/64',
    '1::2::3/64',
    '::ffff:1.2.3.4/96',
    '10.0.0.0/-1',
  ])('rejects %s', (s) => {
    expect(parseHostCidr(s)).toBeUndefined();
  });
});
