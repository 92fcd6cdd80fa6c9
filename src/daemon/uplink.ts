/**
 * Choosing the underlay interface and the public addresses as flannel does (docs/flannel-compat.md §9):
 * each `--iface` (name or IP), then each `--iface-regex` (matched against IPs first, then names), then
 * `--iface-can-reach` (the route to that IP); with none of them, the interface owning `--public-ip`,
 * else the default-route interface (v4 and v6 must agree in dual stack).
 *
 * `selectUplink` is pure over a `HostSnapshot`; `readHostSnapshot` reads /sys, getifaddrs, the IPv6
 * addresses' flags over netlink and /proc/net/{route,ipv6_route} of the namespace weftd runs in.
 *
 * IPv6 addresses that are temporary (RFC 8981 privacy addresses, rotated by the kernel), deprecated
 * (preferred lifetime over: being renumbered away), tentative (DAD running: not usable as a source) or
 * dadfailed are never this host's public IPv6, and their coming and going is not a move. flannel
 * takes the first global address whatever its flags (flannel pkg/ip/iface.go), which is the newest one,
 * so usually a temporary address that stops working within a day (flannel-io/flannel#2081).
 */
import { readFile, readdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { formatIp6, ipFamily, parseIp4, parseIp6 } from '../ip/index.js';
import { WeftError } from '../errors.js';
import type { Uplink } from '../backend/backend.js';
import type { DaemonOptions } from './flags.js';
import type { NetlinkOps } from '../netlink/index.js';

export interface HostInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  /** Global-scope addresses in kernel order; IPv6 only the usable ones (`unfitFlag6`). */
  readonly addrs4: readonly string[];
  readonly addrs6: readonly string[];
  /** Global IPv6 addresses left out, with why: 'fd18::5 (temporary)'. */
  readonly unfit6?: readonly string[];
}

export interface HostRoute {
  readonly family: 4 | 6;
  /** Network address of the destination, e.g. '0.0.0.0' or '::'. */
  readonly dst: string;
  readonly prefixLen: number;
  readonly gateway: string | null;
  readonly iface: string;
  readonly metric: number;
}

export interface HostSnapshot {
  readonly interfaces: readonly HostInterface[];
  readonly routes: readonly HostRoute[];
}

/** weftd's interface flags (daemon/flags.ts) and the config's families. */
export interface UplinkRequest extends Pick<
  DaemonOptions,
  'iface' | 'ifaceRegex' | 'ifaceCanReach' | 'publicIp' | 'publicIpv6'
> {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

function interfaceError(message: string): WeftError {
  return new WeftError('E_INTERFACE', message);
}

function bigOf(ip: string): { family: 4 | 6; value: bigint } {
  return ip.includes(':')
    ? { family: 6, value: parseIp6(ip) }
    : { family: 4, value: BigInt(parseIp4(ip)) };
}

/** Longest-prefix match, lowest metric on ties (an approximation of `ip route get`). */
export function routeTo(routes: readonly HostRoute[], dst: string): HostRoute | null {
  const target = bigOf(dst);
  const bits = target.family === 4 ? 32 : 128;
  let best: HostRoute | null = null;
  for (const r of routes) {
    if (r.family !== target.family) continue;
    const shift = BigInt(bits - r.prefixLen);
    if (target.value >> shift !== bigOf(r.dst).value >> shift) continue;
    if (
      !best ||
      r.prefixLen > best.prefixLen ||
      (r.prefixLen === best.prefixLen && r.metric < best.metric)
    )
      best = r;
  }
  return best;
}

function ownerOf(snap: HostSnapshot, ip: string): HostInterface | undefined {
  const want = bigOf(ip);
  return snap.interfaces.find((i) =>
    (want.family === 4 ? i.addrs4 : i.addrs6).some((a) => bigOf(a).value === want.value),
  );
}

function byName(snap: HostSnapshot, name: string): HostInterface | undefined {
  return snap.interfaces.find((i) => i.name === name);
}

function defaultRouteIface(snap: HostSnapshot, family: 4 | 6): string | null {
  const defaults = snap.routes
    .filter((r) => r.family === family && r.prefixLen === 0)
    .sort((a, b) => a.metric - b.metric);
  return defaults[0]?.iface ?? null;
}

/** Has an address of every enabled family and a usable MTU (flannel skips others and tries the next). */
function usable(i: HostInterface, req: UplinkRequest): boolean {
  return i.mtu > 0 && (!req.ipv4 || i.addrs4.length > 0) && (!req.ipv6 || i.addrs6.length > 0);
}

function findInterface(snap: HostSnapshot, req: UplinkRequest): HostInterface {
  const candidates: HostInterface[] = [];
  for (const spec of req.iface) {
    const found = ipFamily(spec) !== null ? ownerOf(snap, spec) : byName(snap, spec);
    if (found) candidates.push(found);
  }
  for (const re of req.ifaceRegex) {
    const rx = new RegExp(re);
    const byIp = snap.interfaces.find((i) => [...i.addrs4, ...i.addrs6].some((a) => rx.test(a)));
    const named = snap.interfaces.find((i) => rx.test(i.name));
    if (byIp) candidates.push(byIp);
    if (named) candidates.push(named);
  }
  if (req.ifaceCanReach) {
    const r = routeTo(snap.routes, req.ifaceCanReach);
    const found = r ? byName(snap, r.iface) : undefined;
    if (found) candidates.push(found);
  }
  // the first usable match wins; a match without the needed addresses is reported by selectUplink
  const chosen = candidates.find((i) => usable(i, req)) ?? candidates[0];
  if (chosen) return chosen;
  const anyChoice = req.iface.length > 0 || req.ifaceRegex.length > 0 || req.ifaceCanReach !== null;
  if (anyChoice) {
    throw interfaceError(
      `failed to find interface to use that matches --iface=${req.iface.join(',') || '∅'} ` +
        `--iface-regex=${req.ifaceRegex.join(',') || '∅'} --iface-can-reach=${req.ifaceCanReach ?? '∅'}: ` +
        `check the names and addresses with 'ip addr'`,
    );
  }
  const pub = req.publicIp ?? req.publicIpv6;
  if (pub) {
    const owner = ownerOf(snap, pub);
    if (!owner) {
      throw interfaceError(
        `no interface owns public IP ${pub}: behind NAT also pass --iface (the interface to send from)`,
      );
    }
    return owner;
  }
  const v4 = req.ipv4 ? defaultRouteIface(snap, 4) : null;
  const v6 = req.ipv6 ? defaultRouteIface(snap, 6) : null;
  if (req.ipv4 && req.ipv6 && v4 && v6 && v4 !== v6) {
    throw interfaceError(
      `the IPv4 default route uses ${v4} but the IPv6 one uses ${v6}: pass --iface to choose one`,
    );
  }
  const name = v4 ?? v6;
  const found = name ? byName(snap, name) : undefined;
  if (!found) {
    throw interfaceError(
      'failed to find the default-route interface: add a default route or pass --iface',
    );
  }
  return found;
}

/** Picks the uplink and public addresses; throws WeftError E_INTERFACE naming what to pass. */
export function selectUplink(snap: HostSnapshot, req: UplinkRequest): Uplink {
  const ifc = findInterface(snap, req);
  if (ifc.mtu <= 0)
    throw interfaceError(`interface ${ifc.name} reports MTU ${ifc.mtu}: fix its MTU`);
  const ifaceAddr = ifc.addrs4[0] ?? null;
  const ifaceAddr6 = ifc.addrs6[0] ?? null;
  if (req.ipv4 && !ifaceAddr) {
    throw interfaceError(
      `interface ${ifc.name} has no global IPv4 address: IPv4 is enabled in the network config`,
    );
  }
  if (req.ipv6 && !ifaceAddr6) {
    const unfit = ifc.unfit6?.length ? ` (not usable: ${ifc.unfit6.join(', ')})` : '';
    throw interfaceError(
      `interface ${ifc.name} has no global IPv6 address${unfit}: IPv6 is enabled in the network config`,
    );
  }
  return {
    name: ifc.name,
    index: ifc.index,
    mtu: ifc.mtu,
    ifaceAddr: req.ipv4 ? ifaceAddr : null,
    ifaceAddr6: req.ipv6 ? ifaceAddr6 : null,
    publicIp: req.ipv4 ? (req.publicIp ?? ifaceAddr) : null,
    publicIpv6: req.ipv6 ? (req.publicIpv6 ?? ifaceAddr6) : null,
  };
}

// ---- reading the host -------------------------------------------------------------------------

function isGlobal4(a: string): boolean {
  return !a.startsWith('127.') && !a.startsWith('169.254.');
}

function isGlobal6(a: string): boolean {
  const l = a.toLowerCase();
  return l !== '::1' && !/^fe[89ab]/.test(l);
}

/** The flag (netlink's names, src/netlink/addr-flags.ts) that keeps an IPv6 address from being the
 *  public IPv6, or null when it may be. */
export function unfitFlag6(flags: readonly string[]): string | null {
  return (
    flags.find((f) => ['temporary', 'deprecated', 'tentative', 'dadfailed'].includes(f)) ?? null
  );
}

function hexLe4(h: string): string {
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

function maskLen(h: string): number {
  let n = parseInt(h, 16) >>> 0;
  let len = 0;
  while (n) {
    len += n & 1;
    n >>>= 1;
  }
  return len;
}

/** Parses /proc/net/route (main table, IPv4). Exported for unit tests. */
export function parseProcRoute(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const flags = parseInt(f[3] ?? '0', 16);
    if (!(flags & 1) || flags & 0x200) continue; // RTF_UP; skip RTF_REJECT
    const gw = hexLe4(f[2] ?? '0');
    out.push({
      family: 4,
      iface: f[0] ?? '',
      dst: hexLe4(f[1] ?? '0'),
      gateway: gw === '0.0.0.0' ? null : gw,
      metric: Number(f[6] ?? 0),
      prefixLen: maskLen(f[7] ?? '0'),
    });
  }
  return out;
}

function hex6(h: string): string {
  return formatIp6(BigInt(`0x${h}`));
}

/** Parses /proc/net/ipv6_route. Exported for unit tests. */
export function parseProcIpv6Route(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const flags = parseInt(f[8] ?? '0', 16);
    const iface = f[9] ?? '';
    if (!(flags & 1) || flags & 0x200 || iface === 'lo') continue;
    const gw = hex6(f[4] ?? '0');
    out.push({
      family: 6,
      dst: hex6(f[0] ?? '0'),
      prefixLen: parseInt(f[1] ?? '0', 16),
      gateway: gw === '::' ? null : gw,
      metric: parseInt(f[5] ?? '0', 16),
      iface,
    });
  }
  return out;
}

async function readNum(path: string): Promise<number> {
  return Number((await readFile(path, 'utf8')).trim());
}

/**
 * The uplink's address gone from its interface while another one of that family is there (DHCP gave
 * another address, an operator renumbered it): `eth0 198.18.0.1 → 198.18.0.11`, else null. The tunnel
 * source and the published IP are stale then; only a restart picks the new address up (and keeps the
 * subnet). An interface left without any address, or gone, is not a move.
 */
export function uplinkAddressMoved(uplink: Uplink, snap: HostSnapshot): string | null {
  const ifc = snap.interfaces.find((i) => i.name === uplink.name);
  if (!ifc) return null;
  const pairs: [string | null, readonly string[]][] = [
    [uplink.ifaceAddr, ifc.addrs4],
    [uplink.ifaceAddr6, ifc.addrs6],
  ];
  const moved = pairs.flatMap(([was, now]) =>
    was && now[0] && !now.includes(was) ? [`${was} → ${now[0]}`] : [],
  );
  return moved.length > 0 ? `${uplink.name} ${moved.join(', ')}` : null;
}

/**
 * The uplink's MTU now against the one weftd started with, e.g. 'eth0 1500 → 1400'; null when equal or
 * the interface is gone. The devices' MTU and FLANNEL_MTU were derived from the old one at the start.
 */
export function uplinkMtuChanged(uplink: Uplink, snap: HostSnapshot): string | null {
  const ifc = snap.interfaces.find((i) => i.name === uplink.name);
  return ifc && ifc.mtu > 0 && ifc.mtu !== uplink.mtu
    ? `${uplink.name} ${uplink.mtu} → ${ifc.mtu}`
    : null;
}

/**
 * The global IPv6 addresses of link `index` in kernel order, split by their flags (getifaddrs has
 * none); only asked for links getifaddrs lists a global IPv6 address on (one dump each).
 */
async function addrs6Of(
  netlink: Pick<NetlinkOps, 'listAddrs'>,
  index: number,
): Promise<{ addrs6: string[]; unfit6: string[] }> {
  const addrs6: string[] = [];
  const unfit6: string[] = [];
  for (const a of await netlink.listAddrs(index, 6)) {
    const ip = a.cidr.slice(0, a.cidr.indexOf('/'));
    if (!isGlobal6(ip)) continue;
    const unfit = unfitFlag6(a.flags ?? []);
    if (unfit) unfit6.push(`${ip} (${unfit})`);
    else addrs6.push(ip);
  }
  return { addrs6, unfit6 };
}

/** Reads interfaces, addresses and routes of the current network namespace. */
export async function readHostSnapshot(
  netlink: Pick<NetlinkOps, 'listAddrs'>,
): Promise<HostSnapshot> {
  const addrs = networkInterfaces();
  const interfaces: HostInterface[] = [];
  for (const name of await readdir('/sys/class/net')) {
    let index: number;
    try {
      index = await readNum(`/sys/class/net/${name}/ifindex`);
    } catch {
      continue; // vanished while listing
    }
    const list = addrs[name] ?? [];
    // a netlink failure rejects (the caller retries) instead of hiding the interface
    const v6 = list.some((a) => a.family === 'IPv6' && isGlobal6(a.address))
      ? await addrs6Of(netlink, index)
      : { addrs6: [] };
    try {
      interfaces.push({
        name,
        index,
        mtu: await readNum(`/sys/class/net/${name}/mtu`),
        addrs4: list
          .filter((a) => a.family === 'IPv4' && isGlobal4(a.address))
          .map((a) => a.address),
        ...v6,
      });
    } catch {
      /* vanished while listing */
    }
  }
  const v4 = await readFile('/proc/net/route', 'utf8').catch(() => '');
  const v6 = await readFile('/proc/net/ipv6_route', 'utf8').catch(() => '');
  return { interfaces, routes: [...parseProcRoute(v4), ...parseProcIpv6Route(v6)] };
}
