/**
 * The `Backend` section of the network config for `"Type": "vxlan"` (flannel-compat.md §12): keys are
 * matched case-insensitively, flannel's defaults filled in, every value validated with an error naming
 * the key, the value and the rule.
 */
import { ConfigError } from '../errors.js';

export type ChecksumMode = 'auto' | 'on' | 'off';

export interface VxlanConfig {
  readonly vni: number;
  /** UDP port; flannel's 0 ("kernel default") means 8472 on Linux. */
  readonly port: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
  /** Base MTU (default: the uplink's); device MTU = base − 50 (IPv4 underlay) / − 70 (IPv6). */
  readonly mtu: number | null;
  /** Device names (weft-specific `Name`, default `weft.<VNI>` / `weft-v6.<VNI>`). */
  readonly name: string;
  readonly name6: string;
  /** tx-checksum-ip-generic workaround: auto = only on kernels < 5.7 (weft-specific `ChecksumWorkaround`). */
  readonly checksumWorkaround: ChecksumMode;
}

export const DEFAULT_VXLAN_PORT = 8472;
const KNOWN = [
  'type',
  'vni',
  'port',
  'gbp',
  'learning',
  'directrouting',
  'mtu',
  'name',
  'checksumworkaround',
];
/** Windows-only flannel keys: accepted and ignored. */
const IGNORED = ['macprefix'];
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

function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw bad(key, v, 'must be true or false');
  return v;
}

/** Validates `raw`; `warn` hears about unknown keys. */
export function parseVxlanConfig(
  raw: Readonly<Record<string, unknown>>,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): VxlanConfig {
  const get = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(raw)) {
    const k = key.toLowerCase();
    if (!KNOWN.includes(k)) {
      if (!IGNORED.includes(k)) warn('unknown vxlan backend option ignored', { key });
      continue;
    }
    get.set(k, { key, value });
  }
  const val = (k: string): { key: string; value: unknown } | undefined => {
    const e = get.get(k);
    return e && e.value !== null && e.value !== undefined ? e : undefined;
  };
  const v = val('vni');
  const vni = v ? int(v.key, v.value, 1, 16_777_215) : 1;
  const p = val('port');
  const portRaw = p ? int(p.key, p.value, 0, 65_535) : 0;
  const m = val('mtu');
  const n = val('name');
  let name = `weft.${vni}`;
  if (n) {
    if (typeof n.value !== 'string' || !IFNAME.test(n.value)) {
      throw bad(n.key, n.value, 'must be a Linux interface name (1–15 of A-Z a-z 0-9 _ . -)');
    }
    name = n.value;
  }
  const name6 = n ? `${name.slice(0, 12)}-v6` : `weft-v6.${vni}`;
  if (!IFNAME.test(name6)) throw bad('Name', name, 'leaves no room for the IPv6 device name');
  const c = val('checksumworkaround');
  let checksumWorkaround: ChecksumMode = 'auto';
  if (c) {
    if (c.value === true || c.value === 'on') checksumWorkaround = 'on';
    else if (c.value === false || c.value === 'off') checksumWorkaround = 'off';
    else if (c.value !== 'auto') throw bad(c.key, c.value, 'must be "auto", "on" or "off"');
  }
  const b = (k: string): boolean => {
    const e = val(k);
    return e ? bool(e.key, e.value) : false;
  };
  return {
    vni,
    port: portRaw === 0 ? DEFAULT_VXLAN_PORT : portRaw,
    gbp: b('gbp'),
    learning: b('learning'),
    directRouting: b('directrouting'),
    mtu: m ? int(m.key, m.value, 1280, 65_535) : null,
    name,
    name6,
    checksumWorkaround,
  };
}
