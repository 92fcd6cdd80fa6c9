/**
 * weftd RSS at 1 and at ~1000 peers, beside issue 4's goal (≤ 80 MB at 1000 peers).
 *
 * A real weftd (the built bin/weftd.js, VXLAN) on h1 of a 2-host netns topology with a real etcd; the
 * fake peers are the control bench's (bench/lib/control.ts: public IPs in 198.19.0.0/16, never reached).
 * `BENCH_RSS_PEERS` sets the fake-peer count (default 1000). Extra node flags for weftd can be tried
 * through `NODE_OPTIONS` (spawned daemons inherit the environment), e.g. `NODE_OPTIONS=--lite-mode`.
 * Needs root (network namespaces). Usage: `npm run bench:rss`.
 */
import { run } from '../test/helpers/exec.js';
import { latencyAndRss } from './lib/control.js';
import { weft } from './lib/paths.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { createTopology } from '../test/helpers/netns.js';

const GOAL_MB = 80;
const peers = Number(process.env.BENCH_RSS_PEERS ?? 1000);
const mb = (mib: number): string => `${((mib * 1024 * 1024) / 1e6).toFixed(1)} MB`;

const topo = await createTopology({ hosts: 2, ipv6: false });
try {
  const etcd = await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
  try {
    const wp = await weft(topo, etcd, 'vxlan');
    try {
      const [, rss] = await latencyAndRss(wp, 0, peers);
      const verdict = (rss.rssMiB * 1024 * 1024) / 1e6 <= GOAL_MB ? 'meets' : 'misses';
      console.log(`| weftd (vxlan)       | peers | VmRSS     | VmHWM     | goal     |`);
      console.log(`|---------------------|-------|-----------|-----------|----------|`);
      console.log(
        `| 1 real peer         | 1     | ${mb(rss.baselineMiB)} | -         | ≤ ${GOAL_MB} MB |`,
      );
      console.log(
        `| + fake peers        | ${rss.peers}  | ${mb(rss.rssMiB)} | ${mb(rss.hwmMiB)} | ${verdict} |`,
      );
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
        `routes programmed: ${rss.programmed}; WEFTD_NODE_FLAGS=${process.env.WEFTD_NODE_FLAGS ?? '(none)'}`,
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
