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
    const rows = peerRowsOf(view, host, own);
    const ok = !rows.some(isFault);
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
