/**
 * The peer watch (flannel-compat.md §6, design.md C4): a snapshot of every other host's lease, then
 * added/changed/removed events in store order. Resumes after the last revision seen (the registry
 * rides out disconnects); when the history is gone (compaction) or the watch fails, it re-lists and
 * emits the diff against what it delivered — never an empty set. A malformed key or value is skipped
 * with a warning naming the key, and a known peer stays known (flannel-compat.md §18 item 4).
 */
import { describeError, hasCode } from '../errors.js';
import { diffLeases } from '../lease/diff.js';
import type { Lease, LeaseEvent } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { parseEntry } from './lease-entry.js';
import type { LeaseRegistry, RegistryBatch, RegistryEntry, RegistryListing } from './registry.js';
import { backoffMs, sleep } from './sleep.js';

export interface WatchDeps {
  readonly registry: LeaseRegistry;
  readonly log: Logger;
  /** Rate-limited logger for per-entry warnings. */
  readonly noisy: Logger;
}

/** TTL lookups run this many at a time when a snapshot holds many leases. */
const TTL_CONCURRENCY = 16;

async function expirations(
  deps: WatchDeps,
  ids: readonly string[],
  signal: AbortSignal,
): Promise<Map<string, Date>> {
  const out = new Map<string, Date>();
  const queue = [...new Set(ids)];
  const worker = async (): Promise<void> => {
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
      try {
        out.set(id, new Date(Date.now() + (await deps.registry.timeToLive(id, signal)) * 1000));
      } catch (err) {
        if (signal.aborted) return;
        deps.log.debug('TTL lookup failed; expiration shown as now', {
          leaseId: id,
          error: describeError(err),
        });
        out.set(id, new Date());
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(TTL_CONCURRENCY, queue.length) }, worker));
  return out;
}

/** Valid leases of other hosts among `entries`; malformed ones are skipped with a warning. */
async function toLeases(
  deps: WatchDeps,
  entries: readonly RegistryEntry[],
  ownKey: string | null,
  signal: AbortSignal,
): Promise<Lease[]> {
  const valid: { entry: RegistryEntry; lease: Omit<Lease, 'expiration'> }[] = [];
  for (const entry of entries) {
    if (entry.key === ownKey) continue;
    const r = parseEntry(entry);
    if (!r.ok || r.parsed.attrs === null) {
      deps.noisy.warn('skipping malformed lease in etcd', {
        key: entry.key,
        problem: r.ok ? r.parsed.problem : r.problem,
      });
      continue;
    }
    valid.push({
      entry,
      lease: {
        key: entry.key,
        subnet: r.parsed.pair.subnet,
        subnet6: r.parsed.pair.subnet6,
        attrs: r.parsed.attrs,
      },
    });
  }
  const exp = await expirations(
    deps,
    valid.flatMap((v) => (v.entry.leaseId === null ? [] : [v.entry.leaseId])),
    signal,
  );
  return valid.map((v) => ({
    ...v.lease,
    expiration: v.entry.leaseId === null ? null : (exp.get(v.entry.leaseId) ?? new Date()),
  }));
}

async function listUntilDone(
  deps: WatchDeps,
  signal: AbortSignal,
): Promise<RegistryListing | null> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      return await deps.registry.list(signal);
    } catch (err) {
      if (signal.aborted) return null;
      deps.log.warn('listing leases failed, retrying', { error: describeError(err) });
      await sleep(backoffMs(attempt, 100, 5000), signal).catch(() => {});
    }
  }
  return null;
}

async function applyBatch(
  deps: WatchDeps,
  known: Map<string, Lease>,
  batch: RegistryBatch,
  ownKey: string | null,
  signal: AbortSignal,
): Promise<LeaseEvent[]> {
  const events: LeaseEvent[] = [];
  for (const ev of batch.events) {
    if (ev.type === 'delete') {
      const previous = known.get(ev.key);
      if (previous) {
        known.delete(ev.key);
        events.push({ kind: 'removed', lease: previous });
      }
      continue;
    }
    const [lease] = await toLeases(deps, [ev.entry], ownKey, signal);
    if (!lease) continue;
    const previous = known.get(lease.key);
    known.set(lease.key, lease);
    events.push(previous ? { kind: 'changed', lease, previous } : { kind: 'added', lease });
  }
  return events;
}

export async function* watchLeases(
  deps: WatchDeps,
  ownKey: string | null,
  signal: AbortSignal,
): AsyncGenerator<LeaseEvent[]> {
  const known = new Map<string, Lease>();
  let listing = await listUntilDone(deps, signal);
  if (!listing) return;
  const snapshot = await toLeases(deps, listing.entries, ownKey, signal);
  for (const l of snapshot) known.set(l.key, l);
  yield [{ kind: 'snapshot', leases: snapshot }];
  let from = BigInt(listing.revision) + 1n;
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const batch of deps.registry.watch(String(from), signal)) {
        const events = await applyBatch(deps, known, batch, ownKey, signal);
        from = BigInt(batch.revision) + 1n;
        failures = 0;
        if (events.length > 0 && !signal.aborted) yield events;
      }
      return;
    } catch (err) {
      if (signal.aborted) return;
      if (hasCode(err, 'E_ETCD_COMPACTED'))
        deps.log.info('lease watch history compacted: re-listing', { from: String(from) });
      else {
        deps.log.warn('lease watch failed: re-listing', { error: describeError(err) });
        await sleep(backoffMs(failures++, 100, 5000), signal).catch(() => {});
      }
      listing = await listUntilDone(deps, signal);
      if (!listing) return;
      const next = await toLeases(deps, listing.entries, ownKey, signal);
      const events = diffLeases(known, next);
      known.clear();
      for (const l of next) known.set(l.key, l);
      from = BigInt(listing.revision) + 1n;
      if (events.length > 0 && !signal.aborted) yield events;
    }
  }
}
