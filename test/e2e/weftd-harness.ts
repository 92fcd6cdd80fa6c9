/**
 * Helpers for the weftd e2e tests: a 3-host topology with etcd on the underlay, weftd as a real process
 * (the built `bin/weftd.js`, made by `npm run build`, which scripts/test.sh runs first) in each host's
 * netns with a per-host subnet file and state dir in a temp dir, and containers wired by the test on a
 * bridge using the subnet from each host's subnet.env.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect } from 'vitest';
import {
  createNetns,
  createTopology,
  deleteNetns,
  type SimContainer,
  type SimHost,
  type Topology,
} from '../helpers/netns.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import {
  isRunning,
  nsRun,
  sleep,
  spawnTracked,
  stopChild,
  waitFor,
  type RunResult,
} from '../helpers/exec.js';
import { previousSubnets } from '../../src/lease/subnet-env.js';
import { callPlugin } from '../integration/cni/cni-helpers.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const WEFTD = join(REPO, 'bin/weftd.js');
export const WEFTCTL = join(REPO, 'bin/weftctl.js');

/** Fails with a clear hint when the build is missing. */
export function assertBuilt(): void {
  if (!existsSync(join(REPO, 'dist/daemon/main.js'))) {
    throw new Error(
      'dist/daemon/main.js is missing: run `npm run build` (scripts/test.sh does) before the e2e tier',
    );
  }
}

export interface Weftd {
  readonly host: SimHost;
  readonly dir: string;
  readonly subnetFile: string;
  child: ChildProcess;
  /** stderr (JSON log lines) of the current process. */
  logs: string;
  exit: Promise<number | null>;
}

/** How weftd and weftctl are run (default: the checkout's bin/weftd.js and bin/weftctl.js). */
export interface ClusterOptions {
  /** weftd executable (e.g. the packaged /usr/bin/weftd extracted from the .deb). */
  readonly weftd?: string;
  /** weftctl executable; run directly instead of `node bin/weftctl.js`. */
  readonly weftctl?: string;
  /** Run weftd in a mount namespace where /usr/bin/node is /dev/null and PATH has no node. */
  readonly hideNode?: boolean;
  /** Extra environment for the weftd on `host` (e.g. NOTIFY_SOCKET). */
  readonly envFor?: (host: SimHost) => Readonly<Record<string, string>>;
  /** Starts the etcd the daemons use (default: one member on the underlay gateway address). */
  readonly etcd?: (topo: Topology) => Promise<EtcdFixture>;
}

export interface Cluster {
  readonly opts?: ClusterOptions;
  readonly topo: Topology;
  readonly etcd: EtcdFixture;
  readonly prefix: string;
  readonly tmp: string;
  readonly daemons: Weftd[];
  destroy(): Promise<void>;
}

export async function createCluster(hosts = 3, opts: ClusterOptions = {}): Promise<Cluster> {
  if (!opts.weftd) assertBuilt();
  const topo = await createTopology({ hosts });
  let etcd: EtcdFixture | undefined;
  try {
    etcd = opts.etcd
      ? await opts.etcd(topo)
      : await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
  } catch (err) {
    await topo.destroy();
    throw err;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'weft-e2e-'));
  const cluster: Cluster = {
    opts,
    topo,
    etcd,
    prefix: etcd.prefix('weftd'),
    tmp,
    daemons: [],
    destroy: async () => {
      await Promise.all(cluster.daemons.map((d) => stopChild(d.child, 2000)));
      await etcd?.stop();
      await topo.destroy();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  return cluster;
}

export async function putConfig(c: Cluster, config: unknown): Promise<void> {
  await c.etcd.etcdctl([
    'put',
    `${c.prefix}/config`,
    typeof config === 'string' ? config : JSON.stringify(config),
  ]);
}

export function weftdArgs(c: Cluster, host: SimHost, extra: readonly string[] = []): string[] {
  const dir = join(c.tmp, `h${host.index}`);
  return [
    c.opts?.weftd ?? WEFTD,
    `--etcd-endpoints=${c.etcd.endpoints.join(',')}`,
    `--etcd-prefix=${c.prefix}`,
    `--subnet-file=${join(dir, 'subnet.env')}`,
    `--state-dir=${join(dir, 'state')}`,
    // One CNI socket per simulated host (the default /run/weft/cni.sock is one per machine).
    `--cni-socket=${join(dir, 'cni.sock')}`,
    '--iface=eth0',
    '--iptables-resync=2',
    '--resync-period=3',
    '--healthz-ip=127.0.0.1',
    '--healthz-port=8081',
    ...extra,
  ];
}

/** `unshare` arguments: a private mount namespace in which /usr/bin/node cannot run. */
export const HIDE_NODE = [
  '--mount',
  '--propagation',
  'private',
  'sh',
  '-c',
  'mount --bind /dev/null "$(readlink -f /usr/bin/node)" && exec "$@"',
  'hide-node',
];

function spawnWeftd(
  c: Cluster,
  d: Omit<Weftd, 'child' | 'logs' | 'exit'> & Partial<Weftd>,
  extra: readonly string[],
): Weftd {
  // Run as an executable, as installed (its shebang carries weftd's node flags); WEFTD_NODE_FLAGS runs
  // `node <flags> bin/weftd.js` instead (bench/rss.ts compares V8 settings with it).
  const nodeFlags = (process.env.WEFTD_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const args = weftdArgs(c, d.host, extra);
  const env = { ...process.env, ...c.opts?.envFor?.(d.host) };
  const child = c.opts?.hideNode
    ? spawnTracked('unshare', [...HIDE_NODE, 'ip', 'netns', 'exec', d.host.netns, ...args], {
        env: { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      })
    : nodeFlags.length
      ? spawnTracked('node', [...nodeFlags, ...args], { ns: d.host.netns, env })
      : spawnTracked(args[0]!, args.slice(1), { ns: d.host.netns, env });
  const w = d as Weftd;
  w.child = child;
  w.logs = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (w.child === child && w.logs.length < 4 << 20) w.logs += b.toString();
  });
  child.stdout?.resume();
  w.exit = new Promise((r) => child.once('exit', (code) => r(code)));
  return w;
}

/** Starts weftd on `host` (extra flags appended). Does not wait for readiness. */
export function startWeftd(c: Cluster, host: SimHost, extra: readonly string[] = []): Weftd {
  const dir = join(c.tmp, `h${host.index}`);
  const w = spawnWeftd(c, { host, dir, subnetFile: join(dir, 'subnet.env') }, extra);
  c.daemons.push(w);
  return w;
}

/**
 * Puts `config` into etcd and starts weftd on every host of `c` (extra flags appended); resolves when
 * all are ready. On failure `c` still holds the daemons, so the caller's `c.destroy()` stops them.
 */
export async function startWeftds(
  c: Cluster,
  config: unknown,
  extra: readonly string[] = [],
): Promise<Weftd[]> {
  await putConfig(c, config);
  const daemons = c.topo.hosts.map((h) => startWeftd(c, h, extra));
  await Promise.all(daemons.map((w) => waitReady(w)));
  // Ready means this host's own device, rules and subnet.env; peers started later are programmed as
  // their leases arrive. Tests of the steady state start once every host has programmed every other.
  const others = String(daemons.length - 1);
  await Promise.all(
    daemons.map((w) =>
      waitFor(
        `${w.host.netns} to program ${others} peers`,
        async () =>
          /weft_peers\{backend="[^"]+"\} (\d+)/.exec(await metricsText(w))?.[1] === others,
        20_000,
        200,
      ),
    ),
  );
  return daemons;
}

/** Starts the same daemon again (same subnet file and state dir). */
export function restartWeftd(c: Cluster, w: Weftd, extra: readonly string[] = []): Weftd {
  return spawnWeftd(c, w, extra);
}

/**
 * Waits until weftd logs "weftd is ready" (after the device, rules and subnet.env are in place); fails
 * at once if it exits, and with the tail of its log on timeout.
 */
export async function waitReady(w: Weftd, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!w.logs.includes('"msg":"weftd is ready"')) {
    if (!isRunning(w.child)) {
      throw new Error(
        `weftd on ${w.host.netns} exited (${w.child.exitCode}): ${w.logs.slice(-3000)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `weftd on ${w.host.netns} not ready after ${timeoutMs} ms: ${w.logs.slice(-3000)}`,
      );
    }
    await sleep(50);
  }
}

/**
 * Runs weftctl (the built bin/weftctl.js) in `w`'s netns against the cluster's etcd, with `w`'s subnet
 * file, weftd's health port and a 5 s request timeout; a non-zero exit is returned, not thrown.
 */
export function runWeftctl(c: Cluster, w: Weftd, args: readonly string[]): Promise<RunResult> {
  const [cmd, first] = c.opts?.weftctl ? [c.opts.weftctl, []] : ['node', [WEFTCTL]];
  return nsRun(
    w.host.netns,
    cmd,
    [
      ...first,
      ...args,
      `--etcd-endpoints=${c.etcd.endpoints.join(',')}`,
      `--etcd-prefix=${c.prefix}`,
      `--subnet-file=${w.subnetFile}`,
      '--healthz-port=8081',
      '--timeout=5',
    ],
    { allowFail: true, timeoutMs: 60_000 },
  );
}

/** /readyz status code from inside the host netns (weftd serves on 127.0.0.1:8081 there). */
export async function readyz(w: Weftd): Promise<number> {
  const r = await nsRun(
    w.host.netns,
    'node',
    [
      '-e',
      "fetch('http://127.0.0.1:8081/readyz').then(r=>console.log(r.status),()=>console.log(0))",
    ],
    { allowFail: true },
  );
  return Number(r.stdout.trim());
}

/** /metrics text from inside the host netns. */
export async function metricsText(w: Weftd, port = 8081): Promise<string> {
  const r = await nsRun(w.host.netns, 'node', [
    '-e',
    `fetch('http://127.0.0.1:${port}/metrics').then(r=>r.text()).then(t=>console.log(t))`,
  ]);
  return r.stdout;
}

export interface HostSubnets {
  subnet: string;
  subnet6: string | null;
}

export function subnetsOf(w: Weftd): HostSubnets {
  const p = previousSubnets(readFileSync(w.subnetFile, 'utf8'));
  if (!p.subnet) throw new Error(`no FLANNEL_SUBNET in ${w.subnetFile}`);
  return { subnet: p.subnet, subnet6: p.subnet6 };
}

/** `10.5.7.0/24` + n → `10.5.7.n`. */
export function hostAddr4(subnet: string, n: number): string {
  const [base = '', len = ''] = subnet.split('/');
  const o = base.split('.').map(Number);
  void len;
  return `${o[0]}.${o[1]}.${o[2]}.${(o[3] ?? 0) + n}`;
}

/** `fd05:0:0:7::/64` + n → `fd05:0:0:7::n` (subnets here are /64 or shorter with a zero host part). */
export function hostAddr6(subnet6: string, n: number): string {
  return `${subnet6.split('/')[0]}${n.toString(16)}`;
}

/** One container on `w`'s host, addressed from its subnet.env (.2, .3, …; gateway .1 on cbr0). */
export async function addContainer(c: Cluster, w: Weftd, n = 2): Promise<SimContainer> {
  const s = subnetsOf(w);
  const len = s.subnet.split('/')[1];
  const opts: Parameters<Topology['addContainer']>[1] = {
    cidr: `${hostAddr4(s.subnet, n)}/${len}`,
    gateway: hostAddr4(s.subnet, 1),
  };
  if (s.subnet6) {
    const len6 = s.subnet6.split('/')[1];
    opts.cidr6 = `${hostAddr6(s.subnet6, n)}/${len6}`;
    opts.gateway6 = hostAddr6(s.subnet6, 1);
  }
  return c.topo.addContainer(w.host, opts);
}

/** Runs a ping and returns transmitted/received counts (never throws on loss). */
export async function pingStats(
  ns: string,
  dst: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ sent: number; received: number; out: string }> {
  const r = await nsRun(ns, 'ping', [...args, dst], { allowFail: true, timeoutMs });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), out: r.stdout.slice(-600) };
}

/**
 * The weft CNI plugin object for `w`'s host: state and IPAM dirs in weftd's temp dir, and the plugin
 * hands the call to this host's weftd (the harness gives each weftd its own --cni-socket).
 */
export const weftPluginConf = (w: Weftd, bridge: string): Record<string, unknown> => ({
  type: 'weft',
  daemonSocket: join(w.dir, 'cni.sock'),
  subnetFile: w.subnetFile,
  dataDir: join(w.dir, 'cni-state'),
  ipam: { dataDir: join(w.dir, 'cni-ipam') },
  delegate: { bridge },
});

/** A container netns on a host, added by the weft CNI plugin as a runtime adds one. */
export interface CniContainer {
  readonly netns: string;
  /** Its IPv4 address from the plugin's result (no prefix length). */
  readonly ip: string;
  /** DEL through the plugin, then the netns is deleted. */
  remove(): Promise<void>;
}

/** ADDs container `id` (netns `name`) on `w`'s host with the plugin in `binDir` and config `stdin`. */
export async function addCniContainer(
  w: Weftd,
  binDir: string,
  id: string,
  name: string,
  stdin: string,
): Promise<CniContainer> {
  const netns = await createNetns(name);
  const call = (command: string) =>
    callPlugin({ hostNs: w.host.netns, binDir, command, containerId: id, netns, stdin });
  const add = await call('ADD');
  if (add.code !== 0) {
    await deleteNetns(netns);
    throw new Error(`CNI ADD on ${w.host.netns} failed: ${add.stdout}${add.stderr}`);
  }
  const ip = ((add.json?.['ips'] ?? []) as { address: string }[])[0]!.address.split('/')[0]!;
  const remove = async (): Promise<void> => {
    try {
      await call('DEL');
    } finally {
      await deleteNetns(netns);
    }
  };
  return { netns, ip, remove };
}

/** Three pings from `from` to `to`: all must be answered. */
export async function expectThreePings(from: SimContainer, to: SimContainer): Promise<void> {
  const r = await pingStats(from.netns, to.ip, ['-c', '3', '-i', '0.2', '-W', '2'], 10_000);
  expect(r.received, r.out).toBe(3);
}

/** What useCluster's beforeAll set up; read it inside hooks and tests that run after that one. */
export interface ClusterSetup {
  c: Cluster;
  /** weftd on every host, in host order (empty before `upTo: 'weftd'`). */
  d: Weftd[];
  /** One container (.2) per host, in host order (empty before `upTo: 'containers'`). */
  ctr: SimContainer[];
}

/**
 * Registers the set-up most e2e files share and returns what it sets up. The beforeAll creates a
 * cluster of `hosts` hosts; with `config` it also puts that network config into etcd and, as far as
 * `upTo` says (default 'containers'): starts weftd on every host with `flags` and waits until each has
 * programmed every other (startWeftds), then adds one container per host (addContainer, .2) and checks
 * three pings from the first container to the second. The afterAll destroys the cluster, also when the
 * set-up failed half-way (`c` is kept as soon as the cluster exists). Hooks a file registers after this
 * call run after this beforeAll and, vitest's after-hooks running in reverse order, before this afterAll.
 */
export function useCluster(
  hosts: number,
  config?: unknown,
  flags: readonly string[] = [],
  upTo: 'config' | 'weftd' | 'containers' = 'containers',
): ClusterSetup {
  const setup = { d: [], ctr: [] } as unknown as ClusterSetup;
  beforeAll(async () => {
    const c = (setup.c = await createCluster(hosts));
    if (config === undefined) return;
    if (upTo === 'config') {
      await putConfig(c, config);
      return;
    }
    setup.d = await startWeftds(c, config, flags);
    if (upTo === 'weftd') return;
    for (const w of setup.d) setup.ctr.push(await addContainer(c, w, 2));
    await expectThreePings(setup.ctr[0]!, setup.ctr[1]!);
  });
  afterAll(async () => {
    await setup.c?.destroy();
  });
  return setup;
}

/**
 * `count` pings every 10 ms from `from` to `to` while `during` runs (from 500 ms in): every one must be
 * sent and answered.
 */
export async function expectNoPingLost(
  from: SimContainer,
  to: SimContainer,
  count: number,
  timeoutMs: number,
  during: () => Promise<void>,
): Promise<void> {
  const args = ['-c', String(count), '-i', '0.01', '-W', '1'];
  const pinging = pingStats(from.netns, to.ip, args, timeoutMs);
  await sleep(500);
  await during();
  const stats = await pinging;
  expect(stats.sent, stats.out).toBe(count);
  expect(stats.received, stats.out).toBe(count);
}

/** Two pings from `from` to `to`: null when answered, else `from → to` (for a list of failures). */
export async function pingOnce(from: SimContainer, to: string): Promise<string | null> {
  const r = await nsRun(from.netns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '-q', to], {
    allowFail: true,
    timeoutMs: 10_000,
  });
  return r.code === 0 ? null : `${from.ip} → ${to}`;
}

/** Name of the first vxlan device in `ns` (null when there is none). */
export async function vxlanDevice(ns: string): Promise<string | null> {
  const out = (await nsRun(ns, 'ip', ['-o', 'link', 'show', 'type', 'vxlan'])).stdout;
  const m = /^\d+: ([^:@]+)[:@]/m.exec(out);
  return m?.[1] ?? null;
}

export async function ipOut(ns: string, args: readonly string[]): Promise<string> {
  return (await nsRun(ns, 'ip', args)).stdout;
}
