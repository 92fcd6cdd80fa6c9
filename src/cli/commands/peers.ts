/**
 * `weftctl peers`: every other host's lease as this kernel sees it — route, neighbour and FDB entry —
 * with a verdict (ok / missing / stale / wrong-mac / wrong-public-ip / wrong-route / refused /
 * skipped). A refused peer is one weftd will not program (a hostile or broken lease), shown with weftd's
 * reason. Exit 1 when any peer is not ok (skipped peers of another backend do not count).
 */
import { WeftError } from '../../errors.js';
import { withRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { gatherLocal, peerRowsOf, requireConfig } from '../gather.js';
import { isFault, type PeerRow } from '../peers.js';
import { overlayDevices } from '../overlay-devices.js';
import { sanitize, table, toneOf, type Style } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';
import {
  handshakeAge,
  wgPeerStatus,
  type WgLiveResult,
  type WgPeerLive,
} from '../wireguard-view.js';

/** WireGuard rows: per peer the endpoint, the last handshake, bytes in/out (from weftd's engine). */
function wgTable(
  style: Style,
  rows: readonly { subnet: string; wireguard: WgPeerLive | null }[],
): string {
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
            ? { text: `${handshakeAge(w)} s ago`, tone: 'ok' as const }
            : { text: 'never', tone: 'bad' as const },
        w ? `${w.rxBytes} B` : '-',
        w ? `${w.txBytes} B` : '-',
      ];
    }),
  );
}

function peersTable(style: Style, rows: readonly PeerRow[]): string {
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
  const o = ctx.options;
  return withRegistry(o, async (reg) => {
    const local = await gatherLocal(reg, o);
    const { view, host, hostError, own } = local;
    const config = requireConfig(view);
    if (!host) throw new WeftError('E_NETLINK', `cannot inspect this host: ${hostError}`);
    const live: WgLiveResult | null =
      config.backend.type === 'wireguard' && !o.healthzUrl
        ? { ok: false, error: 'not read (no --healthz-url / --healthz-port)' }
        : local.live;
    const rows = peerRowsOf(local);
    const ok = !rows.some(isFault);
    const devices = overlayDevices(config); // each row's session is its family's device's
    // each row with its live WireGuard state (null when weftd has no such peer). A refused row has
    // none: the engine's peer with its key, if any, is another lease's (one key, two leases).
    const wg =
      live &&
      rows.map((r) => {
        const lease = view.leases.find((l) => l.key === r.lease);
        const shown = lease && live.ok && r.verdict !== 'refused';
        return {
          ...r,
          wireguard: shown ? wgPeerStatus(lease, live.live, devices[r.family]) : null,
        };
      });
    return {
      exitCode: ok ? EXIT.ok : EXIT.problem,
      json: {
        ok,
        own: own?.key ?? null,
        backend: config.backend.type,
        peers: wg ?? rows,
        ...(live ? { wireguardError: live.ok ? null : live.error } : {}),
      },
      human:
        (own ? '' : 'warning: no lease for this host found; every lease is shown as a peer\n') +
        peersTable(ctx.style, rows) +
        (!wg
          ? ''
          : live?.ok
            ? `\n${wgTable(ctx.style, wg)}`
            : `\nWireGuard sessions: ${live!.error}\n`),
    };
  });
}
