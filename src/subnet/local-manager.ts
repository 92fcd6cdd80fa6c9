/**
 * The lease manager over any LeaseRegistry (docs/design.md C2): network config, acquisition, keeping the
 * lease, and the peer watch (in lease-watch.ts). `createEtcdSubnetManager` wires it to etcd; unit tests
 * wire it to a MemoryLeaseRegistry.
 *
 * Where weft differs from flannel (docs/flannel-compat.md §18): a lost create race re-lists and picks again;
 * reservations (keys without a store lease) are never handed out and are reused by their own host;
 * renewal keeps ONE store lease alive (keepalive, re-granted only when it vanished) instead of leaking
 * a fresh lease per renewal; a vanished key is re-created, and a subnet taken by another host is a
 * typed, fatal E_LEASE_LOST.
 */
import { ConfigError, WeftError, describeError, hasCode, throwIfAborted } from '../errors.js';
import { encodeLeaseAttrs } from '../lease/codec.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../lease/lease.js';
import { nullLogger, rateLimited, type Logger } from '../log/logger.js';
import { canonicalCidr } from '../ip/cidr.js';
import {
  freeSubnets4,
  isCompatible,
  overlapsAny,
  isIpv4Compatible,
  keepIpv4Subnet,
  pickFreeSubnet,
  takenInNetwork,
  type SubnetPair,
} from './allocator.js';
import { parseNetworkConfig, requireEtcdLayout } from './config.js';
import { makeSubnetKey } from './keys.js';
import { earlierHolder, makeLease, parseEntry, type ParsedEntry } from './lease-entry.js';
import { watchLeases } from './lease-watch.js';
import { keepLeaseLoop, type OwnedLease } from './keeper.js';
import type { AcquireOptions, NetworkConfig, SubnetManager } from './manager.js';
import type { LeaseRegistry, RegistryEntry } from './registry.js';
import { sleep } from './sleep.js';

export const DEFAULT_TTL_SECONDS = 24 * 60 * 60;
export const DEFAULT_RENEW_MARGIN_SECONDS = 60 * 60;
/** flannel gives up after 10; weft re-lists on a lost race, so it may need a few more under a stampede. */
export const DEFAULT_MAX_ATTEMPTS = 25;

export interface LocalManagerOptions {
  readonly registry: LeaseRegistry;
  readonly log: Logger;
  /** Shown in logs and `name`; e.g. the etcd prefix. */
  readonly name?: string;
  readonly ttlSeconds?: number;
  readonly renewMarginSeconds?: number;
  readonly maxAttempts?: number;
  /** Injectable randomness for the subnet pick (tests). */
  readonly random?: () => number;
}

/** Counters for the benchmark and weftctl. */
export interface LeaseManagerStats {
  acquisitions: number;
  attempts: number;
  lostRaces: number;
  renewals: number;
  /** Renewal attempts that failed (etcd unreachable, timeouts); each is retried with backoff. */
  renewFailures: number;
  recreations: number;
}

export interface LocalSubnetManager extends SubnetManager {
  readonly stats: Readonly<LeaseManagerStats>;
  readonly ttlSeconds: number;
  readonly renewMarginSeconds: number;
}

/** Validates TTL and margin (flannel: margin > 0 and < the TTL). */
export function resolveTiming(ttl?: number, margin?: number): { ttl: number; margin: number } {
  const t = ttl ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(t) || t < 1)
    throw new ConfigError(`lease TTL ${t} is invalid: must be a whole number of seconds ≥ 1`, {
      code: 'E_OPTION_INVALID',
    });
  const m =
    margin ?? (t >= 2 * DEFAULT_RENEW_MARGIN_SECONDS ? DEFAULT_RENEW_MARGIN_SECONDS : t / 3);
  if (!(m > 0 && m < t))
    throw new ConfigError(
      `lease renew margin ${m} s is invalid: must be > 0 and less than the lease TTL (${t} s)`,
      { code: 'E_OPTION_INVALID' },
    );
  return { ttl: t, margin: m };
}

export function createLocalManager(options: LocalManagerOptions): LocalSubnetManager {
  const { registry } = options;
  const log = options.log;
  const noisy = rateLimited(log);
  const { ttl, margin } = resolveTiming(options.ttlSeconds, options.renewMarginSeconds);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const random = options.random ?? Math.random;
  const owned = new Map<string, OwnedLease>();
  /** AcquireOptions.onAcquired per acquired key, told again when the key's store lease changes. */
  const reportOwner = new Map<string, NonNullable<AcquireOptions['onAcquired']>>();
  const stats: LeaseManagerStats = {
    acquisitions: 0,
    attempts: 0,
    lostRaces: 0,
    renewals: 0,
    renewFailures: 0,
    recreations: 0,
  };

  let lastConfigText: string | null = null;
  async function getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig> {
    const text = await registry.getConfig(signal);
    if (text === null)
      throw new ConfigError(
        `network config not found in etcd at ${options.name ?? '<prefix>'}/config: create it, e.g. etcdctl put <prefix>/config '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'`,
        { code: 'E_CONFIG_NOT_FOUND' },
      );
    // The same text again (weftd re-reads it every resync period) warns nothing new: stay quiet.
    const quiet = text === lastConfigText;
    lastConfigText = text;
    return parseNetworkConfig(text, quiet ? nullLogger : log);
  }

  function parseListing(entries: readonly RegistryEntry[]): ParsedEntry[] {
    const out: ParsedEntry[] = [];
    for (const e of entries) {
      const r = parseEntry(e);
      if (r.ok) out.push(r.parsed);
      else noisy.warn('skipping malformed subnet key', { key: e.key, problem: r.problem });
    }
    return out;
  }

  /**
   * The entry naming our PublicIP to reuse: a reservation for us first, then the subnet our containers
   * use (subnet.env's, `previous`): several keys can name us, e.g. after etcd was restored from a backup
   * taken while this host held another subnet (that key lives until its store lease expires).
   */
  function findOwn(
    parsed: readonly ParsedEntry[],
    publicIp: string,
    config: NetworkConfig,
    previous: SubnetPair | null,
  ): ParsedEntry | null {
    const mine = parsed.filter((p) => p.attrs?.publicIp === publicIp);
    return (
      mine.find((p) => p.entry.leaseId === null && isCompatible(config, p.pair)) ??
      mine.find(
        (p) =>
          previous !== null && p.pair.subnet === previous.subnet && isCompatible(config, p.pair),
      ) ??
      mine.find((p) => isCompatible(config, p.pair)) ??
      mine[0] ??
      null
    );
  }

  async function revokeQuietly(leaseId: string): Promise<void> {
    await registry.revoke(leaseId).catch((err: unknown) =>
      log.debug('revoking an unused store lease failed (it will expire)', {
        leaseId,
        error: describeError(err),
      }),
    );
  }

  /** Re-uses our own listed lease; null when it changed under us (the caller re-lists). */
  async function takeOver(
    own: ParsedEntry,
    attrs: LeaseAttrs,
    value: string,
    signal?: AbortSignal,
  ): Promise<Lease | null> {
    const { entry } = own;
    // A reservation for us stays lease-less, its attributes refreshed (flannel writes with TTL 0).
    // Otherwise the existing store lease is kept if it is alive and has our TTL, so no lease is orphaned.
    const reserved = entry.leaseId === null;
    let leaseId = entry.leaseId;
    let remaining = entry.leaseId === null ? 0 : await registry.keepAlive(entry.leaseId, signal);
    if (!reserved && remaining !== ttl) {
      leaseId = await registry.grant(ttl, signal);
      remaining = ttl;
    }
    let revision = entry.modRevision;
    if (entry.value !== value || leaseId !== entry.leaseId) {
      const r = await registry.replaceIf(entry.key, value, leaseId, revision, signal);
      if (!r.ok) {
        if (leaseId !== entry.leaseId) await revokeQuietly(leaseId!);
        return null;
      }
      revision = r.revision;
      // The old store lease (another TTL) is revoked only now that the key is attached to ours:
      // revoking it first deleted the key, and the subnet was open to any host until re-created.
      if (leaseId !== entry.leaseId) await revokeQuietly(entry.leaseId!);
    }
    owned.set(entry.key, { key: entry.key, leaseId, value, attrs, revision });
    const how = reserved
      ? 'using the subnet reserved for this host'
      : 'reusing the lease of this host';
    log.info(how, { key: entry.key });
    const expiration = reserved ? null : new Date(Date.now() + remaining * 1000);
    return makeLease(entry.key, own.pair, attrs, expiration);
  }

  /** subnet.env's IPv4 subnet when it fits the config as IPv4 (the IPv6 part aside), else null. */
  function previousIpv4(opts: AcquireOptions, config: NetworkConfig): string | null {
    if (!opts.previousSubnet) return null;
    try {
      const subnet = canonicalCidr(opts.previousSubnet);
      return isIpv4Compatible(config, subnet) ? subnet : null;
    } catch {
      return null; // previousPair warned
    }
  }

  function previousPair(opts: AcquireOptions, config: NetworkConfig): SubnetPair | null {
    if (!opts.previousSubnet) return null;
    try {
      const pair = {
        subnet: canonicalCidr(opts.previousSubnet),
        subnet6: opts.previousSubnet6 ? canonicalCidr(opts.previousSubnet6) : null,
      };
      return isCompatible(config, pair) ? pair : null;
    } catch {
      log.warn('ignoring an invalid previous subnet', { previousSubnet: opts.previousSubnet });
      return null;
    }
  }

  async function acquireLease(
    attrs: LeaseAttrs,
    opts: AcquireOptions = {},
    signal?: AbortSignal,
  ): Promise<Lease> {
    const config = requireEtcdLayout(await getNetworkConfig(signal));
    const value = encodeLeaseAttrs(attrs);
    const previous = previousPair(opts, config);
    const prevKey = previous && makeSubnetKey(previous.subnet, previous.subnet6);
    // The IPv4 subnet our containers use when only the IPv6 part no longer fits (EnableIPv6 turned on
    // or off): kept, with a new IPv6 subnet or none, rather than renumbering them into another one.
    let keep4 = previous === null ? previousIpv4(opts, config) : null;
    let leaseId: string | null = null;
    let used = false;
    try {
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        throwIfAborted(signal);
        stats.attempts++;
        const listing = await registry.list(signal);
        let parsed = parseListing(listing.entries);
        const yielded = new Set<ParsedEntry>();
        // A dual-stack key of ours sharing a subnet with a key created before it (lease-entry.ts,
        // earlierHolder) is not ours to keep: e.g. our keeper gave it up but could not delete it.
        for (const p of parsed.filter(
          (p) =>
            p.attrs?.publicIp === attrs.publicIp &&
            p.entry.leaseId !== null &&
            p.pair.subnet6 !== null &&
            earlierHolder(listing.entries, p.entry.key, p.pair, p.entry.createRevision) !== null,
        )) {
          log.warn("deleting this host's lease: a key created before it holds one of its subnets", {
            key: p.entry.key,
          });
          if (await registry.deleteIf(p.entry.key, p.entry.modRevision, signal))
            await revokeQuietly(p.entry.leaseId!);
          yielded.add(p);
        }
        // (if it changed meanwhile and was not deleted, its subnets still count as taken below)
        const own = findOwn(
          parsed.filter((p) => !yielded.has(p)),
          attrs.publicIp,
          config,
          previous,
        );
        if (own) {
          if (isCompatible(config, own.pair)) {
            const lease = await takeOver(own, attrs, value, signal);
            if (lease) {
              stats.acquisitions++;
              return lease;
            }
            stats.lostRaces++;
            continue;
          }
          if (own.entry.leaseId !== null) {
            log.info("deleting this host's lease: incompatible with the network config", {
              key: own.entry.key,
            });
            if (await registry.deleteIf(own.entry.key, own.entry.modRevision, signal))
              await revokeQuietly(own.entry.leaseId);
            parsed = parsed.filter((p) => p !== own);
            if (previous === null && isIpv4Compatible(config, own.pair.subnet))
              keep4 ??= own.pair.subnet;
          } else {
            log.warn(
              'the subnet reserved for this host is incompatible with the network config; leaving it',
              { key: own.entry.key },
            );
          }
        }
        const movedOwn = opts.previousLeaseId
          ? parsed.find(
              (p) =>
                !yielded.has(p) &&
                p.entry.key === prevKey &&
                p.entry.leaseId === opts.previousLeaseId,
            )
          : undefined;
        if (movedOwn?.attrs && isCompatible(config, movedOwn.pair)) {
          // Still under our previous run's store lease, naming another public IP: this host's address
          // changed (DHCP, a new NIC). Take it back, so its containers keep their subnet (pitfalls A1).
          const lease = await takeOver(movedOwn, attrs, value, signal);
          if (lease) {
            stats.acquisitions++;
            log.warn("this host's public IP changed: its lease now publishes the new one", {
              key: lease.key,
              from: movedOwn.attrs.publicIp,
              to: attrs.publicIp,
            });
            return lease;
          }
          stats.lostRaces++;
          continue;
        }
        if (previous && prevKey) {
          // Our previous subnet's key holding a value that is no lease names no holder: take it back
          // rather than renumbering this host's containers into another subnet.
          const junk = parsed.find((p) => p.entry.key === prevKey && p.attrs === null);
          if (junk) {
            leaseId ??= await registry.grant(ttl, signal);
            const r = await registry.replaceIf(
              prevKey,
              value,
              leaseId,
              junk.entry.modRevision,
              signal,
            );
            if (r.ok) {
              used = true;
              stats.acquisitions++;
              owned.set(prevKey, { key: prevKey, leaseId, value, attrs, revision: r.revision });
              log.warn('our previous subnet key held an invalid lease value: took it back', {
                key: prevKey,
                problem: junk.problem,
              });
              return makeLease(prevKey, previous, attrs, new Date(Date.now() + ttl * 1000));
            }
            stats.lostRaces++;
            continue;
          }
        }
        const taken4 = takenInNetwork(
          config.network,
          parsed.map((p) => p.pair.subnet),
        );
        const taken6 = takenInNetwork(
          config.ipv6Network,
          parsed.flatMap((p) => (p.pair.subnet6 ? [p.pair.subnet6] : [])),
        );
        let pair: SubnetPair | null = null;
        if (
          previous &&
          !overlapsAny(previous.subnet, taken4) &&
          (previous.subnet6 === null || !overlapsAny(previous.subnet6, taken6))
        )
          pair = previous;
        if (pair === null && keep4 !== null) {
          pair = keepIpv4Subnet(config, keep4, taken4, taken6, random);
          if (pair)
            log.info(
              "keeping this host's IPv4 subnet: only its IPv6 part changed with the config",
              {
                subnet: pair.subnet,
                subnet6: pair.subnet6,
              },
            );
        }
        pair ??= pickFreeSubnet(config, taken4, taken6, random);
        if (!pair) {
          const reserved = parsed.filter((p) => p.entry.leaseId === null).length;
          const net =
            freeSubnets4(config, taken4, 1).length === 0 ? config.network : config.ipv6Network;
          throw new WeftError(
            'E_LEASE_EXHAUSTED',
            `no free subnet in ${net} (${parsed.length - reserved} leased, ${reserved} reserved)`,
            {
              details: {
                network: config.network,
                ipv6Network: config.ipv6Network,
                leased: parsed.length - reserved,
                reserved,
              },
            },
          );
        }
        leaseId ??= await registry.grant(ttl, signal);
        const key = makeSubnetKey(pair.subnet, pair.subnet6);
        const r = await registry.createIfAbsent(key, value, leaseId, signal);
        if (
          r.ok &&
          pair.subnet6 !== null &&
          earlierHolder((await registry.list(signal)).entries, key, pair, r.revision) !== null
        ) {
          // Dual stack: the key names both subnets, so another host that picked the same IPv4 (or
          // IPv6) subnet with another partner created another key. The later creation yields.
          await registry.deleteIf(key, r.revision, signal);
          stats.lostRaces++;
          log.info(
            'another host leased one of the picked subnets at the same moment: picking again',
            {
              key,
              attempt,
            },
          );
          await sleep(random() * 5 * attempt, signal);
          continue;
        }
        if (r.ok) {
          used = true;
          stats.acquisitions++;
          owned.set(key, { key, leaseId, value, attrs, revision: r.revision });
          log.info('subnet lease acquired', { key, attempt });
          return makeLease(key, pair, attrs, new Date(Date.now() + ttl * 1000));
        }
        stats.lostRaces++;
        log.debug('lost the race for a subnet, re-listing', { key, attempt });
        await sleep(random() * 5 * attempt, signal);
      }
      throw new WeftError(
        'E_LEASE_CONFLICT',
        `no subnet could be leased: lost the race ${maxAttempts} times (too many hosts acquiring at once?)`,
        { retryable: true },
      );
    } finally {
      if (leaseId !== null && !used) await revokeQuietly(leaseId);
    }
  }

  async function keepLease(
    lease: Lease,
    signal: AbortSignal,
    onRenewed?: (lease: Lease) => void,
  ): Promise<void> {
    let state = owned.get(lease.key);
    if (!state) {
      const entry = await registry.get(lease.key, signal);
      state = {
        key: lease.key,
        leaseId: entry && entry.leaseId !== null ? entry.leaseId : null,
        value: encodeLeaseAttrs(lease.attrs),
        attrs: lease.attrs,
        revision: entry?.modRevision ?? '0',
      };
      owned.set(lease.key, state);
    }
    // A key re-created under a new store lease (expired in an outage, etcd wiped) is reported again,
    // so the record that proves the key is ours after an address change stays current.
    const own = state;
    const report = reportOwner.get(lease.key);
    let reported = own.leaseId;
    const renewed = (l: Lease): void => {
      if (report && own.leaseId !== reported) report(l.key, (reported = own.leaseId));
      onRenewed?.(l);
    };
    try {
      await keepLeaseLoop({ registry, log, ttl, margin, stats }, lease, state, signal, renewed);
    } catch (err) {
      if (hasCode(err, 'E_ABORTED') || signal.aborted) return;
      throw err;
    }
  }

  return {
    name: options.name ?? 'local',
    stats,
    ttlSeconds: ttl,
    renewMarginSeconds: margin,
    getNetworkConfig,
    async acquireLease(attrs, opts, signal) {
      const lease = await acquireLease(attrs, opts, signal);
      if (opts?.onAcquired) {
        reportOwner.set(lease.key, opts.onAcquired);
        opts.onAcquired(lease.key, owned.get(lease.key)?.leaseId ?? null);
      }
      return lease;
    },
    keepLease,
    watchLeases: (ownLease: Lease | null, signal: AbortSignal): AsyncIterable<LeaseEvent[]> =>
      watchLeases({ registry, log, noisy }, ownLease?.key ?? null, signal),
    close: () => registry.close(),
  };
}
