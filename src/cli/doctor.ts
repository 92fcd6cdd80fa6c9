/**
 * `weftctl doctor`: the checklist flannel users run by hand (pitfalls.md §5), as pure checks over the
 * facts weftctl gathered. Each check passes, warns or fails, names what it saw, and for every problem
 * gives the command that fixes it. Exit 1 when any check fails (warnings alone exit 0).
 */
import { buildRuleset } from '../daemon/firewall/rules.js';
import { diffTable } from '../daemon/firewall/firewall.js';
import { IPT_CHAIN, parseForward } from '../daemon/firewall/iptables-forward.js';
import { kernelHasChecksumBug } from '../backend-vxlan/checksum.js';
import { parseVxlanBackendData } from '../backend-vxlan/backend-data.js';
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { UDP_OVERHEAD, parseUdpConfig } from '../backend-udp/config.js';
import type { Lease } from '../lease/lease.js';
import { cidrContains, networkOf, type LinkInfo } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import type { ClockSample, EtcdProbe, LeaseRecord } from './etcd-view.js';
import type { HealthState, HostFacts, NftState, SubnetEnvState } from './host-view.js';
import { isFault, overlayDevices, type PeerRow } from './peers.js';
import { formatDuration } from './render.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface Check {
  /** Stable id for scripts: 'etcd', 'device-mtu', 'peer:10.5.2.0-24/4', … */
  readonly id: string;
  readonly status: CheckStatus;
  readonly message: string;
  /** Commands that fix the problem, in order (empty when it passes). */
  readonly fixes: readonly string[];
}

export interface UnderlayProbe {
  readonly lease: string;
  readonly publicIp: string;
  readonly reachable: boolean;
  readonly rttMs: number | null;
  /** Outer packet size probed with DF set (the uplink MTU), and whether it arrived; null = not probed. */
  readonly mtuProbe?: { readonly size: number; readonly ok: boolean } | null;
}

export interface DoctorInput {
  readonly etcd: EtcdProbe;
  readonly clock: ClockSample | null;
  readonly config: NetworkConfig | null;
  readonly configError: string | null;
  readonly records: readonly LeaseRecord[];
  readonly own: LeaseRecord | null;
  readonly host: HostFacts | null;
  readonly hostError: string | null;
  readonly nft: NftState | null;
  readonly subnetEnv: SubnetEnvState;
  readonly health: HealthState | null;
  readonly peers: readonly PeerRow[];
  readonly probes: readonly UnderlayProbe[];
}

const RESTART = 'systemctl restart weftd   # weftd reconciles devices, peers and rules on start';
const pass = (id: string, message: string): Check => ({ id, status: 'pass', message, fixes: [] });
const warn = (id: string, message: string, fixes: string[] = []): Check => ({
  id,
  status: 'warn',
  message,
  fixes,
});
const fail = (id: string, message: string, fixes: string[] = []): Check => ({
  id,
  status: 'fail',
  message,
  fixes,
});
const skip = (id: string, message: string): Check => ({ id, status: 'skip', message, fixes: [] });

function etcdChecks(i: DoctorInput): Check[] {
  const out: Check[] = [];
  if (!i.etcd.reachable)
    out.push(
      fail('etcd', `etcd is unreachable: ${i.etcd.error ?? 'no answer'}`, [
        'etcdctl --endpoints=<your --etcd-endpoints> endpoint health',
        'check --etcd-endpoints, the TLS files and the etcd firewall',
      ]),
    );
  else if ((i.etcd.latencyMs ?? 0) > 500)
    out.push(
      warn('etcd', `etcd answers slowly (${i.etcd.latencyMs} ms)`, [
        'etcdctl endpoint status -w table',
      ]),
    );
  else out.push(pass('etcd', `etcd reachable (${i.etcd.latencyMs} ms)`));
  const skew = i.clock?.skewSeconds ?? null;
  if (i.clock === null || skew === null)
    out.push(
      skip('clock', `clock skew vs etcd unknown${i.clock?.error ? ` (${i.clock.error})` : ''}`),
    );
  else if (Math.abs(skew) > 300)
    out.push(
      fail('clock', `this clock is ${skew} s off etcd's`, [
        'timedatectl set-ntp true',
        'chronyc makestep',
      ]),
    );
  else if (Math.abs(skew) > 2)
    out.push(
      warn(
        'clock',
        `this clock is ${skew} s off etcd's (lease expiry times shown here are off too)`,
        ['chronyc makestep'],
      ),
    );
  else out.push(pass('clock', `clock within ${Math.max(1, Math.abs(skew))} s of etcd`));
  if (i.configError !== null)
    out.push(
      fail('config', `network config: ${i.configError}`, [
        'weftctl config get',
        "weftctl config set '<json>'",
      ]),
    );
  else if (i.config)
    out.push(
      pass(
        'config',
        `network config valid (${i.config.network ?? i.config.ipv6Network}, ${i.config.backend.type})`,
      ),
    );
  return out;
}

function leaseChecks(i: DoctorInput): Check[] {
  const out: Check[] = [];
  const env = i.subnetEnv;
  const own = i.own?.lease ?? null;
  if (!i.etcd.reachable) return [skip('lease', 'lease not checked: etcd unreachable')];
  if (!own)
    out.push(
      fail(
        'lease',
        `no lease in etcd for this host${env.parsed?.subnet ? ` (subnet.env says ${env.parsed.subnet})` : ''}`,
        [RESTART],
      ),
    );
  else if (i.own && !i.own.reserved && i.own.expiresIn !== null && i.own.expiresIn < 300)
    out.push(
      warn('lease', `lease ${own.key} expires in ${i.own.expiresIn} s and was not renewed`, [
        'journalctl -u weftd | grep -i renew',
        RESTART,
      ]),
    );
  else
    out.push(
      pass(
        'lease',
        `lease ${own.key} (${i.own?.reserved ? 'reserved' : `expires in ${i.own?.expiresIn == null ? '?' : formatDuration(i.own.expiresIn)}`})`,
      ),
    );
  const byIp = new Map<string, string[]>();
  for (const r of i.records)
    if (r.lease && r.lease.attrs.publicIp !== '0.0.0.0')
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
    const problems: string[] = [];
    const p = env.parsed;
    if (own.subnet && p?.subnet !== networkOf(own.subnet))
      problems.push(`FLANNEL_SUBNET is ${p?.subnet ?? 'missing'}, the lease is ${own.subnet}`);
    if (own.subnet6 && p?.subnet6 !== networkOf(own.subnet6))
      problems.push(
        `FLANNEL_IPV6_SUBNET is ${p?.subnet6 ?? 'missing'}, the lease is ${own.subnet6}`,
      );
    if (i.config?.network && p?.network !== i.config.network)
      problems.push(
        `FLANNEL_NETWORK is ${p?.network ?? 'missing'}, the config says ${i.config.network}`,
      );
    for (const x of p?.problems ?? []) problems.push(x);
    if (problems.length > 0)
      out.push(fail('subnet.env', `${env.path}: ${problems.join('; ')}`, [RESTART]));
    else out.push(pass('subnet.env', `${env.path} matches the lease`));
  }
  return out;
}

function healthChecks(i: DoctorInput): Check[] {
  const h = i.health;
  if (!h) return [skip('weftd', 'weftd health not checked (no --healthz-url / --healthz-port)')];
  if (h.healthz === null)
    return [
      fail('weftd', `weftd does not answer on ${h.url} (${h.error ?? 'no answer'})`, [
        'systemctl status weftd',
        'journalctl -u weftd -n 50',
      ]),
    ];
  if (h.healthz !== 200)
    return [fail('weftd', `weftd /healthz answered ${h.healthz}`, ['journalctl -u weftd -n 50'])];
  if (h.readyz !== 200)
    return [
      fail('weftd', `weftd is running but not ready (/readyz ${h.readyz})`, [
        'journalctl -u weftd -n 50',
      ]),
    ];
  return [pass('weftd', 'weftd healthy and ready')];
}

/** The uplink: the vxlan device's underlay, else the link holding the lease's public IP. */
export function findUplink(
  host: HostFacts,
  own: Lease | null,
  dev: LinkInfo | null,
): LinkInfo | null {
  const idx = dev?.vxlan?.underlayIndex;
  if (idx) return host.kernel.links.find((l) => l.index === idx) ?? null;
  const ip = own?.attrs.publicIp;
  const a = host.addrs.find((x) => x.cidr.split('/')[0] === ip);
  return a ? (host.kernel.links.find((l) => l.index === a.index) ?? null) : null;
}

function deviceChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const own = i.own?.lease ?? null;
  if (
    own &&
    own.attrs.publicIp !== '0.0.0.0' &&
    !host.addrs.some((a) => a.cidr.split('/')[0] === own.attrs.publicIp)
  )
    out.push(
      fail(
        'public-ip',
        `the lease publishes ${own.attrs.publicIp} but no interface here has that address`,
        [RESTART],
      ),
    );
  if (config.backend.type === 'udp') return [...out, ...udpDeviceChecks(i, host, config)];
  if (config.backend.type !== 'vxlan') {
    const up = findUplink(host, own, null);
    if (up && i.subnetEnv.mtu !== null && i.subnetEnv.mtu > up.mtu)
      out.push(
        fail(
          'mtu',
          `FLANNEL_MTU ${i.subnetEnv.mtu} is larger than the uplink ${up.name} MTU ${up.mtu}`,
          [RESTART],
        ),
      );
    return out;
  }
  let cfg;
  try {
    cfg = parseVxlanConfig(config.backend.raw);
  } catch (err) {
    return [
      ...out,
      fail('device', `vxlan config: ${(err as Error).message}`, ["weftctl config set '<json>'"]),
    ];
  }
  const devs = overlayDevices(config);
  for (const fam of [4, 6] as const) {
    const name = devs[fam];
    if (!name) continue;
    const dev = host.kernel.links.find((l) => l.name === name) ?? null;
    if (!dev) {
      out.push(fail(`device:${name}`, `vxlan device ${name} does not exist`, [RESTART]));
      continue;
    }
    const problems: string[] = [];
    const fixes: string[] = [];
    if (!dev.up) {
      problems.push('is down');
      fixes.push(`ip link set dev ${name} up`);
    }
    if (dev.vxlan && dev.vxlan.vni !== cfg.vni)
      problems.push(`has VNI ${dev.vxlan.vni}, the config says ${cfg.vni}`);
    if (dev.vxlan && dev.vxlan.port !== cfg.port)
      problems.push(`uses UDP port ${dev.vxlan.port}, the config says ${cfg.port}`);
    if (problems.length > 0 && fixes.length === 0) fixes.push(RESTART);
    const data = own
      ? parseVxlanBackendData(fam === 4 ? own.attrs.backendData : own.attrs.backendV6Data)
      : null;
    if (data?.ok && dev.mac !== data.value.vtepMac) {
      problems.push(
        `has MAC ${dev.mac}, the lease publishes ${data.value.vtepMac} (peers send to the published one)`,
      );
      fixes.push(`ip link set dev ${name} address ${data.value.vtepMac}`);
    }
    if (problems.length > 0)
      out.push(fail(`device:${name}`, `${name} ${problems.join('; ')}`, fixes));
    else
      out.push(
        pass(`device:${name}`, `${name} up, VNI ${cfg.vni}, port ${cfg.port}, MAC ${dev.mac}`),
      );
    // MTU along the path: uplink − overhead = device; subnet.env = device; bridge ≤ device
    const up = findUplink(host, own, dev);
    const overhead = dev.vxlan?.local?.includes(':') ? 70 : 50;
    const want = (cfg.mtu ?? up?.mtu ?? dev.mtu + overhead) - overhead;
    const mtuProblems: string[] = [];
    const mtuFixes: string[] = [];
    if (dev.mtu !== want) {
      mtuProblems.push(
        `${name} MTU is ${dev.mtu}, want ${want} (${cfg.mtu ? `Backend.MTU ${cfg.mtu}` : `uplink ${up?.name ?? '?'} ${up?.mtu ?? '?'}`} − ${overhead})`,
      );
      mtuFixes.push(`ip link set dev ${name} mtu ${want}`);
    }
    if (fam === 4 && i.subnetEnv.mtu !== null && i.subnetEnv.mtu !== want) {
      mtuProblems.push(`FLANNEL_MTU is ${i.subnetEnv.mtu}, want ${want}`);
      mtuFixes.push(RESTART);
    }
    const bridge = own?.subnet ? bridgeOf(host, own.subnet) : null;
    if (fam === 4 && bridge && bridge.mtu > want) {
      mtuProblems.push(
        `bridge ${bridge.name} MTU ${bridge.mtu} exceeds the overlay's ${want}: large packets are lost`,
      );
      mtuFixes.push(`ip link set dev ${bridge.name} mtu ${want}`);
    }
    if (mtuProblems.length > 0) out.push(fail(`mtu:${name}`, mtuProblems.join('; '), mtuFixes));
    else
      out.push(
        pass(
          `mtu:${name}`,
          `MTU ${want} consistent (uplink ${up?.name ?? '?'} ${up?.mtu ?? '?'}, subnet.env, bridge)`,
        ),
      );
    // checksum offload (pitfalls B1)
    const tx = host.txChecksum[name] ?? null;
    const buggy = kernelHasChecksumBug(host.kernelRelease);
    if (buggy && tx === 'on')
      out.push(
        fail(
          `checksum:${name}`,
          `kernel ${host.kernelRelease} < 5.7 corrupts masqueraded VXLAN checksums with tx offload on`,
          [`ethtool -K ${name} tx-checksum-ip-generic off`],
        ),
      );
    else
      out.push(
        pass(
          `checksum:${name}`,
          `kernel ${host.kernelRelease}, tx-checksum-ip-generic ${tx ?? 'unknown'}${buggy ? '' : ' (no checksum bug on this kernel)'}`,
        ),
      );
  }
  return out;
}

/** udp: the TUN exists, is up, and its MTU is the uplink's (or Backend.MTU) − 28 like FLANNEL_MTU. */
function udpDeviceChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  let cfg;
  try {
    cfg = parseUdpConfig(config.backend.raw);
  } catch (err) {
    return [
      fail('device', `udp config: ${(err as Error).message}`, ["weftctl config set '<json>'"]),
    ];
  }
  const dev = host.kernel.links.find((l) => l.name === cfg.name) ?? null;
  if (!dev) return [fail(`device:${cfg.name}`, `TUN device ${cfg.name} does not exist`, [RESTART])];
  const out: Check[] = [];
  if (!dev.up)
    out.push(fail(`device:${cfg.name}`, `${cfg.name} is down`, [`ip link set dev ${cfg.name} up`]));
  else out.push(pass(`device:${cfg.name}`, `${cfg.name} up`));
  const up = findUplink(host, i.own?.lease ?? null, null);
  const want = cfg.mtu !== null ? cfg.mtu - UDP_OVERHEAD : up ? up.mtu - UDP_OVERHEAD : dev.mtu;
  const problems: string[] = [];
  if (dev.mtu !== want) problems.push(`${cfg.name} MTU is ${dev.mtu}, want ${want}`);
  if (i.subnetEnv.mtu !== null && i.subnetEnv.mtu !== want)
    problems.push(`FLANNEL_MTU is ${i.subnetEnv.mtu}, want ${want}`);
  out.push(
    problems.length
      ? fail(`mtu:${cfg.name}`, problems.join('; '), [
          `ip link set dev ${cfg.name} mtu ${want}`,
          RESTART,
        ])
      : pass(
          `mtu:${cfg.name}`,
          `MTU ${want} consistent (uplink ${up?.name ?? '?'} ${up?.mtu ?? '?'} − ${UDP_OVERHEAD})`,
        ),
  );
  return out;
}

/** The local bridge carrying `subnet` (its first address), e.g. cni0. */
function bridgeOf(host: HostFacts, subnet: string): LinkInfo | null {
  const a = host.addrs.find((x) => {
    const ip = x.cidr.split('/')[0] ?? '';
    return cidrContains(subnet, ip) && !x.cidr.endsWith('/32');
  });
  return a
    ? (host.kernel.links.find((l) => l.index === a.index && l.kind === 'bridge') ?? null)
    : null;
}

function sysctlChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const s = host.sysctl;
  if (config.enableIPv4 && s['net.ipv4.ip_forward'] !== '1')
    out.push(
      fail(
        'ip_forward',
        `net.ipv4.ip_forward is ${s['net.ipv4.ip_forward'] ?? 'unknown'}: the host does not forward container traffic`,
        ['sysctl -w net.ipv4.ip_forward=1'],
      ),
    );
  else if (config.enableIPv4) out.push(pass('ip_forward', 'net.ipv4.ip_forward = 1'));
  if (config.enableIPv6 && s['net.ipv6.conf.all.forwarding'] !== '1')
    out.push(
      fail(
        'ipv6_forwarding',
        `net.ipv6.conf.all.forwarding is ${s['net.ipv6.conf.all.forwarding'] ?? 'unknown'}`,
        ['sysctl -w net.ipv6.conf.all.forwarding=1'],
      ),
    );
  const devs = overlayDevices(config);
  const up = findUplink(
    host,
    i.own?.lease ?? null,
    host.kernel.links.find((l) => l.name === devs[4]) ?? null,
  );
  const strict: string[] = [];
  const all = Number(s['net.ipv4.conf.all.rp_filter'] ?? 0);
  for (const name of [devs[4], up?.name].filter((n): n is string => !!n)) {
    const eff = Math.max(all, Number(s[`net.ipv4.conf.${name}.rp_filter`] ?? 0));
    if (eff === 1) strict.push(name);
  }
  if (strict.length > 0)
    out.push(
      warn(
        'rp_filter',
        `strict reverse-path filtering (rp_filter=1) on ${strict.join(', ')} drops asymmetric overlay traffic`,
        strict
          .map((n) => `sysctl -w net.ipv4.conf.${n}.rp_filter=2`)
          .concat(all === 1 ? ['sysctl -w net.ipv4.conf.all.rp_filter=2'] : []),
      ),
    );
  else out.push(pass('rp_filter', 'rp_filter loose or off on the overlay path'));
  if (host.conntrack) {
    const { count, max } = host.conntrack;
    const fill = max > 0 ? count / max : 0;
    const msg = `conntrack table ${count}/${max} (${Math.round(fill * 100)} %)`;
    if (fill > 0.9)
      out.push(
        fail('conntrack', `${msg}: new connections are dropped when full`, [
          `sysctl -w net.netfilter.nf_conntrack_max=${max * 2}`,
        ]),
      );
    else if (fill > 0.75)
      out.push(warn('conntrack', msg, [`sysctl -w net.netfilter.nf_conntrack_max=${max * 2}`]));
    else out.push(pass('conntrack', msg));
  } else out.push(skip('conntrack', 'conntrack not loaded'));
  return out;
}

/**
 * The FORWARD policy (pitfalls B4): iptables `filter FORWARD` with policy DROP (Docker) is fine only
 * with weftd's jump to WEFT-FWD accepting the network; other nft tables with a drop policy on the
 * forward hook are reported too (an nft accept cannot override them).
 */
export function forwardPolicyChecks(nft: NftState, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const covered = new Set<string>();
  for (const [fam, network] of [
    [4, config.enableIPv4 ? config.network : null],
    [6, config.enableIPv6 ? config.ipv6Network : null],
  ] as const) {
    const ipt = nft.iptables?.[fam];
    if (!network || !ipt || ipt.forward === null) continue;
    const cmd = fam === 4 ? 'iptables' : 'ip6tables';
    covered.add(`${fam === 4 ? 'ip' : 'ip6'} filter FORWARD`);
    const { dropPolicy, jumps } = parseForward(ipt.forward);
    const id = `forward-policy:${cmd}`;
    if (!dropPolicy) {
      out.push(pass(id, `${cmd} FORWARD policy accepts`));
      continue;
    }
    const fixes = [
      RESTART,
      `${cmd} -I FORWARD 1 -s ${network} -j ACCEPT`,
      `${cmd} -I FORWARD 1 -d ${network} -j ACCEPT`,
    ];
    const weft = ipt.weft ?? '';
    const accepts = (dir: 's' | 'd'): boolean =>
      weft
        .split('\n')
        .some(
          (l) =>
            l.startsWith(`-A ${IPT_CHAIN} -${dir} ${network} `) && l.trim().endsWith('-j ACCEPT'),
        );
    if (jumps === 0)
      out.push(
        fail(
          id,
          `${cmd} FORWARD policy is DROP and nothing jumps to ${IPT_CHAIN}: forwarded overlay traffic of ${network} is dropped`,
          fixes,
        ),
      );
    else if (!accepts('s') || !accepts('d'))
      out.push(
        fail(
          id,
          `${cmd} FORWARD policy is DROP and ${IPT_CHAIN} does not accept ${network} both ways`,
          fixes,
        ),
      );
    else
      out.push(pass(id, `${cmd} FORWARD policy is DROP; weft's ${IPT_CHAIN} accepts ${network}`));
  }
  for (const c of nft.forwardDrop) {
    if (covered.has(c)) continue;
    out.push(
      warn(
        `forward-policy:${c}`,
        `nft chain ${c} drops forwarded packets by default: weft's accept rules cannot override another table's drop`,
        [
          `nft list chain ${c}   # add accept rules for ${config.network ?? config.ipv6Network} there`,
        ],
      ),
    );
  }
  return out;
}

function firewallChecks(i: DoctorInput, config: NetworkConfig): Check[] {
  const nft = i.nft;
  if (!nft) return [skip('firewall', 'firewall not checked')];
  if (nft.error && nft.weft4 === null)
    return [warn('firewall', `cannot read nftables: ${nft.error}`, ['nft list ruleset'])];
  const out: Check[] = [];
  out.push(...forwardPolicyChecks(nft, config));
  const own = i.own?.lease ?? null;
  for (const [fam, table, network, subnet] of [
    ['ip', nft.weft4, config.enableIPv4 ? config.network : null, own?.subnet ?? null],
    ['ip6', nft.weft6, config.enableIPv6 ? config.ipv6Network : null, own?.subnet6 ?? null],
  ] as const) {
    if (!network || !subnet) continue;
    const masq = i.subnetEnv.ipMasq ?? false;
    let best: string[] | null = null;
    for (const forwardRules of [true, false])
      for (const fullyRandom of [true, false]) {
        const rs = buildRuleset({
          ipv4: fam === 'ip' ? { network, subnet: networkOf(subnet) } : null,
          ipv6: fam === 'ip6' ? { network, subnet: networkOf(subnet) } : null,
          ipMasq: masq,
          fullyRandom,
          forwardRules,
        });
        const t = rs.tables.find((x) => x.family === fam);
        const problems = t ? diffTable(t, table) : table === null ? [] : ['unexpected table'];
        if (problems.length === 0) best = [];
        else if (best === null && forwardRules) best = problems;
      }
    const id = `rules:${fam}`;
    if (table === null)
      out.push(
        fail(
          id,
          `table ${fam} weft is missing: no forward${masq ? ' or masquerade' : ''} rules for ${network} (fine only if weftd runs with --iptables-forward-rules=false${masq ? '' : ' and without --ip-masq'})`,
          [RESTART, `nft list table ${fam} weft`],
        ),
      );
    else if (best && best.length > 0)
      out.push(
        fail(id, `weft's ${fam} rules are not in place: ${best.join('; ')}`, [
          RESTART,
          `nft list table ${fam} weft`,
        ]),
      );
    else out.push(pass(id, `weft's ${fam} rules in place${masq ? ' (with masquerade)' : ''}`));
  }
  return out;
}

function peerChecks(i: DoctorInput): Check[] {
  const out: Check[] = [];
  for (const p of i.peers) {
    if (!isFault(p)) continue;
    const id = `peer:${p.lease ?? 'stale'}/${p.family}:${p.subnet}`;
    const msg = `${p.lease ? `peer ${p.subnet} (${p.publicIp ?? '?'})` : 'stale entry'}: ${p.verdict}: ${p.problems.join('; ')}`;
    out.push(
      p.verdict === 'stale' ? warn(id, msg, [...p.fixes]) : fail(id, msg, [...p.fixes, RESTART]),
    );
  }
  const ok = i.peers.filter((p) => p.verdict === 'ok').length;
  if (out.length === 0)
    out.push(pass('peers', `${ok} peer entr${ok === 1 ? 'y' : 'ies'} match the leases`));
  for (const pr of i.probes) {
    if (pr.reachable && pr.mtuProbe && !pr.mtuProbe.ok)
      out.push(
        fail(
          `pmtu:${pr.publicIp}`,
          `packets of ${pr.mtuProbe.size} bytes with DF do not reach ${pr.publicIp} (small ones do): the path MTU is below this uplink's MTU, so full-size overlay packets are lost`,
          [
            `tracepath -n ${pr.publicIp}   # shows the path MTU`,
            'weftctl config set with "Backend": {"Type": "vxlan", "MTU": <path MTU>}',
          ],
        ),
      );
    out.push(
      pr.reachable
        ? pass(
            `underlay:${pr.publicIp}`,
            `underlay ${pr.publicIp} reachable (${pr.rttMs ?? '?'} ms)`,
          )
        : fail(
            `underlay:${pr.publicIp}`,
            `peer ${pr.lease}: public IP ${pr.publicIp} does not answer on the underlay`,
            [
              `ip route get ${pr.publicIp}`,
              `ping -c 3 ${pr.publicIp}`,
              'check firewalls between the hosts (ICMP and UDP 8472)',
            ],
          ),
    );
  }
  return out;
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
