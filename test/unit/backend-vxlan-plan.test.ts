/**
 * The vxlan planner's subnet text: a canonical IPv4 subnet (what flannel and weft write) is kept as the
 * lease gives it, any other spelling that parses (host bits set) is programmed in its canonical form —
 * the same entries the formatting path produced for every lease before.
 */
import { describe, expect, it } from 'vitest';
import { planVxlanPeer, type VxlanPlanScope } from '../../src/backend-vxlan/plan.js';
import { FAMILY_V4 } from '../../src/backend/family.js';
import { canonicalCidr } from '../../src/ip/index.js';
import type { Lease } from '../../src/lease/lease.js';

const scope: VxlanPlanScope = {
  vni: 1,
  directRouting: false,
  uplinkIndex: 2,
  families: [
    {
      fam: FAMILY_V4,
      network: '10.0.0.0/8',
      subnetLen: 24,
      ownSubnet: '10.5.1.0/24',
      deviceIndex: 7,
      deviceMac: '0e:42:ff:ff:ff:ff',
      ownIps: ['198.18.0.1', null],
      onlink: ['198.18.0.0/16'],
    },
  ],
};

const lease = (subnet: string): Lease => ({
  key: subnet.replace('/', '-'),
  subnet,
  subnet6: null,
  expiration: null,
  attrs: {
    publicIp: '198.18.3.4',
    publicIpv6: null,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: '0e:42:00:00:03:04' },
  },
});

describe('planVxlanPeer subnet text', () => {
  it.each(['10.5.7.0/24', '10.200.0.0/24', '10.0.255.0/24'])('canonical %s is kept', (s) => {
    const p = planVxlanPeer(lease(s), scope);
    expect(p.refused).toEqual([]);
    const e = p.entries[0]!;
    expect(e.subnet).toBe(s);
    expect(e.route).toEqual({ dst: s, gateway: s.slice(0, -3), oif: 7, onlink: true });
    expect(e.neigh).toEqual({ ifindex: 7, dst: s.slice(0, -3), mac: '0e:42:00:00:03:04' });
    expect(e.fdb).toEqual({ ifindex: 7, mac: '0e:42:00:00:03:04', dst: '198.18.3.4' });
  });

  it.each(['10.5.7.9/24', '10.5.7.255/24', '10.200.0.128/24'])(
    'host bits set (%s): programmed as the canonical subnet',
    (s) => {
      const p = planVxlanPeer(lease(s), scope);
      expect(p.refused).toEqual([]);
      const canonical = canonicalCidr(s);
      expect(p.entries[0]!.subnet).toBe(canonical);
      expect(p.entries[0]!.route.dst).toBe(canonical);
      expect(p.entries[0]!.neigh!.dst).toBe(canonical.slice(0, -3));
    },
  );

  it.each([
    ['10.5.07.0/24', 'not a CIDR'],
    ['10.5.7.0/024', 'not a CIDR'],
    ['10.5.1.0/24', 'overlaps'],
    ['10.5.7.0/25', 'is not /24'],
  ])('%s is refused (%s)', (s, why) => {
    const p = planVxlanPeer(lease(s), scope);
    expect(p.entries).toEqual([]);
    expect(p.refused[0]!.reason).toContain(why);
  });
});

describe('planVxlanPeer and the lease VNI', () => {
  const withData = (backendData: unknown): Lease => {
    const l = lease('10.5.7.0/24');
    return { ...l, attrs: { ...l.attrs, backendData } };
  };

  it('programs a flannel < v0.11 lease, which publishes VtepMAC without VNI', () => {
    // flannel's vxlan writer added VNI in v0.11; no flannel reader ever looks at a peer's VNI, so such a
    // host is a peer of every flannel node (weft refused it: "VNI undefined is not an integer").
    for (const data of [
      { VtepMAC: '0e:42:00:00:03:04' },
      { VNI: null, VtepMAC: '0e:42:00:00:03:04' },
    ]) {
      const p = planVxlanPeer(withData(data), scope);
      expect(p.refused).toEqual([]);
      expect(p.entries[0]!.fdb).toEqual({
        ifindex: 7,
        mac: '0e:42:00:00:03:04',
        dst: '198.18.3.4',
      });
    }
  });

  it('still refuses a lease naming another VNI, or a VNI that is not a number', () => {
    for (const [vni, why] of [
      [2, "VNI 2 is not this network's 1"],
      ['1', 'is not an integer'],
    ] as const) {
      const p = planVxlanPeer(withData({ VNI: vni, VtepMAC: '0e:42:00:00:03:04' }), scope);
      expect(p.entries).toEqual([]);
      expect(p.refused[0]!.reason).toContain(why);
    }
  });
});
