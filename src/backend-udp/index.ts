/**
 * UDP backend (docs/flannel-compat.md §13; docs/design.md C7): flannel's wire format through weft's native
 * forwarder.
 *
 * Design note. Every host has a TUN device (`weft0`, address `<subnet>.0/32`, MTU = underlay − 28, one
 * route for the whole cluster network) and a native forwarder that owns the TUN fd and a UDP socket on
 * the interface address and `Port` (8285). A packet routed into the TUN goes, as the bare payload of
 * one UDP datagram, to the public IP of the host whose lease covers its destination; the receiving
 * forwarder writes it into its TUN. That is exactly flannel's UDP backend, so weft and flannel hosts
 * interoperate. What differs, on purpose:
 * - packets never pass through JavaScript: the forwarder runs on its own thread with TSO/GSO/GRO
 *   offloads and batching (an order of magnitude over flannel's per-packet loop); leases become
 *   `setRoute`/`deleteRoute` through the shared peer loop (plan.ts → forwarder-sink.ts);
 * - it accepts a datagram only from a peer's public IP and only with an inner source inside that
 *   peer's subnet (flannel accepts anything from anyone), and counts every drop by reason;
 * - leases of other backend types are ignored (flannel routes every lease into its TUN);
 * - the lease is written like flannel's (PublicIP only, no BackendType).
 * Lifecycle: the forwarder lives as long as `run`; when `run` ends (daemon stopping) the forwarder
 * thread is joined. The TUN is persistent, so its address and cluster route survive the daemon: while
 * it is down, cluster traffic queues and drops at the TUN instead of leaking to the default route;
 * the next start re-attaches to the device and rebuilds the forwarder table from the lease snapshot.
 * A TUN deleted while weftd runs is recreated in place with a new forwarder (`TunKeeper` in
 * backend/lifecycle.ts).
 */
import { ConfigError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network } from '../backend/backend.js';
import { FAMILY_V4 } from '../backend/family.js';
import { configureTun, type TunSpec } from '../backend/tun-device.js';
import {
  backendNetlink,
  ownSubnet,
  peerLoopRunner,
  linkTriggers,
  tunWentDown,
  TunKeeper,
  type BackendRuntimeOptions,
  type TunSlot,
} from '../backend/lifecycle.js';
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { inNetns } from '../netns/netns.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import type { Forwarder, ForwarderRoute, ForwarderStats } from '../dataplane/forwarder.js';
import { NativeForwarder } from '../dataplane/native-forwarder.js';
import { startOnTun } from '../dataplane/tun.js';
import { parseUdpConfig, type UdpConfig } from './config.js';
import { forwarderSink } from './forwarder-sink.js';
import { planUdpDevices, planUdpPeer, type UdpPeerScope } from './plan.js';

export { parseUdpConfig, DEFAULT_UDP_PORT, UDP_OVERHEAD, type UdpConfig } from './config.js';
export { planUdpPeer, isUdpLease } from './plan.js';
export { forwarderMetricSamples, type MetricSample } from './metrics.js';

export interface ForwarderStartRequest {
  readonly name: string;
  readonly port: number;
  readonly bindAddress: string;
  readonly mtu: number;
  /** This host's lease subnets: the only inner destinations the forwarder accepts from peers. */
  readonly localSubnets: readonly string[];
  readonly netns?: string;
  readonly log: Logger;
}

export interface UdpBackendOptions extends BackendRuntimeOptions {
  /** Creates the TUN and its forwarder (default: `weft0` with vnet header + NativeForwarder). */
  readonly startForwarder?: (req: ForwarderStartRequest) => Forwarder;
}

export interface UdpNetwork extends Network {
  readonly config: UdpConfig;
  readonly deviceName: string;
  /** The forwarder's counters (for metrics and weftctl). */
  forwarderStats(): ForwarderStats;
  /** Runs a full reconcile now (queued behind any work in progress); only while `run` is active. */
  reconcileNow(): Promise<void>;
  /** Routes the forwarder holds now. */
  forwarderRoutes(): readonly ForwarderRoute[];
}

/** Opens (or re-attaches to) the persistent TUN `name` with a virtio-net header and starts a
 *  NativeForwarder on it. */
export function startNativeForwarder(req: ForwarderStartRequest): Forwarder {
  const { name, netns, log, ...opts } = req;
  const start = (tunFd: number): Forwarder => NativeForwarder.start({ tunFd, ...opts }, { log });
  return startOnTun(name, start, netns ? (open) => inNetns(netns, open) : undefined);
}

export function udpBackendFactory(options: UdpBackendOptions = {}): BackendFactory {
  return (deps) => new UdpBackend(deps, options);
}

class UdpBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly options: UdpBackendOptions,
  ) {}

  async registerNetwork(
    config: NetworkConfig,
    acquire: AcquireOptions,
    signal: AbortSignal,
  ): Promise<UdpNetwork> {
    const { uplink, subnets } = this.deps;
    const log = this.deps.log.child({ backend: 'udp' });
    const cfg = parseUdpConfig(config.backend.raw, (msg, f) => log.warn(msg, f));
    if (!config.enableIPv4 || !config.network) {
      throw new ConfigError('udp: the UDP backend needs an IPv4 Network (its underlay is IPv4)');
    }
    if (!uplink.ifaceAddr) {
      throw new ConfigError(
        `udp: interface ${uplink.name} has no IPv4 address: add one or pick another interface (--iface)`,
        { code: 'E_INTERFACE' },
      );
    }
    const mtu = planUdpDevices(cfg, uplink).mtu!;
    const lease: Lease = await subnets.acquireLease(
      { publicIp: uplink.publicIp ?? uplink.ifaceAddr, publicIpv6: null, backendType: '' },
      acquire,
      signal,
    );
    const subnet = ownSubnet(FAMILY_V4, lease, 'udp');
    const ipv6 = config.enableIPv6 && config.ipv6Network !== null;
    const start = this.options.startForwarder ?? startNativeForwarder;
    const request: ForwarderStartRequest = {
      name: cfg.name,
      port: cfg.port,
      bindAddress: uplink.ifaceAddr,
      mtu,
      localSubnets: ipv6 && lease.subnet6 !== null ? [subnet, lease.subnet6] : [subnet],
      log,
      ...(this.options.netns ? { netns: this.options.netns } : {}),
    };
    // `run` ends on a fatal forwarder error; a deleted TUN is recreated in place (repairWith below)
    const tun = new TunKeeper<Forwarder, TunSlot<Forwarder>>('udp', log);
    const fwd = tun.watch({ name: cfg.name, engine: start(request) });
    const netlink = backendNetlink(this.options, log);
    const { ops } = netlink;
    const spec: TunSpec = {
      name: cfg.name,
      mtu,
      subnet,
      network: config.network,
      subnet6: null,
      network6: ipv6 ? config.ipv6Network : null,
    };
    const configure = (): Promise<number> => configureTun(ops, spec, 'udp: TUN device');
    try {
      await configure();
    } catch (err) {
      tun.release(); // closes the forwarder; no repair of a network that never started
      netlink.release();
      throw err;
    }
    log.info('udp forwarder started', {
      device: cfg.name,
      port: fwd.engine.localPort,
      mtu,
      fallback: fwd.engine.fallback,
    });
    const scope: UdpPeerScope = {
      port: cfg.port,
      v4: { network: config.network, subnetLen: config.subnetLen, ownSubnet: subnet },
      v6:
        ipv6 && config.ipv6Network !== null && lease.subnet6 !== null
          ? {
              network: config.ipv6Network,
              subnetLen: config.ipv6SubnetLen,
              ownSubnet: lease.subnet6,
            }
          : null,
      ownIps: [uplink.publicIp, uplink.ifaceAddr],
    };
    const sink = forwarderSink(fwd.engine, async () => void (await configure()));
    const loop = peerLoopRunner(
      {
        subnets,
        ownLease: lease,
        plan: (l) => planUdpPeer(l, scope),
        sink,
        log,
        triggers: linkTriggers(ops, tunWentDown([cfg.name])),
      },
      this.options,
      () => {
        tun.release(); // joins the forwarder thread: it never outlives the daemon
        netlink.release();
      },
    );
    tun.repairWith({
      deleted: `udp device ${cfg.name} was deleted (ip link del?): recreating it`,
      restart: () => start(request),
      replaced: (s) => sink.replaceForwarder(s.engine),
      configure,
      reconcileNow: loop.reconcileNow,
    });
    return {
      lease,
      mtu,
      encapPorts: [cfg.port],
      peersOnUplink: false,
      config: cfg,
      deviceName: cfg.name,
      deviceNames: [cfg.name],
      ownsUplinkRoutes: false,
      forwarderStats: () => fwd.engine.stats(),
      forwarderRoutes: () => fwd.engine.routes(),
      reconcileNow: loop.reconcileNow,
      // a dead forwarder stops the loop and explains its end
      run: (runSignal) => tun.run(loop.run, runSignal),
    };
  }
}
