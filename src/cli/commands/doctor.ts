/**
 * `weftctl doctor`: gathers everything (etcd, clock, leases, subnet.env, weftd health, kernel, sysctls,
 * nft, peers, an underlay probe of every peer's public IP) and runs the checks of src/cli/doctor.ts.
 * Progress goes to stderr; exit 1 when any check fails.
 */
import { inBatches, sampleEtcdClock, withRegistry } from '../etcd-view.js';
import {
  doctorFailed,
  flannelChecks,
  probeTargets,
  programmedPeers,
  runChecks,
  usesIpv6Underlay,
} from '../doctor.js';
import type { Check, UnderlayProbe } from '../doctor-check.js';
import { planHostDevices } from '../doctor-kernel.js';
import { findFlannelLeftovers } from '../../migration/flannel-leftovers.js';
import { EXIT } from '../exit-codes.js';
import { wgDoctorChecks } from '../wireguard-view.js';
import { gatherLocal, peerRowsOf } from '../gather.js';
import { readHealth, readNft } from '../host-view.js';
import { runPing } from './ping.js';
import { paint, sanitize, type Style } from '../render.js';
import type { LinkInfo } from '../../netlink/index.js';
import type { CommandContext, CommandOutput } from './context.js';

const MARK: Record<Check['status'], [string, 'ok' | 'warn' | 'bad' | 'dim']> = {
  pass: ['ok  ', 'ok'],
  warn: ['WARN', 'warn'],
  fail: ['FAIL', 'bad'],
  skip: ['skip', 'dim'],
};

/** How many checks failed, warned, passed and were skipped (the JSON summary's key order). */
function countChecks(checks: readonly Check[]): Record<Check['status'], number> {
  const n = { fail: 0, warn: 0, pass: 0, skip: 0 };
  for (const c of checks) n[c.status]++;
  return n;
}

function renderChecks(style: Style, checks: readonly Check[]): string {
  let out = '';
  for (const c of checks) {
    const [label, tone] = MARK[c.status];
    out += `[${paint(style, tone, label)}] ${sanitize(c.message)}\n`;
    for (const f of c.fixes) out += `       fix: ${sanitize(f)}\n`;
  }
  const n = countChecks(checks);
  out += `\n${n.fail} failed, ${n.warn} warnings, ${n.pass} passed, ${n.skip} skipped\n`;
  return out;
}

/** The uplink weftd's device plan runs over (null: not found, or the config is invalid). */
function uplinkOf(...args: Parameters<typeof planHostDevices>): LinkInfo | null {
  try {
    return planHostDevices(...args).uplink;
  } catch {
    return null; // the config check reports it
  }
}

/**
 * Pings run at once. A peer that does not answer costs its ping 1.2 s (2 echoes, 1 s wait): 8 at a
 * time made doctor on a cut-off host with 200 peers take 31 s, and half an hour at 10,000.
 */
const PROBES_AT_ONCE = 64;

/** Pings each target's public IP (PROBES_AT_ONCE at a time); a reachable IPv4 one also with
 *  `mtu`-sized packets and DF set (the uplink MTU; null: not probed). */
function probeUnderlay(
  ctx: CommandContext,
  targets: { lease: string; publicIp: string }[],
  mtu: number | null,
): Promise<UnderlayProbe[]> {
  let done = 0;
  return inBatches(targets, PROBES_AT_ONCE, async (t): Promise<UnderlayProbe> => {
    try {
      const r = await runPing(t.publicIp, 2, 0.2, null);
      let mtuProbe: UnderlayProbe['mtuProbe'] = null;
      if (r.received > 0 && mtu !== null && !t.publicIp.includes(':')) {
        const big = await runPing(t.publicIp, 2, 0.2, null, {
          size: mtu - 28,
          dontFragment: true,
        }).catch(() => null);
        mtuProbe = { size: mtu, ok: (big?.received ?? 0) > 0 };
      }
      return { ...t, reachable: r.received > 0, rttMs: r.replies[0] ?? null, mtuProbe };
    } catch {
      return { ...t, reachable: false, rttMs: null };
    } finally {
      ctx.progress(`probing peers' public IPs: ${++done}/${targets.length}`);
    }
  });
}

export async function doctorCommand(ctx: CommandContext): Promise<CommandOutput> {
  const o = ctx.options;
  return withRegistry(o, async (reg) => {
    ctx.progress('reading etcd, subnet.env, weftd health and the kernel');
    const [local, clock, health, nft, flannel] = await Promise.all([
      gatherLocal(reg, o),
      sampleEtcdClock(o),
      readHealth(o.healthzUrl, o.timeoutMs),
      readNft(o.timeoutMs),
      findFlannelLeftovers().catch(() => null),
    ]);
    const { view, host, hostError, own, live } = local;
    const peers = peerRowsOf(local);
    // only the peers weftd programs: a refused lease is reported as refused, never probed
    const programmed = programmedPeers(view.leases, own?.lease ?? null, peers);
    const ipv6Underlay = usesIpv6Underlay(view.config, own?.lease ?? null);
    const targets = o.noProbe ? [] : probeTargets(programmed, peers, ipv6Underlay);
    const uplink = host && view.config ? uplinkOf(view.config, host, own?.lease ?? null) : null;
    const probes = await probeUnderlay(ctx, targets, uplink?.mtu ?? null);
    const checks = runChecks({
      ...view, // etcd, config, records, subnet.env
      clock: view.etcd.reachable ? clock : null,
      configError: view.etcd.reachable ? view.configError : null,
      own,
      host,
      hostError,
      nft,
      health,
      peers,
      probes,
    });
    checks.unshift(...flannelChecks(flannel)); // docs/migration-from-flannel.md
    checks.push(...wgDoctorChecks(view.config, programmed, live));
    const failed = doctorFailed(checks);
    return {
      exitCode: failed ? (view.etcd.reachable ? EXIT.problem : EXIT.etcd) : EXIT.ok,
      json: { ok: !failed, own: own?.key ?? null, summary: countChecks(checks), checks },
      human: renderChecks(ctx.style, checks),
    };
  });
}
