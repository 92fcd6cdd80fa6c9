/**
 * The vxlan side of the peer loop: keeps the device(s) as wanted, gives the planner (plan.ts) its view
 * of this host, and reads the kernel entries in the backend's scope for the reconcile.
 */
import type { Lease } from '../lease/lease.js';
import { rateLimited, type Logger } from '../log/logger.js';
import { ConfigError } from '../errors.js';
import { ipFamily, networkAddress, parseCidr } from '../ip/index.js';
import {
  NetlinkError,
  type EnsuredLink,
  type IpFamily,
  type NetlinkOps,
  type FdbEntry,
  type NeighEntry,
  type RouteEntry,
  type VxlanLinkSpec,
  type LinkEvent,
} from '../netlink/index.js';
import type { Uplink } from '../backend/backend.js';
import type { FamilyDescriptor } from '../backend/family.js';
import type { PeerEntries } from '../backend/peer-entries.js';
import type { LeasePlan } from '../backend/peer-plan.js';
import { onLinkNetworks } from '../backend/uplink-routes.js';
import { inScope, type KernelView } from '../backend/reconcile.js';
import type { VxlanConfig } from './config.js';
import { planVxlanPeer, type VxlanPlanScope } from './plan.js';
import { disableTxChecksum } from './checksum.js';
import { disableAcceptRa } from './sysctl.js';

export interface VxlanDevice {
  readonly fam: FamilyDescriptor;
  readonly spec: VxlanLinkSpec;
  /** Cluster network of this family. */
  readonly network: string;
  /** Our own subnet of this family (never programmed as a peer). */
  readonly ownSubnet: string;
  /** Current ifindex (changes when the device is re-created). */
  index: number;
}

/**
 * `ops.ensureVxlanLink`, and when the kernel refuses to create the device (EEXIST) because another
 * VXLAN device already holds its VNI on its UDP port: that device is weft's own under another name
 * (`ip link set weft.1 name x`; it carries our VTEP MAC) and is deleted so that ours can be created, or
 * a foreign one, named in a ConfigError with the fix. Without this, weftd retried the create at every
 * resync forever with only "EEXIST", and no peer was reachable.
 */
export async function ensureVxlanDevice(
  ops: NetlinkOps,
  spec: VxlanLinkSpec,
  log: Logger,
): Promise<EnsuredLink> {
  try {
    return await ops.ensureVxlanLink(spec);
  } catch (err) {
    if (!(err instanceof NetlinkError) || err.errno !== 'EEXIST') throw err;
    // the kernel's conflict: same VNI and port in one address family (weft's IPv4 and IPv6 devices
    // share VNI and port and do not conflict)
    const family = ipFamily(spec.local);
    const holder = (await ops.listLinks()).find(
      (l) =>
        l.name !== spec.name &&
        l.vxlan?.vni === spec.vni &&
        l.vxlan.port === spec.port &&
        ipFamily(l.vxlan.local ?? '0.0.0.0') === family,
    );
    if (!holder) throw err;
    if (holder.mac !== spec.mac) {
      throw new ConfigError(
        `vxlan: cannot create ${spec.name}: device ${holder.name} already uses VNI ${spec.vni} on UDP ` +
          `port ${spec.port}: delete it (ip link del ${holder.name}) or configure another VNI`,
        { code: 'E_INTERFACE', details: { device: spec.name, holder: holder.name }, cause: err },
      );
    }
    log.warn(
      `vxlan device ${spec.name} was renamed to ${holder.name} (it has our VTEP MAC): deleting it ` +
        `and creating ${spec.name} again`,
      { device: spec.name, holder: holder.name, index: holder.index },
    );
    await ops.deleteLink(holder.index);
    const { link } = await ops.ensureVxlanLink(spec);
    return { link, action: 'recreated' };
  }
}

export interface VxlanProgrammerOptions {
  readonly ops: NetlinkOps;
  readonly log: Logger;
  readonly cfg: VxlanConfig;
  readonly uplink: Uplink;
  readonly devices: VxlanDevice[];
  readonly checksumOff: boolean;
  readonly netns?: string | undefined;
}

export class VxlanProgrammer {
  private onlink = new Map<IpFamily, string[]>();
  /** scope(), built once per ensureReady (a full reconcile plans every lease against it). */
  private planScope: VxlanPlanScope | null = null;

  /** Warnings about another actor's changes to the device (rate-limited: it may keep at it). */
  private readonly fightLog: Logger;

  constructor(private readonly o: VxlanProgrammerOptions) {
    this.fightLog = rateLimited(o.log);
  }

  get devices(): readonly VxlanDevice[] {
    return this.o.devices;
  }

  /** Creates or repairs each device: link (compatible, MTU, MAC), address, up, checksum mode. */
  async ensureReady(): Promise<void> {
    this.planScope = null;
    try {
      await this.repairDevices();
    } finally {
      this.planScope = null;
    }
  }

  private async repairDevices(): Promise<void> {
    const { ops, log } = this.o;
    for (const dev of this.o.devices) {
      // on the uplink's current ifindex: a re-created uplink (uplinkRecreated) moves the device to it
      const spec = { ...dev.spec, underlayIndex: this.o.uplink.index };
      const { link, action } = await ensureVxlanDevice(ops, spec, log);
      if (action !== 'reused')
        log.info('vxlan device ' + action, {
          device: dev.spec.name,
          index: link.index,
          mac: dev.spec.mac,
        });
      dev.index = link.index;
      const addr = `${networkAddress(dev.ownSubnet)}/${dev.fam.hostLen}`;
      const removed = await ops.ensureAddr(link.index, addr, [dev.network]);
      if (removed.length > 0)
        log.info('removed stale addresses from vxlan device', { device: dev.spec.name, removed });
      if (!link.up) await ops.setLinkUp(link.index);
      if (action !== 'reused' || !link.up) {
        // Something (e.g. systemd-networkd MACAddressPolicy) may rewrite the MAC on link-up (flannel#1795).
        const now = await ops.getLinkByIndex(link.index);
        if (now && now.mac !== dev.spec.mac) {
          log.warn('vxlan device MAC changed after link up, restoring it', {
            device: dev.spec.name,
            mac: now.mac,
            want: dev.spec.mac,
          });
          await ops.setLinkMac(link.index, dev.spec.mac);
        }
        if (dev.fam.family === 6) {
          try {
            disableAcceptRa(dev.spec.name, this.o.netns);
          } catch (err) {
            log.warn('cannot set accept_ra=0 on the IPv6 vxlan device', {
              device: dev.spec.name,
              err,
            });
          }
        }
        if (this.o.checksumOff) {
          await disableTxChecksum(dev.spec.name, this.o.netns);
          log.info('tx checksum offload turned off on vxlan device', { device: dev.spec.name });
        }
      }
    }
    for (const dev of this.o.devices) {
      this.onlink.set(
        dev.fam.family,
        await onLinkNetworks(ops, this.o.uplink.index, dev.fam.family),
      );
    }
  }

  /** Whether a link event means our device needs repair. */
  linkTrigger = (e: LinkEvent): boolean => {
    if (e.kind === 'resync') return true;
    if (e.kind === 'removed') return this.o.devices.some((d) => d.spec.name === e.name);
    // by index too: our device renamed (`ip link set weft.1 name x`) needs repair (ensureVxlanDevice)
    const dev = this.o.devices.find((d) => d.spec.name === e.link.name || d.index === e.link.index);
    if (!dev) return false;
    if (e.link.vxlan && e.link.vxlan.learning !== dev.spec.learning) {
      // ensureVxlanLink sets it back in place (the peers' entries stay)
      this.fightLog.warn(
        `another actor turned learning ${e.link.vxlan.learning ? 'on' : 'off'} on vxlan device ` +
          `${e.link.name}: setting it back`,
        { device: e.link.name },
      );
      return true;
    }
    return (
      e.link.name !== dev.spec.name ||
      !e.link.up ||
      e.link.mac !== dev.spec.mac ||
      e.link.mtu !== dev.spec.mtu
    );
  };

  /** The planner's view of this host (devices, addresses, on-link networks) as of the last ensureReady. */
  scope(): VxlanPlanScope {
    return (this.planScope ??= this.buildScope());
  }

  private buildScope(): VxlanPlanScope {
    return {
      vni: this.o.cfg.vni,
      directRouting: this.o.cfg.directRouting,
      uplinkIndex: this.o.uplink.index,
      families: this.o.devices.map((dev) => ({
        fam: dev.fam,
        network: dev.network,
        subnetLen: parseCidr(dev.ownSubnet).prefixLen,
        ownSubnet: dev.ownSubnet,
        deviceIndex: dev.index,
        deviceMac: dev.spec.mac,
        ownIps: [dev.spec.local, dev.fam.uplinkPublicIp(this.o.uplink)],
        onlink: this.onlink.get(dev.fam.family) ?? [],
      })),
    };
  }

  plan = (lease: Lease): LeasePlan<PeerEntries> => planVxlanPeer(lease, this.scope());

  async readKernel(): Promise<KernelView> {
    const { ops, uplink } = this.o;
    const dump: { routes: RouteEntry[]; neighs: NeighEntry[]; fdb: FdbEntry[] } = {
      routes: [],
      neighs: [],
      fdb: [],
    };
    for (const dev of this.o.devices) {
      const f = dev.fam.family;
      // One dump of the main table for both links (the kernel sends every route either way).
      for (const r of await ops.routeList(f))
        if (r.oif === dev.index || r.oif === uplink.index) dump.routes.push(r);
      dump.neighs.push(...(await ops.neighList(f, dev.index)));
      dump.fdb.push(...(await ops.fdbList(dev.index)));
    }
    return inScope(dump, {
      devices: this.o.devices.map((d) => d.index),
      uplink: uplink.index,
      clusters: this.o.devices.map((d) => ({
        network: d.network,
        subnetLen: parseCidr(d.ownSubnet).prefixLen,
        ownSubnet: d.ownSubnet,
      })),
    });
  }
}
