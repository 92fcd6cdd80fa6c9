/**
 * Keeping our lease (docs/flannel-compat.md §3, §18 item 5): ONE store lease per subnet key, renewed by a
 * keepalive at expiration − margin. It is re-granted only when it vanished (expired during an outage),
 * and a lease that is no longer attached to anything is revoked, so the store's lease count does not
 * grow. A watch on our own key wakes the loop at once when an operator deletes or overwrites the key.
 *
 * Outcomes of a check: key intact → new expiration (a value changed in place under our store lease is
 * written back first); key gone → re-created with the same subnet if free;
 * key now names our PublicIP without a store lease → it became a reservation for us; key held by
 * another host → E_LEASE_LOST (fatal: the caller must stop routing the subnet).
 */
import { WeftError, describeError, hasCode } from '../errors.js';
import type { Lease, LeaseAttrs } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { decodeEntryValue, earlierHolder } from './lease-entry.js';
import type { LeaseRegistry, RegistryEntry } from './registry.js';
import { backoffMs, sleep, Wakeup } from './sleep.js';

/** What the manager remembers about a lease it holds. */
export interface OwnedLease {
  readonly key: string;
  /** The store lease attached to the key, or null for a reservation. */
  leaseId: string | null;
  /** The exact value we wrote. */
  value: string;
  readonly attrs: LeaseAttrs;
  /** Revision of our last write (the own-key watch starts after it). */
  revision: string;
  /**
   * Dual stack: the create revision of our re-created key while it is not yet checked against keys
   * other hosts created while it was gone (`yieldToEarlier`); absent when there is nothing to check.
   */
  recreatedAt?: string;
}

export interface KeeperDeps {
  readonly registry: LeaseRegistry;
  readonly log: Logger;
  readonly ttl: number;
  readonly margin: number;
  readonly stats: { renewals: number; renewFailures: number; recreations: number };
}

function publicIpOf(entry: RegistryEntry): string | null {
  try {
    return decodeEntryValue(entry).publicIp;
  } catch {
    return null;
  }
}

function lost(lease: Lease, holder: string | null): WeftError {
  return new WeftError(
    'E_LEASE_LOST',
    `subnet lease ${lease.key} lost: the key is now held by ${holder === null ? 'an unreadable value' : `host ${holder}`}; stop routing ${lease.subnet}`,
    { details: { key: lease.key, holder } },
  );
}

/** Our key changed while we were writing it: retried in the next round. */
function conflict(key: string, doing: string): WeftError {
  return new WeftError('E_LEASE_CONFLICT', `subnet lease ${key} changed while ${doing} it`, {
    retryable: true,
  });
}

/**
 * Dual stack (lease-entry.ts, earlierHolder): while our key was gone from etcd, another host may have
 * leased its IPv4 or IPv6 subnet under another key. That key was created first, so it keeps the subnet:
 * ours is revoked (etcd deletes the key with it) and the lease is lost. A failed listing leaves the
 * check pending for the next round, so a re-created key is never renewed unchecked.
 */
async function yieldToEarlier(
  deps: KeeperDeps,
  lease: Lease,
  state: OwnedLease,
  signal: AbortSignal,
): Promise<void> {
  const at = state.recreatedAt;
  if (at === undefined) return;
  const other = earlierHolder((await deps.registry.list(signal)).entries, state.key, lease, at);
  if (other === null) {
    delete state.recreatedAt;
    return;
  }
  if (state.leaseId !== null) await deps.registry.revoke(state.leaseId, signal).catch(() => {});
  await deps.registry.deleteIf(state.key, state.revision, signal).catch(() => false);
  state.leaseId = null;
  const holder = other.attrs?.publicIp ?? null;
  const shared = [lease.subnet, lease.subnet6].filter(
    (s) => s !== null && (s === other.pair.subnet || s === other.pair.subnet6),
  );
  throw new WeftError(
    'E_LEASE_LOST',
    `subnet lease ${lease.key} lost: while our key was gone from etcd, ${holder === null ? 'another key' : `host ${holder}`} leased ${shared.join(' and ') || 'one of its subnets'} (key ${other.entry.key}, created first, keeps it); stop routing ${lease.subnet}`,
    { details: { key: lease.key, holder, holderKey: other.entry.key } },
  );
}

/** One check-and-renew round; returns the lease with its new expiration. */
async function renewOnce(
  deps: KeeperDeps,
  lease: Lease,
  state: OwnedLease,
  signal: AbortSignal,
): Promise<Lease> {
  const { registry, ttl } = deps;
  await yieldToEarlier(deps, lease, state, signal);
  let remaining = 0;
  if (state.leaseId !== null) {
    remaining = await registry.keepAlive(state.leaseId, signal);
    if (remaining === 0) {
      deps.log.warn('store lease of our subnet vanished (expired or revoked)', {
        key: state.key,
        leaseId: state.leaseId,
      });
      state.leaseId = null;
    }
  }
  const found = await registry.get(state.key, signal);
  const ours = lease.attrs.publicIp;
  const holder = found ? publicIpOf(found) : null;
  // A value that is no lease at all names no other holder: it is rewritten with ours below (as
  // flannel's renewal would), instead of giving the subnet up and renumbering this host's containers.
  if (found && holder === null)
    deps.log.warn('our subnet key holds an invalid lease value: rewriting it', { key: state.key });
  const entry = holder === null ? null : found;
  if (entry && state.leaseId !== null && entry.leaseId === state.leaseId) {
    if (holder !== ours) throw lost(lease, holder);
    if (entry.value !== state.value) {
      // Changed in place under our store lease (`etcdctl put --ignore-lease`, a stale agent): it
      // still names us, but peers would program what it advertises now. Write ours back.
      const back = await registry.replaceIf(
        state.key,
        state.value,
        state.leaseId,
        entry.modRevision,
        signal,
      );
      if (!back.ok) throw conflict(state.key, 'rewriting');
      state.revision = back.revision;
      deps.log.warn('our subnet key held another value under our store lease: wrote ours back', {
        key: state.key,
      });
    }
    deps.stats.renewals++;
    return { ...lease, expiration: new Date(Date.now() + remaining * 1000) };
  }
  if (entry && holder !== ours) {
    if (state.leaseId !== null && entry.leaseId !== state.leaseId)
      await registry.revoke(state.leaseId, signal).catch(() => {});
    throw lost(lease, holder);
  }
  if (entry && entry.leaseId === null) {
    // An operator made our key a reservation: it is ours and never expires.
    if (state.leaseId !== null) await registry.revoke(state.leaseId, signal).catch(() => {});
    state.leaseId = null;
    state.revision = entry.modRevision;
    deps.log.info('our subnet is now a reservation (no TTL)', { key: state.key });
    return { ...lease, expiration: null };
  }
  // The key is gone, or it names us under a store lease that is not ours: (re)attach our own lease.
  if (state.leaseId === null) {
    state.leaseId = await registry.grant(ttl, signal);
    remaining = ttl;
  }
  const result = found
    ? await registry.replaceIf(state.key, state.value, state.leaseId, found.modRevision, signal)
    : await registry.createIfAbsent(state.key, state.value, state.leaseId, signal);
  if (!result.ok) {
    const holder = result.existing ? publicIpOf(result.existing) : null;
    if (result.existing && holder === ours) throw conflict(state.key, 're-attaching');
    await registry.revoke(state.leaseId, signal).catch(() => {});
    state.leaseId = null;
    throw lost(lease, holder);
  }
  state.revision = result.revision;
  if (!found && lease.subnet6 !== null) {
    state.recreatedAt = result.revision;
    await yieldToEarlier(deps, lease, state, signal);
  }
  deps.stats.recreations++;
  deps.log.info(
    found
      ? 're-attached our subnet key to our store lease'
      : 'our subnet key had vanished: re-created it',
    { key: state.key },
  );
  return { ...lease, expiration: new Date(Date.now() + remaining * 1000) };
}

/** Watches our own key and wakes the keeper on any change it did not make itself. */
async function watchOwnKey(
  deps: KeeperDeps,
  state: OwnedLease,
  signal: AbortSignal,
  wake: Wakeup,
): Promise<void> {
  let from = BigInt(state.revision) + 1n;
  let failures = 0;
  while (!signal.aborted) {
    try {
      // Reconnected (etcd restarted, perhaps wiped or restored): check our key now rather than wait
      // for the watch's own reset check (src/subnet/etcd/watch-anchor.ts) to end it.
      const recheck = (): void => wake.wake();
      for await (const batch of deps.registry.watch(String(from), signal, state.key, recheck)) {
        for (const ev of batch.events) {
          if (
            ev.type === 'put' &&
            ev.entry.leaseId === state.leaseId &&
            ev.entry.value === state.value
          )
            continue;
          deps.log.info('our subnet key changed in etcd: checking it', {
            key: state.key,
            event: ev.type,
          });
          wake.wake();
        }
        from = BigInt(batch.revision) + 1n;
        failures = 0;
      }
      return;
    } catch (err) {
      if (signal.aborted) return;
      wake.wake();
      if (hasCode(err, 'E_ETCD_COMPACTED')) {
        try {
          from = BigInt((await deps.registry.list(signal)).revision) + 1n;
        } catch {
          /* retried below */
        }
      }
      deps.log.debug('own-key watch failed, restarting', { error: describeError(err) });
      await sleep(backoffMs(failures++, 100, 5000), signal).catch(() => {});
    }
  }
}

/** Runs until `signal` aborts (resolves) or the lease is lost to another host (rejects E_LEASE_LOST). */
export async function keepLeaseLoop(
  deps: KeeperDeps,
  lease: Lease,
  state: OwnedLease,
  signal: AbortSignal,
  onRenewed?: (lease: Lease) => void,
): Promise<void> {
  const wake = new Wakeup();
  const watchStop = new AbortController();
  const watching = watchOwnKey(deps, state, AbortSignal.any([signal, watchStop.signal]), wake);
  const retryCap = Math.max(250, Math.min(60_000, deps.margin * 500));
  const renewDelay = (l: Lease): number =>
    l.expiration === null
      ? deps.ttl * 1000
      : Math.max(0, l.expiration.getTime() - Date.now() - deps.margin * 1000);
  let current = lease;
  let delay = renewDelay(current);
  let failures = 0;
  try {
    while (await wake.wait(delay, signal)) {
      try {
        current = await renewOnce(deps, current, state, signal);
        failures = 0;
        delay = renewDelay(current);
        deps.log.debug('subnet lease renewed', {
          key: state.key,
          expiration: current.expiration?.toISOString() ?? null,
        });
        onRenewed?.(current);
      } catch (err) {
        if (signal.aborted) return;
        if (hasCode(err, 'E_LEASE_LOST')) throw err;
        deps.stats.renewFailures++;
        delay = backoffMs(failures++, 100, retryCap);
        deps.log.warn('subnet lease renewal failed, retrying', {
          key: state.key,
          error: describeError(err),
          retryInMs: Math.round(delay),
        });
      }
    }
  } finally {
    watchStop.abort();
    await watching;
  }
}
