/**
 * Address conversions at the netlink boundary: canonical strings ('10.5.1.0', 'fd00::1', '10.5.0.0/16',
 * '0e:aa:bb:cc:dd:01') to the byte buffers the kernel wants, and back. Also the few prefix computations
 * the backends need (contains, network address), over src/ip's parsers. Pure; throws TypeError on
 * malformed input (src/ip returns null or throws AddressError).
 */
import {
  Ip4Net,
  Ip6Net,
  formatIp6,
  formatMac,
  ipFamily as familyOfIp,
  netContains,
  tryParseIp4,
  tryParseIp6,
  tryParseMac,
  type IpNet,
} from '../ip/index.js';

export type IpFamily = 4 | 6;

export interface Cidr {
  readonly family: IpFamily;
  /** The address as written (not masked), canonical form. */
  readonly ip: string;
  readonly len: number;
}

/** Runs a src/ip parser, turning its AddressError into the TypeError this boundary throws. */
function typed<T>(what: string, text: string, v: T | null): T {
  if (v === null) throw new TypeError(`invalid ${what} ${JSON.stringify(text)}`);
  return v;
}

export function ipFamily(ip: string): IpFamily {
  return typed('IP address', ip, familyOfIp(ip));
}

/** 4 or 16 bytes, network order. */
export function ipToBytes(ip: string): Buffer {
  const v4 = tryParseIp4(ip);
  if (v4 !== null) {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v4);
    return b;
  }
  let v = typed('IP address', ip, tryParseIp6(ip));
  const out = Buffer.alloc(16);
  for (let i = 15; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/** Canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new TypeError(`address of ${b.length} bytes`);
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return formatIp6(v);
}

export function canonicalIp(ip: string): string {
  if (tryParseIp4(ip) !== null) return ip; // a dotted quad is only accepted in canonical form
  return formatIp6(typed('IP address', ip, tryParseIp6(ip)));
}

/** 'a/len' with the address as written (host bits kept, canonical form). */
export function parseCidr(cidr: string): Cidr {
  const slash = cidr.indexOf('/');
  const lenText = cidr.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(lenText))
    throw new TypeError(`invalid CIDR ${JSON.stringify(cidr)}`);
  const family = ipFamily(cidr.slice(0, slash));
  const len = Number(lenText);
  if (len > (family === 4 ? 32 : 128)) throw new TypeError(`invalid prefix length in ${cidr}`);
  return { family, ip: canonicalIp(cidr.slice(0, slash)), len };
}

/** The src/ip network of a CIDR text (host bits cleared). */
function net(cidr: string): IpNet {
  const c = parseCidr(cidr);
  return c.family === 4
    ? new Ip4Net(tryParseIp4(c.ip)!, c.len)
    : new Ip6Net(tryParseIp6(c.ip)!, c.len);
}

/** '10.5.3.7/16' → '10.5.0.0/16'. */
export function networkOf(cidr: string): string {
  return net(cidr).toString();
}

/** The network address alone: '10.5.3.0/24' → '10.5.3.0'. */
export function networkAddress(cidr: string): string {
  return networkOf(cidr).split('/')[0]!;
}

/** True when `ip` (an address or a CIDR) lies inside `cidr`. Different families never match. */
export function cidrContains(cidr: string, ip: string): boolean {
  const inner = ip.includes('/') ? net(ip) : net(`${ip}/${ipFamily(ip) === 4 ? 32 : 128}`);
  return netContains(net(cidr), inner);
}

/** Lower-case colon form; throws TypeError for anything else (hyphens and upper case accepted on input). */
export function canonicalMac(mac: string): string {
  return formatMac(macToBytes(mac));
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(typed('MAC address', mac, tryParseMac(mac)));
}

export function bytesToMac(b: Uint8Array): string {
  return Array.from(b)
    .map((x) => x.toString(16).padStart(2, '0'))
    .join(':');
}

/** Unicast (I/G bit clear), not all-zero. */
export function isUnicastMac(mac: string): boolean {
  const b = macToBytes(mac);
  return (b[0]! & 1) === 0 && b.some((x) => x !== 0);
}
