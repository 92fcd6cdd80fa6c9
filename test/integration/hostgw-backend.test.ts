/**
 * The host-gw backend on the real kernel: three simulated hosts on one L2 underlay, leases from an
 * in-memory SubnetManager, containers on a bridge per host; every container pings every other one
 * (IPv4 and dual stack). A public IP that is not on-link refuses to start; a peer that is not on-link is
 * skipped; stale cluster routes are reconciled away; a removed lease takes its route with it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostGwBackendFactory, type HostGwNetwork } from '../../src/backend-hostgw/index.js';
import { createJsonLogger } from '../../src/log/logger.js';
import { run, sleep, words } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  ipOut,
  pingMatrix,
  uplinkOf,
  useBackendCluster,
  type Running as RunningBackend,
} from './backend-helpers.js';
import { testNetworkConfig } from './backend-memory-subnets.js';

const runnable = requireCaps('root', 'netns', 'ping');
useLeakCheck();

const logs: string[] = [];
const log = createJsonLogger({ level: 'info', write: (l) => logs.push(l) });
const stateDir = mkdtempSync(join(tmpdir(), 'weft-hostgw-test-'));

type Running = RunningBackend<HostGwNetwork>;

function scenario(ipv6: boolean): void {
  describe.skipIf(!runnable)(
    `host-gw backend across 3 simulated hosts (${ipv6 ? 'dual stack' : 'IPv4'})`,
    () => {
      const c = useBackendCluster<HostGwNetwork>(
        3,
        () => testNetworkConfig('host-gw', { ipv6 }),
        async (h, ops, subnets) =>
          hostGwBackendFactory({ netns: h.netns, resyncMs: 1500 })({
            subnets: subnets.manager(),
            uplink: await uplinkOf(ops, h, ipv6),
            log: log.child({ host: h.index }),
            stateDir,
          }),
        { ipv6 },
      );
      const { hosts, inspect } = c;

      it('programs routes via the peers public IPs and every container pings every other one', async () => {
        const [h1, h2] = hosts as [Running, Running];
        expect(h1.network.mtu).toBe(1500);
        expect(await ipOut(h1.host.netns, 'route', 'show')).toMatch(
          new RegExp(`10\\.5\\.${h2.n}\\.0/24 via 198\\.18\\.0\\.2 dev eth0`),
        );
        if (ipv6) {
          expect(await ipOut(h1.host.netns, '-6', 'route', 'show')).toMatch(
            new RegExp(`fd05:0:0:${h2.n}::/64 via fd18::2 dev eth0`),
          );
        }
        expect(await pingMatrix(hosts, ipv6)).toEqual([]);
      });

      it('skips a peer that is not on-link, removes stale routes and follows lease removal', async () => {
        const [h1, , h3] = hosts as [Running, Running, Running];
        const ns = h1.host.netns;
        c.subnets.put(
          c.subnets.leaseFor(60, {
            publicIp: '198.19.0.60',
            publicIpv6: null,
            backendType: 'host-gw',
          }),
        );
        c.subnets.put(
          c.subnets.leaseFor(61, {
            publicIp: '198.18.0.61',
            publicIpv6: null,
            backendType: 'vxlan',
          }),
        );
        await run('ip', words(`-n ${ns} route add 10.5.62.0/24 via 198.18.0.62 dev eth0`));
        // Not ours: an operator's route for the whole cluster network and a non-cluster route stay.
        await run('ip', words(`-n ${ns} route add 10.5.0.0/16 via 198.18.0.254 dev eth0`));
        await run('ip', words(`-n ${ns} route add 198.19.5.0/24 via 198.18.0.254 dev eth0`));
        await h1.network.reconcileNow();
        const routes = await ipOut(ns, 'route', 'show');
        expect(routes).not.toContain('10.5.60.0');
        expect(routes).not.toContain('10.5.61.0');
        expect(routes).not.toContain('10.5.62.0');
        expect(routes).toContain('10.5.0.0/16 via 198.18.0.254');
        expect(routes).toContain('198.19.5.0/24 via 198.18.0.254');
        expect(logs.some((l) => l.includes('not on-link') && l.includes('198.19.0.60'))).toBe(true);
        c.subnets.remove(h3.network.lease.key);
        const t0 = Date.now();
        while (
          Date.now() - t0 < 2000 &&
          (await ipOut(ns, 'route', 'show')).includes(`10.5.${h3.n}.0/24`)
        )
          await sleep(50);
        expect(await ipOut(ns, 'route', 'show')).not.toContain(`10.5.${h3.n}.0/24`);
        await run('ip', ['-n', ns, 'route', 'del', '10.5.0.0/16']);
        await run('ip', ['-n', ns, 'route', 'del', '198.19.5.0/24']);
      });

      it('refuses to start when the public IP is not on the uplink network', async () => {
        const h = c.topo.hosts[0]!;
        const backend = hostGwBackendFactory({ netns: h.netns })({
          subnets: c.subnets.manager(),
          uplink: await uplinkOf(inspect[0]!, h, false, '198.19.9.9'),
          log,
          stateDir,
        });
        const before = c.subnets.leases.size;
        await expect(
          backend.registerNetwork(c.config, {}, new AbortController().signal),
        ).rejects.toMatchObject({
          code: 'E_INTERFACE',
          message: expect.stringMatching(
            /public IPv4 address 198\.19\.9\.9 is not on-link on eth0/,
          ),
        });
        expect(c.subnets.leases.size).toBe(before); // no lease taken
      });
    },
  );
}

scenario(false);
scenario(true);

afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
