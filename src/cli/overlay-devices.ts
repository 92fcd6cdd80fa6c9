/**
 * The overlay devices of a network config, named as the backends name them: vxlan 'weft.<VNI>' /
 * 'weft-v6.<VNI>' (or Backend.Name); udp one TUN ('weft0') for both families; wireguard 'weft-wg'
 * (+ 'weft-wg-v6' in Mode separate); host-gw none. Pure.
 */
import { parseVxlanConfig } from '../backend-vxlan/config.js';
import { parseUdpConfig } from '../backend-udp/config.js';
import { parseWireguardConfig } from '../backend-wireguard/config.js';
import { wgDeviceLayout } from '../backend-wireguard/plan.js';
import type { NetworkConfig } from '../subnet/manager.js';

/** The overlay device of each family (null: none, or the family is off). */
export function overlayDevices(config: NetworkConfig): { 4: string | null; 6: string | null } {
  try {
    if (config.backend.type === 'vxlan') {
      const c = parseVxlanConfig(config.backend.raw);
      return { 4: config.enableIPv4 ? c.name : null, 6: config.enableIPv6 ? c.name6 : null };
    }
    if (config.backend.type === 'udp') {
      const c = parseUdpConfig(config.backend.raw);
      return { 4: config.enableIPv4 ? c.name : null, 6: config.enableIPv6 ? c.name : null };
    }
    if (config.backend.type === 'wireguard') {
      // the backend's own layout: one TUN per family in flannel's `separate` mode, else one for both
      const devs = wgDeviceLayout(parseWireguardConfig(config.backend.raw), config, true);
      return { 4: devs.find((d) => d.v4)?.name ?? null, 6: devs.find((d) => d.v6)?.name ?? null };
    }
  } catch {
    // an invalid backend section is reported by the config check
  }
  return { 4: null, 6: null };
}

/** The overlay devices to read, each once (udp, and WireGuard outside `separate` mode, carry both
 *  families on one device). */
export function overlayDeviceNames(config: NetworkConfig | null): string[] {
  const d = config ? overlayDevices(config) : { 4: null, 6: null };
  return [...new Set([d[4], d[6]])].filter((n): n is string => n !== null);
}
