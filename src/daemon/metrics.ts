/**
 * weftd's Prometheus metrics (src/daemon/prom.ts, own Registry: no global state). `DaemonMetrics` is the
 * small object handed to the parts that count things; backends declare the part they use (setPeers,
 * observeReconcile) themselves (they must not import the daemon, docs/design.md C1).
 *
 * With no port that serves them (`--healthz-port` or `--metrics-port`, the default is none),
 * `createDaemonMetrics({ served: false })` returns counters that go nowhere.
 */
import type { MetricSample } from '../backend-udp/metrics.js';
import type { WireguardDeviceStatus } from '../backend-wireguard/index.js';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  scrapedCounter,
} from './prom.js';
import { registerWireguardMetrics } from './wireguard-metrics.js';

export type LeaseState = 'none' | 'acquired' | 'renewing' | 'lost';

export interface DaemonMetrics {
  readonly registry: Registry;
  /** Current number of programmed peers for `backend` ('vxlan', 'host-gw', 'udp'). */
  setPeers(backend: string, count: number): void;
  /** Duration of one full reconcile of the kernel against the desired peers. */
  observeReconcile(backend: string, seconds: number): void;
  setLeaseState(state: LeaseState, expiration?: Date | null): void;
  etcdError(op: string): void;
  setReady(ready: boolean): void;
  firewallApplied(reason: 'start' | 'resync'): void;
  /** Exposes the netlink façade's counters (read at scrape time). */
  watchNetlink(stats: () => NetlinkCounters): void;
  /** Exposes the lease manager's counters (read at scrape time). */
  watchLeaseManager(stats: () => LeaseManagerCounters): void;
  /**
   * Exposes a backend's own samples (e.g. the UDP forwarder's counters), read at scrape time. The
   * metric names are those of the first read; a later read's samples of other names are ignored.
   */
  watchSamples(read: () => readonly MetricSample[]): void;
  /** The WireGuard engines' per-peer metrics, read at scrape time (src/daemon/wireguard-metrics.ts). */
  watchWireguard(devices: () => readonly WireguardDeviceStatus[]): void;
}

/** The lease manager's counters that are exported (all monotonic). */
export interface LeaseManagerCounters {
  readonly renewals: number;
  readonly renewFailures: number;
  readonly recreations: number;
  readonly lostRaces: number;
  readonly etcdRequests: number;
}

/** The subset of the netlink façade's stats() that is exported. */
export interface NetlinkCounters {
  readonly requests: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly socketErrors: number;
  readonly inFlight: number;
}

const LEASE_STATES: readonly LeaseState[] = ['none', 'acquired', 'renewing', 'lost'];

/** Metrics that go nowhere (no port serves them). */
function unservedMetrics(): DaemonMetrics {
  const none = (): void => {};
  return {
    get registry(): Registry {
      throw new Error('metrics are not served (no --healthz-port or --metrics-port)');
    },
    setLeaseState: none,
    etcdError: none,
    setReady: none,
    firewallApplied: none,
    setPeers: none,
    watchNetlink: none,
    watchLeaseManager: none,
    observeReconcile: none,
    watchSamples: none,
    watchWireguard: none,
  };
}

export function createDaemonMetrics(
  opts: { processMetrics?: boolean; served?: boolean } = {},
): DaemonMetrics {
  if (opts.served === false) return unservedMetrics();
  const registry = new Registry();
  if (opts.processMetrics !== false)
    collectDefaultMetrics({ register: registry, prefix: 'weftd_' });
  const leaseState = new Gauge({
    name: 'weft_lease_state',
    help: "State of this host's subnet lease (1 for the current state)",
    labelNames: ['state'],
    registers: [registry],
  });
  const leaseExpiry = new Gauge({
    name: 'weft_lease_expiration_timestamp_seconds',
    help: 'When the current lease expires (0 = reservation or none)',
    registers: [registry],
  });
  const peers = new Gauge({
    name: 'weft_peers',
    help: 'Programmed peers by backend',
    labelNames: ['backend'],
    registers: [registry],
  });
  let netlinkStats: (() => NetlinkCounters) | null = null;
  let leaseStats: (() => LeaseManagerCounters) | null = null;
  const leaseCounters: [string, string, keyof LeaseManagerCounters][] = [
    ['weft_lease_renewals_total', 'Successful lease renewals', 'renewals'],
    [
      'weft_lease_renew_failures_total',
      'Failed lease renewal attempts (each retried with backoff)',
      'renewFailures',
    ],
    ['weft_lease_recreations_total', 'Lease keys re-created after they vanished', 'recreations'],
    ['weft_lease_lost_races_total', 'Subnet creations lost to another host', 'lostRaces'],
    ['weft_etcd_requests_total', 'etcd round trips', 'etcdRequests'],
  ];
  for (const [name, help, key] of leaseCounters)
    scrapedCounter([registry], name, help, () => (leaseStats ? leaseStats()[key] : null));
  const netlinkCounters: [string, string, keyof NetlinkCounters][] = [
    ['weft_netlink_requests_total', 'Netlink requests sent', 'requests'],
    ['weft_netlink_errors_total', 'Netlink requests the kernel rejected', 'errors'],
    ['weft_netlink_timeouts_total', 'Netlink requests that timed out', 'timeouts'],
    ['weft_netlink_socket_errors_total', 'Netlink socket failures (re-created)', 'socketErrors'],
  ];
  for (const [name, help, key] of netlinkCounters)
    scrapedCounter([registry], name, help, () => (netlinkStats ? netlinkStats()[key] : null));
  new Gauge({
    name: 'weft_netlink_in_flight',
    help: 'Netlink requests in flight',
    registers: [registry],
    collect() {
      if (netlinkStats) this.set(netlinkStats().inFlight);
    },
  });
  const reconcile = new Histogram({
    name: 'weft_reconcile_duration_seconds',
    help: 'Duration of full dataplane reconciles',
    labelNames: ['backend'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const etcdErrors = new Counter({
    name: 'weft_etcd_errors_total',
    help: 'etcd errors by operation',
    labelNames: ['op'],
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'weft_ready',
    help: '1 once weftd is ready',
    registers: [registry],
  });
  const firewall = new Counter({
    name: 'weft_firewall_applies_total',
    help: 'Firewall ruleset applications (start, or resync after someone changed the rules)',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const s of LEASE_STATES) leaseState.set({ state: s }, s === 'none' ? 1 : 0);
  ready.set(0);
  return {
    registry,
    setLeaseState(state, expiration) {
      for (const s of LEASE_STATES) leaseState.set({ state: s }, s === state ? 1 : 0);
      if (expiration !== undefined) leaseExpiry.set(expiration ? expiration.getTime() / 1000 : 0);
    },
    etcdError: (op) => etcdErrors.inc({ op }),
    setReady: (r) => ready.set(r ? 1 : 0),
    firewallApplied: (reason) => firewall.inc({ reason }),
    setPeers: (backend, count) => peers.set({ backend }, count),
    watchNetlink(stats) {
      netlinkStats = stats;
    },
    watchLeaseManager(stats) {
      leaseStats = stats;
    },
    watchWireguard(devices) {
      registerWireguardMetrics(registry, devices);
    },
    watchSamples(read) {
      const first = read();
      const names = new Map<string, MetricSample[]>();
      for (const s of first) names.set(s.name, [...(names.get(s.name) ?? []), s]);
      for (const [name, samples] of names) {
        if (registry.getSingleMetric(name)) continue;
        const labelNames = [...new Set(samples.flatMap((s) => Object.keys(s.labels)))];
        const fill = (set: (labels: Record<string, string>, v: number) => void): void => {
          for (const s of read()) if (s.name === name) set({ ...s.labels }, s.value);
        };
        const opts = { name, help: samples[0]!.help, labelNames, registers: [registry] };
        if (samples[0]!.type === 'counter') {
          new Counter({
            ...opts,
            collect() {
              this.reset();
              fill((l, v) => this.inc(l, v));
            },
          });
        } else {
          new Gauge({
            ...opts,
            collect() {
              this.reset();
              fill((l, v) => this.set(l, v));
            },
          });
        }
      }
    },
    observeReconcile: (backend, seconds) => reconcile.observe({ backend }, seconds),
  };
}
