/**
 * The product SubnetManager: flannel's etcd v3 layout, over an EtcdLeaseRegistry (src/subnet/etcd/).
 * `createEtcdSubnetManager` is what the daemon wires in; tests of pure logic use `createLocalManager`
 * over a MemoryLeaseRegistry instead.
 */
import { DEFAULT_ETCD_PREFIX } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import type { EtcdClientOptions } from './etcd/client.js';
import { EtcdLeaseRegistry } from './etcd/etcd-registry.js';
import { createLocalManager, resolveTiming, type LocalSubnetManager } from './local-manager.js';

export interface EtcdSubnetManagerOptions {
  /** etcd client URLs, e.g. ['http://127.0.0.1:2379']. */
  readonly endpoints: readonly string[];
  /** Key prefix; default '/coreos.com/network'. */
  readonly prefix?: string;
  /** Lease TTL in seconds; default 86400 (24 h), like flannel. */
  readonly ttlSeconds?: number;
  /** Renew this long before expiry; default 3600 s (flannel's 60 min), must be > 0 and < ttlSeconds. */
  readonly renewMarginSeconds?: number;
  readonly tls?: NonNullable<EtcdClientOptions['tls']>;
  readonly username?: string;
  readonly password?: string;
  /** Per-request timeout; default 5000 ms. */
  readonly requestTimeoutMs?: number;
  readonly log: Logger;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** The etcd-backed manager plus its registry's request counter (for the benchmark and weftctl). */
export interface EtcdSubnetManager extends LocalSubnetManager {
  /** etcd round trips made so far. */
  readonly etcdRequests: number;
}

/**
 * Builds the manager. Throws ConfigError synchronously for bad options: half a TLS config, TLS files
 * with http:// endpoints, a username without a password, a renew margin outside (0, TTL). No request is
 * made until the first call; `close()` cancels watches and closes the client (no timers left behind).
 */
export function createEtcdSubnetManager(options: EtcdSubnetManagerOptions): EtcdSubnetManager {
  const prefix = (options.prefix ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, '');
  resolveTiming(options.ttlSeconds, options.renewMarginSeconds);
  const log = options.log.child({ component: 'subnet', prefix });
  const registry = new EtcdLeaseRegistry({
    ...options,
    prefix,
    log,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  });
  const manager = createLocalManager({ ...options, registry, log, name: prefix });
  return Object.defineProperty(manager, 'etcdRequests', {
    get: () => registry.requests,
    enumerable: true,
  }) as EtcdSubnetManager;
}
