import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSubnetEnv, writeSubnetEnv } from '../../../src/daemon/subnet-env.js';
import { formatSubnetEnv, previousSubnets } from '../../../src/lease/subnet-env.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-subnetenv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('subnet.env', () => {
  it('matches flannel byte for byte (IPv4)', () => {
    expect(
      formatSubnetEnv({
        network: '10.5.0.0/16',
        subnet: '10.5.72.0/24',
        ipv6Network: null,
        subnet6: null,
        mtu: 1450,
        ipMasq: false,
      }),
    ).toBe(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
  });

  it('matches flannel byte for byte (dual stack and IPv6 only)', () => {
    expect(
      formatSubnetEnv({
        network: '10.244.0.0/16',
        subnet: '10.244.1.0/24',
        ipv6Network: 'fc00::/48',
        subnet6: 'fc00:0:0:5::/64',
        mtu: 1430,
        ipMasq: true,
      }),
    ).toBe(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n' +
        'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:5::1/64\n' +
        'FLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n',
    );
    expect(
      formatSubnetEnv({
        network: null,
        subnet: null,
        ipv6Network: 'fd00::/56',
        subnet6: 'fd00:0:0:1::/64',
        mtu: 1430,
        ipMasq: false,
      }),
    ).toBe(
      'FLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_IPV6_SUBNET=fd00:0:0:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n',
    );
  });

  it('is written atomically with mode 0644 in a 0755 directory, whatever the umask', async () => {
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    const old = process.umask(0o077);
    try {
      await writeSubnetEnv(path, {
        network: '10.5.0.0/16',
        subnet: '10.5.3.0/24',
        ipv6Network: null,
        subnet6: null,
        mtu: 1450,
        ipMasq: false,
      });
      await writeSubnetEnv(path, {
        network: '10.5.0.0/16',
        subnet: '10.5.4.0/24',
        ipv6Network: null,
        subnet6: null,
        mtu: 1450,
        ipMasq: true,
      });
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, 'run', 'flannel')).mode & 0o777).toBe(0o755);
    expect(readFileSync(path, 'utf8')).toContain('FLANNEL_SUBNET=10.5.4.1/24\n');
    const prev = await readSubnetEnv(path);
    expect(prev).toMatchObject({
      network: '10.5.0.0/16',
      subnet: '10.5.4.0/24',
      subnet6: null,
      problems: [],
    });
  });

  it('reads a previous file back as network-form CIDRs', () => {
    const p = previousSubnets(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
    expect(p).toEqual({
      network: '10.5.0.0/16',
      subnet: '10.5.52.0/24',
      ipv6Network: 'fc00::/48',
      subnet6: 'fc00:0:0:7::/64',
      problems: [],
    });
  });

  it('treats a hostile file as data: bad values reported, never thrown', async () => {
    const p = previousSubnets(
      'garbage\nFLANNEL_SUBNET=10.5.999.1/24\nFLANNEL_IPV6_SUBNET=$(rm -rf /)\n\0\0',
    );
    expect(p.subnet).toBeNull();
    expect(p.subnet6).toBeNull();
    expect(p.problems.length).toBeGreaterThanOrEqual(3);
    expect(await readSubnetEnv(join(dir, 'absent.env'))).toBeNull();
    mkdirSync(join(dir, 'adir'));
    expect((await readSubnetEnv(join(dir, 'adir')))?.problems[0]).toMatch(/not a regular file/);
    const big = join(dir, 'big.env');
    writeFileSync(big, 'FLANNEL_SUBNET=10.5.1.1/24\n' + 'X'.repeat(1 << 20));
    expect((await readSubnetEnv(big))?.subnet).toBe('10.5.1.0/24');
  });
});
