/**
 * subnet.env (flannel-compat.md §10), written by weftd or flanneld: `KEY=value` lines. The file is hostile
 * input: it is size-limited, parsed strictly (no quoting, no `export`), every value validated, and every
 * problem named in one error so an operator can fix the file at once.
 */
import { cidrContains, parseCidr, type Cidr } from './cidr.js';

export const MAX_SUBNET_ENV_BYTES = 64 * 1024;

export interface SubnetEnv {
  /** FLANNEL_NETWORK: IPv4 cluster networks (de-duplicated, canonical). */
  readonly networks: readonly Cidr[];
  /** FLANNEL_SUBNET: this host's IPv4 subnet (host bits cleared; the written `.1` is the gateway). */
  readonly subnet: Cidr | undefined;
  readonly ipv6Networks: readonly Cidr[];
  readonly ipv6Subnet: Cidr | undefined;
  readonly mtu: number;
  /** FLANNEL_IPMASQ: the daemon masquerades, so the bridge must not. */
  readonly ipMasq: boolean;
}

export class SubnetEnvError extends Error {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    super(`${file} is invalid: ${problems.join('; ')}`);
    this.name = 'SubnetEnvError';
    this.problems = problems;
  }
}

const KEY = /^[A-Z][A-Z0-9_]*$/;

function parseCidrList(key: string, value: string, family: 4 | 6, problems: string[]): Cidr[] {
  const out: Cidr[] = [];
  const seen = new Set<string>();
  for (const item of value.split(',')) {
    const c = parseCidr(item);
    if (!c || c.family !== family) {
      problems.push(`${key}: "${item}" is not an IPv${family} CIDR`);
      continue;
    }
    const k = `${c.network}/${c.prefix}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(c);
    }
  }
  return out;
}

function parseSubnet(
  key: string,
  value: string,
  family: 4 | 6,
  problems: string[],
): Cidr | undefined {
  const c = parseCidr(value);
  if (!c || c.family !== family) {
    problems.push(`${key}: "${value}" is not an IPv${family} CIDR`);
    return undefined;
  }
  const maxPrefix = family === 4 ? 30 : 126;
  if (c.prefix > maxPrefix) {
    problems.push(`${key}: /${c.prefix} leaves no room for containers (at most /${maxPrefix})`);
    return undefined;
  }
  return c;
}

/** Parses the text of a subnet.env file; throws SubnetEnvError listing every problem. */
export function parseSubnetEnv(text: string, file: string): SubnetEnv {
  const problems: string[] = [];
  if (Buffer.byteLength(text) > MAX_SUBNET_ENV_BYTES) {
    throw new SubnetEnvError(file, [`larger than ${MAX_SUBNET_ENV_BYTES} bytes`]);
  }
  const values = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq);
    if (!KEY.test(key)) {
      problems.push(`line ${i + 1} is not KEY=value`);
      return;
    }
    if (values.has(key)) problems.push(`${key} is set twice`);
    values.set(key, line.slice(eq + 1));
  });

  const get = (k: string): string | undefined => {
    const v = values.get(k);
    return v === undefined || v === '' ? undefined : v;
  };
  const net4 = get('FLANNEL_NETWORK');
  const sub4 = get('FLANNEL_SUBNET');
  const net6 = get('FLANNEL_IPV6_NETWORK');
  const sub6 = get('FLANNEL_IPV6_SUBNET');
  const mtuText = get('FLANNEL_MTU');
  const masqText = get('FLANNEL_IPMASQ');

  const missing: string[] = [];
  if (net4 === undefined && net6 === undefined) missing.push('FLANNEL_NETWORK');
  if (sub4 === undefined && sub6 === undefined) missing.push('FLANNEL_SUBNET');
  if (mtuText === undefined) missing.push('FLANNEL_MTU');
  if (masqText === undefined) missing.push('FLANNEL_IPMASQ');
  if (missing.length > 0) problems.push(`missing ${missing.join(', ')}`);

  const networks = net4 === undefined ? [] : parseCidrList('FLANNEL_NETWORK', net4, 4, problems);
  const ipv6Networks =
    net6 === undefined ? [] : parseCidrList('FLANNEL_IPV6_NETWORK', net6, 6, problems);
  const subnet = sub4 === undefined ? undefined : parseSubnet('FLANNEL_SUBNET', sub4, 4, problems);
  const ipv6Subnet =
    sub6 === undefined ? undefined : parseSubnet('FLANNEL_IPV6_SUBNET', sub6, 6, problems);

  for (const [s, nets, key] of [
    [subnet, networks, 'FLANNEL_SUBNET'],
    [ipv6Subnet, ipv6Networks, 'FLANNEL_IPV6_SUBNET'],
  ] as const) {
    if (s && nets.length > 0 && !nets.some((n) => cidrContains(n, s))) {
      problems.push(`${key} is not inside any of the cluster networks`);
    }
    if (s && nets.length === 0 && key === 'FLANNEL_SUBNET' && net4 === undefined) {
      problems.push('FLANNEL_SUBNET is set but FLANNEL_NETWORK is not');
    }
    if (s && nets.length === 0 && key === 'FLANNEL_IPV6_SUBNET' && net6 === undefined) {
      problems.push('FLANNEL_IPV6_SUBNET is set but FLANNEL_IPV6_NETWORK is not');
    }
  }

  let mtu = 0;
  if (mtuText !== undefined) {
    mtu = /^[0-9]{1,5}$/.test(mtuText) ? Number(mtuText) : NaN;
    const min = ipv6Subnet ? 1280 : 68;
    if (!Number.isInteger(mtu) || mtu < min || mtu > 65535) {
      problems.push(`FLANNEL_MTU: "${mtuText}" is not an MTU between ${min} and 65535`);
    }
  }
  if (masqText !== undefined && masqText !== 'true' && masqText !== 'false') {
    problems.push(`FLANNEL_IPMASQ: "${masqText}" is not true or false`);
  }
  if (problems.length > 0) throw new SubnetEnvError(file, problems);
  return { networks, subnet, ipv6Networks, ipv6Subnet, mtu, ipMasq: masqText === 'true' };
}
