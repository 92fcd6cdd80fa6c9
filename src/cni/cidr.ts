/**
 * Minimal, strict IPv4/IPv6 address and CIDR parsing for the plugin (pure, no dependencies, so the
 * bundled plugin stays small). Addresses are bigints; text output is canonical (RFC 5952 for IPv6).
 */

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** The address as written (host bits kept). */
  readonly addr: bigint;
  readonly prefix: number;
  /** The network address (host bits cleared). */
  readonly network: bigint;
}

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!V4_PART.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

export function parseIPv6(s: string): bigint | undefined {
  if (s.length < 2 || s.length > 39) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const split = (h: string): string[] | undefined => {
    if (h === '') return [];
    const g = h.split(':');
    return g.every((x) => V6_GROUP.test(x)) ? g : undefined;
  };
  const head = split(halves[0] ?? '');
  const tail = halves.length === 2 ? split(halves[1] ?? '') : [];
  if (!head || !tail) return undefined;
  let groups: string[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

/** Parses an IPv4 or IPv6 address (no zone, no embedded IPv4). */
export function parseIP(s: string): { family: Family; addr: bigint } | undefined {
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return { family: 4, addr: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== undefined) return { family: 6, addr: v6 };
  return undefined;
}

const bits = (f: Family): number => (f === 4 ? 32 : 128);

function mask(family: Family, prefix: number): bigint {
  const total = BigInt(bits(family));
  const all = (1n << total) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

/** Parses `addr/prefix`; undefined when malformed. */
export function parseCidr(s: string): Cidr | undefined {
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
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => String((addr >> sh) & 255n)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `network/prefix`, canonical. */
export function formatNetwork(c: Cidr): string {
  return `${formatIP(c.family, c.network)}/${c.prefix}`;
}

/** `addr/prefix` with host bits kept, canonical. */
export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.addr)}/${c.prefix}`;
}

/** True when `inner` lies entirely within `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefix >= outer.prefix &&
    (inner.network & mask(outer.family, outer.prefix)) === outer.network
  );
}

/** The first host address of the network (`.1`), the gateway host-local picks by default. */
export function firstHost(c: Cidr): string {
  return formatIP(c.family, c.network + 1n);
}
