/**
 * The generic peer loop's incremental path (on the recording FakeNetlink through the netlink sink): one
 * lease event plans that one lease once and touches only its entries (no scan of the other peers);
 * removal goes through one batched delete; a removed lease keeps its entries for the removal grace — a
 * lease that comes straight back costs no kernel call, one that comes back different is changed in
 * place (replace, never delete + add), and one that really left is gone when the grace ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { netlinkSink } from '../../src/backend/netlink-sink.js';
import type { PeerEntries } from '../../src/backend/peer-entries.js';
import { PeerLoop } from '../../src/backend/peer-loop.js';
import type { LeasePlan } from '../../src/backend/peer-plan.js';
import type { Lease, LeaseAttrs } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import { MemorySubnets, testNetworkConfig } from '../integration/backend-memory-subnets.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));
const DEV = 5;
const attrs = (mac: string): LeaseAttrs => ({
  publicIp: '198.18.0.9',
  publicIpv6: null,
  backendType: 'fake',
  backendData: { mac },
});

/** A vxlan-shaped planner (neighbour + FDB + route) that counts its calls per lease. */
function countingPlanner(): {
  plan: (l: Lease) => LeasePlan<PeerEntries>;
  calls: Map<string, number>;
} {
  const calls = new Map<string, number>();
  const plan = (l: Lease): LeasePlan<PeerEntries> => {
    calls.set(l.key, (calls.get(l.key) ?? 0) + 1);
    const mac = (l.attrs.backendData as { mac: string }).mac;
    const gw = l.subnet!.split('/')[0]!;
    return {
      entries: [
        {
          key: `${l.key}/4`,
          subnet: l.subnet!,
          neigh: { ifindex: DEV, dst: gw, mac },
          fdb: { ifindex: DEV, mac, dst: l.attrs.publicIp },
          route: { dst: l.subnet!, gateway: gw, oif: DEV, onlink: true },
        },
      ],
      refused: [],
    };
  };
  return { plan, calls };
}

describe('peer loop: incremental work and the removal grace', () => {
  let ac: AbortController | null = null;
  let done: Promise<void> = Promise.resolve();
  afterEach(async () => {
    ac?.abort();
    await done;
    ac = null;
  });

  async function start(peers: number, removalGraceMs: number, relistRemovalGraceMs?: number) {
    const fake = new FakeNetlink();
    fake.addLink('weft.1', { index: DEV }); // the kernel refuses entries on a missing device
    const subnets = new MemorySubnets(testNetworkConfig('fake'));
    for (let n = 2; n < 2 + peers; n++)
      subnets.put(
        subnets.leaseFor(
          n,
          attrs(
            `0e:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
          ),
        ),
      );
    const { plan, calls } = countingPlanner();
    const base = netlinkSink(fake, {
      ensureReady: async () => {},
      readKernel: async () => ({
        routes: [...fake.routes.values()],
        neighs: [...fake.neighs.values()],
        fdb: [...fake.fdb.values()],
      }),
    });
    // counts claim look-ups: an event must not walk every programmed peer's claims
    const claimCalls = { n: 0 };
    const sink = { ...base, claims: (e: PeerEntries) => (claimCalls.n++, base.claims(e)) };
    const loop = new PeerLoop({
      subnets: subnets.manager(),
      ownLease: subnets.leaseFor(1, attrs('0e:00:00:00:00:01')),
      plan,
      sink,
      log: nullLogger,
      resyncMs: 3_600_000,
      removalGraceMs,
      ...(relistRemovalGraceMs !== undefined ? { relistRemovalGraceMs } : {}),
    });
    ac = new AbortController();
    done = loop.run(ac.signal);
    await tick();
    return { fake, subnets, calls, loop, claimCalls };
  }

  it('one added or removed lease among 200: planned once, only its entries touched, removal batched', async () => {
    const { fake, subnets, calls, loop, claimCalls } = await start(200, 0);
    expect(fake.routes.size).toBe(200);
    expect(loop.peerCount).toBe(200);
    calls.clear();
    fake.calls.length = 0;
    claimCalls.n = 0;
    subnets.put(subnets.leaseFor(250, attrs('0e:00:00:00:00:fa')));
    await tick();
    expect([...calls]).toEqual([['10.5.250.0-24', 1]]);
    expect(claimCalls.n).toBeLessThan(5);
    expect(fake.calls.filter((c) => !c.startsWith('applyBatch'))).toEqual([
      'neighReplace 10.5.250.0 0e:00:00:00:00:fa',
      'fdbReplace 0e:00:00:00:00:fa 198.18.0.9',
      'routeReplace 10.5.250.0/24',
    ]);
    calls.clear();
    fake.calls.length = 0;
    claimCalls.n = 0;
    subnets.remove('10.5.7.0-24');
    await tick();
    expect(calls.size).toBe(0);
    expect(claimCalls.n).toBeLessThan(5);
    expect(fake.calls).toEqual([
      'applyBatch 1',
      'routeDelete 10.5.7.0/24',
      'applyBatch 1',
      'fdbDelete 0e:00:00:00:00:07 198.18.0.9',
      'applyBatch 1',
      'neighDelete 10.5.7.0',
    ]);
    expect(fake.routes.size).toBe(200);
    expect(loop.peerCount).toBe(200);
  });

  it('a lease deleted and re-created within the grace costs no kernel call', async () => {
    const { fake, subnets } = await start(2, 300);
    const l = subnets.leases.get('10.5.2.0-24')!;
    fake.calls.length = 0;
    subnets.remove(l.key);
    await tick(30);
    subnets.put({ ...l, expiration: new Date(Date.now() + 86_400_000) });
    await tick(400);
    expect(fake.calls).toEqual([]);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
  });

  it('a lease re-created different within the grace is changed in place, never deleted first', async () => {
    const { fake, subnets } = await start(2, 300);
    const l = subnets.leases.get('10.5.2.0-24')!;
    fake.calls.length = 0;
    subnets.remove(l.key);
    await tick(30);
    subnets.put({ ...l, attrs: attrs('0e:00:00:00:00:aa') });
    await tick(400);
    const peerCalls = fake.calls.filter((c) => !c.startsWith('applyBatch'));
    expect(peerCalls).toEqual([
      'neighReplace 10.5.2.0 0e:00:00:00:00:aa',
      'fdbReplace 0e:00:00:00:00:aa 198.18.0.9',
      'routeReplace 10.5.2.0/24',
      'fdbDelete 0e:00:00:00:00:02 198.18.0.9',
    ]);
    expect(fake.neighs.get(`${DEV}|10.5.2.0`)?.mac).toBe('0e:00:00:00:00:aa');
  });

  it('a lease that really left is gone when the grace ends (and not before)', async () => {
    const { fake, subnets, loop } = await start(2, 300);
    subnets.remove('10.5.2.0-24');
    await tick(100);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    await tick(350);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(false);
    expect(fake.neighs.has(`${DEV}|10.5.2.0`)).toBe(false);
    expect(fake.fdb.size).toBe(1);
    expect(loop.peerCount).toBe(1);
  });

  it('a lease only missing from a re-list (etcd reset) waits the longer grace, capped by its expiration', async () => {
    const { fake, subnets, loop } = await start(3, 50, 400);
    const l = subnets.leases.get('10.5.2.0-24')!;
    const soon = { ...subnets.leases.get('10.5.3.0-24')!, expiration: new Date(Date.now() + 200) };
    await loop.apply([
      { kind: 'removed', lease: l, relisted: true },
      { kind: 'removed', lease: soon, relisted: true },
    ]);
    await tick(150);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    expect(fake.routes.has('254|10.5.3.0/24')).toBe(true);
    await tick(150); // past its lease's own expiration
    expect(fake.routes.has('254|10.5.3.0/24')).toBe(false);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    await tick(200);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(false);
  });

  it('a full reconcile during the grace keeps the entries; the grace still removes them', async () => {
    const { fake, subnets, loop } = await start(2, 300);
    subnets.remove('10.5.2.0-24');
    await tick(30);
    await loop.requestReconcile('test');
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(true);
    await tick(400);
    expect(fake.routes.has('254|10.5.2.0/24')).toBe(false);
  });
});
