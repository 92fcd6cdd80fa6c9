/**
 * WireGuard backend (`"Type": "wireguard"`): flannel's wireguard backend on the wire and in etcd, with
 * weft's own userspace engine (native/src/wg_*.c) because many kernels have no WireGuard module.
 *
 * Design note. Every host has one device per flannel `Mode` (see plan.ts): a persistent TUN
 * (`weft-wg`, and `weft-wg-v6` in `separate` mode with IPv6) with this host's subnet IP as a host
 * address, MTU = base − 80 (flannel's rule) and a route for the whole cluster network; the engine thread
 * owns the TUN fd and a UDP socket on the interface address and ListenPort (ListenPortV6). The private
 * key is generated once and kept 0600 in `--state-dir` (key.ts); the lease publishes the public key as
 * `BackendData: {"PublicKey": "<base64>"}` (and `BackendV6Data`), exactly like flannel, so flannel nodes
 * running its wireguard backend and weft nodes form one cluster. Each other host's lease becomes one
 * peer: AllowedIPs = its subnet(s), Endpoint = PublicIP:ListenPort, the shared PSK and
 * PersistentKeepaliveInterval.
 * Packets never pass through JavaScript; this file starts the devices and runs the generic peer loop (plan.ts plans, wg-sink.ts programs).
 * Lifecycle: the engine lives as long as `run`; when `run` ends its thread is joined. The TUN, its
 * address and routes survive the daemon (cluster traffic then queues and drops at the TUN instead of
 * leaking to the default route); the next start re-attaches and re-programs the peers from the lease
 * snapshot, with the same key. Sessions are re-established by handshakes within a second.
 */
import { ConfigError, WeftError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network } from '../backend/backend.js';
import { FAMILY_V4, FAMILY_V6 } from '../backend/family.js';
import {
  backendNetlink,
  enabledFamilies,
  ownSubnet,
  peerLoopRunner,
  linkTriggers,
  tunWentDown,
  TunKeeper,
  type BackendRuntimeOptions,
  type TunSlot,
} from '../backend/lifecycle.js';
import type { PeerLoopObserver } from '../backend/peer-loop.js';
import { configureTun, type TunSpec } from '../backend/tun-device.js';
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { inNetns } from '../netns/netns.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import { startOnTun } from '../dataplane/tun.js';
import {
  WireGuardDevice,
  generatePrivateKey,
  publicKeyOf,
  type WireGuardSnapshot,
} from '../dataplane/wireguard-device.js';
import { parseWireguardConfig, type WireguardConfig } from './config.js';
import { loadOrCreateKey } from './key.js';
import {
  planWgDevices,
  planWgPeer,
  wgDeviceLayout,
  wgPeerScope,
  type WgDeviceLayout,
} from './plan.js';
import { wgSink } from './wg-sink.js';

export {
  parseWireguardConfig,
  WG_OVERHEAD,
  DEFAULT_WG_PORT,
  DEFAULT_WG_PORT_V6,
  type WireguardConfig,
} from './config.js';
export { planWgPeer, wgClaims, leasePublicKey, isWireguardLease } from './plan.js';
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
  /** Runs a full reconcile now (only while `run` is active). */
  reconcileNow(): Promise<void>;
}

/** Opens (or re-attaches to) the persistent TUN `name` and starts the engine on it. */
export function startWireguardDevice(req: WgDeviceStartRequest): WireGuardDevice {
  const { name, netns, log, ...opts } = req;
  const start = (tunFd: number) => WireGuardDevice.start({ tunFd, ...opts }, { log });
  return startOnTun(name, start, netns ? (open) => inNetns(netns, open) : undefined);
}

export function wireguardBackendFactory(options: WireguardBackendOptions = {}): BackendFactory {
  return (deps) => new WireguardBackend(deps, options);
}

interface DevicePlan extends WgDeviceLayout {
  readonly bindAddress: string;
}

class WireguardBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly options: WireguardBackendOptions,
  ) {}

  /** The devices of this host (plan.ts), each with the interface address its socket binds. */
  private plan(cfg: WireguardConfig, config: NetworkConfig): DevicePlan[] {
    const { uplink } = this.deps;
    enabledFamilies(config, 'wireguard'); // throws when neither is
    const why = (d: WgDeviceLayout): string =>
      cfg.mode === 'separate' ? `Mode separate with an IPv${d.family} network` : `Mode ${cfg.mode}`;
    const layout = wgDeviceLayout(cfg, config, uplink.ifaceAddr !== null);
    if (layout.length === 2 && cfg.name === cfg.nameV6) {
      // the second device could not open the TUN the first holds (EBUSY), after the first was set up
      throw new ConfigError(
        `wireguard: Backend.Name and Backend.NameV6 are both ${JSON.stringify(cfg.name)}: Mode ` +
          'separate with IPv4 and IPv6 networks needs one device per family; give them different names',
        { details: { field: 'Backend.NameV6', value: cfg.nameV6 } },
      );
    }
    return layout.map((d) => {
      const addr = d.family === 4 ? uplink.ifaceAddr : uplink.ifaceAddr6;
      if (!addr) {
        throw new ConfigError(
          `wireguard: ${why(d)} needs an IPv${d.family} address on interface ${uplink.name}: add one, pick ` +
            `another interface (--iface) or change Backend.Mode`,
          { code: 'E_INTERFACE' },
        );
      }
      return { ...d, bindAddress: addr };
    });
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
    const mtu = planWgDevices(cfg, plans, uplink).mtu!;
    if (mtu < 576) {
      const base = cfg.mtu ?? uplink.mtu;
      throw new ConfigError(
        `wireguard: MTU ${base} of ${uplink.name} leaves ${mtu} after WireGuard's 80 bytes (min 576): ` +
          'raise the interface MTU or Backend.MTU',
      );
    }
    const fams = enabledFamilies(config, 'wireguard').map((f) => f.family);
    const [v4on, v6on] = [fams.includes(4), fams.includes(6)];
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
    const startDev = (p: DevicePlan): WireGuardDevice => {
      try {
        return start({
          name: p.name,
          family: p.family,
          port: p.port,
          bindAddress: p.bindAddress,
          mtu,
          privateKey: key.privateKey,
          log,
          ...(this.options.netns ? { netns: this.options.netns } : {}),
        });
      } catch (err) {
        throw portInUse(err, p, cfg) ?? tunRefused(err, p, cfg) ?? err;
      }
    };
    const configure = (d: RunningDevice): Promise<number> =>
      configureTun(ops, d.spec, 'wireguard: device');
    // `run` ends on a fatal engine error; a deleted TUN is recreated in place (repairWith below)
    const tun = new TunKeeper<WireGuardDevice, RunningDevice>('wireguard', log);
    try {
      for (const p of plans) {
        const spec: TunSpec = {
          name: p.name,
          mtu,
          subnet: p.v4 ? own4 : null,
          network: p.v4 ? config.network : null,
          subnet6: p.v6 ? own6 : null,
          network6: p.v6 ? config.ipv6Network : null,
        };
        const d = tun.watch({ name: p.name, plan: p, engine: startDev(p), spec });
        devices.push(d);
        await configure(d);
        log.info('wireguard device started', {
          device: p.name,
          underlay: `IPv${p.family}`,
          port: d.engine.localPort,
          mtu,
        });
      }
    } catch (err) {
      tun.release(); // closes the devices started; no repair of a network that never started
      netlink.release();
      throw err;
    }
    const scope = wgPeerScope(cfg, config, plans, {
      own4,
      own6,
      ownIps: {
        4: [uplink.publicIp, uplink.ifaceAddr],
        6: [uplink.publicIpv6, uplink.ifaceAddr6],
      },
      ownKey: { publicKey, file: key.path },
    });
    const sink = wgSink(
      devices.map((d) => ({ name: d.name, dev: d.engine })),
      async () => {
        for (const d of devices) await configure(d);
      },
    );
    const loop = peerLoopRunner(
      {
        subnets,
        ownLease: lease,
        plan: (l) => planWgPeer(l, scope),
        sink,
        log,
        triggers: linkTriggers(ops, tunWentDown(devices.map((d) => d.plan.name))),
      },
      this.options,
      () => {
        tun.release(); // joins the engine threads
        netlink.release();
      },
    );
    // same key and port: the peers, re-added with a handshake, reconnect within a second
    tun.repairWith({
      deleted: 'wireguard device was deleted (ip link del?): recreating it',
      restart: (d) => startDev(d.plan),
      replaced: (d) => sink.replaceDevice(d.name, d.engine),
      configure,
      reconcileNow: loop.reconcileNow,
    });
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
        snapshot: () => d.engine.snapshot(),
      })),
      listenPorts: devices.map((d) => ({ family: d.plan.family, port: d.plan.port })),
      // the firewall's peer allowlist guards the WireGuard ports too (README "Security")
      encapPorts: [...new Set(devices.map((d) => d.plan.port))],
      peersOnUplink: false,
      deviceNames: devices.map((d) => d.plan.name),
      ownsUplinkRoutes: false,
      reconcileNow: loop.reconcileNow,
      // a dead engine stops the loop and explains its end
      run: (runSignal) => tun.run(loop.run, runSignal),
    };
    this.options.onNetwork?.(network);
    return network;
  }
}

/** The error for a ListenPort another process holds, naming the port, the field and the fix. */
function portInUse(err: unknown, p: DevicePlan, cfg: WireguardConfig): WeftError | null {
  const details = err instanceof WeftError ? err.details : undefined;
  if (details?.code !== 'EADDRINUSE') return null;
  const field = cfg.mode === 'separate' && p.family === 6 ? 'ListenPortV6' : 'ListenPort';
  return new WeftError(
    'E_NATIVE',
    `wireguard: UDP port ${p.port} (Backend.${field}) on ${p.bindAddress} is in use by another ` +
      `process (a kernel WireGuard interface, wireguard-go, flannel or a second weftd; ` +
      `\`ss -ulpn 'sport = :${p.port}'\` names it): stop it, or set another Backend.${field} in the ` +
      'network config (all hosts use the same port)',
    { cause: err, details: { ...details, port: p.port } },
  );
}

/** The error for a device name the TUN cannot take (another kind of interface, or a TUN held by
 *  another process), naming the field and the fix. */
function tunRefused(err: unknown, p: DevicePlan, cfg: WireguardConfig): WeftError | null {
  const details = err instanceof WeftError ? err.details : undefined;
  // only openTun's TUNSETIFF (src/dataplane/tun.ts names the device in `tun`)
  if (details?.tun !== p.name || (details.code !== 'EINVAL' && details.code !== 'EBUSY')) {
    return null;
  }
  const field = cfg.mode === 'separate' && p.family === 6 ? 'NameV6' : 'Name';
  const why =
    details.code === 'EINVAL'
      ? `an interface named ${p.name} exists and is not a TUN device weftd can attach to (another ` +
        `kind of interface, or a TUN made with other flags: \`ip -d link show ${p.name}\` shows it)`
      : `another process holds the TUN device ${p.name} open (a second weftd or another program)`;
  const fix = details.code === 'EINVAL' ? 'remove that interface' : 'stop that process';
  return new WeftError(
    'E_NATIVE',
    `wireguard: cannot use device ${p.name} (Backend.${field}): ${why}: set another ` +
      `Backend.${field} in the network config, or ${fix}`,
    { cause: err, details: { ...details, device: p.name } },
  );
}

/** A device and the engine on it now (TunKeeper replaces it when its TUN was deleted). */
interface RunningDevice extends TunSlot<WireGuardDevice> {
  readonly plan: DevicePlan;
  readonly spec: TunSpec;
}
