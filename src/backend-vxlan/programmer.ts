/**
 * The vxlan side of the peer loop: keeps the device(s) as wanted and turns peer leases into
 * neighbour + FDB + onlink route (or, with DirectRouting and an on-link peer, one route via the peer's
 * public IP on the uplink).
 */
import type { Lease } from '../lease/lease.js';
import { rateLimited, type Logger } from '../log/logger.js';
import {
  networkAddress,
  networkOf,
  parseCidr,
  type IpFamily,
  type NetlinkOps,
  type RouteEntry,
  type VxlanLinkSpec,
  type LinkEvent,
} from '../netlink/index.js';
import type { Uplink } from '../backend/backend.js';
import type { FamilyDescriptor } from '../backend/family.js';
import type { PeerEntries } from '../backend/peer-entries.js';
import { peerAddressProblem, peerSubnetProblem } from '../backend/peer-check.js';
import { isClusterGatewayRoute, isOnLink, onLinkNetworks } from '../backend/uplink-routes.js';
import type { PeerProgrammer } from '../backend/peer-loop.js';
import type { KernelView } from '../backend/reconcile.js';
import { parseVxlanBackendData } from './backend-data.js';
import type { VxlanConfig } from './config.js';
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

export interface VxlanProgrammerOptions {
  readonly ops: NetlinkOps;
  readonly log: Logger;
  readonly cfg: VxlanConfig;
  readonly uplink: Uplink;
  readonly devices: VxlanDevice[];
  readonly checksumOff: boolean;
  readonly netns?: string | undefined;
}

export class VxlanProgrammer implements PeerProgrammer {
  private onlink = new Map<IpFamily, string[]>();
  private readonly peerLog: Logger;

  constructor(private readonly o: VxlanProgrammerOptions) {
    this.peerLog = rateLimited(o.log);
  }

  get devices(): readonly VxlanDevice[] {
    return this.o.devices;
  }

  /** Creates or repairs each device: link (compatible, MTU, MAC), address, up, checksum mode. */
  async ensureReady(): Promise<void> {
    const { ops, log } = this.o;
    for (const dev of this.o.devices) {
      const { link, action } = await ops.ensureVxlanLink(dev.spec);
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
    const dev = this.o.devices.find(
      (d) => d.spec.name === (e.kind === 'removed' ? e.name : e.link.name),
    );
    if (!dev) return false;
    if (e.kind === 'removed') return true;
    return !e.link.up || e.link.mac !== dev.spec.mac || e.link.mtu !== dev.spec.mtu;
  };

  private isOnLink(family: IpFamily, ip: string): boolean {
    return isOnLink(this.onlink.get(family) ?? [], ip);
  }

  entriesFor(lease: Lease): PeerEntries[] {
    if (lease.attrs.backendType !== 'vxlan') return [];
    const out: PeerEntries[] = [];
    for (const dev of this.o.devices) {
      const subnetRaw = dev.fam.subnet(lease);
      const publicIp = dev.fam.publicIp(lease);
      if (!subnetRaw || !publicIp) continue;
      const data = parseVxlanBackendData(dev.fam.backendData(lease));
      if (!data.ok) {
        this.peerLog.warn('skipping peer with invalid vxlan backend data', {
          lease: lease.key,
          family: dev.fam.label,
          reason: data.reason,
        });
        continue;
      }
      if (data.value.vni !== this.o.cfg.vni) {
        this.peerLog.warn('skipping peer with another VNI', {
          lease: lease.key,
          vni: data.value.vni,
          ours: this.o.cfg.vni,
        });
        continue;
      }
      let subnet: string;
      try {
        subnet = networkOf(subnetRaw);
      } catch {
        this.peerLog.warn('skipping peer with an invalid subnet', {
          lease: lease.key,
          subnet: subnetRaw,
        });
        continue;
      }
      const problem =
        peerSubnetProblem(subnet, {
          network: dev.network,
          subnetLen: parseCidr(dev.ownSubnet).len,
          ownSubnet: dev.ownSubnet,
        }) ??
        peerAddressProblem(
          publicIp,
          [dev.spec.local, dev.fam.uplinkPublicIp(this.o.uplink)],
          this.onlink.get(dev.fam.family) ?? [],
        );
      if (problem !== null) {
        this.peerLog.warn('skipping peer lease', {
          lease: lease.key,
          family: dev.fam.label,
          problem,
        });
        continue;
      }
      if (data.value.vtepMac === dev.spec.mac) {
        this.peerLog.warn('skipping peer lease that carries our own VTEP MAC', {
          lease: lease.key,
          vtepMac: data.value.vtepMac,
        });
        continue;
      }
      const key = `${lease.key}/${dev.fam.family}`;
      if (this.o.cfg.directRouting && this.isOnLink(dev.fam.family, publicIp)) {
        out.push({
          key,
          subnet,
          route: { dst: subnet, gateway: publicIp, oif: this.o.uplink.index },
        });
        continue;
      }
      const gw = networkAddress(subnet);
      out.push({
        key,
        subnet,
        neigh: { ifindex: dev.index, dst: gw, mac: data.value.vtepMac },
        fdb: { ifindex: dev.index, mac: data.value.vtepMac, dst: publicIp },
        route: { dst: subnet, gateway: gw, oif: dev.index, onlink: true },
      });
    }
    return out;
  }

  async readKernel(): Promise<KernelView> {
    const { ops, uplink } = this.o;
    const routes: RouteEntry[] = [];
    const neighs: KernelView['neighs'][number][] = [];
    const fdb: KernelView['fdb'][number][] = [];
    for (const dev of this.o.devices) {
      const f = dev.fam.family;
      const onDev = await ops.routeList(f, { oif: dev.index });
      routes.push(...onDev.filter((r) => r.protocol !== 'KERNEL' && r.type === 'UNICAST'));
      const subnetLen = parseCidr(dev.ownSubnet).len;
      const onUplink = await ops.routeList(f, { oif: uplink.index });
      routes.push(
        ...onUplink.filter((r) => isClusterGatewayRoute(r, dev.network, subnetLen, dev.ownSubnet)),
      );
      neighs.push(...(await ops.neighList(f, dev.index)));
      fdb.push(...(await ops.fdbList(dev.index)));
    }
    return { routes, neighs, fdb };
  }
}
