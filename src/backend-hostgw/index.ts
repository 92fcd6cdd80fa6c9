/**
 * host-gw backend (docs/flannel-compat.md §14).
 *
 * Design note. No device and no encapsulation: for every remote host-gw lease (subnet S, public IP P) a
 * route `S via P dev <uplink>` in the main table, so the hosts must share an L2 segment. It is the
 * fastest path (docs/performance.md: ~86 % of the bare underlay against ~69 % for VXLAN). This host's public
 * IP must be on one of the uplink's own networks, else peers could not route to us the same way:
 * `registerNetwork` refuses with a ConfigError naming the interface and the address. A peer whose public
 * IP is not on-link is logged and skipped (never a half-programmed route). Leases of other backend
 * types are ignored, as in flannel. Routes are replaced (a different existing route for S is
 * overwritten), reconciled at start and every resync period — which also removes cluster-subnet routes
 * of peers that left while weftd was down — and left in place when weftd stops.
 */
import { ConfigError } from '../errors.js';
import type { Backend, BackendDeps, BackendFactory, Network, Uplink } from '../backend/backend.js';
import type { FamilyDescriptor } from '../backend/family.js';
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
import type { PeerEntries } from '../backend/peer-entries.js';
import type { LeasePlan } from '../backend/peer-plan.js';
import { inScope, type KernelView } from '../backend/reconcile.js';
import { isOnLink } from '../backend/peer-check.js';
import { onLinkNetworks } from '../backend/uplink-routes.js';
import type { Lease } from '../lease/lease.js';
import { parseCidr } from '../ip/index.js';
import type { IpFamily, NetlinkOps, RouteEntry } from '../netlink/index.js';
import type { AcquireOptions, NetworkConfig } from '../subnet/manager.js';
import { planHostGwDevices, planHostGwPeer, type HostGwPlanScope } from './plan.js';

export type HostGwBackendOptions = BackendRuntimeOptions;

export interface HostGwNetwork extends Network {
  reconcileNow(): Promise<void>;
}

export function hostGwBackendFactory(options: HostGwBackendOptions = {}): BackendFactory {
  return (deps) => new HostGwBackend(deps, options);
}

interface FamilyState {
  readonly fam: FamilyDescriptor;
  readonly network: string;
  readonly subnetLen: number;
  readonly ownSubnet: string;
  onlink: string[];
}

class HostGwProgrammer {
  constructor(
    private readonly ops: NetlinkOps,
    private readonly uplink: Uplink,
    private readonly families: FamilyState[],
  ) {}

  async ensureReady(): Promise<void> {
    this.scope = null;
    for (const f of this.families) {
      f.onlink = await onLinkNetworks(this.ops, this.uplink.index, f.fam.family);
    }
    this.scope = null;
  }

  /** The planner's view of this host as of the last ensureReady (built once per ensureReady). */
  private scope: HostGwPlanScope | null = null;
  plan = (lease: Lease): LeasePlan<PeerEntries> =>
    planHostGwPeer(
      lease,
      (this.scope ??= {
        uplinkIndex: this.uplink.index,
        uplinkName: this.uplink.name,
        families: this.families.map((f) => ({
          ...f,
          ownIps: [f.fam.uplinkPublicIp(this.uplink), f.fam.ifaceAddr(this.uplink)],
        })),
      }),
    );

  async readKernel(): Promise<KernelView> {
    const routes: RouteEntry[] = [];
    for (const f of this.families)
      routes.push(...(await this.ops.routeList(f.fam.family, { oif: this.uplink.index })));
    return inScope(
      { routes, neighs: [], fdb: [] },
      { devices: [], uplink: this.uplink.index, clusters: this.families },
    );
  }
}

class HostGwBackend implements Backend {
  constructor(
    private readonly deps: BackendDeps,
    private readonly options: HostGwBackendOptions,
  ) {}

  async registerNetwork(
    config: NetworkConfig,
    acquire: AcquireOptions,
    signal: AbortSignal,
  ): Promise<HostGwNetwork> {
    const { uplink, subnets } = this.deps;
    const log = this.deps.log.child({ backend: 'host-gw' });
    const extra = Object.keys(config.backend.raw).filter((k) => k.toLowerCase() !== 'type');
    if (extra.length > 0) log.warn('host-gw takes no options; ignored', { keys: extra });
    const fams = enabledFamilies(config, 'host-gw');
    const netlink = backendNetlink(this.options, log);
    const { ops } = netlink;
    try {
      const onlink = new Map<IpFamily, string[]>();
      for (const f of fams) {
        const pub = f.uplinkPublicIp(uplink);
        const nets = await onLinkNetworks(ops, uplink.index, f.family);
        if (!pub || !isOnLink(nets, pub)) {
          throw new ConfigError(
            `host-gw: public ${f.label} address ${pub ?? '(none)'} is not on-link on ${uplink.name} ` +
              `(its networks: ${nets.join(', ') || 'none'}): host-gw needs every host on one L2 segment ` +
              `with the public IP on the uplink; use --public-ip/--iface accordingly or the vxlan backend`,
            {
              code: 'E_INTERFACE',
              details: { family: f.label, publicIp: pub, uplink: uplink.name },
            },
          );
        }
        onlink.set(f.family, nets);
      }
      const lease = await subnets.acquireLease(
        {
          publicIp: uplink.publicIp ?? uplink.ifaceAddr ?? '0.0.0.0',
          publicIpv6: fams.some((f) => f.family === 6)
            ? (uplink.publicIpv6 ?? uplink.ifaceAddr6)
            : null,
          backendType: 'host-gw',
        },
        acquire,
        signal,
      );
      const states: FamilyState[] = fams.map((fam) => {
        const own = ownSubnet(fam, lease, 'host-gw');
        return {
          fam,
          network: fam.network(config)!,
          subnetLen: parseCidr(own).prefixLen,
          ownSubnet: own,
          onlink: onlink.get(fam.family) ?? [],
        };
      });
      const programmer = new HostGwProgrammer(ops, uplink, states);
      const cameUp = uplinkCameUp(uplink);
      const recreated = uplinkRecreated(uplink, log);
      return {
        lease,
        mtu: planHostGwDevices(uplink).mtu!,
        encapPorts: [],
        peersOnUplink: true,
        deviceNames: [],
        ownsUplinkRoutes: true,
        ...peerLoopRunner(
          {
            subnets,
            ownLease: lease,
            plan: programmer.plan,
            sink: netlinkSink(ops, programmer),
            log,
            ...watchEntries(ops, log),
            triggers: linkTriggers(
              ops,
              (e) =>
                recreated(e) ||
                cameUp(e) ||
                e.kind === 'resync' ||
                (e.kind === 'removed' && e.index === uplink.index),
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
