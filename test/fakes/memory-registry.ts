/**
 * An in-memory LeaseRegistry with etcd's semantics where the manager depends on them: one store-wide
 * revision, leases that expire after their TTL and delete their keys, conditional writes, and a watch
 * that replays history from a revision. `compact(rev)` drops history so the compaction path can be
 * tested. For unit tests of pure logic; the product is EtcdLeaseRegistry.
 */
import { AbortedError, WeftError } from '../../src/errors.js';
import type {
  LeaseRegistry,
  RegistryBatch,
  RegistryEntry,
  RegistryEvent,
  RegistryListing,
  WriteResult,
} from '../../src/subnet/registry.js';

interface StoreLease {
  ttl: number;
  expiresAt: number;
  timer: ReturnType<typeof setTimeout>;
}

interface LoggedEvent {
  revision: number;
  event: RegistryEvent;
}

export class MemoryLeaseRegistry implements LeaseRegistry {
  private revision = 1;
  private compacted = 0;
  private nextLeaseId = 1000;
  private readonly kvs = new Map<string, RegistryEntry>();
  private readonly leases = new Map<string, StoreLease>();
  private readonly history: LoggedEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private closed = false;
  /** Number of calls made, by method: lets tests count round trips. */
  readonly calls = new Map<string, number>();
  config: string | null;

  constructor(config: string | null = null) {
    this.config = config;
  }

  private enter(method: string, signal?: AbortSignal): void {
    if (signal?.aborted) throw new AbortedError();
    if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', 'memory registry is closed');
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  private record(event: RegistryEvent): void {
    this.history.push({ revision: this.revision, event });
    for (const w of this.waiters) w();
  }

  private write(key: string, value: string, leaseId: string | null): string {
    this.revision++;
    const entry: RegistryEntry = {
      key,
      value,
      leaseId,
      modRevision: String(this.revision),
      createRevision: this.kvs.get(key)?.createRevision ?? String(this.revision),
    };
    this.kvs.set(key, entry);
    this.record({ type: 'put', entry });
    return entry.modRevision;
  }

  private remove(key: string): void {
    this.revision++;
    this.kvs.delete(key);
    this.record({ type: 'delete', key, modRevision: String(this.revision) });
  }

  /** Current revision (tests). */
  get currentRevision(): string {
    return String(this.revision);
  }

  /** Number of live store leases (tests: renewal must not leak them). */
  get leaseCount(): number {
    return this.leases.size;
  }

  /** Writes a key directly, as an operator would with etcdctl (leaseId null: a reservation). */
  put(key: string, value: string, leaseId: string | null = null): void {
    this.write(key, value, leaseId);
  }

  /** Deletes a key directly, as an operator would. */
  delete(key: string): void {
    if (this.kvs.has(key)) this.remove(key);
  }

  /** Drops history up to `revision` (default: now); watches from before it fail with E_ETCD_COMPACTED. */
  compact(revision = this.revision): void {
    this.compacted = revision;
    while (this.history.length > 0 && this.history[0]!.revision <= revision) this.history.shift();
    for (const w of this.waiters) w();
  }

  async getConfig(signal?: AbortSignal): Promise<string | null> {
    this.enter('getConfig', signal);
    return this.config;
  }

  async list(signal?: AbortSignal): Promise<RegistryListing> {
    this.enter('list', signal);
    return { entries: [...this.kvs.values()], revision: String(this.revision) };
  }

  async get(key: string, signal?: AbortSignal): Promise<RegistryEntry | null> {
    this.enter('get', signal);
    return this.kvs.get(key) ?? null;
  }

  private expire(id: string): void {
    this.leases.delete(id);
    for (const e of [...this.kvs.values()]) if (e.leaseId === id) this.remove(e.key);
  }

  async grant(ttlSeconds: number, signal?: AbortSignal): Promise<string> {
    this.enter('grant', signal);
    const id = String(this.nextLeaseId++);
    const ttl = Math.max(1, Math.round(ttlSeconds));
    const timer = setTimeout(() => this.expire(id), ttl * 1000);
    timer.unref?.();
    this.leases.set(id, { ttl, expiresAt: Date.now() + ttl * 1000, timer });
    return id;
  }

  async keepAlive(leaseId: string, signal?: AbortSignal): Promise<number> {
    this.enter('keepAlive', signal);
    const l = this.leases.get(leaseId);
    if (!l) return 0;
    clearTimeout(l.timer);
    l.timer = setTimeout(() => this.expire(leaseId), l.ttl * 1000);
    l.timer.unref?.();
    l.expiresAt = Date.now() + l.ttl * 1000;
    return l.ttl;
  }

  async timeToLive(leaseId: string, signal?: AbortSignal): Promise<number> {
    this.enter('timeToLive', signal);
    const l = this.leases.get(leaseId);
    return l ? Math.max(0, Math.ceil((l.expiresAt - Date.now()) / 1000)) : 0;
  }

  async revoke(leaseId: string, signal?: AbortSignal): Promise<void> {
    this.enter('revoke', signal);
    const l = this.leases.get(leaseId);
    if (!l) return;
    clearTimeout(l.timer);
    this.expire(leaseId);
  }

  private checkLease(leaseId: string | null): void {
    if (leaseId !== null && !this.leases.has(leaseId))
      throw new WeftError('E_ETCD_LEASE_NOT_FOUND', `store lease ${leaseId} not found`);
  }

  async createIfAbsent(
    key: string,
    value: string,
    leaseId: string | null,
    signal?: AbortSignal,
  ): Promise<WriteResult> {
    this.enter('createIfAbsent', signal);
    const existing = this.kvs.get(key);
    if (existing) return { ok: false, existing };
    this.checkLease(leaseId);
    return { ok: true, revision: this.write(key, value, leaseId) };
  }

  async replaceIf(
    key: string,
    value: string,
    leaseId: string | null,
    modRevision: string,
    signal?: AbortSignal,
  ): Promise<WriteResult> {
    this.enter('replaceIf', signal);
    const existing = this.kvs.get(key) ?? null;
    if (!existing || existing.modRevision !== modRevision) return { ok: false, existing };
    this.checkLease(leaseId);
    return { ok: true, revision: this.write(key, value, leaseId) };
  }

  async deleteIf(key: string, modRevision: string, signal?: AbortSignal): Promise<boolean> {
    this.enter('deleteIf', signal);
    const existing = this.kvs.get(key);
    if (!existing || existing.modRevision !== modRevision) return false;
    this.remove(key);
    return true;
  }

  async *watch(
    fromRevision: string,
    signal: AbortSignal,
    key?: string,
  ): AsyncIterable<RegistryBatch> {
    this.enter('watch', signal);
    let next = Number(fromRevision);
    while (!signal.aborted) {
      if (this.closed) throw new WeftError('E_ETCD_UNAVAILABLE', 'memory registry is closed');
      if (next <= this.compacted)
        throw new WeftError('E_ETCD_COMPACTED', `watch from revision ${next}: history compacted`);
      const events = this.history.filter(
        (h) =>
          h.revision >= next &&
          (key === undefined || (h.event.type === 'put' ? h.event.entry.key : h.event.key) === key),
      );
      if (events.length > 0) {
        next = this.revision + 1;
        yield { events: events.map((e) => e.event), revision: String(this.revision) };
        continue;
      }
      next = Math.max(next, this.revision + 1);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.waiters.delete(done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.leases.values()) clearTimeout(l.timer);
    for (const w of this.waiters) w();
  }
}
