/**
 * The backends compiled into this build (docs/design.md C3): vxlan, host-gw, udp and wireguard, each
 * given the resync period from `--resync-period` and an observer feeding the daemon's metrics.
 */
import type { PeerLoopObserver } from '../backend/peer-loop.js';
import { hostGwBackendFactory } from '../backend-hostgw/index.js';
import { udpBackendFactory } from '../backend-udp/index.js';
import { vxlanBackendFactory } from '../backend-vxlan/index.js';
import { wireguardBackendFactory, type WireguardNetwork } from '../backend-wireguard/index.js';
import type { NetlinkOps } from '../netlink/index.js';
import type { DaemonMetrics } from './metrics.js';
import { createBackendRegistry, type BackendRegistry } from './backends.js';

/** Backend peer-loop hooks → Prometheus (peers by backend, reconcile duration). */
export function metricsObserver(backend: string, metrics: DaemonMetrics): PeerLoopObserver {
  return {
    peers: (count) => metrics.setPeers(backend, count),
    reconciled: (report) => {
      metrics.observeReconcile(backend, report.ms / 1000);
      metrics.setPeers(backend, report.peers);
    },
  };
}

export function defaultBackends(opts: {
  resyncPeriodSec: number;
  metrics: DaemonMetrics;
  /** Shared façade (its owner closes it); default: each backend opens and closes its own. */
  netlink?: NetlinkOps;
}): BackendRegistry {
  const resyncMs = opts.resyncPeriodSec * 1000;
  const shared = opts.netlink ? { netlink: opts.netlink } : {};
  let wireguard: WireguardNetwork | null = null;
  opts.metrics.watchWireguard(() => wireguard?.devices ?? []);
  return createBackendRegistry({
    vxlan: vxlanBackendFactory({
      ...shared,
      resyncMs,
      observer: metricsObserver('vxlan', opts.metrics),
    }),
    'host-gw': hostGwBackendFactory({
      ...shared,
      resyncMs,
      observer: metricsObserver('host-gw', opts.metrics),
    }),
    udp: udpBackendFactory({ ...shared, resyncMs, observer: metricsObserver('udp', opts.metrics) }),
    wireguard: wireguardBackendFactory({
      ...shared,
      resyncMs,
      observer: metricsObserver('wireguard', opts.metrics),
      onNetwork: (n) => {
        wireguard = n;
      },
    }),
  });
}
