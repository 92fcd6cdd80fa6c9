/**
 * `npm run bench:wireguard` (root): weft's WireGuard engine beside its anchors, measured in the same run
 * on the same topology (docs/performance.md: on a shared 2-vCPU machine only ratios within one run mean
 * something).
 *
 *   h1 (198.18.0.1) ── veth ── br0 ── veth ── h2 (198.18.0.2)        all in test network namespaces
 *   one container per path on each host (bridge per path, container MTU = the path's device MTU)
 *
 * Paths, container to container (iperf3 TCP 1 stream h1 → h2 and reversed with -R, 64-byte UDP
 * packets delivered per second), each with its anchor ratio:
 *   underlay              h1 → h2 on the veth/bridge (no overlay, host to host)
 *   kernel VXLAN          unencrypted, programmed by hand in flannel's layout (10.245.0.0/16, 8472)
 *   weft wireguard        weft's userspace engine on a TUN with TSO/GRO (10.248.0.0/16, 51820)
 *   wireguard-go          Debian's wireguard-go on both ends, configured like flannel (10.249.0.0/16, 51830)
 * CPU: vCPU·s per Gbit of the engine (the bench process for weft, whose only busy threads are the two
 * engines; both wireguard-go processes for that row). Kernel paths run in softirq: not attributable.
 * Paths run interleaved in rounds (every path once per round), each figure the median of the rounds.
 * Env: BENCH_SECONDS (default 3), BENCH_RUNS (rounds, default 3), BENCH_PATHS (comma list of
 * underlay, vxlan, weft, wggo; default all: an A/B of two engine builds runs `vxlan,weft` with
 * WEFT_NATIVE_ADDON pointing at each build in turn).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTun } from '../src/dataplane/tun.js';
import {
  WireGuardDevice,
  generatePrivateKey,
  publicKeyOf,
} from '../src/dataplane/wireguard-device.js';
import { inNetns } from '../src/netns/netns.js';
import { createTopology, type SimContainer, type Topology } from '../test/helpers/netns.js';
import { nsRun, run, sleep, spawnTracked, stopChild, waitFor } from '../test/helpers/exec.js';
import { startWireguardGo, type WgGoDevice } from '../test/helpers/wireguard-go.js';
import { handVxlan, iperf, median, procCpu, selfCpu, udpKpps, type CpuClock } from './lib/iperf.js';
import type { ChildProcess } from 'node:child_process';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const PATHS = new Set(
  (process.env['BENCH_PATHS'] ?? 'underlay,vxlan,weft,wggo').split(',').map((x) => x.trim()),
);
const WG_MTU = 1420; // flannel's rule: 1500 - 80
const VX_MTU = 1450;

const VX_PATH = 'kernel VXLAN, unencrypted (flannel layout)';
const WEFT_PATH = 'weft wireguard (userspace engine)';
const WGGO_PATH = 'wireguard-go (Debian, both ends)';

interface Row {
  path: string;
  fwd: number;
  rev: number;
  kpps: number;
  cpuPerGbit?: number;
}

/** A path left out (BENCH_PATHS): its ratios print as –. */
const NONE: Row = { path: '', fwd: NaN, rev: NaN, kpps: NaN };

interface Path {
  readonly path: string;
  readonly from: string;
  readonly dst: string;
  readonly cpu: CpuClock;
  fwd: number[];
  rev: number[];
  cpuSec: number;
  gbit: number;
}

/**
 * Rounds: every path once per round (forward, then reverse), BENCH_RUNS rounds, each figure the
 * median: the machine's load drifts, and interleaving puts every path under the same drift.
 */
async function measureAll(paths: Path[]): Promise<Row[]> {
  for (const p of paths) {
    await nsRun(p.from, 'ping', ['-c', '3', '-i', '0.2', '-q', p.dst], { allowFail: true });
  }
  for (let round = 0; round < RUNS; round++) {
    for (const p of paths) {
      const c0 = p.cpu?.() ?? 0;
      const a = await iperf(p.from, p.dst, SECONDS, false);
      const b = await iperf(p.from, p.dst, SECONDS, true);
      p.cpuSec += (p.cpu?.() ?? 0) - c0;
      p.gbit += (a + b) * SECONDS;
      p.fwd.push(a);
      p.rev.push(b);
      console.error(`round ${round + 1}: ${p.path}: ${a.toFixed(2)} / ${b.toFixed(2)} Gbit/s`);
    }
  }
  const rows: Row[] = [];
  for (const p of paths) {
    const row: Row = {
      path: p.path,
      fwd: median(p.fwd),
      rev: median(p.rev),
      kpps: await udpKpps(p.from, p.dst, SECONDS),
    };
    if (p.cpu) row.cpuPerGbit = p.cpuSec / p.gbit;
    rows.push(row);
  }
  return rows;
}

/** weft's engine on each host (TUN weft-wg, 10.248.0.0/16), peers as the backend programs them. */
async function weftWireguard(topo: Topology): Promise<WireGuardDevice[]> {
  const keys = topo.hosts.map(() => generatePrivateKey());
  const devs: WireGuardDevice[] = [];
  for (const h of topo.hosts) {
    const dev = inNetns(h.netns, () => {
      const tun = openTun('weft-wg', { vnetHdr: true });
      return WireGuardDevice.start({
        tunFd: tun.fd,
        family: 4,
        bindAddress: h.underlayIp,
        port: 51820,
        mtu: WG_MTU,
        privateKey: keys[h.index - 1]!,
      });
    });
    devs.push(dev);
    await run('ip', ['-n', h.netns, 'addr', 'add', `10.248.${h.index}.0/32`, 'dev', 'weft-wg']);
    await run('ip', ['-n', h.netns, 'link', 'set', 'weft-wg', 'mtu', String(WG_MTU), 'up']);
    await run('ip', ['-n', h.netns, 'route', 'add', '10.248.0.0/16', 'dev', 'weft-wg']);
  }
  for (const h of topo.hosts) {
    for (const p of topo.hosts) {
      if (p === h) continue;
      devs[h.index - 1]!.setPeer({
        publicKey: publicKeyOf(keys[p.index - 1]!),
        endpoint: { address: p.underlayIp, port: 51820 },
        allowedIps: [`10.248.${p.index}.0/24`],
      });
    }
  }
  return devs;
}

async function wireguardGo(topo: Topology): Promise<WgGoDevice[]> {
  const devs: WgGoDevice[] = [];
  for (const h of topo.hosts) {
    devs.push(
      await startWireguardGo({
        ns: h.netns,
        address: `10.249.${h.index}.0/32`,
        network: '10.249.0.0/16',
        mtu: WG_MTU,
        listenPort: 51830,
      }),
    );
  }
  for (const h of topo.hosts) {
    for (const p of topo.hosts) {
      if (p === h) continue;
      await devs[h.index - 1]!.setPeer({
        publicKey: devs[p.index - 1]!.publicKey,
        allowedIps: [`10.249.${p.index}.0/24`],
        endpoint: `${p.underlayIp}:51830`,
      });
    }
  }
  return devs;
}

async function containers(topo: Topology, net: number, mtu: number): Promise<SimContainer[]> {
  const out: SimContainer[] = [];
  for (const h of topo.hosts) {
    out.push(
      await topo.addContainer(h, {
        cidr: `10.${net}.${h.index}.2/24`,
        gateway: `10.${net}.${h.index}.1`,
        bridge: `cb${net}`,
        mtu,
      }),
    );
  }
  return out;
}

function table(rows: Row[]): string {
  const vx = rows.find((r) => r.path === VX_PATH) ?? NONE;
  const wgo = rows.find((r) => r.path === WGGO_PATH) ?? NONE;
  const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lines = [
    '| path | TCP 1 stream Gbit/s | reverse | UDP 64 B kpps delivered | × kernel VXLAN (fwd / rev) | × wireguard-go (fwd / rev) | vCPU·s per Gbit |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.path} | ${f(r.fwd)} | ${f(r.rev)} | ${f(r.kpps, 0)} | ${f(r.fwd / vx.fwd)} / ${f(r.rev / vx.rev)} | ` +
        `${f(r.fwd / wgo.fwd, 1)} / ${f(r.rev / wgo.rev, 1)} | ${r.cpuPerGbit === undefined ? '–' : f(r.cpuPerGbit, 3)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench:wireguard needs root (it creates network namespaces)');
  const topo = await createTopology({ hosts: 2, ipv6: false });
  let weft: WireGuardDevice[] = [];
  let wgo: WgGoDevice[] = [];
  const servers: ChildProcess[] = [];
  try {
    await handVxlan(topo, VX_MTU);
    weft = await weftWireguard(topo);
    wgo = await wireguardGo(topo);
    const [vx1, vx2] = await containers(topo, 245, VX_MTU);
    const [wf1, wf2] = await containers(topo, 248, WG_MTU);
    const [wg1, wg2] = await containers(topo, 249, WG_MTU);
    const h2 = topo.hosts[1]!;
    for (const ns of [h2.netns, vx2!.netns, wf2!.netns, wg2!.netns]) {
      servers.push(spawnTracked('iperf3', ['-s'], { ns, stdio: 'ignore' }));
    }
    await waitFor('iperf3 servers', async () => {
      const r = await nsRun(wg2!.netns, 'ss', ['-ltn'], { allowFail: true });
      return r.stdout.includes(':5201');
    });
    await sleep(300);
    const h1 = topo.hosts[0]!;
    const pids = wgo.map((d) => d.child.pid!);
    const path = (name: string, from: string, dst: string, cpu: CpuClock): Path => ({
      path: name,
      from,
      dst,
      cpu,
      fwd: [],
      rev: [],
      cpuSec: 0,
      gbit: 0,
    });
    const all: [string, Path][] = [
      ['underlay', path('underlay (veth, host to host)', h1.netns, h2.underlayIp, undefined)],
      ['vxlan', path(VX_PATH, vx1!.netns, vx2!.ip, undefined)],
      ['weft', path(WEFT_PATH, wf1!.netns, wf2!.ip, selfCpu)],
      ['wggo', path(WGGO_PATH, wg1!.netns, wg2!.ip, procCpu(pids))],
    ];
    const rows = await measureAll(all.filter(([k]) => PATHS.has(k)).map(([, p]) => p));
    const s = weft.map((d) => d.snapshot().stats);
    const off = s
      .map((x) => `vnet ${x.offVnetHdr} tso ${x.offTso} gso ${x.offUdpGso} gro ${x.offUdpGro}`)
      .join(' | ');
    const drops = s
      .map(
        (x) =>
          `decrypt ${x.dropDecrypt} replay ${x.dropReplay} stale ${x.dropStale} udp_send ${x.dropUdpSend}`,
      )
      .join(' | ');
    const batching = s
      .map(
        (x) =>
          `${(x.rxPackets / Math.max(1, x.tunWrites)).toFixed(1)} packets per TUN write, ` +
          `${(x.tunReads / Math.max(1, x.tsoPackets)).toFixed(2)} TUN reads per TSO packet`,
      )
      .join(' | ');
    const vx = rows.find((r) => r.path === VX_PATH) ?? NONE;
    const wf = rows.find((r) => r.path === WEFT_PATH) ?? NONE;
    const md =
      `# bench:wireguard ${new Date().toISOString()} (${SECONDS} s × ${RUNS} interleaved rounds, median; container on h1 → container on h2)\n\n` +
      `${table(rows)}\n\n` +
      `weft wireguard / kernel VXLAN, TCP 1 stream: ${(wf.fwd / vx.fwd).toFixed(2)} fwd, ${(wf.rev / vx.rev).toFixed(2)} rev (goal ≥ 0.40)\n\n` +
      `engine offloads per host: ${off}\n\nengine drops per host: ${drops}\n\nengine batching per host: ${batching}\n`;
    console.log(md);
    const dir = join(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `wireguard-${Date.now()}.md`), md);
  } finally {
    for (const d of weft) d.close();
    for (const d of wgo) await d.stop();
    for (const c of servers) await stopChild(c);
    await topo.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
