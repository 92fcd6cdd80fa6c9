/**
 * Migrating a flannel host to weft (issue 14; docs/migration-from-flannel.md). Host 1 is staged as
 * flannel left it: a `flannel.1` VXLAN device (VNI 1, port 8472, the same as weft's device), flannel's
 * iptables chains with the jumps to them, its lease in etcd (with a TTL, PublicIP = the host's address),
 * its subnet.env, and a container on the `cni0` bridge holding an address of that subnet. weftd refuses
 * to start (exit 8) and names the command; `weftctl cleanup --flannel` shows and then (with --yes)
 * removes exactly flannel's leftovers; weftd then starts with the SAME subnet and the old container is
 * reached from a container on host 2 over weft.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { ping, type SimContainer } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';
import {
  addContainer,
  createCluster,
  putConfig,
  restartWeftd,
  runWeftctl,
  startWeftd,
  subnetsOf,
  waitReady,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

// flannel's chains, plus (as on a host that ran flannel up to v0.14 before a newer one) its older
// rules straight in POSTROUTING/FORWARD, and an operator's rules beside them that cleanup must keep
const FLANNEL_IPTABLES = `*nat
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.48.7.0/24 -d 10.48.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.48.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A POSTROUTING -s 10.48.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A POSTROUTING -s 10.48.0.0/16 -o eth9 -m comment --comment "operator masq" -j MASQUERADE
COMMIT
*filter
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FORWARD -s 10.48.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FORWARD -d 10.48.0.0/16 -m comment --comment "operator forward" -j ACCEPT
-A FLANNEL-FWD -s 10.48.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.48.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
`;

describe.skipIf(!runnable)('migrating a flannel host to weft', () => {
  let c: Cluster | undefined;
  let w1: Weftd;
  let old: SimContainer;
  const ns1 = () => c!.topo.hosts[0]!.netns;

  beforeAll(async () => {
    c = await createCluster(2);
    const h1 = c.topo.hosts[0]!;
    await putConfig(c, { Network: '10.48.0.0/16', Backend: { Type: 'vxlan' } });
    // flannel's device, as flanneld creates it
    const ip = (args: string[]) => run('ip', ['-n', h1.netns, ...args]);
    await ip(
      ['link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'dev', 'eth0', 'local'].concat([
        h1.underlayIp,
        'dstport',
        '8472',
        'nolearning',
      ]),
    );
    await ip(['addr', 'add', '10.48.7.0/32', 'dev', 'flannel.1']);
    await ip(['link', 'set', 'flannel.1', 'up']);
    await nsRun(h1.netns, 'iptables-restore', ['--noflush'], { input: FLANNEL_IPTABLES });
    // an operator's nftables table whose name merely starts like flannel's (flannel's are exactly
    // ip flannel-ipv4 and ip6 flannel-ipv6): neither a leftover nor removed
    await nsRun(h1.netns, 'nft', ['add', 'table', 'ip', 'flannel-audit']);
    // flannel's lease (with a TTL, as flanneld writes it) and subnet.env
    const grant = await c.etcd.etcdctl(['lease', 'grant', '3600']);
    const leaseId = /lease ([0-9a-f]+) granted/.exec(grant)![1]!;
    await c.etcd.etcdctl([
      'put',
      `--lease=${leaseId}`,
      `${c.prefix}/subnets/10.48.7.0-24`,
      JSON.stringify({
        PublicIP: h1.underlayIp,
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '0a:58:0a:30:07:00' },
      }),
    ]);
    const dir = join(c.tmp, `h${h1.index}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'subnet.env'),
      'FLANNEL_NETWORK=10.48.0.0/16\nFLANNEL_SUBNET=10.48.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    // a container flannel's CNI wired: cni0 with the subnet's first address, the container on .5
    old = await c.topo.addContainer(h1, {
      cidr: '10.48.7.5/24',
      gateway: '10.48.7.1',
      bridge: 'cni0',
    });
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  }, 60_000);

  it('weftd refuses to start on the flannel host (exit 8) and names the command to run', async () => {
    w1 = startWeftd(c!, c!.topo.hosts[0]!);
    const code = await w1.exit;
    expect(code).toBe(8);
    expect(w1.logs).toContain('device flannel.1 (VXLAN VNI 1, UDP port 8472)');
    expect(w1.logs).toContain('iptables chain FLANNEL-FWD in table filter');
    expect(w1.logs).toContain('iptables chain FLANNEL-POSTRTG in table nat');
    expect(w1.logs).toContain(
      'iptables rule in table filter: -A FORWARD -s 10.48.0.0/16 -m comment --comment \\"flanneld forward\\" -j ACCEPT',
    );
    expect(w1.logs).not.toContain('flannel-audit');
    expect(w1.logs).toContain('weftctl cleanup --flannel --yes');
    // nothing was programmed
    expect(
      await run('ip', ['-n', ns1(), 'link', 'show', 'weft.1'], { allowFail: true }),
    ).toMatchObject({
      code: 1,
    });
  });

  it('weftctl cleanup --flannel shows what it would remove and removes nothing', async () => {
    const r = await runWeftctl(c!, w1, ['cleanup', '--flannel']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('device flannel.1');
    expect(r.stdout).toContain(
      'iptables -w -t filter -D FORWARD -m comment --comment flanneld forward -j FLANNEL-FWD',
    );
    expect(r.stdout).toContain('ip link delete flannel.1');
    expect((await run('ip', ['-n', ns1(), 'link', 'show', 'flannel.1'])).code).toBe(0);
    // weftctl doctor reports the same finding with the fix
    const doc = await runWeftctl(c!, w1, ['doctor', '--no-probe']);
    expect(doc.code).toBe(1);
    expect(doc.stdout).toMatch(/\[FAIL\] flannel's dataplane is still here.*device flannel\.1/);
    expect(doc.stdout).toContain('fix: weftctl cleanup --flannel --yes');
  });

  it('weftctl cleanup --flannel --yes removes exactly flannel leftovers', async () => {
    const r = await runWeftctl(c!, w1, ['cleanup', '--flannel', '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("flannel's leftovers are gone");
    const save = (await nsRun(ns1(), 'iptables-save', [])).stdout;
    expect(save).not.toContain('FLANNEL');
    expect(save).not.toContain('flanneld');
    expect(save).toContain(
      '-A POSTROUTING -s 10.48.0.0/16 -o eth9 -m comment --comment "operator masq" -j MASQUERADE',
    );
    expect(save).toContain(
      '-A FORWARD -d 10.48.0.0/16 -m comment --comment "operator forward" -j ACCEPT',
    );
    expect((await nsRun(ns1(), 'nft', ['list', 'tables'])).stdout).toContain(
      'table ip flannel-audit',
    );
    expect(save).toMatch(/^\*filter$/m); // the tables themselves are still there
    expect(
      (await run('ip', ['-n', ns1(), 'link', 'show', 'flannel.1'], { allowFail: true })).code,
    ).toBe(1);
    // the old container and its bridge are untouched
    expect((await run('ip', ['-n', ns1(), 'link', 'show', 'cni0'])).code).toBe(0);
    const again = await runWeftctl(c!, w1, ['cleanup', '--flannel']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no flannel leftovers');
    expect((await runWeftctl(c!, w1, ['doctor', '--no-probe'])).stdout).toContain(
      'no flannel leftovers on this host',
    );
  });

  it('weftd then keeps the same subnet, and the old container is reached over weft', async () => {
    w1 = restartWeftd(c!, w1);
    await waitReady(w1);
    expect(subnetsOf(w1).subnet).toBe('10.48.7.0/24');
    const w2 = startWeftd(c!, c!.topo.hosts[1]!);
    await waitReady(w2);
    const fresh = await addContainer(c!, w2, 2);
    expect(await ping(fresh.netns, '10.48.7.5', 3, 3)).toBe(true);
    expect(await ping(old.netns, fresh.ip, 2, 3)).toBe(true);
  });
});
