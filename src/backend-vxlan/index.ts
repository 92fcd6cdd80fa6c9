/**
 * VXLAN backend (docs/flannel-compat.md §12; docs/design.md C4/C5).
 *
 * Design note. Like flannel today, weft pre-programs everything per peer and uses no L2/L3-miss
 * handling: for each remote lease (subnet S, public IP P, VTEP MAC M) a permanent neighbour
 * `S.0 lladdr M`, an FDB entry `M dst P self permanent` and a route `S via S.0 dev weft.<VNI> onlink`,
 * in that order (the route last, so the kernel never has to resolve the gateway). The dataplane lives
 * in the kernel and survives the daemon: nothing is removed when weftd stops, and the next start
 * reconciles (adds what is missing, deletes what no lease wants — also peers that left while weftd was
 * down). Differences from flannel, on purpose:
 * - the VTEP MAC is derived from a stable node identity (mac.ts), so restarts, reboots and re-created
 *   devices keep it and peers never hold a stale MAC (docs/pitfalls.md A7);
 * - the device MTU is computed per underlay family (−50 IPv4, −70 IPv6; docs/pitfalls.md B3);
 * - tx checksum offload stays on; the `tx-checksum-ip-generic off` workaround is applied only on kernels
 *   < 5.7 or when asked (`ChecksumWorkaround`), and logged (checksum.ts);
 * - one serial loop, a periodic full reconcile and link events (device deleted → re-created and
 *   re-programmed) replace flannel's in-loop retries (backend/peer-loop.ts);
 * - a peer lease with bad BackendData is skipped with a warning, never fatal.
 * The device is created before the lease is acquired, because the lease publishes its MAC.
 */
import { ConfigError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network } from '../backend/backend.js';
import {
  backendNetlink,
  enabledFamilies,
  linkTriggers,
  uplinkCameUp,
  uplinkRecreated,
  ownSubnet,
  peerLoopRunner,
  type BackendRuntimeOptions,
} from '../backend/lifecycle.js';
import { netlinkSink } from '../backend/netlink-sink.js';
import { watchEntries } from '../backend/entry-guard.js';
import type { Lease } from '../lease/lease.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import { checksumWorkaroundWanted } from './checksum.js';
import { parseVxlanConfig, type ChecksumMode, type VxlanConfig } from './config.js';
import { deriveVtepMac, nodeIdentity } from './mac.js';
import { planVxlanDevices } from './plan.js';
import { ensureVxlanDevice, VxlanProgrammer, type VxlanDevice } from './programmer.js';

export { parseVxlanConfig, type VxlanConfig } from './config.js';
export { deriveVtepMac, isOwnVtep, readNodeIdentity } from './mac.js';
export { kernelHasChecksumBug } from './checksum.js';

export { VXLAN_OVERHEAD } from './plan.js';

export interface VxlanBackendOptions extends BackendRuntimeOptions {
  /** Overrides the config's ChecksumWorkaround (e.g. from a daemon flag). */
  readonly checksumWorkaround?: ChecksumMode;
  /** For tests: where the machine id is read (default /etc/machine-id). */
  readonly machineIdPath?: string;
}

export interface VxlanNetwork extends Network {
  readonly config: VxlanConfig;
  /** VTEP MAC per family ('4' / '6'). */
  readonly vtepMacs: Readonly<Partial<Record<4 | 6, string>>>;
  /** Runs a full reconcile now (queued behind any work in progress); only while `run` is active. */
  reconcileNow(): Promise<void>;
}

export function vxlanBackendFactory(options: VxlanBackendOptions = {}): BackendFactory {
  return (deps) => new VxlanBackend(deps, options);
}

class VxlanBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly options: VxlanBackendOptions,
  ) {}

  async registerNetwork(
    config: NetworkConfig,
    acquire: AcquireOptions,
    signal: AbortSignal,
  ): Promise<VxlanNetwork> {
    const { uplink, subnets } = this.deps;
    const log = this.deps.log.child({ backend: 'vxlan' });
    const cfg = parseVxlanConfig(config.backend.raw, (msg, f) => log.warn(msg, f));
    const mode = this.options.checksumWorkaround ?? cfg.checksumWorkaround;
    const families = enabledFamilies(config, 'vxlan');
    for (const f of families) {
      if (!f.ifaceAddr(uplink)) {
        throw new ConfigError(
          `vxlan: the network enables ${f.label} but interface ${uplink.name} has no ${f.label} address: add one or pick another interface (--iface)`,
          { code: 'E_INTERFACE' },
        );
      }
    }
    const identity = await nodeIdentity(this.deps.stateDir, log, this.options.machineIdPath);
    const plan = planVxlanDevices(cfg, config, uplink);
    const specs = families.map((fam) => {
      const local = fam.ifaceAddr(uplink)!;
      const publicIp = fam.uplinkPublicIp(uplink) ?? local;
      const dev = plan.devices.find((d) => d.vxlan?.family === fam.family)!;
      return {
        fam,
        spec: {
          name: dev.name,
          vni: cfg.vni,
          local,
          underlayIndex: uplink.index,
          port: cfg.port,
          learning: cfg.learning,
          gbp: cfg.gbp,
          mtu: dev.mtu!,
          mac: deriveVtepMac(identity, publicIp, cfg.vni, fam.family),
        },
      };
    });
    const netlink = backendNetlink(this.options, log);
    const { ops } = netlink;
    try {
      // The device first: the lease publishes its MAC (flannel does the same).
      for (const s of specs) {
        const { link, action } = await ensureVxlanDevice(ops, s.spec, log);
        log.info(`vxlan device ${action}`, {
          device: s.spec.name,
          index: link.index,
          mac: s.spec.mac,
          mtu: s.spec.mtu,
        });
      }
      const v4 = specs.find((s) => s.fam.family === 4);
      const v6 = specs.find((s) => s.fam.family === 6);
      const lease: Lease = await subnets.acquireLease(
        {
          publicIp: uplink.publicIp ?? uplink.ifaceAddr ?? '0.0.0.0',
          publicIpv6: v6 ? (uplink.publicIpv6 ?? uplink.ifaceAddr6) : null,
          backendType: 'vxlan',
          ...(v4 ? { backendData: { VNI: cfg.vni, VtepMAC: v4.spec.mac } } : {}),
          ...(v6 ? { backendV6Data: { VNI: cfg.vni, VtepMAC: v6.spec.mac } } : {}),
        },
        acquire,
        signal,
      );
      const devices: VxlanDevice[] = specs.map((s) => ({
        fam: s.fam,
        spec: s.spec,
        network: s.fam.network(config)!,
        ownSubnet: ownSubnet(s.fam, lease, 'vxlan'),
        index: 0,
      }));
      const programmer = new VxlanProgrammer({
        ops,
        log,
        cfg,
        uplink,
        devices,
        checksumOff: checksumWorkaroundWanted(mode),
        netns: this.options.netns,
      });
      log.info('tx checksum offload mode', { mode, workaround: checksumWorkaroundWanted(mode) });
      await programmer.ensureReady();
      const uplinkUp = uplinkCameUp(uplink);
      const uplinkNew = uplinkRecreated(uplink, log);
      return {
        lease,
        mtu: plan.mtu!,
        encapPorts: [cfg.port],
        peersOnUplink: cfg.directRouting,
        config: cfg,
        vtepMacs: Object.fromEntries(specs.map((s) => [s.fam.family, s.spec.mac])),
        deviceNames: specs.map((s) => s.spec.name),
        ownsUplinkRoutes: true, // readKernel: DirectRouting's routes and any earlier host-gw's
        ...peerLoopRunner(
          {
            subnets,
            ownLease: lease,
            plan: programmer.plan,
            sink: netlinkSink(ops, programmer),
            log,
            ...watchEntries(ops, log),
            // DirectRouting's routes are on the uplink: the kernel drops them when it goes down.
            triggers: linkTriggers(
              ops,
              (e) =>
                uplinkNew(e) || (cfg.directRouting && uplinkUp(e)) || programmer.linkTrigger(e),
            ),
          },
          this.options,
          netlink.release,
        ),
      };
    } catch (err) {
      netlink.release();
      throw err;
    }
  }
}
