/**
 * The lease manager contract (docs/design.md C2). One implementation over etcd v3 (the product), one over an
 * in-memory registry (for unit tests of pure logic). Nothing Kubernetes-specific.
 */
import type { Lease, LeaseAttrs, LeaseEvent } from '../lease/lease.js';

/** Backend section of the network config: `Type` lower-cased, other keys as written. */
export interface BackendConfig {
  readonly type: string;
  /** All keys of the Backend object as written (case preserved), for the backend to validate. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** `<prefix>/config`, validated, with flannel's defaults filled in. */
export interface NetworkConfig {
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  /** IPv4 cluster network, e.g. '10.5.0.0/16' (null when IPv4 is off). */
  readonly network: string | null;
  readonly subnetLen: number;
  /** First/last allocatable IPv4 subnet base address. */
  readonly subnetMin: string | null;
  readonly subnetMax: string | null;
  readonly ipv6Network: string | null;
  readonly ipv6SubnetLen: number;
  readonly ipv6SubnetMin: string | null;
  readonly ipv6SubnetMax: string | null;
  readonly backend: BackendConfig;
  /** The JSON as read, for display. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface AcquireOptions {
  /** The previous subnet.env's FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET (reused when free and compatible). */
  readonly previousSubnet?: string | null;
  readonly previousSubnet6?: string | null;
  /**
   * The store lease our previous run held the previous subnet's key with (weftd keeps it in its state
   * dir). When this host's public IP changed, that key still names the old IP: holding this lease
   * proves it is ours, so it is taken back (compare-and-swap) instead of leasing another subnet.
   */
  readonly previousLeaseId?: string | null;
  /** Told the key and store lease (null: a reservation) once a lease is acquired, to be kept. */
  readonly onAcquired?: (key: string, leaseId: string | null) => void;
}

export interface SubnetManager {
  readonly name: string;

  /**
   * Reads and validates `<prefix>/config`. Rejects with ConfigError E_CONFIG_NOT_FOUND when absent (the
   * caller decides whether to wait) or E_CONFIG_INVALID naming field, value and rule.
   */
  getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig>;

  /**
   * Leases a subnet for a host with `attrs` (reuse by PublicIP, then by previous subnet, then a random
   * free one), created by a transaction that only succeeds if the key is absent; lost races are retried.
   * Rejects with E_LEASE_EXHAUSTED when no subnet is free.
   */
  acquireLease(attrs: LeaseAttrs, options?: AcquireOptions, signal?: AbortSignal): Promise<Lease>;

  /**
   * Keeps `lease` alive until `signal` aborts: renews before expiry without leaking etcd leases,
   * re-creates the key with the same subnet if it vanished and is still free. `onRenewed` sees every
   * new expiration. Resolves on abort; rejects with E_LEASE_LOST when another host now holds the subnet
   * (the caller must stop routing it).
   */
  keepLease(lease: Lease, signal: AbortSignal, onRenewed?: (lease: Lease) => void): Promise<void>;

  /**
   * Every *other* host's lease: a snapshot batch first, then deltas in order (see LeaseEvent). Leases of
   * all backend types are delivered (each backend filters). Malformed keys/values are skipped with a
   * warning naming the key. Survives etcd restarts and compaction. Ends when `signal` aborts.
   */
  watchLeases(ownLease: Lease | null, signal: AbortSignal): AsyncIterable<LeaseEvent[]>;

  /** Releases client resources (not the lease: the lease outlives the daemon). */
  close(): Promise<void>;
}
