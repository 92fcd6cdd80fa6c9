/**
 * The subnet lease manager against a real etcd (issue 3): acquisition at scale, exhaustion, reuse,
 * reservations, renewal without leaking etcd leases, and losing the key.
 */
import { describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { hasCode, isRetryable, type WeftError } from '../../src/errors.js';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import type { Lease } from '../../src/lease/lease.js';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopChild } from '../helpers/exec.js';
import { attrs, etcdLeaseCount, etcdLeaseIds, putConfig, useSubnetEtcd } from './subnet-helpers.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('subnet lease manager over etcd', () => {
  const { etcd, managers } = useSubnetEtcd();

  it('200 hosts acquiring at once get 200 distinct subnets with zero errors', async () => {
    const prefix = etcd.prefix('stampede');
    await putConfig(etcd, prefix, {
      Network: '10.5.0.0/16',
      SubnetLen: 24,
      Backend: { Type: 'vxlan' },
    });
    const hosts = Array.from({ length: 200 }, () => managers.make(prefix));
    const started = Date.now();
    const results = await Promise.allSettled(hosts.map((m, i) => m.acquireLease(attrs(i + 1))));
    const elapsed = Date.now() - started;
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const leases = results.map((r) => (r as PromiseFulfilledResult<Lease>).value);
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(200);
    const keys = (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/subnets/`]))
      .split('\n')
      .filter(Boolean);
    expect(keys).toHaveLength(200);
    expect(new Set(keys).size).toBe(200);
    for (const l of leases) expect(l.subnet).toMatch(/^10\.5\.\d+\.0\/24$/);
    expect(elapsed).toBeLessThan(20_000);
  });

  it('100 dual-stack hosts acquiring at once share no IPv4 and no IPv6 subnet', async () => {
    // The key names both subnets: two hosts that pick one IPv4 subnet with different IPv6 ones create
    // two keys, and etcd's create-if-absent alone lets both succeed (local-manager.ts: createdLater).
    const prefix = etcd.prefix('stampede-dual');
    await putConfig(etcd, prefix, {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'vxlan' },
    });
    const hosts = Array.from({ length: 100 }, () => managers.make(prefix));
    const results = await Promise.allSettled(hosts.map((m, i) => m.acquireLease(attrs(i + 1))));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const leases = results.map((r) => (r as PromiseFulfilledResult<Lease>).value);
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(100);
    expect(new Set(leases.map((l) => l.subnet6)).size).toBe(100);
    const keys = (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/subnets/`]))
      .split('\n')
      .filter(Boolean);
    expect(keys).toHaveLength(100);
  });

  it('exhaustion of a small network is a clear E_LEASE_EXHAUSTED', async () => {
    const prefix = etcd.prefix('exhaust');
    await putConfig(etcd, prefix, { Network: '10.9.0.0/28', Backend: { Type: 'vxlan' } }); // 3 subnets of /30
    await etcd.etcdctl(['put', `${prefix}/subnets/10.9.0.4-30`, encodeLeaseAttrs(attrs(200))]);
    const m = managers.make(prefix);
    await m.acquireLease(attrs(1));
    await m.acquireLease(attrs(2));
    const err = (await m.acquireLease(attrs(3)).catch((e: unknown) => e)) as WeftError;
    expect(hasCode(err, 'E_LEASE_EXHAUSTED')).toBe(true);
    expect(err.message).toBe('no free subnet in 10.9.0.0/28 (2 leased, 1 reserved)');
  });

  it('reuses the lease of our PublicIP after a restart, without a new etcd lease', async () => {
    const prefix = etcd.prefix('reuse-ip');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const first = await managers.make(prefix, { ttlSeconds: 60 }).acquireLease(attrs(1));
    await managers.closeAll();
    const leasesBefore = await etcdLeaseCount(etcd);
    const again = await managers
      .make(prefix, { ttlSeconds: 60 })
      .acquireLease(attrs(1, { backendData: { VNI: 1 } }));
    expect(again.key).toBe(first.key);
    expect(await etcdLeaseCount(etcd)).toBe(leasesBefore);
    expect(
      await etcd.etcdctl(['get', '--print-value-only', `${prefix}/subnets/${first.key}`]),
    ).toContain('"BackendData":{"VNI":1}');
  });

  it('reuses the previous subnet (subnet.env) when it is free', async () => {
    const prefix = etcd.prefix('reuse-prev');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix);
    const lease = await m.acquireLease(attrs(7), { previousSubnet: '10.5.77.1/24' });
    expect(lease.subnet).toBe('10.5.77.0/24');
    const other = await m.acquireLease(attrs(8), { previousSubnet: '10.5.77.1/24' });
    expect(other.subnet).not.toBe('10.5.77.0/24');
  });

  it('of several keys naming our PublicIP (etcd restored from an older backup) reuses the one subnet.env names', async () => {
    const prefix = etcd.prefix('reuse-two');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    // The backup's key: this host's subnet when the backup was taken, under a store lease.
    const old = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(7), { previousSubnet: '10.5.3.1/24' });
    expect(old.key).toBe('10.5.3.0-24');
    // The subnet the host has used since (its containers are numbered in it), re-created after the
    // restore by its running weftd, also under a store lease.
    const id = /lease ([0-9a-f]+) granted/.exec(await etcd.etcdctl(['lease', 'grant', '600']))![1]!;
    await etcd.etcdctl([
      'put',
      `--lease=${id}`,
      `${prefix}/subnets/10.5.7.0-24`,
      encodeLeaseAttrs(attrs(7)),
    ]);
    await managers.closeAll();
    // weftd restarts: subnet.env says 10.5.7.0/24. Renumbering its containers would cut them off.
    const again = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(7), { previousSubnet: '10.5.7.1/24' });
    expect(again.key).toBe('10.5.7.0-24');
    expect(again.subnet).toBe('10.5.7.0/24');
  });

  it('reusing our key held under a store lease of another TTL moves it to ours without deleting it', async () => {
    // E.g. weftd restarted with another --subnet-lease-ttl, or a flannel node's key taken over. The
    // old store lease used to be revoked first, which deleted the key (a new create revision) and left
    // the subnet open to any other host until it was written again.
    const prefix = etcd.prefix('reuse-ttl');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const id = /lease ([0-9a-f]+) granted/.exec(await etcd.etcdctl(['lease', 'grant', '900']))![1]!;
    const key = `${prefix}/subnets/10.5.9.0-24`;
    await etcd.etcdctl(['put', `--lease=${id}`, key, encodeLeaseAttrs(attrs(7))]);
    const created = async (): Promise<string | undefined> =>
      /"create_revision":(\d+)/.exec(await etcd.etcdctl(['get', key, '-w', 'json']))?.[1];
    const before = await created();
    expect(before).toBeDefined();
    const lease = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(7), { previousSubnet: '10.5.9.1/24' });
    expect(lease.key).toBe('10.5.9.0-24');
    expect(await created()).toBe(before);
    // the old store lease is gone, the key lives under the new one
    expect(await etcd.etcdctl(['lease', 'timetolive', id])).toMatch(/already expired|not found/);
  });

  it('a changed public IP takes back the previous subnet only under the etcd lease recorded for it', async () => {
    const prefix = etcd.prefix('moved-ip');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const ids = new Map<string, string | null>();
    const onAcquired = (key: string, leaseId: string | null): void => void ids.set(key, leaseId);
    const ours = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(1), { previousSubnet: '10.5.40.1/24', onAcquired });
    const theirs = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(2), { previousSubnet: '10.5.41.1/24', onAcquired });
    expect([ours.key, theirs.key]).toEqual(['10.5.40.0-24', '10.5.41.0-24']);
    const ourId = ids.get(ours.key)!;
    expect(ourId).toMatch(/^\d+$/);
    await managers.closeAll();
    const value = async (key: string): Promise<string> =>
      etcd.etcdctl(['get', '--print-value-only', `${prefix}/subnets/${key}`]);
    // Our etcd lease does not make another host's key ours (a subnet.env naming its subnet).
    const stranger = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(12), { previousSubnet: '10.5.41.1/24', previousLeaseId: ourId });
    expect(stranger.key).not.toBe('10.5.41.0-24');
    expect(await value('10.5.41.0-24')).toContain('"PublicIP":"198.18.0.2"');
    // This host, restarted with a new address: its key and its etcd lease, the new PublicIP.
    const leasesBefore = await etcdLeaseCount(etcd);
    const moved = await managers
      .make(prefix, { ttlSeconds: 600 })
      .acquireLease(attrs(11), { previousSubnet: '10.5.40.1/24', previousLeaseId: ourId });
    expect(moved.key).toBe('10.5.40.0-24');
    expect(await value('10.5.40.0-24')).toContain('"PublicIP":"198.18.0.11"');
    expect(await etcdLeaseCount(etcd)).toBe(leasesBefore);
  });

  it('honours a reservation: never handed to another host, used by the host it names', async () => {
    const prefix = etcd.prefix('reserve');
    await putConfig(etcd, prefix, { Network: '10.9.0.0/28', Backend: { Type: 'vxlan' } });
    await etcd.etcdctl(['put', `${prefix}/subnets/10.9.0.8-30`, encodeLeaseAttrs(attrs(42))]);
    const m = managers.make(prefix);
    const a = await m.acquireLease(attrs(1));
    const b = await m.acquireLease(attrs(2));
    expect([a.subnet, b.subnet].sort()).toEqual(['10.9.0.12/30', '10.9.0.4/30']);
    const mine = await managers.make(prefix).acquireLease(attrs(42, { backendType: 'host-gw' }));
    expect(mine).toMatchObject({ key: '10.9.0.8-30', expiration: null });
    // Still a reservation (no etcd lease), now with our attributes.
    const json = JSON.parse(
      await etcd.etcdctl(['get', `${prefix}/subnets/10.9.0.8-30`, '-w', 'json']),
    ) as {
      kvs: Array<{ lease?: number; value: string }>;
    };
    expect(json.kvs[0]!.lease ?? 0).toBe(0);
    expect(Buffer.from(json.kvs[0]!.value, 'base64').toString()).toContain(
      '"BackendType":"host-gw"',
    );
  });

  it('renewal keeps the key alive across several TTLs with no growth in etcd leases', async () => {
    const prefix = etcd.prefix('renew');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, { ttlSeconds: 2, renewMarginSeconds: 1 });
    const lease = await m.acquireLease(attrs(1));
    const baseline = await etcdLeaseCount(etcd);
    const ac = new AbortController();
    const renewals: Lease[] = [];
    const keeping = m.keepLease(lease, ac.signal, (l) => renewals.push(l));
    try {
      for (let i = 0; i < 7; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        expect(
          await etcd.etcdctl(['get', '--keys-only', `${prefix}/subnets/${lease.key}`]),
        ).toContain(lease.key);
      }
      expect(await etcdLeaseCount(etcd)).toBe(baseline);
      expect(renewals.length).toBeGreaterThanOrEqual(5);
      expect(m.stats.recreations).toBe(0);
    } finally {
      ac.abort();
      await keeping;
    }
  });

  it('a key deleted by hand is re-created with the same subnet', async () => {
    const prefix = etcd.prefix('deleted');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, { ttlSeconds: 30 });
    const lease = await m.acquireLease(attrs(1));
    const ac = new AbortController();
    const keeping = m.keepLease(lease, ac.signal);
    try {
      await new Promise((r) => setTimeout(r, 300));
      await etcd.etcdctl(['del', `${prefix}/subnets/${lease.key}`]);
      const deadline = Date.now() + 5000;
      let value = '';
      while (Date.now() < deadline && !value.includes('198.18.0.1')) {
        await new Promise((r) => setTimeout(r, 100));
        value = await etcd.etcdctl(['get', '--print-value-only', `${prefix}/subnets/${lease.key}`]);
      }
      expect(value).toContain('"PublicIP":"198.18.0.1"');
      expect(m.stats.recreations).toBe(1);
    } finally {
      ac.abort();
      await keeping;
    }
  });

  it('a lease that expired (e.g. during an outage) is re-created with the same subnet and one new etcd lease', async () => {
    const prefix = etcd.prefix('expired');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, { ttlSeconds: 2, renewMarginSeconds: 1 });
    const owners: (string | null)[] = [];
    const lease = await m.acquireLease(attrs(1), { onAcquired: (_k, id) => owners.push(id) });
    await new Promise((r) => setTimeout(r, 3500)); // nobody renews: etcd drops lease and key
    const before = await etcdLeaseIds(etcd);
    expect(await etcd.etcdctl(['get', '--keys-only', `${prefix}/subnets/${lease.key}`])).toBe('');
    const ac = new AbortController();
    const renewed: Lease[] = [];
    const keeping = m.keepLease({ ...lease, expiration: new Date() }, ac.signal, (l) =>
      renewed.push(l),
    );
    try {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && renewed.length === 0)
        await new Promise((r) => setTimeout(r, 100));
      expect(renewed[0]?.key).toBe(lease.key);
      expect(
        await etcd.etcdctl(['get', '--print-value-only', `${prefix}/subnets/${lease.key}`]),
      ).toContain('198.18.0.1');
      expect(m.stats.recreations).toBe(1);
      // Exactly one etcd lease was granted, and it is the one holding our key.
      const granted = [...(await etcdLeaseIds(etcd))].filter((id) => !before.has(id));
      // etcd prints int64 lease IDs as JSON numbers: read the digits, not a lossy JS number.
      const raw = await etcd.etcdctl(['get', `${prefix}/subnets/${lease.key}`, '-w', 'json']);
      const id = /"lease":(\d+)/.exec(raw)?.[1];
      expect(granted).toEqual([BigInt(id ?? '0').toString(16)]);
      // weftd's ownership record (state dir) is told the new etcd lease
      expect(owners).toHaveLength(2);
      expect(owners[1]).toBe(id);
    } finally {
      ac.abort();
      await keeping;
    }
  });

  it('dual stack: our key gone and one of its subnets leased by another host meanwhile: the keeper yields (E_LEASE_LOST, our re-created key deleted), a restart leases other subnets', async () => {
    // The other host's key names the same IPv4 subnet with another IPv6 one, so re-creating ours
    // succeeds in etcd (another key); before src/subnet/keeper.ts's yieldToEarlier both hosts kept
    // 10.5.x.0/24 and their containers got the same addresses.
    const prefix = etcd.prefix('dual-recreate');
    await putConfig(etcd, prefix, {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'vxlan' },
    });
    const a = managers.make(prefix, { ttlSeconds: 30 });
    const lease = await a.acquireLease(attrs(1));
    expect(lease.subnet6).not.toBeNull();
    await etcd.etcdctl(['del', `${prefix}/subnets/${lease.key}`]);
    const b = managers.make(prefix, { ttlSeconds: 30 });
    const free6 = lease.subnet6 === 'fd05:0:0:ff::/64' ? 'fd05:0:0:fe::/64' : 'fd05:0:0:ff::/64';
    const theirs = await b.acquireLease(attrs(2), {
      previousSubnet: lease.subnet!,
      previousSubnet6: free6,
    });
    expect(theirs.subnet).toBe(lease.subnet);
    expect(theirs.key).not.toBe(lease.key);
    const ac = new AbortController();
    const err = (await Promise.race([
      a.keepLease({ ...lease, expiration: new Date() }, ac.signal).catch((e: unknown) => e),
      new Promise((r) => setTimeout(() => r(new Error('the keeper kept the lease')), 10_000)),
    ])) as WeftError;
    ac.abort();
    expect(hasCode(err, 'E_LEASE_LOST')).toBe(true);
    expect(err.message).toContain(
      `while our key was gone from etcd, host 198.18.0.2 leased ${lease.subnet} (key ${theirs.key}, created first, keeps it)`,
    );
    const keys = (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/subnets/`]))
      .split('\n')
      .filter(Boolean);
    expect(keys).toEqual([`${prefix}/subnets/${theirs.key}`]);
    // weftd restarts (its subnet.env still names the old subnets): it gets others
    const again = await managers.make(prefix).acquireLease(attrs(1), {
      previousSubnet: lease.subnet!,
      previousSubnet6: lease.subnet6!,
    });
    expect(again.subnet).not.toBe(lease.subnet);
    expect(again.subnet6).not.toBe(free6);
  });

  it('dual stack: a stale key of ours that shares a subnet with an earlier key is deleted at start, not reused', async () => {
    // E.g. the keeper gave it up (above) but etcd was unreachable for the delete.
    const prefix = etcd.prefix('dual-stale-own');
    await putConfig(etcd, prefix, {
      Network: '10.5.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd05::/48',
      Backend: { Type: 'vxlan' },
    });
    const theirs = '10.5.7.0-24&fd05:0:0:7::-64';
    const ours = '10.5.7.0-24&fd05:0:0:8::-64';
    await etcd.etcdctl(['put', `${prefix}/subnets/${theirs}`, encodeLeaseAttrs(attrs(2))]);
    const id = /lease ([0-9a-f]+) granted/.exec(
      await etcd.etcdctl(['lease', 'grant', '86400']),
    )?.[1];
    await etcd.etcdctl([
      'put',
      `--lease=${id}`,
      `${prefix}/subnets/${ours}`,
      encodeLeaseAttrs(attrs(1)),
    ]);
    const lease = await managers.make(prefix).acquireLease(attrs(1), {
      previousSubnet: '10.5.7.0/24',
      previousSubnet6: 'fd05:0:0:8::/64',
    });
    expect(lease.subnet).not.toBe('10.5.7.0/24');
    expect(lease.subnet6).not.toBe('fd05:0:0:8::/64');
    const keys = (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/subnets/`]))
      .split('\n')
      .filter(Boolean)
      .sort();
    expect(keys).toEqual([`${prefix}/subnets/${lease.key}`, `${prefix}/subnets/${theirs}`].sort());
  });

  it('EnableIPv6 turned on, then off: a restarted host keeps its IPv4 subnet (with subnet.env and without)', async () => {
    // Before, the lease named by our PublicIP (or subnet.env) was incompatible as a pair, so the host
    // got a random new IPv4 subnet too, and every running container's IPv4 address was cut off.
    const prefix = etcd.prefix('enable-ipv6');
    const v4only = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };
    const dual = { ...v4only, EnableIPv6: true, IPv6Network: 'fd05::/48' };
    const keys = async () =>
      (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${prefix}/subnets/`]))
        .split('\n')
        .filter(Boolean);
    await putConfig(etcd, prefix, v4only);
    const first = await managers.make(prefix).acquireLease(attrs(1));
    const other = await managers.make(prefix).acquireLease(attrs(2));
    expect(first.subnet6).toBeNull();

    await putConfig(etcd, prefix, dual);
    const withEnv = await managers
      .make(prefix)
      .acquireLease({ ...attrs(1), publicIpv6: 'fd18::1' }, { previousSubnet: first.subnet! });
    expect(withEnv.subnet).toBe(first.subnet);
    expect(withEnv.subnet6).toMatch(/^fd05:0:0:[0-9a-f]+::\/64$/);
    expect((await keys()).sort()).toEqual(
      [`${prefix}/subnets/${withEnv.key}`, `${prefix}/subnets/${other.key}`].sort(),
    );
    // no subnet.env: the lease named by our PublicIP is the one kept
    const noEnv = await managers.make(prefix).acquireLease({ ...attrs(2), publicIpv6: 'fd18::2' });
    expect(noEnv.subnet).toBe(other.subnet);
    expect(noEnv.subnet6).not.toBeNull();
    expect(noEnv.subnet6).not.toBe(withEnv.subnet6);

    await putConfig(etcd, prefix, v4only);
    const off = await managers.make(prefix).acquireLease(attrs(1), {
      previousSubnet: withEnv.subnet!,
      previousSubnet6: withEnv.subnet6!,
    });
    expect(off.subnet).toBe(first.subnet);
    expect(off.subnet6).toBeNull();
    expect(off.key).toBe(first.key);
    expect(await keys()).toContain(`${prefix}/subnets/${noEnv.key}`);
    expect(await keys()).not.toContain(`${prefix}/subnets/${withEnv.key}`);
  });

  it('a subnet taken by another host rejects keepLease with E_LEASE_LOST', async () => {
    const prefix = etcd.prefix('stolen');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, { ttlSeconds: 30 });
    const lease = await m.acquireLease(attrs(1));
    const ac = new AbortController();
    // Caught at once: the keeper may reject before etcdctl's own exit is seen.
    const keeping = m.keepLease(lease, ac.signal).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    await etcd.etcdctl(['put', `${prefix}/subnets/${lease.key}`, encodeLeaseAttrs(attrs(9))]);
    const err = (await keeping) as WeftError;
    ac.abort();
    expect(hasCode(err, 'E_LEASE_LOST')).toBe(true);
    expect(err.message).toMatch(/lost: the key is now held by host 198\.18\.0\.9/);
  });

  it('a subnet taken by another host under its own etcd lease: E_LEASE_LOST, our etcd lease revoked, theirs untouched, a restart leases another subnet', async () => {
    const prefix = etcd.prefix('stolen-leased');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const before = await etcdLeaseIds(etcd);
    const m = managers.make(prefix, { ttlSeconds: 30 });
    const lease = await m.acquireLease(attrs(1));
    const ours = [...(await etcdLeaseIds(etcd))].filter((id) => !before.has(id));
    expect(ours).toHaveLength(1);
    const ac = new AbortController();
    // Caught at once: the keeper may reject before etcdctl's own exit is seen.
    const keeping = m.keepLease(lease, ac.signal).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const theirs = /lease ([0-9a-f]+) granted/.exec(
      await etcd.etcdctl(['lease', 'grant', '60']),
    )?.[1];
    expect(theirs).toBeDefined();
    const key = `${prefix}/subnets/${lease.key}`;
    const value = encodeLeaseAttrs(attrs(9));
    await etcd.etcdctl(['put', `--lease=${theirs}`, key, value]);
    const err = (await keeping) as WeftError;
    ac.abort();
    expect(hasCode(err, 'E_LEASE_LOST')).toBe(true);
    const now = await etcdLeaseIds(etcd);
    expect(now.has(ours[0]!)).toBe(false); // ours revoked: nothing of ours lingers in etcd
    expect(now.has(BigInt(`0x${theirs}`).toString(16))).toBe(true);
    expect(await etcd.etcdctl(['get', '--print-value-only', key])).toBe(`${value}\n`);
    // weftd restarted with the lost subnet still in subnet.env: another subnet, theirs left alone
    const again = await managers
      .make(prefix, { ttlSeconds: 30 })
      .acquireLease(attrs(1), { previousSubnet: lease.subnet });
    expect(again.key).not.toBe(lease.key);
    expect(await etcd.etcdctl(['get', '--print-value-only', key])).toBe(`${value}\n`);
  });

  it('a missing config is E_CONFIG_NOT_FOUND', async () => {
    const m = managers.make(etcd.prefix('noconfig'));
    expect(hasCode(await m.getNetworkConfig().catch((e: unknown) => e), 'E_CONFIG_NOT_FOUND')).toBe(
      true,
    );
  });

  it('a process that aborts and closes exits by itself (no etcd client timers or sockets left)', async () => {
    const prefix = etcd.prefix('exit');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const script = fileURLToPath(new URL('./subnet-fixtures/exit-check.ts', import.meta.url));
    const child = spawnTracked(process.execPath, [
      '--import',
      'tsx',
      script,
      etcd.endpoints[0]!,
      prefix,
    ]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const timer = setTimeout(() => void stopChild(child, 100), 20_000);
    const code = await exited;
    clearTimeout(timer);
    expect(out).toContain('closed');
    expect(code, out).toBe(0);
  });

  it('keeps the lease through an etcd restart: same key, same etcd lease, no E_LEASE_LOST', async () => {
    if (!etcd.controllable) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    const prefix = etcd.prefix('outage');
    await putConfig(etcd, prefix, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    const m = managers.make(prefix, {
      ttlSeconds: 4,
      renewMarginSeconds: 2,
      requestTimeoutMs: 1000,
    });
    const lease = await m.acquireLease(attrs(1));
    // etcd prints int64 lease IDs as JSON numbers: read the digits, not a lossy JS number.
    const leaseIdOf = async (): Promise<string | undefined> =>
      /"lease":(\d+)/.exec(
        await etcd.etcdctl(['get', `${prefix}/subnets/${lease.key}`, '-w', 'json']),
      )?.[1];
    const before = await leaseIdOf();
    expect(before).toMatch(/^\d+$/);
    const ac = new AbortController();
    let outcome: unknown = 'running';
    const keeping = m.keepLease(lease, ac.signal).then(
      () => (outcome = 'resolved'),
      (e: unknown) => (outcome = e),
    );
    try {
      await new Promise((r) => setTimeout(r, 500));
      await etcd.kill();
      await new Promise((r) => setTimeout(r, 3000)); // spans the renewal due ~2 s after acquiring
      await etcd.start();
      await new Promise((r) => setTimeout(r, 5000)); // more than one TTL after the restart
      expect(outcome).toBe('running');
      expect(await leaseIdOf()).toBe(before);
      expect(m.stats.recreations).toBe(0);
      expect(m.stats.renewFailures).toBeGreaterThan(0); // counted (weft_lease_renew_failures_total)
      expect(m.stats.renewals).toBeGreaterThan(0); // and renewed again once etcd was back
    } finally {
      ac.abort();
      await keeping;
    }
  });

  it('an unreachable etcd fails within the request timeout as a retryable E_ETCD_UNAVAILABLE', async () => {
    const m = managers.make(etcd.prefix('unreachable'), {
      endpoints: ['http://127.0.0.1:1'],
      requestTimeoutMs: 500,
    });
    const started = Date.now();
    const err = await m.getNetworkConfig().catch((e: unknown) => e);
    expect(hasCode(err, 'E_ETCD_UNAVAILABLE')).toBe(true);
    expect(isRetryable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
