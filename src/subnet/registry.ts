/**
 * The storage-only layer beneath the lease manager (docs/design.md C2): what the manager needs from etcd and
 * nothing more. Keys here are *subnet keys*, the part below `<prefix>/subnets/` ('10.5.34.0-24'), passed
 * through unparsed: validating them is the manager's job, so a garbage key is visible and can be skipped
 * with a warning. Values are the raw lease JSON text.
 *
 * Implementations: `EtcdLeaseRegistry` (src/subnet/etcd/, the product) and `MemoryLeaseRegistry` (unit
 * tests of pure logic). Both order everything by a store-wide revision, carried as a decimal string
 * (etcd's int64 revisions do not fit a JS number in theory; its JSON gateway sends them as strings).
 *
 * Errors: transient store failures reject with a retryable WeftError (E_ETCD_UNAVAILABLE); a watch whose
 * start revision was compacted away rejects with E_ETCD_COMPACTED; aborts with E_ABORTED.
 */

/** One key below `<prefix>/subnets/` as stored. */
export interface RegistryEntry {
  /** The subnet key, unparsed. */
  readonly key: string;
  /**
   * The raw value (lease JSON as written by flannel or weft); '' when it was longer than a lease value
   * may be (see `oversize`), so a hostile value never costs more than that in memory.
   */
  readonly value: string;
  /** Set when the stored value was too long to be a lease: its length in bytes (`value` is then ''). */
  readonly oversize?: number;
  /** The attached store lease (etcd lease ID as a decimal string), or null: a reservation. */
  readonly leaseId: string | null;
  /** Revision of the last write to this key. */
  readonly modRevision: string;
  /**
   * Revision of the write that created this key: kept across overwrites and renewals, new after a
   * delete. Of two keys holding one subnet, the one created first keeps it (local-manager.ts, keeper.ts).
   */
  readonly createRevision: string;
}

export interface RegistryListing {
  readonly entries: readonly RegistryEntry[];
  /** Store revision the listing reflects; watch from revision + 1 to see every later change. */
  readonly revision: string;
}

export type RegistryEvent =
  | { readonly type: 'put'; readonly entry: RegistryEntry }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: string };

/** Events of one store revision range, in order; `revision` is the last revision they cover. */
export interface RegistryBatch {
  readonly events: readonly RegistryEvent[];
  readonly revision: string;
}

/** Result of a conditional write: on failure, what holds the key now (null when it is absent). */
export type WriteResult =
  | { readonly ok: true; readonly revision: string }
  | { readonly ok: false; readonly existing: RegistryEntry | null };

export interface LeaseRegistry {
  /** The raw `<prefix>/config` value, or null when the key is absent. */
  getConfig(signal?: AbortSignal): Promise<string | null>;
  /** Every key below `<prefix>/subnets/` and the revision of that snapshot. */
  list(signal?: AbortSignal): Promise<RegistryListing>;
  get(key: string, signal?: AbortSignal): Promise<RegistryEntry | null>;

  /** Grants a store lease (TTL in whole seconds, ≥ 1) and returns its ID. */
  grant(ttlSeconds: number, signal?: AbortSignal): Promise<string>;
  /** One keepalive: the TTL now remaining in seconds, or 0 when the lease no longer exists. */
  keepAlive(leaseId: string, signal?: AbortSignal): Promise<number>;
  /** Remaining TTL in seconds, or 0 when the lease no longer exists (no renewal). */
  timeToLive(leaseId: string, signal?: AbortSignal): Promise<number>;
  /** Revokes the lease and deletes its keys; a lease that no longer exists is not an error. */
  revoke(leaseId: string, signal?: AbortSignal): Promise<void>;

  /** Writes `key` only if it does not exist (etcd `Create == 0`), attached to `leaseId` (null: none). */
  createIfAbsent(
    key: string,
    value: string,
    leaseId: string | null,
    signal?: AbortSignal,
  ): Promise<WriteResult>;
  /** Overwrites `key` only if its mod revision is still `modRevision` (compare-and-swap). */
  replaceIf(
    key: string,
    value: string,
    leaseId: string | null,
    modRevision: string,
    signal?: AbortSignal,
  ): Promise<WriteResult>;
  /** Deletes `key` only if its mod revision is still `modRevision`; false when it changed. */
  deleteIf(key: string, modRevision: string, signal?: AbortSignal): Promise<boolean>;

  /**
   * Changes below `<prefix>/subnets/` (or to the single `key` when given) from `fromRevision` on, in
   * revision order, until `signal` aborts (the iterator then ends). Survives disconnects by resuming
   * after the last delivered revision. Throws E_ETCD_COMPACTED when the history is gone: re-list.
   * `onReconnect` is called each time the watch is connected again after a disconnect. A store reset
   * (wiped or restored) while it was away also throws E_ETCD_COMPACTED: re-list.
   */
  watch(
    fromRevision: string,
    signal: AbortSignal,
    key?: string,
    onReconnect?: () => void,
  ): AsyncIterable<RegistryBatch>;

  /** Releases client resources; pending calls reject. Idempotent. */
  close(): Promise<void>;
}
