/**
 * One descriptor per address family, so that IPv4 and IPv6 peers share every line of programming code
 * (docs/design.md C5) instead of flannel's duplicated v4/v6 paths.
 */
import type { Lease } from '../lease/lease.js';
import type { NetworkConfig } from '../subnet/manager.js';
import type { Uplink } from './backend.js';
import type { IpFamily } from '../netlink/index.js';

export interface FamilyDescriptor {
  readonly family: IpFamily;
  readonly label: 'IPv4' | 'IPv6';
  /** Host prefix length: 32 or 128. */
  readonly hostLen: 32 | 128;
  /** The lease's subnet of this family, or null. */
  subnet(lease: Lease): string | null;
  /** The lease's public address of this family, or null ('0.0.0.0' counts as none). */
  publicIp(lease: Lease): string | null;
  /** The lease's backend data of this family (BackendData / BackendV6Data). */
  backendData(lease: Lease): unknown;
  /** The cluster network of this family, or null when the family is disabled. */
  network(config: NetworkConfig): string | null;
  subnetLen(config: NetworkConfig): number;
  /** The uplink's tunnel source address and published address of this family. */
  ifaceAddr(uplink: Uplink): string | null;
  uplinkPublicIp(uplink: Uplink): string | null;
}

export const FAMILY_V4: FamilyDescriptor = {
  family: 4,
  label: 'IPv4',
  hostLen: 32,
  subnet: (l) => l.subnet,
  publicIp: (l) => (l.attrs.publicIp && l.attrs.publicIp !== '0.0.0.0' ? l.attrs.publicIp : null),
  backendData: (l) => l.attrs.backendData,
  network: (c) => (c.enableIPv4 ? c.network : null),
  subnetLen: (c) => c.subnetLen,
  ifaceAddr: (u) => u.ifaceAddr,
  uplinkPublicIp: (u) => u.publicIp ?? u.ifaceAddr,
};

export const FAMILY_V6: FamilyDescriptor = {
  family: 6,
  label: 'IPv6',
  hostLen: 128,
  subnet: (l) => l.subnet6,
  publicIp: (l) => l.attrs.publicIpv6,
  backendData: (l) => l.attrs.backendV6Data,
  network: (c) => (c.enableIPv6 ? c.ipv6Network : null),
  subnetLen: (c) => c.ipv6SubnetLen,
  ifaceAddr: (u) => u.ifaceAddr6,
  uplinkPublicIp: (u) => u.publicIpv6 ?? u.ifaceAddr6,
};

export const FAMILIES: readonly FamilyDescriptor[] = [FAMILY_V4, FAMILY_V6];
