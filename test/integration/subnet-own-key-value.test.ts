/**
 * Our lease key's value changed in place, under our own store lease (`etcdctl put --ignore-lease`, a
 * stale agent on this host, a bad script): the key still names our PublicIP and our etcd lease, but
 * advertises another VtepMAC / BackendData, so every peer programs a wrong entry for this host. The
 * keeper must write our value back at once (its own-key watch wakes it), not only count a renewal.
 */
import { describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { waitFor } from '../helpers/exec.js';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import { attrs, etcdLeaseCount, putConfig, useSubnetEtcd } from './subnet-helpers.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('keeping our lease when its value is changed in place', () => {
  const { etcd, managers } = useSubnetEtcd();

  it('a changed value under our own store lease is written back with ours, same key, same etcd lease', async () => {
    const prefix = etcd.prefix('ownvalue');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, { ttlSeconds: 3600, renewMarginSeconds: 60 });
    const mine = attrs(1, { backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:01' } });
    const lease = await m.acquireLease(mine);
    const key = `${prefix}/subnets/${lease.key}`;
    const ours = await etcd.etcdctl(['get', '--print-value-only', key]);
    const leasesBefore = await etcdLeaseCount(etcd);
    const ac = new AbortController();
    const keeping = m.keepLease(lease, ac.signal);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const forged = encodeLeaseAttrs(
        attrs(1, { backendData: { VNI: 1, VtepMAC: '0e:66:66:66:66:66' } }),
      );
      await etcd.etcdctl(['put', '--ignore-lease', key, forged]);
      const value = await waitFor(
        'our value written back',
        async () => {
          const v = await etcd.etcdctl(['get', '--print-value-only', key]);
          return v.trim() === ours.trim() ? v : null;
        },
        5000,
        100,
      );
      expect(value).toContain('0e:00:00:00:00:01');
      // still attached to a store lease (not turned into a reservation), and no extra etcd lease
      const json = JSON.parse(await etcd.etcdctl(['get', key, '-w', 'json'])) as {
        kvs: { lease?: number | string }[];
      };
      expect(Number(json.kvs[0]?.lease ?? 0)).not.toBe(0);
      expect(await etcdLeaseCount(etcd)).toBe(leasesBefore);
    } finally {
      ac.abort();
      await keeping;
    }
  });
});
