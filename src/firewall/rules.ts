/**
 * The masquerade and forward rules of flannel (flannel-compat.md §15) as an nftables ruleset in weft's
 * own tables `ip weft` and `ip6 weft`. Pure: builds the `nft -f` script (one atomic transaction that
 * replaces both tables whole) and the structure `check` compares the kernel against.
 *
 * One rule meaning for every mode (§18 item 10): the "do not masquerade traffic from outside the
 * network to our subnet" rule is iptables' rule 5 (`! -s N -d s RETURN`), not flannel-nft's variant.
 * N = cluster network, s = own subnet (network form).
 */
import { createHash } from 'node:crypto';

export const TABLE = 'weft';

export interface FamilyRulesInput {
  /** Cluster network, e.g. '10.5.0.0/16'. */
  readonly network: string;
  /** Own subnet, network form, e.g. '10.5.52.0/24'. */
  readonly subnet: string;
}

export interface RulesInput {
  readonly ipv4: FamilyRulesInput | null;
  readonly ipv6: FamilyRulesInput | null;
  readonly ipMasq: boolean;
  readonly fullyRandom: boolean;
  readonly forwardRules: boolean;
}

export interface ExpectedChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: 'forward' | 'postrouting';
  /** Numeric priority as `nft -j` reports it (filter 0, srcnat 100). */
  readonly prio: number;
  /** nft statements, in order. */
  readonly rules: readonly string[];
  /** The comment on each rule, in order (what `check` compares). */
  readonly comments: readonly string[];
}

export interface ExpectedTable {
  readonly family: 'ip' | 'ip6';
  readonly name: string;
  /** Carries a fingerprint of the whole table so a stale ruleset is recognised. */
  readonly comment: string;
  readonly chains: readonly ExpectedChain[];
}

export interface Ruleset {
  /** Tables that must exist (empty when neither masquerade nor forward rules are wanted). */
  readonly tables: readonly ExpectedTable[];
  /** Families whose weft table must be absent. */
  readonly absent: readonly ('ip' | 'ip6')[];
  /** The `nft -f -` script: one transaction. */
  readonly script: string;
}

function forwardChain(fam: 'ip' | 'ip6', n: string): ExpectedChain {
  const rules = [`${fam} saddr ${n} accept`, `${fam} daddr ${n} accept`];
  return {
    name: 'forward',
    type: 'filter',
    hook: 'forward',
    prio: 0,
    rules,
    comments: rules.map((_, i) => `weft forward ${i + 1}`),
  };
}

function masqChain(fam: 'ip' | 'ip6', n: string, s: string, fullyRandom: boolean): ExpectedChain {
  const mcast = fam === 'ip' ? '224.0.0.0/4' : 'ff00::/8';
  const masq = fullyRandom ? 'masquerade fully-random' : 'masquerade';
  const rules = [
    // kube-proxy's mark: its own masquerade decision stands
    'meta mark & 0x4000 == 0x4000 return',
    `${fam} saddr ${s} ${fam} daddr ${n} return`,
    `${fam} saddr ${n} ${fam} daddr ${s} return`,
    `${fam} saddr != ${n} ${fam} daddr ${s} return`,
    `${fam} saddr ${n} ${fam} daddr != ${mcast} ${masq}`,
    `${fam} saddr != ${n} ${fam} daddr ${n} ${masq}`,
  ];
  return {
    name: 'postrtg',
    type: 'nat',
    hook: 'postrouting',
    prio: 100,
    rules,
    comments: rules.map((_, i) => `weft masq ${i + 1}`),
  };
}

function tableFor(fam: 'ip' | 'ip6', f: FamilyRulesInput, input: RulesInput): ExpectedTable | null {
  const chains: ExpectedChain[] = [];
  if (input.forwardRules) chains.push(forwardChain(fam, f.network));
  if (input.ipMasq) chains.push(masqChain(fam, f.network, f.subnet, input.fullyRandom));
  if (chains.length === 0) return null;
  // nft 1.0's JSON listing omits table comments, so the fingerprint of the whole table goes into every
  // rule comment: a table left from another subnet or flag set is then recognised as stale.
  const fingerprint = createHash('sha256').update(JSON.stringify(chains)).digest('hex').slice(0, 8);
  const stamped = chains.map((c) => ({
    ...c,
    comments: c.comments.map((m) => `${m} ${fingerprint}`),
  }));
  return {
    family: fam,
    name: TABLE,
    comment: `weft overlay rules ${fingerprint}`,
    chains: stamped,
  };
}

function renderTable(t: ExpectedTable): string {
  const lines = [`table ${t.family} ${t.name} {`, `  comment "${t.comment}"`];
  for (const c of t.chains) {
    const prio = c.type === 'nat' ? 'srcnat' : 'filter';
    lines.push(
      `  chain ${c.name} {`,
      `    type ${c.type} hook ${c.hook} priority ${prio}; policy accept;`,
    );
    c.rules.forEach((r, i) => lines.push(`    ${r} comment "${c.comments[i] ?? ''}"`));
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n');
}

/** The whole ruleset for the inputs; `script` replaces both weft tables in one transaction. */
export function buildRuleset(input: RulesInput): Ruleset {
  const tables: ExpectedTable[] = [];
  const absent: ('ip' | 'ip6')[] = [];
  for (const [fam, f] of [
    ['ip', input.ipv4],
    ['ip6', input.ipv6],
  ] as const) {
    const t = f ? tableFor(fam, f, input) : null;
    if (t) tables.push(t);
    else absent.push(fam);
  }
  const parts: string[] = [];
  // `table X` creates the table if it is absent, so the following delete never fails: the pair makes
  // "replace the whole table" one idempotent step inside the same transaction.
  for (const fam of ['ip', 'ip6'] as const)
    parts.push(`table ${fam} ${TABLE}`, `delete table ${fam} ${TABLE}`);
  for (const t of tables) parts.push(renderTable(t));
  return { tables, absent, script: parts.join('\n') + '\n' };
}
