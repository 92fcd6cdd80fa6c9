/**
 * Shared pieces of the backend integration tests (host-gw, vxlan, udp): a backend running for one
 * simulated host, the uplink a daemon would pick there (eth0), one container per host in the host's
 * leased subnet, and the every-container-pings-every-other check.
 */
import { afterAll, beforeAll } from 'vitest';
import type { Backend, Network, Uplink } from '../../src/backend/backend.js';
import { createNetlinkOps, type NetlinkOps } from '../../src/netlink/index.js';
import type { NetworkConfig } from '../../src/subnet/manager.js';
import { run } from '../helpers/exec.js';
import {
  createTopology,
  ping,
  type SimContainer,
  type SimHost,
  type Topology,
} from '../helpers/netns.js';
import { MemorySubnets } from './backend-memory-subnets.js';

export interface Running<N extends Network> {
  host: SimHost;
  network: N;
  ac: AbortController;
  done: Promise<void>;
  container?: SimContainer;
  /** The third octet of the leased IPv4 subnet (10.5.<n>.0/24). */
  n: number;
}

/** Registers `backend`'s network for `host` and starts its run loop. */
export async function startBackend<N extends Network>(
  backend: Backend,
  config: NetworkConfig,
  host: SimHost,
): Promise<Running<N>> {
  const ac = new AbortController();
  const network = (await backend.registerNetwork(config, {}, ac.signal)) as N;
  const done = network.run(ac.signal);
  return { host, network, ac, done, n: Number(network.lease.subnet!.split('.')[2]) };
}

/** Simulated hosts each running a backend, leases from one MemorySubnets (set in beforeAll). */
export interface BackendCluster<N extends Network> {
  topo: Topology;
  config: NetworkConfig;
  subnets: MemorySubnets;
  readonly hosts: Running<N>[];
  /** A netlink handle into each host's netns, in host order. */
  readonly inspect: NetlinkOps[];
}

/**
 * `count` simulated hosts, each running the backend `make` returns for it, one container per host
 * (`containers`): set up in beforeAll, stopped and removed in afterAll.
 */
export function useBackendCluster<N extends Network>(
  count: number,
  config: () => NetworkConfig,
  make: (
    host: SimHost,
    ops: NetlinkOps,
    subnets: MemorySubnets,
    config: NetworkConfig,
  ) => Backend | Promise<Backend>,
  containers: { ipv6?: boolean; networkMtu?: boolean } = {},
): BackendCluster<N> {
  const c = { hosts: [], inspect: [] } as unknown as BackendCluster<N>;
  beforeAll(async () => {
    c.topo = await createTopology({ hosts: count });
    c.config = config();
    c.subnets = new MemorySubnets(c.config);
    for (const h of c.topo.hosts) {
      const ops = createNetlinkOps({ netns: h.netns });
      c.inspect.push(ops);
      const backend = await make(h, ops, c.subnets, c.config);
      c.hosts.push(await startBackend<N>(backend, c.config, h));
    }
    await addContainers(c.topo, c.hosts, containers);
  });
  afterAll(async () => {
    await stopBackends(c.hosts);
    for (const o of c.inspect) o.close();
    await c.topo?.destroy();
  });
  return c;
}

/** Aborts every backend and waits for its run loop to end (teardown: failures ignored). */
export async function stopBackends(hosts: readonly Running<Network>[]): Promise<void> {
  for (const r of hosts) {
    r.ac.abort();
    await r.done.catch(() => {});
  }
}

/** eth0 of a simulated host as the uplink, its underlay addresses published (or `publicIp`). */
export async function uplinkOf(
  ops: NetlinkOps,
  host: SimHost,
  ipv6: boolean,
  publicIp?: string,
): Promise<Uplink> {
  const eth0 = (await ops.getLink('eth0'))!;
  return {
    name: 'eth0',
    index: eth0.index,
    mtu: eth0.mtu,
    ifaceAddr: host.underlayIp,
    ifaceAddr6: ipv6 ? host.underlayIp6 : null,
    publicIp: publicIp ?? host.underlayIp,
    publicIpv6: ipv6 ? host.underlayIp6 : null,
  };
}

/**
 * One container per host: 10.5.<n>.2/24 via .1 (and fd05:0:0:<n>::2/64 via ::1 with `ipv6`), with the
 * network's MTU when `networkMtu`, else the default.
 */
export async function addContainers(
  topo: Topology,
  hosts: readonly Running<Network>[],
  opts: { ipv6?: boolean; networkMtu?: boolean } = {},
): Promise<void> {
  for (const r of hosts) {
    r.container = await topo.addContainer(r.host, {
      cidr: `10.5.${r.n}.2/24`,
      gateway: `10.5.${r.n}.1`,
      ...(opts.ipv6 ? { cidr6: `fd05:0:0:${r.n}::2/64`, gateway6: `fd05:0:0:${r.n}::1` } : {}),
      ...(opts.networkMtu ? { mtu: r.network.mtu } : {}),
    });
  }
}

/** Every container pings every other one (and its IPv6 address with `ipv6`) at once; the failed pairs. */
export async function pingMatrix(
  hosts: readonly Running<Network>[],
  ipv6: boolean,
): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    hosts.flatMap((a) =>
      hosts
        .filter((b) => b !== a)
        .flatMap((b) =>
          [b.container!.ip, ...(ipv6 ? [b.container!.ip6!] : [])].map(async (dst) => {
            if (!(await ping(a.container!.netns, dst, 2, 2)))
              failures.push(`${a.container!.ip} → ${dst}`);
          }),
        ),
    ),
  );
  return failures;
}

export const ipOut = async (ns: string, ...args: string[]): Promise<string> =>
  (await run('ip', ['-n', ns, ...args])).stdout;
