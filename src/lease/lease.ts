/**
 * Lease value types (docs/design.md C1): pure data, no I/O. A lease is one host's claim on one subnet of the
 * cluster network, stored by the lease manager at `<prefix>/subnets/<key>` in flannel's JSON.
 *
 * Addresses and subnets are canonical strings here ('10.5.34.0/24', 'fc00::/64', '198.18.0.1'); `src/ip`
 * parses and compares them. Every Lease that leaves `src/subnet` has been validated.
 */

/** flannel's etcd prefix: the network config at `<prefix>/config`, leases under `<prefix>/subnets/`. */
export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';

/** What a host publishes about itself (flannel's LeaseAttrs, field for field). */
export interface LeaseAttrs {
  /** Dotted quad; '0.0.0.0' when the host has no IPv4 public address. */
  readonly publicIp: string;
  /** Canonical IPv6 or null (flannel writes `null`, never omits it). */
  readonly publicIpv6: string | null;
  /** 'vxlan', 'host-gw', 'udp', …; '' when absent (flannel's UDP backend writes none). */
  readonly backendType: string;
  /** Backend-specific JSON as parsed, e.g. vxlan `{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' }`. */
  readonly backendData?: unknown;
  readonly backendV6Data?: unknown;
}

export interface Lease {
  /** The etcd subnet key below `<prefix>/subnets/`: '10.5.34.0-24' or '10.5.1.0-24&fc00::-64'. */
  readonly key: string;
  /** IPv4 subnet in CIDR form; null only for an IPv6-only lease (never in flannel's etcd mode). */
  readonly subnet: string | null;
  /** IPv6 subnet in CIDR form, or null. */
  readonly subnet6: string | null;
  readonly attrs: LeaseAttrs;
  /** When etcd will drop the key; null for a reservation (a key with no etcd lease: never expires). */
  readonly expiration: Date | null;
}

/**
 * What `SubnetManager.watchLeases` yields, in order. The first batch is a `snapshot` of every other
 * host's lease; after that, deltas. After a re-list (compaction, reconnect with lost history) the
 * manager emits the *diff* against what it delivered before, as added/changed/removed events — never an
 * empty snapshot followed by a refill.
 */
export type LeaseEvent =
  | { readonly kind: 'snapshot'; readonly leases: readonly Lease[] }
  | { readonly kind: 'added'; readonly lease: Lease }
  | { readonly kind: 'changed'; readonly lease: Lease; readonly previous: Lease }
  | {
      readonly kind: 'removed';
      readonly lease: Lease;
      /**
       * Set when the lease was not seen deleted but is missing from a re-list (after a compaction, a
       * broken watch or an etcd reset): its host may be healthy and about to re-create its key.
       */
      readonly relisted?: true;
    };
