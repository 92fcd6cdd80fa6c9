/**
 * The VXLAN backend end to end on the real kernel: three simulated hosts (one netns each, on the
 * underlay bridge), each with the backend driving its netns from this process and one container
 * namespace on a bridge; leases come from an in-memory SubnetManager the test controls.
 *
 *   [h1 weft.1 + weft-v6.1, c1 10.5.1.2]   [h2 …, c2 10.5.2.2]   [h3 …, c3 10.5.3.2]
 *            └──────────── eth0 198.18.0.i / fd18::i on br0 (underlay netns) ────────────┘
 */
import { useStateDir } from '../helpers/state-dir.js';
import { describe, expect, it } from 'vitest';
import { vxlanBackendFactory, type VxlanNetwork } from '../../src/backend-vxlan/index.js';
import { createJsonLogger } from '../../src/log/logger.js';
import type { NetlinkOps } from '../../src/netlink/index.js';
import type { Backend } from '../../src/backend/backend.js';
import type { NetworkConfig } from '../../src/subnet/manager.js';
import { run, sleep } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { ping, type SimHost } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';
import {
  ipOut,
  pingMatrix,
  startBackend,
  uplinkOf,
  useBackendCluster,
  type Running as RunningBackend,
} from './backend-helpers.js';
import { MemorySubnets, testNetworkConfig } from './backend-memory-subnets.js';

const runnable = requireCaps('root', 'netns', 'ping');
useLeakCheck();

async function eventually(
  check: () => Promise<boolean>,
  ms = 3000,
  what = 'condition',
): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await sleep(50);
  }
  throw new Error(`${what} not reached within ${ms} ms`);
}

type Running = RunningBackend<VxlanNetwork>;

const logs: string[] = [];
const log = createJsonLogger({ level: 'info', write: (l) => logs.push(l) });
const { dir: stateDir, machineId } = useStateDir('weft-vxlan-test-');

async function vxlanBackend(
  host: SimHost,
  inspect: NetlinkOps,
  subnets: MemorySubnets,
  config: NetworkConfig,
): Promise<Backend> {
  return vxlanBackendFactory({
    netns: host.netns,
    resyncMs: 1500,
    machineIdPath: machineId,
  })({
    subnets: subnets.manager(),
    uplink: await uplinkOf(inspect, host, config.enableIPv6),
    log: log.child({ host: host.index }),
    stateDir,
  });
}

async function stop(r: Running): Promise<void> {
  r.ac.abort();
  await r.done;
}

const fdbOut = async (ns: string, dev: string): Promise<string> =>
  (await run('bridge', ['-n', ns, 'fdb', 'show', 'dev', dev])).stdout;

function scenario(ipv6: boolean): void {
  describe.skipIf(!runnable)(
    `vxlan backend across 3 simulated hosts (${ipv6 ? 'dual stack' : 'IPv4'})`,
    () => {
      const c = useBackendCluster<VxlanNetwork>(
        3,
        () => testNetworkConfig('vxlan', { ipv6 }),
        vxlanBackend,
        { ipv6, networkMtu: true },
      );
      const { hosts, inspect } = c;

      const pingAll = (): Promise<string[]> => pingMatrix(hosts, ipv6);

      it('creates the device as specified and every container pings every other one', async () => {
        const h1 = hosts[0]!;
        expect(h1.network.mtu).toBe(ipv6 ? 1430 : 1450);
        const d = await ipOut(h1.host.netns, '-d', 'link', 'show', 'weft.1');
        expect(d).toMatch(/mtu 1450 /);
        expect(d).toMatch(/vxlan id 1 local 198\.18\.0\.1 dev eth0 .*dstport 8472 nolearning/);
        expect(d).toContain(`link/ether ${h1.network.vtepMacs[4]}`);
        expect(await ipOut(h1.host.netns, '-4', 'addr', 'show', 'dev', 'weft.1')).toContain(
          `inet 10.5.${h1.n}.0/32`,
        );
        if (ipv6) {
          const d6 = await ipOut(h1.host.netns, '-d', 'link', 'show', 'weft-v6.1');
          expect(d6).toMatch(/mtu 1430 /);
          expect(d6).toMatch(/vxlan id 1 local fd18::1 dev eth0 .*dstport 8472 nolearning/);
        }
        expect(h1.network.lease.attrs.backendData).toEqual({
          VNI: 1,
          VtepMAC: h1.network.vtepMacs[4],
        });
        expect(new Set(hosts.map((r) => r.network.vtepMacs[4])).size).toBe(3);
        const peer = hosts[1]!;
        expect(await ipOut(h1.host.netns, 'route', 'show', 'dev', 'weft.1')).toMatch(
          new RegExp(`10\\.5\\.${peer.n}\\.0/24 via 10\\.5\\.${peer.n}\\.0 .*onlink`),
        );
        expect(await fdbOut(h1.host.netns, 'weft.1')).toContain(
          `${peer.network.vtepMacs[4]} dst 198.18.0.2 self permanent`,
        );
        expect(await pingAll()).toEqual([]);
      });

      it('drops a removed peer lease from route, neighbour and FDB quickly', async () => {
        const [h1, , h3] = hosts as [Running, Running, Running];
        const lease = h3.network.lease;
        c.subnets.remove(lease.key);
        const ms = await eventually(
          async () => {
            const routes = await ipOut(h1.host.netns, 'route', 'show', 'dev', 'weft.1');
            const neigh = await ipOut(h1.host.netns, 'neigh', 'show', 'dev', 'weft.1');
            const fdb = await fdbOut(h1.host.netns, 'weft.1');
            return (
              !routes.includes(`10.5.${h3.n}.0/24`) &&
              !neigh.includes(`10.5.${h3.n}.0 `) &&
              !fdb.includes(h3.network.vtepMacs[4]!)
            );
          },
          2000,
          'peer 3 removed on host 1',
        );
        expect(ms).toBeLessThan(2000);
        expect(await ping(h1.container!.netns, h3.container!.ip, 1, 1)).toBe(false);
        c.subnets.put(lease); // back, for the next tests
        await eventually(
          () => ping(h1.container!.netns, h3.container!.ip, 1, 1),
          3000,
          'peer 3 back',
        );
      });

      it('removes stale entries planted in the kernel at the next reconcile; ignores other backends and bad data', async () => {
        const h1 = hosts[0]!;
        const ns = h1.host.netns;
        await run('ip', [
          '-n',
          ns,
          'neigh',
          'add',
          '10.5.77.0',
          'lladdr',
          '0e:77:77:77:77:77',
          'dev',
          'weft.1',
          'nud',
          'permanent',
        ]);
        await run('bridge', [
          '-n',
          ns,
          'fdb',
          'append',
          '0e:77:77:77:77:77',
          'dev',
          'weft.1',
          'dst',
          '198.18.0.77',
          'self',
          'permanent',
        ]);
        await run('ip', [
          '-n',
          ns,
          'route',
          'add',
          '10.5.77.0/24',
          'via',
          '10.5.77.0',
          'dev',
          'weft.1',
          'onlink',
        ]);
        await run('ip', [
          '-n',
          ns,
          'route',
          'add',
          '10.5.78.0/24',
          'via',
          '198.18.0.78',
          'dev',
          'eth0',
        ]);
        // Leases that must not be programmed: another backend type, a bad MAC, a missing VtepMAC.
        c.subnets.put(
          c.subnets.leaseFor(90, {
            publicIp: '198.18.0.90',
            publicIpv6: null,
            backendType: 'host-gw',
          }),
        );
        c.subnets.put(
          c.subnets.leaseFor(91, {
            publicIp: '198.18.0.91',
            publicIpv6: null,
            backendType: 'vxlan',
            backendData: { VNI: 1, VtepMAC: 'zz:00' },
          }),
        );
        c.subnets.put(
          c.subnets.leaseFor(92, {
            publicIp: '198.18.0.92',
            publicIpv6: null,
            backendType: 'vxlan',
            backendData: { VNI: 1 },
          }),
        );
        // …and a good one after them, which must be programmed (the loop survived the bad ones).
        c.subnets.put(
          c.subnets.leaseFor(93, {
            publicIp: '198.18.0.93',
            publicIpv6: null,
            backendType: 'vxlan',
            backendData: { VNI: 1, VtepMAC: '0e:93:93:93:93:93' },
          }),
        );
        await h1.network.reconcileNow();
        await eventually(
          async () => (await ipOut(ns, 'route', 'show', 'dev', 'weft.1')).includes('10.5.93.0/24'),
          2000,
          'good lease',
        );
        const routes = await ipOut(ns, 'route', 'show');
        expect(routes).not.toContain('10.5.77.0');
        expect(routes).not.toContain('10.5.78.0');
        expect(routes).not.toMatch(/10\.5\.9[012]\.0/);
        expect(await ipOut(ns, 'neigh', 'show', 'dev', 'weft.1')).not.toContain('10.5.77.0');
        expect(await fdbOut(ns, 'weft.1')).not.toContain('0e:77:77:77:77:77');
        expect(
          logs.some((l) => l.includes('invalid vxlan backend data') && l.includes('10.5.91.0-24')),
        ).toBe(true);
        expect(logs.some((l) => l.includes('VtepMAC is missing'))).toBe(true);
        expect(
          logs.some((l) => l.includes('"msg":"reconciled"') && /"deleted":[1-9]/.test(l)),
        ).toBe(true);
        for (const n of [90, 91, 92, 93])
          c.subnets.remove(
            c.subnets.leaseFor(n, { publicIp: '', publicIpv6: null, backendType: '' }).key,
          );
        await eventually(
          async () => !(await ipOut(ns, 'route', 'show')).includes('10.5.93.0'),
          2000,
          'lease 93 removed',
        );
      });

      it('re-creates a device deleted by hand, with the same MAC, and traffic flows again', async () => {
        const h2 = hosts[1]!;
        await run('ip', ['-n', h2.host.netns, 'link', 'del', 'weft.1']);
        const ms = await eventually(
          async () =>
            (await ipOut(h2.host.netns, 'route', 'show', 'dev', 'weft.1').catch(() => '')).includes(
              `10.5.${hosts[0]!.n}.0/24`,
            ),
          4000,
          'device re-created and re-programmed',
        );
        expect(ms).toBeLessThan(4000);
        expect(await ipOut(h2.host.netns, 'link', 'show', 'weft.1')).toContain(
          h2.network.vtepMacs[4]!,
        );
        expect(await pingAll()).toEqual([]);
      });

      it('keeps the VTEP MAC, the lease and the dataplane across a backend restart', async () => {
        const old = hosts[1]!;
        await stop(old);
        // The dataplane outlives the backend: traffic still flows with nothing running on host 2.
        expect(await ping(hosts[0]!.container!.netns, old.container!.ip, 2, 2)).toBe(true);
        logs.length = 0;
        const backend = await vxlanBackend(old.host, inspect[1]!, c.subnets, c.config);
        const again = await startBackend<VxlanNetwork>(backend, c.config, old.host);
        again.container = old.container!;
        hosts[1] = again;
        expect(again.network.vtepMacs).toEqual(old.network.vtepMacs);
        expect(again.network.lease.subnet).toBe(old.network.lease.subnet);
        expect(logs.some((l) => l.includes('vxlan device reused'))).toBe(true);
        expect(await pingAll()).toEqual([]);
      });
    },
  );
}

scenario(false);
scenario(true);

describe.skipIf(!runnable)(
  'vxlan backend with DirectRouting and the checksum workaround forced on',
  () => {
    const { hosts } = useBackendCluster<VxlanNetwork>(
      2,
      () =>
        testNetworkConfig('vxlan', {
          raw: { DirectRouting: true, ChecksumWorkaround: 'on', VNI: 4 },
        }),
      vxlanBackend,
    );

    it('routes on-link peers via their public IP on the uplink (no neighbour/FDB) and containers ping', async () => {
      const [h1, h2] = hosts as [Running, Running];
      const routes = await ipOut(h1.host.netns, 'route', 'show');
      expect(routes).toMatch(new RegExp(`10\\.5\\.${h2.n}\\.0/24 via 198\\.18\\.0\\.2 dev eth0`));
      expect(await ipOut(h1.host.netns, 'route', 'show', 'dev', 'weft.4')).not.toContain(
        `10.5.${h2.n}.0/24`,
      );
      expect(await fdbOut(h1.host.netns, 'weft.4')).not.toContain(h2.network.vtepMacs[4]!);
      expect(await ping(h1.container!.netns, h2.container!.ip, 2, 2)).toBe(true);
      expect(await ping(h2.container!.netns, h1.container!.ip, 2, 2)).toBe(true);
    });

    it('turns tx checksum offload off only because it was asked to', async () => {
      const k = (
        await run('ip', ['netns', 'exec', hosts[0]!.host.netns, 'ethtool', '-k', 'weft.4'])
      ).stdout;
      expect(k).toMatch(/tx-checksum-ip-generic: off/);
      expect(
        logs.some((l) => l.includes('tx checksum offload mode') && l.includes('"mode":"on"')),
      ).toBe(true);
    });
  },
);
