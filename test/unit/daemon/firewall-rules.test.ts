import { describe, expect, it } from 'vitest';
import { buildRuleset, peerUpdateScript } from '../../../src/firewall/rules.js';
import { diffTable, kernelState } from '../../../src/firewall/firewall.js';
import type { NftObject } from '../../../src/firewall/nft.js';

const v4 = { network: '10.5.0.0/16', subnet: '10.5.52.0/24' };
const v6 = { network: 'fc00::/48', subnet: 'fc00:0:0:3::/64' };
/** IPv4 only, masquerade (fully random) and forward rules: flannel's usual deployment. */
const flannel4 = { ipv4: v4, ipv6: null, ipMasq: true, fullyRandom: true, forwardRules: true };

describe('firewall ruleset', () => {
  it('replaces both weft tables in one transaction, masquerade and forward as flannel', () => {
    const rs = buildRuleset(flannel4);
    expect(rs.absent).toEqual(['ip6']);
    const lines = rs.script.split('\n');
    // create-then-delete for both families first: one idempotent "replace" in the same transaction
    expect(lines.slice(0, 4)).toEqual([
      'table ip weft',
      'delete table ip weft',
      'table ip6 weft',
      'delete table ip6 weft',
    ]);
    expect(rs.script).toContain('type filter hook forward priority filter; policy accept;');
    // anti-spoofing in front of flannel's two accepts (README "Security"): with an encapsulating
    // backend no cluster source comes from the underlay; with host-gw/DirectRouting only to our subnet
    expect(rs.tables[0]?.chains.find((c) => c.name === 'forward')?.rules).toEqual([
      'iifname @weft_uplinks ip saddr 10.5.0.0/16 counter name "forward_dropped" drop',
      'ip saddr 10.5.0.0/16 accept',
      'ip daddr 10.5.0.0/16 accept',
    ]);
    const routed = buildRuleset({ ...flannel4, peersOnUplink: true });
    expect(routed.tables[0]?.chains.find((c) => c.name === 'forward')?.rules).toEqual([
      'iifname @weft_uplinks ip saddr 10.5.0.0/16 ip daddr != 10.5.52.0/24 counter name "forward_dropped" drop',
      'iifname @weft_uplinks ip saddr 10.5.52.0/24 counter name "forward_dropped" drop',
      'ip saddr 10.5.0.0/16 accept',
      'ip daddr 10.5.0.0/16 accept',
    ]);
    expect(rs.script).toMatch(
      /ip saddr 10\.5\.0\.0\/16 accept comment "weft forward 2 [0-9a-f]{8}"/,
    );
    expect(rs.script).toContain('type nat hook postrouting priority srcnat; policy accept;');
    const masq = rs.tables[0]?.chains.find((c) => c.name === 'postrtg')?.rules;
    expect(masq).toEqual([
      'meta mark & 0x4000 == 0x4000 return',
      'ip saddr 10.5.52.0/24 ip daddr 10.5.0.0/16 return',
      'ip saddr 10.5.0.0/16 ip daddr 10.5.52.0/24 return',
      'ip saddr != 10.5.0.0/16 ip daddr 10.5.52.0/24 return',
      'iifname != @weft_uplinks ip saddr 10.5.52.0/24 ip daddr != 224.0.0.0/4 masquerade fully-random',
      'ip saddr != 10.5.0.0/16 ip daddr 10.5.0.0/16 masquerade fully-random',
    ]);
  });

  it('uses ip6 matches and ff00::/8 for IPv6, plain masquerade when fully-random is off', () => {
    const rs = buildRuleset({ ...flannel4, ipv6: v6, fullyRandom: false, forwardRules: false });
    expect(rs.absent).toEqual([]);
    const t6 = rs.tables.find((t) => t.family === 'ip6');
    expect(t6?.chains.map((c) => c.name)).toEqual(['postrtg']);
    expect(t6?.chains[0]?.rules).toContain(
      'iifname != @weft_uplinks ip6 saddr fc00:0:0:3::/64 ip6 daddr != ff00::/8 masquerade',
    );
    expect(rs.script).not.toContain('fully-random');
    expect(rs.script).not.toContain('chain forward');
  });

  it('with neither masquerade nor forward rules both tables are removed', () => {
    const rs = buildRuleset({ ...flannel4, ipv6: v6, ipMasq: false, forwardRules: false });
    expect(rs.tables).toEqual([]);
    expect(rs.absent).toEqual(['ip', 'ip6']);
    expect(rs.script).toBe(
      'table ip weft\ndelete table ip weft\ntable ip6 weft\ndelete table ip6 weft\n',
    );
  });

  it('fingerprints the table so a ruleset for another subnet is stale', () => {
    const a = buildRuleset(flannel4);
    const b = buildRuleset({ ...flannel4, ipv4: { ...v4, subnet: '10.5.53.0/24' } });
    expect(a.tables[0]?.comment).toMatch(/^weft overlay rules [0-9a-f]{8}$/);
    expect(a.tables[0]?.chains[0]?.comments).not.toEqual(b.tables[0]?.chains[0]?.comments);
  });

  it('diffTable finds missing tables, chains, rules and foreign changes', () => {
    const t = buildRuleset(flannel4).tables[0]!;
    const listed = (): NftObject[] => [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'ip', name: 'weft', comment: t.comment } },
      { set: { name: 'weft_uplinks', type: 'ifname' } },
      { counter: { name: 'forward_dropped', packets: 0, bytes: 0 } },
      { chain: { name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } },
      { chain: { name: 'postrtg', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      ...t.chains.flatMap((c) =>
        c.comments.map((comment) => ({ rule: { chain: c.name, comment } })),
      ),
    ];
    expect(diffTable(t, listed())).toEqual([]);
    expect(diffTable(t, null)).toEqual(['table ip weft is missing']);
    const noRule = listed().filter(
      (o) => !String(o['rule']?.['comment']).startsWith('weft masq 3'),
    );
    expect(diffTable(t, noRule)[0]).toMatch(/chain postrtg has rules .* want/);
    const dropPolicy = listed().map((o) =>
      o['chain']?.['name'] === 'forward' ? { chain: { ...o['chain'], policy: 'drop' } } : o,
    );
    expect(diffTable(t, dropPolicy)).toEqual(['chain forward has been changed']);
    const extra = [...listed(), { rule: { chain: 'forward', comment: 'someone else' } }];
    expect(diffTable(t, extra)).toHaveLength(1);
    const stale = listed().map((o) =>
      o['rule']
        ? {
            rule: {
              ...o['rule'],
              comment: String(o['rule']['comment']).replace(/ \w+$/, ' 00000000'),
            },
          }
        : o,
    );
    expect(diffTable(t, stale)).toHaveLength(2);
  });
});

describe('peer allowlist rules', () => {
  const withEncap = {
    ipv4: v4,
    ipv6: v6,
    ipMasq: false,
    fullyRandom: true,
    forwardRules: true,
    encapPorts: [8472, 8472],
    uplinks: ['eth0'],
  };

  it('guards the encapsulation ports with the peer sets, elements and counters in the same transaction', () => {
    const rs = buildRuleset(
      withEncap,
      { v4: ['198.18.0.3', '198.18.0.2'], v6: ['fd18::2'] },
      { 'ip/encap_dropped': { packets: 12, bytes: 960 } },
    );
    const t4 = rs.tables.find((t) => t.family === 'ip')!;
    expect(t4.chains.map((c) => c.name)).toEqual(['input', 'forward']);
    expect(t4.chains[0]).toMatchObject({
      hook: 'input',
      prio: -10,
      rules: [
        'udp dport @weft_encap_ports ip saddr != @weft_peers4 counter name "encap_dropped" drop',
      ],
    });
    expect(t4.sets).toEqual([
      { name: 'weft_encap_ports', type: 'inet_service', elements: [8472] },
      { name: 'weft_peers4', type: 'ipv4_addr', elements: ['198.18.0.2', '198.18.0.3'] },
      { name: 'weft_uplinks', type: 'ifname', elements: ['eth0'] },
    ]);
    expect(rs.script).toContain(
      'set weft_peers4 { type ipv4_addr; elements = { 198.18.0.2, 198.18.0.3 }; }',
    );
    expect(rs.script).toContain('set weft_peers6 { type ipv6_addr; elements = { fd18::2 }; }');
    expect(rs.script).toContain('set weft_uplinks { type ifname; elements = { "eth0" }; }');
    expect(rs.script).toContain('counter encap_dropped { packets 12 bytes 960 }');
    expect(rs.script).toContain('type filter hook input priority filter - 10; policy accept;');
    // the set's contents are data, not part of the fingerprint
    const other = buildRuleset(withEncap, { v4: ['198.18.0.9'], v6: [] });
    expect(other.tables[0]!.chains[0]!.comments).toEqual(t4.chains[0]!.comments);
  });

  it('an empty peer set is declared without elements (closed, not open); host-gw has no input chain', () => {
    const rs = buildRuleset({ ...withEncap, ipv6: null });
    expect(rs.script).toContain('set weft_peers4 { type ipv4_addr; }');
    const hostGw = buildRuleset({ ...withEncap, encapPorts: [] });
    expect(hostGw.script).not.toContain('chain input');
    expect(hostGw.script).not.toContain('weft_peers');
  });

  it('peer updates are flush + add in one script, per table with an input chain', () => {
    const rs = buildRuleset(withEncap);
    expect(peerUpdateScript(rs, { v4: ['198.18.0.2', '198.18.0.2'], v6: [] })).toBe(
      'flush set ip weft weft_peers4\n' +
        'add element ip weft weft_peers4 { 198.18.0.2 }\n' +
        'flush set ip6 weft weft_peers6\n',
    );
    expect(
      peerUpdateScript(buildRuleset({ ...withEncap, encapPorts: [] }), { v4: ['1.2.3.4'], v6: [] }),
    ).toBe('');
  });

  it('diffTable compares set contents (unless asked not to) and counters; kernelState reads them back', () => {
    const t = buildRuleset({ ...withEncap, ipv6: null }, { v4: ['198.18.0.2'], v6: [] }).tables[0]!;
    const listed = (elem: unknown): NftObject[] => [
      ...t.chains.flatMap((c) => [
        { chain: { name: c.name, type: c.type, hook: c.hook, prio: c.prio, policy: 'accept' } },
        ...c.comments.map((comment) => ({ rule: { chain: c.name, comment } })),
      ]),
      { set: { name: 'weft_encap_ports', type: 'inet_service', elem: 8472 } },
      { set: { name: 'weft_peers4', type: 'ipv4_addr', elem } },
      { set: { name: 'weft_uplinks', type: 'ifname', elem: ['eth0'] } },
      { counter: { name: 'encap_dropped', packets: 3, bytes: 150 } },
      { counter: { name: 'forward_dropped', packets: 0, bytes: 0 } },
    ];
    expect(diffTable(t, listed('198.18.0.2'))).toEqual([]);
    expect(diffTable(t, listed(['198.18.0.2', '198.18.0.66']))).toEqual([
      'set weft_peers4 holds [198.18.0.2, 198.18.0.66], want [198.18.0.2]',
    ]);
    expect(diffTable(t, listed(undefined), false)).toEqual([]);
    expect(
      diffTable(
        t,
        listed('198.18.0.2').filter((o) => !o['counter']),
      ),
    ).toEqual(['counter encap_dropped is missing', 'counter forward_dropped is missing']);
    expect(kernelState({ ip: listed(['198.18.0.2', '198.18.0.66']), ip6: null })).toEqual({
      peers: { v4: ['198.18.0.2', '198.18.0.66'], v6: [] },
      counters: {
        'ip/encap_dropped': { packets: 3, bytes: 150 },
        'ip/forward_dropped': { packets: 0, bytes: 0 },
      },
    });
  });
});
