/**
 * Proves the harness (issue 2): two simulated hosts in their own netns on an underlay bridge; a VXLAN
 * device, neighbour, FDB entry and onlink route programmed in each through the (patched) `netlink`
 * package from this process (socket created inside the netns); a ping crosses the overlay.
 *
 *   h1: weft.1 10.5.1.0/32 ──vxlan/8472 over 198.18.0.1 <-> 198.18.0.2── h2: weft.1 10.5.2.0/32
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync } from 'node:fs';
import { AttrStream, FlagsNew, createRtNetlink, ifla, type RtNetlinkSocket } from 'netlink';
import { inNetns } from '../../src/netns/netns.js';
import { openTun } from '../../src/dataplane/tun.js';
import { createTopology, ping, type Topology } from '../helpers/netns.js';
import { run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'ping', 'tun');
useLeakCheck();

const TIMEOUT = { timeout: 3000 };
const macOf = (i: number): Buffer => Buffer.from([0x0e, 0xaa, 0xbb, 0xcc, 0xdd, i]);
const ip4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));

async function programHost(nl: RtNetlinkSocket, self: number, peer: number): Promise<void> {
  const links = await nl.getLinks(undefined, undefined, TIMEOUT);
  const eth0 = links.find((l) => l.attrs.ifname === 'eth0');
  expect(eth0).toBeDefined();
  const li = new AttrStream();
  li.push(1, Buffer.from('vxlan\0'));
  li.push(
    2,
    ifla.formatVxlan({
      id: 1,
      local: ip4(`198.18.0.${self}`),
      link: eth0!.data.index!,
      port: Buffer.from([0x21, 0x18]),
      learning: 0,
    }),
  );
  await nl.newLink(
    {},
    { ifname: 'weft.1', mtu: 1450, address: macOf(self), linkinfo: Buffer.concat(li.bufs) },
    { flags: FlagsNew.CREATE | FlagsNew.EXCL, ...TIMEOUT },
  );
  const dev = (await nl.getLinks(undefined, undefined, TIMEOUT)).find(
    (l) => l.attrs.ifname === 'weft.1',
  )!;
  const index = dev.data.index!;
  await nl.newAddress(
    { family: 2, prefixlen: 32, index },
    { local: ip4(`10.5.${self}.0`), address: ip4(`10.5.${self}.0`) },
    TIMEOUT,
  );
  await nl.setLink({ index, change: { up: true }, flags: { up: true } }, {}, TIMEOUT);
  await nl.newNeighbor(
    { family: 2, ifindex: index, state: { permanent: true } },
    { dst: ip4(`10.5.${peer}.0`), lladdr: macOf(peer) },
    { flags: FlagsNew.CREATE | FlagsNew.REPLACE, ...TIMEOUT },
  );
  await nl.newNeighbor(
    { family: 7, ifindex: index, state: { permanent: true }, flags: { self: true } },
    { lladdr: macOf(peer), dst: ip4(`198.18.0.${peer}`) },
    { flags: FlagsNew.CREATE | FlagsNew.REPLACE, ...TIMEOUT },
  );
  await nl.newRoute(
    {
      family: 2,
      dstLen: 24,
      table: 254,
      protocol: 'STATIC',
      scope: 'UNIVERSE',
      type: 'UNICAST',
      flags: { __unknown: 4 },
    },
    { dst: ip4(`10.5.${peer}.0`), gateway: ip4(`10.5.${peer}.0`), oif: index },
    { flags: FlagsNew.CREATE | FlagsNew.REPLACE, ...TIMEOUT },
  );
}

describe.skipIf(!runnable)('harness: VXLAN across two simulated hosts via netlink', () => {
  let topo: Topology;
  const sockets: RtNetlinkSocket[] = [];

  beforeAll(async () => {
    topo = await createTopology({ hosts: 2 });
  });
  afterAll(async () => {
    for (const s of sockets) s.socket.close();
    await topo?.destroy();
  });

  it('pings host 2 overlay address from host 1 over a netlink-programmed VXLAN', async () => {
    for (const [self, peer] of [
      [1, 2],
      [2, 1],
    ] as const) {
      const nl = inNetns(topo.hosts[self - 1]!.netns, () => createRtNetlink());
      nl.socket.on('error', () => {});
      sockets.push(nl);
      await programHost(nl, self, peer);
    }
    const detail = (await run('ip', ['-n', topo.hosts[0]!.netns, '-d', 'link', 'show', 'weft.1']))
      .stdout;
    expect(detail).toMatch(/vxlan id 1 local 198\.18\.0\.1 dev eth0 .*dstport 8472 nolearning/);
    const fdb = (await run('bridge', ['-n', topo.hosts[0]!.netns, 'fdb', 'show', 'dev', 'weft.1']))
      .stdout;
    expect(fdb).toContain('0e:aa:bb:cc:dd:02 dst 198.18.0.2 self permanent');
    expect(await ping(topo.hosts[0]!.netns, '10.5.2.0', 3)).toBe(true);
    // a destination with no peer programmed is not reachable: the test can fail
    expect(await ping(topo.hosts[0]!.netns, '10.5.3.0', 1, 1)).toBe(false);
  });

  it('opens a TUN device inside a host netns through the native addon', async () => {
    const tun = inNetns(topo.hosts[0]!.netns, () => openTun('weft0', { vnetHdr: true }));
    try {
      expect(tun.name).toBe('weft0');
      expect(tun.fd).toBeGreaterThan(2);
      const link = (await run('ip', ['-n', topo.hosts[0]!.netns, '-d', 'link', 'show', 'weft0']))
        .stdout;
      expect(link).toContain('tun');
      // the root namespace never saw it
      const root = await run('ip', ['link', 'show', 'weft0'], { allowFail: true });
      expect(root.code).not.toBe(0);
    } finally {
      closeSync(tun.fd);
    }
    expect(() => openTun('bad name!')).toThrow(/TUN name must be/);
    // persistent TUN busy: a second non-multiqueue attach to the same device fails with an errno error
    const a = inNetns(topo.hosts[1]!.netns, () => openTun('weft1'));
    try {
      expect(() => inNetns(topo.hosts[1]!.netns, () => openTun('weft1'))).toThrow(
        expect.objectContaining({
          code: 'E_NATIVE',
          details: expect.objectContaining({ code: 'EBUSY', syscall: 'ioctl' }),
        }),
      );
    } finally {
      closeSync(a.fd);
    }
  });

  it('survives a netlink event-socket overflow (patched netlink: error event, no abort)', async () => {
    const ns = topo.hosts[1]!.netns;
    const events = inNetns(ns, () => createRtNetlink({ recvBufferSize: 4096, sendBufferSize: 0 }));
    const errors: Error[] = [];
    events.socket.on('error', (e: Error) => errors.push(e));
    events.addMembership('IPV4_ROUTE');
    events.socket.ref();
    // Flood route events while the event loop is blocked, so the tiny receive buffer overflows.
    const batch = Array.from(
      { length: 3000 },
      (_, i) => `route add 10.77.${i >> 8}.${i & 255}/32 dev eth0`,
    ).join('\n');
    const flood = run('ip', ['-n', ns, '-batch', '-'], { input: batch + '\n', timeoutMs: 30_000 });
    const until = Date.now() + 700;
    while (Date.now() < until) {
      /* block the loop: the kernel queues events until the socket overflows */
    }
    await flood;
    await new Promise((r) => setTimeout(r, 300));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/ENOBUFS|No buffer space|polling|receiving/i);
    try {
      events.socket.close();
    } catch {
      /* already closed by the binding after the error */
    }
  });
});
