/**
 * One host cut off from etcd (a blackhole route to etcd in its namespace; the underlay to the other
 * host stays) for longer than its lease TTL: etcd expires its store lease and deletes its subnet key,
 * so the other host removes its route. weftd must keep running with its dataplane in place, and when
 * etcd is reachable again re-create the SAME subnet key at once (its watch reconnects and wakes the
 * keeper), so the other host programs it again; containers then talk again without a restart.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  addContainer,
  expectThreePings,
  ipOut,
  startWeftd,
  subnetsOf,
  useCluster,
  waitReady,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const TTL_S = 6;

describe.skipIf(!runnable)('weftd cut off from etcd longer than its lease TTL', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'config');

  it('keeps running, re-creates the same subnet key when etcd is back, and the peer routes it again', async () => {
    const { c } = setup;
    const [hostA, hostB] = c.topo.hosts;
    const a = startWeftd(c, hostA!, [`--subnet-lease-ttl=${TTL_S}`]);
    const b = startWeftd(c, hostB!, [`--subnet-lease-ttl=${TTL_S}`]);
    await waitReady(a);
    await waitReady(b);
    const ca = await addContainer(c, a, 2);
    const cb = await addContainer(c, b, 2);
    await expectThreePings(ca, cb);
    const aSubnet = subnetsOf(a).subnet;
    const key = `${c.prefix}/subnets/${aSubnet.replace('/', '-')}`;
    const etcdIp = new URL(c.etcd.endpoints[0]!).hostname;
    const cut = ['route', 'add', 'blackhole', `${etcdIp}/32`];
    await nsRun(a.host.netns, 'ip', cut);
    try {
      await waitFor(
        "etcd to expire A's key",
        async () => (await c.etcd.etcdctl(['get', '--print-value-only', key])).trim() === '',
        TTL_S * 1000 * 3,
        250,
      );
      await waitFor(
        "B to drop A's route",
        async () => !(await ipOut(b.host.netns, ['route', 'show', aSubnet])).includes('via'),
        10_000,
        200,
      );
      await sleep(2000);
      expect(a.child.exitCode).toBeNull();
      // A's own dataplane is untouched meanwhile: its route to B stays.
      expect(await ipOut(a.host.netns, ['route', 'show', subnetsOf(b).subnet])).toContain('via');
    } finally {
      await nsRun(a.host.netns, 'ip', ['route', 'del', 'blackhole', `${etcdIp}/32`]);
    }
    const value = await waitFor(
      'A to re-create its subnet key',
      async () => (await c.etcd.etcdctl(['get', '--print-value-only', key])).trim() || null,
      15_000,
      200,
    );
    expect(value).toContain('"PublicIP":"198.18.0.1"');
    expect(subnetsOf(a).subnet).toBe(aSubnet);
    await waitFor(
      "B to route A's subnet again",
      async () => (await ipOut(b.host.netns, ['route', 'show', aSubnet])).includes('via'),
      10_000,
      200,
    );
    await expectThreePings(ca, cb);
    expect(a.child.exitCode).toBeNull();
  });
});
