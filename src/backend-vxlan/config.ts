/**
 * The `Backend` section of the network config for `"Type": "vxlan"` (docs/flannel-compat.md §12): keys are
 * matched case-insensitively, flannel's defaults filled in, every value validated with an error naming
 * the key, the value and the rule.
 */
import {
  IFNAME,
  backendFields,
  badBackendValue,
  boolField,
  ifnameField,
  intField,
  portField,
} from '../backend/backend-config.js';

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
const KEYS = {
  type: 'vxlan',
  known: [
    'type',
    'vni',
    'port',
    'gbp',
    'learning',
    'directrouting',
    'mtu',
    'name',
    'checksumworkaround',
  ],
  /** Windows-only flannel keys: accepted and ignored. */
  ignored: ['macprefix'],
};

/** Validates `raw`; `warn` hears about unknown keys. */
export function parseVxlanConfig(
  raw: Readonly<Record<string, unknown>>,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): VxlanConfig {
  const val = backendFields(raw, KEYS, warn);
  const v = val('vni');
  const vni = v ? intField(v, 1, 16_777_215) : 1;
  const port = portField(val('port'), DEFAULT_VXLAN_PORT);
  const m = val('mtu');
  const n = val('name');
  const name = n ? ifnameField(n) : `weft.${vni}`;
  const name6 = n ? `${name.slice(0, 12)}-v6` : `weft-v6.${vni}`;
  if (!IFNAME.test(name6))
    throw badBackendValue('Name', name, 'leaves no room for the IPv6 device name');
  const c = val('checksumworkaround');
  let checksumWorkaround: ChecksumMode = 'auto';
  if (c) {
    if (c.value === true || c.value === 'on') checksumWorkaround = 'on';
    else if (c.value === false || c.value === 'off') checksumWorkaround = 'off';
    else if (c.value !== 'auto')
      throw badBackendValue(c.key, c.value, 'must be "auto", "on" or "off"');
  }
  const b = (k: string): boolean => {
    const e = val(k);
    return e ? boolField(e) : false;
  };
  return {
    vni,
    port,
    gbp: b('gbp'),
    learning: b('learning'),
    directRouting: b('directrouting'),
    mtu: m ? intField(m, 1280, 65_535) : null,
    name,
    name6,
    checksumWorkaround,
  };
}
