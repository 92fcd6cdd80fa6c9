/**
 * The demo cluster (run through scripts/demo.sh, which installs what is missing first):
 *   demo up [--backend vxlan|host-gw|udp|wireguard]   tear down leftovers, build the cluster, show that it works
 *   demo down                               remove everything the demo created
 * Exit codes: 0 ok; 1 the cluster could not be built or a container could not reach another; 2 usage.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTopology,
  dumpLogs,
  installCniPlugin,
  putNetworkConfig,
  startEtcd,
  startWeftds,
  writeWeftctlWrappers,
} from './cluster.js';
import { deleteContainers, startContainers } from './containers.js';
import {
  BACKENDS,
  CONTAINERS_PER_HOST,
  ETCD_URL,
  HOSTS,
  NETWORK,
  layoutFromEnv,
  type DemoBackend,
  type Layout,
} from './layout.js';
import {
  formatLeases,
  formatMatrix,
  iperf,
  pingMatrix,
  readLeases,
  weftctlStatus,
} from './report.js';
import { Steps } from './shell.js';
import { listDemoNetns, teardown } from './teardown.js';

const USAGE = `usage: scripts/demo.sh [up] [--backend vxlan|host-gw|udp|wireguard]
       scripts/demo.sh down`;

function parseArgs(argv: readonly string[]): { cmd: 'up' | 'down'; backend: DemoBackend } {
  let cmd: 'up' | 'down' = 'up';
  let backend: DemoBackend = 'vxlan';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === 'up' || a === 'down') cmd = a;
    else if (a === '--backend' || a.startsWith('--backend=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : (argv[++i] ?? '');
      if (!(BACKENDS as readonly string[]).includes(v)) {
        throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got "${v}"`);
      }
      backend = v as DemoBackend;
    } else throw new UsageError(`unknown argument "${a}"`);
  }
  return { cmd, backend };
}

class UsageError extends Error {}

/** Tears the demo down; with `what`, one short line naming what was removed (or nothing if nothing was). */
async function down(l: Layout, what?: string): Promise<void> {
  const quiet = what !== undefined;
  await deleteContainers(
    l,
    (await listDemoNetns(l)).filter((n) => /-c\d+$/.test(n)),
  );
  const r = await teardown(l);
  if (quiet) {
    if (r.namespaces.length > 0 || r.processes > 0)
      console.log(`removed ${what} (${r.namespaces.length} namespaces, ${r.processes} processes)`);
    return;
  }
  console.log(
    `removed ${r.namespaces.length} namespaces, stopped ${r.processes} processes` +
      (r.stateDir ? `, deleted ${l.stateDir}` : ''),
  );
}

async function up(l: Layout, backend: DemoBackend): Promise<number> {
  const t0 = Date.now();
  await down(l, 'leftovers of an earlier run');
  const ctrs = HOSTS * CONTAINERS_PER_HOST;
  console.log(
    `weft demo: ${HOSTS} hosts, ${ctrs} containers, backend ${backend}, state in ${l.stateDir}`,
  );
  const s = new Steps(9);
  await s.step(
    `Creating ${HOSTS} simulated hosts (namespaces ${l.hostNs(1)}…, underlay 198.18.0.0/24)`,
    () => createTopology(l),
  );
  await s.step(`Starting etcd in ${l.underlayNs} on ${ETCD_URL}`, () => startEtcd(l));
  await s.step(`Writing the network config (${NETWORK}, backend ${backend})`, () =>
    putNetworkConfig(l, backend),
  );
  await s.step(`Starting weftd on ${HOSTS} hosts`, () => startWeftds(l));
  await s.step('Installing the weft CNI plugin', () => installCniPlugin(l));
  writeWeftctlWrappers(l);
  const containers = await s.step(
    `Starting ${ctrs} containers through the weft CNI plugin (reference bridge + host-local)`,
    () => startContainers(l),
  );
  writeFileSync(join(l.stateDir, 'containers.json'), JSON.stringify(containers, null, 2));
  const leases = await s.step('Reading the leases from etcd', () => readLeases(l));
  const matrix = await s.step(`Pinging every container from every other one`, () =>
    pingMatrix(containers),
  );
  const a = containers.find((c) => c.host === 1);
  const b = containers.find((c) => c.host === 2);
  // Throughput is shown, not judged: a failed iperf3 is reported and the cluster stays up.
  let iperfError = '';
  const gbit =
    a && b
      ? await s.step('Measuring TCP throughput with iperf3 (3 s)', () =>
          iperf(a, b, 3).catch((err: unknown) => {
            iperfError = (err as Error).message;
            return NaN;
          }),
        )
      : NaN;

  console.log(`\nLeases (subnet, host, public IP, backend):\n${formatLeases(l, leases)}`);
  console.log(`\nContainers reach each other (ping):\n${formatMatrix(matrix)}`);
  if (a && b) {
    console.log(
      `\nThroughput ${a.name} → ${b.name} (${backend}, TCP, 1 stream, 3 s): ${iperfError || `${gbit.toFixed(2)} Gbit/s`}` +
        "\n  (all hosts and containers share this machine's CPUs: compare with `npm run bench`, not with real links)",
    );
  }
  const weftctl = join(l.hostDir(1), 'weftctl');
  console.log(`\nweftctl status on ${l.hostNs(1)}:\n${await weftctlStatus(l.hostNs(1), weftctl)}`);
  const c1 = containers[0];
  const far = containers.find((c) => c.host !== c1?.host);
  console.log(`
The cluster keeps running (${((Date.now() - t0) / 1000).toFixed(0)} s to build). Try:
  ip netns exec ${l.hostNs(1)} ${weftctl} status      # also: leases, peers, doctor (weftctl preset for h1)
  ip netns exec ${c1?.netns ?? l.containerNs(1, 1)} sh        # a shell in container ${c1?.name ?? 'h1-c1'}; then: ping ${far?.ip ?? ''}
  ip -n ${l.hostNs(1)} route; cat ${join(l.hostDir(1), 'subnet.env')}; ls ${l.logDir}
  scripts/demo.sh down                                   # removes everything the demo created`);
  return matrix.passed === matrix.pairs ? 0 : 1;
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  let l: Layout;
  try {
    args = parseArgs(process.argv.slice(2));
    l = layoutFromEnv();
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.cmd === 'down') {
    await down(l);
    return 0;
  }
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`\n${sig}: removing the half-built demo cluster …`);
    void down(l, 'the half-built cluster').finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await up(l, args.backend);
  } catch (err) {
    // Interrupted: the signal handler is already tearing down and exits with 130 when done.
    if (stopping) return new Promise<number>(() => {});
    console.error(`\ndemo failed: ${(err as Error).message}`);
    if (existsSync(l.logDir)) console.error(dumpLogs(l));
    if (process.env['WEFT_DEMO_KEEP'] === '1') {
      console.error(
        `left the cluster as it is (WEFT_DEMO_KEEP=1); remove it with scripts/demo.sh down`,
      );
    } else {
      console.error(
        'removing the half-built cluster (set WEFT_DEMO_KEEP=1 to keep it for inspection)',
      );
      await down(l, 'the half-built cluster');
    }
    return 1;
  }
}

process.exitCode = await main();
