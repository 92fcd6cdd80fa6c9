/**
 * doctor's firewall checks (pure): the iptables FORWARD policy and weftd's WEFT-FWD jump, other nft
 * forward chains that drop, and weft's nft tables compared with weftd's own rule builder and diff.
 */
import { FAMILIES } from '../backend/family.js';
import { COUNTER_ENCAP, buildRuleset } from '../firewall/rules.js';
import { diffTable, kernelState } from '../firewall/firewall.js';
import { IPT_CHAIN, parseForward } from '../firewall/iptables-forward.js';
import { canonicalCidr } from '../ip/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { RESTART, fail, pass, warn, skip, type Check, type DoctorInput } from './doctor-check.js';
import type { NftState } from './host-view.js';

/**
 * The FORWARD policy (docs/pitfalls.md B4): iptables `filter FORWARD` with policy DROP (Docker) is fine only
 * with weftd's jump to WEFT-FWD accepting the network; other nft tables with a drop policy on the
 * forward hook are reported too (an nft accept cannot override them).
 */
export function forwardPolicyChecks(nft: NftState, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const covered = new Set<string>();
  for (const { family: fam, network: networkOf } of FAMILIES) {
    const network = networkOf(config);
    const ipt = nft.iptables?.[fam];
    if (!network || !ipt || ipt.forward === null) continue;
    const cmd = fam === 4 ? 'iptables' : 'ip6tables';
    covered.add(`${fam === 4 ? 'ip' : 'ip6'} filter FORWARD`);
    const { dropPolicy, jumps } = parseForward(ipt.forward);
    const id = `forward-policy:${cmd}`;
    if (!dropPolicy) {
      out.push(pass(id, `${cmd} FORWARD policy accepts`));
      continue;
    }
    const fixes = [
      RESTART,
      `${cmd} -I FORWARD 1 -s ${network} -j ACCEPT`,
      `${cmd} -I FORWARD 1 -d ${network} -j ACCEPT`,
    ];
    const weft = ipt.weft ?? '';
    // weftd's rules are scoped (`-s N ! -i <uplink>`, `! -s N -d N`): any accept of each direction
    const accepts = (dir: 's' | 'd'): boolean =>
      weft
        .split('\n')
        .some(
          (l) =>
            l.startsWith(`-A ${IPT_CHAIN} `) &&
            new RegExp(`(^| )-${dir} ${network.replace(/[.]/g, '\\.')} `).test(l) &&
            l.trim().endsWith('-j ACCEPT'),
        );
    const drop = `${cmd} FORWARD policy is DROP`;
    if (jumps === 0) {
      const msg = `${drop} and nothing jumps to ${IPT_CHAIN}: forwarded overlay traffic of ${network} is dropped`;
      out.push(fail(id, msg, fixes));
    } else if (!accepts('s') || !accepts('d'))
      out.push(fail(id, `${drop} and ${IPT_CHAIN} does not accept ${network} both ways`, fixes));
    else out.push(pass(id, `${drop}; weft's ${IPT_CHAIN} accepts ${network}`));
  }
  for (const c of nft.forwardDrop) {
    if (covered.has(c)) continue;
    const msg = `nft chain ${c} drops forwarded packets by default: weft's accept rules cannot override another table's drop`;
    const fix = `nft list chain ${c}   # add accept rules for ${config.network ?? config.ipv6Network} there`;
    out.push(warn(`forward-policy:${c}`, msg, [fix]));
  }
  return out;
}

export function firewallChecks(i: DoctorInput, config: NetworkConfig): Check[] {
  const nft = i.nft;
  if (!nft) return [skip('firewall', 'firewall not checked')];
  if (nft.error && nft.weft4 === null)
    return [warn('firewall', `cannot read nftables: ${nft.error}`, ['nft list ruleset'])];
  const out: Check[] = [];
  out.push(...forwardPolicyChecks(nft, config));
  const own = i.own?.lease ?? null;
  for (const [fam, table, network, subnet] of [
    ['ip', nft.weft4, config.enableIPv4 ? config.network : null, own?.subnet ?? null],
    ['ip6', nft.weft6, config.enableIPv6 ? config.ipv6Network : null, own?.subnet6 ?? null],
  ] as const) {
    if (!network || !subnet) continue;
    const masq = i.subnetEnv.ipMasq ?? false;
    // every backend but host-gw receives encapsulated traffic: weftd guards its ports with the peer
    // allowlist (the ports and peers are set contents, which doctor does not compare)
    const encapPorts = config.backend.type === 'host-gw' ? [] : [1];
    let best: string[] | null = null;
    for (const forwardRules of [true, false])
      for (const peersOnUplink of [false, true])
        for (const fullyRandom of [true, false]) {
          const rs = buildRuleset({
            ipv4: fam === 'ip' ? { network, subnet: canonicalCidr(subnet) } : null,
            ipv6: fam === 'ip6' ? { network, subnet: canonicalCidr(subnet) } : null,
            ipMasq: masq,
            fullyRandom,
            forwardRules,
            encapPorts,
            peersOnUplink,
          });
          const t = rs.tables.find((x) => x.family === fam);
          const problems = t
            ? diffTable(t, table, false)
            : table === null
              ? []
              : ['unexpected table'];
          if (problems.length === 0) best = [];
          else if (best === null && forwardRules) best = problems;
        }
    const id = `rules:${fam}`;
    const fixes = [RESTART, `nft list table ${fam} weft`];
    if (table === null)
      out.push(
        fail(
          id,
          encapPorts.length > 0
            ? `table ${fam} weft is missing: no peer allowlist, anyone on the underlay can send encapsulated packets into ${network}`
            : `table ${fam} weft is missing: no forward${masq ? ' or masquerade' : ''} rules for ${network} (fine only if weftd runs with --iptables-forward-rules=false${masq ? '' : ' and without --ip-masq'})`,
          fixes,
        ),
      );
    else if (best && best.length > 0)
      out.push(fail(id, `weft's ${fam} rules are not in place: ${best.join('; ')}`, fixes));
    else {
      const k = kernelState({ [fam]: table });
      const peers = (fam === 'ip' ? k.peers.v4 : k.peers.v6).length;
      const dropped = k.counters[`${fam}/${COUNTER_ENCAP}`];
      const allowlist =
        encapPorts.length > 0
          ? `; peer allowlist: ${peers} address${peers === 1 ? '' : 'es'}, ${dropped?.packets ?? 0} encapsulated packets from others dropped`
          : '';
      const how = masq ? ' (with masquerade)' : '';
      out.push(pass(id, `weft's ${fam} rules in place${how}${allowlist}`));
    }
  }
  return out;
}
