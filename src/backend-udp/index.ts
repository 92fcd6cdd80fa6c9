/**
 * UDP backend (flannel-compat.md §13; design.md C7): flannel's wire format through weft's native
 * forwarder.
 *
 * Design note. Every host has a TUN device (`weft0`, address `<subnet>.0/32`, MTU = underlay − 28, one
 * route for the whole cluster network) and a native forwarder that owns the TUN fd and a UDP socket on
 * the interface address and `Port` (8285). A packet routed into the TUN goes, as the bare payload of
 * one UDP datagram, to the public IP of the host whose lease covers its destination; the receiving
 * forwarder writes it into its TUN. That is exactly flannel's UDP backend, so weft and flannel hosts
 * interoperate. What differs, on purpose:
 * - packets never pass through JavaScript: the forwarder runs on its own thread with TSO/GSO/GRO
 *   offloads and batching (an order of magnitude over flannel's per-packet loop); this file only maps
 *   leases to `setRoute`/`deleteRoute` and reads counters;
 * - it accepts a datagram only from a peer's public IP and only with an inner source inside that
 *   peer's subnet (flannel accepts anything from anyone), and counts every drop by reason;
 * - leases of other backend types are ignored (flannel routes every lease into its TUN);
 * - the lease is written like flannel's (PublicIP only, no BackendType).
 * Lifecycle: the forwarder lives as long as `run`; when `run` ends (daemon stopping) the forwarder
 * thread is joined. The TUN is persistent, so its address and cluster route survive the daemon: while
 * it is down, cluster traffic queues and drops at the TUN instead of leaking to the default route;
 * the next start re-attaches to the device and rebuilds the forwarder table from the lease snapshot.
 */
import { closeSync } from 'node:fs';
import { ConfigError, describeError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network } from '../backend/backend.js';
import { FAMILY_V4 } from '../backend/family.js';
import { backendNetlink, ownSubnet, type BackendRuntimeOptions } from '../backend/lifecycle.js';
import { DEFAULT_RESYNC_MS, type PeerLoopObserver } from '../backend/peer-loop.js';
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import type { NetlinkOps } from '../netlink/index.js';
import { inNetns } from '../netns/netns.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import { NativeForwarder, type Forwarder, type ForwarderStats } from '../dataplane/forwarder.js';
import { openTun } from '../dataplane/tun.js';
import { UDP_OVERHEAD, parseUdpConfig, type UdpConfig } from './config.js';
import { configureTun, type TunSpec } from './device.js';
import {
  claimOrder,
  peerRoutes,
  syncRoutes,
  type DesiredRoute,
  type UdpPeerScope,
} from './routes.js';

export { parseUdpConfig, DEFAULT_UDP_PORT, UDP_OVERHEAD, type UdpConfig } from './config.js';
export { peerRoutes, syncRoutes, isUdpLease } from './routes.js';
export { forwarderMetricSamples, type MetricSample } from './metrics.js';

export interface ForwarderStartRequest {
  readonly name: string;
  readonly port: number;
  readonly bindAddress: string;
  readonly mtu: number;
  readonly netns?: string;
  readonly log: Logger;
}

export interface UdpBackendOptions extends BackendRuntimeOptions {
  /** Open the TUN, bind the socket and create netlink sockets in this netns (simulated hosts). */
  readonly netns?: string;
  /** Metrics hooks (same shape as the kernel backends'): routed peers, resync duration, failures. */
  readonly observer?: PeerLoopObserver;
  /** Creates the TUN and its forwarder (default: `weft0` with vnet header + NativeForwarder). */
  readonly startForwarder?: (req: ForwarderStartRequest) => Forwarder;
}

export interface UdpNetwork extends Network {
  readonly config: UdpConfig;
  readonly deviceName: string;
  /** The forwarder's counters (for metrics and weftctl). */
  forwarderStats(): ForwarderStats;
  /** Routes the forwarder holds now. */
  forwarderRoutes(): readonly DesiredRoute[];
}

/** Opens (or re-attaches to) the persistent TUN `name` with a virtio-net header and starts a
 *  NativeForwarder on it. */
export function startNativeForwarder(req: ForwarderStartRequest): Forwarder {
  const open = (): Forwarder => {
    const tun = openTun(req.name, { vnetHdr: true, persist: true });
    try {
      return NativeForwarder.start(
        { tunFd: tun.fd, port: req.port, bindAddress: req.bindAddress, mtu: req.mtu },
        { log: req.log },
      );
    } catch (err) {
      closeSync(tun.fd); // start failed: the fd is still ours
      throw err;
    }
  };
  return req.netns ? inNetns(req.netns, open) : open();
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
    const mtu = (cfg.mtu ?? uplink.mtu) - UDP_OVERHEAD;
    const lease: Lease = await subnets.acquireLease(
      { publicIp: uplink.publicIp ?? uplink.ifaceAddr, publicIpv6: null, backendType: '' },
      acquire,
      signal,
    );
    const subnet = ownSubnet(FAMILY_V4, lease, 'udp');
    const start = this.options.startForwarder ?? startNativeForwarder;
    const fwd = start({
      name: cfg.name,
      port: cfg.port,
      bindAddress: uplink.ifaceAddr,
      mtu,
      log,
      ...(this.options.netns ? { netns: this.options.netns } : {}),
    });
    // A fatal forwarder error must never be an unhandled 'error' event; `run` rethrows it.
    const state: { fatal?: unknown } = {};
    fwd.on('error', (err: unknown) => {
      state.fatal ??= err;
    });
    const netlink = backendNetlink(this.options, log);
    const { ops } = netlink;
    const ipv6 = config.enableIPv6 && config.ipv6Network !== null;
    const spec: TunSpec = {
      name: cfg.name,
      mtu,
      subnet,
      network: config.network,
      network6: ipv6 ? config.ipv6Network : null,
    };
    try {
      await configureTun(ops, spec);
    } catch (err) {
      fwd.close();
      netlink.release();
      throw err;
    }
    log.info('udp forwarder started', {
      device: cfg.name,
      port: fwd.localPort,
      mtu,
      fallback: fwd.fallback,
    });
    const network = config.network;
    const scope: UdpPeerScope = {
      v4: { network, subnetLen: config.subnetLen, ownSubnet: subnet },
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
    const resyncMs = this.options.resyncMs ?? DEFAULT_RESYNC_MS;
    return {
      lease,
      mtu,
      encapPorts: [cfg.port],
      peersOnUplink: false,
      config: cfg,
      deviceName: cfg.name,
      forwarderStats: () => fwd.stats(),
      forwarderRoutes: () => fwd.routes(),
      run: (runSignal) =>
        runPeers(
          {
            subnets,
            lease,
            fwd,
            ops,
            spec,
            port: cfg.port,
            scope,
            log,
            resyncMs,
            state,
            observer: this.options.observer,
          },
          runSignal,
        ).finally(() => {
          fwd.close(); // joins the forwarder thread: it never outlives the daemon
          netlink.release();
        }),
    };
  }
}

interface PeerContext {
  readonly subnets: BackendDeps['subnets'];
  readonly lease: Lease;
  readonly fwd: Forwarder;
  readonly ops: NetlinkOps;
  readonly spec: TunSpec;
  readonly port: number;
  readonly scope: UdpPeerScope;
  readonly log: Logger;
  readonly resyncMs: number;
  /** The first fatal forwarder error, if any. */
  readonly state: { fatal?: unknown };
  readonly observer: PeerLoopObserver | undefined;
}

/** One serial loop: lease batches and the periodic resync both end in `apply`. */
async function runPeers(c: PeerContext, signal: AbortSignal): Promise<void> {
  const leases = new Map<string, Lease>();
  const skipped = new Map<string, string>();
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const onError = (): void => stop.abort();
  c.fwd.on('error', onError);
  const apply = (): number => {
    const desired = new Map<string, DesiredRoute>();
    const peers = new Set<string>();
    for (const l of claimOrder(leases.values(), c.fwd.routes())) {
      let plan = peerRoutes(l, c.port, c.scope);
      const taken =
        plan.kind === 'routes' ? plan.routes.find((r) => desired.has(r.dst)) : undefined;
      if (taken) plan = { kind: 'skip', reason: `subnet ${taken.dst} is claimed by another lease` };
      if (plan.kind === 'skip') {
        if (skipped.get(l.key) !== plan.reason)
          c.log.info('peer ignored', { peer: l.key, reason: plan.reason });
        skipped.set(l.key, plan.reason);
        continue;
      }
      skipped.delete(l.key);
      peers.add(l.key);
      for (const r of plan.routes) desired.set(r.dst, r);
    }
    const res = syncRoutes(c.fwd, desired);
    c.observer?.peers?.(peers.size);
    if (res.set + res.deleted > 0)
      c.log.info('forwarder routes updated', { ...res, peers: peers.size });
    return peers.size;
  };
  let queue = Promise.resolve();
  const resync = (): void => {
    queue = queue
      .then(async () => {
        const t0 = performance.now();
        await configureTun(c.ops, c.spec);
        const peers = apply();
        c.observer?.reconciled?.({
          ms: performance.now() - t0,
          peers,
          programmed: 0,
          deleted: 0,
          failures: 0,
        });
      })
      .catch((err: unknown) => {
        c.observer?.failed?.(err);
        c.log.warn('udp resync failed; retrying later', { err: describeError(err) });
      });
  };
  const timer = setInterval(resync, c.resyncMs);
  try {
    if (c.state.fatal !== undefined) throw c.state.fatal;
    for await (const batch of c.subnets.watchLeases(c.lease, stop.signal)) {
      for (const ev of batch) {
        if (ev.kind === 'snapshot') {
          leases.clear();
          for (const l of ev.leases) leases.set(l.key, l);
        } else if (ev.kind === 'removed') {
          leases.delete(ev.lease.key);
          skipped.delete(ev.lease.key);
        } else {
          leases.set(ev.lease.key, ev.lease);
        }
      }
      await queue;
      if (stop.signal.aborted) break;
      apply();
    }
    if (c.state.fatal !== undefined) throw c.state.fatal;
  } catch (err) {
    throw c.state.fatal ?? err; // a dead forwarder explains any later failure
  } finally {
    clearInterval(timer);
    signal.removeEventListener('abort', onAbort);
    c.fwd.off('error', onError);
    await queue;
  }
}
