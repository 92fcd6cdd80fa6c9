/**
 * The `Backend` section of the network config for `"Type": "udp"` (flannel-compat.md §13): keys are
 * matched case-insensitively, flannel's default port filled in, every value validated with an error
 * naming the key, the value and the rule.
 */
import { ConfigError } from '../errors.js';

export interface UdpConfig {
  /** UDP port of every host's forwarder (flannel: all nodes use the same one). */
  readonly port: number;
  /** TUN device name (weft-specific `Name`, default `weft0`). */
  readonly name: string;
  /** Base MTU (weft-specific `MTU`, default: the uplink's); TUN MTU = base − 28. */
  readonly mtu: number | null;
}

export const DEFAULT_UDP_PORT = 8285;
/** Outer IPv4 header (20) + UDP header (8): flannel's wire format adds nothing else. */
export const UDP_OVERHEAD = 28;
const KNOWN = ['type', 'port', 'name', 'mtu'];
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function bad(key: string, value: unknown, rule: string): ConfigError {
  return new ConfigError(`Backend.${key}: ${JSON.stringify(value)} is invalid: ${rule}`, {
    details: { field: `Backend.${key}`, value },
  });
}

function int(key: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(key, v, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** Validates `raw`; `warn` hears about unknown keys. */
export function parseUdpConfig(
  raw: Readonly<Record<string, unknown>>,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): UdpConfig {
  const get = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(raw)) {
    const k = key.toLowerCase();
    if (!KNOWN.includes(k)) {
      warn('unknown udp backend option ignored', { key });
      continue;
    }
    if (value !== null && value !== undefined) get.set(k, { key, value });
  }
  const p = get.get('port');
  const port = p ? int(p.key, p.value, 0, 65_535) : 0;
  const m = get.get('mtu');
  const n = get.get('name');
  if (n && (typeof n.value !== 'string' || !IFNAME.test(n.value))) {
    throw bad(n.key, n.value, 'must be a Linux interface name (1–15 of A-Z a-z 0-9 _ . -)');
  }
  return {
    port: port === 0 ? DEFAULT_UDP_PORT : port,
    name: n ? (n.value as string) : 'weft0',
    mtu: m ? int(m.key, m.value, 576 + UDP_OVERHEAD, 65_535) : null,
  };
}
