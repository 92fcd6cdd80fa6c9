/**
 * The uplink set down and up again while weftd runs (`ip link set eth0 down; … up`, what a networkd or
 * ifupdown restart does; docs/pitfalls.md B8). The kernel deletes every IPv4 route through an interface
 * that goes down and re-adds only its own prefix route, so the backends whose peer routes are on the
 * uplink (host-gw, vxlan with DirectRouting) must re-program them when it comes back, not at the next
 * `--resync-period` (60 s here, the default). Two hosts per backend, one container each.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { expectThreePings, ipOut, subnetsOf, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const BACKENDS = [
  ['host-gw', { Type: 'host-gw' }],
  ['vxlan DirectRouting', { Type: 'vxlan', DirectRouting: true }],
] as const;

describe.skipIf(!runnable).each(BACKENDS)('uplink down and up (%s)', (_name, backend) => {
  // The default resync period: only the link event can bring the routes back within the test's 10 s.
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: backend }, ['--resync-period=60']);

  it('the peer route is back within seconds and containers talk again', async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    const peer = subnetsOf(d[1]!).subnet;
    const peerRoute = async (): Promise<string> => ipOut(ns, ['route', 'show', peer]);
    expect(await peerRoute()).toContain('via 198.18.0.2 dev eth0');
    await nsRun(ns, 'ip', ['link', 'set', 'eth0', 'down']);
    // The kernel flushed the route with the link: what the test is about.
    expect(await peerRoute()).toBe('');
    await nsRun(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    await waitFor(
      `the route to ${peer} back on ${ns}`,
      async () => (await peerRoute()).includes('via 198.18.0.2 dev eth0'),
      10_000,
      100,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
  });
});
