/** Family-generic CIDR helpers over `Ip4Net` and `Ip6Net`, for code that handles both. */
import { AddressError, Ip4Net, tryParseIp4 } from './ip4.js';
import { Ip6Net, tryParseIp6 } from './ip6.js';

export type IpFamily = 4 | 6;
export type IpNet = Ip4Net | Ip6Net;

/** The default options, one object (not one allocated per call: every peer lease's subnet is parsed). */
const LENIENT: { strict?: boolean } = Object.freeze({});

/** Parses an IPv4 or IPv6 CIDR (host bits cleared unless `strict`); null when neither. */
export function tryParseCidr(text: string, options: { strict?: boolean } = LENIENT): IpNet | null {
  return text.includes(':') ? Ip6Net.tryParse(text, options) : Ip4Net.tryParse(text, options);
}

export function parseCidr(text: string, options: { strict?: boolean } = {}): IpNet {
  const net = tryParseCidr(text, options);
  if (!net) throw new AddressError(`invalid CIDR ${JSON.stringify(text)}`);
  return net;
}

/** Canonical text of a CIDR ('FC00:0::1/64' → 'fc00::/64', '10.5.52.1/24' → '10.5.52.0/24'). */
export function canonicalCidr(text: string): string {
  return parseCidr(text).toString();
}

/** True when `inner` lies entirely inside `outer` (false when the families differ). */
export function netContains(outer: IpNet, inner: IpNet): boolean {
  if (outer instanceof Ip4Net) return inner instanceof Ip4Net && outer.contains(inner);
  return inner instanceof Ip6Net && outer.contains(inner);
}

export function netOverlaps(a: IpNet, b: IpNet): boolean {
  return netContains(a, b) || netContains(b, a);
}

export function familyOf(net: IpNet): IpFamily {
  return net instanceof Ip4Net ? 4 : 6;
}

/** The family of an address text, or null when it is neither an IPv4 nor an IPv6 address. */
export function ipFamily(text: string): IpFamily | null {
  if (tryParseIp4(text) !== null) return 4;
  if (tryParseIp6(text) !== null) return 6;
  return null;
}

/** True when the address text lies inside the CIDR text (false when families differ or either is bad). */
export function cidrContainsIp(cidr: string, ip: string): boolean {
  const net = tryParseCidr(cidr);
  if (!net) return false;
  if (net instanceof Ip4Net) {
    const v = tryParseIp4(ip);
    return v !== null && net.containsIp(v);
  }
  const v = tryParseIp6(ip);
  return v !== null && net.containsIp(v);
}

/** The network address alone: '10.5.3.7/24' → '10.5.3.0' (AddressError when malformed). */
export function networkAddress(text: string): string {
  const net = canonicalCidr(text);
  return net.slice(0, net.indexOf('/'));
}

/**
 * True when `inner` (an address or a CIDR) lies inside the CIDR `outer`; false when the families differ.
 * AddressError when either is malformed (`cidrContainsIp` is the lenient form for an address).
 */
export function cidrCovers(outer: string, inner: string): boolean {
  const net = parseCidr(outer);
  if (inner.includes('/')) return netContains(net, parseCidr(inner));
  const family = ipFamily(inner);
  if (family === null) throw new AddressError(`invalid IP address ${JSON.stringify(inner)}`);
  return netContains(net, parseCidr(`${inner}/${family === 4 ? 32 : 128}`));
}
