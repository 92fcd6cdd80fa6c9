/**
 * The peer watch (docs/flannel-compat.md §6, docs/design.md C4): a snapshot of every other host's lease, then
 * added/changed/removed events in store order. Resumes after the last revision seen (the registry
 * rides out disconnects); when the history is gone (compaction) or the watch fails, it re-lists and
 * emits the diff against what it delivered — never an empty set. A malformed key or value is skipped
 * with a warning naming the key, and a known peer stays known (docs/flannel-compat.md §18 item 4).
 */
import { describeError, hasCode, type WeftError } from '../errors.js';
import { diffLeases } from '../lease/diff.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../lease/lease.js';
import type { Logger } from '../log/logger.js';
import { parseEntry, toLease, type ParsedEntry } from './lease-entry.js';
import type { LeaseRegistry, RegistryBatch, RegistryEntry, RegistryListing } from './registry.js';
import { backoffMs, sleep } from './sleep.js';

export interface WatchDeps {
  readonly registry: LeaseRegistry;
  readonly log: Logger;
  /** Rate-limited logger for per-entry warnings. */
  readonly noisy: Logger;
}

/**
 * TTL lookups in flight at once (etcd has no multi-lease TTL call; these share one HTTP/2 connection,
 * so a wave of them costs about one round trip).
 */
const TTL_CONCURRENCY = 64;
/**
 * Longest a TTL lookup may delay the events of a batch. Expirations only order competing claims (the
 * later one wins), so a lookup that takes longer — a member that died and is not yet skipped — is
 * given up and the lease shown as expiring now, rather than delaying a new peer by the 5 s timeout.
 */
const TTL_LOOKUP_BUDGET_MS = 1500;

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
        // Bounded: a lookup sent to a member that just died must not hold back the event.
        const budget = AbortSignal.any([signal, AbortSignal.timeout(TTL_LOOKUP_BUDGET_MS)]);
        out.set(id, new Date(Date.now() + (await deps.registry.timeToLive(id, budget)) * 1000));
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

/**
 * Valid leases of other hosts among `entries`, each with its entry; malformed ones are skipped with a
 * warning. The TTLs of all their store leases are looked up in one concurrent wave.
 */
async function validLeases(
  deps: WatchDeps,
  entries: readonly RegistryEntry[],
  ownKey: string | null,
  signal: AbortSignal,
): Promise<Map<RegistryEntry, Lease>> {
  const valid: [ParsedEntry, LeaseAttrs][] = [];
  for (const entry of entries) {
    if (entry.key === ownKey) continue;
    const r = parseEntry(entry);
    if (r.ok && r.parsed.attrs !== null) valid.push([r.parsed, r.parsed.attrs]);
    else
      deps.noisy.warn('skipping malformed lease in etcd', {
        key: entry.key,
        problem: r.ok ? r.parsed.problem : r.problem,
      });
  }
  const ids = valid.flatMap(([p]) => (p.entry.leaseId === null ? [] : [p.entry.leaseId]));
  const exp = await expirations(deps, ids, signal);
  return new Map(
    valid.map(([p, attrs]) => {
      const id = p.entry.leaseId;
      return [p.entry, toLease(p, attrs, id === null ? null : (exp.get(id) ?? new Date()))];
    }),
  );
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

/**
 * Turns one registry batch into lease events. The batch's valid puts are validated together and their
 * TTLs looked up in ONE concurrent wave (distinct store leases only), not one round trip per put.
 */
async function applyBatch(
  deps: WatchDeps,
  known: Map<string, Lease>,
  batch: RegistryBatch,
  ownKey: string | null,
  signal: AbortSignal,
): Promise<LeaseEvent[]> {
  const puts = batch.events.flatMap((ev) => (ev.type === 'put' ? [ev.entry] : []));
  const leases = await validLeases(deps, puts, ownKey, signal);
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
    const lease = leases.get(ev.entry);
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
  let failures = 0;
  for (let first = true; !signal.aborted; first = false) {
    const listing = await listUntilDone(deps, signal);
    if (!listing) return;
    const next = [...(await validLeases(deps, listing.entries, ownKey, signal)).values()];
    // A lease missing from a re-list was not seen deleted: after an etcd reset its healthy host
    // re-creates it within seconds, so consumers keep it longer (src/backend/peer-loop.ts).
    const relisted: LeaseEvent[] = first
      ? [{ kind: 'snapshot', leases: next }]
      : diffLeases(known, next).map((ev) =>
          ev.kind === 'removed' ? { ...ev, relisted: true } : ev,
        );
    known.clear();
    for (const l of next) known.set(l.key, l);
    if (first || (relisted.length > 0 && !signal.aborted)) yield relisted;
    let from = BigInt(listing.revision) + 1n;
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
        deps.log.info(
          (err as WeftError).details?.['overflow'] === true
            ? 'lease watch fell behind (queue full): re-listing'
            : 'lease watch history compacted (or etcd reset): re-listing',
          { from: String(from), reason: describeError(err) },
        );
      else {
        deps.log.warn('lease watch failed: re-listing', { error: describeError(err) });
        await sleep(backoffMs(failures++, 100, 5000), signal).catch(() => {});
      }
    }
  }
}
