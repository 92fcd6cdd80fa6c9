/**
 * weft's userspace WireGuard engine on both ends: a TCP stream between two containers arrives with
 * exactly the bytes that were sent, both ways. Two simulated hosts, one container behind each; all
 * traffic stays in the test namespaces.
 *
 *   [h1: engine, TUN weft-wg, c1 10.51.1.2]   [h2: engine, TUN weft-wg, c2 10.51.2.2]
 *        └──────── eth0 198.18.0.1 / .2 on br0 (underlay netns), UDP 51820 ────────┘
 *
 * The receiving engine hands coalesced TCP super-packets to its TUN as CHECKSUM_PARTIAL (the kernel
 * does not verify them: every segment passed its Poly1305 tag), so TCP's own checksum would not
 * catch a segment that the engine put in the wrong place or took from a plaintext slot that had
 * been reused meanwhile: only comparing the bytes does. The stream is large (32 MiB each way) so
 * that it spans many receive batches and decrypt rounds, and the counters prove that the transfer
 * took the offload paths (TSO segmentation, UDP GSO/GRO, coalesced TUN writes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync } from 'node:fs';
import { openTun } from '../../src/dataplane/tun.js';
import {
  WireGuardDevice,
  generatePrivateKey,
  publicKeyOf,
} from '../../src/dataplane/wireguard-device.js';
import { inNetns } from '../../src/netns/netns.js';
import { nsRun, run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createTopology, ping, type SimContainer, type Topology } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'ping', 'tun');
useLeakCheck();

const MTU = 1420;
const BYTES = 32 << 20;
const PORT = 5301;

/** Accepts one connection on ip:PORT, prints the SHA-256 and the length of everything it received. */
const SINK = `
const net = require('node:net'), crypto = require('node:crypto');
const [ip, port] = process.argv.slice(1);
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256');
  let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { process.stdout.write(h.digest('hex') + ' ' + n + '\\n'); s.end(); srv.close(); });
});
srv.listen(Number(port), ip);
setTimeout(() => process.exit(2), 60000).unref();
`;

/** Connects to ip:PORT (retrying until the sink listens), sends n random bytes in 1 MiB writes and
 * prints their SHA-256 and length. */
const SOURCE = `
const net = require('node:net'), crypto = require('node:crypto');
const [ip, port, total] = process.argv.slice(1);
const h = crypto.createHash('sha256');
let sent = 0;
const go = (tries) => {
  const s = net.connect(Number(port), ip);
  s.on('error', (e) => { if (tries > 0 && sent === 0) setTimeout(() => go(tries - 1), 100); else { console.error(e); process.exit(1); } });
  s.on('connect', () => {
    const more = () => {
      while (sent < Number(total)) {
        const b = crypto.randomBytes(Math.min(1 << 20, Number(total) - sent));
        h.update(b);
        sent += b.length;
        if (!s.write(b)) return s.once('drain', more);
      }
      s.end();
      process.stdout.write(h.digest('hex') + ' ' + sent + '\\n');
    };
    more();
  });
};
go(50);
setTimeout(() => process.exit(2), 60000).unref();
`;

describe.skipIf(!runnable)(
  'WireGuard engine to engine: exact bytes through coalesced receives',
  () => {
    let topo: Topology;
    const devs: WireGuardDevice[] = [];
    const cs: SimContainer[] = [];

    beforeAll(async () => {
      topo = await createTopology({ hosts: 2, ipv6: false });
      const keys = topo.hosts.map(() => generatePrivateKey());
      for (const h of topo.hosts) {
        devs.push(
          inNetns(h.netns, () => {
            const tun = openTun('weft-wg', { vnetHdr: true });
            try {
              return WireGuardDevice.start({
                tunFd: tun.fd,
                family: 4,
                bindAddress: h.underlayIp,
                port: 51820,
                mtu: MTU,
                privateKey: keys[h.index - 1]!,
              });
            } catch (err) {
              closeSync(tun.fd);
              throw err;
            }
          }),
        );
        await run('ip', ['-n', h.netns, 'addr', 'add', `10.51.${h.index}.0/32`, 'dev', 'weft-wg']);
        await run('ip', ['-n', h.netns, 'link', 'set', 'weft-wg', 'mtu', String(MTU), 'up']);
        await run('ip', ['-n', h.netns, 'route', 'add', '10.51.0.0/16', 'dev', 'weft-wg']);
        cs.push(
          await topo.addContainer(h, {
            cidr: `10.51.${h.index}.2/24`,
            gateway: `10.51.${h.index}.1`,
            mtu: MTU,
          }),
        );
      }
      for (const h of topo.hosts) {
        for (const p of topo.hosts) {
          if (p === h) continue;
          devs[h.index - 1]!.setPeer({
            publicKey: publicKeyOf(keys[p.index - 1]!),
            endpoint: { address: p.underlayIp, port: 51820 },
            allowedIps: [`10.51.${p.index}.0/24`],
          });
        }
      }
    }, 60_000);

    afterAll(async () => {
      for (const d of devs) d.close();
      await topo?.destroy();
    });

    /** Sends BYTES from `from` to `to` over TCP; the sink's digest and length. */
    const transfer = async (
      from: SimContainer,
      to: SimContainer,
    ): Promise<{ sent: string; got: string }> => {
      const node = process.execPath;
      const [got, sent] = await Promise.all([
        nsRun(to.netns, node, ['-e', SINK, to.ip, String(PORT)], { timeoutMs: 90_000 }),
        nsRun(from.netns, node, ['-e', SOURCE, to.ip, String(PORT), String(BYTES)], {
          timeoutMs: 90_000,
        }),
      ]);
      return { sent: sent.stdout.trim(), got: got.stdout.trim() };
    };

    it('32 MiB each way arrive byte for byte, over TSO, UDP GSO/GRO and coalesced TUN writes', async () => {
      const [c1, c2] = cs as [SimContainer, SimContainer];
      expect(await ping(c1.netns, c2.ip, 2)).toBe(true);
      const before = devs.map((d) => d.snapshot().stats);
      const fwd = await transfer(c1, c2);
      expect(fwd.sent).toMatch(new RegExp(`^[0-9a-f]{64} ${BYTES}$`));
      expect(fwd.got).toBe(fwd.sent);
      const rev = await transfer(c2, c1);
      expect(rev.sent).toMatch(new RegExp(`^[0-9a-f]{64} ${BYTES}$`));
      expect(rev.got).toBe(rev.sent);
      const after = devs.map((d) => d.snapshot().stats);
      for (const [i, s] of after.entries()) {
        const b = before[i]!;
        expect(s.tsoPackets - b.tsoPackets).toBeGreaterThan(0); // super-packets were segmented
        expect(s.groReceives - b.groReceives).toBeGreaterThan(0); // several messages per receive
        expect(s.coalescedWrites - b.coalescedWrites).toBeGreaterThan(0); // runs written as one
        expect(s.dropDecrypt + s.dropReplay + s.dropStale + s.dropMalformed).toBe(0);
      }
    }, 120_000);
  },
);
