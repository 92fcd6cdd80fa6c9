import { describe, expect, it } from 'vitest';
import {
  parseProcIpv6Route,
  parseProcRoute,
  routeTo,
  selectUplink,
  unfitFlag6,
  uplinkAddressMoved,
  type HostSnapshot,
  type UplinkRequest,
} from '../../../src/daemon/uplink.js';
import { WeftError } from '../../../src/errors.js';

const snap: HostSnapshot = {
  interfaces: [
    { name: 'lo', index: 1, mtu: 65536, addrs4: [], addrs6: [] },
    {
      name: 'eth0',
      index: 2,
      mtu: 1500,
      addrs4: ['198.18.0.1', '198.18.0.11'],
      addrs6: ['fd18::1'],
    },
    { name: 'eth1', index: 3, mtu: 9000, addrs4: ['192.0.2.5'], addrs6: ['2001:db8::5'] },
    { name: 'ens7', index: 4, mtu: 1400, addrs4: ['203.0.113.9'], addrs6: [] },
  ],
  routes: [
    { family: 4, dst: '0.0.0.0', prefixLen: 0, gateway: '198.18.0.254', iface: 'eth0', metric: 0 },
    { family: 4, dst: '198.18.0.0', prefixLen: 24, gateway: null, iface: 'eth0', metric: 0 },
    { family: 4, dst: '192.0.2.0', prefixLen: 24, gateway: null, iface: 'eth1', metric: 0 },
    { family: 4, dst: '192.0.2.128', prefixLen: 25, gateway: null, iface: 'ens7', metric: 0 },
    { family: 6, dst: '::', prefixLen: 0, gateway: 'fd18::fe', iface: 'eth0', metric: 1024 },
    { family: 6, dst: '2001:db8::', prefixLen: 64, gateway: null, iface: 'eth1', metric: 256 },
  ],
};

const req = (r: Partial<UplinkRequest> = {}): UplinkRequest => ({
  iface: [],
  ifaceRegex: [],
  ifaceCanReach: null,
  publicIp: null,
  publicIpv6: null,
  ipv4: true,
  ipv6: false,
  ...r,
});

function err(fn: () => unknown): WeftError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WeftError);
    expect((e as WeftError).code).toBe('E_INTERFACE');
    return e as WeftError;
  }
  throw new Error('expected an error');
}

describe('uplink selection (flannel §9)', () => {
  it('defaults to the default-route interface and its first global address', () => {
    expect(selectUplink(snap, req())).toEqual({
      name: 'eth0',
      index: 2,
      mtu: 1500,
      ifaceAddr: '198.18.0.1',
      ifaceAddr6: null,
      publicIp: '198.18.0.1',
      publicIpv6: null,
    });
  });

  it('dual stack: both families from the same interface', () => {
    const u = selectUplink(snap, req({ ipv6: true }));
    expect(u).toMatchObject({ name: 'eth0', ifaceAddr6: 'fd18::1', publicIpv6: 'fd18::1' });
    const split: HostSnapshot = {
      ...snap,
      routes: snap.routes.map((r) =>
        r.family === 6 && r.prefixLen === 0 ? { ...r, iface: 'eth1' } : r,
      ),
    };
    expect(err(() => selectUplink(split, req({ ipv6: true }))).message).toMatch(
      /IPv4 default route uses eth0 but the IPv6 one uses eth1: pass --iface/,
    );
  });

  it('--iface by name or by IP, first usable wins', () => {
    expect(selectUplink(snap, req({ iface: ['nope', 'eth1'] })).name).toBe('eth1');
    expect(selectUplink(snap, req({ iface: ['203.0.113.9'] })).name).toBe('ens7');
    expect(selectUplink(snap, req({ iface: ['198.18.0.11'] })).ifaceAddr).toBe('198.18.0.1');
  });

  it('skips a matching interface without the needed addresses for a later usable one', () => {
    expect(selectUplink(snap, req({ iface: ['ens7', 'eth1'], ipv6: true })).name).toBe('eth1');
    expect(
      selectUplink(snap, req({ iface: ['ens7'], ifaceRegex: ['^eth0$'], ipv6: true })).name,
    ).toBe('eth0');
  });

  it('--iface-regex matches IPs before names; then --iface-can-reach', () => {
    expect(selectUplink(snap, req({ ifaceRegex: ['^192\\.0\\.2\\.'] })).name).toBe('eth1');
    expect(selectUplink(snap, req({ ifaceRegex: ['^ens'] })).name).toBe('ens7');
    expect(
      selectUplink(snap, req({ ifaceRegex: ['nomatch'], ifaceCanReach: '192.0.2.200' })).name,
    ).toBe('ens7');
    expect(selectUplink(snap, req({ ifaceCanReach: '8.8.8.8' })).name).toBe('eth0');
  });

  it('nothing matching is a clear error', () => {
    expect(err(() => selectUplink(snap, req({ iface: ['wlan0'] }))).message).toMatch(
      /failed to find interface to use that matches --iface=wlan0/,
    );
  });

  it('--public-ip without --iface picks the interface owning it; a foreign one needs --iface', () => {
    expect(selectUplink(snap, req({ publicIp: '192.0.2.5' }))).toMatchObject({
      name: 'eth1',
      publicIp: '192.0.2.5',
    });
    expect(err(() => selectUplink(snap, req({ publicIp: '100.64.0.1' }))).message).toMatch(
      /no interface owns public IP 100.64.0.1: behind NAT also pass --iface/,
    );
    expect(selectUplink(snap, req({ iface: ['eth0'], publicIp: '100.64.0.1' }))).toMatchObject({
      ifaceAddr: '198.18.0.1',
      publicIp: '100.64.0.1',
    });
  });

  it('needs an address of every enabled family and a sane MTU', () => {
    expect(err(() => selectUplink(snap, req({ iface: ['ens7'], ipv6: true }))).message).toMatch(
      /ens7 has no global IPv6 address/,
    );
    const zero: HostSnapshot = {
      ...snap,
      interfaces: snap.interfaces.map((i) => ({ ...i, mtu: 0 })),
    };
    expect(err(() => selectUplink(zero, req())).message).toMatch(/MTU 0/);
    expect(
      err(() => selectUplink({ interfaces: snap.interfaces, routes: [] }, req())).message,
    ).toMatch(/default-route interface/);
  });

  it('routeTo does longest-prefix match', () => {
    expect(routeTo(snap.routes, '192.0.2.129')?.iface).toBe('ens7');
    expect(routeTo(snap.routes, '2001:db8::9')?.iface).toBe('eth1');
    expect(routeTo(snap.routes, 'fd00::1')?.iface).toBe('eth0');
  });

  it('parses /proc/net/route and /proc/net/ipv6_route', () => {
    const v4 = parseProcRoute(
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
        'eth0\t00000000\tFE0012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
        'eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n',
    );
    expect(v4).toEqual([
      {
        family: 4,
        iface: 'eth0',
        dst: '0.0.0.0',
        gateway: '198.18.0.254',
        metric: 0,
        prefixLen: 0,
      },
      { family: 4, iface: 'eth0', dst: '198.18.0.0', gateway: null, metric: 0, prefixLen: 24 },
    ]);
    const v6 = parseProcIpv6Route(
      'fd180000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n' +
        '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd1800000000000000000000000000fe 00000400 00000001 00000000 00000003     eth0\n' +
        '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n',
    );
    expect(v6).toEqual([
      { family: 6, dst: 'fd18::', prefixLen: 64, gateway: null, metric: 256, iface: 'eth0' },
      { family: 6, dst: '::', prefixLen: 0, gateway: 'fd18::fe', metric: 1024, iface: 'eth0' },
    ]);
  });
  it('uplinkAddressMoved: the address replaced by another of its family, never just gone', () => {
    const up = selectUplink(snap, req({ iface: ['eth0'], ipv6: true }));
    expect(uplinkAddressMoved(up, snap)).toBeNull();
    const withAddrs = (addrs4: string[], addrs6: string[] = ['fd18::1']): HostSnapshot => ({
      ...snap,
      interfaces: snap.interfaces.map((i) => (i.name === 'eth0' ? { ...i, addrs4, addrs6 } : i)),
    });
    expect(uplinkAddressMoved(up, withAddrs(['198.18.0.11', '198.18.0.1']))).toBeNull(); // still ours
    expect(uplinkAddressMoved(up, withAddrs(['198.18.0.12']))).toBe(
      'eth0 198.18.0.1 → 198.18.0.12',
    );
    expect(uplinkAddressMoved(up, withAddrs([]))).toBeNull(); // gone, nothing to move to: wait
    expect(uplinkAddressMoved(up, withAddrs(['198.18.0.1'], ['fd18::7']))).toBe(
      'eth0 fd18::1 → fd18::7',
    );
    expect(uplinkAddressMoved(up, { ...snap, interfaces: [] })).toBeNull(); // the backends handle it
  });

  it('IPv6: temporary, deprecated, tentative and dadfailed addresses are never the public IPv6', () => {
    expect(unfitFlag6(['permanent', 'nodad'])).toBeNull();
    expect(unfitFlag6(['mngtmpaddr', 'noprefixroute', 'stable-privacy'])).toBeNull();
    expect(unfitFlag6(['temporary'])).toBe('temporary');
    expect(unfitFlag6(['nodad', 'deprecated'])).toBe('deprecated');
    expect(unfitFlag6(['tentative'])).toBe('tentative');
    expect(unfitFlag6(['tentative', 'dadfailed'])).toBe('tentative');
    // readHostSnapshot leaves them out of addrs6; one with nothing else says why
    const only: HostSnapshot = {
      ...snap,
      interfaces: snap.interfaces.map((i) =>
        i.name === 'eth0'
          ? { ...i, addrs6: [], unfit6: ['fd18::d65b:1 (temporary)', 'fd18::300 (tentative)'] }
          : i,
      ),
    };
    expect(() => selectUplink(only, req({ iface: ['eth0'], ipv6: true }))).toThrow(
      'interface eth0 has no global IPv6 address (not usable: fd18::d65b:1 (temporary), fd18::300 (tentative)): IPv6 is enabled',
    );
  });
});
