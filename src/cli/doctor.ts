/**
 * `weftctl doctor`: the checklist flannel users run by hand (docs/pitfalls.md §5), as pure checks over the
 * facts weftctl gathered. Each check passes, warns or fails, names what it saw, and for every problem
 * gives the command that fixes it. Exit 1 when any check fails (warnings alone exit 0). This file: etcd,
 * clock, config, lease, subnet.env, weftd health, peers, the underlay and flannel's leftovers; the
 * kernel and firewall checks live in doctor-kernel.ts and doctor-firewall.ts.
 */
import {
  CLEANUP_COMMAND,
  describeLeftovers,
  hasLeftovers,
  type FlannelLeftovers,
} from '../migration/flannel-leftovers.js';
import { parseUdpConfig } from '../backend-udp/config.js';
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { parseWireguardConfig } from '../backend-wireguard/config.js';
import { canonicalCidr } from '../ip/index.js';
import { backendDrift, runningConfig } from './config-drift.js';
import { RESTART, fail, pass, warn, skip, type Check, type DoctorInput } from './doctor-check.js';
import { firewallChecks } from './doctor-firewall.js';
import { deviceChecks, sysctlChecks } from './doctor-kernel.js';
import type { Lease } from '../lease/lease.js';
import type { LeaseRecord } from './etcd-view.js';
import { isFault, type PeerRow } from './peers.js';
import { formatDuration } from './render.js';
import { wgLayoutOf } from './peer-planner.js';
import type { NetworkConfig } from '../subnet/manager.js';

/**
 * Leases weftd programs nothing for here: every row of theirs is refused (its planner's reason) or of
 * another backend. doctor reports them once, as refused, and does not probe, count or check them as
 * peers.
 */
export function unprogrammed(peers: readonly PeerRow[]): Set<string> {
  const planned = (p: PeerRow): boolean => p.verdict !== 'refused' && p.verdict !== 'skipped';
  const live = new Set(peers.filter(planned).map((p) => p.lease));
  return new Set(peers.flatMap((p) => (p.lease !== null && !live.has(p.lease) ? [p.lease] : [])));
}

/** Every other host's lease weftd programs here: doctor probes them (IPv4) and checks their sessions. */
export function programmedPeers(
  leases: readonly Lease[],
  own: Lease | null,
  peers: readonly PeerRow[],
): Lease[] {
  const skip = unprogrammed(peers);
  return leases.filter((l) => l.key !== own?.key && !skip.has(l.key));
}

/**
 * Whether the backend carries the IPv6 family over an IPv6 underlay, to each peer's PublicIPv6: vxlan
 * (its `-v6` device) and host-gw (routes via it) do, wireguard when its layout has an IPv6-underlay
 * device (Mode separate or ipv6, or auto without an IPv4 address), udp never (IPv4 underlay only).
 */
export function usesIpv6Underlay(config: NetworkConfig | null, own: Lease | null): boolean {
  if (!config?.enableIPv6 || config.ipv6Network === null) return false;
  const type = config.backend.type;
  if (type === 'vxlan' || type === 'host-gw') return true;
  if (type !== 'wireguard') return false;
  try {
    return wgLayoutOf(parseWireguardConfig(config.backend.raw), config, own).some(
      (d) => d.family === 6,
    );
  } catch {
    return false; // an invalid backend section is reported by the config check
  }
}

/**
 * The public IPs doctor probes on the underlay: of programmedPeers, each IPv4 public IP, and with
 * `ipv6Underlay` each PublicIPv6 whose IPv6 row (`peers`) weftd programs. Before, only the IPv4 one
 * was probed, so an IPv6 underlay that dropped everything passed doctor while every IPv6 container
 * path across hosts was down.
 */
export function probeTargets(
  programmed: readonly Lease[],
  peers: readonly PeerRow[] = [],
  ipv6Underlay = false,
): { lease: string; publicIp: string }[] {
  const out = programmed
    .filter((l) => l.attrs.publicIp !== '0.0.0.0')
    .map((l) => ({ lease: l.key, publicIp: l.attrs.publicIp }));
  if (!ipv6Underlay) return out;
  const keys = new Set(programmed.map((l) => l.key));
  const seen = new Set<string>();
  for (const p of peers) {
    if (p.family !== 6 || p.lease === null || !keys.has(p.lease) || p.publicIp === null) continue;
    if (p.verdict === 'refused' || p.verdict === 'skipped') continue;
    const id = `${p.lease}|${p.publicIp}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ lease: p.lease, publicIp: p.publicIp });
  }
  return out;
}

function etcdChecks(i: DoctorInput): Check[] {
  const { reachable, latencyMs, error } = i.etcd;
  const skew = i.clock?.skewSeconds ?? null; // null also without a clock sample
  const off = `this clock is ${skew} s off etcd's`;
  const checks = [
    !reachable
      ? fail('etcd', `etcd is unreachable: ${error ?? 'no answer'}`, [
          'etcdctl --endpoints=<your --etcd-endpoints> endpoint health',
          'check --etcd-endpoints, the TLS files and the etcd firewall',
        ])
      : (latencyMs ?? 0) > 500
        ? warn('etcd', `etcd answers slowly (${latencyMs} ms)`, [
            'etcdctl endpoint status -w table',
          ])
        : pass('etcd', `etcd reachable (${latencyMs} ms)`),
    skew === null
      ? skip('clock', `clock skew vs etcd unknown${i.clock?.error ? ` (${i.clock.error})` : ''}`)
      : Math.abs(skew) > 300
        ? fail('clock', off, ['timedatectl set-ntp true', 'chronyc makestep'])
        : Math.abs(skew) > 2
          ? warn('clock', `${off} (lease expiry times shown here are off too)`, [
              'chronyc makestep',
            ])
          : pass('clock', `clock within ${Math.max(1, Math.abs(skew))} s of etcd`),
  ];
  const c = i.config;
  if (i.configError !== null)
    checks.push(
      fail('config', i.configError, ['weftctl config get', "weftctl config set '<json>'"]),
    );
  else if (c)
    checks.push(
      pass('config', `network config valid (${c.network ?? c.ipv6Network}, ${c.backend.type})`),
    );
  return checks;
}

function leaseChecks(i: DoctorInput): Check[] {
  const out: Check[] = [];
  const env = i.subnetEnv;
  const own = i.own?.lease ?? null;
  if (!i.etcd.reachable) return [skip('lease', 'lease not checked: etcd unreachable')];
  const expires = i.own?.expiresIn ?? null;
  const envSays = env.parsed?.subnet ? ` (subnet.env says ${env.parsed.subnet})` : '';
  if (!own) out.push(fail('lease', `no lease in etcd for this host${envSays}`, [RESTART]));
  else if (!i.own!.reserved && expires !== null && expires < 300) {
    const fixes = ['journalctl -u weftd | grep -i renew', RESTART];
    out.push(warn('lease', `lease ${own.key} expires in ${expires} s and was not renewed`, fixes));
  } else {
    const when = i.own!.reserved ? 'reserved' : `expires in ${formatDuration(expires)}`;
    out.push(pass('lease', `lease ${own.key} (${when})`));
  }
  // weftd reads the config once: a backend changed in etcd since is not what it runs (status agrees)
  const drift = backendDrift(i.config, runningConfig(own, env.parsed?.network ?? null));
  if (drift) out.push(fail('config-applied', drift, [RESTART]));
  const byIp = new Map<string, string[]>();
  const refused = unprogrammed(i.peers); // shown as refused, with the reason, by the peer checks
  for (const r of i.records)
    if (r.lease && r.lease.attrs.publicIp !== '0.0.0.0' && !refused.has(r.key))
      byIp.set(r.lease.attrs.publicIp, [...(byIp.get(r.lease.attrs.publicIp) ?? []), r.key]);
  for (const [ip, keys] of byIp)
    if (keys.length > 1)
      out.push(
        fail(
          `duplicate:${ip}`,
          `public IP ${ip} holds ${keys.length} leases (${keys.join(', ')}): two hosts share an address, or a stale lease`,
          [`weftctl leases   # then delete the stale one: etcdctl del <prefix>/subnets/<key>`],
        ),
      );
  // two leases on one subnet (flannel nodes, or weft before its dual-stack create check): both hosts'
  // pods claim the addresses; the later-created lease is the one to drop (weftd's rule:
  // src/subnet/lease-entry.ts, earlierHolder). Grouped by subnet (a lease's
  // subnets are canonical, one SubnetLen per network): linear in the leases, not a pairwise scan.
  const bySubnet = new Map<string, LeaseRecord[]>();
  for (const r of i.records)
    for (const net of r.lease ? [r.lease.subnet, r.lease.subnet6] : [])
      if (net !== null) bySubnet.set(net, [...(bySubnet.get(net) ?? []), r]);
  const clashes = new Map<string, { a: LeaseRecord; b: LeaseRecord; shared: string[] }>();
  for (const [net, rs] of bySubnet)
    for (const [n, a] of rs.entries())
      for (const b of rs.slice(n + 1)) {
        const c = clashes.get(`${a.key}:${b.key}`) ?? { a, b, shared: [] };
        c.shared.push(net);
        clashes.set(`${a.key}:${b.key}`, c);
      }
  for (const [id, { a, b, shared }] of clashes) {
    const later = BigInt(a.createRevision) > BigInt(b.createRevision) ? a : b;
    out.push(
      fail(
        `overlap:${id}`,
        `leases ${a.key} (${a.lease!.attrs.publicIp}) and ${b.key} (${b.lease!.attrs.publicIp}) share ${shared.join(', ')}: containers of both hosts get the same addresses`,
        [
          `etcdctl del <prefix>/subnets/${later.key}   # the later one; then restart weftd on ${later.lease!.attrs.publicIp}`,
        ],
      ),
    );
  }
  for (const r of i.records)
    if (r.problem)
      out.push(
        warn(`invalid:${r.key}`, `etcd key ${r.key} is not a valid lease: ${r.problem}`, [
          `etcdctl del <prefix>/subnets/${r.key}`,
        ]),
      );
  // subnet.env
  if (env.text === null)
    out.push(fail('subnet.env', `${env.error}; the CNI plugin cannot start containers`, [RESTART]));
  else if (own) {
    const p = env.parsed;
    const net = i.config?.network;
    const problems = [
      own.subnet && p?.subnet !== canonicalCidr(own.subnet)
        ? `FLANNEL_SUBNET is ${p?.subnet ?? 'missing'}, the lease is ${own.subnet}`
        : '',
      own.subnet6 && p?.subnet6 !== canonicalCidr(own.subnet6)
        ? `FLANNEL_IPV6_SUBNET is ${p?.subnet6 ?? 'missing'}, the lease is ${own.subnet6}`
        : '',
      net && p?.network !== net
        ? `FLANNEL_NETWORK is ${p?.network ?? 'missing'}, the config says ${net}`
        : '',
    ]
      .filter((x) => x !== '')
      .concat(p?.problems ?? []);
    if (problems.length > 0)
      out.push(fail('subnet.env', `${env.path}: ${problems.join('; ')}`, [RESTART]));
    else out.push(pass('subnet.env', `${env.path} matches the lease`));
  }
  return out;
}

function healthChecks(i: DoctorInput): Check[] {
  const h = i.health;
  const logs = 'journalctl -u weftd -n 50';
  if (!h) return [skip('weftd', 'weftd health not checked (no --healthz-url / --healthz-port)')];
  if (h.healthz === null) {
    const msg = `weftd does not answer on ${h.url} (${h.error ?? 'no answer'})`;
    return [fail('weftd', msg, ['systemctl status weftd', logs])];
  }
  if (h.healthz !== 200) return [fail('weftd', `weftd /healthz answered ${h.healthz}`, [logs])];
  if (h.readyz !== 200)
    return [fail('weftd', `weftd is running but not ready (/readyz ${h.readyz})`, [logs])];
  return [pass('weftd', 'weftd healthy and ready')];
}

/** What the underlay between hosts must let through for the configured backend, for the fix texts. */
function underlayTraffic(i: DoctorInput): string {
  const b = i.config?.backend;
  try {
    if (b?.type === 'vxlan') return `ICMP and UDP ${parseVxlanConfig(b.raw).port}`;
    if (b?.type === 'udp') return `ICMP and UDP ${parseUdpConfig(b.raw).port}`;
    if (b?.type === 'wireguard') {
      const c = parseWireguardConfig(b.raw);
      return `ICMP and UDP ${c.listenPort} (IPv6 underlay: ${c.listenPortV6})`;
    }
    if (b?.type === 'host-gw') return "ICMP and the pods' traffic itself, routed without a tunnel";
  } catch {
    // an invalid backend section is reported by the config check
  }
  return "ICMP and the backend's UDP port";
}

function peerChecks(i: DoctorInput): Check[] {
  const out: Check[] = [];
  for (const p of i.peers) {
    if (!isFault(p)) continue;
    const id = `peer:${p.lease ?? 'stale'}/${p.family}:${p.subnet}`;
    const msg = `${p.lease ? `peer ${p.subnet} (${p.publicIp ?? '?'})` : 'stale entry'}: ${p.verdict}: ${p.problems.join('; ')}`;
    out.push(
      p.verdict === 'stale'
        ? warn(id, msg, [...p.fixes])
        : // restarting weftd does not program a peer it refuses
          fail(id, msg, p.verdict === 'refused' ? [...p.fixes] : [...p.fixes, RESTART]),
    );
  }
  const ok = i.peers.filter((p) => p.verdict === 'ok').length;
  if (out.length === 0)
    out.push(pass('peers', `${ok} peer entr${ok === 1 ? 'y' : 'ies'} match the leases`));
  for (const { publicIp: ip, lease, reachable, rttMs, mtuProbe } of i.probes) {
    if (reachable && mtuProbe && !mtuProbe.ok)
      out.push(
        fail(
          `pmtu:${ip}`,
          `packets of ${mtuProbe.size} bytes with DF do not reach ${ip} (small ones do): the path MTU is below this uplink's MTU, so full-size overlay packets are lost`,
          [
            `tracepath -n ${ip}   # shows the path MTU`,
            i.config?.backend.type === 'host-gw'
              ? 'lower the MTU of the uplink (and the pods) to the path MTU: host-gw adds no header'
              : `weftctl config set with "Backend": {"Type": "${i.config?.backend.type ?? 'vxlan'}", "MTU": <path MTU - the backend's header>}`,
          ],
        ),
      );
    const id = `underlay:${ip}`;
    const fixes = [
      `ip route get ${ip}`,
      `ping -c 3 ${ip}`,
      `check firewalls between the hosts (${underlayTraffic(i)})`,
    ];
    out.push(
      reachable
        ? pass(id, `underlay ${ip} reachable (${rttMs ?? '?'} ms)`)
        : fail(id, `peer ${lease}: public IP ${ip} does not answer on the underlay`, fixes),
    );
  }
  return out;
}

/** flannel's leftovers on this host (docs/migration-from-flannel.md, docs/troubleshooting.md): the same
 *  finding weftd refuses to start on (exit 8), with the fix. */
export function flannelChecks(found: FlannelLeftovers | null): Check[] {
  if (found === null) return [];
  if (!hasLeftovers(found)) return [pass('flannel', 'no flannel leftovers on this host')];
  return [
    fail(
      'flannel',
      `flannel's dataplane is still here (weftd will not start, exit 8): ${describeLeftovers(found).join('; ')}`,
      ['systemctl disable --now flanneld', 'weftctl cleanup --flannel', CLEANUP_COMMAND],
    ),
  ];
}

/** Runs every check (pure). */
export function runChecks(i: DoctorInput): Check[] {
  const out = [...etcdChecks(i), ...leaseChecks(i), ...healthChecks(i)];
  if (!i.host)
    out.push(
      fail('host', `cannot inspect this host: ${i.hostError ?? 'unknown error'}`, [
        'run weftctl as root on the host (or in its netns)',
      ]),
    );
  if (i.host && i.config)
    out.push(...deviceChecks(i, i.host, i.config), ...sysctlChecks(i, i.host, i.config));
  if (i.config) out.push(...firewallChecks(i, i.config));
  out.push(...peerChecks(i));
  return out;
}

export function doctorFailed(checks: readonly Check[]): boolean {
  return checks.some((c) => c.status === 'fail');
}
