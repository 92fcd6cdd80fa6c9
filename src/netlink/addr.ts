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

/**
 * A canonical dotted quad (what net.isIPv4 accepts: no leading zeros) as an unsigned 32-bit number, or
 * -1. The fast path of the helpers below: weft handles thousands of IPv4 peers per reconcile.
 */
function parseV4(ip: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

const v4Text = (v: number): string =>
  `${Math.floor(v / 0x1000000) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

/** The network mask of a /len IPv4 prefix as an unsigned 32-bit number. */
const v4Mask = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

/** '10.5.3.0/24' → [address, len] when it is a canonical IPv4 CIDR, else null. */
function parseV4Cidr(cidr: string): [number, number] | null {
  const slash = cidr.indexOf('/');
  if (slash < 0 || slash === cidr.length - 1 || cidr.length - slash > 3) return null;
  let len = 0;
  for (let i = slash + 1; i < cidr.length; i++) {
    const c = cidr.charCodeAt(i);
    if (c < 48 || c > 57) return null;
    len = len * 10 + (c - 48);
  }
  if (len > 32) return null;
  const v = parseV4(cidr.slice(0, slash));
  return v < 0 ? null : [v, len];
}

export function ipFamily(ip: string): IpFamily {
  if (parseV4(ip) >= 0 || isIPv4(ip)) return 4;
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
  const v = parseV4(ip);
  if (v < 0) return Buffer.from(ip.split('.').map(Number));
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v);
  return b;
}

/** 4 or 16 bytes, network order. */
export function ipToBytes(ip: string): Buffer {
  return ipFamily(ip) === 4 ? v4Bytes(ip) : v6Bytes(ip);
}

/** Canonical text (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new TypeError(`address of ${b.length} bytes`);
  return formatIp6(toBig(b));
}

export function canonicalIp(ip: string): string {
  // net.isIPv4 accepts only the canonical dotted quad (no leading zeros): nothing to normalise.
  if (isIPv4(ip)) return ip;
  return bytesToIp(ipToBytes(ip));
}

export function parseCidr(cidr: string): Cidr {
  const fast = parseV4Cidr(cidr);
  if (fast) return { family: 4, ip: cidr.slice(0, cidr.indexOf('/')), len: fast[1] };
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
  const fast = parseV4Cidr(cidr);
  if (fast) return `${v4Text((fast[0] & v4Mask(fast[1])) >>> 0)}/${fast[1]}`;
  const c = parseCidr(cidr);
  return `${bytesToIp(maskBytes(ipToBytes(c.ip), c.len))}/${c.len}`;
}

/** The network address alone: '10.5.3.0/24' → '10.5.3.0'. */
export function networkAddress(cidr: string): string {
  return networkOf(cidr).split('/')[0]!;
}

/** True when `ip` (an address or a CIDR) lies inside `cidr`. Different families never match. */
export function cidrContains(cidr: string, ip: string): boolean {
  const outer = parseV4Cidr(cidr);
  if (outer) {
    const inner = ip.includes('/') ? parseV4Cidr(ip) : ([parseV4(ip), 32] as [number, number]);
    if (inner && inner[0] >= 0) {
      const mask = v4Mask(outer[1]);
      return inner[1] >= outer[1] && (inner[0] & mask) >>> 0 === (outer[0] & mask) >>> 0;
    }
  }
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

const hexDigit = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;

/** The 6 bytes of a MAC already in canonical form (lower case, colons), or null. */
function canonicalMacBytes(mac: string): Buffer | null {
  if (mac.length !== 17) return null;
  const out = Buffer.allocUnsafe(6);
  for (let i = 0; i < 6; i++) {
    const hi = hexDigit(mac.charCodeAt(i * 3));
    const lo = hexDigit(mac.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 58)) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Lower-case colon form; throws TypeError for anything else (hyphens and upper case accepted on input). */
export function canonicalMac(mac: string): string {
  if (canonicalMacBytes(mac)) return mac;
  const m = mac.toLowerCase().replace(/-/g, ':');
  if (!MAC.test(m)) throw new TypeError(`invalid MAC address ${JSON.stringify(mac)}`);
  return m;
}

export function macToBytes(mac: string): Buffer {
  return (
    canonicalMacBytes(mac) ??
    Buffer.from(
      canonicalMac(mac)
        .split(':')
        .map((x) => parseInt(x, 16)),
    )
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
