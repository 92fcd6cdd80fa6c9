/**
 * The delegate configuration, built the way flannel's CNI plugin builds it (docs/flannel-compat.md §16,
 * docs/cni-contract.md A12) from the netconf and subnet.env:
 *   name = network name; type default "bridge"; bridge isGateway default true; ipMasq default
 *   !FLANNEL_IPMASQ; mtu default FLANNEL_MTU; runtimeConfig/args copied; ipam = base ipam, type default
 *   "host-local", ranges = one range set per family present, routes = configured + one per cluster network.
 * Two deliberate differences: weft's cluster routes carry an explicit `gw` (the subnet's first address, the
 * gateway host-local picks anyway), because the reference bridge's CHECK rejects routes without one; and
 * the bridge gets forceAddress (default true), so a new subnet replaces the old gateway address.
 */
import { firstHost, formatNetwork, type HostCidr } from '../ip/host-cidr.js';
import type { SubnetEnv } from '../lease/subnet-env.js';
import type { Json, JsonObject, WeftNetConf } from './netconf.js';
import type { CniVersion } from './versions.js';

function clusterRoutes(networks: readonly HostCidr[], subnet: HostCidr | undefined): JsonObject[] {
  if (!subnet) return [];
  const gw = firstHost(subnet);
  return networks.map((n) => ({ dst: formatNetwork(n), gw }));
}

export function buildDelegateConfig(
  conf: WeftNetConf,
  env: SubnetEnv,
  delegateVersion: CniVersion,
): JsonObject {
  const d: JsonObject = { ...(conf.delegate ?? {}) };
  if (d['type'] === undefined) d['type'] = 'bridge';
  if (d['type'] === 'bridge' && d['isGateway'] === undefined) d['isGateway'] = true;
  // When weftd's lease moves to another subnet, the bridge's gateway address must follow: without
  // forceAddress the reference bridge refuses every later ADD ("already has an IP address different
  // from …") until someone deletes the bridge by hand. Containers still on the old subnet are cut off
  // either way: this host no longer leases it.
  if (d['type'] === 'bridge' && d['forceAddress'] === undefined) d['forceAddress'] = true;
  if (d['ipMasq'] === undefined) d['ipMasq'] = !env.ipMasq;
  if (d['mtu'] === undefined) d['mtu'] = env.mtu;
  d['name'] = conf.name;
  d['cniVersion'] = delegateVersion;
  if (conf.runtimeConfig) d['runtimeConfig'] = conf.runtimeConfig;
  if (conf.args) d['args'] = conf.args;

  const ipam: JsonObject = { ...(conf.ipam ?? {}) };
  if (ipam['type'] === undefined) ipam['type'] = 'host-local';
  const ranges: Json[] = [];
  if (env.subnet) ranges.push([{ subnet: formatNetwork(env.subnet) }]);
  if (env.ipv6Subnet) ranges.push([{ subnet: formatNetwork(env.ipv6Subnet) }]);
  ipam['ranges'] = ranges;
  const routes: Json[] = Array.isArray(ipam['routes']) ? [...ipam['routes']] : [];
  const taken = new Set(
    routes.map((r) =>
      typeof r === 'object' && r !== null && !Array.isArray(r) ? r['dst'] : undefined,
    ),
  );
  for (const r of [
    ...clusterRoutes(env.networks, env.subnet),
    ...clusterRoutes(env.ipv6Networks, env.ipv6Subnet),
  ]) {
    if (!taken.has(r['dst'])) routes.push(r);
  }
  ipam['routes'] = routes;
  d['ipam'] = ipam;
  return d;
}
