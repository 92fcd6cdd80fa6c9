/**
 * Address conversions at the netlink boundary: canonical strings ('10.5.1.0', 'fd00::1', '10.5.0.0/16',
 * '0e:aa:bb:cc:dd:01') to the byte buffers the kernel wants, and back. Also the few prefix computations
 * the backends need (contains, network address). Pure; throws TypeError on malformed input. IPv6 text
 * is written by src/ip's RFC 5952 formatter, so both give the same canonical form.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIp6 } from '../ip/ip6.js';

export type IpFamily = 4 | 6;

export interface Cidr {
  readonly family: IpFamily;
  /** The address as written (not masked), canonical form. */
  readonly ip: string;
  readonly len: number;
}

export function ipFamily(ip: string): IpFamily {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  throw new TypeError(`invalid IP address ${JSON.stringify(ip)}`);
}

function v6Bytes(ip: string): Buffer {
  let s = ip.toLowerCase();
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4Bytes(v4[2]!);
    s = `${v4[1]!}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const parts = s.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length === 2 && parts[1] ? parts[1].split(':') : [];
  const fill = parts.length === 2 ? 8 - head.length - tail.length : 0;
  const words = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (parts.length > 2 || words.length !== 8) {
    throw new TypeError(`invalid IPv6 address ${JSON.stringify(ip)}`);
  }
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

function v4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** 4 or 16 bytes, network order. */
export function ipToBytes(ip: string): Buffer {
  return ipFamily(ip) === 4 ? v4Bytes(ip) : v6Bytes(ip);
}

/** Canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new TypeError(`address of ${b.length} bytes`);
  return formatIp6(toBig(b));
}

export function canonicalIp(ip: string): string {
  // net.isIPv4 accepts only the canonical dotted quad (no leading zeros): nothing to normalise.
  if (isIPv4(ip)) return ip;
  return bytesToIp(ipToBytes(ip));
}

export function parseCidr(cidr: string): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) throw new TypeError(`invalid CIDR ${JSON.stringify(cidr)}`);
  const family = ipFamily(m[1]!);
  const len = Number(m[2]);
  if (len > (family === 4 ? 32 : 128)) throw new TypeError(`invalid prefix length in ${cidr}`);
  return { family, ip: canonicalIp(m[1]!), len };
}

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function maskBytes(b: Uint8Array, len: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** '10.5.3.7/16' → '10.5.0.0/16'. */
export function networkOf(cidr: string): string {
  const c = parseCidr(cidr);
  return `${bytesToIp(maskBytes(ipToBytes(c.ip), c.len))}/${c.len}`;
}

/** The network address alone: '10.5.3.0/24' → '10.5.3.0'. */
export function networkAddress(cidr: string): string {
  return networkOf(cidr).split('/')[0]!;
}

/** True when `ip` (an address or a CIDR) lies inside `cidr`. Different families never match. */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const inner = ip.includes('/')
    ? parseCidr(ip)
    : { family: ipFamily(ip), ip, len: c.family === 4 ? 32 : 128 };
  if (inner.family !== c.family || inner.len < c.len) return false;
  const a = toBig(maskBytes(ipToBytes(c.ip), c.len));
  const b = toBig(maskBytes(ipToBytes(inner.ip), c.len));
  return a === b;
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/** Lower-case colon form; throws TypeError for anything else (hyphens and upper case accepted on input). */
export function canonicalMac(mac: string): string {
  const m = mac.toLowerCase().replace(/-/g, ':');
  if (!MAC.test(m)) throw new TypeError(`invalid MAC address ${JSON.stringify(mac)}`);
  return m;
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(
    canonicalMac(mac)
      .split(':')
      .map((x) => parseInt(x, 16)),
  );
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
