/**
 * doctor's checks of this host's kernel (pure): the overlay devices weftd's backend plans
 * (src/backend/device-plan.ts: up, VNI, port, MAC = the published VtepMAC, MTU = base − overhead),
 * FLANNEL_MTU = the plan's, the bridge not larger, tx checksum offload against the kernel version,
 * ip_forward, rp_filter and conntrack fill.
 */
import { kernelHasChecksumBug } from '../backend-vxlan/checksum.js';
import { parseVxlanBackendData } from '../backend-vxlan/backend-data.js';
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { planVxlanDevices } from '../backend-vxlan/plan.js';
import { planHostGwDevices } from '../backend-hostgw/plan.js';
import { parseUdpConfig } from '../backend-udp/config.js';
import { planUdpDevices } from '../backend-udp/plan.js';
import { parseWireguardConfig } from '../backend-wireguard/config.js';
import { planWgDevices } from '../backend-wireguard/plan.js';
import {
  planDevices,
  type DevicePlan,
  type PlannedDevice,
  type UplinkMtu,
} from '../backend/device-plan.js';
import { leftoverDevices, ownDeviceAddrs } from '../backend/leftovers.js';
import type { Lease } from '../lease/lease.js';
import { cidrCovers } from '../ip/index.js';
import type { LinkInfo } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import { RESTART, fail, pass, warn, skip, type Check, type DoctorInput } from './doctor-check.js';
import type { HostFacts } from './host-view.js';
import { overlayDevices } from './overlay-devices.js';
import { linkOfAddr, wgLayoutOf } from './peer-planner.js';

/** The uplink: the vxlan device's underlay, else the link holding the lease's public IP. */
function findUplink(host: HostFacts, own: Lease | null, dev: LinkInfo | null): LinkInfo | null {
  const idx = dev?.vxlan?.underlayIndex || linkOfAddr(host.addrs, own?.attrs.publicIp);
  return host.kernel.links.find((l) => l.index === idx) ?? null;
}

/**
 * The overlay devices weftd plans for `config` on this host — the backend's own device planner
 * (the plan.ts of each src/backend-<type>) over the uplink found here — so doctor expects exactly what weftd creates.
 */
export function planHostDevices(
  config: NetworkConfig,
  host: HostFacts,
  own: Lease | null,
): { plan: DevicePlan; uplink: LinkInfo | null } {
  const { type, raw } = config.backend;
  const layout = (up: UplinkMtu): DevicePlan => {
    if (type === 'vxlan') return planVxlanDevices(parseVxlanConfig(raw), config, up);
    if (type === 'udp') return planUdpDevices(parseUdpConfig(raw), up);
    if (type === 'host-gw') return planHostGwDevices(up);
    if (type !== 'wireguard') return planDevices([], null, null);
    const cfg = parseWireguardConfig(raw);
    return planWgDevices(cfg, wgLayoutOf(cfg, config, own), up);
  };
  const names = new Set(layout(null).devices.map((d) => d.name));
  const dev = host.kernel.links.find((l) => l.vxlan && names.has(l.name)) ?? null;
  const uplink = findUplink(host, own, dev);
  return { plan: layout(uplink), uplink };
}

export function deviceChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const own = i.own?.lease ?? null;
  const ip = own?.attrs.publicIp;
  if (own && ip !== '0.0.0.0' && linkOfAddr(host.addrs, ip) === null) {
    const msg = `the lease publishes ${ip} but no interface here has that address (fine only behind NAT with --public-ip)`;
    out.push(warn('public-ip', msg, [RESTART]));
  }
  let plan: DevicePlan;
  try {
    plan = planHostDevices(config, host, own).plan;
  } catch (err) {
    const msg = `${config.backend.type} config: ${(err as Error).message}`;
    return [...out, fail('device', msg, ["weftctl config set '<json>'"])];
  }
  for (const d of plan.devices) out.push(...plannedDeviceChecks(i, host, plan, d, out));
  if (plan.mtu !== null) out.push(containerMtuCheck(i, host, plan.mtu));
  out.push(...leftoverChecks(host, config, own, plan));
  return out;
}

/**
 * A VXLAN or TUN device the configured backend does not use but that carries this host's subnet
 * address as weft gives it to its devices (src/backend/leftovers.ts): left by an earlier weft
 * backend (another Backend.Type, VNI or Name), or the device weftd runs while the config in etcd
 * changed under it: a VXLAN device with the VtepMAC this host's lease publishes is that one and not
 * named (config-applied says the rest). A fail when it routes into the cluster network (those routes
 * are more specific than a TUN backend's and win), else a warning. The fix is a restart: weftd removes
 * the device at its start when it also proves it its own (a VXLAN device: weft's VTEP MAC, which
 * doctor cannot derive), else by hand.
 */
function leftoverChecks(
  host: HostFacts,
  config: NetworkConfig,
  own: Lease | null,
  plan: DevicePlan,
): Check[] {
  const keep = plan.devices.map((d) => d.name);
  const published = [own?.attrs.backendData, own?.attrs.backendV6Data].flatMap((b) => {
    const d = own?.attrs.backendType === 'vxlan' ? parseVxlanBackendData(b) : null;
    return d?.ok ? [d.value.vtepMac] : [];
  });
  const found = leftoverDevices(host.kernel.links, host.addrs, {
    keep,
    ownAddrs: ownDeviceAddrs(own),
  }).filter((l) => !(l.kind === 'vxlan' && l.mac !== null && published.includes(l.mac)));
  const networks = [
    config.enableIPv4 ? config.network : null,
    config.enableIPv6 ? config.ipv6Network : null,
  ].filter((n): n is string => n !== null);
  return found.map((l) => {
    const what = l.vxlan ? `vxlan device (VNI ${l.vxlan.vni})` : 'TUN device';
    const routes = host.kernel.routes.filter(
      (r) => r.oif === l.index && networks.some((n) => coversSafely(n, r.dst)),
    );
    const msg =
      `${what} ${l.name} is left from an earlier weft backend (it carries this host's subnet ` +
      `address; the ${config.backend.type} backend uses ${keep.join(', ') || 'no device'})` +
      (routes.length > 0
        ? `: its ${routes.length} route(s) into the cluster network (${routes[0]!.dst}, …) take traffic away from ${config.backend.type}`
        : '');
    const check = routes.length > 0 ? fail : warn;
    return check(`leftover:${l.name}`, msg, [
      `systemctl restart weftd   # at its start weftd removes ${l.name} when it proves it its own`,
      `ip link del ${l.name}   # if it is still there after the restart`,
    ]);
  });
}

/** One planned device against the kernel: it exists and is up, carries the planned VNI, port and
 *  published VTEP MAC (vxlan), has the planned MTU, and (vxlan) no checksum-bug offload. */
function plannedDeviceChecks(
  i: DoctorInput,
  host: HostFacts,
  plan: DevicePlan,
  d: PlannedDevice,
  before: readonly Check[],
): Check[] {
  const { name } = d;
  const dev = host.kernel.links.find((l) => l.name === name) ?? null;
  const what = d.vxlan ? 'vxlan device' : 'TUN device';
  if (!dev) return [fail(`device:${name}`, `${what} ${name} does not exist`, [RESTART])];
  const out: Check[] = [];
  const problems: string[] = [];
  const fixes: string[] = [];
  if (!dev.up) {
    problems.push('is down');
    fixes.push(`ip link set dev ${name} up`);
  }
  const vx = d.vxlan;
  if (vx && dev.vxlan && dev.vxlan.vni !== vx.vni)
    problems.push(`has VNI ${dev.vxlan.vni}, the config says ${vx.vni}`);
  if (vx && dev.vxlan && dev.vxlan.port !== vx.port)
    problems.push(`uses UDP port ${dev.vxlan.port}, the config says ${vx.port}`);
  if (problems.length > 0 && fixes.length === 0) fixes.push(RESTART);
  const own = i.own?.lease ?? null;
  const data =
    vx && own
      ? parseVxlanBackendData(vx.family === 4 ? own.attrs.backendData : own.attrs.backendV6Data)
      : null;
  if (data?.ok && dev.mac !== data.value.vtepMac) {
    problems.push(
      `has MAC ${dev.mac}, the lease publishes ${data.value.vtepMac} (peers send to the published one)`,
    );
    fixes.push(`ip link set dev ${name} address ${data.value.vtepMac}`);
  }
  const state = vx ? `up, VNI ${vx.vni}, port ${vx.port}, MAC ${dev.mac}` : 'up';
  out.push(
    problems.length > 0
      ? fail(`device:${name}`, `${name} ${problems.join('; ')}`, fixes)
      : pass(`device:${name}`, `${name} ${state}`),
  );
  const want = d.mtu;
  const why = `(${plan.base} − ${d.overhead})`;
  const id = `mtu:${name}`;
  if (want !== null && dev.mtu === want) out.push(pass(id, `${name} MTU ${want} ${why}`));
  else if (want !== null)
    out.push(
      fail(id, `${name} MTU is ${dev.mtu}, want ${want} ${why}`, [
        `ip link set dev ${name} mtu ${want}`,
      ]),
    );
  // the host-wide UDP checksum counter is reported once, not once per device (dual stack)
  if (vx) out.push(...checksumChecks(host, name, [...before, ...out]));
  return out;
}

/** The VXLAN checksum bug (docs/pitfalls.md B1): the kernel and its offload, and its symptom here. */
function checksumChecks(host: HostFacts, name: string, before: readonly Check[]): Check[] {
  const out: Check[] = [];
  const tx = host.txChecksum[name] ?? null;
  const buggy = kernelHasChecksumBug(host.kernelRelease);
  const csum = host.udpCsumErrors ?? 0;
  if (csum > 0 && !before.some((c) => c.id === 'udp-checksum'))
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
  const id = `checksum:${name}`;
  const kernel = `kernel ${host.kernelRelease}`;
  const state = `tx-checksum-ip-generic ${tx ?? 'unknown'}${buggy ? '' : ' (no checksum bug on this kernel)'}`;
  const bug = `${kernel} < 5.7 corrupts masqueraded VXLAN checksums with tx offload on`;
  const fix = [`ethtool -K ${name} tx-checksum-ip-generic off`];
  out.push(buggy && tx === 'on' ? fail(id, bug, fix) : pass(id, `${kernel}, ${state}`));
  return out;
}

/** cidrCovers, false for a destination that is no CIDR (e.g. 'default'). */
function coversSafely(network: string, dst: string): boolean {
  try {
    return cidrCovers(network, dst);
  } catch {
    return false;
  }
}

/** Containers get FLANNEL_MTU: the plan's (the smallest overlay MTU); the bridge no larger. */
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
  const id = 'mtu:containers';
  const where = `subnet.env${bridge ? `, bridge ${bridge.name}` : ''}`;
  return problems.length > 0
    ? fail(id, problems.join('; '), fixes)
    : pass(id, `container MTU ${want} (${where})`);
}

/** The local bridge carrying `subnet` (its first address), e.g. cni0. */
function bridgeOf(host: HostFacts, subnet: string): LinkInfo | null {
  const a = host.addrs.find((x) => {
    const ip = x.cidr.split('/')[0] ?? '';
    return cidrCovers(subnet, ip) && !x.cidr.endsWith('/32');
  });
  return a
    ? (host.kernel.links.find((l) => l.index === a.index && l.kind === 'bridge') ?? null)
    : null;
}

export function sysctlChecks(i: DoctorInput, host: HostFacts, config: NetworkConfig): Check[] {
  const out: Check[] = [];
  const s = host.sysctl;
  const fwd4 = s['net.ipv4.ip_forward'];
  const fwd6 = s['net.ipv6.conf.all.forwarding'];
  if (config.enableIPv4 && fwd4 !== '1') {
    const msg = `net.ipv4.ip_forward is ${fwd4 ?? 'unknown'}: the host does not forward container traffic`;
    out.push(fail('ip_forward', msg, ['sysctl -w net.ipv4.ip_forward=1']));
  } else if (config.enableIPv4) out.push(pass('ip_forward', 'net.ipv4.ip_forward = 1'));
  if (config.enableIPv6 && fwd6 !== '1') {
    const msg = `net.ipv6.conf.all.forwarding is ${fwd6 ?? 'unknown'}`;
    out.push(fail('ipv6_forwarding', msg, ['sysctl -w net.ipv6.conf.all.forwarding=1']));
  }
  const devs = overlayDevices(config);
  const dev4 = host.kernel.links.find((l) => l.name === devs[4]) ?? null;
  const up = findUplink(host, i.own?.lease ?? null, dev4);
  const all = Number(s['net.ipv4.conf.all.rp_filter'] ?? 0);
  const strict = [devs[4], up?.name].filter(
    (n): n is string => !!n && Math.max(all, Number(s[`net.ipv4.conf.${n}.rp_filter`] ?? 0)) === 1,
  );
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
  if (!host.conntrack) return [...out, skip('conntrack', 'conntrack not loaded')];
  const { count, max } = host.conntrack;
  const fill = max > 0 ? count / max : 0;
  const msg = `conntrack table ${count}/${max} (${Math.round(fill * 100)} %)`;
  const grow = [`sysctl -w net.netfilter.nf_conntrack_max=${max * 2}`];
  if (fill > 0.9)
    out.push(fail('conntrack', `${msg}: new connections are dropped when full`, grow));
  else out.push(fill > 0.75 ? warn('conntrack', msg, grow) : pass('conntrack', msg));
  return out;
}
