/**
 * subnet.env, the hand-over file from weftd (or flanneld) to the CNI plugin (docs/flannel-compat.md §10):
 * one `KEY=value` per line, in flannel's order FLANNEL_NETWORK, FLANNEL_SUBNET (the subnet's first host
 * address/len), FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ. The one codec for
 * weftd (writes it, reads the previous subnet back), the CNI plugin (needs it complete and valid) and
 * weftctl (checks it). Pure and dependency-free (it is bundled into the plugin). The text is hostile input:
 * size-limited, parsed strictly (no quoting, no `export`), every value validated, every problem named.
 */
import {
  cidrContains,
  firstHost,
  formatNetwork,
  parseHostCidr,
  type HostCidr,
} from '../ip/host-cidr.js';

/** Where flannel (and weftd) write it and the CNI plugin reads it, unless configured otherwise. */
export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';

export const MAX_SUBNET_ENV_BYTES = 64 * 1024;

/** What weftd writes. */
export interface SubnetEnvValues {
  /** IPv4 cluster network, or null when IPv4 is off. */
  readonly network: string | null;
  /** Own IPv4 subnet in network form ('10.5.52.0/24'). */
  readonly subnet: string | null;
  readonly ipv6Network: string | null;
  readonly subnet6: string | null;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** Network form → first host with the prefix: '10.5.52.0/24' → '10.5.52.1/24'. */
function firstHostCidr(cidr: string): string {
  const c = parseHostCidr(cidr);
  if (!c) throw new TypeError(`not a CIDR: ${JSON.stringify(cidr)}`);
  return `${firstHost(c)}/${c.prefix}`;
}

/** The file's text in flannel's exact format and order. */
export function formatSubnetEnv(v: SubnetEnvValues): string {
  let out = '';
  if (v.network !== null && v.subnet !== null) {
    out += `FLANNEL_NETWORK=${v.network}\nFLANNEL_SUBNET=${firstHostCidr(v.subnet)}\n`;
  }
  if (v.ipv6Network !== null && v.subnet6 !== null) {
    out += `FLANNEL_IPV6_NETWORK=${v.ipv6Network}\nFLANNEL_IPV6_SUBNET=${firstHostCidr(v.subnet6)}\n`;
  }
  out += `FLANNEL_MTU=${v.mtu}\nFLANNEL_IPMASQ=${v.ipMasq ? 'true' : 'false'}\n`;
  return out;
}

/** Every field of a subnet.env text, each parsed or absent, with every problem found (never throws). */
export interface SubnetEnvFields {
  /** FLANNEL_NETWORK: IPv4 cluster networks (de-duplicated). */
  readonly networks: readonly HostCidr[];
  /** FLANNEL_SUBNET: this host's IPv4 subnet (`network` has the host bits cleared). */
  readonly subnet: HostCidr | undefined;
  readonly ipv6Networks: readonly HostCidr[];
  readonly ipv6Subnet: HostCidr | undefined;
  readonly mtu: number | undefined;
  readonly ipMasq: boolean | undefined;
  /** Required keys that are absent. */
  readonly missing: readonly string[];
  /** Invalid lines and values, named for the operator. */
  readonly problems: readonly string[];
}

const KEY = /^[A-Z][A-Z0-9_]*$/;
const show = (v: string): string => JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);

function cidrList(key: string, value: string, family: 4 | 6, problems: string[]): HostCidr[] {
  const out: HostCidr[] = [];
  const seen = new Set<string>();
  for (const item of value.split(',')) {
    const c = parseHostCidr(item);
    if (!c || c.family !== family) {
      problems.push(`${key}: ${show(item)} is not an IPv${family} CIDR`);
      continue;
    }
    const k = formatNetwork(c);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(c);
    }
  }
  return out;
}

function ownSubnet(
  key: string,
  value: string,
  family: 4 | 6,
  problems: string[],
): HostCidr | undefined {
  const c = parseHostCidr(value);
  if (!c || c.family !== family) {
    problems.push(`${key}: ${show(value)} is not an IPv${family} CIDR`);
    return undefined;
  }
  const maxPrefix = family === 4 ? 30 : 126;
  if (c.prefix > maxPrefix) {
    problems.push(`${key}: /${c.prefix} leaves no room for containers (at most /${maxPrefix})`);
    return undefined;
  }
  return c;
}

/** Parses every field it can; bad lines and values become problems. */
export function readSubnetEnvFields(text: string): SubnetEnvFields {
  const problems: string[] = [];
  if (text.length > MAX_SUBNET_ENV_BYTES) {
    problems.push(`larger than ${MAX_SUBNET_ENV_BYTES} bytes (only the start was read)`);
    text = text.slice(0, MAX_SUBNET_ENV_BYTES);
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

  const networks = net4 === undefined ? [] : cidrList('FLANNEL_NETWORK', net4, 4, problems);
  const ipv6Networks =
    net6 === undefined ? [] : cidrList('FLANNEL_IPV6_NETWORK', net6, 6, problems);
  const subnet = sub4 === undefined ? undefined : ownSubnet('FLANNEL_SUBNET', sub4, 4, problems);
  const ipv6Subnet =
    sub6 === undefined ? undefined : ownSubnet('FLANNEL_IPV6_SUBNET', sub6, 6, problems);

  let mtu: number | undefined;
  if (mtuText !== undefined) {
    const n = /^[0-9]{1,5}$/.test(mtuText) ? Number(mtuText) : NaN;
    const min = ipv6Subnet ? 1280 : 68;
    if (Number.isInteger(n) && n >= min && n <= 65535) mtu = n;
    else problems.push(`FLANNEL_MTU: ${show(mtuText)} is not an MTU between ${min} and 65535`);
  }
  let ipMasq: boolean | undefined;
  if (masqText !== undefined) {
    if (masqText === 'true' || masqText === 'false') ipMasq = masqText === 'true';
    else problems.push(`FLANNEL_IPMASQ: ${show(masqText)} is not true or false`);
  }
  return { networks, subnet, ipv6Networks, ipv6Subnet, mtu, ipMasq, missing, problems };
}

/** A complete, valid subnet.env (what the CNI plugin needs). */
export interface SubnetEnv extends Omit<
  SubnetEnvFields,
  'mtu' | 'ipMasq' | 'missing' | 'problems'
> {
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

/** Parses a subnet.env that must be complete and consistent; throws SubnetEnvError naming every problem. */
export function parseSubnetEnv(text: string, file: string): SubnetEnv {
  if (text.length > MAX_SUBNET_ENV_BYTES) {
    throw new SubnetEnvError(file, [`larger than ${MAX_SUBNET_ENV_BYTES} bytes`]);
  }
  const f = readSubnetEnvFields(text);
  const problems = [...f.problems];
  if (f.missing.length > 0) problems.unshift(`missing ${f.missing.join(', ')}`);
  for (const [s, nets, key, netKey] of [
    [f.subnet, f.networks, 'FLANNEL_SUBNET', 'FLANNEL_NETWORK'],
    [f.ipv6Subnet, f.ipv6Networks, 'FLANNEL_IPV6_SUBNET', 'FLANNEL_IPV6_NETWORK'],
  ] as const) {
    if (!s) continue;
    if (nets.length > 0 && !nets.some((n) => cidrContains(n, s))) {
      problems.push(`${key} is not inside any of the cluster networks`);
    }
    if (nets.length === 0 && !problems.some((p) => p.startsWith(`${netKey}:`))) {
      problems.push(`${key} is set but ${netKey} is not`);
    }
  }
  const { missing: _missing, problems: _problems, mtu, ipMasq, ...env } = f;
  if (problems.length > 0 || mtu === undefined || ipMasq === undefined) {
    throw new SubnetEnvError(file, problems);
  }
  return { ...env, mtu, ipMasq };
}

/** What weftd takes back from its previous subnet.env on restart: network-form CIDRs or null. */
export interface PreviousSubnets {
  readonly subnet: string | null;
  readonly subnet6: string | null;
  readonly network: string | null;
  readonly ipv6Network: string | null;
  /** Problems found (for one warning line); the valid parts are still returned. */
  readonly problems: readonly string[];
}

/** The previous subnets of a subnet.env text; bad values are reported, never thrown. */
export function previousSubnets(text: string): PreviousSubnets {
  const f = readSubnetEnvFields(text);
  const net = (c: HostCidr | undefined): string | null => (c ? formatNetwork(c) : null);
  return {
    network: net(f.networks[0]),
    subnet: net(f.subnet),
    ipv6Network: net(f.ipv6Networks[0]),
    subnet6: net(f.ipv6Subnet),
    problems: f.problems,
  };
}

/** FLANNEL_MTU and FLANNEL_IPMASQ of a subnet.env text; null when missing or invalid. */
export function subnetEnvSettings(text: string): { mtu: number | null; ipMasq: boolean | null } {
  const f = readSubnetEnvFields(text);
  return { mtu: f.mtu ?? null, ipMasq: f.ipMasq ?? null };
}
