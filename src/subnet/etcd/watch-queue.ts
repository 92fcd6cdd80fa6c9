/**
 * The bounded queue between the etcd watch (watch.ts: pushes whenever etcd sends) and the
 * one consumer that pulls batches. While the consumer keeps up, each etcd watch response is delivered
 * as it came, so every intermediate event is seen. While it lags, the undelivered responses are merged
 * into ONE pending batch that keeps only the latest event per key (a lease written 1000 times while the
 * consumer was busy is one event), so memory grows with the number of distinct keys, not with churn.
 * If even that exceeds `maxKeys` or `maxBytes` the queue fails with E_ETCD_COMPACTED (details
 * `{ overflow: true }`): the consumer re-lists, exactly as after a compaction, instead of growing.
 */
import { WeftError } from '../../errors.js';
import type { RegistryBatch, RegistryEvent } from '../registry.js';

export interface WatchQueueLimits {
  /** Distinct keys the pending batch may hold. */
  readonly maxKeys: number;
  /** Approximate bytes (keys + values) the pending batch may hold. */
  readonly maxBytes: number;
}

export const DEFAULT_WATCH_QUEUE_LIMITS: WatchQueueLimits = { maxKeys: 10_000, maxBytes: 16 << 20 };

const keyOf = (ev: RegistryEvent): string => (ev.type === 'put' ? ev.entry.key : ev.key);
const sizeOf = (ev: RegistryEvent): number =>
  ev.type === 'put' ? ev.entry.key.length + ev.entry.value.length + 64 : ev.key.length + 64;

/** A batch being merged while the consumer is busy: latest event per key, in order of last change. */
class PendingBatch {
  readonly events = new Map<string, RegistryEvent>();
  bytes = 0;
  revision = '0';
  add(batch: RegistryBatch): void {
    for (const ev of batch.events) {
      const k = keyOf(ev);
      const old = this.events.get(k);
      if (old) {
        this.bytes -= sizeOf(old);
        this.events.delete(k); // re-inserted last: order of last change
      }
      this.events.set(k, ev);
      this.bytes += sizeOf(ev);
    }
    this.revision = batch.revision;
  }
  toBatch(): RegistryBatch {
    return { events: [...this.events.values()], revision: this.revision };
  }
}

export class WatchQueue implements AsyncIterable<RegistryBatch> {
  /** At most one response as received, then at most one merged batch behind it. */
  private head: RegistryBatch | null = null;
  private merged: PendingBatch | null = null;
  private error: unknown = undefined;
  private done = false;
  private wake: (() => void) | undefined;
  /** Responses merged into another (for tests and logs). */
  coalesced = 0;

  constructor(private readonly limits: WatchQueueLimits = DEFAULT_WATCH_QUEUE_LIMITS) {}

  push(batch: RegistryBatch): void {
    if (this.done) return;
    if (this.head === null && this.merged === null) {
      this.head = batch;
    } else {
      this.merged ??= new PendingBatch();
      this.merged.add(batch);
      this.coalesced++;
      if (
        this.merged.events.size > this.limits.maxKeys ||
        this.merged.bytes > this.limits.maxBytes
      ) {
        const { size } = this.merged.events;
        this.head = null;
        this.merged = null;
        this.fail(
          new WeftError(
            'E_ETCD_COMPACTED',
            `etcd watch: the consumer fell behind by ${size} keys: re-listing instead of queueing more`,
            { details: { overflow: true } },
          ),
        );
        return;
      }
    }
    this.notify();
  }

  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.done = true;
    this.notify();
  }

  end(): void {
    this.done = true;
    this.notify();
  }

  /** Keys currently queued (head + merged), for tests. */
  get pendingKeys(): number {
    return (this.head?.events.length ?? 0) + (this.merged?.events.size ?? 0);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private take(): RegistryBatch | null {
    const b = this.head ?? this.merged?.toBatch() ?? null;
    if (this.head !== null) this.head = null;
    else this.merged = null;
    return b;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RegistryBatch> {
    for (;;) {
      // Queued events are delivered before an error (an overflow dropped them: the consumer re-lists).
      const b = this.take();
      if (b !== null) {
        yield b;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
