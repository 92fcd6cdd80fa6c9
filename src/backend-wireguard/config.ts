/**
 * The `Backend` section of the network config for `"Type": "wireguard"`, as flannel's wireguard backend
 * reads it (pkg/backend/wireguard/wireguard.go): `ListenPort` (51820), `ListenPortV6` (51821), `PSK`
 * (base64, shared by every host), `PersistentKeepaliveInterval` (seconds, 0 = off), `Mode`
 * (`separate` | `auto` | `ipv4` | `ipv6`, default `separate`). weft's own keys: `Engine`
 * (`auto` | `kernel` | `userspace`; only the userspace engine exists in this build, see README),
 * `Name` / `NameV6` (device names) and `MTU` (base MTU, default the uplink's). Keys are matched
 * case-insensitively; every bad value is a ConfigError naming the key, the value and the rule.
 */
import {
  backendFields,
  badBackendValue,
  ifnameField,
  intField,
  portField,
  type BackendField,
} from '../backend/backend-config.js';

export type WireguardMode = 'separate' | 'auto' | 'ipv4' | 'ipv6';
export type WireguardEngine = 'auto' | 'kernel' | 'userspace';

export interface WireguardConfig {
  readonly listenPort: number;
  readonly listenPortV6: number;
  /** base64 preshared key, or null. */
  readonly psk: string | null;
  /** seconds, 0 = off */
  readonly persistentKeepalive: number;
  readonly mode: WireguardMode;
  readonly engine: WireguardEngine;
  readonly name: string;
  readonly nameV6: string;
  readonly mtu: number | null;
}

export const DEFAULT_WG_PORT = 51820;
export const DEFAULT_WG_PORT_V6 = 51821;
/**
 * flannel's overhead for the device MTU (pkg/backend/wireguard/wireguard_network.go): outer IPv6
 * header 40 (the larger one) + UDP 8 + type/reserved 4 + index 4 + counter 8 + tag 16 = 80, for both
 * families. Device MTU and FLANNEL_MTU = base − 80.
 */
export const WG_OVERHEAD = 80;

const KEYS = {
  type: 'wireguard',
  known: [
    'type',
    'listenport',
    'listenportv6',
    'psk',
    'persistentkeepaliveinterval',
    'mode',
    'engine',
    'name',
    'namev6',
    'mtu',
  ],
};
/** A WireGuard key (private, public or preshared) as `wg genkey` prints it: base64 of 32 bytes. */
export const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

function enumField<T extends string>(f: BackendField, values: readonly T[]): T {
  const v = typeof f.value === 'string' ? f.value.toLowerCase() : f.value;
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw badBackendValue(f.key, f.value, `must be one of ${values.join(', ')}`);
  }
  return v as T;
}

/** Validates `raw`; `warn` hears about unknown keys. Never echoes the PSK in an error. */
export function parseWireguardConfig(
  raw: Readonly<Record<string, unknown>>,
  warn: (msg: string, fields: Record<string, unknown>) => void = () => {},
): WireguardConfig {
  const get = backendFields(raw, KEYS, warn);
  const pskF = get('psk');
  let psk: string | null = null;
  if (pskF && pskF.value !== '') {
    if (typeof pskF.value !== 'string' || !BASE64_KEY.test(pskF.value)) {
      throw badBackendValue(
        pskF.key,
        '(hidden)',
        'must be a base64 key of 32 bytes (44 characters, e.g. from `wg genpsk`)',
      );
    }
    psk = pskF.value;
  }
  const ka = get('persistentkeepaliveinterval');
  const modeF = get('mode');
  const engineF = get('engine');
  const mtuF = get('mtu');
  const nameF = get('name');
  const name6F = get('namev6');
  return {
    listenPort: portField(get('listenport'), DEFAULT_WG_PORT),
    listenPortV6: portField(get('listenportv6'), DEFAULT_WG_PORT_V6),
    psk,
    persistentKeepalive: ka ? intField(ka, 0, 65_535) : 0,
    mode: modeF ? enumField(modeF, ['separate', 'auto', 'ipv4', 'ipv6'] as const) : 'separate',
    engine: engineF ? enumField(engineF, ['auto', 'kernel', 'userspace'] as const) : 'auto',
    name: nameF ? ifnameField(nameF) : 'weft-wg',
    nameV6: name6F ? ifnameField(name6F) : 'weft-wg-v6',
    mtu: mtuF ? intField(mtuF, 576 + WG_OVERHEAD, 65_535) : null,
  };
}
