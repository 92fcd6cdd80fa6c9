/**
 * Test data for weftctl's pure logic: a vxlan network 10.5.0.0/16, three hosts (this one h1 =
 * 10.5.1.0/24 on 198.18.0.1, peers h2 and h3) and the kernel state weftd programs on h1 for them.
 */
import type { Lease } from '../../../src/lease/lease.js';
import type { FdbEntry, LinkInfo, NeighEntry, RouteEntry } from '../../../src/netlink/index.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import type { KernelState } from '../../../src/cli/kernel-entries.js';

export const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}');
export const hostGwConfig = parseNetworkConfig(
  '{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}',
);

export const MAC = {
  h1: 'aa:00:00:00:00:01',
  h2: 'aa:00:00:00:00:02',
  h3: 'aa:00:00:00:00:03',
} as const;

export function lease(n: 1 | 2 | 3, over: Partial<Lease['attrs']> = {}): Lease {
  return {
    key: `10.5.${n}.0-24`,
    subnet: `10.5.${n}.0/24`,
    subnet6: null,
    attrs: {
      publicIp: `198.18.0.${n}`,
      publicIpv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: MAC[`h${n}`] },
      ...over,
    },
    expiration: new Date(Date.now() + 86_000_000),
  };
}

export const leases = [lease(1), lease(2), lease(3)];

export const ETH0: LinkInfo = {
  index: 2,
  name: 'eth0',
  kind: 'veth',
  mtu: 1500,
  mac: '02:00:00:00:00:01',
  up: true,
};
export const WEFT: LinkInfo = {
  index: 5,
  name: 'weft.1',
  kind: 'vxlan',
  mtu: 1450,
  mac: MAC.h1,
  up: true,
  vxlan: {
    vni: 1,
    local: '198.18.0.1',
    underlayIndex: 2,
    port: 8472,
    learning: false,
    gbp: false,
    group: null,
    l2miss: false,
    l3miss: false,
  },
};
export const CBR0: LinkInfo = {
  index: 7,
  name: 'cbr0',
  kind: 'bridge',
  mtu: 1450,
  mac: '02:00:00:00:00:07',
  up: true,
};

const route = (
  dst: string,
  gateway: string | null,
  oif: number,
  onlink = false,
  protocol = 'BOOT',
): RouteEntry => ({
  family: 4,
  dst,
  gateway,
  oif,
  onlink,
  table: 254,
  protocol,
  type: 'UNICAST',
});

export function peerRoute(n: 2 | 3): RouteEntry {
  return route(`10.5.${n}.0/24`, `10.5.${n}.0`, 5, true);
}
export function peerNeigh(n: 2 | 3, mac: string = MAC[`h${n}`]): NeighEntry {
  return { family: 4, ifindex: 5, dst: `10.5.${n}.0`, mac, permanent: true };
}
export function peerFdb(n: 2 | 3, dst = `198.18.0.${n}`, mac: string = MAC[`h${n}`]): FdbEntry {
  return { ifindex: 5, mac, dst, permanent: true };
}

/** What weftd programs on h1: both peers complete, plus the kernel's own routes. */
export function healthyKernel(): KernelState {
  return {
    links: [ETH0, WEFT, CBR0],
    routes: [
      route('198.18.0.0/24', null, 2, false, 'KERNEL'),
      route('10.5.1.0/24', null, 7, false, 'KERNEL'),
      peerRoute(2),
      peerRoute(3),
      route('0.0.0.0/0', '198.18.0.254', 2),
    ],
    neighs: [peerNeigh(2), peerNeigh(3)],
    fdb: [peerFdb(2), peerFdb(3), { ifindex: 5, mac: MAC.h1, dst: null, permanent: true }],
  };
}

export function withKernel(
  f: (k: { -readonly [K in keyof KernelState]: KernelState[K][number][] }) => void,
): KernelState {
  const k = healthyKernel();
  const m = { links: [...k.links], routes: [...k.routes], neighs: [...k.neighs], fdb: [...k.fdb] };
  f(m);
  return m;
}
