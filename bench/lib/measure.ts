/**
 * Dataplane measurements between two network namespaces (docs/performance.md: short runs, same run as the
 * anchors, read as ratios): iperf3 TCP with 1 and 4 streams, iperf3 UDP with 64-byte payloads (delivered
 * packets per second), ping RTT, and CPU per Gbit during the 1-stream run. The CPU counted is what
 * iperf3 reports for both ends (user + system, which includes most softirq work of the send and receive
 * paths) plus the CPU of the given daemons (weftd, whose forwarder threads carry the UDP backend): not
 * the machine-wide counters, which other work on a shared machine would pollute.
 */
import { readFileSync } from 'node:fs';
import { nsRun, sleep } from '../../test/helpers/exec.js';

export const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 2);

export interface PathResult {
  /** Gbit/s received, 1 TCP stream */
  tcp1: number;
  /** Gbit/s received, 4 TCP streams */
  tcp4: number;
  /** UDP 64-byte datagrams delivered per second (sent minus lost) */
  pps: number;
  /** fraction of 64-byte datagrams lost */
  udpLoss: number;
  /** average ping RTT in µs */
  rttUs: number;
  /** vCPU·seconds (iperf3 both ends + daemons) per Gbit moved in the 1-stream run */
  cpuPerGbit: number;
}

export interface Endpoints {
  clientNs: string;
  serverNs: string;
  serverIp: string;
}

/** utime + stime of a process in seconds (0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15, in USER_HZ ticks
  } catch {
    return 0;
  }
}

interface IperfJson {
  end?: {
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
    sum_received?: { bits_per_second?: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number };
  };
  error?: string;
}

async function iperf3(e: Endpoints, args: readonly string[]): Promise<IperfJson> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await nsRun(
      e.clientNs,
      'iperf3',
      ['-c', e.serverIp, '-t', String(SECONDS), '-J', ...args],
      { allowFail: true, timeoutMs: (SECONDS + 30) * 1000 },
    );
    try {
      const j = JSON.parse(r.stdout) as IperfJson;
      const moved = args.includes('-u')
        ? (j.end?.sum?.packets ?? 0) > 0
        : (j.end?.sum_received?.bits_per_second ?? 0) > 0;
      if (r.code === 0 && !j.error && moved) return j;
      if (!j.error && !moved) last = 'iperf3 reported no traffic';
      if (j.error) last = j.error;
    } catch {
      last = r.stderr || r.stdout.slice(0, 300);
    }
    await sleep(300); // server busy with the previous test, or not yet listening
  }
  throw new Error(`iperf3 ${args.join(' ')} to ${e.serverIp} failed: ${last}`);
}

/** Gbit/s received and the CPU seconds both iperf3 ends used. */
export async function tcpGbit(
  e: Endpoints,
  streams: number,
): Promise<{ gbit: number; iperfCpuSec: number }> {
  const j = await iperf3(e, ['-P', String(streams)]);
  const cpu = j.end?.cpu_utilization_percent;
  return {
    gbit: (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9,
    iperfCpuSec: (((cpu?.host_total ?? NaN) + (cpu?.remote_total ?? NaN)) / 100) * SECONDS,
  };
}

export async function udp64(e: Endpoints): Promise<{ pps: number; loss: number }> {
  const j = await iperf3(e, ['-u', '-l', '64', '-b', '0']);
  const s = j.end?.sum ?? {};
  const sent = s.packets ?? 0;
  const lost = s.lost_packets ?? 0;
  const secs = s.seconds || SECONDS;
  return { pps: (sent - lost) / secs, loss: sent > 0 ? lost / sent : NaN };
}

export async function rttUs(e: Endpoints, count = 50): Promise<number> {
  const r = await nsRun(e.clientNs, 'ping', ['-c', String(count), '-i', '0.01', '-q', e.serverIp], {
    allowFail: true,
    timeoutMs: 30_000,
  });
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) * 1000 : NaN;
}

/**
 * All dataplane numbers for one path; an iperf3 server must already listen at `serverIp`. `daemons`:
 * PIDs whose CPU time counts toward the path's CPU per Gbit (weftd).
 */
export async function measurePath(
  e: Endpoints,
  daemons: readonly number[] = [],
): Promise<PathResult> {
  await rttUs(e, 5); // warm up ARP/neighbour entries and routes
  const d0 = daemons.reduce((n, pid) => n + cpuSeconds(pid), 0);
  const t1 = await tcpGbit(e, 1);
  const daemonSec = daemons.reduce((n, pid) => n + cpuSeconds(pid), 0) - d0;
  const tcp1 = t1.gbit;
  const tcp4 = (await tcpGbit(e, 4)).gbit;
  const u = await udp64(e);
  const rtt = await rttUs(e);
  return {
    tcp1,
    tcp4,
    pps: u.pps,
    udpLoss: u.loss,
    rttUs: rtt,
    cpuPerGbit: (t1.iperfCpuSec + daemonSec) / (tcp1 * SECONDS),
  };
}
