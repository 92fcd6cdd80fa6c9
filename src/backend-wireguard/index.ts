/**
 * WireGuard backend (`"Type": "wireguard"`): flannel's wireguard backend on the wire and in etcd, with
 * weft's own userspace engine (native/src/wg_*.c) because many kernels have no WireGuard module.
 *
 * Design note. Every host has one device per flannel `Mode` (see peers.ts): a persistent TUN
 * (`weft-wg`, and `weft-wg-v6` in `separate` mode with IPv6) with this host's subnet IP as a host
 * address, MTU = base − 80 (flannel's rule) and a route for the whole cluster network; the engine thread
 * owns the TUN fd and a UDP socket on the interface address and ListenPort (ListenPortV6). The private
 * key is generated once and kept 0600 in `--state-dir` (key.ts); the lease publishes the public key as
 * `BackendData: {"PublicKey": "<base64>"}` (and `BackendV6Data`), exactly like flannel, so flannel nodes
 * running its wireguard backend and weft nodes form one cluster. Each other host's lease becomes one
 * peer: AllowedIPs = its subnet(s), Endpoint = PublicIP:ListenPort, the shared PSK and
 * PersistentKeepaliveInterval.
 * Packets never pass through JavaScript; this file maps leases to peers and reads counters.
 * Lifecycle: the engine lives as long as `run`; when `run` ends its thread is joined. The TUN, its
 * address and routes survive the daemon (cluster traffic then queues and drops at the TUN instead of
 * leaking to the default route); the next start re-attaches and re-programs the peers from the lease
 * snapshot, with the same key. Sessions are re-established by handshakes within a second.
 */
import { closeSync } from 'node:fs';
import { ConfigError, describeError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network } from '../backend/backend.js';
import { FAMILY_V4, FAMILY_V6 } from '../backend/family.js';
import { backendNetlink, ownSubnet, type BackendRuntimeOptions } from '../backend/lifecycle.js';
import { DEFAULT_RESYNC_MS, type PeerLoopObserver } from '../backend/peer-loop.js';
import type { PeerSubnetScope } from '../backend/peer-check.js';
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import type { NetlinkOps } from '../netlink/index.js';
import { inNetns } from '../netns/netns.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import { openTun } from '../dataplane/tun.js';
import {
  WireGuardDevice,
  generatePrivateKey,
  publicKeyOf,
  type WireGuardPeerSpec,
  type WireGuardSnapshot,
} from '../dataplane/wireguard-device.js';
import { WG_OVERHEAD, parseWireguardConfig, type WireguardConfig } from './config.js';
import { configureWgTun, type WgTunSpec } from './device.js';
import { loadOrCreateKey } from './key.js';
import { desiredPeers, type DeviceScope } from './peers.js';

export {
  parseWireguardConfig,
  WG_OVERHEAD,
  DEFAULT_WG_PORT,
  DEFAULT_WG_PORT_V6,
  type WireguardConfig,
} from './config.js';
export { desiredPeers, peerFor, leasePublicKey, isWireguardLease } from './peers.js';
export { loadOrCreateKey, KEY_FILE } from './key.js';

export interface WgDeviceStartRequest {
  readonly name: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly bindAddress: string;
  readonly mtu: number;
  readonly privateKey: Buffer;
  readonly netns?: string;
  readonly log: Logger;
}

export interface WireguardBackendOptions extends BackendRuntimeOptions {
  /** Open the TUN, bind the socket and create netlink sockets in this netns (simulated hosts). */
  readonly netns?: string;
  readonly observer?: PeerLoopObserver;
  /** Creates the TUN and its engine (default: persistent TUN with vnet header + WireGuardDevice). */
  readonly startDevice?: (req: WgDeviceStartRequest) => WireGuardDevice;
  /** Hears about the network once it is registered (metrics read its devices at scrape time). */
  readonly onNetwork?: (network: WireguardNetwork) => void;
}

/** One device's identity and live state, for metrics, weftctl and the firewall. */
export interface WireguardDeviceStatus {
  readonly name: string;
  /** Underlay family of its UDP socket. */
  readonly family: 4 | 6;
  readonly listenPort: number;
  readonly publicKey: string;
  snapshot(): WireGuardSnapshot;
}

export interface WireguardNetwork extends Network {
  readonly config: WireguardConfig;
  readonly publicKey: string;
  readonly devices: readonly WireguardDeviceStatus[];
  /** UDP ports peers send to (for the firewall's peer allowlist). */
  readonly listenPorts: readonly { readonly family: 4 | 6; readonly port: number }[];
}

/** Opens (or re-attaches to) the persistent TUN `name` and starts the engine on it. */
export function startWireguardDevice(req: WgDeviceStartRequest): WireGuardDevice {
  const open = (): WireGuardDevice => {
    const tun = openTun(req.name, { vnetHdr: true, persist: true });
    try {
      return WireGuardDevice.start(
        {
          tunFd: tun.fd,
          family: req.family,
          bindAddress: req.bindAddress,
          port: req.port,
          mtu: req.mtu,
          privateKey: req.privateKey,
        },
        { log: req.log },
      );
    } catch (err) {
      closeSync(tun.fd); // start failed: the fd is still ours
      throw err;
    }
  };
  return req.netns ? inNetns(req.netns, open) : open();
}

export function wireguardBackendFactory(options: WireguardBackendOptions = {}): BackendFactory {
  return (deps) => new WireguardBackend(deps, options);
}

interface DevicePlan {
  readonly name: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly bindAddress: string;
  readonly v4: boolean;
  readonly v6: boolean;
  readonly keyFrom: 'v4' | 'v6';
}

class WireguardBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly options: WireguardBackendOptions,
  ) {}

  private plan(cfg: WireguardConfig, config: NetworkConfig): DevicePlan[] {
    const { uplink } = this.deps;
    const v4on = config.enableIPv4 && config.network !== null;
    const v6on = config.enableIPv6 && config.ipv6Network !== null;
    if (!v4on && !v6on)
      throw new ConfigError('wireguard: the network config enables neither IPv4 nor IPv6');
    const need = (family: 4 | 6, why: string): string => {
      const addr = family === 4 ? uplink.ifaceAddr : uplink.ifaceAddr6;
      if (!addr) {
        throw new ConfigError(
          `wireguard: ${why} needs an IPv${family} address on interface ${uplink.name}: add one, pick ` +
            `another interface (--iface) or change Backend.Mode`,
          { code: 'E_INTERFACE' },
        );
      }
      return addr;
    };
    const keyFrom: 'v4' | 'v6' = v6on ? 'v6' : 'v4';
    switch (cfg.mode) {
      case 'separate': {
        const out: DevicePlan[] = [];
        if (v4on) {
          out.push({
            name: cfg.name,
            family: 4,
            port: cfg.listenPort,
            bindAddress: need(4, 'Mode separate with an IPv4 network'),
            v4: true,
            v6: false,
            keyFrom: 'v4',
          });
        }
        if (v6on) {
          out.push({
            name: cfg.nameV6,
            family: 6,
            port: cfg.listenPortV6,
            bindAddress: need(6, 'Mode separate with an IPv6 network'),
            v4: false,
            v6: true,
            keyFrom: 'v6',
          });
        }
        return out;
      }
      case 'ipv4':
      case 'ipv6':
      case 'auto': {
        // auto: the IPv4 underlay when this host has one (flannel prefers IPv4 too), else IPv6
        const family: 4 | 6 =
          cfg.mode === 'ipv4' ? 4 : cfg.mode === 'ipv6' ? 6 : uplink.ifaceAddr ? 4 : 6;
        return [
          {
            name: cfg.name,
            family,
            port: cfg.listenPort,
            bindAddress: need(family, `Mode ${cfg.mode}`),
            v4: v4on,
            v6: v6on,
            keyFrom,
          },
        ];
      }
    }
  }

  async registerNetwork(
    config: NetworkConfig,
    acquire: AcquireOptions,
    signal: AbortSignal,
  ): Promise<WireguardNetwork> {
    const { uplink, subnets } = this.deps;
    const log = this.deps.log.child({ backend: 'wireguard' });
    const cfg = parseWireguardConfig(config.backend.raw, (msg, f) => log.warn(msg, f));
    if (cfg.engine === 'kernel') {
      throw new ConfigError(
        'wireguard: Backend.Engine "kernel" is not available in this build (only the userspace ' +
          'engine is): use "auto" or "userspace"',
      );
    }
    const plans = this.plan(cfg, config);
    const key = loadOrCreateKey(this.deps.stateDir, generatePrivateKey, (m, f) => log.warn(m, f));
    const publicKey = publicKeyOf(key.privateKey);
    log.info(key.created ? 'wireguard key generated' : 'wireguard key loaded', {
      path: key.path,
      publicKey,
    });
    const base = cfg.mtu ?? uplink.mtu;
    const mtu = base - WG_OVERHEAD;
    if (mtu < 576) {
      throw new ConfigError(
        `wireguard: MTU ${base} of ${uplink.name} leaves ${mtu} after WireGuard's 80 bytes (min 576): ` +
          'raise the interface MTU or Backend.MTU',
      );
    }
    const v4on = config.enableIPv4 && config.network !== null;
    const v6on = config.enableIPv6 && config.ipv6Network !== null;
    const data = { PublicKey: publicKey };
    const lease: Lease = await subnets.acquireLease(
      {
        publicIp: uplink.publicIp ?? uplink.ifaceAddr ?? '0.0.0.0',
        publicIpv6: v6on ? (uplink.publicIpv6 ?? uplink.ifaceAddr6) : null,
        backendType: 'wireguard',
        ...(v4on ? { backendData: data } : {}),
        ...(v6on ? { backendV6Data: data } : {}),
      },
      acquire,
      signal,
    );
    const own4 = v4on ? ownSubnet(FAMILY_V4, lease, 'wireguard') : null;
    const own6 = v6on ? ownSubnet(FAMILY_V6, lease, 'wireguard') : null;
    const start = this.options.startDevice ?? startWireguardDevice;
    const netlink = backendNetlink(this.options, log);
    const { ops } = netlink;
    const devices: RunningDevice[] = [];
    const state: { fatal?: unknown } = {};
    try {
      for (const p of plans) {
        const dev = start({
          name: p.name,
          family: p.family,
          port: p.port,
          bindAddress: p.bindAddress,
          mtu,
          privateKey: key.privateKey,
          log,
          ...(this.options.netns ? { netns: this.options.netns } : {}),
        });
        // A fatal engine error must never be an unhandled 'error' event; `run` rethrows it.
        dev.on('error', (err: unknown) => {
          state.fatal ??= err;
        });
        const spec: WgTunSpec = {
          name: p.name,
          mtu,
          subnet: p.v4 ? own4 : null,
          network: p.v4 ? config.network : null,
          subnet6: p.v6 ? own6 : null,
          network6: p.v6 ? config.ipv6Network : null,
        };
        const scope4: PeerSubnetScope | null =
          p.v4 && own4 && config.network
            ? { network: config.network, subnetLen: config.subnetLen, ownSubnet: own4 }
            : null;
        const scope6: PeerSubnetScope | null =
          p.v6 && own6 && config.ipv6Network
            ? { network: config.ipv6Network, subnetLen: config.ipv6SubnetLen, ownSubnet: own6 }
            : null;
        devices.push({
          plan: p,
          dev,
          spec,
          scope: {
            underlay: p.family,
            port: p.port,
            v4: scope4,
            v6: scope6,
            keyFrom: p.keyFrom,
            ownIps:
              p.family === 4
                ? [uplink.publicIp, uplink.ifaceAddr]
                : [uplink.publicIpv6, uplink.ifaceAddr6],
            psk: cfg.psk,
            persistentKeepalive: cfg.persistentKeepalive,
          },
          programmed: new Map(),
        });
        await configureWgTun(ops, spec);
        log.info('wireguard device started', {
          device: p.name,
          underlay: `IPv${p.family}`,
          port: dev.localPort,
          mtu,
        });
      }
    } catch (err) {
      for (const d of devices) d.dev.close();
      netlink.release();
      throw err;
    }
    const resyncMs = this.options.resyncMs ?? DEFAULT_RESYNC_MS;
    const network: WireguardNetwork = {
      lease,
      mtu,
      config: cfg,
      publicKey,
      devices: devices.map((d) => ({
        name: d.plan.name,
        family: d.plan.family,
        listenPort: d.plan.port,
        publicKey,
        snapshot: () => d.dev.snapshot(),
      })),
      listenPorts: devices.map((d) => ({ family: d.plan.family, port: d.plan.port })),
      // the firewall's peer allowlist guards the WireGuard ports too (README "Security")
      encapPorts: [...new Set(devices.map((d) => d.plan.port))],
      peersOnUplink: false,
      run: (runSignal) =>
        runPeers(
          { subnets, lease, devices, ops, log, resyncMs, state, observer: this.options.observer },
          runSignal,
        ).finally(() => {
          for (const d of devices) d.dev.close(); // joins the engine threads
          netlink.release();
        }),
    };
    this.options.onNetwork?.(network);
    return network;
  }
}

interface RunningDevice {
  readonly plan: DevicePlan;
  readonly dev: WireGuardDevice;
  readonly spec: WgTunSpec;
  readonly scope: DeviceScope;
  /** publicKey → JSON of the spec last programmed */
  readonly programmed: Map<string, string>;
}

interface PeerContext {
  readonly subnets: BackendDeps['subnets'];
  readonly lease: Lease;
  readonly devices: readonly RunningDevice[];
  readonly ops: NetlinkOps;
  readonly log: Logger;
  readonly resyncMs: number;
  readonly state: { fatal?: unknown };
  readonly observer: PeerLoopObserver | undefined;
}

/** Brings one device's peers to `want`: removes peers no lease names, (re)programs changed ones. */
function syncDevice(
  d: RunningDevice,
  want: Map<string, WireGuardPeerSpec>,
  log: Logger,
): { set: number; removed: number } {
  let set = 0;
  let removed = 0;
  for (const key of d.dev.peerKeys()) {
    if (!want.has(key)) {
      d.dev.removePeer(key);
      d.programmed.delete(key);
      removed++;
    }
  }
  for (const [key, spec] of want) {
    const json = JSON.stringify(spec);
    const known = d.programmed.get(key);
    if (known === json) continue;
    try {
      d.dev.setPeer(spec);
    } catch (err) {
      // one peer the engine refuses never stops the others (the next resync tries again)
      if (err instanceof TypeError) {
        log.warn('peer not programmed', { device: d.plan.name, peer: key, err: err.message });
        continue;
      }
      throw err;
    }
    // A new peer gets a handshake at once: after a restart of this host the peer may still hold a
    // session with our previous instance and would keep using it (its packets dropped here as stale)
    // until its own timers notice; our initiation replaces that session right away.
    if (known === undefined) d.dev.initiate(key);
    d.programmed.set(key, json);
    set++;
  }
  return { set, removed };
}

/** One serial loop: lease batches and the periodic resync both end in `apply`. */
async function runPeers(c: PeerContext, signal: AbortSignal): Promise<void> {
  const leases = new Map<string, Lease>();
  const skipped = new Map<string, string>();
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const onError = (): void => stop.abort();
  for (const d of c.devices) d.dev.on('error', onError);
  const apply = (): number => {
    let peers = 0;
    for (const d of c.devices) {
      const plan = desiredPeers(leases.values(), d.scope);
      for (const [key, reason] of plan.skipped) {
        if (skipped.get(`${d.plan.name}|${key}`) !== reason) {
          c.log.info('peer ignored', { device: d.plan.name, peer: key, reason });
        }
      }
      for (const k of [...skipped.keys()]) if (k.startsWith(`${d.plan.name}|`)) skipped.delete(k);
      for (const [key, reason] of plan.skipped) skipped.set(`${d.plan.name}|${key}`, reason);
      const res = syncDevice(d, plan.peers, c.log);
      if (res.set + res.removed > 0) {
        c.log.info('wireguard peers updated', {
          device: d.plan.name,
          ...res,
          peers: plan.peers.size,
        });
      }
      peers = Math.max(peers, plan.peers.size);
    }
    c.observer?.peers?.(peers);
    return peers;
  };
  let queue = Promise.resolve();
  const resync = (): void => {
    queue = queue
      .then(async () => {
        const t0 = performance.now();
        for (const d of c.devices) await configureWgTun(c.ops, d.spec);
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
        c.log.warn('wireguard resync failed; retrying later', { err: describeError(err) });
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
    throw c.state.fatal ?? err; // a dead engine explains any later failure
  } finally {
    clearInterval(timer);
    signal.removeEventListener('abort', onAbort);
    for (const d of c.devices) d.dev.off('error', onError);
    await queue;
  }
}
