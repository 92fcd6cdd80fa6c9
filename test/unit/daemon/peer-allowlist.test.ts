import { describe, expect, it, vi } from 'vitest';
import {
  PeerAllowlist,
  peerAddresses,
  tapLeaseEvents,
  type AllowlistScope,
} from '../../../src/daemon/peer-allowlist.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import type { Lease, LeaseEvent } from '../../../src/lease/lease.js';
import type { SubnetManager } from '../../../src/subnet/manager.js';

const lease = (
  key: string,
  subnet: string | null,
  publicIp: string,
  over: Partial<Lease['attrs']> & { subnet6?: string | null } = {},
): Lease => ({
  key,
  subnet,
  subnet6: over.subnet6 ?? null,
  attrs: { publicIp, publicIpv6: null, backendType: 'vxlan', ...over },
  expiration: null,
});

const own = lease('10.5.1.0-24', '10.5.1.0/24', '198.18.0.1', { subnet6: 'fd05:0:0:1::/64' });
const scope = (type = 'vxlan', dual = false): AllowlistScope => ({
  config: parseNetworkConfig({
    Network: '10.5.0.0/16',
    ...(dual ? { EnableIPv6: true, IPv6Network: 'fd05::/48' } : {}),
    Backend: { Type: type },
  }),
  uplink: {
    name: 'eth0',
    index: 2,
    mtu: 1500,
    ifaceAddr: '198.18.0.1',
    ifaceAddr6: 'fd18::1',
    publicIp: '198.18.0.1',
    publicIpv6: 'fd18::1',
  },
  own,
});

describe('peer allowlist', () => {
  it('takes the public IPs of leases that pass the backend peer checks', () => {
    expect(peerAddresses(lease('a', '10.5.2.0/24', '198.18.0.2'), scope())).toEqual({
      v4: ['198.18.0.2'],
      v6: [],
    });
    const refused: Lease[] = [
      lease('other type', '10.5.2.0/24', '198.18.0.2', { backendType: 'host-gw' }),
      lease('outside', '10.6.2.0/24', '198.18.0.2'),
      lease('wrong length', '10.5.2.0/25', '198.18.0.2'),
      lease('overlaps ours', '10.5.1.0/24', '198.18.0.2'),
      lease('our own address', '10.5.2.0/24', '198.18.0.1'),
      lease('multicast', '10.5.2.0/24', '224.0.0.1'),
      lease('no v4 address', '10.5.2.0/24', '0.0.0.0'),
      lease('garbage', '10.5.2.0/24', 'not-an-ip'),
    ];
    for (const l of refused) expect(peerAddresses(l, scope()), l.key).toEqual({ v4: [], v6: [] });
  });

  it("flannel's UDP leases carry no backend type; IPv6 addresses go to the v6 set", () => {
    expect(
      peerAddresses(lease('u', '10.5.2.0/24', '198.18.0.2', { backendType: '' }), scope('udp')).v4,
    ).toEqual(['198.18.0.2']);
    const dual = lease('d', '10.5.2.0/24', '198.18.0.2', {
      subnet6: 'fd05:0:0:2::/64',
      publicIpv6: 'fd18::2',
    });
    expect(peerAddresses(dual, scope('vxlan', true))).toEqual({
      v4: ['198.18.0.2'],
      v6: ['fd18::2'],
    });
    // IPv6 disabled in the config: no v6 address is allowed
    expect(peerAddresses(dual, scope('vxlan', false)).v6).toEqual([]);
  });

  it('follows snapshot and deltas; complete only after a snapshot', () => {
    const al = new PeerAllowlist({ graceMs: 0 });
    const a = lease('a', '10.5.2.0/24', '198.18.0.2');
    const b = lease('b', '10.5.3.0/24', '198.18.0.3');
    al.observe([{ kind: 'added', lease: a }]);
    expect(al.addresses(scope())).toEqual({ v4: ['198.18.0.2'], v6: [], complete: false });
    al.observe([{ kind: 'snapshot', leases: [b] }]);
    expect(al.addresses(scope())).toEqual({ v4: ['198.18.0.3'], v6: [], complete: true });
    const moved = lease('b', '10.5.3.0/24', '198.18.0.9');
    al.observe([
      { kind: 'changed', lease: moved, previous: b },
      { kind: 'added', lease: a },
    ]);
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2', '198.18.0.9']);
    al.observe([{ kind: 'removed', lease: a }]);
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.9']);
  });

  it('keeps a removed lease for the removal grace: a lease re-created at once costs nothing', () => {
    let t = 1000;
    const al = new PeerAllowlist({ graceMs: 500, now: () => t });
    const a = lease('a', '10.5.2.0/24', '198.18.0.2');
    const b = lease('b', '10.5.3.0/24', '198.18.0.3');
    al.observe([{ kind: 'snapshot', leases: [a, b] }]);
    al.observe([{ kind: 'removed', lease: a }]);
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2', '198.18.0.3']);
    expect(al.nextExpiry()).toBe(1500);
    al.observe([{ kind: 'added', lease: a }]); // back at once: nothing pending any more
    expect(al.nextExpiry()).toBeNull();
    al.observe([{ kind: 'removed', lease: b }]);
    t = 1499;
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2', '198.18.0.3']);
    t = 1500; // a peer that really left is gone when its grace ends
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2']);
    expect(al.nextExpiry()).toBeNull();
    // a snapshot that no longer lists a lease gives it the same grace
    al.observe([{ kind: 'snapshot', leases: [] }]);
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2']);
    t = 2001;
    expect(al.addresses(scope()).v4).toEqual([]);
  });

  it('keeps a lease only missing from a re-list (etcd reset) for the longer grace, capped by its expiration', () => {
    let t = 1000;
    const al = new PeerAllowlist({
      graceMs: 500,
      relistGraceMs: 30_000,
      now: () => t,
      wallNow: () => t,
    });
    const a = lease('a', '10.5.2.0/24', '198.18.0.2');
    const b = { ...lease('b', '10.5.3.0/24', '198.18.0.3'), expiration: new Date(11_000) };
    al.observe([{ kind: 'snapshot', leases: [a, b] }]);
    al.observe([
      { kind: 'removed', lease: a, relisted: true },
      { kind: 'removed', lease: b, relisted: true },
    ]);
    t = 10_999;
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2', '198.18.0.3']);
    t = 11_000; // b's lease would have expired by now anyway
    expect(al.addresses(scope()).v4).toEqual(['198.18.0.2']);
    t = 31_000;
    expect(al.addresses(scope()).v4).toEqual([]);
  });

  it('a removed peer leaves after its grace of elapsed time, however the wall clock is stepped', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-06-01T12:00:00Z') });
    try {
      const al = new PeerAllowlist({ graceMs: 30 });
      const a = lease('a', '10.5.2.0/24', '198.18.0.2');
      al.observe([{ kind: 'snapshot', leases: [a] }]);
      al.observe([{ kind: 'removed', lease: a }]);
      expect(al.addresses(scope()).v4).toEqual(['198.18.0.2']);
      vi.setSystemTime(new Date('2026-06-01T11:00:00Z')); // NTP steps the clock back an hour
      expect(al.nextExpiryInMs()).toBeLessThanOrEqual(30);
      await new Promise((r) => setTimeout(r, 60)); // the grace really elapses
      expect(al.addresses(scope()).v4).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('the tap hands every batch over before the backend sees it and passes the rest through', async () => {
    const batches: LeaseEvent[][] = [
      [{ kind: 'snapshot', leases: [] }],
      [{ kind: 'added', lease: lease('a', '10.5.2.0/24', '198.18.0.2') }],
    ];
    const inner = {
      name: 'inner',
      getNetworkConfig: async () => scope().config,
      acquireLease: async () => own,
      keepLease: async () => undefined,
      async *watchLeases() {
        for (const b of batches) yield b;
      },
      close: async () => undefined,
    } satisfies SubnetManager;
    const seen: string[] = [];
    const tapped = tapLeaseEvents(inner, async (b) => {
      await new Promise((r) => setTimeout(r, 5)); // the backend waits until the set update settled
      seen.push(`tap ${b[0]!.kind}`);
    });
    expect(tapped.name).toBe('inner');
    expect(await tapped.acquireLease({ publicIp: 'x', publicIpv6: null, backendType: '' })).toBe(
      own,
    );
    for await (const b of tapped.watchLeases(own, new AbortController().signal))
      seen.push(`backend ${b[0]!.kind}`);
    expect(seen).toEqual(['tap snapshot', 'backend snapshot', 'tap added', 'backend added']);
  });
});
