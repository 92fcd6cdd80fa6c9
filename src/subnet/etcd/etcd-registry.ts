/**
 * LeaseRegistry over etcd v3 in flannel's layout (docs/flannel-compat.md §1): `<prefix>/config` and
 * `<prefix>/subnets/<key>`. The only importer of etcd3 with src/subnet/etcd/client.ts.
 *
 * etcd3 quirks handled here (docs/dependencies.md §4): lease IDs and revisions are decimal strings; there is
 * no `lease.ttl()`, so TTLs go through the raw lease client; `close()` does not stop the timers of live
 * etcd3 Lease objects, so none are created (grant/keepalive/revoke use the raw RPCs, one keepalive per
 * call) and watchers are cancelled before closing. Listing uses `<prefix>/subnets/` with the trailing
 * slash (docs/flannel-compat.md §18 item 12).
 */
import {
  GRPCDeadlineExceededError,
  type Etcd3,
  type IKeyValue,
  type IWatchResponse,
  type Watcher,
} from 'etcd3';
import { AbortedError, WeftError } from '../../errors.js';
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
  type EtcdClientOptions,
} from './client.js';
import { WatchQueue } from './watch-queue.js';

/**
 * Bounds on what one entry may cost (hostile writers): a value longer than a lease value may be is
 * dropped unread (`oversize`), and a key longer than any subnet key is cut for display (it is then no
 * subnet key, so it is skipped with a warning naming its start).
 */
export const MAX_ENTRY_VALUE_BYTES = MAX_LEASE_VALUE_BYTES;
export const MAX_KEY_BYTES = 256;
/** Keys per listing page; halved when a page is larger than gRPC accepts (huge values). */
const LIST_PAGE = 500;

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
  private readonly client: Etcd3;
  private readonly subnetsPrefix: string;
  private readonly configKey: string;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  /** Live watchers and the queue each feeds, so close() can cancel them and end their iterators. */
  private readonly watchers = new Map<Watcher, WatchQueue>();
  private closed = false;
  /** etcd round trips made (unary requests, keepalives, watch creations): for the benchmark. */
  requests = 0;

  constructor(options: EtcdLeaseRegistryOptions) {
    this.client = createEtcdClient(options);
    const prefix = options.prefix.replace(/\/+$/, '');
    this.subnetsPrefix = `${prefix}/subnets/`;
    this.configKey = `${prefix}/config`;
    this.log = options.log;
    this.timeoutMs = options.requestTimeoutMs;
  }

  /** Runs one etcd request, translating errors and honouring `signal` (the request itself runs on). */
  private async call<T>(
    what: string,
    signal: AbortSignal | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', `etcd ${what}: client closed`);
    if (signal?.aborted) throw new AbortedError();
    this.requests++;
    const work = fn().catch((err: unknown) => {
      throw translateEtcdError(what, err);
    });
    if (!signal) return work;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new AbortedError());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    work.catch(() => {});
    try {
      return await Promise.race([work, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
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

  private toEntry(kv: IKeyValue): RegistryEntry | null {
    const key = this.subnetKey(kv.key);
    if (key === null) return null;
    const big = kv.value.length > MAX_ENTRY_VALUE_BYTES;
    return {
      key,
      value: big ? '' : kv.value.toString(),
      ...(big ? { oversize: kv.value.length } : {}),
      leaseId: kv.lease === '0' || kv.lease === '' || kv.lease === undefined ? null : kv.lease,
      modRevision: kv.mod_revision,
    };
  }

  async getConfig(signal?: AbortSignal): Promise<string | null> {
    return this.call('get config', signal, () => this.client.get(this.configKey).string());
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
      await this.call('put config', signal, () =>
        this.client.put(this.configKey).value(value).exec(),
      );
      return true;
    }
    const target = expectedModRevision === '0' ? 'Create' : 'Mod';
    const res = await this.call('put config', signal, () =>
      this.client
        .if(this.configKey, target, '==', expectedModRevision)
        .then(this.client.put(this.configKey).value(value))
        .commit(),
    );
    return res.succeeded;
  }

  /** The raw config and its mod revision ('0' when absent), for a compare-and-swap `putConfig`. */
  async getConfigEntry(
    signal?: AbortSignal,
  ): Promise<{ value: string | null; modRevision: string }> {
    const res = await this.call('get config', signal, () => this.client.get(this.configKey).exec());
    const kv = res.kvs[0];
    return kv
      ? { value: kv.value.toString(), modRevision: kv.mod_revision }
      : { value: null, modRevision: '0' };
  }

  /**
   * Every key below `<prefix>/subnets/`, read in pages at one revision (a consistent snapshot): a
   * prefix holding many or huge values never needs one response larger than gRPC's receive limit, and
   * only the bounded entries (see toEntry) are kept, not the raw pages.
   */
  async list(signal?: AbortSignal): Promise<RegistryListing> {
    const end = prefixEnd(Buffer.from(this.subnetsPrefix));
    const entries: RegistryEntry[] = [];
    let from = Buffer.from(this.subnetsPrefix);
    let revision: string | undefined;
    let page = LIST_PAGE;
    for (;;) {
      let res;
      try {
        res = await this.call('list subnets', signal, () =>
          this.client.kv.range({
            key: from,
            range_end: end,
            limit: page,
            ...(revision !== undefined ? { revision } : {}),
          }),
        );
      } catch (err) {
        // A page larger than gRPC accepts (values of up to 1.5 MiB each): smaller pages, down to one key.
        if (page > 1 && /RESOURCE_EXHAUSTED|larger than max/i.test(String(err))) {
          page = Math.max(1, Math.floor(page / 4));
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
      from = Buffer.concat([last.key, Buffer.from([0])]);
      page = Math.min(LIST_PAGE, page * 2);
    }
    return { entries, revision: revision ?? '0' };
  }

  async get(key: string, signal?: AbortSignal): Promise<RegistryEntry | null> {
    const res = await this.call(`get ${key}`, signal, () =>
      this.client.get(this.subnetsPrefix + key).exec(),
    );
    const kv = res.kvs[0];
    return kv ? this.toEntry(kv) : null;
  }

  async grant(ttlSeconds: number, signal?: AbortSignal): Promise<string> {
    const ttl = Math.max(1, Math.round(ttlSeconds));
    const res = await this.call('grant lease', signal, () =>
      this.client.leaseClient.leaseGrant({ TTL: ttl }),
    );
    return res.ID;
  }

  async keepAlive(leaseId: string, signal?: AbortSignal): Promise<number> {
    return this.call(`keepalive lease ${leaseId}`, signal, async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          const timer = setTimeout(() => {
            const err = new GRPCDeadlineExceededError(
              `no keepalive response within ${this.timeoutMs} ms`,
            );
            reject(err);
            // Reported on the stream, etcd3 marks this member failed: the retry goes to another one.
            const raw = stream as unknown as {
              writable: boolean;
              emit(e: 'error', x: Error): void;
            };
            if (raw.writable) raw.emit('error', err);
          }, this.timeoutMs);
          stream.on('data', (r: { TTL: string }) => {
            clearTimeout(timer);
            resolve(r);
          });
          stream.on('error', (err: Error) => {
            clearTimeout(timer);
            reject(err);
          });
          stream.write({ ID: leaseId });
        });
        return Math.max(0, Number(res.TTL));
      } finally {
        // end(), not cancel(): a cancelled stream reports an error that makes etcd3 reset the channel.
        stream.end();
      }
    });
  }

  async timeToLive(leaseId: string, signal?: AbortSignal): Promise<number> {
    try {
      const res = await this.call(`ttl of lease ${leaseId}`, signal, () =>
        this.client.leaseClient.leaseTimeToLive({ ID: leaseId, keys: false }),
      );
      return Math.max(0, Number(res.TTL));
    } catch (err) {
      if (err instanceof WeftError && err.code === 'E_ETCD_LEASE_NOT_FOUND') return 0;
      throw err;
    }
  }

  async revoke(leaseId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call(`revoke lease ${leaseId}`, signal, () =>
        this.client.leaseClient.leaseRevoke({ ID: leaseId }),
      );
    } catch (err) {
      if (
        isLeaseNotFound(err) ||
        (err instanceof WeftError && err.code === 'E_ETCD_LEASE_NOT_FOUND')
      )
        return;
      throw err;
    }
  }

  private put(key: string, value: string, leaseId: string | null) {
    const p = this.client.put(this.subnetsPrefix + key).value(value);
    return leaseId === null ? p : p.lease(leaseId);
  }

  private async conditional(
    what: string,
    key: string,
    target: 'Create' | 'Mod',
    revision: string,
    value: string,
    leaseId: string | null,
    signal?: AbortSignal,
  ): Promise<WriteResult> {
    const full = this.subnetsPrefix + key;
    const res = await this.call(`${what} ${key}`, signal, () =>
      this.client
        .if(full, target, '==', revision)
        .then(this.put(key, value, leaseId))
        .else(this.client.get(full))
        .commit(),
    );
    if (res.succeeded) return { ok: true, revision: res.header.revision };
    const kv = res.responses[0]?.response_range?.kvs[0];
    return { ok: false, existing: kv ? this.toEntry(kv) : null };
  }

  createIfAbsent(key: string, value: string, leaseId: string | null, signal?: AbortSignal) {
    return this.conditional('create', key, 'Create', '0', value, leaseId, signal);
  }

  replaceIf(
    key: string,
    value: string,
    leaseId: string | null,
    modRevision: string,
    signal?: AbortSignal,
  ) {
    return this.conditional('replace', key, 'Mod', modRevision, value, leaseId, signal);
  }

  async deleteIf(key: string, modRevision: string, signal?: AbortSignal): Promise<boolean> {
    const full = this.subnetsPrefix + key;
    const res = await this.call(`delete ${key}`, signal, () =>
      this.client.if(full, 'Mod', '==', modRevision).then(this.client.delete().key(full)).commit(),
    );
    return res.succeeded;
  }

  private toBatch(res: IWatchResponse): RegistryBatch {
    const events: RegistryEvent[] = [];
    for (const ev of res.events) {
      if (ev.type === 'Put') {
        const entry = this.toEntry(ev.kv);
        if (entry) events.push({ type: 'put', entry });
      } else {
        const key = this.subnetKey(ev.kv.key);
        if (key !== null) events.push({ type: 'delete', key, modRevision: ev.kv.mod_revision });
      }
    }
    return { events, revision: res.header.revision };
  }

  async *watch(
    fromRevision: string,
    signal: AbortSignal,
    key?: string,
  ): AsyncIterable<RegistryBatch> {
    if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', 'etcd watch: client closed');
    if (signal.aborted) return;
    const builder = this.client.watch();
    if (key === undefined) builder.prefix(this.subnetsPrefix);
    else builder.key(this.subnetsPrefix + key);
    builder.startRevision(fromRevision);
    const queue = new WatchQueue();
    const what = `watch ${key ?? 'subnets'} from revision ${fromRevision}`;
    this.requests++;
    const watcher = builder.watcher();
    this.watchers.set(watcher, queue);
    watcher.on('data', (res: IWatchResponse) => {
      // etcd3 re-throws a listener's exception outside any handler (an uncaught exception): never throw.
      try {
        const batch = this.toBatch(res);
        if (batch.events.length > 0) queue.push(batch);
      } catch (err) {
        queue.fail(translateEtcdError(what, err));
      }
    });
    // After 'error' etcd3 has already dropped the watcher; cancel() would wait forever for an ID.
    let dead = false;
    watcher.on('error', (err: Error) => {
      dead = true;
      queue.fail(translateEtcdError(what, err));
    });
    watcher.on('disconnected', (err: Error) =>
      this.log.debug('etcd watch disconnected, reconnecting', { error: err.message }),
    );
    watcher.on('connected', () => this.log.debug('etcd watch connected', { what }));
    const onAbort = (): void => queue.end();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      yield* queue;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.watchers.delete(watcher);
      if (!dead) await this.cancelWatcher(watcher);
    }
  }

  /**
   * Cancels a watcher, bounded: etcd3's cancel() waits for the watch ID when the watcher is still being
   * created, which never comes while etcd is unreachable.
   */
  private async cancelWatcher(watcher: Watcher): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      watcher.cancel().catch(() => {}),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.watchers.values()) queue.end();
    await Promise.all([...this.watchers.keys()].map((w) => this.cancelWatcher(w)));
    this.watchers.clear();
    this.client.close();
  }
}
