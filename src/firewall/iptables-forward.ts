/**
 * The iptables fallback for the forward rules. An nft `accept` in weft's own table cannot override a
 * `drop` elsewhere: when the host's iptables `filter FORWARD` chain has policy DROP (Docker ≥ 1.13 sets
 * it), forwarded overlay traffic dies there. Exactly for that case weft adds flannel's forward rules to
 * iptables too (whichever backend `iptables` is: nft or legacy), in its own chain `WEFT-FWD` jumped to
 * from the top of FORWARD, applied with one `iptables-restore --noflush` (atomic per table).
 * Nothing is done while the policy is ACCEPT and iptables is not installed.
 */
import { execFile } from 'node:child_process';
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

function exec(
  argv: readonly string[],
  input: string | null,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const [cmd = 'iptables', ...args] = argv;
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        return resolve({ code: 127, out: '' });
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        out: err ? stderr : stdout,
      });
    });
    child.stdin?.on('error', () => undefined);
    if (input !== null) child.stdin?.end(input);
  });
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

/** The iptables-restore script (pure): chain (re)declared = flushed, two rules, one jump if missing. */
export function forwardScript(network: string, addJump: boolean): string {
  return [
    '*filter',
    `:${IPT_CHAIN} - [0:0]`,
    `-A ${IPT_CHAIN} -s ${network} -m comment --comment "${COMMENT}" -j ACCEPT`,
    `-A ${IPT_CHAIN} -d ${network} -m comment --comment "${COMMENT}" -j ACCEPT`,
    ...(addJump ? [`-I FORWARD 1 -m comment --comment "${COMMENT}" -j ${IPT_CHAIN}`] : []),
    'COMMIT',
    '',
  ].join('\n');
}

/** The rules of WEFT-FWD as `-S` prints them, for the resync check (pure). */
function wantedRules(network: string): string[] {
  return [
    `-A ${IPT_CHAIN} -s ${network} -m comment --comment "${COMMENT}" -j ACCEPT`,
    `-A ${IPT_CHAIN} -d ${network} -m comment --comment "${COMMENT}" -j ACCEPT`,
  ];
}

/**
 * Ensures the iptables forward rules for `network` while FORWARD's policy drops (or our jump is already
 * there); does nothing on hosts whose FORWARD accepts and has never had our rules. True if it changed
 * something.
 */
export async function ensureIptablesForward(
  ipt: IptablesRunner,
  family: IptFamily,
  network: string,
): Promise<boolean> {
  const listing = await ipt.list(family, 'FORWARD');
  if (listing === null) return false;
  const { dropPolicy, jumps } = parseForward(listing);
  if (!dropPolicy && jumps === 0) return false;
  if (jumps === 1) {
    const rules = (await ipt.list(family, IPT_CHAIN)) ?? '';
    if (wantedRules(network).every((r) => rules.includes(r))) return false;
  }
  await ipt.restore(family, forwardScript(network, jumps === 0));
  return true;
}
