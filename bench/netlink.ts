/**
 * `npm run bench:netlink` (root): how long weft's netlink work takes to program 5000 peers into one
 * host's kernel, against the anchor `ip -batch` for the same 5000 routes, measured in the same run
 * (performance.md: read as ratios). Everything happens inside a private netns that is removed after.
 *
 * Rows (median of RUNS):
 * - ip -batch: 5000 `route replace S via S.0 dev weft.1 onlink`, incl. process start (the anchor);
 * - ip -batch + bridge -batch: the full vxlan peer set by iproute2 (5000 neigh + routes, 5000 fdb);
 * - façade routeReplace ×5000: the same routes through NetlinkOps (≤ 64 in flight);
 * - vxlan backend, 5000 peers: a full reconcile from 5000 leases (dumps + 15000 neigh/FDB/route
 *   requests) — the netlink work weftd does at start, goal ≤ 0.3 s.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vxlanBackendFactory, type VxlanNetwork } from '../src/backend-vxlan/index.js';
import { nullLogger } from '../src/log/logger.js';
import { createNetlinkOps, type NetlinkOps } from '../src/netlink/index.js';
import { MemorySubnets, testNetworkConfig } from '../test/integration/backend-memory-subnets.js';

const PEERS = Number(process.env['BENCH_PEERS'] ?? 5000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const GOAL_MS = 300;
const ns = `weft-bench-${process.pid}`;

const sh = (cmd: string, args: string[], input?: string): void => {
  execFileSync(cmd, args, {
    stdio: ['pipe', 'ignore', 'inherit'],
    ...(input !== undefined ? { input } : {}),
  });
};
const subnetOf = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}.0`;
const macOf = (i: number): string =>
  `0e:42:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function flushPeers(ops: NetlinkOps, dev: number): Promise<void> {
  const routes = await ops.routeList(4, { oif: dev });
  await Promise.all(routes.filter((r) => r.protocol !== 'KERNEL').map((r) => ops.routeDelete(r)));
  const neighs = await ops.neighList(4, dev);
  await Promise.all(neighs.filter((n) => n.permanent).map((n) => ops.neighDelete(n)));
  const fdb = await ops.fdbList(dev);
  await Promise.all(
    fdb.filter((f) => f.dst).map((f) => ops.fdbDelete({ ifindex: dev, mac: f.mac, dst: f.dst! })),
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('bench:netlink needs root (it creates a network namespace)');
  sh('ip', ['netns', 'add', ns]);
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  const machineId = join(dir, 'machine-id');
  writeFileSync(machineId, '0123456789abcdef0123456789abcdef\n');
  const ops = createNetlinkOps({ netns: ns });
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
    const subnets = new MemorySubnets(config);
    const backendOps = createNetlinkOps({ netns: ns });
    const backend = vxlanBackendFactory({
      netlink: backendOps,
      resyncMs: 3_600_000,
      machineIdPath: machineId,
    })({
      subnets: subnets.manager(),
      uplink: {
        name: 'eth0',
        index: eth0.index,
        mtu: 1500,
        ifaceAddr: '198.18.0.1',
        ifaceAddr6: null,
        publicIp: '198.18.0.1',
        publicIpv6: null,
      },
      log: nullLogger,
      stateDir: dir,
    });
    const ac = new AbortController();
    const network = (await backend.registerNetwork(config, {}, ac.signal)) as VxlanNetwork;
    const dev = (await ops.getLink('weft.1'))!.index;
    for (let i = 0; i < PEERS; i++) {
      const s = subnetOf(i);
      const lease = {
        ...subnets.leaseFor(0, {
          publicIp: `198.18.${1 + (i >> 8)}.${i & 255}`,
          publicIpv6: null,
          backendType: 'vxlan',
          backendData: { VNI: 1, VtepMAC: macOf(i) },
        }),
        key: `${s}-24`,
        subnet: `${s}/24`,
      };
      subnets.leases.set(lease.key, lease);
    }
    const routeBatch =
      Array.from(
        { length: PEERS },
        (_, i) => `route replace ${subnetOf(i)}/24 via ${subnetOf(i)} dev weft.1 onlink`,
      ).join('\n') + '\n';
    const neighBatch =
      Array.from(
        { length: PEERS },
        (_, i) => `neigh replace ${subnetOf(i)} lladdr ${macOf(i)} dev weft.1 nud permanent`,
      ).join('\n') + '\n';
    const fdbBatch =
      Array.from(
        { length: PEERS },
        (_, i) =>
          `fdb replace ${macOf(i)} dev weft.1 dst 198.18.${1 + (i >> 8)}.${i & 255} self permanent`,
      ).join('\n') + '\n';

    const t = {
      ipRoutes: [] as number[],
      ipFull: [] as number[],
      facade: [] as number[],
      backend: [] as number[],
    };
    const cpu = { facade: [] as number[], backend: [] as number[] };
    const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
    for (let run = 0; run < RUNS; run++) {
      await flushPeers(ops, dev);
      let t0 = performance.now();
      sh('ip', ['-n', ns, '-batch', '-'], routeBatch);
      t.ipRoutes.push(performance.now() - t0);
      await flushPeers(ops, dev);

      t0 = performance.now();
      sh('ip', ['-n', ns, '-batch', '-'], neighBatch);
      sh('bridge', ['-n', ns, '-batch', '-'], fdbBatch);
      sh('ip', ['-n', ns, '-batch', '-'], routeBatch);
      t.ipFull.push(performance.now() - t0);
      await flushPeers(ops, dev);

      t0 = performance.now();
      let c0 = process.cpuUsage();
      await Promise.all(
        Array.from({ length: PEERS }, (_, i) =>
          ops.routeReplace({
            dst: `${subnetOf(i)}/24`,
            gateway: subnetOf(i),
            oif: dev,
            onlink: true,
          }),
        ),
      );
      t.facade.push(performance.now() - t0);
      cpu.facade.push(cpuMs(process.cpuUsage(c0)));
      await flushPeers(ops, dev);

      // The backend's start-up path: snapshot of PEERS leases → one full reconcile.
      const runAc = new AbortController();
      let reportMs = -1;
      const withObserver = vxlanBackendFactory({
        netlink: backendOps,
        resyncMs: 3_600_000,
        machineIdPath: machineId,
        observer: {
          reconciled: (r) => {
            if (r.programmed > 0) reportMs = r.ms;
          },
        },
      })({
        subnets: subnets.manager(),
        uplink: {
          name: 'eth0',
          index: eth0.index,
          mtu: 1500,
          ifaceAddr: '198.18.0.1',
          ifaceAddr6: null,
          publicIp: '198.18.0.1',
          publicIpv6: null,
        },
        log: nullLogger,
        stateDir: dir,
      });
      const net2 = await withObserver.registerNetwork(config, {}, runAc.signal);
      c0 = process.cpuUsage();
      const done = net2.run(runAc.signal);
      while (reportMs < 0) await new Promise((r) => setTimeout(r, 5));
      cpu.backend.push(cpuMs(process.cpuUsage(c0)));
      runAc.abort();
      await done;
      const programmed = (await ops.routeList(4, { oif: dev })).filter(
        (r) => r.protocol !== 'KERNEL',
      ).length;
      if (programmed !== PEERS)
        throw new Error(`backend programmed ${programmed} routes, expected ${PEERS}`);
      t.backend.push(reportMs);
    }
    ac.abort();
    void network;
    backendOps.close();

    const anchor = median(t.ipRoutes);
    const row = (name: string, entries: number, ms: number, cpuMsMedian?: number): string =>
      `| ${name} | ${entries} | ${ms.toFixed(0)} | ${Math.round((entries / ms) * 1000).toLocaleString('en')} | ${(ms / anchor).toFixed(2)} | ${cpuMsMedian === undefined ? '–' : cpuMsMedian.toFixed(0)} |`;
    const backendMs = median(t.backend);
    const load = (await import('node:os')).loadavg()[0]!.toFixed(1);
    console.log(
      `\n### netlink: ${PEERS} peers into one host's kernel (median of ${RUNS}; kernel ${execFileSync('uname', ['-r']).toString().trim()}; load average ${load})\n`,
    );
    console.log(
      '| method | kernel entries | wall ms | entries/s | × ip -batch routes | weft CPU ms |',
    );
    console.log('|---|---|---|---|---|---|');
    console.log(row('`ip -batch` routes (anchor, incl. process start)', PEERS, anchor));
    console.log(
      row('`ip -batch` + `bridge -batch`: neigh + fdb + route', 3 * PEERS, median(t.ipFull)),
    );
    console.log(
      row(
        'weft façade `routeReplace` ×N (≤ 64 in flight)',
        PEERS,
        median(t.facade),
        median(cpu.facade),
      ),
    );
    console.log(
      row(
        'weft vxlan backend: full reconcile of N peers (neigh + fdb + route, incl. dumps)',
        3 * PEERS,
        backendMs,
        median(cpu.backend),
      ),
    );
    console.log(
      `\nGoal: vxlan backend netlink work ≤ ${GOAL_MS} ms → ${backendMs <= GOAL_MS ? 'met' : 'NOT met'} (${backendMs.toFixed(0)} ms wall; ` +
        `the full iproute2 equivalent took ${median(t.ipFull).toFixed(0)} ms in this run: ratio ${(backendMs / median(t.ipFull)).toFixed(2)}).`,
    );
  } finally {
    ops.close();
    try {
      sh('ip', ['netns', 'delete', ns]);
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
