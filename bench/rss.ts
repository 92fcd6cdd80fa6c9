/**
 * weftd RSS at 1 and at ~1000 peers, beside issue 4's goal (≤ 80 MB at 1000 peers).
 *
 * A real weftd (VXLAN; by default the packaged executable, see bench/lib/packaged.ts) on h1 of a 2-host
 * netns topology with a real etcd, with weftd's default timers; the fake peers are the control bench's
 * (bench/lib/control.ts: public IPs in 198.19.0.0/16, never reached).
 * - `BENCH_RSS_PEERS` sets the fake-peer count (default 1000); `BENCH_RSS_SAMPLES=100` first adds that
 *   many peers one by one and prints the etcd → kernel latency (the lease watch path).
 * - Extra node flags for weftd can be tried through `NODE_OPTIONS` with BENCH_RSS_WEFTD=checkout
 *   (spawned daemons inherit the environment; the packaged one gets weftd.service's), e.g.
 *   `NODE_OPTIONS=--lite-mode`.
 * - First prints what each dependency costs at start (bench/lib/dep-rss.ts; BENCH_RSS_DEPS=0 skips it).
 * - Then VmRSS is sampled every second over 65 s of idleness (BENCH_RSS_SETTLE=N: over N seconds, 0:
 *   not at all; BENCH_RSS_VERBOSE=1 prints each sample); BENCH_RSS_SMAPS=1 shows where the resident
 *   memory is (anonymous vs the node binary's pages), BENCH_RSS_HEAP=1 the V8 heap spaces.
 * Needs root (network namespaces). Usage: `npm run bench:rss`.
 */
import { readFileSync } from 'node:fs';
import { run } from '../test/helpers/exec.js';
import { latencyAndRss, rssKiB } from './lib/control.js';
import { dependencyCosts, WEFTD_DEPENDENCIES } from './lib/dep-rss.js';
import { weft } from './lib/paths.js';
import { DEPLOYED_FLAGS, packagedOptions } from './lib/packaged.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { createTopology } from '../test/helpers/netns.js';

const GOAL_MB = 80;
const peers = Number(process.env.BENCH_RSS_PEERS ?? 1000);
const mb = (mib: number): string => `${((mib * 1024 * 1024) / 1e6).toFixed(1)} MB`;

if (process.env.BENCH_RSS_DEPS !== '0') {
  const { bare, costs } = dependencyCosts(WEFTD_DEPENDENCIES);
  console.log(
    `\nStart cost of each dependency, imported alone into a fresh node --max-semi-space-size=2 (median of 3; a bare Node: ${bare.rssMiB.toFixed(1)} MiB VmRSS, ${bare.anonMiB.toFixed(1)} MiB of it anonymous):\n`,
  );
  console.log('| module | + VmRSS | + anonymous (heap, malloc) |');
  console.log('|---|---|---|');
  for (const c of costs)
    console.log(`| ${c.module} | ${c.rssMiB.toFixed(1)} MiB | ${c.anonMiB.toFixed(1)} MiB |`);
  console.log('');
}

const packaged = packagedOptions();
process.on('exit', () => packaged.cleanup());

const topo = await createTopology({ hosts: 2, ipv6: false });
try {
  const etcd = await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
  try {
    const wp = await weft(topo, etcd, 'vxlan', DEPLOYED_FLAGS, packaged.opts);
    try {
      const samples = Number(process.env.BENCH_RSS_SAMPLES ?? 0);
      const [lat, rss] = await latencyAndRss(wp, samples, peers);
      if (samples > 0)
        console.log(
          `etcd → kernel (a lease put until its route is in the kernel, ${lat.samples} peers one by one): p50 ${lat.p50Ms.toFixed(1)} ms, p99 ${lat.p99Ms.toFixed(1)} ms\n`,
        );
      const verdict = (rss.rssMiB * 1024 * 1024) / 1e6 <= GOAL_MB ? 'meets' : 'misses';
      console.log(`| weftd (vxlan)       | peers | VmRSS     | VmHWM     | goal     |`);
      console.log(`|---------------------|-------|-----------|-----------|----------|`);
      console.log(
        `| 1 real peer         | 1     | ${mb(rss.baselineMiB)} | -         | ≤ ${GOAL_MB} MB |`,
      );
      console.log(
        `| + fake peers        | ${rss.peers}  | ${mb(rss.rssMiB)} | ${mb(rss.hwmMiB)} | ${verdict} |`,
      );
      // RSS over the next idle minute and a bit: one full reconcile (the 60 s resync) falls in it, and
      // V8's memory reducer runs its GCs once the daemon is idle; the row is the largest sample
      const pid = wp.daemons[0]!.child.pid!;
      const upTo = Number(process.env.BENCH_RSS_SETTLE ?? 65);
      let idleMax = 0;
      for (let t = 1; t <= upTo; t++) {
        await new Promise((r) => setTimeout(r, 1000));
        const kib = rssKiB(pid).rss;
        idleMax = Math.max(idleMax, kib);
        if (process.env.BENCH_RSS_VERBOSE && (t % 5 === 0 || t === upTo))
          console.log(`idle +${t} s: VmRSS ${mb(kib / 1024)}`);
      }
      if (upTo > 0) {
        const idleVerdict = (idleMax * 1024) / 1e6 <= GOAL_MB ? 'meets' : 'misses';
        console.log(
          `| idle ${upTo} s after, max | ${rss.peers}  | ${mb(idleMax / 1024)} | ${mb(rssKiB(pid).hwm / 1024)} | ${idleVerdict} |`,
        );
      }
      if (process.env.BENCH_RSS_SMAPS) {
        // where the resident memory is: anonymous (V8 heap, malloc) vs file-backed (node, addons)
        const text = readFileSync(`/proc/${wp.daemons[0]!.child.pid!}/smaps`, 'utf8');
        const by = new Map<string, number>();
        let name = '';
        for (const line of text.split('\n')) {
          const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
          if (m) name = m[1] || '[anon]';
          const r = /^Rss:\s+(\d+) kB/.exec(line);
          if (r) by.set(name, (by.get(name) ?? 0) + Number(r[1]));
        }
        for (const [n, kb] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 12))
          console.log(`${(kb / 1024).toFixed(1).padStart(6)} MiB  ${n}`);
      }
      if (process.env.BENCH_RSS_HEAP) {
        const m = await run('ip', [
          'netns',
          'exec',
          topo.hosts[0]!.netns,
          'curl',
          '-s',
          'http://127.0.0.1:8081/metrics',
        ]);
        for (const l of m.stdout.split('\n'))
          if (/^weftd_nodejs_(heap_space_size_used|heap_size|external)/.test(l)) console.log(l);
      }
      if (process.env.BENCH_RSS_SNAPSHOT) {
        // with WEFTD_NODE_FLAGS='--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<dir>'
        process.kill(wp.daemons[0]!.child.pid!, 'SIGUSR2');
        await new Promise((r) => setTimeout(r, 5000));
      }
      console.log(
        `routes programmed: ${rss.programmed}; weftd: ${packaged.label}; WEFTD_NODE_FLAGS=${process.env.WEFTD_NODE_FLAGS ?? '(none)'}`,
      );
    } finally {
      await wp.teardown();
    }
  } finally {
    await etcd.stop();
  }
} finally {
  await topo.destroy();
}
