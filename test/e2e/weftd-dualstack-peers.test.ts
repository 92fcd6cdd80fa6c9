/**
 * Dual-stack peers that are hostile or odd in only one family, against real weftd processes (VXLAN, two
 * hosts, etcd on the underlay): a newcomer lease whose IPv6 subnet is a live peer's (its IPv4 subnet its
 * own) must not take that peer's IPv6 route, neither when it arrives nor at the full reconciles after;
 * and weftctl doctor probes the IPv6 underlay too. A mixed cluster (IPv6 turned on, one host restarted):
 * the restarted host keeps its IPv4 subnet and both still reach each other over IPv4.
 */
import { describe, expect, it } from 'vitest';
import { nsRun, sleep } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  pingOnce,
  putConfig,
  restartWeftd,
  runWeftctl,
  subnetsOf,
  useCluster,
  waitReady,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd dual stack: peers hostile in one family', () => {
  const s = useCluster(2, {
    Network: '10.46.0.0/16',
    EnableIPv6: true,
    IPv6Network: 'fd46::/48',
    Backend: { Type: 'vxlan' },
  });

  it("doctor probes each peer's PublicIPv6 on the IPv6 underlay, not only its IPv4 public IP", async () => {
    const h1 = s.d[0]!;
    const ns = h1.host.netns;
    const doctor = async () => runWeftctl(s.c, h1, ['doctor']);
    const ok = await doctor();
    expect(ok.stdout).toContain('underlay fd18::2 reachable');
    expect(ok.stdout).not.toContain('does not answer on the underlay');
    // The IPv6 underlay to h2 drops echo requests (ND and the VXLAN traffic pass): before, doctor
    // probed 198.18.0.2 only and passed.
    const nft = (args: string) => nsRun(ns, 'nft', args.split(' '));
    await nft('add table ip6 weft_test_block');
    try {
      await nft('add chain ip6 weft_test_block out { type filter hook output priority 0 ; }');
      await nft('add rule ip6 weft_test_block out ip6 daddr fd18::2 icmpv6 type echo-request drop');
      const bad = await doctor();
      expect(bad.stdout).toMatch(
        /\[FAIL\] peer \S+: public IP fd18::2 does not answer on the underlay/,
      );
      expect(bad.stdout).toContain('underlay 198.18.0.2 reachable');
      expect(bad.code).toBe(1);
    } finally {
      await nft('delete table ip6 weft_test_block');
    }
  });

  it("a newcomer holding a live peer's IPv6 subnet never gets its route, also after full reconciles", async () => {
    const [h1, h2] = s.d;
    const peer6 = subnetsOf(h2!).subnet6!;
    const gw6 = peer6.split('/')[0]!; // the peer's VXLAN gateway: its subnet's network address
    const neigh = async (): Promise<string> =>
      (await nsRun(h1!.host.netns, 'ip', ['-6', 'neigh', 'show', gw6, 'dev', 'weft-v6.1'])).stdout;
    const h2Mac = /lladdr (\S+)/.exec(await neigh())?.[1];
    expect(h2Mac).toBeDefined();
    // A reservation (no TTL), as an operator or a broken host could write it: its IPv4 part is
    // its own and valid, so weftd programs that family and is refused the other.
    const key = `10.46.250.0-24&${peer6.replace('/', '-')}`;
    await s.c.etcd.etcdctl([
      'put',
      `${s.c.prefix}/subnets/${key}`,
      JSON.stringify({
        PublicIP: '198.18.0.77',
        PublicIPv6: 'fd18::77',
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:77' },
        BackendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:00:77' },
      }),
    ]);
    // weftd's harness resyncs every 3 s: wait out two full reconciles. Before, the first one gave
    // the newcomer (an incumbent by its IPv4 entry, and a reservation) the peer's IPv6 route.
    await sleep(7000);
    expect(await neigh()).toContain(`lladdr ${h2Mac}`);
    expect(await pingOnce(s.ctr[0]!, s.ctr[1]!.ip6!)).toBeNull();
    const v4 = (await nsRun(h1!.host.netns, 'ip', ['route', 'show', '10.46.250.0/24'])).stdout;
    expect(v4).toContain('dev weft.1');
    // weftctl plans the same: the newcomer's IPv6 family is the refused one
    const peers = await runWeftctl(s.c, h1!, ['peers']);
    expect(peers.stdout).toMatch(
      new RegExp(
        `lease ${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: lease \\S+ already holds the route to ${peer6}`,
      ),
    );
  });
});

describe.skipIf(!runnable)(
  'weftd: IPv6 turned on in a running IPv4 cluster, one host restarted',
  () => {
    const v4only = { Network: '10.47.0.0/16', Backend: { Type: 'vxlan' } };
    const s = useCluster(2, v4only);

    it('the restarted host keeps its IPv4 subnet, adds an IPv6 one, and both hosts still reach each other over IPv4', async () => {
      const [h1, h2] = s.d;
      const before = subnetsOf(h1!);
      expect(before.subnet6).toBeNull();
      await putConfig(s.c, { ...v4only, EnableIPv6: true, IPv6Network: 'fd47::/48' });
      h1!.child.kill('SIGTERM');
      await h1!.exit;
      restartWeftd(s.c, h1!);
      await waitReady(h1!);
      // Before, h1 came back with a random new IPv4 subnet: its running containers (on the old one)
      // were cut off from every other host.
      const after = subnetsOf(h1!);
      expect(after.subnet).toBe(before.subnet);
      expect(after.subnet6).toMatch(/^fd47:0:0:[0-9a-f]+::\/64$/);
      // h1 (dual stack) programs h2's IPv4-only lease; h2 (still running IPv4 only) programs h1's new
      // dual-stack key's IPv4 part
      expect(await pingOnce(s.ctr[0]!, s.ctr[1]!.ip)).toBeNull();
      expect(await pingOnce(s.ctr[1]!, s.ctr[0]!.ip)).toBeNull();
      const peers = await runWeftctl(s.c, h1!, ['peers']);
      expect(peers.stdout).toMatch(
        new RegExp(`${subnetsOf(h2!).subnet.replace(/\./g, '\\.')} .* ok`),
      );
    });
  },
);
