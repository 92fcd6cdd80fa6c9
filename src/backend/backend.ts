/**
 * Backend contracts (docs/design.md C2/C3), modelled on flannel's pkg/backend/common.go: a Backend turns the
 * network config into a Network (creates its device, acquires the lease through the SubnetManager);
 * a Network programs peers from lease events until its signal aborts.
 *
 * The dataplane must survive the daemon: neither `run` ending nor the process exiting removes devices,
 * routes, neighbours or FDB entries; they are reconciled by the next start.
 */
import type { Lease } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import type { AcquireOptions, NetworkConfig, SubnetManager } from '../subnet/manager.js';

/** The host's underlay interface and public addresses, chosen by the daemon. */
export interface Uplink {
  readonly name: string;
  /** Updated while weftd runs when the interface is re-created under its name (uplinkRecreated in
   *  backend/lifecycle.ts); read it when used, never keep a copy. */
  index: number;
  readonly mtu: number;
  /** IPv4 address on `name` used as the tunnel source (the "external" address). */
  readonly ifaceAddr: string | null;
  readonly ifaceAddr6: string | null;
  /** Address published in the lease (`--public-ip`, default ifaceAddr). */
  readonly publicIp: string | null;
  readonly publicIpv6: string | null;
}

export interface BackendDeps {
  readonly subnets: SubnetManager;
  readonly uplink: Uplink;
  readonly log: Logger;
  /** Where per-host state that must outlive the daemon is kept (e.g. /var/lib/weft). */
  readonly stateDir: string;
}

export interface Network {
  readonly lease: Lease;
  /** MTU containers should use (FLANNEL_MTU). */
  readonly mtu: number;
  /** UDP ports this host receives encapsulated traffic on ([] for host-gw). The daemon's firewall lets
   *  only current peers' public addresses send to them (README "Security"). */
  readonly encapPorts: readonly number[];
  /** Peers' pods' packets arrive unencapsulated on the uplink (host-gw; VXLAN with DirectRouting). */
  readonly peersOnUplink: boolean;
  /** The overlay devices it uses ([] for host-gw): an earlier backend's others are leftovers
   *  (leftovers.ts). */
  readonly deviceNames: readonly string[];
  /** Its reconcile keeps the cluster-subnet routes on the uplink (host-gw, vxlan: inScope in
   *  reconcile.ts), replacing or deleting an earlier backend's there itself. */
  readonly ownsUplinkRoutes: boolean;
  /** Programs peers from the lease watch and reconciles periodically; resolves when `signal` aborts,
   *  rejects on a fatal error (e.g. E_LEASE_LOST). */
  run(signal: AbortSignal): Promise<void>;
}

export interface Backend {
  registerNetwork(
    config: NetworkConfig,
    acquire: AcquireOptions,
    signal: AbortSignal,
  ): Promise<Network>;
}

export type BackendFactory = (deps: BackendDeps) => Backend;
