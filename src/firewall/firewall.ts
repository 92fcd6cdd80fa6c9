/**
 * weft's firewall manager: applies the ruleset (rules.ts) as one nft transaction, checks every
 * `--iptables-resync` seconds that the kernel still holds it, and re-applies it whole when someone
 * removed or changed a table, chain, rule, set or counter. Rules are never removed on shutdown: the
 * dataplane survives the daemon (docs/flannel-compat.md §11).
 *
 * The peer sets (the allowlist for encapsulated traffic) follow `setPeers`: replaced by flush + add in
 * one transaction, carried into every whole-table replacement, and never shrunk before the daemon has
 * seen a complete lease snapshot (a restart starts from what the kernel holds). All nft transactions of
 * one manager run one after another.
 */
import { WeftError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { sleep } from '../subnet/sleep.js';
import { ensureIptablesForward, type IptablesRunner } from './iptables-forward.js';
import type { NftObject, NftRunner } from './nft.js';
import {
  TABLE,
  buildRuleset,
  peerSetName,
  peerUpdateScript,
  type ExpectedTable,
  type PeerElements,
  type Ruleset,
  type RulesInput,
} from './rules.js';

/** A set's elements from `nft -j` (a lone element may be printed bare). */
function elementsOf(set: Readonly<Record<string, unknown>>): (string | number)[] {
  const raw = set['elem'];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.filter((e): e is string | number => typeof e === 'string' || typeof e === 'number');
}

/**
 * What differs between `expected` and the listed table (empty = in place). Pure. `elements`: also
 * compare the sets' contents (weftctl doctor, which cannot know the peers weftd saw, passes false).
 */
export function diffTable(
  expected: ExpectedTable,
  listed: readonly NftObject[] | null,
  elements = true,
): string[] {
  if (listed === null) return [`table ${expected.family} ${expected.name} is missing`];
  const problems: string[] = [];
  const chains = listed.flatMap((o) => (o['chain'] ? [o['chain']] : []));
  const rules = listed.flatMap((o) => (o['rule'] ? [o['rule']] : []));
  const sets = listed.flatMap((o) => (o['set'] ? [o['set']] : []));
  const counters = listed.flatMap((o) => (o['counter'] ? [o['counter']] : []));
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
  for (const s of expected.sets) {
    const got = sets.find((x) => x['name'] === s.name);
    if (!got) problems.push(`set ${s.name} is missing`);
    else if (got['type'] !== s.type) problems.push(`set ${s.name} has been changed`);
    else if (elements) {
      const have = elementsOf(got).map(String).sort();
      const want = s.elements.map(String).sort();
      if (JSON.stringify(have) !== JSON.stringify(want))
        problems.push(`set ${s.name} holds [${have.join(', ')}], want [${want.join(', ')}]`);
    }
  }
  for (const c of expected.counters)
    if (!counters.some((x) => x['name'] === c)) problems.push(`counter ${c} is missing`);
  return problems;
}

/** Peer addresses and counter values in weft's tables as listed (pure). */
export function kernelState(listed: Partial<Record<'ip' | 'ip6', readonly NftObject[] | null>>): {
  peers: PeerElements;
  counters: Record<string, { packets: number; bytes: number }>;
} {
  const peers = { v4: [] as string[], v6: [] as string[] };
  const counters: Record<string, { packets: number; bytes: number }> = {};
  for (const fam of ['ip', 'ip6'] as const) {
    for (const o of listed[fam] ?? []) {
      const set = o['set'];
      if (set && set['name'] === peerSetName(fam)) {
        const addrs = elementsOf(set).filter((e): e is string => typeof e === 'string');
        (fam === 'ip' ? peers.v4 : peers.v6).push(...addrs);
      }
      const c = o['counter'];
      if (c && typeof c['name'] === 'string') {
        const packets = Number(c['packets']);
        const bytes = Number(c['bytes']);
        // the same counter exists in both families' tables: keep them apart
        if (Number.isSafeInteger(packets) && Number.isSafeInteger(bytes))
          counters[`${fam}/${c['name']}`] = { packets, bytes };
      }
    }
  }
  return { peers, counters };
}

export interface FirewallMetricsSink {
  firewallApplied(reason: 'start' | 'resync'): void;
}

export class Firewall {
  private ruleset: Ruleset | null = null;
  private input: RulesInput | null = null;
  /** What the peer sets must hold. */
  private peers = { v4: new Set<string>(), v6: new Set<string>() };
  /** True once `peers` came from a complete lease snapshot (before that, nothing is removed). */
  private peersComplete = false;
  private serial: Promise<unknown> = Promise.resolve();
  private peerUpdateQueued = false;

  /** `iptables`: the forward-rules fallback for hosts whose iptables FORWARD policy drops. */
  constructor(
    private readonly nft: NftRunner,
    private readonly log: Logger,
    private readonly metrics?: FirewallMetricsSink,
    private readonly iptables?: IptablesRunner,
  ) {}

  /** Runs `fn` after everything queued before it: no two nft transactions of ours interleave. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private peerElements(): PeerElements {
    return { v4: [...this.peers.v4].sort(), v6: [...this.peers.v6].sort() };
  }

  /** Adds the forward rules to iptables where its FORWARD policy would drop overlay traffic. */
  private async ensureIptables(input: RulesInput): Promise<void> {
    if (!this.iptables || !input.forwardRules) return;
    for (const [family, f] of [
      [4, input.ipv4],
      [6, input.ipv6],
    ] as const) {
      if (f && (await ensureIptablesForward(this.iptables, family, f, input.uplinks ?? []))) {
        this.log.info('iptables FORWARD policy drops: added weft forward rules to iptables', {
          family,
          network: f.network,
        });
      }
    }
  }

  /** What the kernel's weft tables hold now (nothing when they are absent or unreadable). */
  private async readKernel(): Promise<ReturnType<typeof kernelState>> {
    const listed: Partial<Record<'ip' | 'ip6', readonly NftObject[] | null>> = {};
    for (const fam of ['ip', 'ip6'] as const) {
      try {
        listed[fam] = await this.nft.listTable(fam, TABLE);
      } catch {
        listed[fam] = null; // no nft, or unreadable: nothing to carry over
      }
    }
    return kernelState(listed);
  }

  /**
   * Builds the whole ruleset with the current peers and the kernel's counter values and applies it in
   * one transaction. Until a complete lease snapshot arrived, the peers already in the kernel's set are
   * kept (a restarted weftd never shrinks the allowlist before it knows who the peers are).
   */
  private async applyWhole(input: RulesInput): Promise<Ruleset> {
    const kernel = await this.readKernel();
    if (!this.peersComplete) {
      for (const a of kernel.peers.v4) this.peers.v4.add(a);
      for (const a of kernel.peers.v6) this.peers.v6.add(a);
    }
    const rs = buildRuleset(input, this.peerElements(), kernel.counters);
    await this.nft.apply(rs.script);
    this.ruleset = rs;
    this.input = input;
    return rs;
  }

  /** Builds and applies the ruleset for `input` (one transaction); rejects E_FIREWALL. */
  async apply(input: RulesInput): Promise<void> {
    await this.enqueue(async () => {
      let rs: Ruleset;
      try {
        rs = await this.applyWhole(input);
      } catch (err) {
        // nothing to install and no nft on this host: there is nothing of ours to remove either
        const missing = err instanceof WeftError && err.details?.['missing'] === true;
        if (!(missing && buildRuleset(input).tables.length === 0)) throw err;
        this.log.info('no firewall rules wanted and nft is not installed: skipping');
        return;
      }
      this.metrics?.firewallApplied('start');
      await this.ensureIptables(input);
      this.log.info('firewall rules applied', {
        tables: rs.tables.map(
          (t) => `${t.family} ${t.name}: ${t.chains.map((c) => c.name).join('+')}`,
        ),
        absent: rs.absent,
        peers: { v4: this.peers.v4.size, v6: this.peers.v6.size },
      });
    });
  }

  /**
   * The public addresses of the current peers. `complete`: the list is the whole truth (after the
   * lease snapshot); otherwise addresses are only added. The sets are replaced in one transaction
   * (flush + add), so no packet ever sees an empty or partial set; updates coalesce.
   */
  setPeers(peers: PeerElements, complete: boolean): Promise<void> {
    const same = (a: Set<string>, b: readonly string[]): boolean =>
      b.length === a.size && b.every((x) => a.has(x));
    const unchanged = complete
      ? this.peersComplete && same(this.peers.v4, peers.v4) && same(this.peers.v6, peers.v6)
      : peers.v4.every((x) => this.peers.v4.has(x)) && peers.v6.every((x) => this.peers.v6.has(x));
    if (unchanged) return this.serial.then(() => undefined); // e.g. a lease renewal
    if (complete) {
      this.peers = { v4: new Set(peers.v4), v6: new Set(peers.v6) };
      this.peersComplete = true;
    } else {
      for (const a of peers.v4) this.peers.v4.add(a);
      for (const a of peers.v6) this.peers.v6.add(a);
    }
    if (this.peerUpdateQueued) return this.serial.then(() => undefined);
    this.peerUpdateQueued = true;
    return this.enqueue(async () => {
      this.peerUpdateQueued = false;
      const input = this.input;
      if (!input || !this.ruleset) return; // apply() will put them in
      const rs = buildRuleset(input, this.peerElements());
      const script = peerUpdateScript(rs, this.peerElements());
      if (script === '') return;
      try {
        await this.nft.apply(script);
        this.ruleset = rs;
      } catch (err) {
        this.log.warn('updating the peer sets failed: re-applying the whole table', {
          error: describeError(err),
        });
        await this.applyWhole(input);
        this.metrics?.firewallApplied('resync');
      }
      this.log.debug('peer allowlist updated', {
        v4: this.peers.v4.size,
        v6: this.peers.v6.size,
        complete: this.peersComplete,
      });
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
  resyncOnce(): Promise<boolean> {
    return this.enqueue(async () => {
      const input = this.input;
      if (!this.ruleset || !input) return false;
      await this.ensureIptables(input);
      const problems = await this.check();
      if (problems.length === 0) return false;
      this.log.warn('firewall rules were changed by someone else: restoring them', { problems });
      await this.applyWhole(input);
      this.metrics?.firewallApplied('resync');
      return true;
    });
  }

  /** Packets and bytes the named counter counted, per family table (null: table or counter absent). */
  async counter(
    family: 'ip' | 'ip6',
    name: string,
  ): Promise<{ packets: number; bytes: number } | null> {
    const listed = await this.nft.listTable(family, TABLE);
    return kernelState({ [family]: listed }).counters[`${family}/${name}`] ?? null;
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
