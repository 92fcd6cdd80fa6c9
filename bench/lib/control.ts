/**
 * Control-plane rows. While weft VXLAN runs on the bench topology:
 *  - etcd→kernel latency: a fake peer's lease is written to etcd (by an agent inside the underlay netns)
 *    and the time until its route appears in h1's kernel (`ip monitor route`) is taken, one peer at a time;
 *  - weftd RSS at 1000 peers: 1000 fake leases (public IPs in 198.19.0.0/16, never reached: VXLAN only
 *    programs neigh/fdb/route for them), then VmRSS of h1's weftd from /proc/<pid>/status;
 *  - CNI ADD/DEL latency: weft (→ bridge + host-local) against the reference bridge called directly
 *    with the config weft would hand it.
 * And two rows from the per-area benchmarks, run as they are (`bench/lease.ts`, `bench/netlink.ts`),
 * their Markdown tables parsed.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeLeaseAttrs } from '../../src/lease/codec.js';
import { makeSubnetKey } from '../../src/subnet/keys.js';
import { run, spawnTracked, stopChild } from '../../test/helpers/exec.js';
import { bridgeConf, cniRounds, REPO, weftConf } from './cni.js';
import { mtuOf, subnetsOf, type WeftPath } from './paths.js';
import {
  parseForwarderOutput,
  parseLeaseOutput,
  parseNetlinkOutput,
  type ForwarderRow,
  type LeaseBench,
  type NetlinkBench,
} from './area-output.js';

export type { ForwarderRow, LeaseBench, NetlinkBench };

const now = (): number => performance.timeOrigin + performance.now();

export const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
};

/** The fake peer number i: subnet 10.<200+i/256>.<i%256>.0/24, public IP 198.19.<i/256>.<i%256+1>. */
function fakePeer(prefix: string, i: number): { subnet: string; key: string; value: string } {
  const subnet = `10.${200 + (i >> 8)}.${i & 255}.0/24`;
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  const value = encodeLeaseAttrs({
    publicIp: `198.19.${i >> 8}.${((i & 255) % 254) + 1}`,
    publicIpv6: null,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: `0e:fe:00:00:${hex((i >> 8) & 255)}:${hex(i & 255)}` },
  });
  return { subnet, key: `${prefix}/subnets/${makeSubnetKey(subnet)}`, value };
}

class EtcdAgent {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (v: { t0: number; t1: number }) => void>();
  private id = 0;
  constructor(ns: string, endpoint: string) {
    this.child = spawnTracked(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'etcd-agent.ts'), endpoint],
      { ns, cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as { id: number; t0: number; t1: number; error?: string };
      if (r.error) console.error(`etcd agent: ${r.error}`);
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
  }
  put(kvs: [string, string][], concurrency = 1): Promise<{ t0: number; t1: number }> {
    const id = ++this.id;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ id, put: kvs, concurrency })}\n`);
    });
  }
  async close(): Promise<void> {
    this.child.stdin!.end();
    await stopChild(this.child, 2000);
  }
}

/** Watches h1's routes; resolves waiters when a route for their subnet is added. */
class RouteMonitor {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, (t: number) => void>();
  constructor(ns: string) {
    this.child = spawnTracked('ip', ['-n', ns, 'monitor', 'route']);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const t = now();
      if (line.startsWith('Deleted')) return;
      const dst = line.split(' ')[0] ?? '';
      this.waiting.get(dst)?.(t);
      this.waiting.delete(dst);
    });
  }
  waitFor(subnet: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no route for ${subnet}`)), timeoutMs);
      this.waiting.set(subnet, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }
  async close(): Promise<void> {
    await stopChild(this.child, 1000);
  }
}

export function rssKiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string): number =>
    Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

export interface EtcdToKernel {
  samples: number;
  p50Ms: number;
  p99Ms: number;
}
export interface Rss {
  peers: number;
  baselineMiB: number;
  rssMiB: number;
  hwmMiB: number;
  programmed: number;
  /** Which weftd was measured (bench/lib/packaged.ts), when not the checkout. */
  weftd?: string;
}

/** etcd→kernel latency (`samples` peers one at a time), then RSS with `peers` fake peers (0: the
 *  latency alone matters). */
export async function latencyAndRss(
  p: WeftPath,
  samples = 100,
  peers = 1000,
): Promise<[EtcdToKernel, Rss]> {
  const { topo, etcd, prefix } = p.cluster;
  const h1 = topo.hosts[0]!;
  const taken = new Set(p.daemons.map((d) => subnetsOf(d).subnet));
  const peerIds: number[] = [];
  for (let i = 0; peerIds.length < samples + peers; i++) {
    if (!taken.has(fakePeer(prefix, i).subnet)) peerIds.push(i);
  }
  const agent = new EtcdAgent(topo.underlayNetns, etcd.endpoints[0]!);
  const mon = new RouteMonitor(h1.netns);
  const pid = p.daemons[0]!.child.pid!;
  try {
    await new Promise((r) => setTimeout(r, 300)); // monitor and agent connected
    const base = rssKiB(pid); // weftd with its one real peer
    const lat: number[] = [];
    for (const i of peerIds.slice(0, samples)) {
      const f = fakePeer(prefix, i);
      const seen = mon.waitFor(f.subnet, 10_000);
      const { t0 } = await agent.put([[f.key, f.value]]);
      lat.push((await seen) - t0);
    }
    const bulk = peerIds.slice(samples).map((i) => fakePeer(prefix, i));
    if (bulk.length > 0) {
      const last = mon.waitFor(bulk[bulk.length - 1]!.subnet, 60_000);
      await agent.put(
        bulk.map((f) => [f.key, f.value]),
        16,
      );
      await last.catch(() => undefined);
    }
    let programmed = 0;
    for (let k = 0; k < 100; k++) {
      const out = (await run('ip', ['-n', h1.netns, 'route', 'show', 'root', '10.0.0.0/8'])).stdout;
      programmed = out.split('\n').filter((l) => / dev weft| dev flannel|onlink/.test(l)).length;
      if (programmed >= samples + peers) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1500)); // let allocations settle after the burst
    const after = rssKiB(pid);
    return [
      { samples: lat.length, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99) },
      {
        peers: samples + peers + 1,
        baselineMiB: base.rss / 1024,
        rssMiB: after.rss / 1024,
        hwmMiB: after.hwm / 1024,
        programmed,
      },
    ];
  } finally {
    await mon.close();
    await agent.close();
  }
}

export interface CniLatency {
  n: number;
  weftAddMs: number;
  weftDelMs: number;
  bridgeAddMs: number;
  bridgeDelMs: number;
}

/** `n` ADD+DEL rounds through weft and through the reference bridge directly, on host h1. */
export async function cniLatency(p: WeftPath, n = 10): Promise<CniLatency> {
  const h1 = p.cluster.topo.hosts[0]!;
  const w = p.daemons[0]!;
  const dir = join(p.cluster.tmp, 'cni-latency');
  const t = await cniRounds({
    hostNs: h1.netns,
    binDir: p.binDir,
    weftConf: weftConf(w.subnetFile, dir, 'wlat0'),
    refConf: bridgeConf('10.199.1.0/24', mtuOf(w), dir, 'rlat0'),
    n,
    nsPrefix: `${h1.netns}l`,
  });
  return {
    n,
    weftAddMs: quantile(t.weftAdd, 0.5),
    weftDelMs: quantile(t.weftDel, 0.5),
    bridgeAddMs: quantile(t.refAdd, 0.5),
    bridgeDelMs: quantile(t.refDel, 0.5),
  };
}

/** Runs a per-area bench script as it is; resolves its stdout, or null with the reason. */
async function runAreaBench(
  file: string,
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<{ out: string } | { na: string }> {
  const path = join(REPO, 'bench', file);
  if (!existsSync(path)) return { na: `bench/${file} does not exist yet` };
  const r = await run(process.execPath, ['--import', 'tsx', path], {
    env: { ...process.env, ...env },
    allowFail: true,
    timeoutMs,
  });
  if (r.code !== 0)
    return { na: `bench/${file} failed: ${(r.stderr || r.stdout).trim().slice(-200)}` };
  return { out: r.stdout };
}

/** bench/lease.ts with 200 hosts: `| 1 | 1.23 s | 200/200 | … | goal: met |`. */
export async function leaseBench(hosts = 200): Promise<LeaseBench | { na: string }> {
  const r = await runAreaBench('lease.ts', { BENCH_HOSTS: String(hosts), BENCH_RUNS: '1' });
  if ('na' in r) return r;
  return (
    parseLeaseOutput(r.out, hosts) ?? {
      na: `could not read bench/lease.ts output: ${r.out.slice(-200)}`,
    }
  );
}

/** bench/netlink.ts at several sizes (weft against the kernel's floor), the median of 3 runs each (one
 *  run's ratio is mostly noise on a shared machine). */
export async function netlinkBench(
  sizes: readonly number[] = [1000, 2000, 5000, 10000],
): Promise<NetlinkBench | { na: string }> {
  const r = await runAreaBench(
    'netlink.ts',
    {
      BENCH_SIZES: sizes.join(','),
      BENCH_RUNS: '3',
      ...(process.argv.includes('--publish') ? { BENCH_PUBLISH: '1' } : {}),
    },
    900_000,
  );
  if ('na' in r) return r;
  return (
    parseNetlinkOutput(r.out) ?? {
      na: `could not read bench/netlink.ts output: ${r.out.slice(-200)}`,
    }
  );
}

/**
 * bench/udp.ts as it is (the native forwarder driven directly: with TSO + GSO/GRO, and without offloads,
 * i.e. batched per-packet, beside its own underlay and kernel VXLAN anchors measured in that run).
 */
export async function forwarderBench(seconds: number): Promise<ForwarderRow[] | { na: string }> {
  const r = await runAreaBench('udp.ts', { BENCH_SECONDS: String(seconds), BENCH_RUNS: '1' });
  if ('na' in r) return r;
  const rows = parseForwarderOutput(r.out);
  if (rows.length === 0) return { na: `could not read bench/udp.ts output: ${r.out.slice(-200)}` };
  return rows;
}
