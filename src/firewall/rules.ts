/**
 * The masquerade and forward rules of flannel (docs/flannel-compat.md §15) as an nftables ruleset in weft's
 * own tables `ip weft` and `ip6 weft`. Pure: builds the `nft -f` script (one atomic transaction that
 * replaces both tables whole) and the structure `check` compares the kernel against.
 *
 * One rule meaning for every mode (§18 item 10): the "do not masquerade traffic from outside the
 * network to our subnet" rule is iptables' rule 5 (`! -s N -d s RETURN`), not flannel-nft's variant.
 * N = cluster network, s = own subnet (network form).
 *
 * Beyond flannel (README "Security"): an input chain that drops encapsulated traffic (the backend's
 * UDP ports) from every address that holds no lease (the sets `weft_peers4` / `weft_peers6`), and
 * anti-spoofing drops (uplink) in front of the forward accepts; masquerade only for this host's subnet.
 * Set contents and counter values are data: they are carried into every replacement of the table.
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
  /** UDP ports peers send encapsulated traffic to (the backend's `encapPorts`; [] = no input chain). */
  readonly encapPorts?: readonly number[];
  /** The underlay interface(s) (weftd's uplink): cluster sources arriving there are suspect. */
  readonly uplinks?: readonly string[];
  /** Peers' pods' packets arrive unencapsulated on the uplink (host-gw, VXLAN DirectRouting). */
  readonly peersOnUplink?: boolean;
}

/** What weft's sets hold besides the inputs: the peers' public addresses, per family. */
export interface PeerElements {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** Counter values carried over when a table is replaced, keyed `<family>/<counter name>`. */
export type CounterValues = Readonly<Record<string, { packets: number; bytes: number }>>;

export interface ExpectedChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: 'input' | 'forward' | 'postrouting';
  /** Numeric priority as `nft -j` reports it (filter 0, srcnat 100, input chain -10). */
  readonly prio: number;
  /** nft statements, in order. */
  readonly rules: readonly string[];
  /** The comment on each rule, in order (what `check` compares). */
  readonly comments: readonly string[];
}

export interface ExpectedSet {
  readonly name: string;
  readonly type: 'ipv4_addr' | 'ipv6_addr' | 'inet_service' | 'ifname';
  /** The elements as `nft -j` lists them (addresses and names as strings, ports as numbers). */
  readonly elements: readonly (string | number)[];
}

export interface ExpectedTable {
  readonly family: 'ip' | 'ip6';
  readonly name: string;
  /** Carries a fingerprint of the whole table so a stale ruleset is recognised. */
  readonly comment: string;
  readonly chains: readonly ExpectedChain[];
  readonly sets: readonly ExpectedSet[];
  /** Named counters (packets and bytes dropped by the rule that names them). */
  readonly counters: readonly string[];
}

export interface Ruleset {
  /** Tables that must exist (empty when neither masquerade nor forward rules are wanted). */
  readonly tables: readonly ExpectedTable[];
  /** Families whose weft table must be absent. */
  readonly absent: readonly ('ip' | 'ip6')[];
  /** The `nft -f -` script: one transaction. */
  readonly script: string;
}

/** Set and counter names (README "Firewall rules"). */
export const SET_PORTS = 'weft_encap_ports';
export const SET_UPLINKS = 'weft_uplinks';
export const peerSetName = (fam: 'ip' | 'ip6'): string =>
  fam === 'ip' ? 'weft_peers4' : 'weft_peers6';
/** Encapsulated packets from addresses that hold no lease. */
export const COUNTER_ENCAP = 'encap_dropped';
/** Forwarded packets with a cluster source that did not come from where that source lives. */
export const COUNTER_SPOOF = 'forward_dropped';

/**
 * The peer allowlist: UDP to a backend's encapsulation port from an address outside the peer set is
 * dropped and counted. Stateless (no conntrack shortcut), so a removed peer stops at the set update.
 */
function inputChain(fam: 'ip' | 'ip6'): ExpectedChain {
  const rules = [
    `udp dport @${SET_PORTS} ${fam} saddr != @${peerSetName(fam)} counter name "${COUNTER_ENCAP}" drop`,
  ];
  return {
    name: 'input',
    type: 'filter',
    hook: 'input',
    prio: -10,
    rules,
    comments: rules.map((_, i) => `weft peers ${i + 1}`),
  };
}

/**
 * Flannel's two forward accepts, preceded by anti-spoofing drops for what arrives on the uplink (one
 * interface-name set lookup per forwarded packet; no route lookups, so the overlay data path pays
 * nothing measurable, see bench/firewall.ts): with encapsulating backends no cluster source ever comes
 * from the underlay; where peers' pods are routed over it (host-gw, DirectRouting) only towards this
 * host's subnet and never with this host's own subnet as source. So an underlay host can neither
 * inject pod-addressed traffic nor use the node as a relay.
 */
function forwardChain(
  fam: 'ip' | 'ip6',
  n: string,
  s: string,
  peersOnUplink: boolean,
): ExpectedChain {
  const drop = `counter name "${COUNTER_SPOOF}" drop`;
  const rules = [
    ...(peersOnUplink
      ? [
          `iifname @${SET_UPLINKS} ${fam} saddr ${n} ${fam} daddr != ${s} ${drop}`,
          `iifname @${SET_UPLINKS} ${fam} saddr ${s} ${drop}`,
        ]
      : [`iifname @${SET_UPLINKS} ${fam} saddr ${n} ${drop}`]),
    `${fam} saddr ${n} accept`,
    `${fam} daddr ${n} accept`,
  ];
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
    // only this host's containers (and the host itself) go out under its address; flannel has
    // `saddr <network>` here, which also hides injected traffic that came in on the uplink
    `iifname != @${SET_UPLINKS} ${fam} saddr ${s} ${fam} daddr != ${mcast} ${masq}`,
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

function tableFor(
  fam: 'ip' | 'ip6',
  f: FamilyRulesInput,
  input: RulesInput,
  peers: PeerElements,
): ExpectedTable | null {
  const chains: ExpectedChain[] = [];
  const ports = [...new Set(input.encapPorts ?? [])].sort((a, b) => a - b);
  if (ports.length > 0) chains.push(inputChain(fam));
  if (input.forwardRules)
    chains.push(forwardChain(fam, f.network, f.subnet, input.peersOnUplink ?? false));
  if (input.ipMasq) chains.push(masqChain(fam, f.network, f.subnet, input.fullyRandom));
  if (chains.length === 0) return null;
  // nft 1.0's JSON listing omits table comments, so the fingerprint of the whole table goes into every
  // rule comment: a table left from another subnet or flag set is then recognised as stale.
  const fingerprint = createHash('sha256').update(JSON.stringify(chains)).digest('hex').slice(0, 8);
  const stamped = chains.map((c) => ({
    ...c,
    comments: c.comments.map((m) => `${m} ${fingerprint}`),
  }));
  const sets: ExpectedSet[] = [];
  const counters: string[] = [];
  if (ports.length > 0) {
    const addrs = fam === 'ip' ? peers.v4 : peers.v6;
    sets.push(
      { name: SET_PORTS, type: 'inet_service', elements: ports },
      {
        name: peerSetName(fam),
        type: fam === 'ip' ? 'ipv4_addr' : 'ipv6_addr',
        elements: [...new Set(addrs)].sort(),
      },
    );
    counters.push(COUNTER_ENCAP);
  }
  sets.push({
    name: SET_UPLINKS,
    type: 'ifname',
    elements: [...new Set(input.uplinks ?? [])].sort(),
  });
  if (input.forwardRules) counters.push(COUNTER_SPOOF);
  return {
    family: fam,
    name: TABLE,
    comment: `weft overlay rules ${fingerprint}`,
    chains: stamped,
    sets,
    counters,
  };
}

const quoteElement = (e: string | number): string => (typeof e === 'number' ? String(e) : e);

/** `elements = { … }` for a set declaration or `add element` (ifnames quoted). */
export function renderElements(set: Pick<ExpectedSet, 'type' | 'elements'>): string {
  const items = set.elements.map((e) =>
    set.type === 'ifname' ? JSON.stringify(e) : quoteElement(e),
  );
  return `{ ${items.join(', ')} }`;
}

function renderTable(t: ExpectedTable, counters: CounterValues): string {
  const lines = [`table ${t.family} ${t.name} {`, `  comment "${t.comment}"`];
  for (const c of t.counters) {
    const v = counters[`${t.family}/${c}`];
    lines.push(`  counter ${c} {${v ? ` packets ${v.packets} bytes ${v.bytes}` : ''} }`);
  }
  for (const s of t.sets) {
    const elements = s.elements.length > 0 ? ` elements = ${renderElements(s)};` : '';
    lines.push(`  set ${s.name} { type ${s.type};${elements} }`);
  }
  for (const c of t.chains) {
    const prio = c.type === 'nat' ? 'srcnat' : c.hook === 'input' ? 'filter - 10' : 'filter';
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

/**
 * The one transaction that replaces the peer sets' contents (flush + add: packets see the old set or
 * the new one, never an empty one in between). Tables without an input chain are skipped.
 */
export function peerUpdateScript(rs: Ruleset, peers: PeerElements): string {
  const parts: string[] = [];
  for (const t of rs.tables) {
    const set = t.sets.find((s) => s.name === peerSetName(t.family));
    if (!set) continue;
    const addrs = [...new Set(t.family === 'ip' ? peers.v4 : peers.v6)].sort();
    parts.push(`flush set ${t.family} ${t.name} ${set.name}`);
    if (addrs.length > 0)
      parts.push(
        `add element ${t.family} ${t.name} ${set.name} ${renderElements({ type: set.type, elements: addrs })}`,
      );
  }
  return parts.length > 0 ? parts.join('\n') + '\n' : '';
}

/** The whole ruleset for the inputs; `script` replaces both weft tables in one transaction. */
export function buildRuleset(
  input: RulesInput,
  peers: PeerElements = { v4: [], v6: [] },
  counters: CounterValues = {},
): Ruleset {
  const tables: ExpectedTable[] = [];
  const absent: ('ip' | 'ip6')[] = [];
  for (const [fam, f] of [
    ['ip', input.ipv4],
    ['ip6', input.ipv6],
  ] as const) {
    const t = f ? tableFor(fam, f, input, peers) : null;
    if (t) tables.push(t);
    else absent.push(fam);
  }
  const parts: string[] = [];
  // `table X` creates the table if it is absent, so the following delete never fails: the pair makes
  // "replace the whole table" one idempotent step inside the same transaction.
  for (const fam of ['ip', 'ip6'] as const)
    parts.push(`table ${fam} ${TABLE}`, `delete table ${fam} ${TABLE}`);
  for (const t of tables) parts.push(renderTable(t, counters));
  return { tables, absent, script: parts.join('\n') + '\n' };
}
