import { describe, expect, it } from 'vitest';
import { leftovers, type PeerEntries } from '../../src/backend/peer-entries.js';
import { inScope, planReconcile, type KernelView } from '../../src/backend/reconcile.js';
import type { RouteEntry } from '../../src/netlink/index.js';

const DEV = 7;
const peer = (
  n: number,
  mac = `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`,
): PeerEntries => ({
  key: `10.5.${n}.0-24/4`,
  subnet: `10.5.${n}.0/24`,
  neigh: { ifindex: DEV, dst: `10.5.${n}.0`, mac },
  fdb: { ifindex: DEV, mac, dst: `198.18.0.${n}` },
  route: { dst: `10.5.${n}.0/24`, gateway: `10.5.${n}.0`, oif: DEV, onlink: true },
});
const route = (p: PeerEntries, over: Partial<RouteEntry> = {}): RouteEntry => ({
  family: 4,
  dst: p.route.dst,
  gateway: p.route.gateway ?? null,
  oif: p.route.oif ?? null,
  onlink: p.route.onlink ?? false,
  table: 254,
  protocol: 'STATIC',
  type: 'UNICAST',
  ...over,
});
const kernelOf = (peers: PeerEntries[]): KernelView => ({
  routes: peers.map((p) => route(p)),
  neighs: peers.map((p) => ({
    family: 4,
    ifindex: DEV,
    dst: p.neigh!.dst,
    mac: p.neigh!.mac,
    permanent: true,
  })),
  fdb: peers.map((p) => ({ ...p.fdb!, permanent: true })),
});

describe('planReconcile', () => {
  it('programs every desired peer when the kernel is empty, deletes nothing', () => {
    const plan = planReconcile([peer(1), peer(2)], { routes: [], neighs: [], fdb: [] });
    expect(plan.program.map((p) => p.key)).toEqual(['10.5.1.0-24/4', '10.5.2.0-24/4']);
    expect(plan.stale).toEqual({ routes: [], neighs: [], fdb: [] });
  });

  it('does nothing when the kernel matches', () => {
    const want = [peer(1), peer(2)];
    const plan = planReconcile(want, kernelOf(want));
    expect(plan.program).toEqual([]);
    expect(plan.stale).toEqual({ routes: [], neighs: [], fdb: [] });
  });

  it.each([
    [
      'neighbour MAC differs',
      (k: KernelView) => ({
        ...k,
        neighs: k.neighs.map((n) => ({ ...n, mac: '0e:ff:ff:ff:ff:ff' })),
      }),
    ],
    [
      'neighbour not permanent',
      (k: KernelView) => ({ ...k, neighs: k.neighs.map((n) => ({ ...n, permanent: false })) }),
    ],
    ['FDB entry missing', (k: KernelView) => ({ ...k, fdb: [] })],
    [
      'route gateway differs',
      (k: KernelView) => ({ ...k, routes: k.routes.map((r) => ({ ...r, gateway: '10.9.9.9' })) }),
    ],
    [
      'route not onlink',
      (k: KernelView) => ({ ...k, routes: k.routes.map((r) => ({ ...r, onlink: false })) }),
    ],
    [
      'route on another device',
      (k: KernelView) => ({ ...k, routes: k.routes.map((r) => ({ ...r, oif: 99 })) }),
    ],
  ])('re-programs a peer when its %s', (_name, mutate) => {
    const want = [peer(1)];
    const plan = planReconcile(want, mutate(kernelOf(want)));
    expect(plan.program.map((p) => p.key)).toEqual(['10.5.1.0-24/4']);
    expect(plan.stale.routes).toEqual([]);
    expect(plan.stale.neighs).toEqual([]);
  });

  it('deletes entries no lease wants (a peer that left while weftd was down)', () => {
    const gone = peer(9);
    const plan = planReconcile([peer(1)], kernelOf([peer(1), gone]));
    expect(plan.program).toEqual([]);
    expect(plan.stale.routes.map((r) => r.dst)).toEqual(['10.5.9.0/24']);
    expect(plan.stale.neighs.map((n) => n.dst)).toEqual(['10.5.9.0']);
    expect(plan.stale.fdb).toEqual([{ ifindex: DEV, mac: gone.fdb!.mac, dst: '198.18.0.9' }]);
  });

  it('leaves alone non-permanent neighbours and FDB entries without a destination', () => {
    const plan = planReconcile([], {
      routes: [],
      neighs: [{ family: 4, ifindex: DEV, dst: '10.5.3.0', mac: null, permanent: false }],
      fdb: [{ ifindex: DEV, mac: '0e:00:00:00:00:03', dst: null, permanent: true }],
    });
    expect(plan.stale).toEqual({ routes: [], neighs: [], fdb: [] });
  });

  it('replaces an FDB entry whose remote changed and deletes the old one', () => {
    const moved = { ...peer(1), fdb: { ifindex: DEV, mac: peer(1).fdb!.mac, dst: '198.18.0.100' } };
    const plan = planReconcile([moved], kernelOf([peer(1)]));
    expect(plan.program.map((p) => p.key)).toEqual([moved.key]);
    expect(plan.stale.fdb).toEqual([{ ifindex: DEV, mac: peer(1).fdb!.mac, dst: '198.18.0.1' }]);
  });
});

describe('inScope', () => {
  const scope = {
    devices: [DEV],
    uplink: 2,
    clusters: [{ network: '10.5.0.0/16', subnetLen: 24, ownSubnet: '10.5.1.0/24' }],
  };
  it("keeps an operator's routes on weft's device to non-cluster destinations out of scope", () => {
    const p = peer(3);
    const operator = [
      route(p, { dst: '192.168.77.0/24', gateway: null, onlink: false, protocol: 'BOOT' }),
      route(p, { dst: '10.99.0.0/24', gateway: '10.5.3.0', protocol: 'BOOT' }),
    ];
    const weft = [
      route(p),
      // in the cluster network: a stray route weft removes
      route(p, { dst: '10.5.200.0/24', gateway: null, onlink: false, protocol: 'BOOT' }),
      // weft's shape outside today's network (an earlier network config): still weft's
      route(p, { dst: '10.6.4.0/24', gateway: '10.6.4.0' }),
    ];
    const got = inScope({ routes: [...operator, ...weft], neighs: [], fdb: [] }, scope);
    expect(got.routes).toEqual(weft);
    expect(planReconcile([p], got).stale.routes.map((r) => r.dst)).toEqual([
      '10.5.200.0/24',
      '10.6.4.0/24',
    ]);
  });
});

describe('leftovers', () => {
  it('after a VTEP MAC change only the old FDB entry is left over', () => {
    const before = [peer(1, '0e:00:00:00:00:01')];
    const after = [peer(1, '0e:00:00:00:00:aa')];
    expect(leftovers(before, after)).toEqual({
      routes: [],
      neighs: [],
      fdb: [{ ifindex: DEV, mac: '0e:00:00:00:00:01', dst: '198.18.0.1' }],
    });
  });

  it('everything is left over when nothing is wanted any more', () => {
    const s = leftovers([peer(1)], []);
    expect(s.routes).toHaveLength(1);
    expect(s.neighs).toHaveLength(1);
    expect(s.fdb).toHaveLength(1);
  });
});
