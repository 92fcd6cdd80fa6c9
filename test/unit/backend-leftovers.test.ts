/**
 * What an earlier weft backend left (src/backend/leftovers.ts): only devices of weft's kinds carrying
 * weft's marks (this host's subnet address; for VXLAN also weft's VTEP MAC) and proto-static routes of
 * host-gw's shape on the uplink are removed; the running backend's devices, flannel's, an operator's
 * and anything without the marks stay. On the fake netlink (held to the kernel by its contract suite).
 */
import { describe, expect, it } from 'vitest';
import type { Uplink } from '../../src/backend/backend.js';
import {
  leftoverDevices,
  leftoverScope,
  leftoverUplinkRoutes,
  ownDeviceAddrs,
  removeLeftovers,
} from '../../src/backend/leftovers.js';
import { deriveVtepMac, isOwnVtep } from '../../src/backend-vxlan/mac.js';
import type { LinkInfo, RouteEntry } from '../../src/netlink/index.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';
import { warnRecorder } from '../helpers/logger.js';

const ID = '0123456789abcdef0123456789abcdef';
const uplink: Uplink = {
  name: 'eth0',
  index: 2,
  mtu: 1500,
  ifaceAddr: '198.18.0.1',
  ifaceAddr6: null,
  publicIp: null,
  publicIpv6: null,
};
const vxlan = (vni: number, mac: string): Partial<LinkInfo> => ({
  kind: 'vxlan',
  mac,
  vxlan: {
    vni,
    local: '198.18.0.1',
    underlayIndex: 2,
    port: 8472,
    learning: false,
    gbp: false,
    group: null,
    l2miss: false,
    l3miss: false,
  },
});
const weftMac = (vni: number): string => deriveVtepMac(ID, '198.18.0.1', vni, 4);
const route = (dst: string, gateway: string | null, oif: number, protocol = 'STATIC') =>
  ({ family: 4, dst, gateway, oif, onlink: false, table: 254, protocol, type: 'UNICAST' }) as const;
const config = parseNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'wireguard' } });
const lease = { subnet: '10.5.1.0/24', subnet6: null };

describe('leftovers of an earlier weft backend', () => {
  it("weft's address on weft's devices: this host's subnets' network addresses as host routes", () => {
    expect(ownDeviceAddrs({ subnet: '10.5.1.0/24', subnet6: 'fd05:0:0:1::/64' })).toEqual([
      '10.5.1.0/32',
      'fd05:0:0:1::/128',
    ]);
    expect(ownDeviceAddrs(null)).toEqual([]);
  });

  it("a VXLAN device is weft's only with the VTEP MAC weft derives for its own VNI", () => {
    const link = (vni: number, mac: string) =>
      ({ index: 9, name: 'x', mtu: 1450, up: true, ...vxlan(vni, mac) }) as LinkInfo;
    expect(isOwnVtep(ID, uplink, link(1, weftMac(1)))).toBe(true);
    expect(isOwnVtep(ID, uplink, link(2, weftMac(1)))).toBe(false);
    expect(isOwnVtep('f'.repeat(32), uplink, link(1, weftMac(1)))).toBe(false);
    expect(isOwnVtep(ID, { ...uplink, publicIp: '203.0.113.9' }, link(1, weftMac(1)))).toBe(false);
  });

  it('names only marked devices of weft kinds the running backend does not use', () => {
    const nl = new FakeNetlink();
    const links = [
      nl.addLink('weft.1', vxlan(1, weftMac(1))), // 10: the earlier vxlan backend
      nl.addLink('weft-wg', { kind: 'tun' }), // 11: the running backend's
      nl.addLink('weft0', { kind: 'tun' }), // 12: an earlier udp backend's
      nl.addLink('opvx', vxlan(1, '02:aa:00:00:00:01')), // 13: an operator's, weft's address
      nl.addLink('tun9', { kind: 'tun' }), // 14: an operator's, no weft address
      nl.addLink('flannel.1', vxlan(1, weftMac(1))), // 15
      nl.addLink('br0', { kind: 'bridge' }), // 16
    ];
    const addrs = links.map((l) => ({
      index: l.index,
      cidr: l.name === 'tun9' ? '10.9.0.1/32' : '10.5.1.0/32',
    }));
    const scope = {
      keep: ['weft-wg'],
      ownAddrs: ownDeviceAddrs(lease),
      isVtep: (l: LinkInfo) => isOwnVtep(ID, uplink, l),
    };
    expect(leftoverDevices(links, addrs, scope).map((l) => l.name)).toEqual(['weft.1', 'weft0']);
    // without the MAC check (weftctl doctor) the operator's device carrying weft's address is named
    const { isVtep: _, ...byAddress } = scope;
    expect(leftoverDevices(links, addrs, byAddress).map((l) => l.name)).toEqual([
      'weft.1',
      'weft0',
      'opvx',
    ]);
    // another lease's address is no mark
    expect(leftoverDevices(links, addrs, { ...scope, ownAddrs: ['10.5.7.0/32'] })).toEqual([]);
  });

  it("names host-gw's proto-static routes on the uplink, not an operator's nor this host's own", () => {
    const routes: RouteEntry[] = [
      route('10.5.2.0/24', '198.18.0.2', 2),
      route('10.5.3.0/24', '198.18.0.3', 2, 'BOOT'), // ip route add
      route('10.5.1.0/24', '198.18.0.9', 2), // this host's own subnet
      route('10.5.4.0/25', '198.18.0.4', 2), // not a subnet of this network's length
      route('10.6.2.0/24', '198.18.0.2', 2), // outside the network
      route('10.5.5.0/24', '198.18.0.5', 3), // another interface
      route('10.5.0.0/16', null, 11), // the TUN's network route
    ];
    const scope = leftoverScope(
      { lease: { ...lease, key: 'k' } as never, deviceNames: ['weft-wg'], ownsUplinkRoutes: false },
      config,
      uplink,
    );
    expect(leftoverUplinkRoutes(routes, scope).map((r) => r.dst)).toEqual(['10.5.2.0/24']);
    const owns = leftoverScope(
      { lease: { ...lease, key: 'k' } as never, deviceNames: [], ownsUplinkRoutes: true },
      config,
      uplink,
    );
    expect(leftoverUplinkRoutes(routes, owns)).toEqual([]);
  });

  it('removes them with their routes, one info line per device; a failed removal is a warning', async () => {
    const nl = new FakeNetlink();
    const up = nl.addLink('eth0');
    const old = nl.addLink('weft.1', vxlan(1, weftMac(1)));
    const wg = nl.addLink('weft-wg', { kind: 'tun' });
    const stuck = nl.addLink('weft0', { kind: 'tun' });
    for (const l of [old, wg, stuck]) nl.addrs.push({ index: l.index, cidr: '10.5.1.0/32' });
    await nl.routeReplace({
      dst: '10.5.2.0/24',
      gateway: '10.5.2.0',
      oif: old.index,
      onlink: true,
    });
    await nl.routeReplace({ dst: '10.5.0.0/16', oif: wg.index });
    await nl.routeReplace({ dst: '10.5.3.0/24', gateway: '198.18.0.3', oif: up.index });
    nl.failWith = (op, object) =>
      op === 'deleteLink' && object === String(stuck.index) ? 'EPERM' : null;
    const log = warnRecorder();
    const infos: string[] = [];
    log.info = (m: string) => void infos.push(m);
    const scope = leftoverScope(
      { lease: { ...lease, key: 'k' } as never, deviceNames: ['weft-wg'], ownsUplinkRoutes: false },
      config,
      { index: up.index },
      (l) => isOwnVtep(ID, uplink, l),
    );
    const removed = await removeLeftovers(nl, scope, log);
    expect(removed).toEqual({ devices: ['weft.1'], routes: ['10.5.3.0/24 via 198.18.0.3'] });
    expect([...nl.routes.values()].map((r) => r.dst)).toEqual(['10.5.0.0/16']);
    expect(infos).toEqual([
      'removed the vxlan device (VNI 1, port 8472) weft.1 of an earlier weft backend, with its routes',
      'removed the uplink routes of an earlier weft backend',
    ]);
    expect(log.warnings.map(([m]) => m)).toEqual([
      expect.stringContaining('cannot remove the TUN device weft0 of an earlier weft backend'),
    ]);
    expect(log.warnings[0]![0]).toContain('ip link del weft0');
    // the running backend's device and its route stay; a second start finds nothing more
    nl.failWith = () => null;
    nl.links.delete('weft0');
    expect(await removeLeftovers(nl, scope, log)).toEqual({ devices: [], routes: [] });
    expect(nl.links.has('weft-wg')).toBe(true);
  });
});
