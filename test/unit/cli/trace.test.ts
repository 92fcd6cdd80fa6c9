import { describe, expect, it } from 'vitest';
import { traceOverlay } from '../../../src/cli/commands/trace.js';
import { lookupRoute } from '../../../src/cli/kernel-entries.js';
import type { KernelState } from '../../../src/cli/kernel-entries.js';
import {
  MAC,
  config,
  healthyKernel,
  hostGwConfig,
  lease,
  leases,
  peerNeigh,
  withKernel,
} from './fixtures.js';
import { TRACE_SCHEMA, validate } from './schema.js';

const own = lease(1);
/** A trace over the fixtures' vxlan network from this host (h1); `more` overrides the input. */
const trace = (
  src: string,
  dst: string,
  kernel: KernelState = healthyKernel(),
  more: Partial<Parameters<typeof traceOverlay>[0]> = {},
): ReturnType<typeof traceOverlay> =>
  traceOverlay({ src, dst, config, leases, own, kernel, ...more });
const check = (r: ReturnType<typeof traceOverlay>): void =>
  expect(validate({ ok: r.verdict !== 'dropped', ...r }, TRACE_SCHEMA)).toEqual([]);

describe('trace', () => {
  it('container on this host → container on h2: route, neighbour, FDB, VXLAN outer header', () => {
    const r = trace('10.5.1.2', '10.5.2.2');
    check(r);
    expect(r.verdict).toBe('ok');
    expect(r.src).toEqual({
      ip: '10.5.1.2',
      lease: '10.5.1.0-24',
      subnet: '10.5.1.0/24',
      host: '198.18.0.1',
      local: true,
    });
    expect(r.dst).toMatchObject({ lease: '10.5.2.0-24', host: '198.18.0.2', local: false });
    expect(r.steps.map((s) => [s.what, s.text])).toEqual([
      ['owner', '10.5.1.2 is in 10.5.1.0/24, leased by 198.18.0.1 (this host)'],
      ['owner', '10.5.2.2 is in 10.5.2.0/24, leased by 198.18.0.2'],
      ['route', '10.5.2.0/24 via 10.5.2.0 dev weft.1 onlink'],
      ['neighbour', `10.5.2.0 lladdr ${MAC.h2} dev weft.1`],
      ['fdb', `${MAC.h2} dst 198.18.0.2 dev weft.1`],
      ['encap', 'VXLAN 198.18.0.1 → 198.18.0.2 udp/8472 VNI 1'],
      ['deliver', '198.18.0.2 decapsulates and routes to 10.5.2.2'],
    ]);
    expect(r.outer).toEqual({
      src: '198.18.0.1',
      dst: '198.18.0.2',
      protocol: 'udp',
      port: 8472,
      vni: 1,
      innerDstMac: MAC.h2,
    });
    expect(r.missing).toEqual([]);
  });

  it('says what is missing when the FDB entry is gone', () => {
    const kernel = withKernel((k) => (k.fdb = k.fdb.filter((f) => f.mac !== MAC.h2)));
    const r = trace('10.5.1.2', '10.5.2.2', kernel);
    check(r);
    expect(r.verdict).toBe('dropped');
    expect(r.outer).toBeNull();
    expect(r.missing).toEqual([
      `FDB entry ${MAC.h2} on weft.1: bridge fdb replace ${MAC.h2} dev weft.1 dst 198.18.0.2 self permanent`,
    ]);
  });

  it('a neighbour with a wrong MAC encapsulates but the receiver drops the frame', () => {
    const kernel = withKernel((k) => {
      k.neighs = [peerNeigh(2, 'aa:00:00:00:00:99'), peerNeigh(3)];
      k.fdb = [
        ...k.fdb,
        { ifindex: 5, mac: 'aa:00:00:00:00:99', dst: '198.18.0.2', permanent: true },
      ];
    });
    const r = trace('10.5.1.2', '10.5.2.2', kernel);
    expect(r.verdict).toBe('dropped');
    expect(r.outer?.innerDstMac).toBe('aa:00:00:00:00:99');
    expect(r.missing[0]).toMatch(/not 10\.5\.2\.0-24's VtepMAC aa:00:00:00:00:02/);
  });

  it('no route, no neighbour: dropped with the fix', () => {
    const noRoute = withKernel(
      (k) => (k.routes = k.routes.filter((x) => x.dst !== '10.5.2.0/24' && x.dst !== '0.0.0.0/0')),
    );
    expect(trace('10.5.1.2', '10.5.2.2', noRoute).missing[0]).toMatch(
      /no route to 10\.5\.2\.2 on this host: ip route replace 10\.5\.2\.0\/24 via 10\.5\.2\.0 dev weft\.1 onlink/,
    );
    const noNeigh = withKernel((k) => (k.neighs = []));
    const r = trace('10.5.1.2', '10.5.2.2', noNeigh);
    expect(r.verdict).toBe('dropped');
    expect(r.missing[0]).toMatch(
      /ip neigh replace 10\.5\.2\.0 lladdr aa:00:00:00:00:02 dev weft\.1 nud permanent/,
    );
  });

  it('same host: the bridge delivers, the overlay is not used', () => {
    const r = trace('10.5.1.2', '10.5.1.3');
    expect(r.verdict).toBe('ok');
    expect(r.steps.at(-1)?.text).toMatch(/same host/);
  });

  it('an address in the network that no host leases is dropped; a path elsewhere is unknown here', () => {
    const r = trace('10.5.1.2', '10.5.77.2');
    expect(r.verdict).toBe('dropped');
    expect(r.missing[0]).toMatch(/no host leases/);
    const other = trace('10.5.2.2', '10.5.3.2');
    expect(other.verdict).toBe('unknown');
    expect(other.steps.at(-1)?.text).toMatch(
      /run `weftctl trace 10\.5\.2\.2 10\.5\.3\.2` on 198\.18\.0\.2/,
    );
  });

  it('host-gw: routed natively to the peer public IP; a wrong gateway is named', () => {
    const hg = leases.map((l) => ({
      ...l,
      attrs: { ...l.attrs, backendType: 'host-gw', backendData: undefined },
    }));
    /** The fixture kernel with 10.5.2.0/24 routed natively via `gateway` on eth0. */
    const via = (gateway: string): KernelState =>
      withKernel((k) => {
        k.routes = [
          ...k.routes.filter((x) => !x.dst.startsWith('10.5.2.')),
          {
            family: 4,
            dst: '10.5.2.0/24',
            gateway,
            oif: 2,
            onlink: false,
            table: 254,
            protocol: 'BOOT',
            type: 'UNICAST',
          },
        ];
      });
    const hostGw = (kernel: KernelState) =>
      trace('10.5.1.2', '10.5.2.2', kernel, {
        config: hostGwConfig,
        leases: hg,
        own: hg[0]!,
        addrs: [{ index: 2, cidr: '198.18.0.1/24' }],
      });
    const r = hostGw(via('198.18.0.2'));
    expect(r.verdict).toBe('ok');
    expect(r.steps.at(-1)?.text).toMatch(/routed natively to 198\.18\.0\.2 via eth0/);
    const w = hostGw(via('198.18.0.9'));
    expect(w.verdict).toBe('dropped');
    expect(w.missing[0]).toMatch(/via 198\.18\.0\.9, the lease's public IP is 198\.18\.0\.2/);
  });

  it('a destination weftd refuses is named refused, never given a fix that re-adds its entries', () => {
    const refusedH2 = lease(2, { backendData: { VNI: 7, VtepMAC: MAC.h2 } });
    const kernel = withKernel((k) => (k.neighs = k.neighs.filter((n) => n.dst !== '10.5.2.0')));
    const r = trace('10.5.1.2', '10.5.2.2', kernel, { leases: [own, refusedH2, lease(3)] });
    check(r);
    expect(r.verdict).toBe('dropped');
    expect(r.missing.join('\n')).toMatch(/weftd refuses the lease 10\.5\.2\.0-24 \(VNI 7/);
    expect(r.missing.join('\n')).not.toMatch(/replace/);
  });

  it('longest-prefix match picks the most specific route', () => {
    const k = healthyKernel();
    expect(lookupRoute(k.routes, '10.5.2.9')?.dst).toBe('10.5.2.0/24');
    expect(lookupRoute(k.routes, '8.8.8.8')?.dst).toBe('0.0.0.0/0');
    expect(lookupRoute([], '8.8.8.8')).toBeNull();
  });

  it('on the destination host: delivered locally, the reply path is traced (and its gaps named)', () => {
    const h2 = lease(2);
    const kernel = withKernel((k) => {
      k.links = k.links.map((l) =>
        l.name === 'weft.1'
          ? { ...l, mac: MAC.h2, vxlan: { ...l.vxlan!, local: '198.18.0.2' } }
          : l,
      );
      k.routes = k.routes
        .filter((r) => r.oif !== 7)
        .map((r) =>
          r.dst === '10.5.2.0/24' ? { ...r, dst: '10.5.1.0/24', gateway: '10.5.1.0' } : r,
        );
      k.neighs = [
        peerNeigh(3),
        { family: 4, ifindex: 5, dst: '10.5.1.0', mac: MAC.h1, permanent: true },
      ];
      k.fdb = [{ ifindex: 5, mac: MAC.h1, dst: '198.18.0.1', permanent: true }];
    });
    const r = trace('10.5.1.2', '10.5.2.2', kernel, { own: h2 });
    check(r);
    expect(r.verdict).toBe('ok');
    expect(r.steps.map((s) => s.text)).toContain(
      'reply: VXLAN 198.18.0.2 → 198.18.0.1 udp/8472 VNI 1',
    );
    const broken = trace('10.5.1.2', '10.5.2.2', { ...kernel, fdb: [] }, { own: h2 });
    expect(broken.verdict).toBe('dropped');
    expect(broken.missing[0]).toMatch(/^reply path: FDB entry aa:00:00:00:00:01/);
  });
});
