/**
 * What the data-path benches (bench/udp.ts, bench/wireguard.ts) share: iperf3 TCP and 64-byte UDP runs
 * inside a test namespace, the CPU clocks that turn them into vCPU·s per Gbit, and the anchor every
 * row is compared with, kernel VXLAN programmed by hand in flannel's layout.
 */
import { readFileSync } from 'node:fs';
import { nsRun, run } from '../../test/helpers/exec.js';
import type { Topology } from '../../test/helpers/netns.js';

export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** TCP Gbit/s received from `ns` to `dst` (reverse: `-R`, `dst` sends). */
export async function iperf(
  ns: string,
  dst: string,
  seconds: number,
  reverse: boolean,
  streams = 1,
): Promise<number> {
  const args = ['-c', dst, '-t', String(seconds), '-J', '-P', String(streams)];
  if (reverse) args.push('-R');
  const r = await nsRun(ns, 'iperf3', args, { timeoutMs: (seconds + 30) * 1000 });
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

/** 64-byte UDP datagrams as fast as iperf3 sends them: thousands of packets per second delivered. */
export async function udpKpps(ns: string, dst: string, seconds: number): Promise<number> {
  const args = ['-c', dst, '-u', '-l', '64', '-b', '0', '-t', String(seconds), '-J'];
  const r = await nsRun(ns, 'iperf3', args, { timeoutMs: (seconds + 30) * 1000 });
  const j = JSON.parse(r.stdout) as {
    end: { sum: { packets: number; lost_packets: number; seconds: number } };
  };
  const s = j.end.sum;
  return (s.packets - s.lost_packets) / s.seconds / 1000;
}

/** Cumulative CPU seconds of whatever does the forwarding on a path (undefined: not measured). */
export type CpuClock = (() => number) | undefined;

/** This process (the engines' threads; JS is idle while iperf3 runs). */
export const selfCpu: CpuClock = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

/** utime + stime of processes, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function procCpu(pids: number[]): CpuClock {
  return () =>
    pids.reduce((sum, pid) => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return sum + (Number(f[11]) + Number(f[12])) / 100;
    }, 0);
}

/** Kernel VXLAN `vx0` on every host, programmed by hand in flannel's layout (10.245.0.0/16, 8472). */
export async function handVxlan(topo: Topology, mtu = 1450): Promise<void> {
  for (const h of topo.hosts) {
    const i = h.index;
    const ip = (...a: string[]): Promise<unknown> => run('ip', ['-n', h.netns, ...a]);
    await ip(
      ...['link', 'add', 'vx0', 'type', 'vxlan', 'id', '1', 'local', h.underlayIp, 'dev', 'eth0'],
      ...['dstport', '8472', 'nolearning'],
    );
    await ip('link', 'set', 'vx0', 'address', `0e:00:00:00:00:0${i}`, 'mtu', String(mtu), 'up');
    await ip('addr', 'add', `10.245.${i}.0/32`, 'dev', 'vx0');
    for (const p of topo.hosts) {
      if (p === h) continue;
      const j = p.index;
      const mac = `0e:00:00:00:00:0${j}`;
      await ip('neigh', 'add', `10.245.${j}.0`, 'lladdr', mac, 'dev', 'vx0', 'nud', 'permanent');
      await run('bridge', ['-n', h.netns, 'fdb', 'add', mac, 'dev', 'vx0', 'dst', p.underlayIp]);
      await ip('route', 'add', `10.245.${j}.0/24`, 'via', `10.245.${j}.0`, 'dev', 'vx0', 'onlink');
    }
  }
}
