/**
 * The uplink deleted and created again with the same name and address (a NIC driver reload, a bond or
 * bridge rebuilt): a new interface with a new ifindex. The kernel drops everything bound to the old
 * one: the routes through it, and a VXLAN device whose `dev` is the old uplink is deleted with it.
 * Containers on the host must talk to their peers again within seconds, weftd keeps running, and the
 * VTEP MAC stays the same. The udp and wireguard backends, bound only to the address (their sockets),
 * are checked too. The test's uplink is a veth end (the kernel here has no `dummy`): deleted
 * with `ip link del` and re-created on the same underlay bridge.
 */
import { describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { nsRun, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { ipOut, pingOnce, useCluster, type Cluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'tun');
useLeakCheck();

// host-gw and vxlan are bound to the uplink's ifindex and must follow it; udp and wireguard only to
// its address (their sockets), checked alongside.
const BACKENDS = [
  ['host-gw', { Type: 'host-gw' }],
  ['vxlan', { Type: 'vxlan' }],
  ['vxlan DirectRouting', { Type: 'vxlan', DirectRouting: true }],
  ['udp', { Type: 'udp' }],
  ['wireguard', { Type: 'wireguard' }],
] as const;

/**
 * Deletes `eth0` of host 1 (and its veth peer `vh1` on the underlay bridge) and creates both again;
 * `addressLast`: the address only a second after the link is up (DHCP, networkd), once weftd reacted
 * to the new link without it.
 */
async function recreateUplink(c: Cluster, ns: string, addressLast = false): Promise<void> {
  const ul = c.topo.underlayNetns;
  await nsRun(ns, 'ip', ['link', 'del', 'eth0']);
  await nsRun(ul, 'ip', [
    'link',
    'add',
    'vh1',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    ns,
  ]);
  await nsRun(ul, 'ip', ['link', 'set', 'vh1', 'master', 'br0', 'up']);
  if (!addressLast) await nsRun(ns, 'ip', ['addr', 'add', '198.18.0.1/24', 'dev', 'eth0']);
  await nsRun(ns, 'ip', ['link', 'set', 'eth0', 'up']);
  if (addressLast) {
    await sleep(1000);
    await nsRun(ns, 'ip', ['addr', 'add', '198.18.0.1/24', 'dev', 'eth0']);
  }
}

/** Waits (at most `ms`, far below the 60 s --resync-period) until the containers ping each other. */
async function expectPingsWithin(ctr: readonly SimContainer[], ms: number): Promise<void> {
  await waitFor(
    'containers on both hosts to ping each other again',
    async () =>
      (await pingOnce(ctr[0]!, ctr[1]!.ip)) === null &&
      (await pingOnce(ctr[1]!, ctr[0]!.ip)) === null,
    ms,
    200,
  );
}

describe.skipIf(!runnable).each(BACKENDS)('uplink deleted and re-created (%s)', (name, backend) => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: backend }, ['--resync-period=60']);

  it('containers talk again within seconds, weftd keeps running', async () => {
    const { c, d, ctr } = setup;
    const w = d[0]!;
    const ns = w.host.netns;
    const child = w.child;
    const vtep = name.startsWith('vxlan') ? await ipOut(ns, ['-o', 'link', 'show', 'weft.1']) : '';
    const mac = /link\/ether (\S+)/.exec(vtep)?.[1];
    const before = await ipOut(ns, ['-o', 'link', 'show', 'eth0']);
    await recreateUplink(c, ns);
    expect(await ipOut(ns, ['-o', 'link', 'show', 'eth0'])).not.toBe(before);
    await expectPingsWithin(ctr, 10_000);
    expect(child.exitCode, w.logs).toBeNull();
    if (name === 'host-gw' || name.startsWith('vxlan')) {
      expect(w.logs).toMatch(/uplink eth0 was re-created \(ifindex \d+ → \d+\)/);
    }
    if (mac) {
      // the kernel deleted weft.1 with the old eth0: weftd created it again, on the new eth0
      const after = await ipOut(ns, ['-d', '-o', 'link', 'show', 'weft.1']);
      expect(/link\/ether (\S+)/.exec(after)?.[1]).toBe(mac);
      expect(after).toMatch(/ dev eth0 /);
    }
  });

  it('addressed only after it came up: routes come back on the address, not at the next resync', async () => {
    const { c, d, ctr } = setup;
    const w = d[0]!;
    const child = w.child;
    await recreateUplink(c, w.host.netns, true);
    // the reconcile at the re-create could not route via the peer (no prefix route yet); the address
    // event triggers the next one, long before the 60 s resync
    await expectPingsWithin(ctr, 5_000);
    expect(child.exitCode, w.logs).toBeNull();
  });
});
