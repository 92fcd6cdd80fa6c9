/**
 * Hostile peer leases against every backend (on the recording FakeNetlink / MemoryForwarder): a subnet
 * that overlaps ours, is not SubnetLen long, or is the whole network; a PublicIP that is loopback,
 * multicast, broadcast, 0.0.0.0/8 or ours; a VtepMAC that is ours. None may be programmed, and a healthy
 * peer next to them is programmed as usual.
 */
import { TEST_MACHINE_ID, useStateDir } from '../helpers/state-dir.js';
import { afterEach, describe, expect, it } from 'vitest';
import { hostGwBackendFactory } from '../../src/backend-hostgw/index.js';
import { peerAddressProblem, peerSubnetProblem } from '../../src/backend/peer-check.js';
import { Ip4Net, netContains, netOverlaps } from '../../src/ip/index.js';
import { PeerLoop } from '../../src/backend/peer-loop.js';
import { netlinkSink } from '../../src/backend/netlink-sink.js';
import type { PeerEntries } from '../../src/backend/peer-entries.js';
import type { LeasePlan } from '../../src/backend/peer-plan.js';
import type { Backend, Network } from '../../src/backend/backend.js';
import { planUdpPeer, type UdpPeerScope } from '../../src/backend-udp/plan.js';
import { vxlanBackendFactory, type VxlanNetwork } from '../../src/backend-vxlan/index.js';
import { deriveVtepMac } from '../../src/backend-vxlan/mac.js';
import type { Lease, LeaseAttrs } from '../../src/lease/lease.js';
import { nullLogger } from '../../src/log/logger.js';
import {
  MemorySubnets,
  testNetworkConfig,
  testUplink,
} from '../integration/backend-memory-subnets.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';
import { udpOnFakes } from './udp-on-fakes.js';

const { dir, machineId } = useStateDir('weft-hostile-unit-');

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A lease with an arbitrary key/subnet (what a hostile or buggy host may write). */
const raw = (subnet: string, attrs: LeaseAttrs): Lease => ({
  key: subnet.replace('/', '-'),
  subnet,
  subnet6: null,
  attrs,
  expiration: null,
});

const scope = { network: '10.5.0.0/16', subnetLen: 24, ownSubnet: '10.5.1.0/24' };

describe('peerSubnetProblem / peerAddressProblem', () => {
  it.each([
    ['10.5.2.0/24', null],
    ['10.6.2.0/24', 'outside the network'],
    ['0.0.0.0/0', 'outside the network'],
    ['10.5.0.0/16', 'is not /24'],
    ['10.5.2.0/25', 'is not /24'],
    ['10.5.1.0/24', 'overlaps'],
    ['fd05::/64', 'outside the network'],
    ['garbage', 'not a CIDR'],
  ])('subnet %s → %s', (subnet, want) => {
    const got = peerSubnetProblem(subnet, scope);
    if (want === null) expect(got).toBeNull();
    else expect(got).toContain(want);
  });

  it('the IPv4 compares give the general netContains / netOverlaps answer for every layout', () => {
    // Networks inside, outside, around and beside the cluster network and our subnet, of several
    // lengths: the IPv4 fast path against the family-generic helpers it replaces.
    const nets = ['10.5.0.0/16', '10.5.1.0/24', '10.5.1.128/25', '10.5.0.0/23', '10.4.0.0/14'];
    const subnets = [
      ...nets,
      '10.5.2.0/24',
      '10.6.2.0/24',
      '0.0.0.0/0',
      '10.5.1.0/26',
      '10.5.255.0/24',
      '10.0.0.0/8',
    ];
    for (const network of nets)
      for (const ownSubnet of [...nets, 'fd05::/64'])
        for (const subnetLen of [16, 23, 24, 25])
          for (const subnet of subnets) {
            const sc = { network, subnetLen, ownSubnet };
            const net = Ip4Net.parse(subnet);
            const nw = Ip4Net.parse(network);
            const own = ownSubnet.includes(':') ? null : Ip4Net.parse(ownSubnet);
            const want = !netContains(nw, net)
              ? 'outside'
              : net.prefixLen !== subnetLen
                ? 'is not'
                : own && netOverlaps(own, net)
                  ? 'overlaps'
                  : null;
            const got = peerSubnetProblem(subnet, sc);
            const what = JSON.stringify(sc) + ' ' + subnet;
            if (want === null) expect(got, what).toBeNull();
            else expect(got, what).toContain(want);
          }
  });

  it('rejects an own subnet overlap even where SubnetLen differs from ours', () => {
    expect(peerSubnetProblem('10.5.1.128/25', { ...scope, subnetLen: 25 })).toContain('overlaps');
  });

  it.each([
    ['198.18.0.2', null],
    ['127.0.0.1', 'not a unicast'],
    ['0.0.0.0', 'not a unicast'],
    ['0.1.2.3', 'not a unicast'],
    ['224.0.0.1', 'not a unicast'],
    ['239.255.255.250', 'not a unicast'],
    ['255.255.255.255', 'not a unicast'],
    ['240.0.0.1', 'not a unicast'],
    ['1.0.0.0', null],
    ['126.255.255.255', null],
    ['128.0.0.1', null],
    ['223.255.255.255', null],
    ['198.18.0.1', "this host's own"],
    ['fd18::2', null],
    ['::1', 'not a unicast'],
    ['::', 'not a unicast'],
    ['ff02::1', 'not a unicast'],
    ['::ffff:198.18.0.2', 'not a unicast'],
    ['fd18:0::1', "this host's own"],
    ['nonsense', 'not an IP address'],
    ['198.18.0.255', 'broadcast address of the on-link network 198.18.0.0/24'],
    ['198.18.0.0', 'network or broadcast'],
    ['198.18.0.254', null],
  ])('public IP %s → %s', (ip, want) => {
    const got = peerAddressProblem(ip, ['198.18.0.1', null, 'fd18::1'], ['198.18.0.0/24']);
    if (want === null) expect(got).toBeNull();
    else expect(got).toContain(want);
  });
});

// 198.18.0.1 (ours) comes last: it is put after our lease was acquired (else it would be reused as ours).
const HOSTILE_IPS = [
  '127.0.0.1',
  '224.0.0.5',
  '255.255.255.255',
  '0.0.0.7',
  '198.18.0.255', // directed broadcast of the uplink's network 198.18.0.0/24
  '198.18.0.0',
  '198.18.0.1',
];

/** Leases that must never be programmed, numbered from 20 so they do not collide with ours (10.5.1.0). */
function hostileLeases(type: string, data?: (n: number) => unknown): Lease[] {
  const attrs = (n: number, publicIp = `198.18.0.${n}`): LeaseAttrs => ({
    publicIp,
    publicIpv6: null,
    backendType: type,
    ...(data ? { backendData: data(n) } : {}),
  });
  return [
    raw('10.5.1.0/25', attrs(20)), // inside our own subnet: would hijack half of it
    raw('10.5.1.128/25', attrs(21)),
    raw('10.5.0.0/16', attrs(22)), // the whole network
    raw('10.5.30.0/23', attrs(23)), // not SubnetLen long
    ...HOSTILE_IPS.map((ip, i) => raw(`10.5.${40 + i}.0/24`, attrs(40 + i, ip))),
  ];
}

interface Started {
  fake: FakeNetlink;
  network: Network;
  ac: AbortController;
  done: Promise<void>;
}

async function start(
  type: 'vxlan' | 'host-gw',
  leases: readonly Lease[],
  healthy: Lease,
): Promise<Started & { subnets: MemorySubnets }> {
  const fake = new FakeNetlink();
  const eth0 = fake.addLink('eth0');
  fake.addrs.push({ index: eth0.index, cidr: '198.18.0.1/24' });
  const config = testNetworkConfig(type);
  const subnets = new MemorySubnets(config);
  const ownIp = (l: Lease): boolean => l.attrs.publicIp === '198.18.0.1';
  for (const l of leases) if (!ownIp(l)) subnets.put(l);
  subnets.put(healthy);
  const uplink = testUplink({ index: eth0.index });
  const deps = { subnets: subnets.manager(), uplink, log: nullLogger, stateDir: dir };
  const backend: Backend =
    type === 'vxlan'
      ? vxlanBackendFactory({
          netlink: fake,
          resyncMs: 3_600_000,
          removalGraceMs: 0,
          machineIdPath: machineId,
        })(deps)
      : hostGwBackendFactory({ netlink: fake, resyncMs: 3_600_000, removalGraceMs: 0 })(deps);
  const ac = new AbortController();
  const network = await backend.registerNetwork(config, {}, ac.signal);
  expect(network.lease.subnet).toBe('10.5.1.0/24');
  const done = network.run(ac.signal);
  await tick();
  for (const l of leases) if (ownIp(l)) subnets.put(l);
  await tick();
  return { fake, network, ac, done, subnets };
}

describe('hostile peer leases are never programmed', () => {
  let s: Started | null = null;
  afterEach(async () => {
    s?.ac.abort();
    await s?.done;
    s = null;
  });

  it('vxlan: only the healthy peer gets routes, neighbours and FDB entries', async () => {
    const mac = (n: number): string => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
    const data = (n: number): unknown => ({ VNI: 1, VtepMAC: mac(n) });
    s = await start(
      'vxlan',
      hostileLeases('vxlan', data),
      raw('10.5.2.0/24', {
        publicIp: '198.18.0.2',
        publicIpv6: null,
        backendType: 'vxlan',
        backendData: data(2),
      }),
    );
    expect([...s.fake.routes.keys()].filter((k) => !k.includes('10.5.1.0'))).toEqual([
      '254|10.5.2.0/24',
    ]);
    expect([...s.fake.fdb.values()].map((f) => f.dst)).toEqual(['198.18.0.2']);
    expect([...s.fake.neighs.values()].map((n) => n.dst)).toEqual(['10.5.2.0']);
  });

  it('vxlan: a peer that publishes our own VTEP MAC is skipped', async () => {
    const ours = deriveVtepMac(TEST_MACHINE_ID, '198.18.0.1', 1, 4);
    const vx = (n: number, mac: string): Lease =>
      raw(`10.5.${n}.0/24`, {
        publicIp: `198.18.0.${n}`,
        publicIpv6: null,
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: mac },
      });
    s = await start('vxlan', [vx(3, ours)], vx(2, '0e:00:00:00:00:02'));
    expect((s.network as VxlanNetwork).vtepMacs[4]).toBe(ours);
    expect([...s.fake.fdb.values()].map((f) => f.mac)).toEqual(['0e:00:00:00:00:02']);
    expect(s.fake.routes.has('254|10.5.3.0/24')).toBe(false);
  });

  it('vxlan: a second lease for the same subnet neither flips nor, when removed, deletes the live peer', async () => {
    const vx = (n: number): LeaseAttrs => ({
      publicIp: `198.18.0.${n}`,
      publicIpv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: `0e:00:00:00:00:0${n}` },
    });
    // A stale dual-stack key of the same IPv4 subnet (parses as a valid key), expiring sooner.
    const stale: Lease = {
      key: '10.5.2.0-24&fd05:0:0:2::-64',
      subnet: '10.5.2.0/24',
      subnet6: 'fd05:0:0:2::/64',
      attrs: vx(9),
      expiration: new Date(Date.now() + 60_000),
    };
    const live: Lease = {
      ...raw('10.5.2.0/24', vx(2)),
      expiration: new Date(Date.now() + 86_400_000),
    };
    const started = await start('vxlan', [stale], live);
    s = started;
    const dev = started.fake.links.get('weft.1')!.index;
    const wantLive = (): void => {
      expect(started.fake.routes.has('254|10.5.2.0/24')).toBe(true);
      expect(started.fake.neighs.get(`${dev}|10.5.2.0`)?.mac).toBe('0e:00:00:00:00:02');
      expect([...started.fake.fdb.values()].map((f) => `${f.mac} ${f.dst}`)).toEqual([
        '0e:00:00:00:00:02 198.18.0.2',
      ]);
    };
    wantLive();
    started.subnets.remove(stale.key);
    await tick();
    wantLive();
  });

  it('vxlan: BackendData nested too deep to print does not stop the other peers', async () => {
    const n = 100_000;
    const deep: unknown = JSON.parse('['.repeat(n) + '1' + ']'.repeat(n));
    const bad = (m: number, data: unknown): Lease =>
      raw(`10.5.${m}.0/24`, {
        publicIp: `198.18.0.${m}`,
        publicIpv6: null,
        backendType: 'vxlan',
        backendData: data,
      });
    s = await start(
      'vxlan',
      [bad(3, { VNI: deep, VtepMAC: '0e:00:00:00:00:03' }), bad(4, { VNI: 1, VtepMAC: deep })],
      bad(2, { VNI: 1, VtepMAC: '0e:00:00:00:00:02' }),
    );
    expect([...s.fake.routes.keys()].filter((k) => !k.includes('10.5.1.0'))).toEqual([
      '254|10.5.2.0/24',
    ]);
  });

  it("vxlan: a newcomer publishing a live peer's VTEP MAC cannot redirect it; the same host's second lease can share it", async () => {
    const vx = (n: number, ip: number, mac: string): Lease =>
      raw(`10.5.${n}.0/24`, {
        publicIp: `198.18.0.${ip}`,
        publicIpv6: null,
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: mac },
      });
    const started = await start('vxlan', [], vx(2, 2, '0e:00:00:00:00:02'));
    s = started;
    started.subnets.put(vx(3, 66, '0e:00:00:00:00:02')); // copies host 2's MAC, other public IP
    started.subnets.put(vx(4, 2, '0e:00:00:00:00:02')); // host 2's second (stale) lease
    await tick();
    const fdb = [...started.fake.fdb.values()].map((f) => `${f.mac} ${f.dst}`);
    expect(fdb).toEqual(['0e:00:00:00:00:02 198.18.0.2']);
    const routes = [...started.fake.routes.keys()].filter((k) => !k.includes('10.5.1.0'));
    expect(routes.sort()).toEqual(['254|10.5.2.0/24', '254|10.5.4.0/24']);
    await (started.network as VxlanNetwork).reconcileNow();
    expect([...started.fake.fdb.values()].map((f) => `${f.mac} ${f.dst}`)).toEqual(fdb);
    // Removing the second lease must not delete the FDB entry the first still needs.
    started.subnets.remove('10.5.4.0-24');
    await tick();
    expect([...started.fake.fdb.values()].map((f) => `${f.mac} ${f.dst}`)).toEqual(fdb);
    expect(started.fake.routes.has('254|10.5.4.0/24')).toBe(false);
    expect(started.fake.routes.has('254|10.5.2.0/24')).toBe(true);
  });

  it('host-gw: only the healthy peer gets a route', async () => {
    s = await start(
      'host-gw',
      hostileLeases('host-gw'),
      raw('10.5.2.0/24', { publicIp: '198.18.0.2', publicIpv6: null, backendType: 'host-gw' }),
    );
    expect([...s.fake.routes.values()].map((r) => `${r.dst} via ${r.gateway}`)).toEqual([
      '10.5.2.0/24 via 198.18.0.2',
    ]);
  });

  it('udp: hostile leases get no forwarder route (the forwarder also trusts inner sources by them)', () => {
    const udpScope: UdpPeerScope = { port: 8285, v4: scope, v6: null, ownIps: ['198.18.0.1'] };
    // The on-link broadcast cases are the kernel backends' (udp sends without SO_BROADCAST: EACCES).
    const udpHostile = hostileLeases('').filter(
      (l) => !/^198\.18\.0\.(0|255)$/.test(l.attrs.publicIp),
    );
    for (const l of [...udpHostile, raw('0.0.0.0/0', { ...hostileLeases('')[0]!.attrs })]) {
      const plan = planUdpPeer(l, udpScope);
      expect(plan.entries, l.key).toEqual([]);
      expect(plan.refused, l.key).toHaveLength(1);
    }
    expect(
      planUdpPeer(
        raw('10.5.2.0/24', { publicIp: '198.18.0.2', publicIpv6: null, backendType: '' }),
        udpScope,
      ),
    ).toEqual({
      entries: [{ key: '10.5.2.0-24/4', subnet: '10.5.2.0/24', peerIp: '198.18.0.2', port: 8285 }],
      refused: [],
    });
  });

  it("udp: a public IP inside the lease's own subnet is refused (its datagrams would loop through our TUN)", () => {
    const udpScope: UdpPeerScope = { port: 8285, v4: scope, v6: null, ownIps: ['198.18.0.1'] };
    const lease = (ip: string): Lease =>
      raw('10.5.3.0/24', { publicIp: ip, publicIpv6: null, backendType: '' });
    for (const ip of ['10.5.3.5', '10.5.3.0', '10.5.3.255']) {
      const plan = planUdpPeer(lease(ip), udpScope);
      expect(plan.entries, ip).toEqual([]);
      expect(plan.refused[0]?.reason, ip).toMatch(/inside the lease's own subnet 10\.5\.3\.0\/24/);
    }
    // Elsewhere in the network is not a loop (the underlay may lie there, below SubnetMin, with its
    // own more specific route; another peer's subnet sends it on to that peer, which drops it).
    for (const ip of ['10.5.4.5', '10.5.200.1', '10.6.0.1']) {
      expect(planUdpPeer(lease(ip), udpScope).entries, ip).toHaveLength(1);
    }
  });
});

describe('peer loop isolation', () => {
  it('a planner that throws for one lease costs that peer only, at start and on changes', async () => {
    const fake = new FakeNetlink();
    fake.addLink('eth0', { index: 2 }); // the kernel refuses routes through a missing device
    const subnets = new MemorySubnets(testNetworkConfig('fake'));
    const attrs: LeaseAttrs = { publicIp: '198.18.0.9', publicIpv6: null, backendType: 'fake' };
    const own = raw('10.5.1.0/24', { ...attrs, publicIp: '198.18.0.1' });
    subnets.put(raw('10.5.2.0/24', attrs));
    subnets.put(raw('10.5.3.0/24', attrs));
    const plan = (lease: Lease): LeasePlan<PeerEntries> => {
      if (lease.subnet === '10.5.3.0/24') throw new TypeError('unforeseen input');
      return {
        entries: [
          {
            key: lease.key,
            subnet: lease.subnet!,
            route: { dst: lease.subnet!, gateway: '198.18.0.9', oif: 2 },
          },
        ],
        refused: [],
      };
    };
    const loop = new PeerLoop({
      subnets: subnets.manager(),
      ownLease: own,
      plan,
      sink: netlinkSink(fake, {
        ensureReady: () => Promise.resolve(),
        readKernel: async () => ({ routes: [...fake.routes.values()], neighs: [], fdb: [] }),
      }),
      log: nullLogger,
      resyncMs: 3_600_000,
    });
    const ac = new AbortController();
    const done = loop.run(ac.signal);
    try {
      await tick();
      expect([...fake.routes.keys()]).toEqual(['254|10.5.2.0/24']);
      subnets.put(raw('10.5.4.0/24', attrs));
      subnets.put(raw('10.5.3.0/24', { ...attrs, publicIp: '198.18.0.10' }));
      await tick();
      expect([...fake.routes.keys()].sort()).toEqual(['254|10.5.2.0/24', '254|10.5.4.0/24']);
      expect(loop.isDirty).toBe(false);
    } finally {
      ac.abort();
      await done;
    }
  });
});

describe("udp: a newcomer lease for a live peer's subnet", () => {
  it('cannot take over its forwarder route', async () => {
    const config = testNetworkConfig('udp');
    const subnets = new MemorySubnets(config);
    const { backend, forwarder: fwd } = udpOnFakes(subnets);
    const udp = (publicIp: string): LeaseAttrs => ({ publicIp, publicIpv6: null, backendType: '' });
    subnets.put(raw('10.5.2.0/24', udp('198.18.0.2')));
    const ac = new AbortController();
    const net = await backend.registerNetwork(config, {}, ac.signal);
    const done = net.run(ac.signal);
    try {
      await tick();
      expect(fwd()!.routes()).toEqual([{ dst: '10.5.2.0/24', peerIp: '198.18.0.2', port: 8285 }]);
      subnets.put({
        key: '10.5.2.0-24&fd05:0:0:2::-64',
        subnet: '10.5.2.0/24',
        subnet6: 'fd05:0:0:2::/64',
        attrs: udp('198.18.0.66'),
        expiration: new Date(Date.now() + 10 * 86_400_000),
      });
      await tick();
      expect(fwd()!.routes()).toEqual([{ dst: '10.5.2.0/24', peerIp: '198.18.0.2', port: 8285 }]);
    } finally {
      ac.abort();
      await done;
    }
  });
});
