/**
 * What weftd on this host actually runs, against the network config in etcd. weftd reads the config
 * once at start: a config changed later (`weftctl config set`) takes effect only when weftd restarts.
 * What it runs is what it published: the backend type in its own lease and FLANNEL_NETWORK in the
 * subnet.env it wrote.
 */
import type { Lease } from '../lease/lease.js';
import type { NetworkConfig } from '../subnet/manager.js';

interface RunningConfig {
  /** The backend type of this host's lease (flannel's UDP backend writes none: "udp"). */
  readonly backend: string | null;
  /** FLANNEL_NETWORK of subnet.env. */
  readonly network: string | null;
}

export function runningConfig(own: Lease | null, envNetwork: string | null): RunningConfig {
  return {
    backend: own ? own.attrs.backendType.toLowerCase() || 'udp' : null,
    network: envNetwork,
  };
}

/** The backend weftd runs differs from the config's: the problem text, or null. */
export function backendDrift(config: NetworkConfig | null, running: RunningConfig): string | null {
  if (!config || running.backend === null) return null;
  const want = config.backend.type.toLowerCase();
  if (running.backend === want) return null;
  return `weftd runs the ${running.backend} backend, the network config in etcd says ${want}: restart weftd to apply the config`;
}
