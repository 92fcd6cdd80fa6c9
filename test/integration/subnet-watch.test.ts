/**
 * The peer watch against a real etcd (issue 3): ordered events with our own lease filtered, no event
 * lost across an etcd restart, compaction past our revision answered by a re-list and a diff, and
 * malformed keys/values skipped without touching the rest of the peer set.
 */
import { describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import { applyLeaseEvents } from '../../src/lease/diff.js';
import type { Lease } from '../../src/lease/lease.js';
import { warnRecorder } from '../helpers/logger.js';
import {
  attrs,
  CuttableProxy,
  Managers,
  putConfig,
  storeRevision,
  WatchRecorder,
  useSubnetEtcd,
} from './subnet-helpers.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };

describe.skipIf(!runnable)('subnet lease watch over etcd', () => {
  const { etcd, managers, stops } = useSubnetEtcd();

  function watch(m: ReturnType<Managers['make']>, own: Lease | null): WatchRecorder {
    const ac = new AbortController();
    const rec = new WatchRecorder(m.watchLeases(own, ac.signal));
    stops.push(async () => {
      ac.abort();
      await rec.done;
    });
    return rec;
  }

  const put = (prefix: string, key: string, value: string): Promise<string> =>
    etcd.etcdctl(['put', `${prefix}/subnets/${key}`, value]);

  it('delivers a snapshot, then added/changed/removed in order, without our own lease', async () => {
    const prefix = etcd.prefix('order');
    await putConfig(etcd, prefix, CONFIG);
    const me = managers.make(prefix);
    const own = await me.acquireLease(attrs(1));
    const peer0 = await me.acquireLease(attrs(2, { backendType: 'host-gw' }));
    const rec = watch(me, own);
    await rec.waitFor((e) => e.length >= 1);
    expect(rec.summary()).toEqual([`snapshot:${peer0.key}`]);
    const a = await me.acquireLease(attrs(3));
    const b = await me.acquireLease(attrs(4, { backendType: '' })); // a flannel udp node's lease
    await put(prefix, a.key, encodeLeaseAttrs(attrs(3, { backendData: { VNI: 9 } })));
    await put(prefix, own.key, encodeLeaseAttrs(attrs(1, { backendData: { VNI: 5 } })));
    await etcd.etcdctl(['del', `${prefix}/subnets/${b.key}`]);
    await rec.waitFor((e) => e.length >= 5);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.summary()).toEqual([
      `snapshot:${peer0.key}`,
      `added:${a.key}`,
      `added:${b.key}`,
      `changed:${a.key}`,
      `removed:${b.key}`,
    ]);
    const changed = rec.events[3];
    expect(changed?.kind === 'changed' && changed.lease.attrs.backendData).toEqual({ VNI: 9 });
    const snap = rec.events[0];
    expect(snap?.kind === 'snapshot' && snap.leases[0]?.attrs.backendType).toBe('host-gw');
    const added = rec.events[2];
    expect(added?.kind === 'added' && added.lease.attrs.backendType).toBe('');
  });

  it('loses no event across an etcd restart', async () => {
    if (!etcd.controllable) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    const prefix = etcd.prefix('restart');
    await putConfig(etcd, prefix, CONFIG);
    const me = managers.make(prefix);
    const p1 = await me.acquireLease(attrs(11, { backendType: 'host-gw' })); // no expiry in this test
    const rec = watch(me, null);
    await rec.waitFor((e) => e.length >= 1);
    await put(prefix, '10.5.201.0-24', encodeLeaseAttrs(attrs(21)));
    await rec.waitFor((e) => e.length >= 2);
    await etcd.kill();
    await etcd.start();
    // Written before the watch has reconnected: it must resume from its last revision and see them.
    await put(prefix, '10.5.202.0-24', encodeLeaseAttrs(attrs(22)));
    await put(prefix, '10.5.203.0-24', encodeLeaseAttrs(attrs(23)));
    await etcd.etcdctl(['del', `${prefix}/subnets/10.5.201.0-24`]);
    await rec.waitFor((e) => e.length >= 5, 20_000);
    expect(rec.summary()).toEqual([
      `snapshot:${p1.key}`,
      'added:10.5.201.0-24',
      'added:10.5.202.0-24',
      'added:10.5.203.0-24',
      'removed:10.5.201.0-24',
    ]);
  });

  it('resumes from its last revision after a disconnect: every intermediate event arrives', async () => {
    const url = new URL(etcd.endpoints[0]!);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    await proxy.start();
    stops.push(() => proxy.stop());
    const prefix = etcd.prefix('resume');
    await putConfig(etcd, prefix, CONFIG);
    await put(prefix, '10.5.1.0-24', encodeLeaseAttrs(attrs(1)));
    const me = managers.make(prefix, { endpoints: [proxy.endpoint] });
    const rec = watch(me, null);
    await rec.waitFor((e) => e.length >= 1);
    proxy.disconnect();
    await put(prefix, '10.5.2.0-24', encodeLeaseAttrs(attrs(2)));
    await etcd.etcdctl(['del', `${prefix}/subnets/10.5.2.0-24`]);
    await put(prefix, '10.5.3.0-24', encodeLeaseAttrs(attrs(3)));
    proxy.reconnect();
    await rec.waitFor((e) => e.length >= 4, 20_000);
    expect(rec.summary()).toEqual([
      'snapshot:10.5.1.0-24',
      'added:10.5.2.0-24',
      'removed:10.5.2.0-24',
      'added:10.5.3.0-24',
    ]);
  });

  it('after compaction past its revision it re-lists and emits the right diff', async () => {
    const url = new URL(etcd.endpoints[0]!);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    await proxy.start();
    stops.push(() => proxy.stop());
    const prefix = etcd.prefix('compact');
    await putConfig(etcd, prefix, CONFIG);
    await put(prefix, '10.5.1.0-24', encodeLeaseAttrs(attrs(1)));
    await put(prefix, '10.5.2.0-24', encodeLeaseAttrs(attrs(2)));
    await put(prefix, '10.5.3.0-24', encodeLeaseAttrs(attrs(3)));
    const me = managers.make(prefix, { endpoints: [proxy.endpoint] });
    const rec = watch(me, null);
    await rec.waitFor((e) => e.length >= 1);
    proxy.disconnect();
    // While the watch is cut off: remove one, change one, add one, add-and-remove another; compact.
    await etcd.etcdctl(['del', `${prefix}/subnets/10.5.1.0-24`]);
    await put(prefix, '10.5.2.0-24', encodeLeaseAttrs(attrs(2, { backendData: { VNI: 2 } })));
    await put(prefix, '10.5.4.0-24', encodeLeaseAttrs(attrs(4)));
    await put(prefix, '10.5.5.0-24', encodeLeaseAttrs(attrs(5)));
    await etcd.etcdctl(['del', `${prefix}/subnets/10.5.5.0-24`]);
    await etcd.etcdctl(['compact', String(await storeRevision(etcd))]);
    proxy.reconnect();
    await rec.waitFor((e) => e.length >= 4, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(rec.summary()).toEqual([
      'snapshot:10.5.1.0-24,10.5.2.0-24,10.5.3.0-24',
      'removed:10.5.1.0-24',
      'changed:10.5.2.0-24',
      'added:10.5.4.0-24',
    ]);
    const view = new Map<string, Lease>();
    applyLeaseEvents(view, rec.events);
    expect([...view.keys()].sort()).toEqual(['10.5.2.0-24', '10.5.3.0-24', '10.5.4.0-24']);
    expect(view.get('10.5.2.0-24')?.attrs.backendData).toEqual({ VNI: 2 });
    // The watch is live again after the re-list.
    await put(prefix, '10.5.6.0-24', encodeLeaseAttrs(attrs(6)));
    await rec.waitFor((e) => e.length >= 5);
    expect(rec.summary()[4]).toBe('added:10.5.6.0-24');
  });

  it('skips only a garbage value and a garbage key, keeping every valid peer', async () => {
    const prefix = etcd.prefix('garbage');
    await putConfig(etcd, prefix, CONFIG);
    await put(prefix, '10.5.1.0-24', encodeLeaseAttrs(attrs(1)));
    await put(prefix, '10.5.2.0-24', encodeLeaseAttrs(attrs(2, { backendType: 'host-gw' })));
    await put(prefix, '10.5.3.0-24', '{"PublicIP":"not-an-ip"}');
    await put(prefix, 'garbage-key', encodeLeaseAttrs(attrs(4)));
    await put(prefix, '10.5.5.0-24', encodeLeaseAttrs(attrs(5)));
    const log = warnRecorder();
    const me = managers.make(prefix, {}, log);
    const rec = watch(me, null);
    await rec.waitFor((e) => e.length >= 1);
    expect(rec.summary()).toEqual(['snapshot:10.5.1.0-24,10.5.2.0-24,10.5.5.0-24']);
    expect(log.warnings.map((w) => w[1]?.['key']).sort()).toEqual(['10.5.3.0-24', 'garbage-key']);
    // Live: a known peer's value turns to garbage (skipped, peer kept), a bad key, then a valid lease.
    await put(prefix, '10.5.1.0-24', 'not json at all');
    await put(prefix, '10.5.7.0-24x', encodeLeaseAttrs(attrs(7)));
    await put(prefix, '10.5.8.0-24', encodeLeaseAttrs(attrs(8)));
    await rec.waitFor((e) => e.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.summary().slice(1)).toEqual(['added:10.5.8.0-24']);
    const view = new Map<string, Lease>();
    applyLeaseEvents(view, rec.events);
    expect([...view.keys()].sort()).toEqual([
      '10.5.1.0-24',
      '10.5.2.0-24',
      '10.5.5.0-24',
      '10.5.8.0-24',
    ]);
    expect(log.warnings.map((w) => w[1]?.['key'])).toEqual(
      expect.arrayContaining(['10.5.1.0-24', '10.5.7.0-24x']),
    );
  });
});
