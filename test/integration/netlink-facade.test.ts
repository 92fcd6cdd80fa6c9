/**
 * The netlink façade against the real kernel, inside a test netns driven from this process, beyond the
 * shared contract (netlink-contract.test.ts): iproute2's view of what it programs, per-entry results
 * of multi-datagram batches, a 15k-operation burst, a dump timeout, and an event flood that overflows
 * the event socket (the process survives, subscribers get 'resync', events keep flowing on the
 * re-created socket); the same for the route / neighbour / FDB event socket (watchEntries), which is
 * silent while muted; a VXLAN device's learning set back in place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetlinkOps,
  NetlinkError,
  type EntryEvent,
  type LinkEvent,
  type NetlinkOps,
} from '../../src/netlink/index.js';
import { createTopology, type Topology } from '../helpers/netns.js';
import { run, sleep } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns');
useLeakCheck();

describe.skipIf(!runnable)('netlink façade (real kernel in a netns)', () => {
  let topo: Topology;
  let ns: string;
  let ops: NetlinkOps;
  const extra: NetlinkOps[] = [];
  let eth0: number;

  beforeAll(async () => {
    topo = await createTopology({ hosts: 1 });
    ns = topo.hosts[0]!.netns;
    ops = createNetlinkOps({ netns: ns });
    eth0 = (await ops.getLink('eth0'))!.index;
  });
  afterAll(async () => {
    ops?.close();
    for (const o of extra) o.close();
    await topo?.destroy();
  });

  // Device lifecycle, addresses, neighbours, FDB, routes and batches are the shared contract
  // (test/fakes/netlink.contract.ts, run on this kernel by netlink-contract.test.ts); here: that what
  // the façade programs is what iproute2 shows.
  it('programs what iproute2 shows: the VXLAN device, an onlink route, a batched neighbour', async () => {
    const { link } = await ops.ensureVxlanLink({
      name: 'weft.7',
      vni: 7,
      local: '198.18.0.1',
      underlayIndex: eth0,
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: '0e:00:00:00:00:07',
    });
    const detail = (await run('ip', ['-n', ns, '-d', 'link', 'show', 'weft.7'])).stdout;
    expect(detail).toMatch(/vxlan id 7 local 198\.18\.0\.1 dev eth0 .*dstport 8472 nolearning/);
    await ops.setLinkUp(link.index);
    await ops.routeReplace({
      dst: '10.5.2.0/24',
      gateway: '10.5.2.0',
      oif: link.index,
      onlink: true,
    });
    const shown = (await run('ip', ['-n', ns, 'route', 'show', 'dev', 'weft.7'])).stdout;
    expect(shown).toMatch(/10\.5\.2\.0\/24 via 10\.5\.2\.0 .*onlink/);
    const [ok] = await ops.applyBatch([
      {
        op: 'neighReplace',
        neigh: { ifindex: eth0, dst: '198.18.0.44', mac: '0e:44:44:44:44:44' },
      },
    ]);
    expect(ok).toBeNull();
    expect(
      await run('ip', ['-n', ns, 'neigh', 'show', '198.18.0.44']).then((r) => r.stdout),
    ).toContain('lladdr 0e:44:44:44:44:44 PERMANENT');
    await ops.neighDelete({ ifindex: eth0, dst: '198.18.0.44' });
    expect(await ops.getLink('nope0')).toBeNull();
    await ops.deleteLink(link.index);
  });

  it('reports each failure of a multi-datagram batch against its own entry (one ACK per datagram)', async () => {
    // 200 routes span several datagrams; failures sit on datagram edges (first, last) and inside, and
    // a malformed entry is skipped without shifting its neighbours' results.
    const bad = new Set([0, 31, 32, 33, 63, 64, 100, 199]);
    const mutations = Array.from({ length: 200 }, (_, i) => ({
      op: 'routeReplace' as const,
      route:
        i === 150
          ? { dst: '10.45.0.0/99', oif: eth0 }
          : { dst: `10.45.${i}.0/24`, oif: bad.has(i) ? 99_999 : eth0 },
    }));
    const before = ops.stats().requests;
    const results = await ops.applyBatch(mutations);
    expect(ops.stats().requests - before).toBe(200);
    results.forEach((r, i) => {
      if (i === 150) expect(r).toMatchObject({ code: 'E_NETLINK', errno: 'EINVAL' });
      else if (bad.has(i))
        expect(r, `entry ${i}`).toMatchObject({
          errno: 'ENODEV',
          object: `10.45.${i}.0/24 dev 99999`,
        });
      else expect(r, `entry ${i}`).toBeNull();
    });
    const listed = (await ops.routeList(4, { oif: eth0 })).filter((r) =>
      r.dst.startsWith('10.45.'),
    );
    expect(listed.length).toBe(200 - bad.size - 1);
    const gone = await ops.applyBatch(
      mutations.map((m) => ({ op: 'routeDelete' as const, route: { ...m.route, oif: eth0 } })),
    );
    expect(gone.filter((r) => r === null).length).toBe(200 - bad.size - 1);
    expect(gone.filter((r) => r?.errno === 'ESRCH').length).toBe(bad.size);
    expect(ops.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('survives a burst of 15k route operations (≤ 64 in flight) and times out a slow dump', async () => {
    let maxInFlight = 0;
    const sampler = setInterval(() => {
      maxInFlight = Math.max(maxInFlight, ops.stats().inFlight);
    }, 1);
    const routes = Array.from({ length: 15_000 }, (_, i) => ({
      dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
      oif: eth0,
    }));
    const t0 = Date.now();
    await Promise.all(routes.map((r) => ops.routeReplace(r)));
    const addMs = Date.now() - t0;
    expect(ops.stats().queued).toBe(0);
    const listed = await ops.routeList(4, { oif: eth0 });
    expect(listed.filter((r) => r.dst.startsWith('10.10')).length).toBe(15_000);

    // A 1 ms dump deadline on 15k routes: a typed, retryable timeout, and the façade stays usable.
    const hurried = createNetlinkOps({ netns: ns, dumpTimeoutMs: 1 });
    extra.push(hurried);
    await expect(hurried.routeList(4)).rejects.toMatchObject({
      code: 'E_NETLINK_TIMEOUT',
      errno: 'ETIMEDOUT',
    });
    expect((await createSmallCheck(hurried)).length).toBeGreaterThan(0);

    await Promise.all(routes.map((r) => ops.routeDelete(r)));
    clearInterval(sampler);
    expect(
      (await ops.routeList(4, { oif: eth0 })).filter((r) => r.dst.startsWith('10.10')).length,
    ).toBe(0);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(64);
    console.log(`15k route adds in ${addMs} ms`);
  });

  it('reports global addresses added and removed with their flags, not link-local ones', async () => {
    const events: LinkEvent[] = [];
    const unsubscribe = ops.subscribeLinks((e) => events.push(e));
    await run('ip', ['-n', ns, 'link', 'add', 'addr0', 'type', 'bridge']);
    await run('ip', ['-n', ns, 'link', 'set', 'addr0', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', '192.0.2.7/24', 'dev', 'addr0']);
    await run('ip', [
      '-n',
      ns,
      'addr',
      'add',
      'fd77::7/64',
      'dev',
      'addr0',
      'nodad',
      'preferred_lft',
      '0',
    ]);
    await run('ip', ['-n', ns, 'addr', 'del', '192.0.2.7/24', 'dev', 'addr0']);
    await sleep(300);
    const index = (await ops.getLink('addr0'))!.index;
    const seen = events.flatMap((e) =>
      e.kind === 'address' ? [[e.added, e.link.name, e.addr.index, e.addr.cidr] as const] : [],
    );
    expect(seen).toEqual([
      [true, 'addr0', index, '192.0.2.7/24'],
      [true, 'addr0', index, 'fd77::7/64'],
      [false, 'addr0', index, '192.0.2.7/24'],
    ]);
    const v6 = events.find((e) => e.kind === 'address' && e.addr.cidr === 'fd77::7/64');
    expect(v6?.kind === 'address' && v6.addr.flags).toEqual(
      expect.arrayContaining(['nodad', 'deprecated', 'permanent']),
    );
    expect((await ops.listAddrs(index, 6)).find((a) => a.cidr === 'fd77::7/64')?.flags).toEqual(
      expect.arrayContaining(['nodad', 'deprecated', 'permanent']),
    );
    unsubscribe();
    await run('ip', ['-n', ns, 'link', 'del', 'addr0']);
  });

  it('survives a flood of link events that overflows the event socket, then keeps delivering', async () => {
    const small = createNetlinkOps({ netns: ns, eventRecvBufferBytes: 4096 });
    extra.push(small);
    const events: LinkEvent[] = [];
    const unsubscribe = small.subscribeLinks((e) => events.push(e));
    await run('ip', ['-n', ns, 'link', 'add', 'flood0', 'type', 'bridge']);
    // 3000 MTU changes = 3000 RTM_NEWLINK events (~1.5 KiB each) into a 4 KiB buffer.
    const batch = Array.from(
      { length: 3000 },
      (_, i) => `link set flood0 mtu ${1300 + (i % 100)}`,
    ).join('\n');
    const flood = run('ip', ['-n', ns, '-batch', '-'], { input: batch + '\n', timeoutMs: 60_000 });
    const until = Date.now() + 700;
    while (Date.now() < until) {
      /* block the loop so the kernel overflows the 4 KiB receive buffer */
    }
    await flood;
    await sleep(300);
    expect(events.some((e) => e.kind === 'resync')).toBe(true);
    expect(small.stats().socketErrors).toBeGreaterThan(0);
    events.length = 0;
    await run('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'bridge']);
    await run('ip', ['-n', ns, 'link', 'del', 'probe0']);
    await sleep(200);
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'changed',
        link: expect.objectContaining({ name: 'probe0' }),
      }),
    );
    expect(events).toContainEqual(expect.objectContaining({ kind: 'removed', name: 'probe0' }));
    unsubscribe();
    await run('ip', ['-n', ns, 'link', 'del', 'flood0']);
  });

  it('entry events: routes, neighbours and FDB entries added and deleted; none while muted', async () => {
    const events: EntryEvent[] = [];
    const watch = ops.watchEntries!((e) => events.push(e));
    try {
      await run('ip', [
        '-n',
        ns,
        'link',
        'add',
        'ent0',
        'type',
        'vxlan',
        'id',
        '9',
        'dstport',
        '4789',
      ]);
      await run('ip', ['-n', ns, 'link', 'set', 'ent0', 'up']);
      const ent0 = (await ops.getLink('ent0'))!.index;
      const sh = (cmd: string): Promise<unknown> => run('sh', ['-c', `ip netns exec ${ns} ${cmd}`]);
      await sh('ip route add 10.77.1.0/24 via 10.77.1.0 dev ent0 onlink');
      await sh('ip neigh add 10.77.1.0 lladdr 0e:00:00:00:00:09 dev ent0 nud permanent');
      await sh('bridge fdb add 0e:00:00:00:00:09 dev ent0 dst 198.18.0.9 self permanent');
      await sh('ip route del 10.77.1.0/24 dev ent0');
      await sh('ip neigh del 10.77.1.0 dev ent0');
      await sh('bridge fdb del 0e:00:00:00:00:09 dev ent0 dst 198.18.0.9');
      await sleep(200);
      const route = { dst: '10.77.1.0/24', gateway: '10.77.1.0', oif: ent0, onlink: true };
      const neigh = { ifindex: ent0, dst: '10.77.1.0', mac: '0e:00:00:00:00:09', permanent: true };
      const fdb = { ifindex: ent0, mac: '0e:00:00:00:00:09', dst: '198.18.0.9', permanent: true };
      for (const removed of [false, true]) {
        expect(events).toContainEqual({
          kind: 'route',
          removed,
          route: expect.objectContaining(route),
        });
        expect(events).toContainEqual({ kind: 'fdb', removed, fdb });
      }
      expect(events).toContainEqual({
        kind: 'neigh',
        removed: false,
        neigh: { family: 4, ...neigh },
      });
      // `ip neigh del` marks it failed first: the deletion is no longer permanent
      expect(events).toContainEqual({
        kind: 'neigh',
        removed: true,
        neigh: expect.objectContaining({ ifindex: ent0, dst: '10.77.1.0' }),
      });
      watch.mute(true);
      events.length = 0;
      await sh('ip route add 10.77.2.0/24 dev ent0');
      await sleep(200);
      expect(events).toEqual([]);
      watch.mute(false);
      await sh('ip route del 10.77.2.0/24 dev ent0');
      await sleep(200);
      expect(events).toContainEqual(
        expect.objectContaining({
          kind: 'route',
          removed: true,
          route: expect.objectContaining({ dst: '10.77.2.0/24' }),
        }),
      );
    } finally {
      watch.close();
      await run('ip', ['-n', ns, 'link', 'del', 'ent0'], { allowFail: true });
    }
  });

  it('survives a flood of route events that overflows the entry socket: resync, then events again', async () => {
    const small = createNetlinkOps({ netns: ns, eventRecvBufferBytes: 4096 });
    extra.push(small);
    const events: EntryEvent[] = [];
    const watch = small.watchEntries!((e) => events.push(e));
    await run('ip', ['-n', ns, 'link', 'add', 'flood1', 'type', 'bridge']);
    await run('ip', ['-n', ns, 'link', 'set', 'flood1', 'up']);
    const batch = Array.from(
      { length: 3000 },
      (_, i) => `route add 10.78.${i >> 8}.${i & 255}/32 dev flood1`,
    ).join('\n');
    const flood = run('ip', ['-n', ns, '-batch', '-'], { input: batch + '\n', timeoutMs: 60_000 });
    const until = Date.now() + 700;
    while (Date.now() < until) {
      /* block the loop so the kernel overflows the 4 KiB receive buffer */
    }
    await flood;
    await sleep(300);
    expect(events.some((e) => e.kind === 'resync')).toBe(true);
    expect(small.stats().socketErrors).toBeGreaterThan(0);
    events.length = 0;
    await run('ip', ['-n', ns, 'route', 'add', '10.79.0.0/24', 'dev', 'flood1']);
    await sleep(200);
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'route',
        route: expect.objectContaining({ dst: '10.79.0.0/24' }),
      }),
    );
    watch.close();
    await run('ip', ['-n', ns, 'link', 'del', 'flood1']);
  });

  it('sets learning on a VXLAN device back in place (same device, entries kept)', async () => {
    const spec = {
      name: 'weft.8',
      vni: 8,
      local: '198.18.0.1',
      underlayIndex: eth0,
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: '0e:00:00:00:00:08',
    };
    const { link } = await ops.ensureVxlanLink(spec);
    await ops.neighReplace({ ifindex: link.index, dst: '10.80.0.0', mac: '0e:00:00:00:00:18' });
    await run('ip', ['-n', ns, 'link', 'set', 'weft.8', 'type', 'vxlan', 'learning']);
    expect((await ops.getLink('weft.8'))!.vxlan!.learning).toBe(true);
    const again = await ops.ensureVxlanLink(spec);
    expect(again.action).toBe('updated');
    expect(again.link.index).toBe(link.index);
    expect(again.link.vxlan!.learning).toBe(false);
    expect((await ops.neighList(4, link.index)).map((n) => n.dst)).toContain('10.80.0.0');
    await ops.deleteLink(link.index);
  });
});

async function createSmallCheck(ops: NetlinkOps): Promise<unknown[]> {
  // A link dump is tiny: it completes within even a 1 ms deadline only rarely, so retry a few times.
  for (let i = 0; i < 50; i++) {
    try {
      return await ops.listLinks();
    } catch (err) {
      if (!(err instanceof NetlinkError) || err.code !== 'E_NETLINK_TIMEOUT') throw err;
    }
  }
  return [];
}
