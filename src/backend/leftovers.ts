/**
 * What an earlier weft backend of another type or identity left on this host (docs/configuration.md
 * "Changing the backend"): after `Backend.Type` vxlan → wireguard, a `weft.<VNI>` device keeps its
 * per-peer /24 routes, and they win over the new device's route for the whole network, so traffic
 * silently bypasses the new backend. weftd removes such leftovers once the new backend's devices are
 * up and its lease is held, before the peer loop programs a peer (src/daemon/run.ts); `weftctl doctor`
 * names them (src/cli/doctor-kernel.ts).
 *
 * Only what is provably weft's own goes:
 * - a VXLAN or TUN device (the kinds weft creates) that the running backend does not use, not named
 *   like flannel's (`flannel*`: weftd refuses to start next to those, src/migration/flannel-leftovers.ts),
 *   carrying the address weft gives every device it creates: this host's lease subnet's network
 *   address as a host route (`<subnet>.0/32`, `<subnet6>::/128`; VxlanProgrammer, configureTun); a
 *   VXLAN device must also carry weft's VTEP MAC for its VNI (src/backend-vxlan/mac.ts) when the
 *   caller can derive it. Deleting the device deletes its routes, neighbours and FDB entries with it.
 * - routes on the uplink of weft's shape (one cluster subnet via a gateway, isClusterGatewayRoute)
 *   written with weft's route protocol (`proto static`, src/netlink/encode.ts; `ip route add` writes
 *   `proto boot`), only when the running backend keeps no such routes itself (udp, wireguard): host-gw
 *   and vxlan own them in their reconcile (inScope in reconcile.ts), which replaces or deletes them.
 * A restart with the same backend finds nothing: its devices are the running backend's.
 */
import { describeError } from '../errors.js';
import { canonicalCidr, networkAddress } from '../ip/index.js';
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import type { AddrEntry, LinkInfo, NetlinkOps, RouteEntry } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import type { Network, Uplink } from './backend.js';
import { FAMILIES } from './family.js';
import type { PeerSubnetScope } from './peer-check.js';
import { isClusterGatewayRoute } from './uplink-routes.js';

export interface LeftoverScope {
  /** Devices the running backend uses (never leftovers). */
  readonly keep: readonly string[];
  /** The addresses weft puts on its devices for this host's lease (`10.5.3.0/32`), canonical. */
  readonly ownAddrs: readonly string[];
  /** True when a VXLAN device carries weft's VTEP MAC for its VNI (absent: not checked). */
  readonly isVtep?: (link: LinkInfo) => boolean;
  /** The uplink's ifindex, when its cluster-subnet routes are leftovers (null: they are the running
   *  backend's to reconcile, or unknown). */
  readonly uplink: number | null;
  readonly clusters: readonly PeerSubnetScope[];
}

/** The addresses weft's devices carry for `lease`: each subnet's network address as a host route. */
export function ownDeviceAddrs(lease: Pick<Lease, 'subnet' | 'subnet6'> | null): string[] {
  const out: string[] = [];
  if (lease?.subnet) out.push(`${networkAddress(lease.subnet)}/32`);
  if (lease?.subnet6) out.push(canonicalCidr(`${networkAddress(lease.subnet6)}/128`));
  return out;
}

/** Devices of an earlier weft backend (see the file comment); pure. */
export function leftoverDevices(
  links: readonly LinkInfo[],
  addrs: readonly AddrEntry[],
  scope: Pick<LeftoverScope, 'keep' | 'ownAddrs' | 'isVtep'>,
): LinkInfo[] {
  const own = new Set(scope.ownAddrs);
  const marked = new Set(addrs.filter((a) => own.has(canonical(a.cidr))).map((a) => a.index));
  return links.filter(
    (l) =>
      (l.kind === 'vxlan' || l.kind === 'tun') &&
      !scope.keep.includes(l.name) &&
      !l.name.startsWith('flannel') &&
      marked.has(l.index) &&
      (l.kind === 'tun' || !scope.isVtep || scope.isVtep(l)),
  );
}

/** Routes an earlier host-gw (or vxlan DirectRouting) left on the uplink (see the file comment); pure. */
export function leftoverUplinkRoutes(
  routes: readonly RouteEntry[],
  scope: Pick<LeftoverScope, 'uplink' | 'clusters'>,
): RouteEntry[] {
  if (scope.uplink === null) return [];
  return routes.filter(
    (r) =>
      r.oif === scope.uplink &&
      r.protocol === 'STATIC' &&
      scope.clusters.some((c) => isClusterGatewayRoute(r, c.network, c.subnetLen, c.ownSubnet)),
  );
}

/** The scope for the network weftd just registered: its devices, its lease, and the uplink's routes
 *  when it keeps none there itself. */
export function leftoverScope(
  network: Pick<Network, 'lease' | 'deviceNames' | 'ownsUplinkRoutes'>,
  config: NetworkConfig,
  uplink: Pick<Uplink, 'index'>,
  isVtep?: (link: LinkInfo) => boolean,
): LeftoverScope {
  return {
    keep: network.deviceNames,
    ownAddrs: ownDeviceAddrs(network.lease),
    ...(isVtep ? { isVtep } : {}),
    uplink: network.ownsUplinkRoutes ? null : uplink.index,
    clusters: FAMILIES.flatMap((f) => {
      const net = f.network(config);
      const own = f.subnet(network.lease);
      return net === null
        ? []
        : [{ network: net, subnetLen: f.subnetLen(config), ownSubnet: own ?? '' }];
    }),
  };
}

/**
 * Removes the leftovers in `scope` (one info line per device, one for the routes); a failed removal
 * is a warning naming the command that removes it by hand, never fatal: the running backend works,
 * only the leftover's routes may still win. Returns what was removed.
 */
export async function removeLeftovers(
  ops: NetlinkOps,
  scope: LeftoverScope,
  log: Logger,
): Promise<{ devices: string[]; routes: string[] }> {
  const links = await ops.listLinks();
  const candidates = links.filter(
    (l) => (l.kind === 'vxlan' || l.kind === 'tun') && !scope.keep.includes(l.name),
  );
  const addrs: AddrEntry[] = [];
  for (const l of candidates)
    for (const f of [4, 6] as const) addrs.push(...(await ops.listAddrs(l.index, f)));
  const devices: string[] = [];
  for (const l of leftoverDevices(candidates, addrs, scope)) {
    const what = l.vxlan ? `vxlan device (VNI ${l.vxlan.vni}, port ${l.vxlan.port})` : 'TUN device';
    try {
      await ops.deleteLink(l.index);
      devices.push(l.name);
      log.info(`removed the ${what} ${l.name} of an earlier weft backend, with its routes`, {
        device: l.name,
        kind: l.kind,
      });
    } catch (err) {
      log.warn(
        `cannot remove the ${what} ${l.name} of an earlier weft backend: its routes may win over this backend's; remove it by hand: ip link del ${l.name}`,
        { device: l.name, error: describeError(err) },
      );
    }
  }
  const routes: string[] = [];
  if (scope.uplink !== null) {
    const found: RouteEntry[] = [];
    for (const c of scope.clusters) {
      const family = c.network.includes(':') ? 6 : 4;
      found.push(...(await ops.routeList(family, { oif: scope.uplink })));
    }
    for (const r of leftoverUplinkRoutes(found, scope)) {
      try {
        await ops.routeDelete(r);
        routes.push(`${r.dst} via ${r.gateway}`);
      } catch (err) {
        log.warn(
          `cannot remove the route ${r.dst} via ${r.gateway} of an earlier weft backend: remove it by hand: ip route del ${r.dst}`,
          { error: describeError(err) },
        );
      }
    }
    if (routes.length > 0)
      log.info('removed the uplink routes of an earlier weft backend', { routes });
  }
  return { devices, routes };
}

function canonical(cidr: string): string {
  try {
    return canonicalCidr(cidr);
  } catch {
    return cidr;
  }
}
