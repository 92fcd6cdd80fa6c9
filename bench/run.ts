/**
 * `npm run bench` (root; after `npm run build`): every weft number beside its anchor, measured in one run
 * on one topology (docs/performance.md: read as ratios). Builds two simulated hosts and an etcd once, then
 * sets up, measures and tears down each dataplane path in turn (underlay, routed by hand, kernel VXLAN by
 * hand, weft host-gw, weft VXLAN, weft UDP); while weft VXLAN runs it also measures etcd→kernel latency,
 * CNI ADD/DEL against the reference bridge, and weftd's RSS at 1000 peers; then runs the per-area
 * benches bench/lease.ts and bench/netlink.ts. Writes bench/results/<time>.{md,json,svg} (and latest.*),
 * and prints the Markdown. `-- --publish` also writes bench/latest.md and bench/latest.svg for the README;
 * `-- --render <results/x.json>` redraws the Markdown and SVG of a saved run without measuring.
 *
 * Env: BENCH_SECONDS (iperf3 seconds per figure, default 2), BENCH_ROUNDS (default 3: every path is
 * measured once per round and each figure is the median over rounds), BENCH_ONLY (comma list of row ids, e.g.
 * `underlay,vxlan-hand`; control rows are `control`, `lease`, `netlink`, `forwarder`), BENCH_RESULTS_DIR
 * (default bench/results).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEtcd } from '../test/helpers/etcd.js';
import { createTopology } from '../test/helpers/netns.js';
import {
  cniLatency,
  forwarderBench,
  latencyAndRss,
  leaseBench,
  netlinkBench,
} from './lib/control.js';
import { measurePath, SECONDS, type PathResult } from './lib/measure.js';
import {
  NotAvailable,
  routedByHand,
  underlay,
  vxlanByHand,
  weft,
  type PathSetup,
  type WeftPath,
} from './lib/paths.js';
import {
  buildRatios,
  machineFacts,
  toMarkdown,
  toSvg,
  type BenchReport,
  type Control,
  type DataplaneRow,
} from './lib/report.js';
import { REPO } from './lib/cni.js';
import { DEPLOYED_FLAGS, packagedOptions } from './lib/packaged.js';

const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter(Boolean);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Each figure's median over the rounds (figure by figure, not the median round). */
function medianResult(rs: readonly PathResult[]): PathResult {
  const keys = Object.keys(rs[0]!) as (keyof PathResult)[];
  return Object.fromEntries(
    keys.map((k) => [k, median(rs.map((r) => r[k]))]),
  ) as unknown as PathResult;
}
const wanted = (id: string): boolean => only.length === 0 || only.includes(id);
const log = (msg: string): void => console.error(`[bench] ${msg}`);
const reason = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 160);

interface PathSpec {
  id: string;
  label: string;
  anchor: string | null;
  setup: () => Promise<PathSetup>;
  /** extra measurements while this path is up (weft VXLAN: control plane) */
  during?: (p: PathSetup) => Promise<void>;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run bench needs root (network namespaces)');
  if (!existsSync(join(REPO, 'dist', 'daemon', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` first');
  const machine = machineFacts();
  const started = new Date();
  log(
    `machine: ${machine.cpu}, ${machine.cores} vCPU, kernel ${machine.kernel}, load ${machine.loadavg1m}`,
  );

  const control: Control = {
    lease: { na: 'not run' },
    netlink: { na: 'not run' },
    etcdToKernel: { na: 'weft VXLAN path not available' },
    rss: { na: 'weft VXLAN path not available' },
    cni: { na: 'weft VXLAN path not available' },
    forwarder: { na: 'not run' },
  };
  const rows: DataplaneRow[] = [];
  const topo = await createTopology({ hosts: 2, ipv6: false });
  try {
    const etcd = await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
    try {
      const paths: PathSpec[] = [
        {
          id: 'underlay',
          label: 'underlay (veth + bridge, host to host)',
          anchor: null,
          setup: () => underlay(topo),
        },
        {
          id: 'routed-hand',
          label: 'routed by hand (host-gw style)',
          anchor: 'underlay',
          setup: () => routedByHand(topo),
        },
        {
          id: 'vxlan-hand',
          label: 'kernel VXLAN by hand (iproute2)',
          anchor: 'underlay',
          setup: () => vxlanByHand(topo),
        },
        {
          id: 'weft-host-gw',
          label: 'weft host-gw',
          anchor: 'routed-hand',
          setup: () => weft(topo, etcd, 'host-gw'),
        },
        {
          id: 'weft-vxlan',
          label: 'weft VXLAN',
          anchor: 'vxlan-hand',
          setup: () => weft(topo, etcd, 'vxlan'),
          during: async (p) => {
            if (!wanted('control') && only.length > 0) return;
            const wp = p as WeftPath;
            log('etcd → kernel latency');
            try {
              control.etcdToKernel = (await latencyAndRss(wp, 100, 0))[0]; // RSS: as shipped, below
            } catch (err) {
              control.etcdToKernel = { na: reason(err) };
            }
            log('CNI ADD/DEL latency');
            try {
              control.cni = await cniLatency(wp);
            } catch (err) {
              control.cni = { na: reason(err) };
            }
          },
        },
        {
          id: 'weft-udp',
          label: 'weft UDP',
          anchor: 'vxlan-hand',
          setup: () => weft(topo, etcd, 'udp'),
        },
      ];
      const samples = new Map<string, PathResult[]>();
      const skip = new Set<string>();
      const failures = new Map<string, string>();
      for (const spec of paths) {
        const row: DataplaneRow = { id: spec.id, label: spec.label, anchor: spec.anchor };
        rows.push(row);
        if (!wanted(spec.id) && !(spec.during && wanted('control'))) {
          row.na = 'not selected (BENCH_ONLY)';
          skip.add(spec.id);
        }
        samples.set(spec.id, []);
      }
      // Rounds: every path once per round, so a burst of other work on the machine hits one sample
      // of each path rather than all samples of one; each figure is the median over the rounds.
      for (let round = 1; round <= ROUNDS; round++) {
        for (const spec of paths) {
          const row = rows.find((r) => r.id === spec.id)!;
          if (skip.has(spec.id)) continue;
          log(`round ${round}/${ROUNDS}: ${spec.label}`);
          let p: PathSetup | undefined;
          try {
            p = await spec.setup();
            // weft rows are also loaded at their anchor's 64-byte rate of this round (anchors come first)
            const anchorNow = spec.anchor ? samples.get(spec.anchor)?.[round - 1] : undefined;
            const atRate = spec.id.startsWith('weft') ? anchorNow?.offeredPps : undefined;
            if (wanted(spec.id))
              samples.get(spec.id)!.push(await measurePath(p.endpoints, p.pids, atRate));
            else skip.add(spec.id);
            if (round === 1) await spec.during?.(p);
          } catch (err) {
            if (err instanceof NotAvailable) {
              row.na = err.message; // a part of weft is missing: no later round can do better
              skip.add(spec.id);
            } else failures.set(spec.id, `failed: ${reason(err)}`); // this round only
            log(`${spec.id}: ${err instanceof NotAvailable ? row.na : reason(err)}`);
          } finally {
            await p?.teardown();
          }
        }
      }
      if (wanted('control')) {
        // RSS as it ships (the packaged executable, weftd.service's environment, default timers); the
        // weft VXLAN path above ran the checkout with the e2e harness's fast timers
        log('weftd RSS at 1000 peers as it ships (packaged executable, default timers)');
        const shipped = packagedOptions();
        try {
          const wp = await weft(topo, etcd, 'vxlan', DEPLOYED_FLAGS, shipped.opts);
          try {
            control.rss = (await latencyAndRss(wp, 0, 1000))[1];
            control.rss.weftd = shipped.label;
          } finally {
            await wp.teardown();
          }
        } catch (err) {
          control.rss = { na: reason(err) };
        } finally {
          shipped.cleanup();
        }
      }
      for (const row of rows) {
        const got = samples.get(row.id) ?? [];
        if (got.length > 0 && !row.na) row.result = medianResult(got);
        else if (!row.na && !row.result)
          row.na = failures.get(row.id) ?? 'not selected (BENCH_ONLY)';
      }
    } finally {
      await etcd.stop();
    }
  } finally {
    await topo.destroy();
  }
  if (wanted('lease')) {
    log('bench/lease.ts (200 hosts)');
    control.lease = await leaseBench(200);
  }
  if (wanted('forwarder')) {
    log('bench/udp.ts (native forwarder with and without offloads)');
    control.forwarder = await forwarderBench(SECONDS);
  }
  if (wanted('netlink')) {
    log('bench/netlink.ts (1000, 2000, 5000, 10000 peers against the kernel floor)');
    control.netlink = await netlinkBench();
  }

  const report: BenchReport = {
    date: started.toISOString(),
    seconds: SECONDS,
    rounds: ROUNDS,
    machine,
    dataplane: rows,
    control,
    ratios: buildRatios(rows, control),
  };
  const dir = process.env['BENCH_RESULTS_DIR'] || join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const md = toMarkdown(report);
  const svg = toSvg(report);
  const files: [string, string][] = [
    [`${stamp}.md`, md],
    [`${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`],
    [`${stamp}.svg`, svg],
  ];
  for (const [name, text] of files) {
    writeFileSync(join(dir, name), text);
    copyFileSync(join(dir, name), join(dir, `latest${name.slice(stamp.length)}`));
  }
  if (process.argv.includes('--publish')) {
    writeFileSync(join(REPO, 'bench', 'latest.md'), md);
    writeFileSync(join(REPO, 'bench', 'latest.svg'), svg);
  }
  console.log(md);
  log(
    `written: ${dir}/${stamp}.{md,json,svg} (and latest.*) in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`,
  );
}

/** `--render <report.json>`: writes the Markdown and SVG again from a saved report (no measuring). */
function render(file: string): void {
  const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
  report.ratios = buildRatios(report.dataplane, report.control);
  const md = toMarkdown(report);
  const base = file.replace(/\.json$/, '');
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, toSvg(report));
  if (process.argv.includes('--publish')) {
    writeFileSync(join(REPO, 'bench', 'latest.md'), md);
    writeFileSync(join(REPO, 'bench', 'latest.svg'), toSvg(report));
  }
  console.log(md);
}

const renderAt = process.argv.indexOf('--render');
if (renderAt > 0) render(process.argv[renderAt + 1] ?? 'bench/results/latest.json');
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
