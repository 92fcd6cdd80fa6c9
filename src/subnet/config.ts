/**
 * Parses and validates `<prefix>/config` (docs/flannel-compat.md §8) into a NetworkConfig with flannel's
 * defaults filled in. Field names match case-insensitively (Go encoding/json); two keys naming one
 * field are refused (config-keys.ts), since Go and JSON.parse may read them differently. Every
 * rejection is a ConfigError E_CONFIG_INVALID naming the field, the value and the rule. Unlike flannel,
 * a missing `Backend` defaults to `vxlan` (docs/flannel-compat.md §18 item 1), with a warning.
 */
import { ConfigError, showValue } from '../errors.js';
import { jsonTooDeep } from '../lease/codec.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { formatIp4, Ip4Net, tryParseIp4 } from '../ip/ip4.js';
import { formatIp6, Ip6Net, tryParseIp6 } from '../ip/ip6.js';
import { netOverlaps } from '../ip/cidr.js';
import type { BackendConfig, NetworkConfig } from './manager.js';
import { findDuplicateKeys, foldKey } from './config-keys.js';

export const DEFAULT_BACKEND = 'vxlan';
/** Bounds on the config text read from etcd (any writer's): flannel's configs are a few hundred bytes. */
export const MAX_CONFIG_BYTES = 64 * 1024;
export const MAX_CONFIG_DEPTH = 32;

/** Top-level fields flannel's Config knows (lower-cased); anything else is warned about. */
const KNOWN_FIELDS = [
  'EnableIPv4',
  'EnableIPv6',
  'EnableNFTables',
  'Network',
  'SubnetLen',
  'SubnetMin',
  'SubnetMax',
  'IPv6Network',
  'IPv6SubnetLen',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'Backend',
] as const;
type KnownField = (typeof KNOWN_FIELDS)[number];
const FOLDED_FIELDS = new Map<string, KnownField>(KNOWN_FIELDS.map((f) => [foldKey(f), f]));

/** A key or path from the config, cut for a log line or a message. */
const cut = (text: string): string => (text.length > 80 ? `${text.slice(0, 80)}…` : text);

function reject(field: string, value: unknown, rule: string): never {
  throw new ConfigError(`network config field ${field} = ${showValue(value)} is invalid: ${rule}`, {
    details: { field, value, rule },
  });
}

/** Picks fields case-insensitively (Go's folding); each is named once (refuseDuplicateKeys). */
function pickFields(
  raw: Record<string, unknown>,
  log: Logger,
): Partial<Record<KnownField, unknown>> {
  const out: Partial<Record<KnownField, unknown>> = {};
  let unknown = 0;
  for (const [key, value] of Object.entries(raw)) {
    const field = FOLDED_FIELDS.get(foldKey(key));
    if (field) out[field] = value;
    else if (++unknown <= 10)
      log.warn('network config has an unknown field (ignored)', { field: cut(key) });
  }
  if (unknown > 10)
    log.warn('network config has more unknown fields (ignored)', { more: unknown - 10 });
  return out;
}

function readBool(field: string, value: unknown, dflt: boolean): boolean {
  if (value === undefined || value === null) return dflt;
  if (typeof value !== 'boolean') reject(field, value, 'must be true or false');
  return value;
}

/** A length field: absent, null or 0 means unset (flannel tests `> 0`). */
function readLen(field: string, value: unknown): number | null {
  if (value === undefined || value === null || value === 0) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    reject(field, value, 'must be a non-negative integer');
  return value;
}

function readString(field: string, value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') reject(field, value, 'must be a string');
  return value;
}

const FAMILY_FIELDS = {
  4: ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax'],
  6: ['IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'],
} as const;

interface FamilyResult {
  network: string;
  subnetLen: number;
  subnetMin: string;
  subnetMax: string;
}

/** Ranges no container address can come from (flannel accepts them; the network then cannot work).
 *  IPv4's 240.0.0.0/4 is left alone: some clusters use it as extra private space. */
const NOT_UNICAST4: readonly (readonly [Ip4Net, string])[] = [
  [Ip4Net.parse('127.0.0.0/8'), 'loopback'],
  [Ip4Net.parse('224.0.0.0/4'), 'multicast'],
];
const NOT_UNICAST6: readonly (readonly [Ip6Net, string])[] = [
  [Ip6Net.parse('::1/128'), 'loopback'],
  [Ip6Net.parse('::ffff:0:0/96'), 'IPv4-mapped'],
  [Ip6Net.parse('fe80::/10'), 'link-local'],
  [Ip6Net.parse('ff00::/8'), 'multicast'],
];

/**
 * One family's Network, SubnetLen, SubnetMin and SubnetMax (IPv6: the IPv6-prefixed fields) with
 * flannel's defaults, rules and messages. Addresses are bigints here for both families.
 */
function checkFamily(v6: boolean, f: Partial<Record<KnownField, unknown>>): FamilyResult {
  const [netF, lenF, minF, maxF] = v6 ? FAMILY_FIELDS[6] : FAMILY_FIELDS[4];
  const bits = v6 ? 128 : 32;
  const format = (ip: bigint): string => (v6 ? formatIp6(ip) : formatIp4(Number(ip)));
  const netText = readString(netF, f[netF]);
  const parsed = netText === null ? null : (v6 ? Ip6Net : Ip4Net).tryParse(netText);
  if (netText !== null && !parsed)
    reject(
      netF,
      f[netF],
      v6 ? 'must be an IPv6 CIDR like "fc00::/48"' : 'must be an IPv4 CIDR like "10.5.0.0/16"',
    );
  if (!parsed || parsed.ip === 0 || parsed.ip === 0n)
    reject(
      netF,
      f[netF] ?? null,
      `please define a correct ${netF} parameter in the flannel config`,
    );
  const net = { ip: BigInt(parsed.ip), prefixLen: parsed.prefixLen, text: parsed.toString() };
  const special = (v6 ? NOT_UNICAST6 : NOT_UNICAST4).find(([n]) => netOverlaps(parsed, n));
  if (special)
    reject(
      netF,
      netText,
      `${net.text} overlaps ${special[0].toString()} (${special[1]}): container addresses must be unicast; use a private range such as ${v6 ? '"fd05::/48"' : '"10.5.0.0/16"'}`,
    );
  let len = readLen(lenF, f[lenF]);
  if (len !== null) {
    if (len > bits - 2) reject(lenF, len, `SubnetLen must be less than /${bits - 1}`);
    if (len < net.prefixLen + 2)
      reject(
        lenF,
        len,
        `network must be able to accommodate at least four subnets (at least /${net.prefixLen + 2} for ${net.text})`,
      );
  } else {
    if (net.prefixLen > bits - 4)
      reject(
        netF,
        netText,
        `${v6 ? 'IPv6Network' : 'network'} is too small. Minimum useful network prefix is /${bits - 4}`,
      );
    const dflt = v6 ? 64 : 24;
    len = net.prefixLen <= dflt - 2 ? dflt : net.prefixLen + 2;
  }
  const hostBits = (prefixLen: number): bigint => (1n << BigInt(bits - prefixLen)) - 1n;
  const bound = (field: KnownField, dflt: bigint): bigint => {
    const text = readString(field, f[field]);
    if (text === null) return dflt;
    const ip = v6 ? tryParseIp6(text) : tryParseIp4(text);
    if (ip === null)
      reject(
        field,
        f[field],
        v6
          ? 'must be an IPv6 address like "fc00:0:0:1::"'
          : 'must be an IPv4 address like "10.5.1.0"',
      );
    // flannel compares the bound with the zero address (IPv6: ip.IsEmpty): "0.0.0.0" / "::" is unset
    if (BigInt(ip) === 0n) return dflt;
    if ((BigInt(ip) & ~hostBits(net.prefixLen)) !== net.ip)
      reject(field, text, `${field} is not in the range of the ${netF} (${net.text})`);
    if ((BigInt(ip) & hostBits(len)) !== 0n)
      reject(field, text, `${field} is not on a ${lenF} boundary: ${text}`);
    return BigInt(ip);
  };
  const size = hostBits(len) + 1n;
  const min = bound(minF, net.ip + size);
  const max = bound(maxF, net.ip + hostBits(net.prefixLen) + 1n - size);
  if (min > max) reject(minF, format(min), `${minF} must not be above ${maxF} (${format(max)})`);
  return { network: net.text, subnetLen: len, subnetMin: format(min), subnetMax: format(max) };
}

function checkBackend(value: unknown, log: Logger): BackendConfig {
  if (value === undefined || value === null) {
    log.warn(
      `network config has no Backend: using ${DEFAULT_BACKEND} (flannel would use udp; set Backend.Type in clusters shared with flannel)`,
    );
    return { type: DEFAULT_BACKEND, raw: { Type: DEFAULT_BACKEND } };
  }
  if (typeof value !== 'object' || Array.isArray(value))
    reject('Backend', value, 'must be an object like {"Type":"vxlan"}');
  const raw = value as Record<string, unknown>;
  let type: unknown;
  for (const [k, v] of Object.entries(raw)) if (foldKey(k) === 'type') type = v;
  if (type === undefined || type === null || type === '') {
    log.warn(`network config Backend has no Type: using ${DEFAULT_BACKEND}`);
    return { type: DEFAULT_BACKEND, raw };
  }
  if (typeof type !== 'string') reject('Backend.Type', type, 'must be a string like "vxlan"');
  return { type: type.toLowerCase(), raw };
}

/** Two keys naming one field (`Network` and `network`, or one written twice): E_CONFIG_INVALID. */
function refuseDuplicateKeys(text: string): void {
  const dup = findDuplicateKeys(text, new Set(FOLDED_FIELDS.keys()));
  if (!dup) return;
  const [a, b] = dup.keys.map((k) => showValue(cut(k)));
  const path = cut(dup.path);
  const where = path === '' ? 'network config' : `network config ${path}`;
  throw new ConfigError(
    `${where} has the keys ${a} and ${b}, which name one field: flannel (Go) matches keys case-insensitively and one of them silently wins there; keep only one`,
    {
      details: {
        field: path === '' ? dup.keys[1] : `${path}.${dup.keys[1]}`,
        keys: dup.keys,
      },
    },
  );
}

/**
 * Parses the config JSON (text or an already parsed value). Throws ConfigError E_CONFIG_INVALID.
 * Unknown top-level fields and a missing Backend are logged as warnings on `log`.
 */
export function parseNetworkConfig(
  json: string | unknown,
  log: Logger = nullLogger,
): NetworkConfig {
  let value: unknown = json;
  if (typeof json === 'string') {
    if (json.length > MAX_CONFIG_BYTES)
      throw new ConfigError(
        `network config is ${json.length} characters long, more than the ${MAX_CONFIG_BYTES} weft reads: write flannel's config there (a few hundred bytes)`,
      );
    const deep = jsonTooDeep(json, MAX_CONFIG_DEPTH);
    if (deep)
      throw new ConfigError(
        `network config ${deep.field === null ? 'value' : `field ${deep.field}`} is nested deeper than ${MAX_CONFIG_DEPTH} levels: flannel's config is at most 3`,
      );
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new ConfigError(`network config is not valid JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`network config must be a JSON object, got ${showValue(value)}`);
  const raw = value as Record<string, unknown>;
  refuseDuplicateKeys(typeof json === 'string' ? json : JSON.stringify(value));
  const f = pickFields(raw, log);
  const enableIPv4 = readBool('EnableIPv4', f.EnableIPv4, true);
  const enableIPv6 = readBool('EnableIPv6', f.EnableIPv6, false);
  readBool('EnableNFTables', f.EnableNFTables, false);
  if (!enableIPv4 && !enableIPv6)
    reject(
      'EnableIPv4',
      false,
      'none defined stack: EnableIPv4 and EnableIPv6 are both false, enable at least one',
    );
  const v4 = enableIPv4 ? checkFamily(false, f) : null;
  const v6 = enableIPv6 ? checkFamily(true, f) : null;
  return {
    enableIPv4,
    enableIPv6,
    network: v4?.network ?? null,
    subnetLen: v4?.subnetLen ?? 0,
    subnetMin: v4?.subnetMin ?? null,
    subnetMax: v4?.subnetMax ?? null,
    ipv6Network: v6?.network ?? null,
    ipv6SubnetLen: v6?.subnetLen ?? 0,
    ipv6SubnetMin: v6?.subnetMin ?? null,
    ipv6SubnetMax: v6?.subnetMax ?? null,
    backend: checkBackend(f.Backend, log),
    raw,
  };
}

/**
 * weft leases from etcd only, in flannel's layout, which keys every lease by its IPv4 subnet: an
 * IPv6-only config (EnableIPv4 false) parses, as flannel's does for its Kubernetes mode, but no host
 * can lease with it. weftd (src/subnet/local-manager.ts) and `weftctl config validate|set` refuse it
 * with this one error.
 */
export function requireEtcdLayout(config: NetworkConfig): NetworkConfig {
  if (!config.enableIPv4)
    throw new ConfigError(
      "network config field EnableIPv4 = false is invalid with etcd: flannel's etcd layout keys every lease by its IPv4 subnet",
      { details: { field: 'EnableIPv4', value: false } },
    );
  return config;
}
