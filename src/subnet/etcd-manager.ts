/**
 * The product SubnetManager: flannel's etcd v3 layout, over an EtcdLeaseRegistry (src/subnet/etcd/).
 * `createEtcdSubnetManager` is what the daemon wires in; tests of pure logic use `createLocalManager`
 * over a MemoryLeaseRegistry instead.
 */
import { WeftError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { SubnetManager } from './manager.js';

export interface EtcdTlsOptions {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface EtcdSubnetManagerOptions {
  /** etcd client URLs, e.g. ['http://127.0.0.1:2379']. */
  readonly endpoints: readonly string[];
  /** Key prefix; default '/coreos.com/network'. */
  readonly prefix?: string;
  /** Lease TTL in seconds; default 86400 (24 h), like flannel. */
  readonly ttlSeconds?: number;
  /** Renew this long before expiry; default 3600 s (flannel's 60 min), must be > 0 and < ttlSeconds. */
  readonly renewMarginSeconds?: number;
  readonly tls?: EtcdTlsOptions;
  readonly username?: string;
  readonly password?: string;
  /** Per-request timeout; default 5000 ms. */
  readonly requestTimeoutMs?: number;
  readonly log: Logger;
}

export function createEtcdSubnetManager(options: EtcdSubnetManagerOptions): SubnetManager {
  void options;
  throw new WeftError('E_INTERNAL', 'etcd subnet manager: not implemented yet');
}
