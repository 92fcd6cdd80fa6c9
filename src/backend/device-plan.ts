/**
 * The overlay devices a backend creates on this host and the MTU containers get, planned purely from
 * the config and the base MTU (Backend.MTU, else the uplink's). Each backend's plan.ts lays its devices
 * out; weftd creates them so, and `weftctl doctor` checks the kernel against the very same plan (a
 * device missing, down, with another MTU, VNI or port), never against rules of its own.
 */

export interface PlannedDevice {
  readonly name: string;
  readonly kind: 'vxlan' | 'tun';
  /** Bytes the encapsulation adds (by the device's underlay family). */
  readonly overhead: number;
  /** base − overhead, or null when the base is unknown (weftctl found no uplink). */
  readonly mtu: number | null;
  /** vxlan: the VNI and UDP port the device must carry. */
  readonly vxlan?: { readonly vni: number; readonly port: number; readonly family: 4 | 6 };
}

export interface DevicePlan {
  readonly devices: readonly PlannedDevice[];
  /** FLANNEL_MTU: the smallest device MTU (no device: the base itself); null when unknown. */
  readonly mtu: number | null;
  /** Where the base MTU came from, for messages: `Backend.MTU 1400` or `uplink eth0 1500`. */
  readonly base: string;
}

/** The uplink as far as the plan needs it (null: unknown). */
export type UplinkMtu = { readonly name: string; readonly mtu: number } | null;

/** Fills in each device's MTU from `cfgMtu` (Backend.MTU) or the uplink's. */
export function planDevices(
  devices: readonly Omit<PlannedDevice, 'mtu'>[],
  cfgMtu: number | null,
  uplink: UplinkMtu,
): DevicePlan {
  const base = cfgMtu ?? uplink?.mtu ?? null;
  const planned = devices.map((d) => ({ ...d, mtu: base === null ? null : base - d.overhead }));
  const mtus = planned.flatMap((d) => (d.mtu === null ? [] : [d.mtu]));
  return {
    devices: planned,
    mtu: planned.length === 0 ? base : mtus.length > 0 ? Math.min(...mtus) : null,
    base:
      cfgMtu !== null
        ? `Backend.MTU ${cfgMtu}`
        : `uplink ${uplink?.name ?? '?'} ${uplink?.mtu ?? '?'}`,
  };
}
