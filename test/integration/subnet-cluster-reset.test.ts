/**
 * etcd wiped and restarted (a cluster reset, or a restore from an older backup): every key and store
 * lease is gone and the store's revision starts again near 1. A watch resuming after its last revision
 * would then wait for a revision the new store reaches only much later (etcd accepts a start revision in
 * the future and stays silent), so weftd would miss every peer that registers again and keep its own
 * subnet unregistered until the next renewal, hours later, free for another host to take. The watch must
 * notice the store went back (the revision in etcd's answer is below what it already saw), re-list and
 * diff; the keeper must re-create our key at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { sleep, waitFor } from '../helpers/exec.js';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';
import { attrs, putConfig, storeRevision, WatchRecorder, useSubnetEtcd } from './subnet-helpers.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

/** Our host leases from 10.5.100.0 up, so the other hosts' keys written below (10.5.1–10.5.9) are never
 *  the one our manager picked (a random free subnet: it once picked 10.5.2.0/24 and the test's "other
 *  host" overwrote our own key). */
const CONFIG = { Network: '10.5.0.0/16', SubnetMin: '10.5.100.0', Backend: { Type: 'vxlan' } };

describe.skipIf(!runnable)('subnet manager across an etcd cluster reset (data wiped)', () => {
  const { etcd, managers, stops } = useSubnetEtcd();

  /** Host 198.18.0.9 leases a subnet, watches its peers and keeps its key, until the test ends; the
   *  manager's info lines (where a re-list says why) are collected. */
  async function watchAndKeep(prefix: string) {
    const infos: string[] = [];
    /** every line at every level, with its fields: what a failed wait prints */
    const trace: string[] = [];
    const at =
      (level: string) =>
      (m: string, f?: Record<string, unknown>): void =>
        void trace.push(`${level} ${m} ${f ? JSON.stringify(f) : ''}`);
    const log: Logger = {
      ...nullLogger,
      debug: at('debug'),
      warn: at('warn'),
      error: at('error'),
      info: (m, f) => {
        infos.push(m);
        at('info')(m, f);
      },
      child: () => log,
    };
    const me = managers.make(prefix, { ttlSeconds: 3600, renewMarginSeconds: 60 }, log);
    const own = await me.acquireLease(attrs(9));
    const ac = new AbortController();
    const rec = new WatchRecorder(me.watchLeases(own, ac.signal));
    const keeping = me.keepLease(own, ac.signal).catch((err: unknown) => err);
    stops.push(async () => {
      ac.abort();
      await rec.done;
      await keeping;
    });
    return { own, rec, infos, trace };
  }

  it('the peer watch re-lists and the keeper re-creates our key after the store went back to revision 1', async () => {
    if (!etcd.reset) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    const prefix = etcd.prefix('reset');
    const put = (key: string, value: string): Promise<string> =>
      etcd.etcdctl(['put', `${prefix}/subnets/${key}`, value]);
    await putConfig(etcd, prefix, CONFIG);
    // History before the reset: the store revision climbs well above what the new store will reach.
    for (let i = 0; i < 40; i++) await etcd.etcdctl(['put', `${prefix}/noise`, String(i)]);
    await put('10.5.1.0-24', encodeLeaseAttrs(attrs(1)));
    const { own, rec, trace } = await watchAndKeep(prefix);
    await rec.waitFor((e) => e.length >= 1);
    expect(rec.summary()).toEqual(['snapshot:10.5.1.0-24']);
    expect(await storeRevision(etcd)).toBeGreaterThan(40);

    await etcd.reset();
    await putConfig(etcd, prefix, CONFIG);
    // Another host registers again in the new store.
    await put('10.5.2.0-24', encodeLeaseAttrs(attrs(2)));

    // The watch sees the new store: the old peer removed, the new one added.
    await rec
      .waitFor((e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.2.0-24'), 20_000)
      .catch(async (err: Error) => {
        const revision = await storeRevision(etcd).catch((e: Error) => e.message);
        throw new Error(
          `${err.message}; store revision ${revision}; log: ${JSON.stringify(trace)}`,
        );
      });
    expect(rec.summary()).toContain('removed:10.5.1.0-24');
    // Our subnet is registered again in the new store (under a store lease), with our PublicIP.
    const out = await waitFor(
      'our subnet key re-created in the reset store',
      async () => {
        const v = await etcd.etcdctl(['get', `${prefix}/subnets/${own.key}`, '--print-value-only']);
        return v.includes('198.18.0.9') ? v : null;
      },
      20_000,
      200,
    );
    expect(JSON.parse(out) as unknown).toMatchObject({ PublicIP: '198.18.0.9' });
    // Still live afterwards: a later event arrives.
    await put('10.5.3.0-24', encodeLeaseAttrs(attrs(3)));
    await rec.waitFor((e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.3.0-24'));
  });
  it('notices a restore whose store is already past the revision the watch saw, and an ordinary restart costs no re-list', async () => {
    if (!etcd.restore) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    const prefix = etcd.prefix('restore-past');
    const put = (e: EtcdFixture, key: string, n: number): Promise<string> =>
      e.etcdctl(['put', `${prefix}/subnets/${key}`, encodeLeaseAttrs(attrs(n))]);
    await putConfig(etcd, prefix, CONFIG);
    const { own, rec, infos } = await watchAndKeep(prefix);
    await rec.waitFor((e) => e.length >= 1);
    // The watch sees a peer at a revision well above 1.
    for (let i = 0; i < 20; i++) await etcd.etcdctl(['put', `${prefix}/noise`, String(i)]);
    await put(etcd, '10.5.1.0-24', 1);
    await rec.waitFor((e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.1.0-24'));
    const seen = await storeRevision(etcd);

    // An ordinary restart: the watch resumes (a later peer arrives) without re-listing.
    await etcd.kill();
    await etcd.start();
    await put(etcd, '10.5.4.0-24', 4);
    await rec.waitFor((e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.4.0-24'));
    expect(infos.filter((m) => /re-listing/.test(m))).toEqual([]);

    // The backup: another store in which a host registered at a low revision and whose revision then
    // went well past what our watch saw (the history of a wiped cluster while this host was away).
    const other = await startEtcd();
    const dir = mkdtempSync(join(tmpdir(), 'weft-snap-'));
    try {
      await putConfig(other, prefix, CONFIG);
      await put(other, '10.5.2.0-24', 2);
      for (let i = 0; i < seen + 20; i++)
        await other.etcdctl(['put', `${prefix}/noise`, String(i)]);
      expect(await storeRevision(other)).toBeGreaterThan(seen + 10);
      await other.etcdctl(['snapshot', 'save', join(dir, 'snap.db')]);
      await etcd.restore(join(dir, 'snap.db'));
    } finally {
      await other.stop();
    }
    rmSync(dir, { recursive: true, force: true });

    // The watch re-lists: the peer registered below the revision it had seen appears, those of the
    // old store go, and our key is back.
    await rec.waitFor(
      (e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.2.0-24'),
      15_000,
    );
    expect(rec.summary()).toEqual(
      expect.arrayContaining(['removed:10.5.1.0-24', 'removed:10.5.4.0-24']),
    );
    expect(infos.some((m) => /re-listing/.test(m))).toBe(true);
    await waitFor(
      'our subnet key re-created in the restored store',
      async () =>
        (
          await etcd.etcdctl(['get', `${prefix}/subnets/${own.key}`, '--print-value-only'])
        ).includes('198.18.0.9'),
      15_000,
      200,
    );
  });
  it('after a compaction up to what the watch saw, an ordinary restart still costs no re-list', async () => {
    const prefix = etcd.prefix('compact-restart');
    await putConfig(etcd, prefix, CONFIG);
    await etcd.etcdctl(['put', `${prefix}/subnets/10.5.1.0-24`, encodeLeaseAttrs(attrs(1))]);
    const { rec, infos } = await watchAndKeep(prefix);
    await rec.waitFor((e) => e.length >= 1);
    await sleep(500); // the watch is connected and has taken its anchor
    // History up to the watch's revision is compacted away (the revision of the key it anchored on
    // with it), not past it: the watch itself can resume, and its reset check must not re-list.
    await etcd.etcdctl(['compact', String(await storeRevision(etcd))]);
    await etcd.kill();
    await etcd.start();
    await etcd.etcdctl(['put', `${prefix}/subnets/10.5.4.0-24`, encodeLeaseAttrs(attrs(4))]);
    await rec.waitFor((e) => e.some((ev) => ev.kind === 'added' && ev.lease.key === '10.5.4.0-24'));
    expect(infos.filter((m) => /re-listing/.test(m))).toEqual([]);
    expect(rec.summary()).not.toContain('removed:10.5.1.0-24');
  });
});
