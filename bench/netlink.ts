/**
 * `npm run bench:netlink` (root, after `npm run build`: weft's code runs as it ships, from dist/ with
 * weftd.service's node flags): weft's peer programming against the kernel's own floor, at several sizes
 * (default 1000, 2000, 5000 and 10000 peers; the floor grows faster than linearly, so one size says
 * little). Everything happens inside a private netns that is removed after.
 *
 * Per size, per run (median of RUNS):
 * - floor: bench/native/rtnl-floor.c, compiled here with the machine's `cc -O2`, sends exactly the
 *   entries weft programs (per peer a permanent neighbour, an NTF_SELF FDB entry and an onlink route,
 *   NLM_F_CREATE|NLM_F_REPLACE, in three phases; weft streams each peer's three in order) as batched
 *   rtnetlink, 64 messages per sendmsg, ACKs read in bulk with recvmmsg; once with an ACK per message and
 *   once with one ACK per datagram, the faster of the two is the floor;
 * - `ip -batch` + `bridge -batch`: the same entries through iproute2 (incl. its process start);
 * - weft full reconcile: the vxlan backend's start-up path (ensure the device, dump the kernel, compute
 *   N peers' entries, program the 3N entries), as timed by its own reconcile report;
 * - weft planning per lease: the part of that reconcile spent planning (planner, claims, encoding,
 *   while the kernel works on what was already handed over), per lease, for the size's first run and
 *   the median (the first run at the first size is the process's first reconcile, as in a weftd start);
 * - weft's reconcile by phase (medians, its own report): devices checked, kernel read (dumps),
 *   planning (the kernel works meanwhile), after planning (bookkeeping, then waiting for the kernel);
 * - weft incremental add / remove: with N peers programmed and the backend running, one lease added
 *   (then removed) through the lease watch; the time until its last kernel entry is acknowledged, and
 *   the netlink requests and dumps that one event cost (O(1) work means 3 requests, no dump);
 * - floor for one peer: rtnl-floor adding (then removing) that one peer's 3 entries.
 *
 * Writes `bench/results/netlink-<time>.{md,json,svg}` (BENCH_RESULTS_DIR) and, with `--publish` or
 * BENCH_PUBLISH=1, bench/netlink.md and bench/netlink.svg for the README. Env: BENCH_SIZES (comma list),
 * BENCH_PEERS (one size, the old knob), BENCH_RUNS (default 3), BENCH_INCREMENTAL (events per run, 5),
 * BENCH_NODE_FLAGS (for the measuring process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_REMOVAL_GRACE_MS } from '../src/backend/peer-loop.js';
import type { Lease } from '../src/lease/lease.js';
import { createNetlinkOps, type Mutation, type NetlinkOps } from '../src/netlink/index.js';
import {
  MemorySubnets,
  testNetworkConfig,
  testUplink,
} from '../test/integration/backend-memory-subnets.js';
import type { NetlinkSize } from './lib/area-output.js';
import { lineChart } from './lib/svg.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SIZES = (process.env['BENCH_SIZES'] ?? process.env['BENCH_PEERS'] ?? '1000,2000,5000,10000')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const EVENTS = Number(process.env['BENCH_INCREMENTAL'] ?? 5);
const GOAL_X = 1.15;
const FLOOR_BATCH = 64;
/** Set in the child that runs inside the bench netns (see `main`). */
const INSIDE = process.env['BENCH_NETLINK_NETNS'];
const ns = INSIDE ?? `weft-bench-${process.pid}`;

const sh = (cmd: string, args: string[], input?: string): string =>
  execFileSync(cmd, args, {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...(input !== undefined ? { input } : {}),
  }).toString();
const subnetOf = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}.0`;
const macOf = (i: number): string =>
  `0e:42:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const publicOf = (i: number): string => `198.18.${1 + (i >> 8)}.${i & 255}`;
const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface FloorResult {
  ms: number;
  cpuMs: number;
  errors: number;
}

/** Counts what the backend asks of the kernel and reports when a given mutation is acknowledged. */
class CountingOps {
  mutations = 0;
  dumps = 0;
  other = 0;
  private waiters: { match: (m: Mutation) => boolean; resolve: (t: number) => void }[] = [];
  readonly ops: NetlinkOps;

  constructor(inner: NetlinkOps) {
    const dumpNames = new Set(['routeList', 'neighList', 'fdbList', 'listLinks', 'listAddrs']);
    this.ops = new Proxy(inner, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        const name = String(prop);
        if (name === 'applyBatch')
          return async (ms: readonly Mutation[]) => {
            this.mutations += ms.length;
            const r = await inner.applyBatch(ms);
            const t = performance.now();
            this.waiters = this.waiters.filter((w) => {
              if (!ms.some(w.match)) return true;
              w.resolve(t);
              return false;
            });
            return r;
          };
        if (/^(route|neigh|fdb)(Replace|Delete)$/.test(name))
          return async (arg: never) => {
            this.mutations++;
            const m = {
              op: name,
              [name.slice(0, name.search(/[A-Z]/))]: arg,
            } as unknown as Mutation;
            await (v as (a: never) => Promise<void>).call(target, arg);
            const t = performance.now();
            this.waiters = this.waiters.filter((w) => {
              if (!w.match(m)) return true;
              w.resolve(t);
              return false;
            });
          };
        if (dumpNames.has(name)) this.dumps++;
        else if (name !== 'stats' && name !== 'subscribeLinks' && name !== 'close') this.other++;
        return v;
      },
    });
  }

  /** Resolves with the time at which a mutation matching `match` was acknowledged. */
  waitFor(match: (m: Mutation) => boolean): Promise<number> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  snapshot(): { mutations: number; dumps: number; other: number } {
    return { mutations: this.mutations, dumps: this.dumps, other: this.other };
  }
}

/** One size's medians: the shape bench/lib/area-output.ts reads back, plus the floor's detail. */
interface SizeResult extends NetlinkSize {
  floorCpuMs: number;
  floorAckAllMs: number;
  floorAckLastMs: number;
  floorPhases: { neighMs: number; fdbMs: number; routeMs: number };
  floorOneAddUs: number;
  floorOneRemoveUs: number;
  /** weft's planning (planner, claims, encoding; the kernel works meanwhile) per lease, µs: the size's
   *  first run (at 1000, the process's first reconcile: code not yet optimized) and the median. */
  planFirstUs?: number;
  planUs?: number;
  /** Medians of the reconcile's phases, ms (its report): devices checked, kernel read (dumps),
   *  planning, and after planning (bookkeeping, then waiting for the kernel to finish). */
  phases?: { readyMs: number; readMs: number; planMs: number; tailMs: number };
}

/** The node flags weftd runs with as packaged (`packaging/weftd.service`'s NODE_OPTIONS, e.g. a small
 *  young generation), so the reconcile is timed under the same heap settings. */
const SHIPPED_NODE_OPTIONS: readonly string[] = (
  /^Environment=NODE_OPTIONS=(.*)$/m.exec(
    readFileSync(join(HERE, '..', 'packaging', 'weftd.service'), 'utf8'),
  )?.[1] ?? ''
)
  .split(' ')
  .filter(Boolean);

/**
 * Creates the private netns and runs the measurements in a child started inside it (`ip netns exec`),
 * so weft's sockets are created the way weftd creates them (in its own netns, no setns(2) per socket).
 */
async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench:netlink needs root (it creates a network namespace)');
  if (INSIDE !== undefined) return measure();
  sh('ip', ['netns', 'add', ns]);
  try {
    execFileSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        ...SHIPPED_NODE_OPTIONS,
        ...(process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter(Boolean),
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        ...process.argv.slice(2),
      ],
      { stdio: 'inherit', env: { ...process.env, BENCH_NETLINK_NETNS: ns } },
    );
  } finally {
    try {
      sh('ip', ['netns', 'delete', ns]);
    } catch {
      /* already gone */
    }
  }
}

/**
 * weft's backend as it ships: tsc's output in dist/ (`npm run build` first), not the sources through
 * tsx, whose keep-names wrapper costs a call per closure created on the hot path. The harness's own
 * helpers (netlink reads, the in-memory lease source) may run from the sources.
 */
async function shipped(): Promise<{
  vxlanBackendFactory: typeof import('../src/backend-vxlan/index.js').vxlanBackendFactory;
  createNetlinkOps: typeof createNetlinkOps;
  nullLogger: typeof import('../src/log/logger.js').nullLogger;
}> {
  const dist = join(HERE, '..', 'dist');
  const load = async <T>(rel: string): Promise<T> => {
    const file = join(dist, rel);
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
    return (await import(pathToFileURL(file).href)) as T;
  };
  const [vxlan, netlink, logger] = await Promise.all([
    load<typeof import('../src/backend-vxlan/index.js')>('backend-vxlan/index.js'),
    load<typeof import('../src/netlink/index.js')>('netlink/index.js'),
    load<typeof import('../src/log/logger.js')>('log/logger.js'),
  ]);
  return {
    vxlanBackendFactory: vxlan.vxlanBackendFactory,
    createNetlinkOps: netlink.createNetlinkOps,
    nullLogger: logger.nullLogger,
  };
}

async function measure(): Promise<void> {
  const { vxlanBackendFactory, nullLogger, createNetlinkOps: shippedOps } = await shipped();
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  const probe = join(dir, 'rtnl-floor');
  try {
    sh('cc', ['-O2', '-o', probe, join(HERE, 'native', 'rtnl-floor.c')]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot build the floor probe with cc (install gcc): ${String(err)}`);
  }
  const machineId = join(dir, 'machine-id');
  writeFileSync(machineId, '0123456789abcdef0123456789abcdef\n');
  const ops = createNetlinkOps();
  const results: SizeResult[] = [];
  const startLoad = loadavg()[0]!;
  const started = new Date();
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'bridge']);
    sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.1/16', 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    const eth0 = (await ops.getLink('eth0'))!;
    const config = {
      ...testNetworkConfig('vxlan'),
      network: '10.0.0.0/8',
      subnetMin: '10.1.0.0',
      subnetMax: '10.255.255.0',
    };
    const uplink = testUplink({ index: eth0.index });
    const maxPeers = Math.max(...SIZES) + EVENTS + 1;
    const subnets = new MemorySubnets(config);
    const leaseOf = (i: number): Lease => {
      const s = subnetOf(i);
      return {
        ...subnets.leaseFor(0, {
          publicIp: publicOf(i),
          publicIpv6: null,
          backendType: 'vxlan',
          backendData: { VNI: 1, VtepMAC: macOf(i) },
        }),
        key: `${s}-24`,
        subnet: `${s}/24`,
      };
    };
    const backendOps = shippedOps();
    // The device (and our own lease) first, as weftd does at start.
    const setupAc = new AbortController();
    await vxlanBackendFactory({
      netlink: backendOps,
      resyncMs: 3_600_000,
      machineIdPath: machineId,
    })({
      subnets: subnets.manager(),
      uplink,
      log: nullLogger,
      stateDir: dir,
    }).registerNetwork(config, {}, setupAc.signal);
    const dev = (await ops.getLink('weft.1'))!.index;

    const floor = (op: 'add' | 'del', peers: number, first: number, acks: 'all' | 'last') => {
      const out = sh(probe, [
        op,
        String(dev),
        String(peers),
        String(first),
        String(FLOOR_BATCH),
        String(FLOOR_BATCH * 4),
        acks,
      ]);
      return JSON.parse(out) as FloorResult & { neighMs: number; fdbMs: number; routeMs: number };
    };
    const flush = (): void => void floor('del', maxPeers, 0, 'last');
    const userRoutes = async (): Promise<number> =>
      (await ops.routeList(4, { oif: dev })).filter((r) => r.protocol !== 'KERNEL').length;

    for (const peers of SIZES) {
      const t = {
        ackAll: [] as number[],
        ackLast: [] as number[],
        floor: [] as number[],
        floorCpu: [] as number[],
        neigh: [] as number[],
        fdb: [] as number[],
        route: [] as number[],
        iproute: [] as number[],
        weft: [] as number[],
        cpu: [] as number[],
        add: [] as number[],
        addReq: [] as number[],
        addDumps: [] as number[],
        remove: [] as number[],
        removeReq: [] as number[],
        removeDumps: [] as number[],
        oneAdd: [] as number[],
        oneRemove: [] as number[],
        plan: [] as number[],
        ready: [] as number[],
        read: [] as number[],
        planMs: [] as number[],
        tail: [] as number[],
      };
      const lines = (f: (i: number) => string): string =>
        Array.from({ length: peers }, (_, i) => f(i)).join('\n') + '\n';
      const neighBatch = lines(
        (i) => `neigh replace ${subnetOf(i)} lladdr ${macOf(i)} dev weft.1 nud permanent`,
      );
      const fdbBatch = lines(
        (i) => `fdb replace ${macOf(i)} dev weft.1 dst ${publicOf(i)} self permanent`,
      );
      const routeBatch = lines(
        (i) => `route replace ${subnetOf(i)}/24 via ${subnetOf(i)} dev weft.1 onlink`,
      );
      subnets.leases.clear();
      for (let i = 0; i < peers; i++) {
        const l = leaseOf(i);
        subnets.leases.set(l.key, l);
      }
      for (let run = 0; run < RUNS; run++) {
        console.error(`[netlink] ${peers} peers, run ${run + 1}/${RUNS}`);
        flush();
        const a = floor('add', peers, 0, 'all');
        if (a.errors !== 0) throw new Error(`floor probe: ${a.errors} kernel errors`);
        if ((await userRoutes()) !== peers) throw new Error('floor probe did not program N routes');
        flush();
        const l = floor('add', peers, 0, 'last');
        if (l.errors !== 0) throw new Error(`floor probe: ${l.errors} kernel errors`);
        t.ackAll.push(a.ms);
        t.ackLast.push(l.ms);
        const best = a.ms <= l.ms ? a : l;
        t.floor.push(best.ms);
        t.floorCpu.push(best.cpuMs);
        t.neigh.push(best.neighMs);
        t.fdb.push(best.fdbMs);
        t.route.push(best.routeMs);
        t.oneAdd.push(floor('add', 1, peers, 'all').ms * 1000);
        t.oneRemove.push(floor('del', 1, peers, 'all').ms * 1000);
        flush();

        let t0 = performance.now();
        sh('ip', ['-n', ns, '-batch', '-'], neighBatch);
        sh('bridge', ['-n', ns, '-batch', '-'], fdbBatch);
        sh('ip', ['-n', ns, '-batch', '-'], routeBatch);
        t.iproute.push(performance.now() - t0);
        flush();

        // weft: the backend's start-up path (snapshot of N leases → one full reconcile) ...
        const runAc = new AbortController();
        let reportMs = -1;
        let planMs = -1;
        let phases = { readyMs: NaN, readMs: NaN, tailMs: NaN };
        const counting = new CountingOps(backendOps);
        const backend = vxlanBackendFactory({
          netlink: counting.ops,
          resyncMs: 3_600_000,
          machineIdPath: machineId,
          observer: {
            reconciled: (r) => {
              if (r.programmed > 0) {
                reportMs = r.ms;
                planMs = r.planMs;
                phases = { readyMs: r.readyMs, readMs: r.readMs, tailMs: r.tailMs };
              }
            },
          },
        })({ subnets: subnets.manager(), uplink, log: nullLogger, stateDir: dir });
        const net = await backend.registerNetwork(config, {}, runAc.signal);
        const c0 = process.cpuUsage();
        const done = net.run(runAc.signal);
        while (reportMs < 0) await sleep(2);
        const c = process.cpuUsage(c0);
        t.cpu.push((c.user + c.system) / 1000);
        t.weft.push(reportMs);
        t.plan.push((planMs * 1000) / peers);
        t.ready.push(phases.readyMs);
        t.read.push(phases.readMs);
        t.planMs.push(planMs);
        t.tail.push(phases.tailMs);
        if ((await userRoutes()) !== peers)
          throw new Error(`weft programmed ${await userRoutes()} routes, expected ${peers}`);

        // ... then single-peer changes through the lease watch on top of N.
        for (let e = 0; e < EVENTS; e++) {
          const lease = leaseOf(peers + e);
          const gw = subnetOf(peers + e);
          await sleep(20);
          let before = counting.snapshot();
          let acked = counting.waitFor((m) => m.op === 'routeReplace' && m.route.gateway === gw);
          t0 = performance.now();
          subnets.put(lease);
          t.add.push((await acked) - t0);
          await sleep(20); // anything the event still does afterwards counts too
          let after = counting.snapshot();
          t.addReq.push(after.mutations - before.mutations + after.other - before.other);
          t.addDumps.push(after.dumps - before.dumps);

          before = after;
          acked = counting.waitFor((m) => m.op === 'neighDelete' && m.neigh.dst === gw);
          t0 = performance.now();
          subnets.remove(lease.key);
          // A removed lease keeps its entries for the removal grace (a delete + re-create of the same
          // lease must not cut its peer off): what is timed is the work after it.
          t.remove.push((await acked) - t0 - DEFAULT_REMOVAL_GRACE_MS);
          await sleep(20);
          after = counting.snapshot();
          t.removeReq.push(after.mutations - before.mutations + after.other - before.other);
          t.removeDumps.push(after.dumps - before.dumps);
        }
        runAc.abort();
        await done;
        flush();
      }
      results.push({
        peers,
        floorMs: median(t.floor),
        floorCpuMs: median(t.floorCpu),
        floorAckAllMs: median(t.ackAll),
        floorAckLastMs: median(t.ackLast),
        floorPhases: { neighMs: median(t.neigh), fdbMs: median(t.fdb), routeMs: median(t.route) },
        iprouteMs: median(t.iproute),
        weftMs: median(t.weft),
        weftCpuMs: median(t.cpu),
        addMs: median(t.add),
        addRequests: median(t.addReq),
        addDumps: median(t.addDumps),
        removeMs: median(t.remove),
        removeRequests: median(t.removeReq),
        removeDumps: median(t.removeDumps),
        floorOneAddUs: median(t.oneAdd),
        floorOneRemoveUs: median(t.oneRemove),
        planFirstUs: t.plan[0] ?? NaN,
        planUs: median(t.plan),
        phases: {
          readyMs: median(t.ready),
          readMs: median(t.read),
          planMs: median(t.planMs),
          tailMs: median(t.tail),
        },
      });
    }
    setupAc.abort();
    backendOps.close();
  } finally {
    ops.close();
    rmSync(dir, { recursive: true, force: true });
  }
  report(results, started, startLoad);
}

interface Saved {
  date: string;
  kernel: string;
  runs: number;
  load: [number, number];
  results: SizeResult[];
}

function report(results: readonly SizeResult[], started: Date, startLoad: number): void {
  const saved: Saved = {
    date: started.toISOString(),
    kernel: execFileSync('uname', ['-r']).toString().trim(),
    runs: RUNS,
    load: [startLoad, loadavg()[0]!],
    results: [...results],
  };
  const { text, svg } = render(saved);
  const outDir = process.env['BENCH_RESULTS_DIR'] || join(HERE, 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = saved.date.replace(/[:.]/g, '-');
  writeFileSync(join(outDir, `netlink-${stamp}.md`), text);
  writeFileSync(join(outDir, `netlink-${stamp}.svg`), svg);
  writeFileSync(join(outDir, `netlink-${stamp}.json`), JSON.stringify(saved, null, 2) + '\n');
  publish(text, svg);
  console.log('\n' + text);
  console.error(`[netlink] written: ${outDir}/netlink-${stamp}.{md,json,svg}`);
}

function publish(text: string, svg: string): void {
  if (process.argv.includes('--publish') || process.env['BENCH_PUBLISH'] === '1') {
    writeFileSync(join(HERE, 'netlink.md'), text);
    writeFileSync(join(HERE, 'netlink.svg'), svg);
  }
}

function render(saved: Saved): { text: string; svg: string } {
  const { results, kernel } = saved;
  const RUNS = saved.runs;
  const f = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const md: string[] = [
    `### netlink: peer programming against the kernel's floor (median of ${RUNS}; kernel ${kernel}; load average ${saved.load[0].toFixed(1)} at start, ${saved.load[1].toFixed(1)} at end)`,
    '',
    '| peers | kernel entries | floor: C batched rtnetlink ms | `ip -batch` + `bridge -batch` ms | weft full reconcile ms | weft ÷ floor | floor CPU ms | weft CPU ms | CPU: weft ÷ floor | goal ≤ 1.15 × floor |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const x = r.weftMs / r.floorMs;
    md.push(
      `| ${r.peers} | ${3 * r.peers} | ${f(r.floorMs, 1)} | ${f(r.iprouteMs, 1)} | ${f(r.weftMs, 1)} | ${f(x, 2)} | ${f(r.floorCpuMs)} | ${f(r.weftCpuMs)} | ${f(r.weftCpuMs / r.floorCpuMs, 2)} | ${x <= GOAL_X ? 'met' : 'NOT met'} |`,
    );
  }
  md.push(
    '',
    `Floor: the faster of an ACK per message and one ACK per ${FLOOR_BATCH}-message datagram (median ms: ${results
      .map((r) => `${r.peers}: ${f(r.floorAckAllMs, 1)} / ${f(r.floorAckLastMs, 1)}`)
      .join('; ')}); its phases neighbour / FDB / route: ${results
      .map(
        (r) =>
          `${r.peers}: ${f(r.floorPhases.neighMs, 1)} / ${f(r.floorPhases.fdbMs, 1)} / ${f(r.floorPhases.routeMs, 1)} ms`,
      )
      .join('; ')}.`,
    '',
    `weft's planning per lease (planner, claims, encoding; the kernel works meanwhile), first run at the size / median: ${results
      .map((r) => `${r.peers}: ${f(r.planFirstUs ?? NaN, 1)} / ${f(r.planUs ?? NaN, 1)} µs`)
      .join(
        '; ',
      )} (the first run at ${results[0]?.peers ?? '–'} is the process's first reconcile).`,
    '',
    `weft's full reconcile by phase, median ms: devices checked / kernel read (dumps) / planning (the kernel works meanwhile) / after planning (bookkeeping, then waiting for the kernel): ${results
      .map((r) =>
        r.phases
          ? `${r.peers}: ${f(r.phases.readyMs, 1)} / ${f(r.phases.readMs, 1)} / ${f(r.phases.planMs, 1)} / ${f(r.phases.tailMs, 1)}`
          : `${r.peers}: –`,
      )
      .join('; ')}.`,
    '',
    `| peers | incremental add of 1 peer: ms | its netlink requests | its dumps | incremental remove of 1 peer: ms after the ${DEFAULT_REMOVAL_GRACE_MS} ms removal grace | its netlink requests | its dumps | floor for 1 peer add / remove (C, 3 messages) |`,
    '|---|---|---|---|---|---|---|---|',
  );
  for (const r of results) {
    md.push(
      `| ${r.peers} | ${f(r.addMs, 2)} | ${f(r.addRequests)} | ${f(r.addDumps)} | ${f(r.removeMs, 2)} | ${f(r.removeRequests)} | ${f(r.removeDumps)} | ${f(r.floorOneAddUs)} µs / ${f(r.floorOneRemoveUs)} µs |`,
    );
  }
  const text = md.join('\n') + '\n';
  const svg = lineChart({
    title: "weft's full reconcile against the kernel's floor",
    subtitle: `vxlan peers (neighbour + FDB + route each), kernel ${kernel}, median of ${RUNS}, load ${saved.load[0].toFixed(1)}; log scale; ratio weft ÷ floor on top`,
    xLabel: 'peers',
    yLabel: 'ms',
    x: results.map((r) => r.peers),
    series: [
      { name: 'kernel floor (C, batched rtnetlink)', values: results.map((r) => r.floorMs) },
      { name: 'ip -batch + bridge -batch', values: results.map((r) => r.iprouteMs) },
      { name: 'weft full reconcile', values: results.map((r) => r.weftMs) },
      {
        name: `goal: ${GOAL_X} × floor`,
        values: results.map((r) => r.floorMs * GOAL_X),
        dashed: true,
      },
    ],
    notes: results.map((r) => `${f(r.weftMs / r.floorMs, 2)}×`),
  });
  return { text, svg };
}

/** `--render <netlink-….json>`: the Markdown and SVG of a saved run again (no measuring). */
const renderAt = process.argv.indexOf('--render');
const entry =
  renderAt > 0
    ? async (): Promise<void> => {
        const file = process.argv[renderAt + 1]!;
        const { text, svg } = render(JSON.parse(readFileSync(file, 'utf8')) as Saved);
        writeFileSync(file.replace(/\.json$/, '.md'), text);
        writeFileSync(file.replace(/\.json$/, '.svg'), svg);
        publish(text, svg);
        console.log(text);
      }
    : main;

entry().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
