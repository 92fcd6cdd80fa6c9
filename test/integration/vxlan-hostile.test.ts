/**
 * Hostile peer leases against the VXLAN backend on the real kernel: two simulated hosts, leases from an
 * in-memory SubnetManager; a third party publishes leases that overlap h1's own subnet (a /25 inside it,
 * the whole network), loopback / multicast / broadcast / h1's own PublicIPs, h1's own VTEP MAC and a VNI
 * nested too deep to print. None may reach h1's kernel, and h1's and h2's containers keep talking.
 */
import { useStateDir } from '../helpers/state-dir.js';
import { describe, expect, it } from 'vitest';
import { vxlanBackendFactory, type VxlanNetwork } from '../../src/backend-vxlan/index.js';
import type { Lease, LeaseAttrs } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import { run, sleep } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { ipOut, pingMatrix, uplinkOf, useBackendCluster, type Running } from './backend-helpers.js';
import { testNetworkConfig } from './backend-memory-subnets.js';

const runnable = requireCaps('root', 'netns', 'ping');
useLeakCheck();

const { dir: stateDir, machineId } = useStateDir('weft-vxlan-hostile-');

const lease = (subnet: string, attrs: LeaseAttrs): Lease => ({
  key: subnet.replace('/', '-'),
  subnet,
  subnet6: null,
  attrs,
  expiration: new Date(Date.now() + 86_400_000),
});
const vx = (publicIp: string, data: unknown): LeaseAttrs => ({
  publicIp,
  publicIpv6: null,
  backendType: 'vxlan',
  backendData: data,
});

describe.skipIf(!runnable)('vxlan backend with hostile peer leases (real kernel)', () => {
  const c = useBackendCluster<VxlanNetwork>(
    2,
    () => testNetworkConfig('vxlan'),
    async (h, ops, subnets) =>
      vxlanBackendFactory({ netns: h.netns, resyncMs: 1000, machineIdPath: machineId })({
        subnets: subnets.manager(),
        uplink: await uplinkOf(ops, h, false),
        log: nullLogger,
        stateDir,
      }),
  );
  const { hosts } = c;

  it('programs none of them; the healthy peers keep talking', async () => {
    const [h1, h2] = hosts as [Running<VxlanNetwork>, Running<VxlanNetwork>];
    expect(await pingMatrix(hosts, false)).toEqual([]);
    const own = h1.network.lease.subnet!; // 10.5.<n>.0/24
    const base = own.split('/')[0]!.split('.').slice(0, 3).join('.');
    const deep: unknown = JSON.parse('['.repeat(100_000) + '1' + ']'.repeat(100_000));
    const mac = (n: number): string => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
    c.subnets.put(lease(`${base}.0/25`, vx('198.18.0.77', { VNI: 1, VtepMAC: mac(70) })));
    c.subnets.put(lease(`${base}.128/25`, vx('198.18.0.77', { VNI: 1, VtepMAC: mac(71) })));
    c.subnets.put(lease('10.5.0.0/16', vx('198.18.0.77', { VNI: 1, VtepMAC: mac(72) })));
    c.subnets.put(lease('10.5.80.0/24', vx('127.0.0.1', { VNI: 1, VtepMAC: mac(80) })));
    c.subnets.put(lease('10.5.81.0/24', vx('224.0.0.5', { VNI: 1, VtepMAC: mac(81) })));
    c.subnets.put(lease('10.5.82.0/24', vx('255.255.255.255', { VNI: 1, VtepMAC: mac(82) })));
    c.subnets.put(lease('10.5.83.0/24', vx('198.18.0.1', { VNI: 1, VtepMAC: mac(83) })));
    c.subnets.put(
      lease('10.5.84.0/24', vx('198.18.0.84', { VNI: 1, VtepMAC: h1.network.vtepMacs[4] })),
    );
    c.subnets.put(lease('10.5.85.0/24', vx('198.18.0.85', { VNI: deep, VtepMAC: mac(85) })));
    // A healthy newcomer after them all is still programmed (the loop is alive).
    c.subnets.put(lease('10.5.90.0/24', vx('198.18.0.90', { VNI: 1, VtepMAC: mac(90) })));
    await h1.network.reconcileNow();
    await sleep(200);
    const routes = await ipOut(h1.host.netns, 'route', 'show');
    expect(routes).toContain('10.5.90.0/24 via 10.5.90.0 dev weft.1');
    expect(routes).toContain(`10.5.${h2.n}.0/24 via 10.5.${h2.n}.0 dev weft.1`);
    for (const bad of [`${base}.0/25`, `${base}.128/25`, '10.5.0.0/16', '10.5.8', '127.0.0.1'])
      expect(routes).not.toContain(bad);
    const fdb = (await run('bridge', ['-n', h1.host.netns, 'fdb', 'show', 'dev', 'weft.1'])).stdout;
    for (const bad of [
      '127.0.0.1',
      '224.0.0.5',
      '255.255.255.255',
      'dst 198.18.0.1 ',
      '198.18.0.77',
      '198.18.0.84',
      '198.18.0.85',
    ])
      expect(fdb).not.toContain(bad);
    expect(fdb).toContain(`${mac(90)} dst 198.18.0.90`);
    expect(await pingMatrix(hosts, false)).toEqual([]);
  });
});
