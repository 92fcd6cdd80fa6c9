/**
 * Dataplane measurements between two network namespaces (performance.md: short runs, same run as the
 * anchors, read as ratios): iperf3 TCP with 1 and 4 streams, iperf3 UDP with 64-byte payloads (delivered
 * packets per second), ping RTT, and the machine's busy CPU time per Gbit during the 1-stream run.
 */
import { readFileSync } from 'node:fs';
import { nsRun, sleep } from '../../test/helpers/exec.js';

export const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);

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
  /** busy vCPU·seconds (whole machine, /proc/stat) per Gbit moved in the 1-stream run */
  cpuPerGbit: number;
}

export interface Endpoints {
  clientNs: string;
  serverNs: string;
  serverIp: string;
}

/** Busy and total jiffies over all CPUs (first line of /proc/stat). */
function cpuJiffies(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1);
  const v = f.map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

interface IperfJson {
  end?: {
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
      if (r.code === 0 && !j.error) return j;
      last = j.error ?? r.stderr;
    } catch {
      last = r.stderr || r.stdout.slice(0, 300);
    }
    await sleep(300); // server busy with the previous test, or not yet listening
  }
  throw new Error(`iperf3 ${args.join(' ')} to ${e.serverIp} failed: ${last}`);
}

export async function tcpGbit(e: Endpoints, streams: number): Promise<number> {
  const j = await iperf3(e, ['-P', String(streams)]);
  return (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9;
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

/** All dataplane numbers for one path; an iperf3 server must already listen at `serverIp`. */
export async function measurePath(e: Endpoints): Promise<PathResult> {
  await rttUs(e, 5); // warm up ARP/neighbour entries and routes
  const c0 = cpuJiffies();
  const tcp1 = await tcpGbit(e, 1);
  const c1 = cpuJiffies();
  const hz = 100; // USER_HZ on Linux
  const busySec = (c1.busy - c0.busy) / hz;
  const tcp4 = await tcpGbit(e, 4);
  const u = await udp64(e);
  const rtt = await rttUs(e);
  return {
    tcp1,
    tcp4,
    pps: u.pps,
    udpLoss: u.loss,
    rttUs: rtt,
    cpuPerGbit: busySec / (tcp1 * SECONDS),
  };
}
