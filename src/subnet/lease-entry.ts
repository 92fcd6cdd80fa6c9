/**
 * Validating registry entries into leases. A key that is not a subnet key, or a value that is not a
 * lease, is reported (never thrown) so callers can skip exactly that entry with a warning naming it.
 * An entry with a valid key but a garbage value still occupies its subnet for allocation.
 */
import { describeError, WeftError } from '../errors.js';
import { decodeLeaseAttrs, MAX_LEASE_VALUE_BYTES } from '../lease/codec.js';
import type { Lease, LeaseAttrs } from '../lease/lease.js';
import { overlapsAny } from './allocator.js';
import { parseSubnetKey, type SubnetKey } from './keys.js';
import type { RegistryEntry } from './registry.js';

export interface ParsedEntry {
  readonly entry: RegistryEntry;
  readonly pair: SubnetKey;
  /** The decoded value, or null when it is not a valid lease value (see `problem`). */
  readonly attrs: LeaseAttrs | null;
  readonly problem: string | null;
}

export type EntryParse =
  | { readonly ok: true; readonly parsed: ParsedEntry }
  | { readonly ok: false; readonly problem: string };

/** Why an oversize entry is no lease (the registry dropped its value unread). */
export function oversizeProblem(bytes: number): string {
  return `lease value: value is ${bytes} bytes, more than the ${MAX_LEASE_VALUE_BYTES} a lease value may have`;
}

/** The lease attributes of an entry's value; throws E_LEASE_INVALID (also for an oversize value). */
export function decodeEntryValue(entry: RegistryEntry): LeaseAttrs {
  if (entry.oversize !== undefined)
    throw new WeftError('E_LEASE_INVALID', oversizeProblem(entry.oversize));
  return decodeLeaseAttrs(entry.value);
}

export function parseEntry(entry: RegistryEntry): EntryParse {
  const pair = parseSubnetKey(entry.key);
  if (!pair) return { ok: false, problem: 'not a subnet key (want a.b.c.d-len[&v6addr-len])' };
  if (entry.oversize !== undefined)
    return {
      ok: true,
      parsed: { entry, pair, attrs: null, problem: oversizeProblem(entry.oversize) },
    };
  try {
    return {
      ok: true,
      parsed: { entry, pair, attrs: decodeLeaseAttrs(entry.value), problem: null },
    };
  } catch (err) {
    return { ok: true, parsed: { entry, pair, attrs: null, problem: describeError(err) } };
  }
}

/** A Lease for a parsed entry with a valid value. */
export function toLease(p: ParsedEntry, attrs: LeaseAttrs, expiration: Date | null): Lease {
  return { key: p.entry.key, subnet: p.pair.subnet, subnet6: p.pair.subnet6, attrs, expiration };
}

/**
 * The entry of `entries`, other than `key`, that was created before `createRevision` and holds the
 * IPv4 or the IPv6 subnet of `pair`, or null. A dual-stack key names both subnets, so two hosts that
 * picked one subnet with different partners create two keys and etcd's create-if-absent lets both
 * succeed: of such keys the one created first keeps the subnet, and a host whose key was created later
 * yields. The later creator lists after its own create, so it always sees the earlier one.
 */
export function earlierHolder(
  entries: readonly RegistryEntry[],
  key: string,
  pair: { readonly subnet: string | null; readonly subnet6: string | null },
  createRevision: string,
): ParsedEntry | null {
  const ours = BigInt(createRevision);
  for (const e of entries) {
    if (e.key === key || BigInt(e.createRevision) >= ours) continue;
    const other = parseSubnetKey(e.key); // the key alone: only a match's value is decoded
    if (
      other !== null &&
      ((pair.subnet !== null && overlapsAny(pair.subnet, [other.subnet])) ||
        (pair.subnet6 !== null &&
          other.subnet6 !== null &&
          overlapsAny(pair.subnet6, [other.subnet6])))
    ) {
      const r = parseEntry(e);
      if (r.ok) return r.parsed;
    }
  }
  return null;
}
