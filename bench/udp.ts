/**
 * `npm run bench:udp` (root): weft's native UDP forwarder beside its anchors, measured in the same run
 * on the same 2 vCPUs (docs/performance.md: read the numbers as ratios).
 *
 *   h1 (198.18.0.1) ── veth ── br0 ── veth ── h2 (198.18.0.2)        all in test network namespaces
 *
 * Paths, iperf3 TCP 1 stream from h1 to h2 (and reversed with -R), TCP 4 streams, 64-byte UDP
 * packets delivered per second, ping RTT:
 *   underlay        h1 → 198.18.0.2
 *   kernel VXLAN    programmed by hand with iproute2 in flannel's layout (10.245.0.0/16, port 8472)
 *   weft UDP        TUN with vnet header + TSO, UDP GSO/GRO, one loop thread per direction
 *                   (10.244.0.0/16, port 8285)
 *   weft UDP, one thread    the same with one loop thread for both directions (10.248.0.0/16, 8288)
 *   weft UDP, plain TUN     same forwarder without TUN offloads: batched, GSO sends (10.246.0.0/16, 8286)
 *   flannel design  bench/udp-perpacket.c: poll, one packet per syscall (10.247.0.0/16, port 8287)
 * For the weft rows the bench process's CPU time (both forwarder threads; JS is idle), for the
 * per-packet row its processes' CPU time, gives vCPU·s per Gbit. Env: BENCH_SECONDS (default 5), BENCH_RUNS (median of, default 1).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeForwarder } from '../src/dataplane/native-forwarder.js';
import { openTun } from '../src/dataplane/tun.js';
import { inNetns } from '../src/netns/netns.js';
import { createTopology, type Topology } from '../test/helpers/netns.js';
import { nsRun, run, sleep, spawnTracked, stopChild, waitFor } from '../test/helpers/exec.js';
import { handVxlan, iperf, median, procCpu, selfCpu, udpKpps, type CpuClock } from './lib/iperf.js';
import type { ChildProcess } from 'node:child_process';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 1);
/** Optional `gso_max_size` for the TUN devices (BENCH_GSO_MAX), for experiments. Re-measured on
 *  kernel 6.18 (host to host: the TCP sender's own route leads into the TUN): 63000 keeps TSO reads
 *  and caps super-packets at 44 segments, so each leaves in one UDP_SEGMENT send (44 × 1472 bytes is
 *  the most one 64 KiB UDP datagram holds): 1.01 sends per super-packet against 1.5 (full speed) and
 *  1.7-1.9 (a fixed 2 Gbit/s) with 64 KiB ones; forwarder CPU at 2 Gbit/s 0.272 against 0.295
 *  vCPU·s per Gbit (lower in 8 of 10 interleaved pairs). Container traffic would need the cap on the
 *  container's own interface: a forwarded super-packet larger than the TUN's gso_max_size is
 *  segmented in software before the TUN. */
const gsoMax = process.env['BENCH_GSO_MAX'] ? ['gso_max_size', process.env['BENCH_GSO_MAX']] : [];

interface Row {
  path: string;
  fwd: number;
  rev: number;
  p4: number;
  kpps: number;
  rttUs: number;
  cpuPerGbit?: number;
}

async function rtt(ns: string, dst: string): Promise<number> {
  const r = await nsRun(ns, 'ping', ['-c', '20', '-i', '0.01', '-q', dst], { timeoutMs: 20_000 });
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) * 1000 : NaN;
}

async function measure(topo: Topology, path: string, dst: string, cpu: CpuClock): Promise<Row> {
  const ns = topo.hosts[0]!.netns;
  await rtt(ns, dst); // warm up neighbours and routes
  const fwd: number[] = [];
  const rev: number[] = [];
  let cpuSec = 0;
  let gbit = 0;
  for (let i = 0; i < RUNS; i++) {
    const c0 = cpu?.() ?? 0;
    const a = await iperf(ns, dst, SECONDS, false);
    const b = await iperf(ns, dst, SECONDS, true);
    cpuSec += (cpu?.() ?? 0) - c0;
    gbit += (a + b) * SECONDS;
    fwd.push(a);
    rev.push(b);
  }
  const row: Row = {
    path,
    fwd: median(fwd),
    rev: median(rev),
    p4: await iperf(ns, dst, SECONDS, false, 4),
    kpps: await udpKpps(ns, dst, SECONDS),
    rttUs: await rtt(ns, dst),
  };
  if (cpu) row.cpuPerGbit = cpuSec / gbit;
  return row;
}

/** A forwarder per host on TUN `dev`; returns them for closing. */
async function forwarders(
  topo: Topology,
  dev: string,
  net: number,
  port: number,
  vnetHdr: boolean,
  threads?: 1 | 2,
): Promise<NativeForwarder[]> {
  const out: NativeForwarder[] = [];
  for (const h of topo.hosts) {
    const f = inNetns(h.netns, () => {
      const tun = openTun(dev, { vnetHdr });
      return NativeForwarder.start({
        tunFd: tun.fd,
        port,
        bindAddress: h.underlayIp,
        mtu: 1472,
        localSubnets: [`10.${net}.${h.index}.0/24`],
        ...(threads ? { threads } : {}),
      });
    });
    out.push(f);
    await run('ip', ['-n', h.netns, 'addr', 'add', `10.${net}.${h.index}.0/32`, 'dev', dev]);
    await run('ip', ['-n', h.netns, 'link', 'set', dev, 'mtu', '1472', 'up', ...gsoMax]);
    await run('ip', ['-n', h.netns, 'route', 'add', `10.${net}.0.0/16`, 'dev', dev]);
    for (const p of topo.hosts) {
      if (p !== h) f.setRoute(`10.${net}.${p.index}.0/24`, p.underlayIp, port);
    }
    await f.settled();
  }
  return out;
}

/** flannel's design as an anchor: bench/udp-perpacket.c on a TUN per host (10.247.0.0/16, port 8287). */
async function perPacket(topo: Topology, dir: string): Promise<ChildProcess[]> {
  const bin = join(dir, 'udp-perpacket');
  await run('gcc', ['-O2', '-o', bin, join(import.meta.dirname, 'udp-perpacket.c')]);
  const out: ChildProcess[] = [];
  for (const h of topo.hosts) {
    const peer = topo.hosts.find((p) => p !== h)!;
    const child = spawnTracked(bin, ['weftq0', h.underlayIp, '8287', peer.underlayIp], {
      ns: h.netns,
    });
    out.push(child);
    let said = '';
    child.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    await waitFor('per-packet forwarder ready', () => said.includes('ready'), 5000, 20);
    await run('ip', ['-n', h.netns, 'addr', 'add', `10.247.${h.index}.0/32`, 'dev', 'weftq0']);
    await run('ip', ['-n', h.netns, 'link', 'set', 'weftq0', 'mtu', '1472', 'up']);
    await run('ip', ['-n', h.netns, 'route', 'add', '10.247.0.0/16', 'dev', 'weftq0']);
  }
  return out;
}

function table(rows: Row[]): string {
  const vx = rows.find((r) => r.path.startsWith('kernel VXLAN'))!;
  const slow = rows.find((r) => r.path.startsWith('flannel design'));
  const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const lines = [
    `| path | TCP 1 stream Gbit/s | reverse | TCP 4 streams | UDP 64 B kpps delivered | ping RTT µs | × kernel VXLAN (1 stream fwd / rev) | × per-packet design | vCPU·s per Gbit |`,
    `|---|---|---|---|---|---|---|---|---|`,
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.path} | ${f(r.fwd)} | ${f(r.rev)} | ${f(r.p4)} | ${f(r.kpps, 0)} | ${f(r.rttUs, 0)} | ${f(r.fwd / vx.fwd)} / ${f(r.rev / vx.rev)} | ` +
        `${slow ? `${f(r.fwd / slow.fwd, 1)} / ${f(r.rev / slow.rev, 1)}` : '–'} | ${r.cpuPerGbit === undefined ? '–' : f(r.cpuPerGbit, 3)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench:udp needs root (it creates network namespaces)');
  const topo = await createTopology({ hosts: 2, ipv6: false });
  const fwds: NativeForwarder[] = [];
  const server = spawnTracked('iperf3', ['-s'], { ns: topo.hosts[1]!.netns, stdio: 'ignore' });
  const tmp = mkdtempSync(join(tmpdir(), 'weft-bench-udp-'));
  let flannel: ChildProcess[] = [];
  try {
    flannel = await perPacket(topo, tmp);
    await handVxlan(topo);
    fwds.push(...(await forwarders(topo, 'weft0', 244, 8285, true, 2)));
    fwds.push(...(await forwarders(topo, 'weft1', 248, 8288, true, 1)));
    fwds.push(...(await forwarders(topo, 'weftp0', 246, 8286, false)));
    await sleep(300);
    const rows: Row[] = [];
    rows.push(await measure(topo, 'underlay (veth, host to host)', '198.18.0.2', undefined));
    rows.push(
      await measure(topo, 'kernel VXLAN by hand (flannel layout)', '10.245.2.0', undefined),
    );
    rows.push(await measure(topo, 'weft UDP forwarder (TSO + GSO/GRO)', '10.244.2.0', selfCpu));
    rows.push(await measure(topo, 'weft UDP forwarder, one loop thread', '10.248.2.0', selfCpu));
    rows.push(
      await measure(topo, 'weft UDP forwarder, plain TUN (no TSO/GRO)', '10.246.2.0', selfCpu),
    );
    const pids = flannel.map((c) => c.pid!);
    rows.push(
      await measure(topo, 'flannel design: per-packet C forwarder', '10.247.2.0', procCpu(pids)),
    );
    const fb = fwds.map((f) => f.fallback.join(',') || 'none');
    const md =
      `# bench:udp ${new Date().toISOString()} (${SECONDS} s × ${RUNS}, median; client h1, server h2)\n\n` +
      `${table(rows)}\n\nfallbacks per forwarder: ${fb.join(' | ')}\n`;
    console.log(md);
    const dir = join(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `udp-${Date.now()}.md`), md);
  } finally {
    for (const f of fwds) f.close();
    for (const c of flannel) await stopChild(c);
    rmSync(tmp, { recursive: true, force: true });
    await stopChild(server);
    await topo.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
