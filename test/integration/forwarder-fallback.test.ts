/**
 * The fallback path and the wire format between the two paths: h1's forwarder has the offloads (TUN
 * vnet header + TSO, UDP GSO/GRO), h2's runs on a plain TUN (no vnet header: per-packet TUN I/O, no
 * segmentation or coalescing). Same wire format, so traffic must pass bit-exact both ways, and h2
 * must report its fallback.
 *
 *   c1 10.244.1.2 ─ h1 [weft0 vnet+TSO] ⇄ UDP 8285 ⇄ h2 [weft0 plain] ─ c2 10.244.2.2
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NativeForwarder } from '../../src/dataplane/native-forwarder.js';
import { openTun } from '../../src/dataplane/tun.js';
import { inNetns } from '../../src/netns/netns.js';
import { createTopology, ping, type SimContainer, type Topology } from '../helpers/netns.js';
import { run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { transfer } from './forwarder-helpers.js';

const runnable = requireCaps('root', 'netns', 'ping', 'tun');
useLeakCheck();

describe.skipIf(!runnable)('native UDP forwarder: offload path against the fallback path', () => {
  let topo: Topology;
  const fwd: NativeForwarder[] = [];
  const ctr = (i: number): SimContainer => topo.hosts[i - 1]!.containers[0]!;

  beforeAll(async () => {
    topo = await createTopology({ hosts: 2, ipv6: false });
    for (const h of topo.hosts) {
      const i = h.index;
      await topo.addContainer(h, { cidr: `10.244.${i}.2/24`, gateway: `10.244.${i}.1` });
      const f = inNetns(h.netns, () => {
        const tun = openTun('weft0', { vnetHdr: i === 1 });
        return NativeForwarder.start({
          tunFd: tun.fd,
          port: 8285,
          mtu: 1472,
          localSubnets: [`10.244.${i}.0/24`],
        });
      });
      fwd.push(f);
      await run('ip', ['-n', h.netns, 'addr', 'add', `10.244.${i}.0/32`, 'dev', 'weft0']);
      await run('ip', ['-n', h.netns, 'link', 'set', 'weft0', 'mtu', '1472', 'up']);
      await run('ip', ['-n', h.netns, 'route', 'add', '10.244.0.0/16', 'dev', 'weft0']);
    }
    fwd[0]!.setRoute('10.244.2.0/24', '198.18.0.2', 8285);
    fwd[1]!.setRoute('10.244.1.0/24', '198.18.0.1', 8285);
    await Promise.all(fwd.map((f) => f.settled()));
  });

  afterAll(async () => {
    for (const f of fwd) f.close();
    await topo?.destroy();
  });

  it('reports the fallback of the plain TUN only', () => {
    expect(fwd[0]!.fallback).toEqual([]);
    expect(fwd[1]!.fallback).toEqual(['vnetHdr', 'tso']);
  });

  it('pings and carries TCP bit-exact both ways between the two paths', async () => {
    expect(await ping(ctr(1).netns, ctr(2).ip, 2)).toBe(true);
    const there = await transfer(ctr(1), ctr(2), 50 * 1024 * 1024);
    expect(there.got).toBe(there.sent);
    const back = await transfer(ctr(2), ctr(1), 50 * 1024 * 1024);
    expect(back.got).toBe(back.sent);
    const [s1, s2] = [fwd[0]!.stats(), fwd[1]!.stats()];
    // h1 segmented super-packets; h2 never got any (plain TUN) and wrote packet by packet
    expect(s1.tsoPackets).toBeGreaterThan(0);
    expect(s2.tsoPackets).toBe(0);
    expect(s2.coalescedWrites).toBe(0);
    expect(s2.tunWrites).toBe(s2.rxPackets);
    expect(s1.drops.malformed + s2.drops.malformed).toBe(0);
  }, 120_000);
});
