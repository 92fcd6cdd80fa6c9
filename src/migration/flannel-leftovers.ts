/**
 * flannel's leftovers on a host being migrated to weft (docs/migration-from-flannel.md): its devices
 * (`flannel.<VNI>` VXLAN — VNI 1 and port 8472, the same as weft's device, so the kernel refuses weft's
 * — `flannel-v6.<VNI>`, the UDP backend's `flannel0` TUN, `flannel-wg*`), its iptables chains
 * (`FLANNEL-FWD`, `FLANNEL-POSTRTG`, with the jumps to them from FORWARD/POSTROUTING; older flannel's rules
 * straight in POSTROUTING/FORWARD, by flannel's rule comments) and its nftables
 * tables (`flannel-ipv4`/`flannel-ipv6`). weftd refuses to start while they exist (exit 8, naming the
 * command below); `weftctl cleanup --flannel` shows them and removes them with `--yes`.
 * Parsing is pure; reading and removing go through a command runner (ip, iptables-save, nft).
 */
import { runCommand as run } from '../exec/run-command.js';
import { WeftError } from '../errors.js';

/** The command an operator runs to remove what this module finds. */
export const CLEANUP_COMMAND = 'weftctl cleanup --flannel --yes';

export interface FlannelLink {
  readonly name: string;
  readonly kind: string;
  readonly vni: number | null;
  readonly port: number | null;
}

export interface FlannelChain {
  readonly family: 4 | 6;
  readonly table: string;
  readonly chain: string;
  /** Rules in the chain. */
  readonly rules: number;
  /** Rules elsewhere that jump to it, as iptables-save prints them (`-A FORWARD … -j FLANNEL-FWD`). */
  readonly jumps: readonly string[];
}

/**
 * A rule flannel before its FLANNEL-* chains (v0.14 and older) wrote straight into a built-in chain
 * (`-A POSTROUTING … --comment "flanneld masq" -j MASQUERADE`, `-A FORWARD … --comment "flanneld
 * forward" -j ACCEPT`): recognised by flannel's comment, removed rule by rule.
 */
export interface FlannelRule {
  readonly family: 4 | 6;
  readonly table: string;
  /** As iptables-save prints it (`-A POSTROUTING … -j RETURN`). */
  readonly rule: string;
}

export interface FlannelNftTable {
  readonly family: string;
  readonly name: string;
}

export interface FlannelLeftovers {
  readonly links: readonly FlannelLink[];
  readonly chains: readonly FlannelChain[];
  /** Absent in leftovers recorded before weft looked for them (treated as none). */
  readonly rules?: readonly FlannelRule[];
  readonly nftTables: readonly FlannelNftTable[];
}

export function hasLeftovers(l: FlannelLeftovers): boolean {
  return l.links.length + l.chains.length + (l.rules?.length ?? 0) + l.nftTables.length > 0;
}

const FLANNEL_LINK = /^flannel(\.\d+|-v6\.\d+|0|-wg|-wg-v6)$/;

/** flannel's devices from `ip -j -d link show` output (hostile: any shape is tolerated). */
export function parseLinks(json: string): FlannelLink[] {
  let list: unknown;
  try {
    list = JSON.parse(json || '[]');
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  const out: FlannelLink[] = [];
  for (const l of list as Record<string, unknown>[]) {
    const name = typeof l?.['ifname'] === 'string' ? l['ifname'] : '';
    if (!FLANNEL_LINK.test(name)) continue;
    const info = (l['linkinfo'] ?? {}) as Record<string, unknown>;
    const data = (info['info_data'] ?? {}) as Record<string, unknown>;
    const kind = typeof info['info_kind'] === 'string' ? info['info_kind'] : 'unknown';
    out.push({
      name,
      kind,
      vni: typeof data['id'] === 'number' ? data['id'] : null,
      port: typeof data['port'] === 'number' ? data['port'] : null,
    });
  }
  return out;
}

/** flannel's chains (FLANNEL-*) and the rules jumping to them, from iptables-save output. */
export function parseIptablesSave(text: string, family: 4 | 6): FlannelChain[] {
  const out: FlannelChain[] = [];
  let table = '';
  const chains = new Map<string, { rules: number; jumps: string[] }>();
  const flush = (): void => {
    for (const [chain, v] of chains) out.push({ family, table, chain, ...v });
    chains.clear();
  };
  const lines = text.split('\n');
  // first pass per table: chain declarations; jumps and rules are counted as they come
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      flush();
      table = line.slice(1);
    } else if (line.startsWith(':FLANNEL-')) {
      const name = line.slice(1).split(/\s/)[0]!;
      if (!chains.has(name)) chains.set(name, { rules: 0, jumps: [] });
    } else if (line.startsWith('-A ')) {
      const words = line.split(/\s+/);
      const chain = words[1] ?? '';
      const j = words.indexOf('-j');
      const target = j >= 0 ? (words[j + 1] ?? '') : '';
      if (chain.startsWith('FLANNEL-')) {
        const c = chains.get(chain) ?? { rules: 0, jumps: [] };
        c.rules++;
        chains.set(chain, c);
      } else if (target.startsWith('FLANNEL-')) {
        const c = chains.get(target) ?? { rules: 0, jumps: [] };
        c.jumps.push(line);
        chains.set(target, c);
      }
    } else if (line === 'COMMIT') {
      flush();
    }
  }
  flush();
  return out;
}

/**
 * The tables flannel's nftables mode creates, by family: `ip flannel-ipv4` and `ip6 flannel-ipv6`, no
 * others. Any other table, also one whose name merely starts with `flannel`, is an operator's and is
 * neither reported (weftd would refuse to start, exit 8) nor deleted by `weftctl cleanup --flannel`.
 */
const FLANNEL_NFT_TABLES: ReadonlyMap<string, string> = new Map([
  ['ip', 'flannel-ipv4'],
  ['ip6', 'flannel-ipv6'],
]);

/** The comments flannel puts on every iptables rule it writes. */
const FLANNEL_COMMENTS: ReadonlySet<string> = new Set(['flanneld masq', 'flanneld forward']);

/**
 * Rules of older flannel versions outside its FLANNEL-* chains, from iptables-save output: a rule in
 * another chain carrying flannel's comment that is not a jump to a FLANNEL-* chain (those are counted
 * with their chain by parseIptablesSave). Any other rule, also one naming flannel's network, is left.
 */
export function parseLooseRules(text: string, family: 4 | 6): FlannelRule[] {
  const out: FlannelRule[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    if (!line.startsWith('-A ') || !line.includes('flanneld ')) continue;
    const words = splitRule(line);
    if ((words[1] ?? '').startsWith('FLANNEL-')) continue;
    const j = words.indexOf('-j');
    if (j >= 0 && (words[j + 1] ?? '').startsWith('FLANNEL-')) continue;
    const c = words.indexOf('--comment');
    if (c >= 0 && FLANNEL_COMMENTS.has(words[c + 1] ?? '')) out.push({ family, table, rule: line });
  }
  return out;
}

/** flannel's nftables tables (its nftables mode) from `nft -j list tables`. */
export function parseNftTables(json: string): FlannelNftTable[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json || '{}');
  } catch {
    return [];
  }
  const items = (doc as { nftables?: unknown })?.nftables;
  if (!Array.isArray(items)) return [];
  const out: FlannelNftTable[] = [];
  for (const it of items as Record<string, unknown>[]) {
    const t = it?.['table'] as Record<string, unknown> | undefined;
    if (
      t &&
      typeof t['family'] === 'string' &&
      typeof t['name'] === 'string' &&
      FLANNEL_NFT_TABLES.get(t['family']) === t['name']
    ) {
      out.push({ family: t['family'], name: t['name'] });
    }
  }
  return out;
}

/** Splits an iptables-save rule into argv words (double quotes as iptables-save writes them). */
export function splitRule(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) {
    words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  }
  return words;
}

/** The commands that remove the leftovers, in a safe order (jumps, then chains; devices; tables). */
export function cleanupCommands(l: FlannelLeftovers): string[][] {
  const cmds: string[][] = [];
  for (const c of l.chains) {
    const bin = c.family === 4 ? 'iptables' : 'ip6tables';
    for (const j of c.jumps) {
      const w = splitRule(j); // -A CHAIN args…
      cmds.push([bin, '-w', '-t', c.table, '-D', ...w.slice(1)]);
    }
  }
  for (const r of l.rules ?? []) {
    const bin = r.family === 4 ? 'iptables' : 'ip6tables';
    cmds.push([bin, '-w', '-t', r.table, '-D', ...splitRule(r.rule).slice(1)]);
  }
  for (const c of l.chains) {
    const bin = c.family === 4 ? 'iptables' : 'ip6tables';
    cmds.push([bin, '-w', '-t', c.table, '-F', c.chain]);
    cmds.push([bin, '-w', '-t', c.table, '-X', c.chain]);
  }
  for (const k of l.links) cmds.push(['ip', 'link', 'delete', k.name]);
  for (const t of l.nftTables) cmds.push(['nft', 'delete', 'table', t.family, t.name]);
  return cmds;
}

/** One line per leftover, for the operator. */
export function describeLeftovers(l: FlannelLeftovers): string[] {
  const lines: string[] = [];
  for (const k of l.links) {
    const extra =
      k.kind === 'vxlan'
        ? ` (VXLAN VNI ${k.vni ?? '?'}, UDP port ${k.port ?? '?'})`
        : ` (${k.kind})`;
    lines.push(`device ${k.name}${extra}`);
  }
  for (const c of l.chains) {
    lines.push(
      `${c.family === 4 ? 'iptables' : 'ip6tables'} chain ${c.chain} in table ${c.table} ` +
        `(${c.rules} rules, ${c.jumps.length} jumps to it)`,
    );
  }
  for (const r of l.rules ?? [])
    lines.push(`${r.family === 4 ? 'iptables' : 'ip6tables'} rule in table ${r.table}: ${r.rule}`);
  for (const t of l.nftTables) lines.push(`nftables table ${t.family} ${t.name}`);
  return lines;
}

export type CommandRunner = (
  cmd: string,
  args: readonly string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

export const runCommand: CommandRunner = (cmd, args) =>
  run([cmd, ...args], { timeoutMs: 15_000, maxBuffer: 32 << 20 });

/** Reads the leftovers of this host (network namespace); a missing tool reads as nothing found. */
export async function findFlannelLeftovers(
  run: CommandRunner = runCommand,
): Promise<FlannelLeftovers> {
  const [links, v4, v6, nft] = await Promise.all([
    run('ip', ['-j', '-d', 'link', 'show']),
    run('iptables-save', []),
    run('ip6tables-save', []),
    run('nft', ['-j', 'list', 'tables']),
  ]);
  return {
    links: links.code === 0 ? parseLinks(links.stdout) : [],
    chains: [
      ...(v4.code === 0 ? parseIptablesSave(v4.stdout, 4) : []),
      ...(v6.code === 0 ? parseIptablesSave(v6.stdout, 6) : []),
    ],
    rules: [
      ...(v4.code === 0 ? parseLooseRules(v4.stdout, 4) : []),
      ...(v6.code === 0 ? parseLooseRules(v6.stdout, 6) : []),
    ],
    nftTables: nft.code === 0 ? parseNftTables(nft.stdout) : [],
  };
}

/**
 * weftd's start-up check: throws E_FLANNEL_LEFTOVERS (exit 8) naming every leftover and the command
 * that removes them. Nothing has been programmed at that point. Older flannel's loose rules alone
 * (FlannelRule) do not stop weftd — hosts migrated before weft looked for them run with them — and are
 * only named through `warn`, with the same command.
 */
export async function refuseFlannelLeftovers(
  run: CommandRunner = runCommand,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): Promise<void> {
  const found = await findFlannelLeftovers(run);
  if (!hasLeftovers(found)) return;
  if (found.links.length + found.chains.length + found.nftTables.length === 0) {
    warn(
      `this host still has rules of an older flannel: run \`${CLEANUP_COMMAND}\` to remove them`,
      {
        leftovers: describeLeftovers(found),
      },
    );
    return;
  }
  throw new WeftError(
    'E_FLANNEL_LEFTOVERS',
    `this host still has flannel's dataplane: ${describeLeftovers(found).join('; ')}. ` +
      `Stop flanneld for good (systemctl disable --now flanneld), then run \`${CLEANUP_COMMAND}\` ` +
      '(without --yes it only shows what it removes) and start weftd again; weftd keeps the same ' +
      'subnet (docs/migration-from-flannel.md)',
    { details: { leftovers: found } },
  );
}
