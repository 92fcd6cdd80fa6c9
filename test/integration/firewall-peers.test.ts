/**
 * The peer allowlist and the anti-relay forward rules in a real kernel (inside test namespaces only).
 * h1 runs weft's firewall (encapsulation port 8472 guarded, uplink eth0, --ip-masq, forward rules);
 * h3 plays the attacker on the underlay, h2 a peer / "the outside":
 *  - UDP to 8472 from an address outside the peer set is dropped and counted, from a peer it arrives;
 *    the set follows setPeers (flush + add in one transaction) and survives a new manager (restart);
 *  - a packet from the uplink with a cluster source towards the outside is neither forwarded nor
 *    masqueraded, while the same packet with a non-cluster source is (the path exists: control).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopology, type Topology } from '../helpers/netns.js';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { createNftRunner } from '../../src/firewall/nft.js';
import type { RulesInput } from '../../src/firewall/rules.js';
import { nullLogger } from '../../src/log/logger.js';

const runnable = requireCaps('root', 'netns', 'ping', 'nft');
useLeakCheck();

const input: RulesInput = {
  ipv4: { network: '10.5.0.0/16', subnet: '10.5.1.0/24' },
  ipv6: { network: 'fd05::/48', subnet: 'fd05:0:0:1::/64' },
  ipMasq: true,
  fullyRandom: true,
  forwardRules: true,
  encapPorts: [8472],
  uplinks: ['eth0'],
};

/** Installs a counting table `probe` in `ns` (input + forward hooks, filter on `match`). */
async function probe(ns: string, match: string): Promise<() => Promise<number>> {
  const script = [
    'table ip probe {',
    '  chain in { type filter hook input priority -300; policy accept;',
    `    ${match} counter; }`,
    '}',
  ].join('\n');
  await nsRun(ns, 'sh', ['-c', `printf '%s\\n' '${script}' | nft -f -`]);
  return async () => {
    const out = (await nsRun(ns, 'nft', ['list', 'chain', 'ip', 'probe', 'in'])).stdout;
    return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
  };
}

/** Sends `n` UDP datagrams from `ns` to `dst`:`port` (node's dgram: no extra tools needed). */
async function sendUdp(ns: string, dst: string, port: number, n = 5): Promise<void> {
  const js =
    "const s=require('dgram').createSocket('udp4');let i=0;" +
    `const t=setInterval(()=>{s.send(Buffer.from('x'),${port},'${dst}');if(++i>=${n}){clearInterval(t);setTimeout(()=>s.close(),50)}},20);`;
  await nsRun(ns, process.execPath, ['-e', js]);
}

describe.skipIf(!runnable)('peer allowlist and anti-relay rules (nftables)', () => {
  let topo: Topology;
  let h1: string;
  let h2: string;
  let h3: string;
  let fw: Firewall;

  beforeAll(async () => {
    topo = await createTopology({ hosts: 3 });
    [h1, h2, h3] = topo.hosts.map((h) => h.netns) as [string, string, string];
    // h1's container bridge (cbr0) holds 10.5.1.1/24: the route back to its own subnet
    await topo.addContainer(topo.hosts[0]!, { cidr: '10.5.1.2/24', gateway: '10.5.1.1' });
    await nsRun(h1, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('drops UDP to the encapsulation port from non-peers (counted) and lets peers in', async () => {
    const arrived = await probe(h1, 'udp dport 8472');
    await fw.apply(input);
    await fw.setPeers({ v4: ['198.18.0.2'], v6: ['fd18::2'] }, true);
    expect(await fw.check()).toEqual([]);
    const dropped = async (): Promise<number> =>
      (await fw.counter('ip', 'encap_dropped'))?.packets ?? NaN;

    // the probe sits before weft's input chain (priority -300): it sees every datagram that reached
    // h1; what gets past weft is seen by the socket layer (UDP "no port" errors count below)
    const noPort = async (): Promise<number> => {
      const snmp = (await nsRun(h1, 'cat', ['/proc/net/snmp'])).stdout.split('\n');
      const [head, vals] = snmp.filter((l) => l.startsWith('Udp:'));
      const i = head!.split(/\s+/).indexOf('NoPorts');
      return Number(vals!.split(/\s+/)[i]);
    };
    const a0 = await arrived();
    const d0 = await dropped();
    const n0 = await noPort();
    await sendUdp(h3, '198.18.0.1', 8472, 5); // attacker: not in the set
    await waitFor('5 datagrams seen', async () => (await arrived()) - a0 >= 5, 3000, 50);
    expect((await dropped()) - d0).toBe(5);
    expect((await noPort()) - n0).toBe(0); // none got past the drop

    await sendUdp(h2, '198.18.0.1', 8472, 5); // peer: passes (reaches the socket layer)
    await waitFor('peer datagrams pass', async () => (await noPort()) - n0 >= 5, 3000, 50);
    expect((await dropped()) - d0).toBe(5);

    // the peer leaves, the attacker becomes a peer: one transaction, the set follows at once
    await fw.setPeers({ v4: ['198.18.0.3'], v6: [] }, true);
    expect(await fw.check()).toEqual([]);
    await sendUdp(h2, '198.18.0.1', 8472, 3);
    await waitFor('ex-peer dropped', async () => (await dropped()) - d0 >= 8, 3000, 50);
    const set = (await nsRun(h1, 'nft', ['list', 'set', 'ip', 'weft', 'weft_peers4'])).stdout;
    expect(set).toContain('198.18.0.3');
    expect(set).not.toContain('198.18.0.2');
  });

  it('a restarted manager keeps the kernel set until it has a complete snapshot; counters survive', async () => {
    await fw.setPeers({ v4: ['198.18.0.2', '198.18.0.7'], v6: [] }, true);
    const before = (await fw.counter('ip', 'encap_dropped'))?.packets ?? 0;
    expect(before).toBeGreaterThan(0);
    const again = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await again.apply(input); // no lease seen yet: the kernel's peers stay
    const set = async (): Promise<string> => {
      const out = (await nsRun(h1, 'nft', ['-j', 'list', 'set', 'ip', 'weft', 'weft_peers4']))
        .stdout;
      const json = JSON.parse(out) as { nftables: { set?: { elem?: string[] | string } }[] };
      const elem = json.nftables.find((o) => o.set)?.set?.elem ?? [];
      return ([] as string[]).concat(elem).sort().join(', ');
    };
    expect(await set()).toMatch(/198\.18\.0\.2, 198\.18\.0\.7/);
    expect((await again.counter('ip', 'encap_dropped'))?.packets).toBe(before);
    await again.setPeers({ v4: ['198.18.0.9'], v6: [] }, false); // partial: only adds
    expect(await set()).toMatch(/198\.18\.0\.2, 198\.18\.0\.7, 198\.18\.0\.9/);
    await again.setPeers({ v4: ['198.18.0.2'], v6: [] }, true); // complete: stale ones go
    expect(await set()).toContain('198.18.0.2');
    expect(await set()).not.toMatch(/198\.18\.0\.[79]/);
    // someone removes a peer by hand: the resync restores it
    await nsRun(h1, 'nft', ['delete', 'element', 'ip', 'weft', 'weft_peers4', '{ 198.18.0.2 }']);
    expect((await again.check()).join()).toMatch(
      /set weft_peers4 holds \[\], want \[198\.18\.0\.2\]/,
    );
    expect(await again.resyncOnce()).toBe(true);
    expect(await set()).toContain('198.18.0.2');
    fw = again;
  });

  it('does not relay a cluster-sourced packet from the uplink outward; a non-cluster one is routed', async () => {
    // h3 (attacker on the underlay) sends to h2 ("the outside") and into h1's container through h1
    for (const a of ['10.5.1.77', '10.5.9.77'])
      await nsRun(h3, 'ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    await nsRun(h3, 'ip', ['route', 'add', '198.18.0.2/32', 'via', '198.18.0.1']);
    await nsRun(h3, 'ip', ['route', 'add', '10.5.1.0/24', 'via', '198.18.0.1']);
    const atH2 = await probe(h2, 'icmp type echo-request');
    const spoofDrops = async (): Promise<number> =>
      (await fw.counter('ip', 'forward_dropped'))?.packets ?? NaN;
    const send = (src: string, dst: string, n: number): Promise<unknown> =>
      nsRun(h3, 'ping', ['-c', String(n), '-i', '0.2', '-W', '1', '-I', src, dst], {
        allowFail: true,
      });

    for (const peersOnUplink of [false, true]) {
      await fw.apply({ ...input, peersOnUplink });
      // control: a non-cluster source is routed by h1 (plain IP forwarding): the path works
      const c0 = await atH2();
      await send('198.18.0.3', '198.18.0.2', 2);
      expect((await atH2()) - c0).toBe(2);

      // a cluster source (h1's own subnet, another host's) from the uplink to the outside: dropped
      for (const src of ['10.5.1.77', '10.5.9.77']) {
        const s0 = await spoofDrops();
        const p0 = await atH2();
        await send(src, '198.18.0.2', 3);
        expect((await atH2()) - p0, `${src} peersOnUplink ${peersOnUplink}`).toBe(0); // not relayed
        expect((await spoofDrops()) - s0).toBe(3);
      }
      // into h1's container with h1's own subnet as source: never from the underlay
      const s1 = await spoofDrops();
      await send('10.5.1.77', '10.5.1.2', 2);
      expect((await spoofDrops()) - s1).toBe(2);
      // another host's pod address into h1's container: only where peers are routed over the
      // uplink (host-gw, DirectRouting) does it pass; behind an encapsulating backend it is dropped
      const s2 = await spoofDrops();
      await send('10.5.9.77', '10.5.1.2', 2);
      expect((await spoofDrops()) - s2).toBe(peersOnUplink ? 0 : 2);
    }
  });
});
