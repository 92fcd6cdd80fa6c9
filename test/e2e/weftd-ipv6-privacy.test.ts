/**
 * An IPv6 uplink with addresses that must never be a host's public IPv6: a temporary (privacy) address
 * the kernel made (use_tempaddr=2, mngtmpaddr), a deprecated one (preferred_lft 0), a tentative one
 * (DAD still running) and a dadfailed one (the underlay has it). The kernel lists the newest first, so
 * taking the first global address (as flannel does, flannel-io/flannel#2081) publishes one of them.
 * weftd publishes the stable address, and their rotation while it runs is not "the address moved"
 * (that would exit 4 and restart weftd); a real move still is. Started while its address is still in
 * DAD, weftd waits for it. Two hosts, dual stack, VXLAN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { nsRun, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  addContainer,
  createCluster,
  expectThreePings,
  ipOut,
  pingOnce,
  putConfig,
  restartWeftd,
  startWeftd,
  waitReady,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const ip6 = (ns: string, args: string): Promise<unknown> =>
  nsRun(ns, 'ip', ['-6', 'addr', ...args.split(' ')]);

/** The global IPv6 addresses of eth0 with their flags, e.g. 'fd18::1/64 nodad dynamic mngtmpaddr'. */
async function addrLines(ns: string): Promise<string[]> {
  const out = await ipOut(ns, ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  return out
    .split('\n')
    .map((l) => /inet6 (.*?)\\/.exec(l)?.[1]?.trim() ?? '')
    .filter(Boolean);
}

/** Its temporary addresses once they left DAD. */
async function temporaries(ns: string): Promise<string[]> {
  return (await addrLines(ns))
    .filter((l) => / temporary /.test(` ${l} `) && !/ tentative /.test(` ${l} `))
    .map((l) => l.split(' ')[0]!);
}

/**
 * fd18::1 re-added with mngtmpaddr (the kernel gives it a temporary address, as SLAAC with privacy
 * extensions does): without the flag first, so that the kernel makes a new one (a rotation).
 */
async function rotateTemporary(ns: string, before: readonly string[]): Promise<string> {
  await ip6(ns, 'replace fd18::1/64 dev eth0 nodad valid_lft 3600 preferred_lft 1800');
  for (const t of before) await ip6(ns, `del ${t} dev eth0`).catch(() => undefined);
  await ip6(ns, 'replace fd18::1/64 dev eth0 nodad mngtmpaddr valid_lft 3600 preferred_lft 1800');
  let made = '';
  await waitFor(
    'the kernel to make a temporary address',
    async () => {
      made = (await temporaries(ns)).find((t) => !before.includes(t)) ?? '';
      return made !== '';
    },
    10_000,
    200,
  );
  return made;
}

describe.skipIf(!runnable)('weftd and IPv6 privacy, deprecated, tentative addresses', () => {
  let c: Cluster;
  let d: Weftd[];
  let ctr: SimContainer[];
  let temp = '';

  beforeAll(async () => {
    c = await createCluster(2);
    const ns = c.topo.hosts[0]!.netns;
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.use_tempaddr=2']);
    await ip6(ns, 'del fd18::1/64 dev eth0');
    temp = await rotateTemporary(ns, []);
    await ip6(ns, 'add fd18::200/64 dev eth0 nodad preferred_lft 0');
    // the underlay's own: DAD fails (not a host's, whose tunnel traffic its local route would take)
    await ip6(c.topo.underlayNetns, 'add fd18::99/64 dev br0 nodad');
    await ip6(ns, 'add fd18::99/64 dev eth0');
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.dad_transmits=100']);
    await ip6(ns, 'add fd18::300/64 dev eth0'); // DAD for 100 s
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.dad_transmits=1']);
    await waitFor(
      'fd18::99 to fail DAD',
      async () => (await addrLines(ns)).some((l) => /^fd18::99\/64 .*dadfailed/.test(l)),
      10_000,
      200,
    );
    const lines = await addrLines(ns);
    expect(lines[0], lines.join('\n')).toMatch(/^fd18::300\/64 .*tentative/);
    expect(lines.at(-1), lines.join('\n')).toMatch(/^fd18::1\/64 /); // the oldest, listed last
    await putConfig(c, {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'vxlan' },
    });
    d = c.topo.hosts.map((h) => startWeftd(c, h));
    await Promise.all(d.map((w) => waitReady(w)));
    ctr = [];
    for (const w of d) ctr.push(await addContainer(c, w, 2));
  });
  afterAll(async () => {
    await c?.destroy();
  });

  const publicIpv6 = async (w: Weftd): Promise<string | undefined> => {
    const out = await c.etcd.etcdctl(['get', '--prefix', `${c.prefix}/subnets/`]);
    const lines = out.trim().split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const lease = JSON.parse(lines[i + 1]!) as { PublicIP: string; PublicIPv6?: string };
      if (lease.PublicIP === w.host.underlayIp) return lease.PublicIPv6;
    }
    return undefined;
  };

  it('publishes the stable address, and the overlay works over it', async () => {
    expect(await publicIpv6(d[0]!)).toBe('fd18::1');
    expect(d[0]!.logs).toContain('"ifaceAddr6":"fd18::1"');
    await expectThreePings(ctr[0]!, ctr[1]!);
    await waitFor(
      'IPv6 containers to ping each other across the hosts',
      async () =>
        (await pingOnce(ctr[0]!, ctr[1]!.ip6!)) === null &&
        (await pingOnce(ctr[1]!, ctr[0]!.ip6!)) === null,
      10_000,
      200,
    );
  });

  it('temporary addresses rotating, deprecated and failed ones coming and going: no restart', async () => {
    const w = d[0]!;
    const ns = w.host.netns;
    const second = await rotateTemporary(ns, [temp]);
    await ip6(ns, 'del fd18::300/64 dev eth0');
    await ip6(ns, 'del fd18::99/64 dev eth0');
    await ip6(ns, 'del fd18::200/64 dev eth0');
    await ip6(ns, 'add fd18::201/64 dev eth0 nodad preferred_lft 0');
    await rotateTemporary(ns, [second]);
    // the address is checked every --resync-period (3 s): three periods
    await sleep(9_000);
    expect(w.child.exitCode, w.logs).toBeNull();
    expect(w.logs).not.toContain("the uplink's address changed");
    expect(await publicIpv6(w)).toBe('fd18::1');
    expect(await pingOnce(ctr[1]!, ctr[0]!.ip6!)).toBeNull();
  });

  it('a stable address replacing it is still a move: exit 4 naming both', async () => {
    const w = d[0]!;
    const ns = w.host.netns;
    await ip6(ns, 'add fd18::11/64 dev eth0 nodad');
    await ip6(ns, 'del fd18::1/64 dev eth0');
    const code = await Promise.race([w.exit, sleep(15_000).then(() => 'still running')]);
    expect(code).toBe(4);
    expect(w.logs).toContain('fd18::1 → fd18::11');
  });

  it('starting while its only IPv6 address is in DAD: waits for it instead of exiting 4', async () => {
    const w = d[0]!;
    const ns = w.host.netns;
    await ip6(ns, 'del fd18::11/64 dev eth0');
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.dad_transmits=3']);
    await ip6(ns, 'add fd18::11/64 dev eth0'); // tentative for ~3 s
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.dad_transmits=1']);
    restartWeftd(c, w);
    await waitReady(w);
    expect(w.logs).toContain('waiting for IPv6 duplicate address detection to finish');
    expect(w.logs).toContain('fd18::11 (tentative)');
    expect(await publicIpv6(w)).toBe('fd18::11');
    await waitFor(
      'the peer to reach the moved host over IPv6',
      async () => (await pingOnce(ctr[1]!, ctr[0]!.ip6!)) === null,
      15_000,
      200,
    );
  });
});
