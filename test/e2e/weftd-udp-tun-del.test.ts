/**
 * The udp backend's TUN deleted under weftd (`ip link del weft0`, an operator or a network manager
 * cleaning up). The forwarder's read of the dead fd fails; weftd must not exit (which would leave the
 * host without a cluster route until a supervisor restarts it) but recreate the TUN in place, as the
 * wireguard backend does: a new device with its address and cluster route, a new forwarder with every
 * peer's route, within seconds. Three hosts, one container each; hosts 2 and 3 never notice.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { expectThreePings, ipOut, pingOnce, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'tun');
useLeakCheck();

describe.skipIf(!runnable)('the udp TUN deleted (ip link del weft0)', () => {
  const setup = useCluster(3, { Network: '10.5.0.0/16', Backend: { Type: 'udp' } }, [
    '--resync-period=60',
  ]);

  it('is recreated in place: weftd keeps running, peers work again within seconds', async () => {
    const { d, ctr } = setup;
    const w = d[0]!;
    const child = w.child;
    const ns = w.host.netns;
    const before = await ipOut(ns, ['-o', 'link', 'show', 'weft0']);
    await nsRun(ns, 'ip', ['link', 'del', 'weft0']);
    await waitFor(
      'weftd to recreate weft0',
      async () => w.logs.includes('"msg":"udp device recreated"') || child.exitCode !== null,
      20_000,
      100,
    );
    expect(child.exitCode, w.logs).toBeNull();
    expect(w.logs).toContain('udp device weft0 was deleted (ip link del?): recreating it');
    const after = await ipOut(ns, ['-o', 'link', 'show', 'weft0']);
    expect(after).not.toBe(before); // a new ifindex: really a new device
    expect(after).toMatch(/mtu 1472/);
    expect(await ipOut(ns, ['route', 'show', '10.5.0.0/16'])).toContain('dev weft0');
    const pairs = [
      [ctr[0]!, ctr[1]!],
      [ctr[1]!, ctr[0]!],
      [ctr[0]!, ctr[2]!],
      [ctr[2]!, ctr[0]!],
    ] as const;
    await waitFor(
      'every pair with host 1 to ping again',
      async () => {
        for (const [a, b] of pairs) if ((await pingOnce(a, b.ip)) !== null) return false;
        return true;
      },
      10_000,
      200,
    );
    // hosts 2 and 3 never lost each other
    await expectThreePings(ctr[1]!, ctr[2]!);
    expect(child.exitCode).toBeNull();
    // the repair is a warning, not an error-level 'udp forwarder stopped' line
    expect(w.logs).not.toContain('"msg":"udp forwarder stopped"');
  });
});
