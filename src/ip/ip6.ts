/**
 * IPv6 addresses and networks as pure values (docs/design.md C1). An address is a 128-bit `bigint`; a network
 * is an immutable `Ip6Net` with host bits cleared. `formatIp6` writes the canonical RFC 5952 form
 * (lowercase, no leading zeros, the longest run of two or more zero groups as `::`, leftmost on a tie),
 * which is what flannel's Go `net.IP.String()` writes into dual-stack subnet keys ('fc00::-64').
 */
import { AddressError, tryParseIp4 } from './ip4.js';

const ALL = (1n << 128n) - 1n;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseGroups(part: string, allowV4Tail: boolean): number[] | null {
  if (part === '') return [];
  const pieces = part.split(':');
  const out: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (allowV4Tail && i === pieces.length - 1 && p.includes('.')) {
      const v4 = tryParseIp4(p);
      if (v4 === null) return null;
      out.push(v4 >>> 16, v4 & 0xffff);
    } else if (HEX_GROUP.test(p)) {
      out.push(parseInt(p, 16));
    } else {
      return null;
    }
  }
  return out;
}

/** The 128-bit value of an IPv6 address (no zone, no brackets), or null. */
export function tryParseIp6(text: string): bigint | null {
  if (text.length === 0 || text.length > 45) return null;
  const dbl = text.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return null;
    const head = parseGroups(text.slice(0, dbl), false);
    const tail = parseGroups(text.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

export function parseIp6(text: string): bigint {
  const v = tryParseIp6(text);
  if (v === null) throw new AddressError(`invalid IPv6 address ${JSON.stringify(text)}`);
  return v;
}

/** Canonical RFC 5952 text of a 128-bit value. */
export function formatIp6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function ip6Mask(prefixLen: number): bigint {
  return prefixLen === 0 ? 0n : (ALL << BigInt(128 - prefixLen)) & ALL;
}

/** An IPv6 network: base address (host bits cleared) and prefix length 0–128. */
export class Ip6Net {
  readonly ip: bigint;
  readonly prefixLen: number;

  constructor(ip: bigint, prefixLen: number) {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 128)
      throw new AddressError(`invalid IPv6 prefix length ${prefixLen}`);
    if (ip < 0n || ip > ALL) throw new AddressError('invalid IPv6 address value');
    this.ip = ip & ip6Mask(prefixLen);
    this.prefixLen = prefixLen;
  }

  /** Parses 'addr/len'; host bits are cleared unless `strict`, which rejects them. */
  static parse(text: string, options: { strict?: boolean } = {}): Ip6Net {
    const net = Ip6Net.tryParse(text, options);
    if (!net) throw new AddressError(`invalid IPv6 CIDR ${JSON.stringify(text)}`);
    return net;
  }

  static tryParse(text: string, options: { strict?: boolean } = {}): Ip6Net | null {
    const slash = text.indexOf('/');
    if (slash < 0) return null;
    const ip = tryParseIp6(text.slice(0, slash));
    const lenText = text.slice(slash + 1);
    if (ip === null || !/^(0|[1-9]\d{0,2})$/.test(lenText)) return null;
    const len = Number(lenText);
    if (len > 128) return null;
    if (options.strict && (ip & ~ip6Mask(len) & ALL) !== 0n) return null;
    return new Ip6Net(ip, len);
  }

  get size(): bigint {
    return 1n << BigInt(128 - this.prefixLen);
  }

  get last(): bigint {
    return this.ip + this.size - 1n;
  }

  containsIp(ip: bigint): boolean {
    return (ip & ip6Mask(this.prefixLen)) === this.ip;
  }

  contains(other: Ip6Net): boolean {
    return other.prefixLen >= this.prefixLen && this.containsIp(other.ip);
  }

  overlaps(other: Ip6Net): boolean {
    return this.contains(other) || other.contains(this);
  }

  next(): Ip6Net | null {
    const n = this.ip + this.size;
    return n > ALL ? null : new Ip6Net(n, this.prefixLen);
  }

  *subnets(len: number): Generator<Ip6Net> {
    if (len < this.prefixLen || len > 128) return;
    const step = 1n << BigInt(128 - len);
    for (let ip = this.ip; ip <= this.last; ip += step) yield new Ip6Net(ip, len);
  }

  toString(): string {
    return `${formatIp6(this.ip)}/${this.prefixLen}`;
  }
}
