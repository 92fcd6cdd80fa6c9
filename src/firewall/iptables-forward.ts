/**
 * The iptables fallback for the forward rules. An nft `accept` in weft's own table cannot override a
 * `drop` elsewhere: when the host's iptables `filter FORWARD` chain has policy DROP (Docker ≥ 1.13 sets
 * it), forwarded overlay traffic dies there. Exactly for that case weft adds forward accepts to
 * iptables too (whichever backend `iptables` is: nft or legacy), in its own chain `WEFT-FWD` jumped to
 * from the top of FORWARD, applied with one `iptables-restore --noflush` (atomic per table). Unlike
 * flannel's `-s N` / `-d N`, they are scoped like weft's nft forward chain (README "Firewall rules").
 * Nothing is done while the policy is ACCEPT and iptables is not installed.
 */
import { runCommand } from '../exec/run-command.js';
import { WeftError } from '../errors.js';

export const IPT_CHAIN = 'WEFT-FWD';
const COMMENT = 'weft forward';

export type IptFamily = 4 | 6;

export interface IptablesRunner {
  /** `iptables -w -S <chain>` output; '' when the chain does not exist; null without iptables. */
  list(family: IptFamily, chain: string): Promise<string | null>;
  /** `iptables-restore -w --noflush` with `script`. */
  restore(family: IptFamily, script: string): Promise<void>;
}

/** The exit code, and stdout (stderr when it failed). */
async function exec(argv: readonly string[], input: string | null) {
  const r = await runCommand(argv, { input });
  return { code: r.code, out: r.code === 0 ? r.stdout : r.stderr };
}

export function createIptablesRunner(opts: { netns?: string } = {}): IptablesRunner {
  const pre = opts.netns ? ['ip', 'netns', 'exec', opts.netns] : [];
  const bin = (f: IptFamily, restore: boolean): string =>
    `${f === 4 ? 'iptables' : 'ip6tables'}${restore ? '-restore' : ''}`;
  return {
    async list(family, chain) {
      const r = await exec([...pre, bin(family, false), '-w', '5', '-S', chain], null);
      if (r.code === 127) return null;
      if (r.code !== 0) {
        if (/No chain|does not exist/i.test(r.out)) return '';
        throw new WeftError(
          'E_FIREWALL',
          `${bin(family, false)} -S ${chain} failed: ${r.out.trim()}`,
          {
            retryable: true,
          },
        );
      }
      return r.out;
    },
    async restore(family, script) {
      const r = await exec([...pre, bin(family, true), '-w', '5', '--noflush'], script);
      if (r.code !== 0) {
        throw new WeftError(
          'E_FIREWALL',
          `${bin(family, true)} rejected weft's forward rules: ${r.out.trim()}`,
          {
            retryable: true,
            details: { script },
          },
        );
      }
    },
  };
}

/** What `-S FORWARD` says (pure). */
export function parseForward(listing: string): { dropPolicy: boolean; jumps: number } {
  const lines = listing.split('\n');
  return {
    dropPolicy: lines.some((l) => /^-P FORWARD (DROP|REJECT)\b/.test(l.trim())),
    jumps: lines.filter((l) => l.startsWith('-A FORWARD') && l.includes(`-j ${IPT_CHAIN}`)).length,
  };
}

/** The cluster network and own subnet of one family (what the rules need). */
export interface IptForwardScope {
  readonly network: string;
  readonly subnet: string;
}

/**
 * The rules of WEFT-FWD as `-S` prints them (pure), scoped like the nft forward chain: cluster sources
 * from anywhere but the uplink (containers, the overlay device), cluster sources from the uplink only
 * towards this host's subnet (host-gw / DirectRouting peers), and traffic from outside to the pods.
 * The nft chain's anti-spoofing drops apply on top (a drop in any table is final).
 */
export function wantedRules(scope: IptForwardScope, uplinks: readonly string[]): string[] {
  const { network: n, subnet: s } = scope;
  const tail = `-m comment --comment "${COMMENT}" -j ACCEPT`;
  const uplink = uplinks[0];
  return [
    `-A ${IPT_CHAIN} -s ${n}${uplink ? ` ! -i ${uplink}` : ''} ${tail}`,
    `-A ${IPT_CHAIN} -s ${n} -d ${s} ${tail}`,
    `-A ${IPT_CHAIN} ! -s ${n} -d ${n} ${tail}`,
  ];
}

/** The iptables-restore script (pure): chain (re)declared = flushed, its rules, one jump if missing. */
export function forwardScript(
  scope: IptForwardScope,
  uplinks: readonly string[],
  addJump: boolean,
): string {
  return [
    '*filter',
    `:${IPT_CHAIN} - [0:0]`,
    ...wantedRules(scope, uplinks),
    ...(addJump ? [`-I FORWARD 1 -m comment --comment "${COMMENT}" -j ${IPT_CHAIN}`] : []),
    'COMMIT',
    '',
  ].join('\n');
}

/**
 * Ensures the iptables forward rules for `scope` while FORWARD's policy drops (or our jump is already
 * there); does nothing on hosts whose FORWARD accepts and has never had our rules. True if it changed
 * something.
 */
export async function ensureIptablesForward(
  ipt: IptablesRunner,
  family: IptFamily,
  scope: IptForwardScope,
  uplinks: readonly string[],
): Promise<boolean> {
  const listing = await ipt.list(family, 'FORWARD');
  if (listing === null) return false;
  const { dropPolicy, jumps } = parseForward(listing);
  if (!dropPolicy && jumps === 0) return false;
  const want = wantedRules(scope, uplinks);
  if (jumps === 1) {
    const rules = (await ipt.list(family, IPT_CHAIN)) ?? '';
    const have = rules.split('\n').filter((l) => l.startsWith(`-A ${IPT_CHAIN} `));
    if (JSON.stringify(have) === JSON.stringify(want)) return false;
  }
  await ipt.restore(family, forwardScript(scope, uplinks, jumps === 0));
  return true;
}
