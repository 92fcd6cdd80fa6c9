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
  /** fraction of 64-byte datagrams lost (iperf3 sending as fast as it can) */
  udpLoss: number;
  /** 64-byte datagrams iperf3 offered per second in that run */
  offeredPps: number;
  /** fraction lost when offered at the anchor's offered rate (NaN: no anchor measured) */
  lossAtAnchor: number;
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

/**
 * 64-byte UDP: as fast as iperf3 sends (`offeredPps` unset), or at a fixed rate (iperf3's -b counts
 * payload bits: 512 per datagram). A path with no backpressure to the sender (a userspace forwarder
 * behind a TUN queue) loses whatever iperf3 offers beyond its capacity, so loss is also measured at the
 * anchor's offered rate (issue #15: ≤ 1 % there).
 */
export async function udp64(
  e: Endpoints,
  offeredPps?: number,
): Promise<{ pps: number; loss: number; offered: number }> {
  const rate = offeredPps === undefined ? '0' : String(Math.round(offeredPps * 512));
  const j = await iperf3(e, ['-u', '-l', '64', '-b', rate]);
  const s = j.end?.sum ?? {};
  const sent = s.packets ?? 0;
  const lost = s.lost_packets ?? 0;
  const secs = s.seconds || SECONDS;
  return { pps: (sent - lost) / secs, loss: sent > 0 ? lost / sent : NaN, offered: sent / secs };
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
 * PIDs whose CPU time counts toward the path's CPU per Gbit (weftd). `anchorOfferedPps`: the anchor's
 * 64-byte offered rate in the same round, at which this path's loss is measured too.
 */
export async function measurePath(
  e: Endpoints,
  daemons: readonly number[] = [],
  anchorOfferedPps?: number,
): Promise<PathResult> {
  await rttUs(e, 5); // warm up ARP/neighbour entries and routes
  const d0 = daemons.reduce((n, pid) => n + cpuSeconds(pid), 0);
  const t1 = await tcpGbit(e, 1);
  const daemonSec = daemons.reduce((n, pid) => n + cpuSeconds(pid), 0) - d0;
  const tcp1 = t1.gbit;
  const tcp4 = (await tcpGbit(e, 4)).gbit;
  const u = await udp64(e);
  const atAnchor =
    anchorOfferedPps !== undefined && Number.isFinite(anchorOfferedPps)
      ? (await udp64(e, anchorOfferedPps)).loss
      : NaN;
  const rtt = await rttUs(e);
  return {
    tcp1,
    tcp4,
    pps: u.pps,
    udpLoss: u.loss,
    offeredPps: u.offered,
    lossAtAnchor: atAnchor,
    rttUs: rtt,
    cpuPerGbit: (t1.iperfCpuSec + daemonSec) / (tcp1 * SECONDS),
  };
}
