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
  /** What every backend is given: the shared façade, the resync period, its metrics observer. */
  const common = (backend: string) => ({
    ...shared,
    resyncMs,
    observer: metricsObserver(backend, opts.metrics),
  });
  return createBackendRegistry({
    vxlan: vxlanBackendFactory(common('vxlan')),
    'host-gw': hostGwBackendFactory(common('host-gw')),
    udp: udpBackendFactory(common('udp')),
    wireguard: wireguardBackendFactory({
      ...common('wireguard'),
      onNetwork: (n) => {
        wireguard = n;
      },
    }),
  });
}
