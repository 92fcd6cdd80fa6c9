/**
 * The native rtnetlink sender (native/src/rtnl_sender.c, src/netlink/native-sender.ts) and the full
 * reconcile's stream over it, against the real kernel inside a test netns driven from this process:
 * entries programmed in push order inside the named netns (not the test's own), kernel errors reported
 * at the request that caused them, a request the kernel never acknowledges failing with the timeout
 * code (and the sender working on after it), a sender closed mid-stream failing what was unanswered
 * with E_NETLINK_SOCKET instead of hanging, and the reconcile's guarantee: a peer whose neighbour or
 * FDB entry failed ends with none of its entries while the healthy peers are programmed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netlinkSink } from '../../src/backend/netlink-sink.js';
import type { PeerEntries } from '../../src/backend/peer-entries.js';
import { createNetlinkOps, type Mutation, type NetlinkOps } from '../../src/netlink/index.js';
import { encodeInto } from '../../src/netlink/encode.js';
import { RES_TIMEOUT, nativeResultError } from '../../src/netlink/native-sender.js';
import { loadNative } from '../../src/native/binding.js';
import { inNetns } from '../../src/netns/netns.js';
import { run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createTopology, type Topology } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns');
useLeakCheck();

const subnetOf = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}.0`;
const macOf = (i: number): string =>
  `0e:42:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const publicOf = (i: number): string => `198.18.${1 + (i >> 8)}.${i & 255}`;

describe.skipIf(!runnable)('native rtnetlink sender (real kernel in a netns)', () => {
  let topo: Topology;
  let ns: string;
  let ops: NetlinkOps;
  let dev: number;
  const peer = (i: number, over: Partial<PeerEntries> = {}): PeerEntries => ({
    key: `p${i}/4`,
    subnet: `${subnetOf(i)}/24`,
    neigh: { ifindex: dev, dst: subnetOf(i), mac: macOf(i) },
    fdb: { ifindex: dev, mac: macOf(i), dst: publicOf(i) },
    route: { dst: `${subnetOf(i)}/24`, gateway: subnetOf(i), oif: dev, onlink: true },
    ...over,
  });
  const routes = async (): Promise<string[]> =>
    (await ops.routeList(4, { oif: dev }))
      .filter((r) => r.protocol !== 'KERNEL')
      .map((r) => r.dst)
      .sort();
  const flush = async (): Promise<void> => {
    await run('ip', ['-n', ns, 'link', 'set', 'weft.9', 'down']);
    await run('ip', ['-n', ns, 'neigh', 'flush', 'dev', 'weft.9']);
    for (const f of await ops.fdbList(dev))
      if (f.dst !== null) await ops.fdbDelete({ ifindex: dev, mac: f.mac, dst: f.dst });
    await run('ip', ['-n', ns, 'link', 'set', 'weft.9', 'up']); // down dropped the routes
  };

  beforeAll(async () => {
    topo = await createTopology({ hosts: 1 });
    ns = topo.hosts[0]!.netns;
    ops = createNetlinkOps({ netns: ns, timeoutMs: 2_000 });
    expect(ops.openStream, 'the native addon has the sender').toBeTypeOf('function');
    const eth0 = (await ops.getLink('eth0'))!.index;
    const { link } = await ops.ensureVxlanLink({
      name: 'weft.9',
      vni: 9,
      local: '198.18.0.1',
      underlayIndex: eth0,
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: '0e:00:00:00:00:09',
    });
    dev = link.index;
    await ops.setLinkUp(dev);
  });
  afterAll(async () => {
    ops?.close();
    await topo?.destroy();
  });

  it('two streams open at once (pushes interleaved) each program exactly their own entries', async () => {
    const a = ops.openStream!();
    const b = ops.openStream!();
    // 150 neighbours each, alternating, so that both streams hold partly filled chunks at once.
    for (let i = 0; i < 150; i++) {
      a.push({ op: 'neighReplace', neigh: peer(i).neigh! });
      b.push({ op: 'neighReplace', neigh: peer(1000 + i).neigh! });
    }
    const [ra, rb] = await Promise.all([a.end(), b.end()]);
    expect(ra.every((r) => r === null) && rb.every((r) => r === null)).toBe(true);
    const got = new Map((await ops.neighList(4, dev)).map((e) => [e.dst, e.mac]));
    for (const i of [0, 77, 149, 1000, 1077, 1149])
      expect(got.get(subnetOf(i)), `neighbour of peer ${i}`).toBe(macOf(i));
    expect([...got.keys()].filter((d) => d.startsWith('10.'))).toHaveLength(300);
    await flush();
  });

  it('programs many peers in push order inside the named netns, not the caller’s', async () => {
    const n = 300;
    const s = ops.openStream!();
    for (let i = 0; i < n; i++) {
      const p = peer(i);
      s.push({ op: 'neighReplace', neigh: p.neigh! });
      s.push({ op: 'fdbReplace', fdb: p.fdb! });
      s.push({ op: 'routeReplace', route: p.route });
    }
    // Order within the stream: replace, delete, replace again with another MAC → the last one wins.
    const x = { ifindex: dev, dst: '10.99.0.1' };
    s.push({ op: 'neighReplace', neigh: { ...x, mac: '0e:00:00:00:99:01' } });
    s.push({ op: 'neighDelete', neigh: x });
    s.push({ op: 'neighReplace', neigh: { ...x, mac: '0e:00:00:00:99:02' } });
    s.push({ op: 'routeDelete', route: { dst: '10.98.0.0/24', oif: dev } }); // never existed
    const results = await s.end();
    expect(results).toHaveLength(3 * n + 4);
    expect(results.slice(0, 3 * n + 3).every((r) => r === null)).toBe(true);
    expect(results[3 * n + 3]).toMatchObject({ code: 'E_NETLINK', errno: 'ESRCH' });
    expect(await routes()).toHaveLength(n);
    const neighs = await ops.neighList(4, dev);
    expect(neighs.filter((e) => e.permanent)).toHaveLength(n + 1);
    expect(neighs.find((e) => e.dst === '10.99.0.1')?.mac).toBe('0e:00:00:00:99:02');
    expect((await ops.fdbList(dev)).filter((f) => f.dst !== null)).toHaveLength(n);
    const shown = (await run('ip', ['-n', ns, 'route', 'show', `${subnetOf(7)}/24`])).stdout;
    expect(shown).toMatch(/via 10\.100\.7\.0 dev weft\.9 .*onlink/);
    const root = (await run('ip', ['route', 'show', `${subnetOf(7)}/24`])).stdout;
    expect(root.trim()).toBe('');
    await flush();
    expect(await routes()).toEqual([]);
  });

  it('reports a kernel error at the request that caused it; the others succeed', async () => {
    const s = ops.openStream!();
    // In the stream's first, small chunks (4, 8, 16, … requests) and in a full one.
    const bad = [0, 5, 20, 50, 137];
    for (let i = 0; i < 200; i++) {
      const r = peer(i).route;
      s.push({ op: 'routeReplace', route: bad.includes(i) ? { ...r, oif: 999_999 } : r });
    }
    const results = await s.end();
    for (const i of bad)
      expect(results[i]).toMatchObject({ code: 'E_NETLINK', errno: 'ENODEV', op: 'routeReplace' });
    expect(results.filter((r) => r !== null)).toHaveLength(bad.length);
    const got = await routes();
    expect(got).toHaveLength(200 - bad.length);
    for (const i of bad) expect(got).not.toContain(`${subnetOf(i)}/24`);
    await flush();
  });

  it('fails a request the kernel never acknowledges with the timeout code, then goes on', async () => {
    const done: { id: number; results: Int32Array | null }[] = [];
    const sender = inNetns(
      ns,
      () => new (loadNative().RtnlSender)(64, 150, (id, results) => done.push({ id, results })),
    );
    try {
      sender.ref();
      // An RTM_GETLINK dump: answered with link messages and NLMSG_DONE, never with an NLMSG_ERROR.
      const dump = Buffer.alloc(32);
      dump.writeUInt32LE(32, 0);
      dump.writeUInt16LE(18, 4); // RTM_GETLINK
      dump.writeUInt16LE(0x1 | 0x300, 6); // NLM_F_REQUEST | NLM_F_DUMP
      const t0 = performance.now();
      const settled = async (count: number): Promise<void> => {
        while (done.length < count && performance.now() - t0 < 5_000)
          await new Promise((r) => setTimeout(r, 10));
      };
      expect(sender.submit(dump, 1)).toBe(1);
      await settled(1);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
      const m: Mutation = { op: 'routeReplace', route: peer(1).route };
      const buf = Buffer.alloc(96);
      const len = encodeInto(buf, 0, m, 0, 0, false);
      expect(sender.submit(buf.subarray(0, len), 2)).toBe(1);
      await settled(2);
      expect(done.map((d) => d.id)).toEqual([1, 2]);
      const code = done[0]!.results![0]!;
      expect(code & RES_TIMEOUT).toBe(RES_TIMEOUT);
      expect(nativeResultError(m, code)).toMatchObject({
        code: 'E_NETLINK_TIMEOUT',
        errno: 'ETIMEDOUT',
      });
      expect(done[1]!.results).toBeNull(); // the late dump answers did not confuse the next request
      expect(await routes()).toEqual([`${subnetOf(1)}/24`]);
      // Malformed framing never reaches the kernel.
      expect(() => sender.submit(Buffer.alloc(8), 3)).toThrow(/EINVAL/);
    } finally {
      sender.close();
    }
    expect(sender.lost()).toBe(true);
    expect(() => sender.submit(Buffer.alloc(32), 4)).toThrow(/EPIPE/);
    await flush();
  });

  it('a sender closed mid-stream fails what was unanswered with E_NETLINK_SOCKET, never hangs', async () => {
    const other = createNetlinkOps({ netns: ns });
    const s = other.openStream!();
    const n = 8000; // routes get slower with each one in the table: far more than the push takes
    for (let i = 0; i < n; i++) s.push({ op: 'routeReplace', route: peer(i).route });
    const pending = s.end();
    other.close();
    const results = await pending;
    expect(results).toHaveLength(n);
    const lost = results.filter((r) => r !== null);
    expect(lost.length).toBeGreaterThan(0);
    for (const r of lost) expect(r).toMatchObject({ code: 'E_NETLINK_SOCKET', errno: 'ESOCKET' });
    // Answered ones come first: the kernel applied the stream in order.
    const firstLost = results.findIndex((r) => r !== null);
    expect(results.slice(firstLost).every((r) => r !== null)).toBe(true);
    expect(await routes()).toHaveLength(firstLost);
    await flush();
  });

  it('reconcile: a peer whose neighbour, FDB entry or route failed ends with none of its entries', async () => {
    const sink = netlinkSink(ops, {
      ensureReady: async () => {},
      readKernel: async () => ({ routes: [], neighs: [], fdb: [] }),
    });
    const badNeigh = peer(2, { neigh: { ifindex: 999_999, dst: subnetOf(2), mac: macOf(2) } });
    const badFdb = peer(4, { fdb: { ifindex: 999_999, mac: macOf(4), dst: publicOf(4) } });
    const badRoute = peer(6, { route: { ...peer(6).route, oif: 999_999 } });
    const peers = [peer(0), peer(1), badNeigh, peer(3), badFdb, peer(5), badRoute];
    const rec = await sink.beginReconcile!();
    for (const p of peers) rec.add(p);
    const res = await rec.finish();
    expect(res.programmed).toBe(7);
    expect(res.failed.map((f) => f.entry.key).sort()).toEqual(['p2/4', 'p4/4', 'p6/4']);
    for (const f of res.failed) expect(f.err).toMatchObject({ code: 'E_NETLINK', errno: 'ENODEV' });
    const healthy = [0, 1, 3, 5];
    expect(await routes()).toEqual(healthy.map((i) => `${subnetOf(i)}/24`).sort());
    expect(
      (await ops.neighList(4, dev))
        .filter((e) => e.permanent)
        .map((e) => e.dst)
        .sort(),
    ).toEqual(healthy.map(subnetOf).sort());
    expect(
      (await ops.fdbList(dev))
        .filter((f) => f.dst !== null)
        .map((f) => f.mac)
        .sort(),
    ).toEqual(healthy.map(macOf).sort());
    await flush();
  });
});
