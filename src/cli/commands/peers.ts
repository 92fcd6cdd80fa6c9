/**
 * `weftctl peers`: every other host's lease as this kernel sees it — route, neighbour and FDB entry —
 * with a verdict (ok / missing / stale / wrong-mac / wrong-public-ip / wrong-route / refused /
 * skipped). A refused peer is one weftd will not program (a hostile or broken lease), shown with weftd's
 * reason. Exit 1 when any peer is not ok (skipped peers of another backend do not count).
 */
import { WeftError } from '../../errors.js';
import { openRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { findOwnRecord, gatherCluster, gatherHost, peerRowsOf } from '../gather.js';
import { isFault, type PeerRow } from '../peers.js';
import { sanitize, table, toneOf, type Style } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';
import { readWgLive, wgPeerStatus, type WgLiveResult, type WgPeerLive } from '../wireguard-view.js';
import type { Lease } from '../../lease/lease.js';

/** WireGuard rows: per peer the endpoint, the last handshake, bytes in/out (from weftd's engine). */
export function wgTable(
  style: Style,
  rows: readonly { subnet: string; wireguard: WgPeerLive | null }[],
): string {
  const now = Date.now() / 1000;
  return table(
    style,
    ['subnet', 'public key', 'endpoint', 'last handshake', 'received', 'sent'],
    rows.map((r) => {
      const w = r.wireguard;
      return [
        r.subnet,
        w ? w.publicKey : '-',
        w?.endpoint ?? '-',
        !w
          ? { text: 'no such peer in weftd', tone: 'bad' as const }
          : w.lastHandshakeSec > 0
            ? {
                text: `${Math.max(0, Math.round(now - w.lastHandshakeSec))} s ago`,
                tone: 'ok' as const,
              }
            : { text: 'never', tone: 'bad' as const },
        w ? `${w.rxBytes} B` : '-',
        w ? `${w.txBytes} B` : '-',
      ];
    }),
  );
}

/** Each peer row with its live WireGuard state (null when weftd has no such peer). */
export function withWireguard<R extends { lease: string | null; subnet: string }>(
  rows: readonly R[],
  leases: readonly Lease[],
  live: WgLiveResult,
): (R & { wireguard: WgPeerLive | null })[] {
  return rows.map((r) => {
    const lease = leases.find((l) => l.key === r.lease);
    return { ...r, wireguard: lease && live.ok ? wgPeerStatus(lease, live.live) : null };
  });
}

export function peersTable(style: Style, rows: readonly PeerRow[]): string {
  let out = table(
    style,
    ['subnet', 'public ip', 'vtep mac', 'route', 'neighbour', 'fdb', 'verdict'],
    rows.map((r) => [
      r.subnet,
      r.publicIp ?? '-',
      r.vtepMac ?? '-',
      r.route ?? '-',
      r.neigh ?? '-',
      r.fdb ?? '-',
      { text: r.verdict, tone: toneOf(r.verdict) },
    ]),
  );
  const faulty = rows.filter((r) => r.problems.length > 0);
  for (const r of faulty) {
    out += `\n${sanitize(r.subnet)} (${r.verdict}):\n`;
    for (const p of r.problems) out += `  - ${sanitize(p)}\n`;
    for (const f of r.fixes) out += `    fix: ${sanitize(f)}\n`;
  }
  return out;
}

export async function peersCommand(ctx: CommandContext): Promise<CommandOutput> {
  const reg = openRegistry(ctx.options);
  try {
    const view = await gatherCluster(reg, ctx.options.subnetFile);
    if (!view.etcd.reachable) throw new WeftError('E_ETCD_UNAVAILABLE', `etcd: ${view.etcd.error}`);
    if (!view.config)
      throw new WeftError(
        view.configMissing ? 'E_CONFIG_NOT_FOUND' : 'E_CONFIG_INVALID',
        `network config ${view.configError}`,
      );
    const { host, hostError } = await gatherHost(view.config, ctx.options.timeoutMs);
    if (!host) throw new WeftError('E_NETLINK', `cannot inspect this host: ${hostError}`);
    const own = findOwnRecord(view, host.addrs);
    const live: WgLiveResult | null =
      view.config.backend.type !== 'wireguard'
        ? null
        : ctx.options.healthzUrl
          ? await readWgLive(ctx.options.healthzUrl, ctx.options.timeoutMs)
          : { ok: false, error: 'not read (no --healthz-url / --healthz-port)' };
    // the engine's peers are the claim order's incumbents, as in weftd (src/cli/peers.ts)
    const rows = peerRowsOf(view, host, own, live?.ok ? live.live.programmed : undefined);
    const ok = !rows.some(isFault);
    if (live) {
      const wg = withWireguard(rows, view.leases, live);
      return {
        exitCode: ok ? EXIT.ok : EXIT.problem,
        json: {
          ok,
          own: own?.key ?? null,
          backend: 'wireguard',
          peers: wg,
          wireguardError: live.ok ? null : live.error,
        },
        human:
          (own ? '' : 'warning: no lease for this host found; every lease is shown as a peer\n') +
          peersTable(ctx.style, rows) +
          '\n' +
          (live.ok ? wgTable(ctx.style, wg) : `WireGuard sessions: ${live.error}\n`),
      };
    }
    return {
      exitCode: ok ? EXIT.ok : EXIT.problem,
      json: { ok, own: own?.key ?? null, backend: view.config.backend.type, peers: rows },
      human:
        (own ? '' : 'warning: no lease for this host found; every lease is shown as a peer\n') +
        peersTable(ctx.style, rows),
    };
  } finally {
    await reg.close();
  }
}
