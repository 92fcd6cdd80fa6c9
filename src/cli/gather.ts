/**
 * Gathering the cluster view shared by status, peers, doctor and trace: the config and every lease from
 * etcd (errors kept as data, so a dead etcd still gives a local report), subnet.env, and which lease is
 * this host's (subnet.env's FLANNEL_SUBNET first, then a lease whose public IP is a local address).
 */
import { WeftError, describeError } from '../errors.js';
import { isEtcdError } from './exit-codes.js';

import type { Lease } from '../lease/lease.js';
import { canonicalCidr } from '../ip/index.js';
import type { AddrEntry } from '../netlink/index.js';
import type { NetworkConfig } from '../subnet/manager.js';
import type { EtcdLeaseRegistry } from '../subnet/etcd/etcd-registry.js';
import { listLeases, probeEtcd, type EtcdProbe, type LeaseRecord } from './etcd-view.js';
import {
  readHostFacts,
  readSubnetEnvState,
  type HostFacts,
  type SubnetEnvState,
} from './host-view.js';
import type { CliOptions } from './options.js';
import { overlayDeviceNames } from './overlay-devices.js';
import { peerVerdicts, type PeerRow } from './peers.js';
import { readWgLiveFor, type WgLiveResult } from './wireguard-view.js';
import { validateConfig } from './commands/config.js';

export interface ClusterView {
  readonly etcd: EtcdProbe;
  readonly config: NetworkConfig | null;
  readonly configError: string | null;
  /** True when the config key is absent (as opposed to invalid). */
  readonly configMissing: boolean;
  readonly records: readonly LeaseRecord[];
  readonly leases: readonly Lease[];
  readonly subnetEnv: SubnetEnvState;
}

/**
 * This host's lease record. The public IP is the identity (as in flannel): among leases whose public IP
 * is a local address, the one subnet.env names, else the first; without an address match (a NAT
 * `--public-ip`, or weftctl run outside the host's netns), the lease subnet.env names. So a stale
 * subnet.env does not make another host's lease "ours" when ours is in etcd; doctor reports the
 * mismatch instead.
 */
export function findOwnRecord(
  view: Pick<ClusterView, 'records' | 'subnetEnv'>,
  addrs: readonly AddrEntry[],
): LeaseRecord | null {
  const envSubnet = view.subnetEnv.parsed?.subnet ?? null;
  const envSubnet6 = view.subnetEnv.parsed?.subnet6 ?? null;
  const named = (r: LeaseRecord): boolean =>
    (envSubnet !== null && !!r.lease?.subnet && canonicalCidr(r.lease.subnet) === envSubnet) ||
    (envSubnet6 !== null && !!r.lease?.subnet6 && canonicalCidr(r.lease.subnet6) === envSubnet6);
  const valid = view.records.filter((r) => r.lease);
  const local = new Set(addrs.map((a) => a.cidr.split('/')[0]));
  const mine = valid.filter(
    (r) =>
      (r.lease!.attrs.publicIp !== '0.0.0.0' && local.has(r.lease!.attrs.publicIp)) ||
      (r.lease!.attrs.publicIpv6 !== null && local.has(r.lease!.attrs.publicIpv6)),
  );
  if (mine.length > 0) return mine.find(named) ?? mine[0]!;
  return valid.find(named) ?? null; // e.g. --public-ip is a NAT address on no local interface
}

/** This host as the commands see it: the cluster view, its kernel facts (errors kept), its lease, and
 *  weftd's WireGuard engine state (a wireguard network with a known health server, else null). */
export interface LocalView {
  readonly view: ClusterView;
  readonly host: HostFacts | null;
  readonly hostError: string | null;
  readonly own: LeaseRecord | null;
  readonly live: WgLiveResult | null;
}

/** The cluster view (etcd errors kept as data), then this host's kernel facts for the config's
 *  overlay devices and families (errors kept too), which lease is this host's, and the engine state. */
export async function gatherLocal(
  reg: EtcdLeaseRegistry,
  o: Pick<CliOptions, 'subnetFile' | 'timeoutMs' | 'healthzUrl'>,
): Promise<LocalView> {
  const [probe, subnetEnv] = await Promise.all([probeEtcd(reg), readSubnetEnvState(o.subnetFile)]);
  let etcd = probe;
  let config: NetworkConfig | null = null;
  let configError: string | null = null;
  let configMissing = false;
  let records: readonly LeaseRecord[] = [];
  if (etcd.reachable) {
    try {
      const text = await reg.getConfig();
      if (text === null) {
        configMissing = true;
        configError = 'network config absent from etcd (weftctl config set)';
      } else {
        // weftd's whole check (backend type and options too, as `config validate`): a config weftd
        // refuses at start is not shown as valid by status and doctor
        const v = validateConfig(text);
        config = v.config;
        // said once: weftd's own texts mostly begin with 'network config' already
        configError =
          v.error === null || v.error.startsWith('network config')
            ? v.error
            : `network config: ${v.error}`;
      }
      records = (await listLeases(reg)).records;
    } catch (err) {
      if (!isEtcdError(err)) throw err;
      etcd = { reachable: false, latencyMs: null, error: describeError(err) };
    }
  }
  const leases = records.flatMap((r) => (r.lease ? [r.lease] : []));
  const view = { etcd, config, configError, configMissing, records, leases, subnetEnv };
  const families: (4 | 6)[] = [];
  if (!config || config.enableIPv4) families.push(4);
  if (config?.enableIPv6) families.push(6);
  let host: HostFacts | null = null;
  let hostError: string | null = null;
  try {
    host = await readHostFacts(overlayDeviceNames(config), families, o.timeoutMs);
  } catch (err) {
    hostError = describeError(err);
  }
  const own = findOwnRecord(view, host?.addrs ?? []);
  return { view, host, hostError, own, live: await readWgLiveFor(config, o) };
}

/** The network config a command cannot do without; throws when etcd is unreachable or it is absent
 *  or invalid. */
export function requireConfig(view: ClusterView): NetworkConfig {
  if (!view.etcd.reachable) throw new WeftError('E_ETCD_UNAVAILABLE', `etcd: ${view.etcd.error}`);
  if (!view.config)
    throw new WeftError(
      view.configMissing ? 'E_CONFIG_NOT_FOUND' : 'E_CONFIG_INVALID',
      view.configError ?? 'network config invalid',
    );
  return view.config;
}

/** The peer planner's input from this host's view (PeerInput, src/cli/peer-planner.ts; kernel null
 *  when it could not be read); with wireguard, the engine's peers (weftd's /metrics) are the claim
 *  order's incumbents, as in weftd (PeerInput.programmed). */
export function peerInputOf({ view, host, own, live }: LocalView, config: NetworkConfig) {
  return {
    config,
    own: own?.lease ?? null,
    leases: view.leases,
    kernel: host?.kernel ?? null,
    addrs: host?.addrs ?? [],
    ...(live?.ok ? { programmed: live.live.programmed } : {}),
  };
}

/** Every peer lease checked against this host's kernel ([] without a valid config or kernel facts). */
export function peerRowsOf(local: LocalView): PeerRow[] {
  const { config } = local.view;
  const { host } = local;
  return config && host ? peerVerdicts({ ...peerInputOf(local, config), kernel: host.kernel }) : [];
}
