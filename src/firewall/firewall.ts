/**
 * weft's firewall manager: applies the ruleset (rules.ts) as one nft transaction, checks every
 * `--iptables-resync` seconds that the kernel still holds it, and re-applies it whole when someone
 * removed or changed a table, chain or rule. Rules are never removed on shutdown: the dataplane
 * survives the daemon (flannel-compat.md §11).
 */
import { WeftError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { sleep } from '../subnet/sleep.js';
import { ensureIptablesForward, type IptablesRunner } from './iptables-forward.js';
import type { NftObject, NftRunner } from './nft.js';
import { TABLE, buildRuleset, type ExpectedTable, type Ruleset, type RulesInput } from './rules.js';

/** What differs between `expected` and the listed table (empty = in place). Pure. */
export function diffTable(expected: ExpectedTable, listed: readonly NftObject[] | null): string[] {
  if (listed === null) return [`table ${expected.family} ${expected.name} is missing`];
  const problems: string[] = [];
  const chains = listed.flatMap((o) => (o['chain'] ? [o['chain']] : []));
  const rules = listed.flatMap((o) => (o['rule'] ? [o['rule']] : []));
  for (const c of expected.chains) {
    const got = chains.find((x) => x['name'] === c.name);
    if (!got) {
      problems.push(`chain ${c.name} is missing`);
      continue;
    }
    if (
      got['type'] !== c.type ||
      got['hook'] !== c.hook ||
      got['prio'] !== c.prio ||
      got['policy'] !== 'accept'
    ) {
      problems.push(`chain ${c.name} has been changed`);
    }
    const comments = rules.filter((r) => r['chain'] === c.name).map((r) => r['comment']);
    if (JSON.stringify(comments) !== JSON.stringify(c.comments)) {
      problems.push(
        `chain ${c.name} has rules [${comments.join(', ')}], want [${c.comments.join(', ')}]`,
      );
    }
  }
  const extra = chains.filter((x) => !expected.chains.some((c) => c.name === x['name']));
  for (const x of extra) problems.push(`unexpected chain ${String(x['name'])}`);
  return problems;
}

export interface FirewallMetricsSink {
  firewallApplied(reason: 'start' | 'resync'): void;
}

export class Firewall {
  private ruleset: Ruleset | null = null;
  private input: RulesInput | null = null;

  /** `iptables`: the forward-rules fallback for hosts whose iptables FORWARD policy drops. */
  constructor(
    private readonly nft: NftRunner,
    private readonly log: Logger,
    private readonly metrics?: FirewallMetricsSink,
    private readonly iptables?: IptablesRunner,
  ) {}

  /** Adds the forward rules to iptables where its FORWARD policy would drop overlay traffic. */
  private async ensureIptables(input: RulesInput): Promise<void> {
    if (!this.iptables || !input.forwardRules) return;
    for (const [family, f] of [
      [4, input.ipv4],
      [6, input.ipv6],
    ] as const) {
      if (f && (await ensureIptablesForward(this.iptables, family, f.network))) {
        this.log.info('iptables FORWARD policy drops: added weft forward rules to iptables', {
          family,
          network: f.network,
        });
      }
    }
  }

  /** Builds and applies the ruleset for `input` (one transaction); rejects E_FIREWALL. */
  async apply(input: RulesInput): Promise<void> {
    const rs = buildRuleset(input);
    try {
      await this.nft.apply(rs.script);
    } catch (err) {
      // nothing to install and no nft on this host: there is nothing of ours to remove either
      const missing = err instanceof WeftError && err.details?.['missing'] === true;
      if (!(missing && rs.tables.length === 0)) throw err;
      this.log.info('no firewall rules wanted and nft is not installed: skipping');
      return;
    }
    this.ruleset = rs;
    this.input = input;
    this.metrics?.firewallApplied('start');
    await this.ensureIptables(input);
    this.log.info('firewall rules applied', {
      tables: rs.tables.map(
        (t) => `${t.family} ${t.name}: ${t.chains.map((c) => c.name).join('+')}`,
      ),
      absent: rs.absent,
    });
  }

  /** Problems with the rules in the kernel (empty = all in place). */
  async check(): Promise<string[]> {
    const rs = this.ruleset;
    if (!rs) return ['rules not applied yet'];
    const problems: string[] = [];
    for (const t of rs.tables) {
      problems.push(
        ...diffTable(t, await this.nft.listTable(t.family, t.name)).map((p) => `${t.family}: ${p}`),
      );
    }
    for (const fam of rs.absent) {
      if ((await this.nft.listTable(fam, TABLE)) !== null)
        problems.push(`${fam}: table ${TABLE} should be absent`);
    }
    return problems;
  }

  /** One resync step: re-applies the whole ruleset when `check` finds a problem. True if it did. */
  async resyncOnce(): Promise<boolean> {
    const rs = this.ruleset;
    if (!rs) return false;
    if (this.input) await this.ensureIptables(this.input);
    const problems = await this.check();
    if (problems.length === 0) return false;
    this.log.warn('firewall rules were changed by someone else: restoring them', { problems });
    await this.nft.apply(rs.script);
    this.metrics?.firewallApplied('resync');
    return true;
  }

  /** Checks every `intervalSec` until `signal` aborts; errors are logged (rate-limited by the caller). */
  async runResync(intervalSec: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(intervalSec * 1000, signal).catch(() => undefined); // aborted: the loop ends
      if (signal.aborted) return;
      try {
        await this.resyncOnce();
      } catch (err) {
        this.log.error('firewall resync failed', { error: describeError(err) });
      }
    }
  }
}
