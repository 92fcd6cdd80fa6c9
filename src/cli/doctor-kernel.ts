/**
 * doctor's checks of this host's kernel (pure): the overlay device (up, VNI, port, MAC = the published
 * VtepMAC), MTU along the path (uplink − overhead = device = FLANNEL_MTU, bridge not larger), tx
 * checksum offload against the kernel version, ip_forward, rp_filter and conntrack fill.
 */
import { kernelHasChecksumBug } from '../backend-vxlan/checksum.js';
import { parseVxlanBackendData } from '../backend-vxlan/backend-data.js';
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { VXLAN_OVERHEAD } from '../backend-vxlan/index.js';
import { UDP_OVERHEAD, parseUdpConfig } from '../backend-udp/config.js';
import type { Lease } from '../lease/lease.js';
import { cidrContains, type LinkInfo } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { RESTART, fail, pass, warn, skip, type Check, type DoctorInput } from './doctor-check.js';
import type { HostFacts } from './host-view.js';
import { overlayDevices } from './peers.js';
import { wgDeviceChecks } from './wireguard-view.js';

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

export function deviceChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const own = i.own?.lease ?? null;
  if (
    own &&
    own.attrs.publicIp !== '0.0.0.0' &&
    !host.addrs.some((a) => a.cidr.split('/')[0] === own.attrs.publicIp)
  )
    out.push(
      warn(
        'public-ip',
        `the lease publishes ${own.attrs.publicIp} but no interface here has that address (fine only behind NAT with --public-ip)`,
        [RESTART],
      ),
    );
  if (config.backend.type === 'udp') return [...out, ...udpDeviceChecks(i, host, config)];
  if (config.backend.type === 'wireguard') {
    const up = findUplink(host, own, null);
    return [...out, ...wgDeviceChecks(config, host.kernel.links, up, i.subnetEnv.mtu)];
  }
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
  const wants: number[] = [];
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
    // MTU along the path: uplink − overhead = device (the backend's own overheads)
    const up = findUplink(host, own, dev);
    const overhead = VXLAN_OVERHEAD[dev.vxlan?.local?.includes(':') ? 6 : 4];
    const want = (cfg.mtu ?? up?.mtu ?? dev.mtu + overhead) - overhead;
    const why = `(${cfg.mtu ? `Backend.MTU ${cfg.mtu}` : `uplink ${up?.name ?? '?'} ${up?.mtu ?? '?'}`} − ${overhead})`;
    wants.push(want);
    out.push(
      dev.mtu === want
        ? pass(`mtu:${name}`, `${name} MTU ${want} ${why}`)
        : fail(`mtu:${name}`, `${name} MTU is ${dev.mtu}, want ${want} ${why}`, [
            `ip link set dev ${name} mtu ${want}`,
          ]),
    );
    // checksum offload (docs/pitfalls.md B1): the kernel bug, and its symptom on this receiver
    const tx = host.txChecksum[name] ?? null;
    const buggy = kernelHasChecksumBug(host.kernelRelease);
    const csum = host.udpCsumErrors ?? 0;
    if (csum > 0 && !out.some((c) => c.id === 'udp-checksum'))
      out.push(
        warn(
          'udp-checksum',
          `${csum} UDP datagrams arrived with a bad checksum here (the VXLAN checksum bug on a sending host with kernel < 5.7 and tx offload on?)`,
          [
            'on each sending host: weftctl doctor   # checksum check',
            `on an affected sender: ethtool -K ${name} tx-checksum-ip-generic off`,
          ],
        ),
      );
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
  if (wants.length > 0) out.push(containerMtuCheck(i, host, Math.min(...wants)));
  return out;
}

/** Containers get FLANNEL_MTU: the smallest overlay MTU (IPv6 underlay costs 20 more); the bridge no larger. */
function containerMtuCheck(i: DoctorInput, host: HostFacts, want: number): Check {
  const problems: string[] = [];
  const fixes: string[] = [];
  if (i.subnetEnv.mtu !== null && i.subnetEnv.mtu !== want) {
    problems.push(`FLANNEL_MTU is ${i.subnetEnv.mtu}, want ${want}`);
    fixes.push(RESTART);
  }
  const own = i.own?.lease ?? null;
  const bridge = own?.subnet ? bridgeOf(host, own.subnet) : null;
  if (bridge && bridge.mtu > want) {
    problems.push(
      `bridge ${bridge.name} MTU ${bridge.mtu} exceeds the overlay's ${want}: large packets are lost`,
    );
    fixes.push(`ip link set dev ${bridge.name} mtu ${want}`);
  }
  return problems.length > 0
    ? fail('mtu:containers', problems.join('; '), fixes)
    : pass(
        'mtu:containers',
        `container MTU ${want} (subnet.env${bridge ? `, bridge ${bridge.name}` : ''})`,
      );
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
  const want = (cfg.mtu ?? up?.mtu ?? dev.mtu + UDP_OVERHEAD) - UDP_OVERHEAD;
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

export function sysctlChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
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
