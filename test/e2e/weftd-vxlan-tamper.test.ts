/**
 * The vxlan device and its routes changed under a running weftd by another actor (2 hosts, 3 s resync):
 *  - an operator's route on weft's device to a non-cluster destination is left alone, while a stray
 *    route into the cluster network on it is removed;
 *  - the device renamed (`ip link set weft.1 name x`): weft.1 is created again and pings flow;
 *  - a foreign VXLAN device holding weft's VNI and port: a warning naming that device and the fix, weftd
 *    keeps running, and the device comes back once the foreign one is gone;
 *  - the uplink's MTU lowered: a warning naming the change and the fix (restart weftd), no exit.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { isRunning, nsRun, sleep, waitFor, words } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { expectThreePings, ipOut, useCluster, vxlanDevice } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const RESYNC_S = 3; // --resync-period in weftdArgs

describe.skipIf(!runnable)('weftd vxlan: kernel state changed by another actor', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
  let dev: string;
  let ns: string;

  beforeAll(async () => {
    ns = setup.d[0]!.host.netns;
    dev = (await vxlanDevice(ns)) ?? 'missing';
  });

  it("leaves an operator's non-cluster route on the device alone, removes a stray cluster route", async () => {
    await nsRun(ns, 'ip', words(`route add 192.168.77.0/24 dev ${dev}`));
    await nsRun(ns, 'ip', words(`route add 10.5.200.0/24 dev ${dev}`));
    await waitFor(
      'stray cluster route removed',
      async () => !(await ipOut(ns, ['route', 'show', 'dev', dev])).includes('10.5.200.0/24'),
      (RESYNC_S * 2 + 3) * 1000,
      200,
    );
    await sleep(RESYNC_S * 1000 + 500); // one more full reconcile
    expect(await ipOut(ns, ['route', 'show', 'dev', dev])).toContain('192.168.77.0/24');
    await nsRun(ns, 'ip', words(`route del 192.168.77.0/24 dev ${dev}`));
  });

  it('the device renamed: weft.1 is created again and the peer is reachable', async () => {
    const { d, ctr } = setup;
    // weftd may repair it before the `up` (then weftx is gone already)
    await nsRun(ns, 'sh', [
      '-c',
      `ip link set ${dev} down && ip link set ${dev} name weftx && (ip link set weftx up || true)`,
    ]);
    await waitFor(
      `${dev} re-created`,
      async () => (await vxlanDevice(ns)) === dev,
      (RESYNC_S * 2 + 3) * 1000,
      200,
    );
    expect(await ipOut(ns, ['-o', 'link', 'show', 'type', 'vxlan'])).not.toContain('weftx');
    await expectThreePings(ctr[0]!, ctr[1]!);
    expect(d[0]!.logs).toContain(`vxlan device ${dev} was renamed to weftx`);
  });

  it('a foreign device with our VNI and port: a warning naming it and the fix, then repaired', async () => {
    const { d, ctr } = setup;
    const w = d[0]!;
    // weftd re-creates its device within a millisecond: stopped meanwhile, it cannot win the race
    process.kill(w.child.pid!, 'SIGSTOP');
    try {
      await nsRun(ns, 'ip', words(`link del ${dev}`));
      await nsRun(ns, 'ip', words('link add other type vxlan id 1 dstport 8472 nolearning'));
    } finally {
      process.kill(w.child.pid!, 'SIGCONT');
    }
    await waitFor(
      'a warning naming the device and the fix',
      async () =>
        w.logs.includes(
          'device other already uses VNI 1 on UDP port 8472: delete it (ip link del other)',
        ),
      (RESYNC_S * 2 + 3) * 1000,
      200,
    );
    expect(isRunning(w.child), w.logs.slice(-1500)).toBe(true);
    await nsRun(ns, 'ip', words('link del other'));
    await waitFor(
      `${dev} back`,
      async () => (await vxlanDevice(ns)) === dev,
      (RESYNC_S * 2 + 3) * 1000,
      200,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
  });

  it("the uplink's MTU lowered: a warning with the change and the fix, weftd keeps running", async () => {
    const w = setup.d[0]!;
    await nsRun(ns, 'ip', words('link set eth0 mtu 1400'));
    try {
      await waitFor(
        'the MTU warning',
        async () => w.logs.includes("the uplink's MTU changed (eth0 1500 → 1400)"),
        (RESYNC_S * 2 + 3) * 1000,
        200,
      );
      expect(w.logs).toContain('restart weftd to apply it');
      expect(isRunning(w.child), w.logs.slice(-1500)).toBe(true);
    } finally {
      await nsRun(ns, 'ip', words('link set eth0 mtu 1500'));
    }
  });
});
