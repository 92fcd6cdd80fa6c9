/**
 * IPv4/IPv6 interface addresses (`addr/prefix`, host bits kept) for the CNI plugin, weftd and weftctl; built on
 * ip4.ts/ip6.ts (pure,
 * no dependencies, so the bundled plugin stays small). Addresses are bigints for both families; a HostCidr
 * keeps the address as written (host bits kept) next to its network. Text output is canonical (RFC 5952
 * for IPv6).
 */
import { formatIp4, ip4Mask, tryParseIp4 } from './ip4.js';
import { formatIp6, ip6Mask, tryParseIp6 } from './ip6.js';

export type Family = 4 | 6;

export interface HostCidr {
  readonly family: Family;
  /** The address as written (host bits kept). */
  readonly addr: bigint;
  readonly prefix: number;
  /** The network address (host bits cleared). */
  readonly network: bigint;
}

/** Parses an IPv4 or IPv6 address (no zone, no embedded IPv4 such as '::ffff:1.2.3.4'). */
export function parseIP(s: string): { family: Family; addr: bigint } | undefined {
  const v4 = tryParseIp4(s);
  if (v4 !== null) return { family: 4, addr: BigInt(v4) };
  const v6 = s.includes('.') ? null : tryParseIp6(s);
  if (v6 !== null) return { family: 6, addr: v6 };
  return undefined;
}

const bits = (f: Family): number => (f === 4 ? 32 : 128);

function mask(family: Family, prefix: number): bigint {
  return family === 4 ? BigInt(ip4Mask(prefix)) : ip6Mask(prefix);
}

/** Parses `addr/prefix`; undefined when malformed. */
export function parseHostCidr(s: string): HostCidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bits(ip.family)) return undefined;
  return { ...ip, prefix, network: ip.addr & mask(ip.family, prefix) };
}

export function formatIP(family: Family, addr: bigint): string {
  return family === 4 ? formatIp4(Number(addr)) : formatIp6(addr);
}

/** `network/prefix`, canonical. */
export function formatNetwork(c: HostCidr): string {
  return `${formatIP(c.family, c.network)}/${c.prefix}`;
}

/** `addr/prefix` with host bits kept, canonical. */
export function formatCidr(c: HostCidr): string {
  return `${formatIP(c.family, c.addr)}/${c.prefix}`;
}

/** True when `inner` lies entirely within `outer`. */
export function cidrContains(outer: HostCidr, inner: HostCidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefix >= outer.prefix &&
    (inner.network & mask(outer.family, outer.prefix)) === outer.network
  );
}

/** The first host address of the network (`.1`), the gateway host-local picks by default. */
export function firstHost(c: HostCidr): string {
  return formatIP(c.family, c.network + 1n);
}
