/**
 * The first end-to-end capability (issue 4): three simulated hosts, etcd on the underlay, a real weftd
 * per host; containers wired by the test on each host's bridge from its subnet.env. Every container
 * pings every other one, for VXLAN and host-gw, IPv4 and dual stack.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { addContainer, pingOnce, readyz, subnetsOf, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

// The dual-stack runs also turn on --ip-masq (flannel's usual deployment).
const cases = [
  { backend: 'vxlan', dual: false, masq: false },
  { backend: 'vxlan', dual: true, masq: true },
  { backend: 'host-gw', dual: false, masq: false },
  { backend: 'host-gw', dual: true, masq: true },
  { backend: 'udp', dual: false, masq: false },
] as const;

describe.skipIf(!runnable).each(cases)(
  'weftd $backend (dual stack: $dual, ip-masq: $masq)',
  ({ backend, dual, masq }) => {
    const setup = useCluster(
      3,
      {
        Network: '10.5.0.0/16',
        ...(dual ? { EnableIPv6: true, IPv6Network: 'fd05::/48' } : {}),
        Backend: { Type: backend },
      },
      masq ? ['--ip-masq'] : [],
      'weftd',
    );
    const containers: SimContainer[] = [];

    beforeAll(async () => {
      const { c, d: daemons } = setup;
      // two containers on the first host (same-host pair), one on each other host
      containers.push(await addContainer(c, daemons[0]!, 2), await addContainer(c, daemons[0]!, 3));
      for (const d of daemons.slice(1)) containers.push(await addContainer(c, d, 2));
    });

    it('leases distinct subnets and writes subnet.env in flannel format', () => {
      const subnets = setup.d.map((d) => subnetsOf(d));
      // on failure: each host's subnet.env and what its weftd said about leases and its uplink
      const said = setup.d
        .map(
          (d, i) =>
            `h${i + 1} ${JSON.stringify(subnets[i])}:\n` +
            d.logs
              .split('\n')
              .filter((l) => /lease|subnet|interface|exit|error/i.test(l))
              .slice(-12)
              .join('\n'),
        )
        .join('\n');
      expect(new Set(subnets.map((s) => s.subnet)).size, said).toBe(3);
      for (const s of subnets) {
        expect(s.subnet).toMatch(/^10\.5\.\d+\.0\/24$/);
        if (dual) expect(s.subnet6).toMatch(/^fd05:0:0:[0-9a-f]+::\/64$/);
        else expect(s.subnet6).toBeNull();
      }
    });

    it(`every container reaches every other container (${dual ? 'IPv4 and IPv6' : 'IPv4'})`, async () => {
      const targets = (b: SimContainer): string[] => (dual ? [b.ip, b.ip6!] : [b.ip]);
      const failures = await Promise.all(
        containers.flatMap((a) =>
          containers.filter((b) => b !== a).flatMap((b) => targets(b).map((t) => pingOnce(a, t))),
        ),
      );
      expect(failures.filter(Boolean)).toEqual([]);
    });

    it('is ready on /readyz and reports its lease and peers on /metrics', async () => {
      expect(await readyz(setup.d[0]!)).toBe(200);
      const scrape = async (): Promise<string> =>
        (
          await nsRun(setup.d[0]!.host.netns, 'node', [
            '-e',
            "fetch('http://127.0.0.1:8081/metrics').then(r=>r.text()).then(t=>console.log(t))",
          ])
        ).stdout;
      const reconciled = new RegExp(
        `weft_reconcile_duration_seconds_count\\{backend="${backend}"\\} [1-9]`,
      );
      // a full reconcile has run by the first resync period (3 s) at the latest
      const m = await waitFor(
        'a reconcile in /metrics',
        async () => {
          const t = await scrape();
          return reconciled.test(t) ? t : null;
        },
        8000,
        250,
      );
      expect(m).toContain('weft_lease_state{state="acquired"} 1');
      expect(m).toContain('weft_ready 1');
      expect(m).toContain(`weft_peers{backend="${backend}"} 2`);
      expect(m).toMatch(/weft_netlink_requests_total [1-9]/);
      if (backend === 'udp') {
        // the forwarder's own counters: traffic of the ping matrix, every drop reason, route failures
        expect(m).toMatch(/weft_udp_packets_total\{direction="rx"\} [1-9]/);
        expect(m).toContain('weft_udp_drops_total{reason="bad_inner_dest"} 0');
        expect(m).toContain('weft_udp_drops_total{reason="congested"} 0');
        expect(m).toContain('weft_udp_route_failures_total 0');
        expect(m).toContain('weft_udp_forwarder_running 1');
      }
    });

    it(`installs the firewall rules (forward${masq ? ' + masquerade' : ''}) in its own nft tables`, async () => {
      const ns = setup.d[0]!.host.netns;
      const tables = (await nsRun(ns, 'nft', ['list', 'tables'])).stdout;
      expect(tables).toContain('table ip weft');
      const v4 = (await nsRun(ns, 'nft', ['list', 'table', 'ip', 'weft'])).stdout;
      expect(v4).toContain('ip saddr 10.5.0.0/16 accept');
      expect(v4.includes('masquerade'), v4).toBe(masq);
      if (dual) expect(tables).toContain('table ip6 weft');
      // the underlay netns has no route to the overlay: only a masqueraded container gets replies
      const out = await nsRun(
        containers[0]!.netns,
        'ping',
        ['-c', '1', '-W', '1', '-q', setup.c.topo.underlayGatewayIp],
        {
          allowFail: true,
        },
      );
      expect(out.code === 0).toBe(masq);
    });
  },
);
