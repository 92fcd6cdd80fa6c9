/**
 * Wiring of the real implementations into DaemonDeps: the etcd lease manager, the backends of this
 * build, the host reader, nft and the metrics registry. Only main.ts and the e2e tests call this.
 */
import { createEtcdSubnetManager, type EtcdSubnetManagerOptions } from '../subnet/etcd-manager.js';
import type { Logger } from '../log/logger.js';
import { createNetlinkOps, type LinkInfo } from '../netlink/index.js';
import { defaultBackends } from './default-backends.js';
import { createIptablesRunner } from '../firewall/iptables-forward.js';
import { createNftRunner } from '../firewall/nft.js';
import { lockInstance } from './instance-lock.js';
import { startCniServer } from './cni-server.js';
import { createDaemonMetrics } from './metrics.js';
import type { DaemonOptions } from './options.js';
import type { DaemonDeps } from './run.js';
import { createServiceNotifier } from './sd-notify.js';
import { refuseFlannelLeftovers } from '../migration/flannel-leftovers.js';
import { leftoverScope, removeLeftovers } from '../backend/leftovers.js';
import { isOwnVtep, readNodeIdentity } from '../backend-vxlan/index.js';
import { readHostSnapshot } from './uplink.js';
import { DEFAULT_TTL_SECONDS as DEFAULT_TTL } from '../subnet/local-manager.js';

/** The lease manager's options from the flags (TLS only with cert+key; a CA alone is honoured). */
export function etcdManagerOptions(o: DaemonOptions, log: Logger): EtcdSubnetManagerOptions {
  const ttl = o.subnetLeaseTtl ?? DEFAULT_TTL;
  let margin = o.subnetLeaseRenewMargin * 60;
  if (margin >= ttl) {
    margin = Math.max(1, Math.floor(ttl / 3));
    log.info('renew margin is longer than the lease TTL: renewing at a third of the TTL instead', {
      ttlSeconds: ttl,
      renewMarginSeconds: margin,
    });
  }
  const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
  if (o.etcdCafile) tls.caFile = o.etcdCafile;
  if (o.etcdCertfile) tls.certFile = o.etcdCertfile;
  if (o.etcdKeyfile) tls.keyFile = o.etcdKeyfile;
  return {
    endpoints: o.etcdEndpoints,
    prefix: o.etcdPrefix,
    ttlSeconds: ttl,
    renewMarginSeconds: margin,
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(o.etcdUsername ? { username: o.etcdUsername } : {}),
    ...(o.etcdPassword ? { password: o.etcdPassword } : {}),
    log,
  };
}

export function createDefaultDeps(
  options: DaemonOptions,
  signal: AbortSignal,
  log: Logger,
): DaemonDeps {
  const metrics = createDaemonMetrics({
    served: options.healthzPort > 0 || options.metricsPort > 0,
  });
  // one netlink façade for the backend, owned (and closed) by the daemon, its counters on /metrics
  const netlink = createNetlinkOps({ log: log.child({ component: 'netlink' }) });
  metrics.watchNetlink(() => netlink.stats());
  return {
    log,
    signal,
    createSubnetManager: (o, l) => {
      const manager = createEtcdSubnetManager(etcdManagerOptions(o, l));
      metrics.watchLeaseManager(() => ({ ...manager.stats, etcdRequests: manager.etcdRequests }));
      return manager;
    },
    backends: defaultBackends({ resyncPeriodSec: options.resyncPeriod, metrics, netlink }),
    readHost: () => readHostSnapshot(netlink),
    nft: createNftRunner(),
    startCniServer,
    iptables: createIptablesRunner(),
    metrics,
    notify: createServiceNotifier({ env: process.env, log }),
    checkHost: async () => {
      await lockInstance(options.stateDir);
      await refuseFlannelLeftovers(undefined, (msg, fields) => log.warn(msg, fields));
    },
    clearLeftovers: async (network, config, uplink) => {
      // the identity the vxlan backend derived its VTEP MACs from ('' when it had none to use)
      const identity = (await readNodeIdentity(options.stateDir)) ?? '';
      const isVtep = (l: LinkInfo): boolean => isOwnVtep(identity, uplink, l);
      const scope = leftoverScope(network, config, uplink, isVtep);
      return removeLeftovers(netlink, scope, log.child({ component: 'leftovers' }));
    },
    dispose: () => netlink.close(),
  };
}
