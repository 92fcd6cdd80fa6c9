/**
 * The UDP backend's pure logic and its lease → forwarder loop, on MemoryForwarder and the recording
 * FakeNetlink (the real kernel path: test/integration/udp-backend.test.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  forwarderMetricSamples,
  parseUdpConfig,
  planUdpPeer,
  type UdpNetwork,
} from '../../src/backend-udp/index.js';
import { forwarderSink } from '../../src/backend-udp/forwarder-sink.js';
import type { UdpPeerScope } from '../../src/backend-udp/plan.js';
import { MemoryForwarder } from '../fakes/memory-forwarder.js';
import type { Lease, LeaseAttrs } from '../../src/lease/lease.js';
import { MemorySubnets, testNetworkConfig } from '../integration/backend-memory-subnets.js';
import type { FakeNetlink } from '../fakes/fake-netlink.js';
import { udpOnFakes } from './udp-on-fakes.js';

const attrs = (publicIp: string, backendType = ''): LeaseAttrs => ({
  publicIp,
  publicIpv6: null,
  backendType,
});
const lease = (n: number, a: LeaseAttrs, subnet6: string | null = null): Lease => ({
  key: `10.5.${n}.0-24`,
  subnet: `10.5.${n}.0/24`,
  subnet6,
  attrs: a,
  expiration: null,
});

describe('parseUdpConfig', () => {
  it('fills flannel defaults and weft extras', () => {
    expect(parseUdpConfig({ Type: 'udp' })).toEqual({ port: 8285, name: 'weft0', mtu: null });
    expect(parseUdpConfig({ type: 'udp', PORT: 9000, name: 'tun7', Mtu: 9000 })).toEqual({
      port: 9000,
      name: 'tun7',
      mtu: 9000,
    });
    expect(parseUdpConfig({ Port: 0 }).port).toBe(8285);
  });

  it.each([
    [{ Port: 70000 }, 'Backend.Port: 70000 is invalid: must be an integer from 0 to 65535'],
    [{ Port: '8285' }, 'Backend.Port: "8285" is invalid: must be an integer from 0 to 65535'],
    [{ Name: 'a/b' }, 'Backend.Name: "a/b" is invalid: must be a Linux interface name'],
    [{ MTU: 100 }, 'Backend.MTU: 100 is invalid: must be an integer from 604 to 65535'],
  ])('rejects %o', (raw, message) => {
    expect(() => parseUdpConfig(raw)).toThrow(message);
  });

  it('warns about unknown keys', () => {
    const warned: unknown[] = [];
    parseUdpConfig({ Type: 'udp', VNI: 1 }, (_m, f) => warned.push(f));
    expect(warned).toEqual([{ key: 'VNI' }]);
  });
});

const scopeV4: UdpPeerScope = {
  port: 8285,
  v4: { network: '10.5.0.0/16', subnetLen: 24, ownSubnet: '10.5.1.0/24' },
  v6: null,
  ownIps: ['198.18.0.1'],
};
const scopeV6: UdpPeerScope = {
  ...scopeV4,
  v6: { network: 'fd05::/48', subnetLen: 64, ownSubnet: 'fd05:0:0:1::/64' },
};

const route = (n: number, peer = n) => ({
  key: `10.5.${n}.0-24/4`,
  subnet: `10.5.${n}.0/24`,
  peerIp: `198.18.0.${peer}`,
  port: 8285,
});

describe('planUdpPeer', () => {
  it('routes flannel-style (no BackendType) and udp-typed leases to their PublicIP', () => {
    expect(planUdpPeer(lease(2, attrs('198.18.0.2')), scopeV4)).toEqual({
      entries: [route(2)],
      refused: [],
    });
    expect(planUdpPeer(lease(2, attrs('198.18.0.2', 'udp')), scopeV4).entries).toHaveLength(1);
  });

  it('adds the IPv6 subnet only when IPv6 is enabled', () => {
    const l = lease(2, attrs('198.18.0.2'), 'fd05:0:0:2::/64');
    expect(planUdpPeer(l, scopeV6)).toMatchObject({
      entries: [
        { subnet: '10.5.2.0/24' },
        { key: '10.5.2.0-24/6', subnet: 'fd05:0:0:2::/64', peerIp: '198.18.0.2' },
      ],
    });
    expect(planUdpPeer(l, scopeV4)).toMatchObject({ entries: [{ subnet: '10.5.2.0/24' }] });
  });

  it.each([
    [attrs('198.18.0.2', 'vxlan'), 'backend type "vxlan" is not udp'],
    [attrs('198.18.0.2', 'host-gw'), 'backend type "host-gw" is not udp'],
  ])('ignores %o (another backend: not refused)', (a, reason) => {
    expect(planUdpPeer(lease(2, a), scopeV4)).toEqual({
      entries: [],
      refused: [],
      ignored: reason,
    });
  });

  it.each([
    [attrs('0.0.0.0'), 'no usable IPv4 PublicIP ("0.0.0.0")'],
    [attrs('fd18::2'), 'no usable IPv4 PublicIP ("fd18::2")'],
  ])('refuses %o', (a, reason) => {
    expect(planUdpPeer(lease(2, a), scopeV4)).toEqual({
      entries: [],
      refused: [{ family: null, reason }],
    });
  });
});

describe('forwarderSink', () => {
  it('reconcile brings the forwarder table to the desired routes with minimal commands', async () => {
    const f = MemoryForwarder.start({ tunFd: 3, port: 8285, mtu: 1472, localSubnets: [] });
    const sink = forwarderSink(f, async () => {});
    f.setRoute('10.5.9.0/24', '198.18.0.9', 8285);
    f.setRoute('10.5.2.0/24', '198.18.0.2', 8285);
    f.setRoute('10.5.3.0/24', '198.18.0.33', 8285);
    const desired = [route(2), route(3), route(4)];
    expect(await sink.reconcile(desired)).toMatchObject({ programmed: 2, deleted: 1 });
    expect(f.routes()).toEqual(
      desired.map((r) => ({ dst: r.subnet, peerIp: r.peerIp, port: 8285 })),
    );
    expect(await sink.reconcile(desired)).toMatchObject({ programmed: 0, deleted: 0 });
  });

  it('apply replaces in place and keeps a route another peer still holds', async () => {
    const f = MemoryForwarder.start({ tunFd: 3, port: 8285, mtu: 1472, localSubnets: [] });
    const sink = forwarderSink(f, async () => {});
    await sink.apply([route(2), route(3)], [], []);
    expect(await sink.apply([route(2, 22)], [route(2), route(3)], [])).toMatchObject({
      programmed: 1,
      deleted: 1,
    });
    expect(f.routes()).toEqual([{ dst: '10.5.2.0/24', peerIp: '198.18.0.22', port: 8285 }]);
    expect(await sink.apply([], [route(2, 22)], [route(2, 22)])).toMatchObject({ deleted: 0 });
    expect(f.routes()).toHaveLength(1);
  });
});

describe('udp backend on MemoryForwarder and FakeNetlink', () => {
  const peerCounts: number[] = [];
  const setup = async (): Promise<{
    net: UdpNetwork;
    fwd: MemoryForwarder;
    nl: FakeNetlink;
    subnets: MemorySubnets;
    ac: AbortController;
    done: Promise<void>;
  }> => {
    const config = testNetworkConfig('udp');
    const subnets = new MemorySubnets(config);
    const { backend, nl, forwarder } = udpOnFakes(subnets, {
      observer: { peers: (n) => peerCounts.push(n) },
    });
    subnets.put(lease(2, attrs('198.18.0.2')));
    subnets.put(lease(3, attrs('198.18.0.3', 'vxlan')));
    const ac = new AbortController();
    const net = (await backend.registerNetwork(config, {}, ac.signal)) as UdpNetwork;
    const done = net.run(ac.signal);
    return { net, fwd: forwarder()!, nl, subnets, ac, done };
  };

  it('configures the TUN, follows lease events and closes the forwarder when run ends', async () => {
    const { net, fwd, nl, subnets, ac, done } = await setup();
    expect(net.mtu).toBe(1472);
    expect(net.lease.attrs).toEqual({ publicIp: '198.18.0.1', publicIpv6: null, backendType: '' });
    expect(nl.calls.slice(0, 4)).toEqual([
      'setLinkMtu 10 1472',
      `addAddr ${net.lease.subnet!.replace('/24', '/32')} dev 10`,
      'setLinkUp 10',
      expect.stringMatching(/^routeReplace 10\.5\.0\.0\/16/),
    ]);
    await new Promise((r) => setTimeout(r, 10));
    expect(fwd.routes()).toEqual([{ dst: '10.5.2.0/24', peerIp: '198.18.0.2', port: 8285 }]);
    expect(peerCounts.at(-1)).toBe(1); // the vxlan-typed lease is no peer of ours
    subnets.put(lease(4, attrs('198.18.0.4')));
    subnets.remove('10.5.2.0-24');
    await new Promise((r) => setTimeout(r, 10));
    expect(fwd.routes().map((r) => r.dst)).toEqual(['10.5.4.0/24']);
    ac.abort();
    await done;
    expect(fwd.closed).toBe(true);
  });

  it('rejects run with the forwarder error when the forwarder dies', async () => {
    const { fwd, done } = await setup();
    fwd.failWith('EIO', 'read');
    await expect(done).rejects.toMatchObject({ code: 'E_NATIVE', details: { code: 'EIO' } });
    expect(fwd.closed).toBe(true);
  });

  it('starts a forwarder anew with every peer route when its TUN was deleted (EBADFD on read)', async () => {
    const { net, fwd, ac, done } = await setup();
    await new Promise((r) => setTimeout(r, 10));
    expect(fwd.routes()).toHaveLength(1);
    fwd.failWith('EBADFD', 'read');
    await new Promise((r) => setTimeout(r, 20));
    expect(fwd.closed).toBe(true);
    expect(net.forwarderRoutes()).toEqual([
      { dst: '10.5.2.0/24', peerIp: '198.18.0.2', port: 8285 },
    ]);
    expect(net.forwarderStats().running).toBe(true);
    ac.abort();
    await done; // run was not ended by the repaired error
  });
});

describe('forwarderMetricSamples', () => {
  it('names every counter, drop reason and offload', () => {
    const f = MemoryForwarder.start(
      { tunFd: 3, port: 8285, mtu: 1472, localSubnets: ['10.5.1.0/24'] },
      { offloads: { tso: false } },
    );
    f.setRoute('10.5.2.0/24', '198.18.0.2', 8285);
    f.fromTun({ src: '10.5.1.2', dst: '10.5.2.2', bytes: 100 });
    f.fromPeer('198.18.0.66', { src: '10.5.2.2', dst: '10.5.1.2' });
    const samples = forwarderMetricSamples(f.stats());
    const get = (name: string, labels: Record<string, string> = {}): number | undefined =>
      samples.find((m) => m.name === name && JSON.stringify(m.labels) === JSON.stringify(labels))
        ?.value;
    expect(get('weft_udp_packets_total', { direction: 'tx' })).toBe(1);
    expect(get('weft_udp_bytes_total', { direction: 'tx' })).toBe(100);
    expect(get('weft_udp_drops_total', { reason: 'unknown_peer' })).toBe(1);
    expect(get('weft_udp_drops_total', { reason: 'bad_inner_source' })).toBe(0);
    expect(get('weft_udp_routes')).toBe(1);
    expect(get('weft_udp_offload', { offload: 'tso' })).toBe(0);
    expect(get('weft_udp_offload', { offload: 'udpGso' })).toBe(1);
    expect(get('weft_udp_drops_total', { reason: 'bad_inner_dest' })).toBe(0);
    expect(get('weft_udp_route_failures_total')).toBe(0);
    expect(samples.filter((m) => m.name === 'weft_udp_drops_total')).toHaveLength(11);
    for (const m of samples) expect(m.name).toMatch(/^weft_udp_[a-z_]+$/);
  });
});
