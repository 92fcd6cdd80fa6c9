/**
 * The UDP backend end to end on the real kernel: three simulated hosts, each running the backend for
 * its netns from this process (TUN + native forwarder + netlink there), one container per host; leases
 * come from an in-memory SubnetManager the test controls.
 *
 *   [h1 weft0 10.5.1.0/32, c1 10.5.1.2]  [h2 …, c2 10.5.2.2]  [h3 …, c3 10.5.3.2]
 *            └───────────── eth0 198.18.0.i on br0, UDP 8285 ─────────────┘
 */
import { describe, expect, it } from 'vitest';
import type { Backend, Uplink } from '../../src/backend/backend.js';
import { udpBackendFactory, type UdpNetwork } from '../../src/backend-udp/index.js';
import { createJsonLogger } from '../../src/log/logger.js';
import { run, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { ping, type SimHost } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';
import {
  ipOut,
  pingMatrix,
  startBackend,
  useBackendCluster,
  type Running as RunningBackend,
} from './backend-helpers.js';
import { MemorySubnets, testNetworkConfig } from './backend-memory-subnets.js';

const runnable = requireCaps('root', 'netns', 'ping', 'tun');
useLeakCheck();

type Running = RunningBackend<UdpNetwork>;

const logs: string[] = [];
const log = createJsonLogger({ level: 'info', write: (l) => logs.push(l) });

function uplinkOf(host: SimHost): Uplink {
  return {
    name: 'eth0',
    index: 0,
    mtu: 1500,
    ifaceAddr: host.underlayIp,
    ifaceAddr6: null,
    publicIp: host.underlayIp,
    publicIpv6: null,
  };
}

const udpBackend = (host: SimHost, _ops: unknown, subnets: MemorySubnets): Backend =>
  udpBackendFactory({ netns: host.netns, resyncMs: 1000 })({
    subnets: subnets.manager(),
    uplink: uplinkOf(host),
    log: log.child({ host: host.index }),
    stateDir: '/nonexistent',
  });

describe.skipIf(!runnable)('udp backend across 3 simulated hosts', () => {
  const c = useBackendCluster<UdpNetwork>(3, () => testNetworkConfig('udp'), udpBackend, {
    networkMtu: true,
  });
  const { hosts } = c;

  it('sets up weft0 like flannel0, writes a flannel-style lease, and every container pings every other', async () => {
    const h1 = hosts[0]!;
    expect(h1.network.mtu).toBe(1472);
    const link = await ipOut(h1.host.netns, 'link', 'show', 'weft0');
    expect(link).toMatch(/mtu 1472 /);
    expect(await ipOut(h1.host.netns, '-4', 'addr', 'show', 'dev', 'weft0')).toContain(
      `inet 10.5.${h1.n}.0/32`,
    );
    expect(await ipOut(h1.host.netns, 'route', 'show', 'dev', 'weft0')).toMatch(/10\.5\.0\.0\/16/);
    // flannel's UDP backend publishes PublicIP only: no BackendType, no BackendData
    expect(h1.network.lease.attrs).toMatchObject({ publicIp: '198.18.0.1', backendType: '' });
    expect(h1.network.lease.attrs.backendData).toBeUndefined();
    await waitFor('routes to both peers', () => h1.network.forwarderRoutes().length === 2, 5000);
    expect(h1.network.forwarderRoutes()).toEqual([
      { dst: `10.5.${hosts[1]!.n}.0/24`, peerIp: '198.18.0.2', port: 8285 },
      { dst: `10.5.${hosts[2]!.n}.0/24`, peerIp: '198.18.0.3', port: 8285 },
    ]);
    expect(await pingMatrix(hosts, false)).toEqual([]);
    expect(h1.network.forwarderStats().rxPackets).toBeGreaterThan(0);
  });

  it('ignores leases of other backend types', async () => {
    const h1 = hosts[0]!;
    c.subnets.put(
      c.subnets.leaseFor(77, {
        publicIp: '198.18.0.77',
        publicIpv6: null,
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:77' },
      }),
    );
    c.subnets.put(
      c.subnets.leaseFor(78, { publicIp: '198.18.0.78', publicIpv6: null, backendType: 'udp' }),
    );
    await waitFor('udp-typed lease routed', () =>
      h1.network.forwarderRoutes().some((r) => r.dst === '10.5.78.0/24'),
    );
    expect(h1.network.forwarderRoutes().some((r) => r.dst === '10.5.77.0/24')).toBe(false);
    expect(logs.some((l) => l.includes('peer ignored') && l.includes('vxlan'))).toBe(true);
    c.subnets.remove(
      c.subnets.leaseFor(77, { publicIp: '', publicIpv6: null, backendType: '' }).key,
    );
    c.subnets.remove(
      c.subnets.leaseFor(78, { publicIp: '', publicIpv6: null, backendType: '' }).key,
    );
  });

  it('stops forwarding to a peer whose lease is removed, and resumes when it returns', async () => {
    const [h1, , h3] = hosts as [Running, Running, Running];
    const lease = h3.network.lease;
    c.subnets.remove(lease.key);
    await waitFor(
      'route to h3 removed',
      () => !h1.network.forwarderRoutes().some((r) => r.peerIp === '198.18.0.3'),
      5000,
    );
    const before = h1.network.forwarderStats().drops.noRoute;
    expect(await ping(h1.container!.netns, h3.container!.ip, 1, 1)).toBe(false);
    expect(h1.network.forwarderStats().drops.noRoute).toBeGreaterThan(before);
    c.subnets.put(lease);
    await waitFor(
      'route to h3 back',
      () => h1.network.forwarderRoutes().some((r) => r.peerIp === '198.18.0.3'),
      5000,
    );
    expect(await ping(h1.container!.netns, h3.container!.ip, 2)).toBe(true);
  });

  it('heals a deleted cluster route on resync', async () => {
    const h2 = hosts[1]!;
    await run('ip', ['-n', h2.host.netns, 'route', 'del', '10.5.0.0/16', 'dev', 'weft0']);
    await waitFor(
      'cluster route restored',
      async () =>
        (await ipOut(h2.host.netns, 'route', 'show', 'dev', 'weft0')).includes('10.5.0.0/16'),
      5000,
    );
    expect(await ping(h2.container!.netns, hosts[0]!.container!.ip, 2)).toBe(true);
  });

  it('a restart joins the forwarder thread, keeps the TUN, re-attaches and forwards again', async () => {
    const h3 = hosts[2]!;
    h3.ac.abort();
    await h3.done;
    expect(h3.network.forwarderStats().running).toBe(false);
    // the persistent device keeps its address and route while no daemon runs
    expect(await ipOut(h3.host.netns, '-4', 'addr', 'show', 'dev', 'weft0')).toContain(
      `inet 10.5.${h3.n}.0/32`,
    );
    expect(await ping(hosts[0]!.container!.netns, h3.container!.ip, 1, 1)).toBe(false);
    const t0 = Date.now();
    const again = await startBackend<UdpNetwork>(
      udpBackend(h3.host, null, c.subnets),
      c.config,
      h3.host,
    );
    again.container = h3.container!;
    hosts[2] = again;
    expect(again.n).toBe(h3.n); // same lease (reused by public IP)
    await waitFor(
      'ping after restart',
      () => ping(hosts[0]!.container!.netns, h3.container!.ip, 1, 1),
      10_000,
      50,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
