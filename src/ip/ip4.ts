/**
 * IPv4 addresses and networks as pure values (docs/design.md C1). An address is a uint32 `number`; a network
 * is an immutable `Ip4Net` whose base address is always masked. Parsing is strict (dotted quad, no
 * leading zeros, no spaces) because every address weft reads comes from hostile input.
 */
import { WeftError } from '../errors.js';

/** Raised for text that is not an address, network or MAC; the message quotes the text. */
export class AddressError extends WeftError {
  constructor(message: string) {
    super('E_ADDRESS_INVALID', message);
  }
}

/**
 * The last two texts `tryParseIp4` scanned and their values. A full reconcile parses each peer's subnet
 * address and public IP in the planner, then the encoder parses the same two texts again (the neighbour's
 * address, the FDB entry's destination): with the memo that is a string compare, not a second character
 * scan (about a microsecond each before V8 optimizes the scan, and the first full reconcile of thousands
 * of peers runs mostly unoptimized). Exact text → its value, so the result is the scan's.
 */
let memoText0 = '';
let memoValue0: number | null = null;
let memoText1 = '';
let memoValue1: number | null = null;

/**
 * The uint32 value of a dotted quad, or null when `text` is not exactly one: four decimal octets of one
 * to three digits, no leading zero, each ≤ 255. A character scan without a regex or allocation (every
 * peer lease is parsed several times per plan, 1000s of leases per full reconcile), remembered for the
 * last two texts.
 */
export function tryParseIp4(text: string): number | null {
  if (text === memoText0) return memoValue0;
  if (text === memoText1) return memoValue1;
  const v = scanIp4(text);
  memoText1 = memoText0;
  memoValue1 = memoValue0;
  memoText0 = text;
  memoValue0 = v;
  return v;
}

function scanIp4(text: string): number | null {
  const n = text.length;
  if (n < 7 || n > 15) return null;
  let value = 0;
  let i = 0;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (text.charCodeAt(i) !== 46 /* . */) return null;
      i++;
    }
    const start = i;
    let octet = 0;
    while (i < n) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      octet = octet * 10 + c;
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || octet > 255) return null;
    if (digits > 1 && text.charCodeAt(start) === 48 /* leading 0 */) return null;
    value = value * 256 + octet;
  }
  return i === n ? value : null;
}

/** Parses a dotted quad ('10.5.0.1') into a uint32; throws AddressError otherwise. */
export function parseIp4(text: string): number {
  const v = tryParseIp4(text);
  if (v === null) throw new AddressError(`invalid IPv4 address ${JSON.stringify(text)}`);
  return v;
}

export function isIp4(text: string): boolean {
  return tryParseIp4(text) !== null;
}

/** Dotted quad of a uint32. */
export function formatIp4(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** The netmask of a prefix length as a uint32 (0 for /0). */
export function ip4Mask(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** An IPv4 network: base address (host bits cleared) and prefix length 0–32. */
export class Ip4Net {
  readonly ip: number;
  readonly prefixLen: number;

  constructor(ip: number, prefixLen: number) {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32)
      throw new AddressError(`invalid IPv4 prefix length ${prefixLen}`);
    if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff)
      throw new AddressError(`invalid IPv4 address value ${ip}`);
    this.ip = (ip & ip4Mask(prefixLen)) >>> 0;
    this.prefixLen = prefixLen;
  }

  /**
   * Parses 'a.b.c.d/len'. Host bits are cleared like Go's net.ParseCIDR ('10.5.52.1/24' → 10.5.52.0/24)
   * unless `strict`, which rejects them.
   */
  static parse(text: string, options: { strict?: boolean } = {}): Ip4Net {
    const net = Ip4Net.tryParse(text, options);
    if (!net) throw new AddressError(`invalid IPv4 CIDR ${JSON.stringify(text)}`);
    return net;
  }

  static tryParse(text: string, options: { strict?: boolean } = {}): Ip4Net | null {
    const slash = text.indexOf('/');
    if (slash < 0) return null;
    const ip = tryParseIp4(text.slice(0, slash));
    if (ip === null) return null;
    // The length: '0', or one or two digits without a leading zero, at most 32 (a character scan, not a
    // regex: every peer lease's subnet comes through here on every plan).
    const digits = text.length - slash - 1;
    const d0 = text.charCodeAt(slash + 1) - 48;
    const d1 = digits === 2 ? text.charCodeAt(slash + 2) - 48 : 0;
    if (digits < 1 || digits > 2 || !(d0 >= 0 && d0 <= 9) || !(d1 >= 0 && d1 <= 9)) return null;
    if (digits === 2 && d0 === 0) return null;
    const len = digits === 2 ? d0 * 10 + d1 : d0;
    if (len > 32) return null;
    if (options.strict && (ip & ~ip4Mask(len)) !== 0) return null;
    return new Ip4Net(ip, len);
  }

  /** Number of addresses (2^(32-len)). */
  get size(): number {
    return 2 ** (32 - this.prefixLen);
  }

  /** The last address of the network. */
  get last(): number {
    return this.ip + this.size - 1;
  }

  containsIp(ip: number): boolean {
    // ip4Mask, not the getter chain (every peer lease is checked against a few networks).
    return (ip & ip4Mask(this.prefixLen)) >>> 0 === this.ip;
  }

  /** True when `other` lies entirely inside this network. */
  contains(other: Ip4Net): boolean {
    return other.prefixLen >= this.prefixLen && this.containsIp(other.ip);
  }

  overlaps(other: Ip4Net): boolean {
    return this.contains(other) || other.contains(this);
  }

  /** The network of the same length right after this one, or null past 255.255.255.255. */
  next(): Ip4Net | null {
    const n = this.ip + this.size;
    return n > 0xffffffff ? null : new Ip4Net(n, this.prefixLen);
  }

  /** Subnets of length `len` inside this network, in address order. */
  *subnets(len: number): Generator<Ip4Net> {
    if (len < this.prefixLen || len > 32) return;
    const step = 2 ** (32 - len);
    for (let ip = this.ip; ip <= this.last; ip += step) yield new Ip4Net(ip, len);
  }

  toString(): string {
    return `${formatIp4(this.ip)}/${this.prefixLen}`;
  }
}
