/**
 * The `Backend` section of the network config for `"Type": "udp"` (docs/flannel-compat.md §13): keys are
 * matched case-insensitively, flannel's default port filled in, every value validated with an error
 * naming the key, the value and the rule.
 */
import { backendFields, ifnameField, intField, portField } from '../backend/backend-config.js';

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
const KEYS = { type: 'udp', known: ['type', 'port', 'name', 'mtu'] };

/** Validates `raw`; `warn` hears about unknown keys. */
export function parseUdpConfig(
  raw: Readonly<Record<string, unknown>>,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): UdpConfig {
  const get = backendFields(raw, KEYS, warn);
  const port = portField(get('port'), DEFAULT_UDP_PORT);
  const m = get('mtu');
  const n = get('name');
  return {
    port,
    name: n ? ifnameField(n) : 'weft0',
    mtu: m ? intField(m, 576 + UDP_OVERHEAD, 65_535) : null,
  };
}
