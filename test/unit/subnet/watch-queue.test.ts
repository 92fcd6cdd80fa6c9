/**
 * The watch queue between the etcd watch and the lease watch: responses are delivered as received
 * while the consumer keeps up; while it lags they coalesce per key (latest event wins), and past its
 * limits it fails with a re-list (E_ETCD_COMPACTED, overflow) instead of growing.
 */
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../../src/errors.js';
import { WatchQueue } from '../../../src/subnet/etcd/watch-queue.js';
import type { RegistryBatch, RegistryEvent } from '../../../src/subnet/registry.js';

const put = (key: string, value = 'v', rev = 1): RegistryEvent => ({
  type: 'put',
  entry: { key, value, leaseId: null, modRevision: String(rev), createRevision: String(rev) },
});
const del = (key: string, rev = 1): RegistryEvent => ({
  type: 'delete',
  key,
  modRevision: String(rev),
});
const batch = (revision: number, ...events: RegistryEvent[]): RegistryBatch => ({
  events,
  revision: String(revision),
});
const show = (b: RegistryBatch): string[] =>
  b.events.map((e) => (e.type === 'put' ? `put:${e.entry.key}=${e.entry.value}` : `del:${e.key}`));

async function drain(q: WatchQueue): Promise<RegistryBatch[]> {
  const out: RegistryBatch[] = [];
  for await (const b of q) out.push(b);
  return out;
}

describe('watch queue', () => {
  it('delivers each response as received while the consumer keeps up', async () => {
    const q = new WatchQueue();
    const it = q[Symbol.asyncIterator]();
    q.push(batch(2, put('a'), del('a')));
    expect(show((await it.next()).value as RegistryBatch)).toEqual(['put:a=v', 'del:a']);
    q.push(batch(3, put('b')));
    expect(show((await it.next()).value as RegistryBatch)).toEqual(['put:b=v']);
    q.end();
    expect((await it.next()).done).toBe(true);
  });

  it('coalesces per key while the consumer lags: latest event wins, last revision kept', async () => {
    const q = new WatchQueue();
    q.push(batch(1, put('head')));
    for (let i = 0; i < 1000; i++) q.push(batch(2 + i, put(`k${i % 10}`, `v${i}`)));
    q.push(batch(2000, del('k3')));
    expect(q.pendingKeys).toBe(11);
    q.end();
    const out = await drain(q);
    expect(out).toHaveLength(2);
    expect(show(out[0]!)).toEqual(['put:head=v']);
    expect(out[1]!.revision).toBe('2000');
    expect(show(out[1]!)).toEqual([
      'put:k0=v990',
      'put:k1=v991',
      'put:k2=v992',
      'put:k4=v994',
      'put:k5=v995',
      'put:k6=v996',
      'put:k7=v997',
      'put:k8=v998',
      'put:k9=v999',
      'del:k3',
    ]);
  });

  it('overflows into a re-list instead of growing past its key or byte limit', async () => {
    const byKeys = new WatchQueue({ maxKeys: 100, maxBytes: 1 << 30 });
    byKeys.push(batch(1, put('head')));
    for (let i = 0; i < 101; i++) byKeys.push(batch(2 + i, put(`k${i}`)));
    expect(byKeys.pendingKeys).toBe(0);
    byKeys.push(batch(500, put('ignored after the failure')));
    const err = await drain(byKeys).catch((e: unknown) => e);
    expect(hasCode(err, 'E_ETCD_COMPACTED')).toBe(true);
    expect((err as { details: unknown }).details).toEqual({ overflow: true });

    const byBytes = new WatchQueue({ maxKeys: 1 << 30, maxBytes: 100_000 });
    byBytes.push(batch(1, put('head')));
    for (let i = 0; i < 3; i++) byBytes.push(batch(2 + i, put(`k${i}`, 'x'.repeat(40_000))));
    await expect(drain(byBytes)).rejects.toThrow(/fell behind/);
  });

  it('delivers what is queued before an ordinary error', async () => {
    const q = new WatchQueue();
    q.push(batch(1, put('a')));
    q.fail(new Error('stream broke'));
    const it = q[Symbol.asyncIterator]();
    expect(show((await it.next()).value as RegistryBatch)).toEqual(['put:a=v']);
    await expect(it.next()).rejects.toThrow('stream broke');
  });
});
