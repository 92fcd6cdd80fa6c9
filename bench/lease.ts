/**
 * `npm run bench:lease`: N hosts (BENCH_HOSTS, default 200) acquire a subnet lease from one etcd at the
 * same moment, each with its own etcd client, like N weftd starting together (network /16, subnets /24).
 * Prints a Markdown table: time until all have a lease, etcd round trips per acquisition, lost create
 * races (retries), errors, beside the goal (all succeed within 5 s on this machine).
 *
 * Uses ETCD_ENDPOINTS if set, else spawns Debian's etcd (test/helpers/etcd.ts). BENCH_RUNS (default 1)
 * repeats with a fresh prefix and reports each run.
 */
import { startEtcd } from '../test/helpers/etcd.js';
import { createEtcdSubnetManager, type EtcdSubnetManager } from '../src/subnet/etcd-manager.js';
import { nullLogger } from '../src/log/logger.js';

const HOSTS = Number(process.env['BENCH_HOSTS'] ?? 200);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 1);
const GOAL_MS = 5000;

interface Row {
  run: number;
  ms: number;
  ok: number;
  errors: number;
  distinct: number;
  requestsPerAcq: number;
  retries: number;
  attemptsMax: number;
}

async function once(run: number, endpoints: string[], prefix: string): Promise<Row> {
  const managers: EtcdSubnetManager[] = Array.from({ length: HOSTS }, () =>
    createEtcdSubnetManager({ endpoints, prefix, log: nullLogger }),
  );
  try {
    const started = performance.now();
    const results = await Promise.allSettled(
      managers.map((m, i) =>
        m.acquireLease({
          publicIp: `198.18.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}`,
          publicIpv6: null,
          backendType: 'vxlan',
        }),
      ),
    );
    const ms = performance.now() - started;
    const ok = results.filter((r) => r.status === 'fulfilled');
    const subnets = new Set(
      ok.map((r) => (r as PromiseFulfilledResult<{ subnet: string }>).value.subnet),
    );
    for (const r of results)
      if (r.status === 'rejected') console.error(`acquire failed: ${String(r.reason)}`);
    const requests = managers.reduce((n, m) => n + m.etcdRequests, 0);
    return {
      run,
      ms,
      ok: ok.length,
      errors: results.length - ok.length,
      distinct: subnets.size,
      requestsPerAcq: requests / Math.max(1, ok.length),
      retries: managers.reduce((n, m) => n + m.stats.lostRaces, 0),
      attemptsMax: Math.max(...managers.map((m) => m.stats.attempts)),
    };
  } finally {
    await Promise.all(managers.map((m) => m.close()));
  }
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const rows: Row[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const prefix = etcd.prefix('bench-lease');
      await etcd.etcdctl([
        'put',
        `${prefix}/config`,
        JSON.stringify({ Network: '10.5.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } }),
      ]);
      rows.push(await once(run, etcd.endpoints, prefix));
    }
  } finally {
    await etcd.stop();
  }
  console.log(
    `\n### Lease acquisition: ${HOSTS} hosts at once, one etcd (network /16, subnets /24)\n`,
  );
  console.log(
    '| run | time to all acquired | succeeded | distinct subnets | etcd requests / acquisition | lost races (retries) | max attempts by one host | goal |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const met = r.errors === 0 && r.distinct === HOSTS && r.ms <= GOAL_MS;
    console.log(
      `| ${r.run} | ${(r.ms / 1000).toFixed(2)} s | ${r.ok}/${HOSTS} | ${r.distinct} | ${r.requestsPerAcq.toFixed(2)} | ${r.retries} | ${r.attemptsMax} | all succeed within ${GOAL_MS / 1000} s: ${met ? 'met' : 'NOT met'} |`,
    );
  }
  if (rows.some((r) => r.errors > 0 || r.distinct !== HOSTS)) process.exitCode = 1;
}

await main();
