/**
 * The bench's results: the machine's facts, the dataplane rows (each with the anchor it is divided by)
 * and the control-plane rows, written as Markdown, JSON and an SVG chart of the ratios. A row whose part
 * is missing carries `na` (the reason) and is printed as "n/a (reason)", never as a number.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import type { PathResult } from './measure.js';
import type {
  CniLatency,
  EtcdToKernel,
  ForwarderRow,
  LeaseBench,
  NetlinkBench,
  Rss,
} from './control.js';
import { ratioChart, type RatioBar } from './svg.js';

export interface Machine {
  kernel: string;
  cpu: string;
  cores: number;
  node: string;
  iperf3: string;
  etcd: string;
  loadavg1m: number;
}

export function machineFacts(): Machine {
  const first = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '?';
    } catch {
      return '?';
    }
  };
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  return {
    kernel: first('uname', ['-r']),
    cpu: model ?? cpus()[0]?.model ?? '?',
    cores: cpus().length,
    node: process.version,
    iperf3: first('iperf3', ['--version']),
    etcd: first('etcd', ['--version']),
    loadavg1m: loadavg()[0] ?? NaN,
  };
}

export interface DataplaneRow {
  id: string;
  label: string;
  /** id of the row this one is divided by; null for the underlay */
  anchor: string | null;
  result?: PathResult;
  na?: string;
}

type Maybe<T> = T | { na: string };

export interface Control {
  lease: Maybe<LeaseBench>;
  netlink: Maybe<NetlinkBench>;
  etcdToKernel: Maybe<EtcdToKernel>;
  rss: Maybe<Rss>;
  cni: Maybe<CniLatency>;
  forwarder: ForwarderRow[] | { na: string };
}

export interface BenchReport {
  date: string;
  seconds: number;
  rounds: number;
  machine: Machine;
  dataplane: DataplaneRow[];
  control: Control;
  ratios: RatioBar[];
}

const isNa = <T extends object>(v: Maybe<T>): v is { na: string } => 'na' in v;
const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
const kpps = (n: number): string => (Number.isFinite(n) ? `${(n / 1000).toFixed(0)}k` : '–');

/** Higher is better for every ratio: throughput weft ÷ anchor, RTT anchor ÷ weft. */
export function pathRatios(
  r: PathResult,
  a: PathResult,
): Record<'tcp1' | 'tcp4' | 'pps' | 'rtt', number> {
  return {
    tcp1: r.tcp1 / a.tcp1,
    tcp4: r.tcp4 / a.tcp4,
    pps: r.pps / a.pps,
    rtt: a.rttUs / r.rttUs,
  };
}

export function buildRatios(dp: readonly DataplaneRow[], c: Control): RatioBar[] {
  const bars: RatioBar[] = [];
  const byId = new Map(dp.map((r) => [r.id, r]));
  for (const row of dp.filter((r) => r.id.startsWith('weft'))) {
    const anchor = row.anchor ? byId.get(row.anchor) : undefined;
    const group = `${row.label} ÷ ${anchor?.label ?? '?'}`;
    const ratios = row.result && anchor?.result ? pathRatios(row.result, anchor.result) : null;
    const note = row.na ?? (anchor?.na ? `anchor: ${anchor.na}` : undefined);
    const add = (label: string, v: number | undefined): void => {
      bars.push({ group, label, value: v ?? NaN, ...(note ? { note } : {}) });
    };
    add('TCP, 1 stream', ratios?.tcp1);
    add('TCP, 4 streams', ratios?.tcp4);
    add('UDP 64 B delivered pps', ratios?.pps);
    add('ping RTT (anchor ÷ weft)', ratios?.rtt);
  }
  if (!('na' in c.forwarder)) {
    const g = 'native forwarder ÷ kernel VXLAN (bench/udp.ts, TCP 1 stream)';
    for (const r of c.forwarder.filter((x) => /forwarder/.test(x.path))) {
      bars.push({
        group: g,
        label: r.path.replace(/^weft UDP forwarder,?\s*/, '') || r.path,
        value: r.xVxlan,
      });
    }
  }
  const cp = 'control plane (anchor ÷ weft time)';
  if (isNa(c.netlink))
    bars.push({
      group: cp,
      label: 'peer programming vs kernel floor',
      value: NaN,
      note: c.netlink.na,
    });
  else
    for (const n of c.netlink.sizes)
      bars.push({
        group: cp,
        label: `full reconcile, ${n.peers} peers, vs kernel floor`,
        value: n.floorMs / n.weftMs,
      });
  if (isNa(c.cni)) bars.push({ group: cp, label: 'CNI ADD vs bridge', value: NaN, note: c.cni.na });
  else {
    bars.push({
      group: cp,
      label: 'CNI ADD vs bridge alone',
      value: c.cni.bridgeAddMs / c.cni.weftAddMs,
    });
    bars.push({
      group: cp,
      label: 'CNI DEL vs bridge alone',
      value: c.cni.bridgeDelMs / c.cni.weftDelMs,
    });
  }
  return bars;
}

function dataplaneTable(dp: readonly DataplaneRow[]): string {
  const byId = new Map(dp.map((r) => [r.id, r]));
  const lines = [
    '| path | TCP 1 stream | TCP 4 streams | UDP 64 B delivered | ping RTT | vCPU·s per Gbit | ratio to anchor: TCP 1 / TCP 4 / pps / RTT |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of dp) {
    const anchor = r.anchor ? byId.get(r.anchor) : undefined;
    if (!r.result) {
      lines.push(`| ${r.label} | n/a (${r.na ?? 'not measured'}) | | | | | |`);
      continue;
    }
    const x = r.result;
    let ratio = '— (anchor)';
    if (anchor?.result) {
      const q = pathRatios(x, anchor.result);
      ratio = `× ${anchor.label}: ${f(q.tcp1)} / ${f(q.tcp4)} / ${f(q.pps)} / ${f(q.rtt)}`;
    } else if (anchor) ratio = `n/a (anchor ${anchor.label}: ${anchor.na ?? 'missing'})`;
    lines.push(
      `| ${r.label} | ${f(x.tcp1)} Gbit/s | ${f(x.tcp4)} Gbit/s | ${kpps(x.pps)} pps (${f(x.udpLoss * 100, 0)} % lost${Number.isFinite(x.lossAtAnchor) ? `; ${f(x.lossAtAnchor * 100, 1)} % at the anchor's ${kpps(anchor?.result?.offeredPps ?? NaN)} pps` : ''}) | ${f(x.rttUs, 0)} µs | ${f(x.cpuPerGbit, 3)} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

function forwarderTable(c: Control): string {
  if ('na' in c.forwarder) return `n/a (${c.forwarder.na})`;
  const lines = [
    '| path (bench/udp.ts, host to host) | TCP 1 stream | reverse (-R) | TCP 4 streams | UDP 64 B delivered | ping RTT | × its kernel VXLAN (TCP 1) | × per-packet design (TCP 1) | vCPU·s per Gbit (forwarder) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of c.forwarder) {
    lines.push(
      `| ${r.path} | ${f(r.fwd)} Gbit/s | ${f(r.rev)} Gbit/s | ${f(r.tcp4)} Gbit/s | ${f(r.kpps, 0)}k pps | ${f(r.rttUs, 0)} µs | ${f(r.xVxlan)} | ${f(r.xPerPacket, 1)} | ${r.cpuPerGbit === null ? '—' : f(r.cpuPerGbit, 3)} |`,
    );
  }
  return lines.join('\n');
}

function controlTable(c: Control): string {
  const lines = ['| measurement | weft | anchor (same run) | ratio |', '|---|---|---|---|'];
  const na = (what: string, v: { na: string }): void =>
    void lines.push(`| ${what} | n/a (${v.na}) | | |`);
  if (isNa(c.lease)) na('lease acquisition, 200 hosts at once', c.lease);
  else
    lines.push(
      `| lease acquisition, ${c.lease.hosts} hosts at once (bench/lease.ts) | ${f(c.lease.seconds)} s, ${c.lease.ok} | goal: all within 5 s | ${c.lease.goal} |`,
    );
  if (isNa(c.netlink)) na('peer programming (bench/netlink.ts)', c.netlink);
  else {
    for (const n of c.netlink.sizes)
      lines.push(
        `| ${n.peers}-peer full reconcile, vxlan backend (${3 * n.peers} neigh/FDB/route; bench/netlink.ts) | ${f(n.weftMs, 0)} ms | kernel floor, batched rtnetlink from C: ${f(n.floorMs, 0)} ms; \`ip -batch\` + \`bridge -batch\`: ${f(n.iprouteMs, 0)} ms | ${f(n.weftMs / n.floorMs)} × floor (goal ≤ 1.15) |`,
      );
    const inc = c.netlink.sizes.filter((n) => Number.isFinite(n.addMs));
    if (inc.length > 0)
      lines.push(
        `| one peer added / removed on top of N (lease watch → kernel; netlink requests, dumps) | ${inc.map((n) => `${n.peers}: ${f(n.addMs, 1)} / ${f(n.removeMs, 1)} ms (${f(n.addRequests, 0)}+${f(n.removeRequests, 0)} req, ${f(n.addDumps + n.removeDumps, 0)} dumps)`).join('; ')} | O(1): 3 requests each, no dump | — |`,
      );
  }
  if (isNa(c.etcdToKernel)) na('etcd → kernel latency', c.etcdToKernel);
  else
    lines.push(
      `| etcd → kernel: lease put until its route is in the kernel (weft VXLAN, ${c.etcdToKernel.samples} peers one by one) | p50 ${f(c.etcdToKernel.p50Ms, 1)} ms, p99 ${f(c.etcdToKernel.p99Ms, 1)} ms | — | — |`,
    );
  if (isNa(c.cni)) na('CNI ADD/DEL latency', c.cni);
  else {
    const x = c.cni;
    lines.push(
      `| CNI ADD, p50 of ${x.n} (weft → bridge + host-local) | ${f(x.weftAddMs, 0)} ms | reference bridge called directly: ${f(x.bridgeAddMs, 0)} ms | ${f(x.bridgeAddMs / x.weftAddMs)} |`,
      `| CNI DEL, p50 of ${x.n} | ${f(x.weftDelMs, 0)} ms | bridge directly: ${f(x.bridgeDelMs, 0)} ms | ${f(x.bridgeDelMs / x.weftDelMs)} |`,
    );
  }
  if (isNa(c.rss)) na('weftd RSS at 1000 peers', c.rss);
  else
    lines.push(
      `| weftd RSS with ${c.rss.peers} peers (${c.rss.programmed} peer routes in the kernel${c.rss.weftd ? `; ${c.rss.weftd}` : ''}) | ${f(c.rss.rssMiB, 1)} MiB (peak ${f(c.rss.hwmMiB, 1)}) | same weftd with 1 peer: ${f(c.rss.baselineMiB, 1)} MiB | ≤ 76.3 MiB (80 MB): ${c.rss.rssMiB <= RSS_GOAL_MIB ? 'met' : 'NOT met'} |`,
    );
  return lines.join('\n');
}

/** Issue 15's memory goal: 80 MB at 1000 peers. */
const RSS_GOAL_MIB = 80e6 / 1024 / 1024;

export function toMarkdown(r: BenchReport): string {
  const m = r.machine;
  return `## weft benchmark, ${r.date}

Machine: ${m.cpu}, ${m.cores} vCPU, kernel ${m.kernel}, Node ${m.node}, ${m.iperf3}, load ${f(m.loadavg1m)} at start.
Two simulated hosts in network namespaces on one underlay bridge; client in a container on h1, server in
a container on h2 (underlay row: host to host). iperf3 ${r.seconds} s per figure; each figure is the median
of ${r.rounds} rounds (every path once per round). Everything shares the same CPUs: read the ratios, not the
absolute numbers. Ratios: higher is better (RTT: anchor ÷ weft). CPU: iperf3 at both ends + weftd.
Firewall: weft rows run \`weftd --ip-masq\` with forward rules on (flannel's usual deployment); the two
"by hand" container anchors carry flannel's own masquerade + forward nftables rules, so both sides pay
the same conntrack cost (about 15-20 µs of RTT here) and the ratio shows weft's own overhead.

### Dataplane

${dataplaneTable(r.dataplane)}

### The native UDP forwarder on its own, beside flannel's per-packet design (bench/udp.ts)

${forwarderTable(r.control)}

### Control plane and CNI

${controlTable(r.control)}
`;
}

export function toSvg(r: BenchReport): string {
  return ratioChart(
    `weft ÷ its anchors, measured in the same run (${r.date.slice(0, 10)})`,
    `${r.machine.cores} vCPU, kernel ${r.machine.kernel}; higher is better; 1.0 = as good as the anchor`,
    r.ratios,
  );
}
