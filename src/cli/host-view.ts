/**
 * Reading this host (the network namespace weftctl runs in): links, routes, neighbours and FDB through
 * the netlink façade; sysctls from /proc/sys; tx checksum offload from `ethtool -k`; conntrack fill;
 * weft's nft table (through weftd's own nft runner) and every forward-hook chain with a drop policy;
 * subnet.env (weftd's reader); weftd's /healthz and /readyz. Every reader reports a failure as data
 * (`error` fields, nulls) so one missing tool never hides the rest of the report.
 */
import { runCommand } from '../exec/run-command.js';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { describeError } from '../errors.js';
import { IPT_CHAIN, createIptablesRunner } from '../firewall/iptables-forward.js';
import { createNftRunner, type NftObject } from '../firewall/nft.js';
import { readRegularFile } from '../files/read-regular.js';
import {
  MAX_SUBNET_ENV_BYTES,
  previousSubnets,
  subnetEnvSettings,
  type PreviousSubnets,
} from '../lease/subnet-env.js';
import {
  createNetlinkOps,
  type AddrEntry,
  type FdbEntry,
  type NeighEntry,
  type NetlinkOps,
  type RouteEntry,
} from '../netlink/index.js';
import type { KernelState } from './kernel-entries.js';

export interface NftState {
  /** `nft -j list table ip weft` objects; null when the table is absent. */
  readonly weft4: readonly NftObject[] | null;
  readonly weft6: readonly NftObject[] | null;
  /** Forward-hook chains of other tables whose policy is drop ('ip filter FORWARD'). */
  readonly forwardDrop: readonly string[];
  /** `iptables -S FORWARD` and `-S WEFT-FWD` per family (null: iptables not installed). */
  readonly iptables?: Readonly<Record<4 | 6, { forward: string | null; weft: string | null }>>;
  readonly error: string | null;
}

export interface SubnetEnvState {
  readonly path: string;
  /** null when the file does not exist or cannot be read (see `error`). */
  readonly text: string | null;
  readonly parsed: PreviousSubnets | null;
  readonly mtu: number | null;
  readonly ipMasq: boolean | null;
  readonly error: string | null;
}

export interface HealthState {
  readonly url: string;
  /** HTTP status of /healthz and /readyz; null when weftd did not answer. */
  readonly healthz: number | null;
  readonly readyz: number | null;
  readonly error: string | null;
}

export interface HostFacts {
  readonly kernelRelease: string;
  readonly kernel: KernelState;
  readonly addrs: readonly AddrEntry[];
  /** sysctl name → value (null: absent). */
  readonly sysctl: Readonly<Record<string, string | null>>;
  /** Overlay device → 'on' | 'off' for tx-checksum-ip-generic (null: unknown). */
  readonly txChecksum: Readonly<Record<string, string | null>>;
  readonly conntrack: { readonly count: number; readonly max: number } | null;
  /** UDP datagrams this netns received with a bad checksum (`/proc/net/snmp` Udp InCsumErrors). */
  readonly udpCsumErrors?: number | null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** The state of one feature in `ethtool -k` output (pure). */
export function parseEthtoolFeature(text: string, feature: string): string | null {
  const m = new RegExp(`^\\s*${feature.replace(/[-]/g, '\\-')}:\\s*(on|off)`, 'm').exec(text);
  return m?.[1] ?? null;
}

/** Udp InCsumErrors from `/proc/net/snmp` text (pure); null when absent. */
export function parseUdpCsumErrors(text: string): number | null {
  const lines = text.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length < 2) return null;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const i = names.indexOf('InCsumErrors');
  const v = i > 0 ? Number(values[i]) : NaN;
  return Number.isFinite(v) ? v : null;
}

/** The kernel's links, routes (main table), and neighbour + FDB entries of `devices`. */
export async function readKernel(
  ops: NetlinkOps,
  devices: readonly string[],
  families: readonly (4 | 6)[],
): Promise<{ kernel: KernelState; addrs: AddrEntry[] }> {
  const links = await ops.listLinks();
  const routes: RouteEntry[] = [];
  const neighs: NeighEntry[] = [];
  const fdb: FdbEntry[] = [];
  const addrs: AddrEntry[] = [];
  for (const f of families) routes.push(...(await ops.routeList(f)));
  // one request per link and family; the façade keeps at most 64 in flight
  const perLink = await Promise.all(
    links.flatMap((l) => families.map((f) => ops.listAddrs(l.index, f).catch(() => []))),
  );
  for (const a of perLink) addrs.push(...a);
  for (const name of devices) {
    const dev = links.find((l) => l.name === name);
    if (!dev) continue;
    for (const f of families) neighs.push(...(await ops.neighList(f, dev.index)));
    fdb.push(...(await ops.fdbList(dev.index)));
  }
  return { kernel: { links, routes, neighs, fdb }, addrs };
}

export async function readHostFacts(
  devices: readonly string[],
  families: readonly (4 | 6)[],
  timeoutMs: number,
): Promise<HostFacts> {
  const ops = createNetlinkOps({ timeoutMs });
  try {
    const { kernel, addrs } = await readKernel(ops, devices, families);
    // sysctl name parts: `net.<parts joined by .>` read from /proc/sys/net/<parts joined by />
    const names = [
      ['ipv4', 'ip_forward'],
      ['ipv6', 'conf', 'all', 'forwarding'],
      ['ipv4', 'conf', 'all', 'rp_filter'],
      ['ipv4', 'conf', 'default', 'rp_filter'],
      ...kernel.links
        .filter((l) => /^[A-Za-z0-9_.-]{1,15}$/.test(l.name) && l.name !== '.' && l.name !== '..')
        .map((l) => ['ipv4', 'conf', l.name, 'rp_filter']),
    ];
    const paths = names.map((n) => [`net.${n.join('.')}`, `net/${n.join('/')}`] as const);
    const sysctls: Record<string, string | null> = {};
    await Promise.all(
      paths.map(async ([name, path]) => (sysctls[name] = await readText(`/proc/sys/${path}`))),
    );
    const txChecksum: Record<string, string | null> = {};
    for (const d of devices) {
      if (!kernel.links.some((l) => l.name === d)) continue;
      const r = await runCommand(['ethtool', '-k', d], { timeoutMs });
      txChecksum[d] = r.code === 0 ? parseEthtoolFeature(r.stdout, 'tx-checksum-ip-generic') : null;
    }
    const count = await readText('/proc/sys/net/netfilter/nf_conntrack_count');
    const max = await readText('/proc/sys/net/netfilter/nf_conntrack_max');
    const snmp = await readText('/proc/net/snmp');
    return {
      udpCsumErrors: snmp === null ? null : parseUdpCsumErrors(snmp),
      kernelRelease: release(),
      kernel,
      addrs,
      sysctl: sysctls,
      txChecksum,
      conntrack: count !== null && max !== null ? { count: Number(count), max: Number(max) } : null,
    };
  } finally {
    ops.close();
  }
}

/** weft's nft tables and foreign forward chains that drop by default. Never throws. */
export async function readNft(timeoutMs: number): Promise<NftState> {
  const nft = createNftRunner({ timeoutMs });
  try {
    const [weft4, weft6] = await Promise.all([
      nft.listTable('ip', 'weft'),
      nft.listTable('ip6', 'weft'),
    ]);
    const r = await runCommand(['nft', '-j', 'list', 'chains'], { timeoutMs });
    const forwardDrop = r.code === 0 ? forwardDropChains(r.stdout) : [];
    const ipt = createIptablesRunner();
    const read = async (f: 4 | 6): Promise<{ forward: string | null; weft: string | null }> => {
      const forward = await ipt.list(f, 'FORWARD').catch(() => null);
      // iptables-nft 1.8.9 calls an absent chain "incompatible" (exit 1) instead of "No chain"
      const weft = forward === null ? null : await ipt.list(f, IPT_CHAIN).catch(() => '');
      return { forward, weft };
    };
    const iptables = { 4: await read(4), 6: await read(6) };
    const error = r.code === 0 ? null : `nft list chains: ${r.message.trim()}`;
    return { iptables, weft4, weft6, forwardDrop, error };
  } catch (err) {
    return { weft4: null, weft6: null, forwardDrop: [], error: describeError(err) };
  }
}

/** Forward-hook base chains with policy drop in `nft -j list chains` output (pure). */
export function forwardDropChains(json: string): string[] {
  try {
    const parsed = JSON.parse(json) as { nftables?: { chain?: Record<string, unknown> }[] };
    return (parsed.nftables ?? []).flatMap((o) => {
      const c = o.chain;
      if (!c || c['hook'] !== 'forward' || c['policy'] !== 'drop') return [];
      return [`${String(c['family'])} ${String(c['table'])} ${String(c['name'])}`];
    });
  } catch {
    return [];
  }
}

export async function readSubnetEnvState(path: string): Promise<SubnetEnvState> {
  // weftd's own reader: a FIFO or device planted at the path must not hang weftctl (src/files/read-regular.ts)
  const r = await readRegularFile(path, MAX_SUBNET_ENV_BYTES);
  if (!r.ok) return { path, text: null, parsed: null, mtu: null, ipMasq: null, error: r.problem };
  const text = r.buf.toString('utf8');
  return { path, text, parsed: previousSubnets(text), ...subnetEnvSettings(text), error: null };
}

async function status(url: string, timeoutMs: number): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.body?.cancel();
  return res.status;
}

/** weftd's /healthz and /readyz (null: no --healthz-url / --healthz-port). Never throws. */
export async function readHealth(
  base: string | null,
  timeoutMs: number,
): Promise<HealthState | null> {
  if (base === null) return null;
  try {
    const [healthz, readyz] = await Promise.all([
      status(`${base}/healthz`, timeoutMs),
      status(`${base}/readyz`, timeoutMs),
    ]);
    return { url: base, healthz, readyz, error: null };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { url: base, healthz: null, readyz: null, error: cause ?? describeError(err) };
  }
}
