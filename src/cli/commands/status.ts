/**
 * `weftctl status`: this host at a glance — its lease (subnet, expiry, public IP), the backend and its
 * device, how many peers the kernel has right, weftd's health and readiness, etcd reachability and
 * latency, and subnet.env; the backend and network shown are what weftd runs, flagged when the config in
 * etcd changed since weftd read it. Exit 0 when all of that is fine, 4 when etcd is unreachable, 1
 * otherwise.
 */
import { canonicalCidr } from '../../ip/index.js';
import { backendDrift, runningConfig } from '../config-drift.js';
import { withRegistry } from '../etcd-view.js';
import { EXIT } from '../exit-codes.js';
import { gatherLocal, peerRowsOf } from '../gather.js';
import { readHealth } from '../host-view.js';
import { overlayDeviceNames } from '../overlay-devices.js';
import { unprogrammed } from '../doctor.js';
import { isFault } from '../peers.js';
import { formatDuration, keyValues, sanitize, type Cell } from '../render.js';
import type { CommandContext, CommandOutput } from './context.js';
import { leaseJson } from './leases.js';
import { handshakeAge, wgPeerStatus } from '../wireguard-view.js';

export async function statusCommand(ctx: CommandContext): Promise<CommandOutput> {
  const o = ctx.options;
  return withRegistry(o, async (reg) => {
    const [local, health] = await Promise.all([
      gatherLocal(reg, o),
      readHealth(o.healthzUrl, o.timeoutMs),
    ]);
    const { view, host, hostError, own, live } = local;
    const problems: string[] = [];
    if (!view.etcd.reachable) problems.push(`etcd unreachable: ${view.etcd.error}`);
    if (view.etcd.reachable && view.configError) problems.push(view.configError);
    if (view.etcd.reachable && !own) problems.push('no lease in etcd for this host');
    if (hostError) problems.push(`cannot inspect this host: ${hostError}`);
    if (health && health.healthz !== 200) problems.push(`weftd not answering on ${health.url}`);
    else if (health && health.readyz !== 200) problems.push('weftd not ready');
    const env = view.subnetEnv;
    const p = env.parsed;
    if (env.text === null) problems.push(env.error ?? 'no subnet.env');
    else if (own?.lease?.subnet && p?.subnet !== canonicalCidr(own.lease.subnet))
      problems.push(`subnet.env says ${p?.subnet ?? 'nothing'}, the lease is ${own.lease.subnet}`);
    // What weftd runs (its lease's backend, subnet.env's network) against the config in etcd, which
    // weftd reads only at start: the same finding as doctor's `config-applied` and `subnet.env`.
    const running = runningConfig(own?.lease ?? null, p?.network ?? null);
    const drift = backendDrift(view.config, running);
    if (drift) problems.push(drift);
    if (view.config?.network && running.network && running.network !== view.config.network)
      problems.push(
        `weftd runs network ${running.network} (subnet.env), the network config in etcd says ${view.config.network}: restart weftd to apply the config`,
      );
    const devices = overlayDeviceNames(view.config).map((name) => {
      const l = host?.kernel.links.find((x) => x.name === name) ?? null;
      if (host && !l) problems.push(`device ${name} missing`);
      else if (l && !l.up) problems.push(`device ${name} down`);
      return {
        name,
        exists: l !== null,
        up: l?.up ?? false,
        mtu: l?.mtu ?? null,
        mac: l?.mac ?? null,
        vni: l?.vxlan?.vni ?? null,
        port: l?.vxlan?.port ?? null,
      };
    });
    const rows = peerRowsOf(local);
    const peerLeases = view.leases.filter((l) => l.key !== own?.key).length;
    const faults = rows.filter(isFault).length;
    // A refused lease is bad data in etcd, not a wrong kernel entry: weftd programs nothing for it.
    const refused = rows.filter((r) => r.verdict === 'refused').length;
    const wrong = faults - refused;
    if (wrong > 0)
      problems.push(`${wrong} peer entr${wrong === 1 ? 'y' : 'ies'} wrong (weftctl peers)`);
    if (refused > 0)
      problems.push(
        `${refused} peer lease${refused === 1 ? '' : 's'} refused by weftd: invalid or conflicting (weftctl peers)`,
      );
    const ok = problems.length === 0;
    const cfg = view.config;
    const json = {
      ok,
      lease: own ? leaseJson(own) : null,
      etcd: { endpoints: o.etcdEndpoints, prefix: o.etcdPrefix, ...view.etcd },
      config: cfg && {
        network: cfg.network,
        ipv6Network: cfg.ipv6Network,
        backend: cfg.backend.type,
      },
      configError: view.configError,
      running,
      devices,
      peers: { leases: peerLeases, ok: rows.filter((r) => r.verdict === 'ok').length, faults },
      weftd: health,
      subnetEnv: {
        path: env.path,
        exists: env.text !== null,
        network: p?.network ?? null,
        subnet: p?.subnet ?? null,
        ipv6Network: p?.ipv6Network ?? null,
        subnet6: p?.subnet6 ?? null,
        mtu: env.mtu,
        ipMasq: env.ipMasq,
        error: env.error,
      },
      problems,
    };
    const s = ctx.style;
    const good = (t: string): Cell => ({ text: t, tone: 'ok' });
    const bad = (t: string): Cell => ({ text: t, tone: 'bad' });
    const l = own?.lease ?? null;
    const pairs: [string, Cell][] = [
      [
        'lease',
        l
          ? `${[l.subnet, l.subnet6].filter(Boolean).join(' ')} (${own!.reserved ? 'reserved, never expires' : `expires in ${formatDuration(own!.expiresIn)}`})`
          : bad('none found'),
      ],
      ['public ip', l ? [l.attrs.publicIp, l.attrs.publicIpv6].filter(Boolean).join(' ') : '-'],
      [
        'backend',
        !view.config
          ? bad(view.configError ?? 'unknown')
          : drift
            ? bad(`weftd runs ${running.backend}; config in etcd: ${view.config.backend.type}`)
            : view.config.backend.type,
      ],
      ...devices.map((d): [string, Cell] => [
        `device ${d.name}`,
        !d.exists
          ? bad('missing')
          : d.up
            ? good(
                `up, mtu ${d.mtu}` +
                  (d.mac ? `, mac ${d.mac}` : '') +
                  (d.vni !== null ? `, vni ${d.vni}` : '') +
                  (d.port !== null ? `, port ${d.port}` : ''),
              )
            : bad(`down, mtu ${d.mtu}`),
      ]),
      [
        'peers',
        faults
          ? bad(
              `${peerLeases} leases, ${[wrong ? `${wrong} wrong in the kernel` : 'kernel entries ok', refused ? `${refused} refused` : ''].filter(Boolean).join(', ')}`,
            )
          : good(`${peerLeases} leases, kernel entries ok`),
      ],
      [
        'weftd',
        !health
          ? 'not checked (--healthz-url)'
          : health.healthz !== 200
            ? bad(`not answering on ${health.url} (${health.error ?? health.healthz})`)
            : health.readyz === 200
              ? good(`healthy, ready (${health.url})`)
              : bad(`healthy, NOT ready (${health.url})`),
      ],
      [
        'etcd',
        view.etcd.reachable
          ? good(`reachable, ${view.etcd.latencyMs} ms (${o.etcdEndpoints.join(',')})`)
          : bad(`unreachable: ${view.etcd.error}`),
      ],
      [
        'subnet.env',
        env.text === null
          ? bad(env.error ?? 'missing')
          : `${env.path}: ${env.text.trim().split('\n').join(' ')}`,
      ],
    ];
    if (view.config?.backend.type === 'wireguard') {
      // per peer: endpoint, last handshake, bytes in/out, from weftd's engine (its /metrics); none
      // for a lease weftd refuses (the engine's peer with its key, if any, is another lease's)
      const refusedLeases = unprogrammed(rows.filter((r) => r.verdict !== 'skipped'));
      const wgPeers = view.leases
        .filter((l) => l.key !== own?.key)
        .map((l) => ({
          lease: l.key,
          subnet: l.subnet ?? l.subnet6,
          refused: refusedLeases.has(l.key),
          wireguard: live?.ok && !refusedLeases.has(l.key) ? wgPeerStatus(l, live.live) : null,
        }));
      (json as Record<string, unknown>)['wireguard'] = {
        error: live === null ? 'not read (no --healthz-url)' : live.ok ? null : live.error,
        peers: wgPeers,
      };
      for (const p of wgPeers) {
        const w = p.wireguard;
        pairs.push([
          `wireguard ${p.subnet ?? p.lease}`,
          p.refused
            ? bad('refused by weftd (weftctl peers says why)')
            : !live?.ok
              ? 'not read (weftd /metrics)'
              : !w
                ? bad('no such peer in weftd')
                : w.lastHandshakeSec > 0
                  ? good(
                      `handshake ${handshakeAge(w)} s ago, endpoint ${w.endpoint ?? '-'}, received ${w.rxBytes} B, sent ${w.txBytes} B`,
                    )
                  : bad(`no handshake yet, endpoint ${w.endpoint ?? '-'}, sent ${w.txBytes} B`),
        ]);
      }
    }
    const human =
      keyValues(s, pairs) +
      (problems.length ? `\n${problems.map((p) => `! ${sanitize(p)}`).join('\n')}\n` : '');
    return { exitCode: ok ? EXIT.ok : view.etcd.reachable ? EXIT.problem : EXIT.etcd, json, human };
  });
}
