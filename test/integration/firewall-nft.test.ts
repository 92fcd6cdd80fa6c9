/**
 * weftd's nftables rules in a real kernel (inside test namespaces only): applied in one transaction,
 * masquerade proven with traffic, forward rules present, tables restored by the resync loop after
 * someone deletes a rule or the whole table, and left in place (never removed by weft on its own).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopology, ping, type SimContainer, type Topology } from '../helpers/netns.js';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { createNftRunner } from '../../src/firewall/nft.js';
import { createIptablesRunner } from '../../src/firewall/iptables-forward.js';
import type { RulesInput } from '../../src/firewall/rules.js';
import { nullLogger } from '../../src/log/logger.js';

const runnable = requireCaps('root', 'netns', 'ping', 'nft');
useLeakCheck();

const input = (ipMasq: boolean): RulesInput => ({
  ipv4: { network: '10.5.0.0/16', subnet: '10.5.1.0/24' },
  ipv6: { network: 'fd05::/48', subnet: 'fd05:0:0:1::/64' },
  ipMasq,
  fullyRandom: true,
  forwardRules: true,
});

describe.skipIf(!runnable)('firewall (nftables) in a host namespace', () => {
  let topo: Topology;
  let ctr: SimContainer;
  let h1: string;

  beforeAll(async () => {
    topo = await createTopology({ hosts: 2 });
    const host = topo.hosts[0]!;
    h1 = host.netns;
    ctr = await topo.addContainer(host, { cidr: '10.5.1.2/24', gateway: '10.5.1.1' });
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('masquerades overlay traffic leaving the network only when --ip-masq is on', async () => {
    const fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await fw.apply(input(false));
    expect(await fw.check()).toEqual([]);
    // h2 has no route back to 10.5.1.0/24: the reply only arrives if h1 masqueraded the source
    expect(await ping(ctr.netns, '198.18.0.2', 1, 1)).toBe(false);
    await fw.apply(input(true));
    expect(await fw.check()).toEqual([]);
    expect(await ping(ctr.netns, '198.18.0.2', 2, 2)).toBe(true);
    const listing = (await nsRun(h1, 'nft', ['list', 'ruleset'])).stdout;
    expect(listing).toContain('table ip weft');
    expect(listing).toContain('table ip6 weft');
    expect(listing).toMatch(/ip saddr 10\.5\.0\.0\/16 accept comment "weft forward 2 [0-9a-f]{8}"/);
    expect(listing).toMatch(
      /ip6 saddr fd05:0:0:1::\/64 ip6 daddr != ff00::\/8 masquerade fully-random/,
    );
  });

  it('restores a deleted rule and a deleted table within one resync interval', async () => {
    const fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await fw.apply(input(true));
    const stop = new AbortController();
    const loop = fw.runResync(1, stop.signal);
    try {
      const json = JSON.parse(
        (await nsRun(h1, 'nft', ['-j', 'list', 'chain', 'ip', 'weft', 'postrtg'])).stdout,
      ) as {
        nftables: { rule?: { handle: number; comment?: string } }[];
      };
      const handle = json.nftables.find((o) => o.rule?.comment?.startsWith('weft masq 5'))?.rule
        ?.handle;
      expect(handle).toBeTypeOf('number');
      await nsRun(h1, 'nft', ['delete', 'rule', 'ip', 'weft', 'postrtg', 'handle', String(handle)]);
      expect((await fw.check()).join()).toMatch(/chain postrtg has rules/);
      await waitFor('masq rule restored', async () => (await fw.check()).length === 0, 4000, 200);
      expect((await nsRun(h1, 'nft', ['list', 'chain', 'ip', 'weft', 'postrtg'])).stdout).toContain(
        'weft masq 5',
      );

      await nsRun(h1, 'nft', ['delete', 'table', 'ip6', 'weft']);
      expect(await fw.check()).toContain('ip6: table ip6 weft is missing');
      await waitFor('ip6 table restored', async () => (await fw.check()).length === 0, 4000, 200);
    } finally {
      stop.abort();
      await loop;
    }
  });

  it('re-applying for a new subnet replaces the old rules atomically; the rules outlive the manager', async () => {
    const fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await fw.apply({ ...input(true), ipv4: { network: '10.5.0.0/16', subnet: '10.5.9.0/24' } });
    const listing = (await nsRun(h1, 'nft', ['list', 'table', 'ip', 'weft'])).stdout;
    expect(listing).toContain('10.5.9.0/24');
    expect(listing).not.toContain('10.5.1.0/24');
    // a new manager (a restarted weftd) sees the same rules in place before applying anything
    const again = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await again.apply({ ...input(true), ipv4: { network: '10.5.0.0/16', subnet: '10.5.9.0/24' } });
    expect(await again.check()).toEqual([]);
  });

  it('with masquerade and forward rules off, weft tables are removed; a bad script is rejected whole', async () => {
    const fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger);
    await fw.apply({ ...input(false), forwardRules: false });
    expect((await nsRun(h1, 'nft', ['list', 'tables'])).stdout).not.toContain('weft');
    expect(await fw.check()).toEqual([]);
    const bad = createNftRunner({ netns: h1 });
    await expect(bad.apply('table ip weft { chain x { bogus } }')).rejects.toMatchObject({
      code: 'E_FIREWALL',
    });
    expect((await nsRun(h1, 'nft', ['list', 'tables'])).stdout).not.toContain('weft');
  });
});

describe('firewall without nft installed', () => {
  it('fails clearly when rules are wanted, and is a no-op when none are', async () => {
    const missing = createNftRunner({ nftPath: '/nonexistent/nft' });
    const fw = new Firewall(missing, nullLogger);
    await expect(fw.apply(input(true))).rejects.toThrow(/not found: install nftables/);
    await fw.apply({ ...input(false), forwardRules: false });
    expect(await fw.check()).toEqual(['rules not applied yet']);
  });
});

describe.skipIf(!runnable)('forward rules on a host whose iptables FORWARD policy drops', () => {
  let topo: Topology;
  let ctr: SimContainer;
  let h1: string;

  beforeAll(async () => {
    topo = await createTopology({ hosts: 2 });
    h1 = topo.hosts[0]!.netns;
    ctr = await topo.addContainer(topo.hosts[0]!, { cidr: '10.5.1.2/24', gateway: '10.5.1.1' });
    // h2 routes the overlay subnet back, so replies need no masquerade; h1's FORWARD drops (Docker)
    await nsRun(topo.hosts[1]!.netns, 'ip', ['route', 'add', '10.5.1.0/24', 'via', '198.18.0.1']);
    await nsRun(h1, 'iptables', ['-w', '5', '-P', 'FORWARD', 'DROP']);
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it('adds them to iptables too, and the resync restores a removed jump', async () => {
    expect(await ping(ctr.netns, '198.18.0.2', 1, 1)).toBe(false);
    const ipt = createIptablesRunner({ netns: h1 });
    const fw = new Firewall(createNftRunner({ netns: h1 }), nullLogger, undefined, ipt);
    await fw.apply({ ...input(false), ipv6: null, uplinks: ['eth0'] });
    expect(await ping(ctr.netns, '198.18.0.2', 2, 2)).toBe(true);
    const chain = (await nsRun(h1, 'iptables', ['-w', '5', '-S', 'WEFT-FWD'])).stdout;
    // scoped: cluster sources from anywhere but the uplink, or from the uplink to this host's subnet
    expect(chain).toContain(
      '-A WEFT-FWD -s 10.5.0.0/16 ! -i eth0 -m comment --comment "weft forward" -j ACCEPT',
    );
    expect(chain).toContain(
      '-A WEFT-FWD -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "weft forward" -j ACCEPT',
    );
    expect(chain).not.toContain('-A WEFT-FWD -s 10.5.0.0/16 -m comment');
    await nsRun(h1, 'iptables', [
      '-w',
      '5',
      '-D',
      'FORWARD',
      '-m',
      'comment',
      '--comment',
      'weft forward',
      '-j',
      'WEFT-FWD',
    ]);
    expect(await ping(ctr.netns, '198.18.0.2', 1, 1)).toBe(false);
    expect(await fw.resyncOnce()).toBe(false); // nft part intact; iptables part repaired on the way
    expect((await nsRun(h1, 'iptables', ['-w', '5', '-S', 'FORWARD'])).stdout).toContain(
      '-j WEFT-FWD',
    );
    expect(await ping(ctr.netns, '198.18.0.2', 2, 2)).toBe(true);
    await fw.apply({ ...input(false), ipv6: null, uplinks: ['eth0'] }); // idempotent: one jump
    const jumps = (await nsRun(h1, 'iptables', ['-w', '5', '-S', 'FORWARD'])).stdout.match(
      /-j WEFT-FWD/g,
    );
    expect(jumps).toHaveLength(1);
  });
});
