import { describe, expect, it } from 'vitest';
import { isFault, peerVerdicts, type PeerRow } from '../../../src/cli/peers.js';
import type { KernelState } from '../../../src/cli/kernel-entries.js';
import { overlayDeviceNames, overlayDevices } from '../../../src/cli/overlay-devices.js';
import { parseNetworkConfig } from '../../../src/subnet/config.js';
import {
  MAC,
  WEFT,
  config,
  healthyKernel,
  hostGwConfig,
  lease,
  leases,
  peerFdb,
  peerNeigh,
  withKernel,
} from './fixtures.js';
import { PEER_SCHEMA, validate } from './schema.js';

const own = lease(1);
/** The rows for this host (h1) of the fixtures' vxlan network; `more` overrides the input. */
const rowsOf = (
  kernel: KernelState = healthyKernel(),
  more: Partial<Parameters<typeof peerVerdicts>[0]> = {},
): PeerRow[] => peerVerdicts({ config, own, leases, kernel, ...more });
type KernelEdit = Parameters<Parameters<typeof withKernel>[0]>[0];
const verdicts = (rows: PeerRow[]): Record<string, string> =>
  Object.fromEntries(rows.map((r) => [r.subnet, r.verdict]));

describe('peer verdicts (vxlan)', () => {
  it('every peer ok when route, neighbour and FDB match the leases; own lease is never a peer', () => {
    const rows = rowsOf();
    expect(verdicts(rows)).toEqual({ '10.5.2.0/24': 'ok', '10.5.3.0/24': 'ok' });
    expect(rows[0]).toMatchObject({
      route: '10.5.2.0/24 via 10.5.2.0 dev weft.1 onlink',
      neigh: '10.5.2.0 lladdr aa:00:00:00:00:02 dev weft.1 PERMANENT',
      fdb: 'aa:00:00:00:00:02 dev weft.1 dst 198.18.0.2 permanent',
      problems: [],
      fixes: [],
    });
    for (const r of rows) expect(validate(r, PEER_SCHEMA)).toEqual([]);
    expect(rows.some(isFault)).toBe(false);
  });

  it.each([
    [
      'FDB entry deleted',
      (k: KernelEdit) => (k.fdb = k.fdb.filter((f) => f.mac !== MAC.h2)),
      'missing',
      /no FDB entry for aa:00:00:00:00:02/,
      /bridge fdb replace aa:00:00:00:00:02 dev weft\.1 dst 198\.18\.0\.2 self permanent/,
    ],
    [
      'route deleted',
      (k: KernelEdit) => (k.routes = k.routes.filter((r) => r.dst !== '10.5.2.0/24')),
      'missing',
      /no route to 10\.5\.2\.0\/24/,
      /ip route replace 10\.5\.2\.0\/24 via 10\.5\.2\.0 dev weft\.1 onlink/,
    ],
    [
      'neighbour deleted',
      (k: KernelEdit) => (k.neighs = k.neighs.filter((n) => n.dst !== '10.5.2.0')),
      'missing',
      /no neighbour entry for 10\.5\.2\.0/,
      /ip neigh replace 10\.5\.2\.0 lladdr aa:00:00:00:00:02 dev weft\.1 nud permanent/,
    ],
    [
      'neighbour MAC changed',
      (k: KernelEdit) => (k.neighs = [peerNeigh(2, '02:00:00:00:00:99'), peerNeigh(3)]),
      'wrong-mac',
      /has MAC 02:00:00:00:00:99, the lease publishes aa:00:00:00:00:02/,
      /ip neigh replace 10\.5\.2\.0 lladdr aa:00:00:00:00:02/,
    ],
    [
      'FDB entry sends to an old public IP',
      (k: KernelEdit) => (k.fdb = [peerFdb(2, '198.18.0.77'), peerFdb(3)]),
      'wrong-public-ip',
      /sends to 198\.18\.0\.77, the lease's public IP is 198\.18\.0\.2/,
      /bridge fdb del aa:00:00:00:00:02 dev weft\.1 dst 198\.18\.0\.77 self/,
    ],
    [
      'FDB entry for the public IP carries an old VTEP MAC',
      (k: KernelEdit) => (k.fdb = [peerFdb(2, '198.18.0.2', 'aa:00:00:00:00:22'), peerFdb(3)]),
      'wrong-mac',
      /FDB entry for 198\.18\.0\.2 has MAC aa:00:00:00:00:22/,
      /bridge fdb replace aa:00:00:00:00:02/,
    ],
  ])('%s → %s, with the problem and the fix', (_name, breakIt, verdict, problem, fix) => {
    const rows = rowsOf(withKernel(breakIt));
    const p2 = rows.find((r) => r.subnet === '10.5.2.0/24')!;
    expect(p2.verdict).toBe(verdict);
    expect(p2.problems.join('\n')).toMatch(problem);
    expect(p2.fixes.join('\n')).toMatch(fix);
    expect(rows.find((r) => r.subnet === '10.5.3.0/24')!.verdict).toBe('ok');
    expect(isFault(p2)).toBe(true);
  });

  it('marks kernel entries no lease explains as stale (a peer that left while weftd was down)', () => {
    const rows = rowsOf(healthyKernel(), { leases: [lease(1), lease(2)] });
    expect(verdicts(rows)['10.5.2.0/24']).toBe('ok');
    const stale = rows.filter((r) => r.verdict === 'stale');
    expect(stale.map((s) => s.route ?? s.neigh ?? s.fdb)).toEqual([
      '10.5.3.0/24 via 10.5.3.0 dev weft.1 onlink',
      '10.5.3.0 lladdr aa:00:00:00:00:03 dev weft.1 PERMANENT',
      'aa:00:00:00:00:03 dev weft.1 dst 198.18.0.3 permanent',
    ]);
    expect(stale.flatMap((s) => s.fixes)).toEqual([
      'ip route del 10.5.3.0/24',
      'ip neigh del 10.5.3.0 dev weft.1',
      'bridge fdb del aa:00:00:00:00:03 dev weft.1 dst 198.18.0.3 self',
    ]);
    // the local bridge route, the default route and the device's own all-zero-dst entry are not stale
    expect(stale.some((s) => s.route?.startsWith('10.5.1.0'))).toBe(false);
  });

  it('names a refused lease without a public IP by its key and subnet, never "public IP ?"', () => {
    const noIp = lease(2, { publicIp: '0.0.0.0' });
    const rows = rowsOf(healthyKernel(), { leases: [own, noIp, lease(3)] });
    const p2 = rows.find((r) => r.subnet === '10.5.2.0/24')!;
    expect(p2.verdict).toBe('refused');
    const fix = p2.fixes.join('\n');
    expect(fix).not.toMatch(/\?/);
    expect(fix).toMatch(/lease 10\.5\.2\.0-24 \(subnet 10\.5\.2\.0\/24, no public IP\)/);
    // with a public IP the fix still names the host by it
    const bad = lease(2, { backendData: { VNI: 'x' } });
    const r2 = rowsOf(healthyKernel(), { leases: [own, bad, lease(3)] });
    expect(r2.find((r) => r.subnet === '10.5.2.0/24')!.fixes.join('\n')).toMatch(
      /host with public IP 198\.18\.0\.2/,
    );
  });

  it("reports a peer with hostile backend data as refused, with weftd's reason and no fix that re-adds it", () => {
    const bad = lease(2, { backendData: { VNI: 'x', VtepMAC: '\u001b[31mred' } });
    const rows = rowsOf(healthyKernel(), { leases: [own, bad, lease(3)] });
    const p2 = rows.find((r) => r.subnet === '10.5.2.0/24')!;
    expect(p2.verdict).toBe('refused');
    expect(p2.reason).toMatch(/invalid vxlan backend data: BackendData\.VNI/);
    expect(p2.problems[0]).toMatch(/VNI/);
    expect(p2.fixes.join('\n')).not.toMatch(/replace/);
    // weftd deletes what the kernel still holds for a refused peer: so does the fix shown
    expect(rows.filter((r) => r.verdict === 'stale').flatMap((r) => r.fixes)).toContain(
      'ip route del 10.5.2.0/24',
    );
    expect(validate(p2, PEER_SCHEMA)).toEqual([]);
  });

  it('skips peers of another backend type (not a fault) and reports a missing device', () => {
    const other = lease(3, { backendType: 'host-gw', backendData: undefined });
    const noDev = withKernel((k) => (k.links = k.links.filter((l) => l.name !== 'weft.1')));
    const rows = rowsOf(noDev, { leases: [own, lease(2), other] });
    expect(rows.filter((r) => r.lease !== null).map((r) => [r.subnet, r.verdict])).toEqual([
      ['10.5.2.0/24', 'missing'],
      ['10.5.3.0/24', 'skipped'],
    ]);
    expect(rows.find((r) => r.subnet === '10.5.2.0/24')!.problems[0]).toMatch(
      /device weft\.1 does not exist/,
    );
    expect(isFault(rows.find((r) => r.verdict === 'skipped')!)).toBe(false);
  });

  it('derives device names from the config like the backend (Name, VNI, IPv6)', () => {
    expect(overlayDevices(config)).toEqual({ 4: 'weft.1', 6: null });
    expect(
      overlayDevices(
        parseNetworkConfig(
          '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48","Backend":{"Type":"vxlan","VNI":7}}',
        ),
      ),
    ).toEqual({ 4: 'weft.7', 6: 'weft-v6.7' });
    expect(overlayDevices(hostGwConfig)).toEqual({ 4: null, 6: null });
  });
});

describe('peer verdicts (host-gw)', () => {
  const hg = (n: 2 | 3, gw: string) => ({
    family: 4 as const,
    dst: `10.5.${n}.0/24`,
    gateway: gw,
    oif: 2,
    onlink: false,
    table: 254,
    protocol: 'BOOT',
    type: 'UNICAST',
  });
  const hgLeases = [1, 2, 3].map((n) =>
    lease(n as 1 | 2 | 3, { backendType: 'host-gw', backendData: undefined }),
  );
  const hostGw = {
    config: hostGwConfig,
    own: hgLeases[0]!,
    leases: hgLeases,
    addrs: [{ index: 2, cidr: '198.18.0.1/24' }],
  };

  it('ok via the public IP, wrong-public-ip via another gateway, missing without a route', () => {
    const kernel = withKernel((k) => {
      k.routes = [hg(2, '198.18.0.2'), hg(3, '198.18.0.9')];
      k.neighs = [];
      k.fdb = [];
    });
    const rows = rowsOf(kernel, hostGw);
    expect(verdicts(rows)).toEqual({ '10.5.2.0/24': 'ok', '10.5.3.0/24': 'wrong-public-ip' });
    expect(rows[1]!.fixes).toEqual(['ip route replace 10.5.3.0/24 via 198.18.0.3']);
    const none = rowsOf({ ...kernel, routes: [] }, hostGw);
    expect(verdicts(none)).toEqual({ '10.5.2.0/24': 'missing', '10.5.3.0/24': 'missing' });
  });
});

describe('peer verdicts (udp, dual stack)', () => {
  const udpConfig = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}');
  const udpLeases = [1, 2].map((n) =>
    lease(n as 1 | 2, { backendType: '', backendData: undefined }),
  );
  const udp = { config: udpConfig, own: udpLeases[0]!, leases: udpLeases };
  const tun = { index: 9, name: 'weft0', kind: 'tun', mtu: 1472, mac: null, up: true };
  const clusterRoute = {
    family: 4 as const,
    dst: '10.5.0.0/16',
    gateway: null,
    oif: 9,
    onlink: false,
    table: 254,
    protocol: 'BOOT',
    type: 'UNICAST',
  };

  it('udp: ok when the peer subnet routes into the TUN, missing without the TUN', () => {
    const kernel = withKernel((k) => {
      k.links = [...k.links.filter((l) => l.name !== 'weft.1'), tun];
      k.routes = [...k.routes.filter((r) => r.oif !== 5), clusterRoute];
      k.neighs = [];
      k.fdb = [];
    });
    const rows = rowsOf(kernel, udp);
    expect(rows).toEqual([
      expect.objectContaining({
        subnet: '10.5.2.0/24',
        verdict: 'ok',
        route: '10.5.0.0/16 dev weft0',
      }),
    ]);
    const gone = rowsOf({ ...kernel, links: kernel.links.filter((l) => l.name !== 'weft0') }, udp);
    expect(gone[0]).toMatchObject({
      verdict: 'missing',
      problems: ['TUN device weft0 does not exist'],
    });
    expect(overlayDevices(udpConfig)).toEqual({ 4: 'weft0', 6: null });
    // dual stack udp: one TUN carries both families, read (and listed by status) once
    const dualUdp = { ...udpConfig, enableIPv6: true, ipv6Network: 'fd05::/48' };
    expect(overlayDevices(dualUdp)).toEqual({ 4: 'weft0', 6: 'weft0' });
    expect(overlayDeviceNames(dualUdp)).toEqual(['weft0']);
    expect(overlayDeviceNames(null)).toEqual([]);
  });

  it('dual stack: one row per family, the IPv6 one checked on weft-v6.1 against PublicIPv6', () => {
    const dual = parseNetworkConfig(
      '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd05::/48","Backend":{"Type":"vxlan"}}',
    );
    const v6 = (n: 1 | 2) => ({
      ...lease(n, {
        publicIpv6: `fd18::${n}`,
        backendV6Data: { VNI: 1, VtepMAC: `ba:00:00:00:00:0${n}` },
      }),
      key: `10.5.${n}.0-24&fd05:0:0:${n}::-64`,
      subnet6: `fd05:0:0:${n}::/64`,
    });
    const dev6 = { ...WEFT, index: 6, name: 'weft-v6.1', mac: 'ba:00:00:00:00:01' };
    const kernel = withKernel((k) => {
      k.links.push(dev6);
      k.routes = [
        ...k.routes,
        {
          family: 6,
          dst: 'fd05:0:0:2::/64',
          gateway: 'fd05:0:0:2::',
          oif: 6,
          onlink: true,
          table: 254,
          protocol: 'BOOT',
          type: 'UNICAST',
        },
      ];
      k.neighs.push({
        family: 6,
        ifindex: 6,
        dst: 'fd05:0:0:2::',
        mac: 'ba:00:00:00:00:02',
        permanent: true,
      });
      k.fdb.push({ ifindex: 6, mac: 'ba:00:00:00:00:02', dst: 'fd18::9', permanent: true });
    });
    const rows = rowsOf(kernel, { config: dual, own: v6(1), leases: [v6(1), v6(2), lease(3)] });
    expect(
      rows
        .filter((r) => r.lease === '10.5.2.0-24&fd05:0:0:2::-64')
        .map((r) => [r.family, r.verdict]),
    ).toEqual([
      [4, 'ok'],
      [6, 'wrong-public-ip'],
    ]);
    expect(rows.find((r) => r.family === 6)!.problems[0]).toMatch(
      /sends to fd18::9, the lease's public IP is fd18::2/,
    );
  });
});
