/**
 * The LeaseRegistry contract (src/subnet/registry.ts): conditional writes, store leases with TTL expiry,
 * a watch that replays from a revision, and compaction, run against MemoryLeaseRegistry
 * (test/unit/subnet/registry-memory-contract.test.ts) and EtcdLeaseRegistry over a spawned etcd
 * (test/integration/registry-etcd-contract.test.ts). Everything here must hold for both; where the fake
 * differed from etcd, the fake was fixed. Batch boundaries are not part of the contract (etcd groups
 * events per response), only the order of the events.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LeaseRegistry, RegistryEvent } from '../../src/subnet/registry.js';
import { sleep } from '../helpers/exec.js';

export interface RegistryHarness {
  readonly registry: LeaseRegistry;
  /** Writes `<prefix>/config` as an operator would. */
  putConfig(value: string): Promise<void>;
  /** Compacts the store's history up to its current revision. */
  compact(): Promise<void>;
  close(): Promise<void>;
}

/** Events of `watch(from)` until `until` holds for them (or `ms` passes), then stops the watch. */
async function watchUntil(
  registry: LeaseRegistry,
  from: string,
  until: (events: RegistryEvent[]) => boolean,
  key?: string,
  ms = 8_000,
): Promise<RegistryEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const events: RegistryEvent[] = [];
  try {
    for await (const batch of registry.watch(from, ac.signal, key)) {
      expect(Number(batch.revision)).toBeGreaterThanOrEqual(Number(from));
      events.push(...batch.events);
      if (until(events)) break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return events;
}

const summary = (e: RegistryEvent): string =>
  e.type === 'put' ? `put ${e.entry.key}=${e.entry.value}` : `delete ${e.key}`;

export function registryContract(label: string, setup: () => Promise<RegistryHarness>): void {
  describe(`LeaseRegistry contract: ${label}`, () => {
    let h: RegistryHarness;
    let r: LeaseRegistry;
    beforeEach(async () => {
      h = await setup();
      r = h.registry;
    });
    afterEach(async () => {
      await h?.close();
    });

    it('reads the config key raw, null while absent', async () => {
      expect(await r.getConfig()).toBeNull();
      await h.putConfig('{"Network":"10.5.0.0/16"}');
      expect(await r.getConfig()).toBe('{"Network":"10.5.0.0/16"}');
    });

    it('creates only when absent and answers a lost race with what holds the key', async () => {
      const a = await r.createIfAbsent('10.5.1.0-24', 'one', null);
      expect(a.ok).toBe(true);
      const rev = a.ok ? a.revision : '';
      const b = await r.createIfAbsent('10.5.1.0-24', 'two', null);
      expect(b).toEqual({
        ok: false,
        existing: {
          key: '10.5.1.0-24',
          value: 'one',
          leaseId: null,
          modRevision: rev,
          createRevision: rev,
        },
      });
      expect(await r.get('10.5.1.0-24')).toEqual({
        key: '10.5.1.0-24',
        value: 'one',
        leaseId: null,
        modRevision: rev,
        createRevision: rev,
      });
      expect(await r.get('10.5.9.0-24')).toBeNull();
      const listing = await r.list();
      expect(listing.entries.map((e) => `${e.key}=${e.value}`)).toEqual(['10.5.1.0-24=one']);
      expect(Number(listing.revision)).toBeGreaterThanOrEqual(Number(rev));
    });

    it('replaces and deletes only at the expected mod revision', async () => {
      const a = await r.createIfAbsent('10.5.2.0-24', 'v1', null);
      const rev1 = a.ok ? a.revision : '';
      const b = await r.replaceIf('10.5.2.0-24', 'v2', null, rev1);
      expect(b.ok).toBe(true);
      const rev2 = b.ok ? b.revision : '';
      expect(Number(rev2)).toBeGreaterThan(Number(rev1));
      expect(await r.replaceIf('10.5.2.0-24', 'v3', null, rev1)).toEqual({
        ok: false,
        // an overwrite keeps the key's create revision
        existing: {
          key: '10.5.2.0-24',
          value: 'v2',
          leaseId: null,
          modRevision: rev2,
          createRevision: rev1,
        },
      });
      expect(await r.replaceIf('10.5.3.0-24', 'v1', null, rev1)).toEqual({
        ok: false,
        existing: null,
      });
      expect(await r.deleteIf('10.5.2.0-24', rev1)).toBe(false);
      expect((await r.get('10.5.2.0-24'))?.value).toBe('v2');
      expect(await r.deleteIf('10.5.2.0-24', rev2)).toBe(true);
      expect(await r.get('10.5.2.0-24')).toBeNull();
      expect(await r.deleteIf('10.5.2.0-24', rev2)).toBe(false);
      // created again after the delete: a new create revision
      const c = await r.createIfAbsent('10.5.2.0-24', 'v4', null);
      const rev3 = c.ok ? c.revision : '';
      expect(Number(rev3)).toBeGreaterThan(Number(rev2));
      expect((await r.get('10.5.2.0-24'))?.createRevision).toBe(rev3);
    });

    it('attaches keys to store leases: revoke deletes them, a gone lease is refused', async () => {
      const id = await r.grant(30);
      expect(id).toMatch(/^\d+$/);
      expect(await r.timeToLive(id)).toBeGreaterThan(25);
      expect(await r.keepAlive(id)).toBeGreaterThanOrEqual(30);
      const w = await r.createIfAbsent('10.5.4.0-24', 'leased', id);
      expect(w.ok).toBe(true);
      expect((await r.get('10.5.4.0-24'))?.leaseId).toBe(id);
      await r.revoke(id);
      expect(await r.get('10.5.4.0-24')).toBeNull();
      expect(await r.timeToLive(id)).toBe(0);
      expect(await r.keepAlive(id)).toBe(0);
      await r.revoke(id); // already gone: not an error
      await expect(r.createIfAbsent('10.5.4.0-24', 'again', id)).rejects.toMatchObject({
        code: 'E_ETCD_LEASE_NOT_FOUND',
      });
      expect(await r.get('10.5.4.0-24')).toBeNull();
    });

    it('expires a lease after its TTL without keepalives, deleting its keys (a watched delete)', async () => {
      const start = (await r.list()).revision;
      const id = await r.grant(1);
      await r.createIfAbsent('10.5.5.0-24', 'short', id);
      const events = await watchUntil(r, String(Number(start) + 1), (ev) =>
        ev.some((e) => e.type === 'delete'),
      );
      expect(events.map(summary)).toEqual(['put 10.5.5.0-24=short', 'delete 10.5.5.0-24']);
      expect(await r.get('10.5.5.0-24')).toBeNull();
      expect(await r.timeToLive(id)).toBe(0);
    });

    it('watches from a revision: history replayed in order, later changes live, one key alone', async () => {
      const start = (await r.list()).revision;
      const a = await r.createIfAbsent('10.5.6.0-24', 'a', null);
      await r.createIfAbsent('10.5.7.0-24', 'b', null);
      const from = String(Number(start) + 1);
      const live = watchUntil(r, from, (ev) => ev.length >= 4);
      await sleep(50);
      const a2 = await r.replaceIf('10.5.6.0-24', 'a2', null, a.ok ? a.revision : '');
      await r.deleteIf('10.5.6.0-24', a2.ok ? a2.revision : '');
      const events = await live;
      expect(events.map(summary)).toEqual([
        'put 10.5.6.0-24=a',
        'put 10.5.7.0-24=b',
        'put 10.5.6.0-24=a2',
        'delete 10.5.6.0-24',
      ]);
      const revs = events.map((e) =>
        Number(e.type === 'put' ? e.entry.modRevision : e.modRevision),
      );
      expect(revs).toEqual([...revs].sort((x, y) => x - y));
      expect(new Set(revs).size).toBe(4);
      // From the third write on, and for one key only.
      expect((await watchUntil(r, String(revs[2]), (ev) => ev.length >= 2)).map(summary)).toEqual([
        'put 10.5.6.0-24=a2',
        'delete 10.5.6.0-24',
      ]);
      expect(
        (await watchUntil(r, from, (ev) => ev.length >= 1, '10.5.7.0-24')).map(summary),
      ).toEqual(['put 10.5.7.0-24=b']);
    });

    it('refuses a watch from a compacted revision with E_ETCD_COMPACTED', async () => {
      const start = (await r.list()).revision;
      await r.createIfAbsent('10.5.8.0-24', 'x', null);
      await r.createIfAbsent('10.5.9.0-24', 'y', null);
      await h.compact();
      await expect(
        watchUntil(r, String(Number(start) + 1), (ev) => ev.length > 0),
      ).rejects.toMatchObject({ code: 'E_ETCD_COMPACTED' });
      // The current state is still listed; a watch from after the compaction works.
      const now = await r.list();
      expect(now.entries.map((e) => e.key).sort()).toEqual(['10.5.8.0-24', '10.5.9.0-24']);
      const next = String(Number(now.revision) + 1);
      const live = watchUntil(r, next, (ev) => ev.length >= 1);
      await sleep(50);
      await r.createIfAbsent('10.5.10.0-24', 'z', null);
      expect((await live).map(summary)).toEqual(['put 10.5.10.0-24=z']);
    });
  });
}
