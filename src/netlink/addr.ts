/**
 * Address conversions at the netlink boundary: canonical strings ('10.5.1.0', 'fd00::1', '10.5.0.0/16',
 * '0e:aa:bb:cc:dd:01') to the byte buffers the kernel wants, and back, over src/ip's parsers. Pure;
 * throws TypeError on malformed input (src/ip returns null or throws AddressError). Prefix arithmetic
 * (network of a CIDR, containment) is src/ip's alone (src/ip/cidr.ts).
 */
import {
  formatIp6,
  ipFamily as familyOfIp,
  tryParseIp4,
  tryParseIp6,
  tryParseMac,
  type IpFamily,
} from '../ip/index.js';

export type { IpFamily };

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

/** The family of an address text; TypeError when it is neither. */
export function addrFamily(ip: string): IpFamily {
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

/** A CIDR text as the kernel message wants it: the address as written (host bits kept, canonical
 * form), its family and prefix length. */
export function cidrParts(cidr: string): Cidr {
  const slash = cidr.indexOf('/');
  const lenText = cidr.slice(slash + 1);
  if (slash < 0 || !/^\d{1,3}$/.test(lenText))
    throw new TypeError(`invalid CIDR ${JSON.stringify(cidr)}`);
  const family = addrFamily(cidr.slice(0, slash));
  const len = Number(lenText);
  if (len > (family === 4 ? 32 : 128)) throw new TypeError(`invalid prefix length in ${cidr}`);
  return { family, ip: canonicalIp(cidr.slice(0, slash)), len };
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(typed('MAC address', mac, tryParseMac(mac)));
}

export function bytesToMac(b: Uint8Array): string {
  return Array.from(b)
    .map((x) => x.toString(16).padStart(2, '0'))
    .join(':');
}
