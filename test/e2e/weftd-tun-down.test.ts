/**
 * The TUN of the udp or wireguard backend set down and up again by an operator or a network manager
 * while weftd runs. Down, the kernel deletes the cluster route through it, so nothing reaches the
 * peers; weftd sees the link event and repairs the device (up, address, route) at once, not at the
 * next `--resync-period` (60 s here, the default), as the vxlan backend does for its device. Two hosts
 * per backend, one container each.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { expectThreePings, ipOut, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'tun');
useLeakCheck();

const BACKENDS = [
  ['wireguard', 'weft-wg'],
  ['udp', 'weft0'],
] as const;

describe.skipIf(!runnable).each(BACKENDS)('the %s TUN set down and up', (type, dev) => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: type } }, [
    '--resync-period=60',
  ]);

  it('the cluster route is back within seconds and containers talk again', async () => {
    const { d, ctr } = setup;
    const ns = d[0]!.host.netns;
    const clusterRoute = async (): Promise<string> => ipOut(ns, ['route', 'show', '10.5.0.0/16']);
    expect(await clusterRoute()).toContain(`dev ${dev}`);
    await nsRun(ns, 'ip', ['link', 'set', dev, 'down']);
    await nsRun(ns, 'ip', ['link', 'set', dev, 'up']);
    await waitFor(
      `the route to 10.5.0.0/16 via ${dev} back on ${ns}`,
      async () => (await clusterRoute()).includes(`dev ${dev}`),
      10_000,
      100,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
  });
});
