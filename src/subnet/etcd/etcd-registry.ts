/**
 * LeaseRegistry over etcd v3 in flannel's layout (docs/flannel-compat.md §1): `<prefix>/config` and
 * `<prefix>/subnets/<key>`, through weft's own etcd client (client.ts: etcd's JSON gateway over HTTP).
 *
 * Lease IDs and revisions are decimal strings, never JS numbers (docs/dependencies.md §4). Grant,
 * keepalive (one per call), TTL and revoke are single requests: no timers outlive a call, and close()
 * ends the watches and connections. Listing uses `<prefix>/subnets/` with the trailing slash
 * (docs/flannel-compat.md §18 item 12).
 */
import { AbortedError, WeftError, hasCode } from '../../errors.js';
import { MAX_LEASE_VALUE_BYTES } from '../../lease/codec.js';
import type { Logger } from '../../log/logger.js';
import type {
  LeaseRegistry,
  RegistryBatch,
  RegistryEntry,
  RegistryEvent,
  RegistryListing,
  WriteResult,
} from '../registry.js';
import {
  createEtcdClient,
  isLeaseNotFound,
  translateEtcdError,
  type EtcdClient,
  type EtcdClientOptions,
} from './client.js';
import type { KeyValue } from './json-codec.js';
import type { WatchResponse } from './watch.js';
import { WatchQueue } from './watch-queue.js';

/**
 * Bounds on what one entry may cost (hostile writers): a value longer than a lease value may be is
 * dropped unread (`oversize`), and a key longer than any subnet key is cut for display (it is then no
 * subnet key, so it is skipped with a warning naming its start).
 */
export const MAX_ENTRY_VALUE_BYTES = MAX_LEASE_VALUE_BYTES;
export const MAX_KEY_BYTES = 256;
/** Keys per listing page; made smaller when a page is larger than an answer may be (huge values). */
const LIST_PAGE = 500;
/** How often a listing starts over when its revision was compacted away between two pages. */
const LIST_RESTARTS = 3;

/** The display form of a subnet key longer than any subnet key is. */
function cutKey(raw: Buffer): string {
  return `${raw.subarray(0, 64).toString()}…(${raw.length} bytes)`;
}

/** `prefix` + 1 in the last byte: the end of a prefix range (etcd's `range_end`). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export interface EtcdLeaseRegistryOptions extends EtcdClientOptions {
  /** Key prefix, default '/coreos.com/network' (no trailing slash). */
  readonly prefix: string;
  readonly log: Logger;
}

export class EtcdLeaseRegistry implements LeaseRegistry {
  private readonly client: EtcdClient;
  private readonly subnetsPrefix: string;
  private readonly configKey: string;
  private readonly log: Logger;
  /** The queues of live watches, so close() can end their iterators (client.close() ends the watches). */
  private readonly queues = new Set<WatchQueue>();
  private closed = false;
  /** etcd round trips made (unary requests, keepalives, watch creations): for the benchmark. */
  requests = 0;

  constructor(options: EtcdLeaseRegistryOptions) {
    this.client = createEtcdClient(options);
    const prefix = options.prefix.replace(/\/+$/, '');
    this.subnetsPrefix = `${prefix}/subnets/`;
    this.configKey = `${prefix}/config`;
    this.log = options.log;
  }

  /** Runs one etcd request, translating errors; `signal` aborts the request itself. */
  private async call<T>(
    what: string,
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', `etcd ${what}: client closed`);
    if (signal?.aborted) throw new AbortedError();
    this.requests++;
    try {
      return await fn(signal);
    } catch (err) {
      throw translateEtcdError(what, err);
    }
  }

  /** The subnet key of a full etcd key, or null when it is not below `<prefix>/subnets/`. */
  private subnetKey(raw: Buffer): string | null {
    const prefixLen = Buffer.byteLength(this.subnetsPrefix);
    if (raw.length < prefixLen || raw.subarray(0, prefixLen).toString() !== this.subnetsPrefix)
      return null;
    const rest = raw.subarray(prefixLen);
    return rest.length > MAX_KEY_BYTES ? cutKey(rest) : rest.toString();
  }

  private toEntry(kv: KeyValue): RegistryEntry | null {
    const key = this.subnetKey(kv.key);
    if (key === null) return null;
    const big = kv.value === null || kv.valueBytes > MAX_ENTRY_VALUE_BYTES;
    return {
      key,
      value: big ? '' : kv.value!.toString(),
      ...(big ? { oversize: kv.valueBytes } : {}),
      leaseId: kv.lease === '0' ? null : kv.lease,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision,
    };
  }

  async getConfig(signal?: AbortSignal): Promise<string | null> {
    return (await this.getConfigEntry(signal)).value;
  }

  /**
   * Writes `<prefix>/config` (weftctl `config set`, after validating it with the daemon's rules). With
   * `expectedModRevision` the write only happens if the key is still at that revision ('0' = absent);
   * returns false when it changed in between.
   */
  async putConfig(
    value: string,
    expectedModRevision?: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (expectedModRevision === undefined) {
      await this.call('put config', signal, (s) =>
        this.client.kv.put({ key: this.configKey, value }, { signal: s }),
      );
      return true;
    }
    const res = await this.call('put config', signal, (s) =>
      this.client.kv.txn(
        {
          compare: [
            {
              key: this.configKey,
              target: expectedModRevision === '0' ? 'CREATE' : 'MOD',
              result: 'EQUAL',
              value: expectedModRevision,
            },
          ],
          success: [{ put: { key: this.configKey, value } }],
        },
        { signal: s },
      ),
    );
    return res.succeeded;
  }

  /** The raw config and its mod revision ('0' when absent), for a compare-and-swap `putConfig`. */
  async getConfigEntry(
    signal?: AbortSignal,
  ): Promise<{ value: string | null; modRevision: string }> {
    const res = await this.call('get config', signal, (s) =>
      this.client.kv.range({ key: this.configKey }, { signal: s }),
    );
    const kv = res.kvs[0];
    return kv
      ? { value: kv.value!.toString(), modRevision: kv.modRevision }
      : { value: null, modRevision: '0' };
  }

  /**
   * Every key below `<prefix>/subnets/`, read in pages at one revision (a consistent snapshot): a
   * prefix holding many or huge values never needs one answer larger than the client accepts, and
   * only the bounded entries (see toEntry) are kept, not the raw pages. A compaction past that revision
   * between two pages (etcd's auto-compaction, `etcdctl compact`) starts the listing over at the
   * newest revision, up to LIST_RESTARTS times, instead of failing it.
   */
  async list(signal?: AbortSignal): Promise<RegistryListing> {
    const end = prefixEnd(Buffer.from(this.subnetsPrefix));
    let entries: RegistryEntry[] = [];
    let from = Buffer.from(this.subnetsPrefix);
    let revision: string | undefined;
    let page = LIST_PAGE;
    let restarts = 0;
    for (;;) {
      let res;
      try {
        res = await this.call('list subnets', signal, (s) =>
          this.client.kv.range(
            {
              key: from,
              rangeEnd: end,
              limit: page,
              ...(revision !== undefined ? { revision } : {}),
            },
            { signal: s, maxValueBytes: MAX_ENTRY_VALUE_BYTES },
          ),
        );
      } catch (err) {
        // A page larger than an answer may be (values of up to 1.5 MiB each): smaller pages, down to one key.
        if (page > 1 && /RESOURCE_EXHAUSTED|larger than max/i.test(String(err))) {
          page = Math.max(1, Math.floor(page / 4));
          continue;
        }
        if (
          revision !== undefined &&
          hasCode(err, 'E_ETCD_COMPACTED') &&
          restarts++ < LIST_RESTARTS
        ) {
          entries = [];
          from = Buffer.from(this.subnetsPrefix);
          revision = undefined;
          continue;
        }
        throw err;
      }
      revision ??= res.header.revision;
      for (const kv of res.kvs) {
        const e = this.toEntry(kv);
        if (e) entries.push(e);
      }
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) break;
      // etcd answers keys from `from` on: a page ending before it (a broken proxy or a hostile
      // endpoint answering `more` with the same page) would be asked for again for ever
      if (Buffer.compare(last.key, from) < 0)
        throw new WeftError(
          'E_ETCD_UNAVAILABLE',
          'etcd list subnets: the answer does not advance (its last key lies before the page asked for); is the endpoint etcd?',
        );
      from = Buffer.concat([last.key, Buffer.from([0])]);
      page = Math.min(LIST_PAGE, page * 2);
    }
    return { entries, revision: revision ?? '0' };
  }

  async get(key: string, signal?: AbortSignal): Promise<RegistryEntry | null> {
    const res = await this.call(`get ${key}`, signal, (s) =>
      this.client.kv.range(
        { key: this.subnetsPrefix + key },
        { signal: s, maxValueBytes: MAX_ENTRY_VALUE_BYTES },
      ),
    );
    const kv = res.kvs[0];
    return kv ? this.toEntry(kv) : null;
  }

  async grant(ttlSeconds: number, signal?: AbortSignal): Promise<string> {
    const ttl = Math.max(1, Math.round(ttlSeconds));
    return this.call('grant lease', signal, (s) => this.client.lease.grant(ttl, { signal: s }));
  }

  /** Renews the lease once; returns its new TTL (0: it no longer exists). */
  async keepAlive(leaseId: string, signal?: AbortSignal): Promise<number> {
    return this.call(`keepalive lease ${leaseId}`, signal, (s) =>
      this.client.lease.keepAlive(leaseId, { signal: s }),
    );
  }

  async timeToLive(leaseId: string, signal?: AbortSignal): Promise<number> {
    try {
      const res = await this.call(`ttl of lease ${leaseId}`, signal, (s) =>
        this.client.lease.timeToLive(leaseId, { signal: s }),
      );
      return Math.max(0, res.ttl);
    } catch (err) {
      if (hasCode(err, 'E_ETCD_LEASE_NOT_FOUND')) return 0;
      throw err;
    }
  }

  async revoke(leaseId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call(`revoke lease ${leaseId}`, signal, (s) =>
        this.client.lease.revoke(leaseId, { signal: s }),
      );
    } catch (err) {
      if (isLeaseNotFound(err) || hasCode(err, 'E_ETCD_LEASE_NOT_FOUND')) return;
      throw err;
    }
  }

  private async conditional(
    what: string,
    key: string,
    target: 'CREATE' | 'MOD',
    revision: string,
    value: string,
    leaseId: string | null,
    signal?: AbortSignal,
  ): Promise<WriteResult> {
    const full = this.subnetsPrefix + key;
    const res = await this.call(`${what} ${key}`, signal, (s) =>
      this.client.kv.txn(
        {
          compare: [{ key: full, target, result: 'EQUAL', value: revision }],
          success: [{ put: { key: full, value, ...(leaseId !== null ? { lease: leaseId } : {}) } }],
          failure: [{ range: { key: full } }],
        },
        { signal: s, maxValueBytes: MAX_ENTRY_VALUE_BYTES },
      ),
    );
    if (res.succeeded) return { ok: true, revision: res.header.revision };
    const kv = res.responses[0]?.range?.kvs[0];
    return { ok: false, existing: kv ? this.toEntry(kv) : null };
  }

  createIfAbsent(key: string, value: string, leaseId: string | null, signal?: AbortSignal) {
    return this.conditional('create', key, 'CREATE', '0', value, leaseId, signal);
  }

  replaceIf(
    key: string,
    value: string,
    leaseId: string | null,
    modRevision: string,
    signal?: AbortSignal,
  ) {
    return this.conditional('replace', key, 'MOD', modRevision, value, leaseId, signal);
  }

  async deleteIf(key: string, modRevision: string, signal?: AbortSignal): Promise<boolean> {
    const full = this.subnetsPrefix + key;
    const res = await this.call(`delete ${key}`, signal, (s) =>
      this.client.kv.txn(
        {
          compare: [{ key: full, target: 'MOD', result: 'EQUAL', value: modRevision }],
          success: [{ deleteRange: { key: full } }],
        },
        { signal: s },
      ),
    );
    return res.succeeded;
  }

  private toBatch(res: WatchResponse): RegistryBatch {
    const events: RegistryEvent[] = [];
    for (const ev of res.events) {
      if (ev.type === 'PUT') {
        const entry = this.toEntry(ev.kv);
        if (entry) events.push({ type: 'put', entry });
      } else {
        const key = this.subnetKey(ev.kv.key);
        if (key !== null) events.push({ type: 'delete', key, modRevision: ev.kv.modRevision });
      }
    }
    return { events, revision: res.lastRevision };
  }

  async *watch(
    fromRevision: string,
    signal: AbortSignal,
    key?: string,
    onReconnect?: () => void,
  ): AsyncIterable<RegistryBatch> {
    if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', 'etcd watch: client closed');
    if (signal.aborted) return;
    const queue = new WatchQueue();
    const what = `watch ${key ?? 'subnets'} from revision ${fromRevision}`;
    this.requests++;
    let disconnected = false;
    const watch = this.client.watch({
      key: key === undefined ? this.subnetsPrefix : this.subnetsPrefix + key,
      ...(key === undefined ? { rangeEnd: prefixEnd(Buffer.from(this.subnetsPrefix)) } : {}),
      startRevision: fromRevision,
      maxValueBytes: MAX_ENTRY_VALUE_BYTES,
      onResponse: (res) => {
        const batch = this.toBatch(res);
        if (batch.events.length > 0) queue.push(batch);
      },
      onFatal: (err) => queue.fail(translateEtcdError(what, err)),
      onConnected: (endpoint) => {
        this.log.debug('etcd watch connected', { what, endpoint });
        if (disconnected) onReconnect?.();
        disconnected = false;
      },
      onDisconnected: (endpoint, err) => {
        disconnected = true;
        this.log.debug('etcd watch disconnected, reconnecting', {
          what,
          endpoint,
          error: err?.message ?? 'closed by etcd',
        });
      },
    });
    this.queues.add(queue);
    const onAbort = (): void => queue.end();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      yield* queue;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.queues.delete(queue);
      watch.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.queues) queue.end();
    this.queues.clear();
    this.client.close();
  }
}
