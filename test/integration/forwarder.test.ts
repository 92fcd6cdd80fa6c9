/**
 * The native UDP forwarder between three simulated hosts, everything real but etcd (routes are set by
 * hand here; the UDP backend maps leases to the same calls):
 *
 *   c1 10.244.1.2 ─cbr0─ h1 [weft0 10.244.1.0/32 ⇄ forwarder 198.18.0.1:8285] ─┐
 *   c2 10.244.2.2 ─cbr0─ h2 [weft0 10.244.2.0/32 ⇄ forwarder 198.18.0.2:8285] ─┼─ br0 (underlay netns)
 *   c3 10.244.3.2 ─cbr0─ h3 [weft0 10.244.3.0/32 ⇄ forwarder 198.18.0.3:8285] ─┘
 *
 * Each host's TUN is opened and its forwarder started inside the host netns from this test process
 * (the UDP socket is created there too); the forwarder threads are joined in afterAll.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NativeForwarder } from '../../src/dataplane/native-forwarder.js';
import { openTun } from '../../src/dataplane/tun.js';
import { inNetns } from '../../src/netns/netns.js';
import { createTopology, ping, type SimContainer, type Topology } from '../helpers/netns.js';
import { nsRun, run, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';
import { transfer } from './forwarder-helpers.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { tryParseIp6 } from '../../src/ip/index.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'ping', 'tun');
useLeakCheck();

const PORT = 8285;
const TRANSFER_BYTES = 300 * 1024 * 1024;

/** An IPv4 ICMP echo request (or reply) with correct checksums. */
function icmpEcho(src: string, dst: string, type: 8 | 0 = 8): Buffer {
  const p = Buffer.alloc(20 + 8 + 16);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  p.writeUInt16BE(csum(p.subarray(0, 20)), 10);
  p[20] = type;
  p.writeUInt16BE(0x4242, 24);
  p.writeUInt16BE(1, 26);
  p.fill(0x61, 28);
  p.writeUInt16BE(csum(p.subarray(20)), 22);
  return p;
}

function csum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length % 2) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A minimal IPv6 packet (ICMPv6 echo request; the forwarder checks no ICMPv6 checksum). */
function ip6Packet(src: string, dst: string): Buffer {
  const p = Buffer.alloc(40 + 8);
  p[0] = 0x60;
  p.writeUInt16BE(8, 4);
  p[6] = 58;
  p[7] = 64;
  const put = (text: string, at: number): void => {
    const v = tryParseIp6(text)!;
    p.writeBigUInt64BE(v >> 64n, at);
    p.writeBigUInt64BE(v & 0xffffffffffffffffn, at + 8);
  };
  put(src, 8);
  put(dst, 24);
  p[40] = 128;
  return p;
}

// Sends 1400-byte UDP datagrams to HOST:9 as fast as it can for SECONDS (then exits by itself).
const FLOOD = `const s=require('dgram').createSocket('udp4');const b=Buffer.alloc(1400,1);
const end=Date.now()+Number(process.env.SECONDS)*1000;let n=0;
const pump=()=>{if(Date.now()>end){console.log(JSON.stringify({n}));s.close();return}
let k=0;const one=()=>{n++;if(++k===256)setImmediate(pump)};for(let i=0;i<256;i++)s.send(b,9,process.env.HOST,one)};
s.bind(0,()=>{console.log('ready');pump()});`;

/** Sends one UDP datagram from inside `ns` (a separate process, so the socket lives there). */
async function sendDatagram(ns: string, payload: Buffer, dst: string, port: number): Promise<void> {
  const script = `const s=require('dgram').createSocket('udp4');
s.send(Buffer.from(process.env.PKT,'hex'),Number(process.env.PORT),process.env.DST,(e)=>{s.close();if(e){console.error(e.message);process.exit(1)}});`;
  await nsRun(ns, process.execPath, ['-e', script], {
    env: { ...process.env, PKT: payload.toString('hex'), PORT: String(port), DST: dst },
  });
}

describe.skipIf(!runnable)('native UDP forwarder across three hosts', () => {
  let topo: Topology;
  const fwd: NativeForwarder[] = [];
  const ctr = (i: number): SimContainer => topo.hosts[i - 1]!.containers[0]!;
  const meshRoutes = (i: number): void => {
    for (const j of [1, 2, 3]) {
      if (j === i) continue;
      fwd[i - 1]!.setRoute(`10.244.${j}.0/24`, `198.18.0.${j}`, PORT);
      fwd[i - 1]!.setRoute(`fd00:10:244:${j}::/64`, `198.18.0.${j}`, PORT);
    }
  };

  beforeAll(async () => {
    topo = await createTopology({ hosts: 3 });
    for (const h of topo.hosts) {
      const i = h.index;
      await topo.addContainer(h, {
        cidr: `10.244.${i}.2/24`,
        gateway: `10.244.${i}.1`,
        cidr6: `fd00:10:244:${i}::2/64`,
        gateway6: `fd00:10:244:${i}::1`,
      });
      const f = inNetns(h.netns, () => {
        const tun = openTun('weft0', { vnetHdr: true });
        return NativeForwarder.start({
          tunFd: tun.fd,
          port: PORT,
          bindAddress: h.underlayIp,
          mtu: 1472,
          localSubnets: [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`],
          // h2 runs one loop thread for both directions, h1 and h3 one per direction: the transfers
          // between c1 and c2 cross both modes each way
          threads: i === 2 ? 1 : 2,
        });
      });
      fwd.push(f);
      await run('ip', ['-n', h.netns, 'addr', 'add', `10.244.${i}.0/32`, 'dev', 'weft0']);
      await run('ip', ['-n', h.netns, 'link', 'set', 'weft0', 'mtu', '1472', 'up']);
      await run('ip', ['-n', h.netns, 'route', 'add', '10.244.0.0/16', 'dev', 'weft0']);
      await run('ip', ['-n', h.netns, '-6', 'route', 'add', 'fd00:10:244::/48', 'dev', 'weft0']);
    }
    for (const i of [1, 2, 3]) meshRoutes(i);
    await Promise.all(fwd.map((f) => f.settled()));
  });

  afterAll(async () => {
    for (const f of fwd) f.close();
    await topo?.destroy();
  });

  it('uses the offload fast path (TUN vnet header + TSO, UDP GSO and GRO)', () => {
    expect(fwd.map((f) => f.stats().threads)).toEqual([2, 1, 2]);
    // the loop threads run at nice -10 (the default), the rest of the process at its own
    const nices = readdirSync('/proc/self/task').map((t) =>
      Number(readFileSync(`/proc/self/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]),
    );
    expect(nices.filter((n) => n === -10).length).toBeGreaterThanOrEqual(5);
    expect(nices).toContain(0);
    for (const f of fwd) {
      expect(f.fallback).toEqual([]);
      expect(f.stats().running).toBe(true);
      expect(f.localPort).toBe(PORT);
    }
  });

  it('every container pings every other', async () => {
    for (const a of [1, 2, 3]) {
      for (const b of [1, 2, 3]) {
        if (a !== b) expect(await ping(ctr(a).netns, ctr(b).ip, 2), `c${a} -> c${b}`).toBe(true);
      }
    }
  });

  it('a TCP transfer arrives bit-exact in both directions, segmented and coalesced', async () => {
    const before = [fwd[0]!.stats(), fwd[1]!.stats()];
    const there = await transfer(ctr(1), ctr(2), TRANSFER_BYTES);
    expect(there.got).toBe(there.sent);
    const back = await transfer(ctr(2), ctr(1), TRANSFER_BYTES);
    expect(back.got).toBe(back.sent);
    const [s1, s2] = [fwd[0]!.stats(), fwd[1]!.stats()];
    expect(s1.txBytes - before[0]!.txBytes).toBeGreaterThan(TRANSFER_BYTES);
    expect(s2.rxBytes - before[1]!.rxBytes).toBeGreaterThan(TRANSFER_BYTES);
    // the fast path was taken: super-packets segmented with GSO, received with GRO and coalesced
    expect(s1.tsoPackets).toBeGreaterThan(before[0]!.tsoPackets);
    expect(s1.gsoSends).toBeGreaterThan(before[0]!.gsoSends);
    expect(s2.groReceives).toBeGreaterThan(before[1]!.groReceives);
    expect(s2.coalescedWrites).toBeGreaterThan(before[1]!.coalescedWrites);
    expect(s1.drops.malformed + s2.drops.malformed).toBe(0);
  }, 180_000);

  it('carries IPv6 inside: ping and a bit-exact TCP transfer (TSO6 segmentation, coalescing)', async () => {
    for (const [a, b] of [
      [1, 2],
      [2, 3],
      [3, 1],
    ] as const) {
      expect(await ping(ctr(a).netns, ctr(b).ip6!, 2), `c${a} -> c${b} over IPv6`).toBe(true);
    }
    const before = [fwd[0]!.stats(), fwd[1]!.stats()];
    const r = await transfer(ctr(1), ctr(2), 50 * 1024 * 1024, ctr(2).ip6!);
    expect(r.got).toBe(r.sent);
    expect(fwd[0]!.stats().tsoPackets).toBeGreaterThan(before[0]!.tsoPackets);
    expect(fwd[1]!.stats().coalescedWrites).toBeGreaterThan(before[1]!.coalescedWrites);
  }, 120_000);

  it('answers an unrouted destination with ICMP net-unreachable', async () => {
    const before = fwd[0]!.stats();
    const r = await nsRun(ctr(1).netns, 'ping', ['-c', '1', '-W', '2', '10.244.99.1'], {
      allowFail: true,
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Destination Net Unreachable/);
    const s = fwd[0]!.stats();
    expect(s.drops.noRoute).toBeGreaterThan(before.drops.noRoute);
    expect(s.icmpSent).toBe(before.icmpSent + 1);
  });

  it('accepts a plain IP-in-UDP datagram from a peer, drops spoofed ones and counts why', async () => {
    const h1 = fwd[0]!;
    const legit = icmpEcho(ctr(2).ip, ctr(1).ip);
    // positive control: the same packet from its real peer is delivered (c1 answers it)
    let before = h1.stats();
    await sendDatagram(topo.hosts[1]!.netns, legit, '198.18.0.1', PORT);
    await waitFor('legit datagram delivered', () => h1.stats().rxPackets > before.rxPackets, 5000);
    // from an address that is no peer (the underlay netns, 198.18.0.254)
    before = h1.stats();
    await sendDatagram(topo.underlayNetns, legit, '198.18.0.1', PORT);
    await waitFor(
      'unknown peer counted',
      () => h1.stats().drops.unknownPeer === before.drops.unknownPeer + 1,
      5000,
    );
    // from a real peer (h3) carrying an inner source of another peer's subnet (h2's)
    await sendDatagram(topo.hosts[2]!.netns, legit, '198.18.0.1', PORT);
    await waitFor(
      'foreign inner source counted',
      () => h1.stats().drops.badInnerSource === before.drops.badInnerSource + 1,
      5000,
    );
    // malformed: IHL < 5
    const bad = Buffer.from(legit);
    bad[0] = 0x44;
    await sendDatagram(topo.hosts[1]!.netns, bad, '198.18.0.1', PORT);
    await waitFor(
      'malformed counted',
      () => h1.stats().drops.malformed === before.drops.malformed + 1,
      5000,
    );
    expect(h1.stats().rxPackets).toBe(before.rxPackets);
  });

  it("drops an inner source that is the peer subnet's broadcast address, keeps its network address", async () => {
    const h1 = fwd[0]!;
    const h2ns = topo.hosts[1]!.netns;
    const before = h1.stats();
    // c1 would answer 10.244.2.255 with a directed broadcast into h2's container bridge
    await sendDatagram(h2ns, icmpEcho('10.244.2.255', ctr(1).ip), '198.18.0.1', PORT);
    await waitFor(
      'broadcast inner source counted',
      () => h1.stats().drops.badInnerSource === before.drops.badInnerSource + 1,
      5000,
    );
    expect(h1.stats().rxPackets).toBe(before.rxPackets);
    // positive control: 10.244.2.0 is h2's TUN address (its host's own traffic, as in flannel)
    await sendDatagram(h2ns, icmpEcho('10.244.2.0', ctr(1).ip), '198.18.0.1', PORT);
    await waitFor(
      'network-address source delivered',
      () => h1.stats().rxPackets === before.rxPackets + 1,
      5000,
    );
    expect(h1.stats().drops.badInnerSource).toBe(before.drops.badInnerSource + 1);
  });

  it("delivers a peer datagram only to this host's own subnets: no relaying to others, the LAN or link-local", async () => {
    const h1 = fwd[0]!;
    const h2ns = topo.hosts[1]!.netns;
    const before = h1.stats();
    // From the real peer h2 with an inner source in h2's subnet (the source check passes), but aimed
    // past h1: at c3 (h1 would route it back out of its TUN to h3), link-local metadata, the underlay
    const foreign = [
      icmpEcho(ctr(2).ip, ctr(3).ip),
      icmpEcho(ctr(2).ip, '169.254.169.254'),
      icmpEcho(ctr(2).ip, '198.18.0.254'),
      ip6Packet(ctr(2).ip6!, ctr(3).ip6!),
      ip6Packet(ctr(2).ip6!, 'fe80::1'),
    ];
    for (const p of foreign) await sendDatagram(h2ns, p, '198.18.0.1', PORT);
    await waitFor(
      'foreign inner destinations counted',
      () => h1.stats().drops.badInnerDest === before.drops.badInnerDest + foreign.length,
      5000,
    );
    expect(h1.stats().rxPackets).toBe(before.rxPackets);
    // positive controls: into h1's own IPv4 and IPv6 subnets they are delivered
    await sendDatagram(h2ns, icmpEcho(ctr(2).ip, ctr(1).ip), '198.18.0.1', PORT);
    await sendDatagram(h2ns, ip6Packet(ctr(2).ip6!, ctr(1).ip6!), '198.18.0.1', PORT);
    await waitFor(
      'own-subnet datagrams delivered',
      () => h1.stats().rxPackets === before.rxPackets + 2,
      5000,
    );
    expect(h1.stats().drops.badInnerDest).toBe(before.drops.badInnerDest + foreign.length);
  });

  it('checks every datagram of one GRO receive: a spoofed one amid a flow that passed is still dropped', async () => {
    // One UDP_SEGMENT send from the peer h2: a single buffer of equal-sized datagrams that h1's socket
    // receives whole (UDP_GRO), so the source and own-subnet verdicts of its first datagrams are
    // remembered while the later ones are checked.
    const h1 = fwd[0]!;
    const legit = icmpEcho(ctr(2).ip, ctr(1).ip);
    const spoofedSrc = icmpEcho(ctr(3).ip, ctr(1).ip); // h3's subnet, sent by h2
    const foreignDst = icmpEcho(ctr(2).ip, ctr(3).ip); // past h1, to h3
    const burst = [legit, legit, spoofedSrc, legit, foreignDst, legit, spoofedSrc];
    const script = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, ${legit.length})
s.sendto(bytes.fromhex(sys.argv[1]), ('198.18.0.1', ${PORT}))`;
    const before = h1.stats();
    await nsRun(topo.hosts[1]!.netns, 'python3', [
      '-c',
      script,
      Buffer.concat(burst).toString('hex'),
    ]);
    await waitFor(
      'every datagram of the burst accounted for',
      () => {
        const s = h1.stats();
        return (
          s.rxPackets -
            before.rxPackets +
            (s.drops.badInnerSource - before.drops.badInnerSource) +
            (s.drops.badInnerDest - before.drops.badInnerDest) ===
          burst.length
        );
      },
      5000,
    );
    const after = h1.stats();
    expect(after.groReceives).toBe(before.groReceives + 1); // the burst arrived as one buffer
    expect(after.rxPackets).toBe(before.rxPackets + 4);
    expect(after.drops.badInnerSource).toBe(before.drops.badInnerSource + 2);
    expect(after.drops.badInnerDest).toBe(before.drops.badInnerDest + 1);
  });

  it('a congested peer costs only its own packets: no waiting; other peers, receiving and route updates go on', async () => {
    const ns1 = topo.hosts[0]!.netns;
    const h1 = fwd[0]!;
    expect(h1.stats().peerSockets).toBe(2);
    // h1's underlay sends to h3 at 8 kbit/s and queues the rest (a congested path): h3's send socket
    // fills up. Everything else leaves by the fast default class.
    const tc = (cmd: string): Promise<unknown> => run('tc', ['-n', ns1, ...cmd.split(' ')]);
    await tc('qdisc add dev eth0 root handle 1: htb default 10');
    const before = h1.stats();
    let flood: ReturnType<typeof spawnTracked> | undefined;
    try {
      await tc('class add dev eth0 parent 1: classid 1:10 htb rate 10gbit');
      await tc('class add dev eth0 parent 1: classid 1:30 htb rate 8kbit ceil 8kbit');
      await tc('qdisc add dev eth0 parent 1:30 handle 30: pfifo limit 100000');
      await tc(
        'filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 198.18.0.3/32 flowid 1:30',
      );
      flood = spawnTracked(process.execPath, ['-e', FLOOD], {
        ns: ctr(1).netns,
        env: { ...process.env, HOST: ctr(3).ip, SECONDS: '15' },
      });
      await waitFor(
        'h3 congested',
        () => h1.stats().drops.congested > before.drops.congested,
        10_000,
        20,
      );
      // while c1 keeps flooding c3: c1 <-> c2 works both ways, and a route update applies promptly
      expect(await ping(ctr(1).netns, ctr(2).ip, 3, 1)).toBe(true);
      expect(await ping(ctr(2).netns, ctr(1).ip, 3, 1)).toBe(true);
      const t0 = Date.now();
      h1.setRoute('10.244.61.0/24', '198.18.0.2', PORT);
      await h1.settled(1000);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(h1.deleteRoute('10.244.61.0/24')).toBe(true);
      await h1.settled(1000);
      const s = h1.stats();
      expect(s.drops.congested).toBeGreaterThan(before.drops.congested);
      expect(s.drops.udpSend).toBe(before.drops.udpSend);
      expect(s.running).toBe(true);
    } finally {
      if (flood) await stopChild(flood);
      await tc('qdisc del dev eth0 root');
    }
    // the path is clear again: c1 reaches c3
    expect(await ping(ctr(1).netns, ctr(3).ip, 2)).toBe(true);
  }, 60_000);

  it('speaks flannel wire format with a plain per-packet peer', async () => {
    // A minimal per-packet IP-in-UDP peer on h2:9999 owning 10.244.50.0/24: answers pings itself.
    const peer = spawnTracked(
      process.execPath,
      [
        '-e',
        `const s=require('dgram').createSocket('udp4');
s.on('message',(m,r)=>{if(m[0]!==0x45||m.readUInt16BE(2)!==m.length||m[9]!==1||m[20]!==8)return;
console.log(JSON.stringify({len:m.length,src:[...m.subarray(12,16)].join('.'),dst:[...m.subarray(16,20)].join('.'),ttl:m[8]}));
const o=Buffer.from(m);m.copy(o,12,16,20);m.copy(o,16,12,16);o[8]=64;o[20]=0;
const cs=b=>{let s=0;for(let i=0;i+1<b.length;i+=2)s+=b.readUInt16BE(i);if(b.length%2)s+=b[b.length-1]<<8;while(s>0xffff)s=(s&0xffff)+(s>>>16);return ~s&0xffff};
o.writeUInt16BE(0,10);o.writeUInt16BE(cs(o.subarray(0,20)),10);o.writeUInt16BE(0,22);o.writeUInt16BE(cs(o.subarray(20)),22);
s.send(o,r.port,r.address)});
s.bind(9999,'198.18.0.2',()=>console.log('ready'));`,
      ],
      { ns: topo.hosts[1]!.netns },
    );
    try {
      let out = '';
      peer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('per-packet peer ready', () => out.includes('ready'), 10_000, 20);
      fwd[0]!.setRoute('10.244.50.0/24', '198.18.0.2', 9999);
      await fwd[0]!.settled();
      expect(await ping(ctr(1).netns, '10.244.50.1', 2)).toBe(true);
      const seen = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as {
        len: number;
        src: string;
        dst: string;
        ttl: number;
      };
      // one bare IP packet per datagram; TTL: 64 - 1 (c1's router h1) - 1 (forwarder)
      expect(seen).toEqual({ len: 84, src: ctr(1).ip, dst: '10.244.50.1', ttl: 62 });
    } finally {
      fwd[0]!.deleteRoute('10.244.50.0/24');
      await stopChild(peer);
    }
  });

  it('route removal stops forwarding to the peer; restoring it heals', async () => {
    expect(await ping(ctr(1).netns, ctr(3).ip, 1)).toBe(true);
    const before = [fwd[0]!.stats(), fwd[2]!.stats()];
    // peer removal = all of its routes (its IPv4 and IPv6 subnets)
    expect(fwd[0]!.deleteRoute('10.244.3.0/24')).toBe(true);
    expect(fwd[0]!.deleteRoute('fd00:10:244:3::/64')).toBe(true);
    await fwd[0]!.settled();
    expect(await ping(ctr(1).netns, ctr(3).ip, 1, 1)).toBe(false);
    expect(fwd[0]!.stats().drops.noRoute).toBeGreaterThan(before[0]!.drops.noRoute);
    // h3 still sends to h1, which no longer accepts h3 as a peer
    expect(await ping(ctr(3).netns, ctr(1).ip, 1, 1)).toBe(false);
    expect(fwd[0]!.stats().drops.unknownPeer).toBeGreaterThan(before[0]!.drops.unknownPeer);
    expect(fwd[2]!.stats().txPackets).toBeGreaterThan(before[1]!.txPackets);
    meshRoutes(1);
    await fwd[0]!.settled();
    expect(await ping(ctr(1).netns, ctr(3).ip, 2)).toBe(true);
  });

  it('reports a fatal stop as an error event when its TUN device disappears', async () => {
    const errors: unknown[] = [];
    fwd[2]!.on('error', (e) => errors.push(e));
    await run('ip', ['-n', topo.hosts[2]!.netns, 'link', 'del', 'weft0']);
    // the loop notices on its next TUN read; nudge it with a packet towards h3's old subnet
    await waitFor('forwarder stopped', () => !fwd[2]!.stats().running, 5000, 20);
    await waitFor('error event', () => errors.length > 0, 5000, 20);
    expect(errors[0]).toMatchObject({
      code: 'E_NATIVE',
      details: { code: 'EBADFD', syscall: 'read' },
    });
    expect((errors[0] as Error).message).toMatch(/its TUN device was deleted \(ip link del\)$/);
  });
});
