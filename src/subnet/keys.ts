/**
 * Subnet key codec (docs/flannel-compat.md §1): `<a.b.c.d>-<len>` for IPv4, `<v4key>&<v6addr>-<len>` for dual
 * stack, the IPv6 address in canonical compressed lowercase form ('10.5.1.0-24&fc00::-64').
 *
 * Parsing follows flannel's regex (`(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$`, v4 length 0–31,
 * v6 length 0–127) but is strict where flannel is loose: anchored at both ends, real dots, valid octets,
 * no host bits. A key that does not parse is skipped by the caller with a warning naming it.
 */
import { Ip4Net } from '../ip/ip4.js';
import { Ip6Net } from '../ip/ip6.js';

const KEY = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})(?:&([a-f\d:]+)-(\d{1,3}))?$/;

export interface SubnetKey {
  /** IPv4 subnet in canonical CIDR form. */
  readonly subnet: string;
  /** IPv6 subnet in canonical CIDR form, or null. */
  readonly subnet6: string | null;
}

/** The key for a subnet pair: `makeSubnetKey('10.5.1.0/24', 'fc00::/64')` → '10.5.1.0-24&fc00::-64'. */
export function makeSubnetKey(subnet: string, subnet6: string | null = null): string {
  const v4 = Ip4Net.parse(subnet, { strict: true }).toString().replace('/', '-');
  if (subnet6 === null) return v4;
  return `${v4}&${Ip6Net.parse(subnet6, { strict: true }).toString().replace('/', '-')}`;
}

/** Parses a subnet key (the part after `<prefix>/subnets/`), or null when it is not a valid one. */
export function parseSubnetKey(key: string): SubnetKey | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const v4len = Number(m[2]);
  if (v4len > 31) return null;
  const v4 = Ip4Net.tryParse(`${m[1]}/${v4len}`, { strict: true });
  if (!v4 || /(^|\.)0\d/.test(m[1]!)) return null;
  if (m[3] === undefined) return { subnet: v4.toString(), subnet6: null };
  const v6len = Number(m[4]);
  if (v6len > 127) return null;
  const v6 = Ip6Net.tryParse(`${m[3]}/${v6len}`, { strict: true });
  if (!v6) return null;
  return { subnet: v4.toString(), subnet6: v6.toString() };
}
