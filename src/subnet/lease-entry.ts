/**
 * Validating registry entries into leases. A key that is not a subnet key, or a value that is not a
 * lease, is reported (never thrown) so callers can skip exactly that entry with a warning naming it.
 * An entry with a valid key but a garbage value still occupies its subnet for allocation.
 */
import { describeError } from '../errors.js';
import { decodeLeaseAttrs, valueTooLong } from '../lease/codec.js';
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

/**
 * The lease attributes of an entry's value; throws E_LEASE_INVALID, also for an oversize value (the
 * registry dropped it unread).
 */
export function decodeEntryValue(entry: RegistryEntry): LeaseAttrs {
  if (entry.oversize !== undefined) throw valueTooLong(entry.oversize);
  return decodeLeaseAttrs(entry.value);
}

export function parseEntry(entry: RegistryEntry): EntryParse {
  const pair = parseSubnetKey(entry.key);
  if (!pair) return { ok: false, problem: 'not a subnet key (want a.b.c.d-len[&v6addr-len])' };
  try {
    return { ok: true, parsed: { entry, pair, attrs: decodeEntryValue(entry), problem: null } };
  } catch (err) {
    return { ok: true, parsed: { entry, pair, attrs: null, problem: describeError(err) } };
  }
}

/** A Lease for a parsed entry with a valid value. */
export function toLease(p: ParsedEntry, attrs: LeaseAttrs, expiration: Date | null): Lease {
  return makeLease(p.entry.key, p.pair, attrs, expiration);
}

/** The Lease of a subnet key, its subnets (`pair`) and its value. */
export function makeLease(
  key: string,
  pair: SubnetKey,
  attrs: LeaseAttrs,
  expiration: Date | null,
): Lease {
  return { key, subnet: pair.subnet, subnet6: pair.subnet6, attrs, expiration };
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
