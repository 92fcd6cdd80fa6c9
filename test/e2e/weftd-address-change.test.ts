/**
 * A host's underlay address changes (DHCP hands out another one, a NIC is replaced) and weftd is
 * restarted: flannel then leased a new subnet, because its own old lease names the old public IP
 * (flannel-io/flannel#760; docs/pitfalls.md A1), and every container on the host lost its network.
 * weftd records the etcd lease it holds in its state dir; the key still under that lease is its own, so
 * it takes it back and publishes the new address. A change while weftd runs makes it exit 4 (the
 * tunnel and the lease use the old address), so that its supervisor restarts it onto the new one.
 * Two hosts, VXLAN, one container each.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  expectThreePings,
  pingOnce,
  restartWeftd,
  subnetsOf,
  useCluster,
  waitReady,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd restarted after its underlay address changed', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });

  const leases = async (): Promise<Map<string, { PublicIP: string }>> => {
    const { c } = setup;
    const out = await c.etcd.etcdctl(['get', '--prefix', `${c.prefix}/subnets/`]);
    const lines = out.trim().split('\n');
    const m = new Map<string, { PublicIP: string }>();
    for (let i = 0; i + 1 < lines.length; i += 2)
      m.set(lines[i]!.split('/').pop()!, JSON.parse(lines[i + 1]!) as { PublicIP: string });
    return m;
  };

  it('keeps its subnet, publishes the new address, and its containers talk again', async () => {
    const { c, d, ctr } = setup;
    const w = d[0]!;
    const ns = w.host.netns;
    const before = subnetsOf(w).subnet;
    const key = before.replace('/', '-');
    expect((await leases()).get(key)?.PublicIP).toBe('198.18.0.1');
    w.child.kill('SIGTERM');
    await w.exit;
    await nsRun(ns, 'ip', ['addr', 'del', '198.18.0.1/24', 'dev', 'eth0']);
    await nsRun(ns, 'ip', ['addr', 'add', '198.18.0.11/24', 'dev', 'eth0']);
    restartWeftd(c, w);
    await waitReady(w);
    expect(subnetsOf(w).subnet).toBe(before);
    const after = await leases();
    expect(after.get(key)?.PublicIP).toBe('198.18.0.11');
    expect(after.size).toBe(2); // no second lease for this host
    const warned = w.logs.split('\n').find((l) => l.includes("this host's public IP changed"));
    expect(warned).toContain('"from":"198.18.0.1","to":"198.18.0.11"');
    // the peer follows the lease event (its FDB entry, neighbour and allowlist: the new address and
    // VTEP MAC) within a few seconds; then no ping is lost either way
    await waitFor(
      'the peer to reach the moved host',
      async () => (await pingOnce(ctr[1]!, ctr[0]!.ip)) === null,
      15_000,
      200,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
  });

  it('while weftd runs: it exits 4 naming both addresses, and the restart keeps the subnet', async () => {
    const { c, d, ctr } = setup;
    const w = d[0]!;
    const ns = w.host.netns;
    const before = subnetsOf(w).subnet;
    await nsRun(ns, 'ip', ['addr', 'del', '198.18.0.11/24', 'dev', 'eth0']);
    await nsRun(ns, 'ip', ['addr', 'add', '198.18.0.21/24', 'dev', 'eth0']);
    // checked every --resync-period (3 s here); systemd's Restart=on-failure restarts it
    const code = await Promise.race([w.exit, sleep(15_000).then(() => 'still running')]);
    expect(code).toBe(4);
    expect(w.logs).toContain('198.18.0.11 → 198.18.0.21');
    restartWeftd(c, w);
    await waitReady(w);
    expect(subnetsOf(w).subnet).toBe(before);
    expect((await leases()).get(before.replace('/', '-'))?.PublicIP).toBe('198.18.0.21');
    await waitFor(
      'the peer to reach the moved host',
      async () => (await pingOnce(ctr[1]!, ctr[0]!.ip)) === null,
      15_000,
      200,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
  });
});
