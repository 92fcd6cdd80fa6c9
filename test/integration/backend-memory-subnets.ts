/**
 * A tiny in-memory SubnetManager for backend integration tests: the backends under test are real
 * (kernel programming in netns), only the lease store is a map. Subnets are handed out in order
 * (10.5.<n>.0/24 and fd05:0:0:<n>::/64), reused by public IP like flannel. Tests inject, change and
 * remove leases directly to drive the peers' watches.
 */
import type { Uplink } from '../../src/backend/backend.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../src/lease/lease.js';
import type { NetworkConfig, SubnetManager } from '../../src/subnet/manager.js';

export function testNetworkConfig(
  type: string,
  opts: { ipv6?: boolean; raw?: Record<string, unknown> } = {},
): NetworkConfig {
  return {
    enableIPv4: true,
    enableIPv6: opts.ipv6 ?? false,
    network: '10.5.0.0/16',
    subnetLen: 24,
    subnetMin: '10.5.1.0',
    subnetMax: '10.5.255.0',
    ipv6Network: opts.ipv6 ? 'fd05::/48' : null,
    ipv6SubnetLen: 64,
    ipv6SubnetMin: opts.ipv6 ? 'fd05:0:0:1::' : null,
    ipv6SubnetMax: opts.ipv6 ? 'fd05:0:0:ff::' : null,
    backend: { type, raw: { Type: type, ...(opts.raw ?? {}) } },
    raw: {},
  };
}

/** The uplink of the simulated host the backends run on: eth0 (index 2, MTU 1500) with 198.18.0.1 as
 *  its interface and public IPv4 address and no IPv6; `over` changes fields (e.g. the fake's index). */
export function testUplink(over: Partial<Uplink> = {}): Uplink {
  return {
    name: 'eth0',
    index: 2,
    mtu: 1500,
    ifaceAddr: '198.18.0.1',
    ifaceAddr6: null,
    publicIp: '198.18.0.1',
    publicIpv6: null,
    ...over,
  };
}

export class MemorySubnets {
  readonly leases = new Map<string, Lease>();
  private readonly listeners = new Set<(e: LeaseEvent) => void>();
  private next = 1;

  constructor(private readonly config: NetworkConfig) {}

  /** Adds or replaces a lease and notifies watchers. */
  put(lease: Lease): void {
    const previous = this.leases.get(lease.key);
    this.leases.set(lease.key, lease);
    this.emit(previous ? { kind: 'changed', lease, previous } : { kind: 'added', lease });
  }

  remove(key: string): void {
    const lease = this.leases.get(key);
    if (!lease) return;
    this.leases.delete(key);
    this.emit({ kind: 'removed', lease });
  }

  /** A lease for subnet number n (10.5.n.0/24 [+ fd05:0:0:n::/64]). */
  leaseFor(n: number, attrs: LeaseAttrs): Lease {
    const subnet = `10.5.${n}.0/24`;
    const subnet6 = this.config.enableIPv6 ? `fd05:0:0:${n.toString(16)}::/64` : null;
    return {
      key: subnet6 ? `10.5.${n}.0-24&fd05:0:0:${n.toString(16)}::-64` : `10.5.${n}.0-24`,
      subnet,
      subnet6,
      attrs,
      expiration: new Date(Date.now() + 86_400_000),
    };
  }

  private emit(e: LeaseEvent): void {
    for (const l of this.listeners) l(e);
  }

  manager(): SubnetManager {
    return {
      name: 'memory',
      getNetworkConfig: () => Promise.resolve(this.config),
      acquireLease: (attrs) => {
        const same = [...this.leases.values()].find((l) => l.attrs.publicIp === attrs.publicIp);
        const lease = same ? { ...same, attrs } : this.leaseFor(this.next++, attrs);
        this.put(lease);
        return Promise.resolve(lease);
      },
      keepLease: (_lease, signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        ),
      watchLeases: (own, signal) => this.watch(own, signal),
      close: () => Promise.resolve(),
    };
  }

  private async *watch(own: Lease | null, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    const pending: LeaseEvent[] = [];
    let wake: (() => void) | null = null;
    const listener = (e: LeaseEvent): void => {
      if (own && e.kind !== 'snapshot' && e.lease.key === own.key) return;
      pending.push(e);
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.listeners.add(listener);
    signal.addEventListener('abort', onAbort);
    try {
      yield [
        { kind: 'snapshot', leases: [...this.leases.values()].filter((l) => l.key !== own?.key) },
      ];
      while (!signal.aborted) {
        if (pending.length === 0) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        yield pending.splice(0);
      }
    } finally {
      this.listeners.delete(listener);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
