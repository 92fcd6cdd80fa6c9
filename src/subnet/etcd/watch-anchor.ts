/**
 * Noticing, when a watch reconnects, that etcd was wiped or restored from a backup while it was away,
 * even when the new store's revision is already past the revision the watch had seen (other hosts
 * re-registered and wrote in the meantime). etcd keeps its cluster and member IDs across a wipe or a
 * `snapshot restore` with the same flags, and a watch resumed at a future revision is accepted
 * silently, so nothing in a watch answer tells; what does is the store's history.
 *
 * The anchor is one key of the watched range as the watch knew it: its create and mod revision (from
 * the last PUT event, or from a one-key, keys-only read when the watch starts). On reconnect ONE
 * keys-only read of that key at its mod revision must give the same key with the same revisions: in
 * another store it is absent, or was written at other revisions, or the revision is in its future. An
 * ordinary etcd restart or leader change costs that one small read per watch, never a re-list.
 * When the anchor's revision was compacted, the key now present must still have its create revision
 * (a renewal keeps it); otherwise (the key deleted meanwhile, or gone with the reset) the caller
 * re-lists, which is correct either way.
 */
import { keyRange, type KeyValue } from './json-codec.js';
import { decodeRange, type RangeResponse } from './kv.js';
import { EtcdRequestError, GRPC, type Endpoint, type HttpTransport } from './http-transport.js';

/** A key of the range with its revisions, or (key null) the range was empty at `modRevision`. */
export interface WatchAnchor {
  readonly key: Buffer | null;
  readonly createRevision: string;
  readonly modRevision: string;
}

export function anchorOf(kv: KeyValue): WatchAnchor {
  return { key: kv.key, createRevision: kv.createRevision, modRevision: kv.modRevision };
}

export interface AnchorRange {
  readonly key: string | Uint8Array;
  readonly rangeEnd?: string | Uint8Array | undefined;
}

interface ReadOptions {
  readonly endpoint: Endpoint;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** A keys-only read of `range` (one key when it has no end) with the other fields of `body`. */
async function read(
  t: HttpTransport,
  range: AnchorRange,
  body: Record<string, unknown>,
  o: ReadOptions,
): Promise<RangeResponse> {
  const req = { keys_only: true, ...keyRange(range.key, range.rangeEnd), ...body };
  return decodeRange(await t.unary('/v3/kv/range', req, o), 'range', { maxValueBytes: 0 });
}

const isFuture = (err: unknown): boolean =>
  err instanceof EtcdRequestError && /future revision/i.test(err.message);
const isCompacted = (err: unknown): boolean =>
  err instanceof EtcdRequestError && /compacted/i.test(err.message);

/**
 * The anchor at `revision` (the last revision the watch has seen): the range's first key then, or
 * the range's emptiness; null when that revision was compacted (the watch itself then reports the
 * compaction). A revision in the store's future means the store went back: throws the reset.
 */
export async function takeAnchor(
  t: HttpTransport,
  range: AnchorRange,
  revision: bigint,
  o: ReadOptions,
): Promise<WatchAnchor | null> {
  try {
    const r = await read(t, range, { revision: revision.toString(), limit: '1' }, o);
    const kv = r.kvs[0];
    return kv ? anchorOf(kv) : { key: null, createRevision: '0', modRevision: revision.toString() };
  } catch (err) {
    if (isFuture(err)) throw resetError(`the store has not reached revision ${revision}`);
    if (isCompacted(err)) return null;
    throw err;
  }
}

export function resetError(why: string): EtcdRequestError {
  return new EtcdRequestError(`etcd store was wiped or restored (${why}): re-list`, {
    grpcCode: GRPC.OUT_OF_RANGE,
  });
}

/**
 * Null when the store still holds `a` as the watch knew it; else why it does not (the store was reset,
 * or the anchor's history is gone and the key changed: re-list). Transport failures throw.
 */
export async function anchorMismatch(
  t: HttpTransport,
  range: AnchorRange,
  a: WatchAnchor,
  o: ReadOptions,
): Promise<string | null> {
  const name = a.key === null ? 'the watched range' : JSON.stringify(a.key.toString());
  try {
    if (a.key === null) {
      const r = await read(t, range, { revision: a.modRevision, count_only: true }, o);
      return r.count === '0' ? null : `${name} was empty at revision ${a.modRevision}, now is not`;
    }
    const r = await read(t, { key: a.key }, { revision: a.modRevision }, o);
    const kv = r.kvs[0];
    if (kv && kv.createRevision === a.createRevision && kv.modRevision === a.modRevision)
      return null;
    return `${name} at revision ${a.modRevision} is ${kv ? `another write (created ${kv.createRevision}, modified ${kv.modRevision})` : 'absent'}`;
  } catch (err) {
    if (isFuture(err)) return `the store has not reached revision ${a.modRevision}`;
    if (!isCompacted(err)) throw err;
  }
  // The anchor's revision was compacted: compare with the store's current state.
  if (a.key === null) {
    // Nothing present now can have been created at or before a revision where the range was empty.
    const sort = { limit: '1', sort_order: 'ASCEND', sort_target: 'CREATE' };
    const r = await read(t, range, sort, o);
    const first = r.kvs[0];
    return first && BigInt(first.createRevision) <= BigInt(a.modRevision)
      ? `${JSON.stringify(first.key.toString())} was created at revision ${first.createRevision}, where the watched range was empty`
      : null;
  }
  const r = await read(t, { key: a.key }, {}, o);
  const kv = r.kvs[0];
  return kv && kv.createRevision === a.createRevision
    ? null
    : `${name} (created at revision ${a.createRevision}) is ${kv ? `now created at ${kv.createRevision}` : 'gone'}, history compacted`;
}
