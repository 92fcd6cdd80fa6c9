/**
 * Building the demo cluster: the underlay and host namespaces (same layout as test/helpers/netns.ts),
 * an etcd inside the underlay namespace, the network config, and one weftd per host. Daemons run
 * detached with their PIDs in `<state>/pids` and their logs in `<state>/logs`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ETCD_IP,
  ETCD_PREFIX,
  ETCD_URL,
  HOSTS,
  NETWORK,
  REPO,
  type DemoBackend,
  type Layout,
} from './layout.js';
import { alive, GiveUp, nsRun, run, spawnDaemon, waitFor } from './shell.js';

async function ip(args: readonly string[]): Promise<void> {
  await run('ip', args);
}

async function addNetns(name: string): Promise<void> {
  await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Underlay namespace with bridge br0 (198.18.0.254/24) and HOSTS host namespaces on it. */
export async function createTopology(l: Layout): Promise<void> {
  const ul = l.underlayNs;
  await addNetns(ul);
  await ip(['-n', ul, 'link', 'add', 'br0', 'type', 'bridge']);
  await ip(['-n', ul, 'addr', 'add', `${ETCD_IP}/24`, 'dev', 'br0']);
  await ip(['-n', ul, 'link', 'set', 'br0', 'up']);
  for (let i = 1; i <= HOSTS; i++) {
    const ns = l.hostNs(i);
    await addNetns(ns);
    await ip([
      '-n',
      ul,
      'link',
      'add',
      `vh${i}`,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    ]);
    await ip(['-n', ul, 'link', 'set', `vh${i}`, 'master', 'br0', 'up']);
    await ip(['-n', ns, 'addr', 'add', `${l.hostIp(i)}/24`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await nsRun(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }
}

function recordPid(l: Layout, name: string, pid: number): void {
  mkdirSync(l.pidDir, { recursive: true });
  writeFileSync(join(l.pidDir, `${name}.pid`), `${pid}\n`);
}

/** The last `lines` lines of a log; JSON log lines shortened to their level and message. */
export function logTail(file: string, lines = 8): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((line) => {
      try {
        const j = JSON.parse(line) as { level?: number; msg?: string };
        const level = (j.level ?? 30) >= 50 ? 'error' : (j.level ?? 30) >= 40 ? 'warn' : 'info';
        return `  ${level}: ${j.msg ?? line}`;
      } catch {
        return `  ${line}`;
      }
    })
    .join('\n');
}

/** The message of a log's last line (what a daemon said before it exited). */
function lastMessage(file: string): string {
  return logTail(file, 1).trim();
}

export async function etcdctl(l: Layout, args: readonly string[]): Promise<string> {
  const r = await nsRun(
    l.underlayNs,
    'etcdctl',
    ['--endpoints', ETCD_URL, '--dial-timeout', '1s', '--command-timeout', '5s', ...args],
    { env: { ...process.env, ETCDCTL_API: '3' } },
  );
  return r.stdout;
}

/** etcd on 198.18.0.254:2379 inside the underlay namespace, data in the state dir. */
export async function startEtcd(l: Layout): Promise<void> {
  mkdirSync(l.logDir, { recursive: true });
  const peer = `http://${ETCD_IP}:2380`;
  const log = join(l.logDir, 'etcd.log');
  const pid = spawnDaemon(
    l.underlayNs,
    'etcd',
    [
      '--name',
      l.prefix,
      '--data-dir',
      l.etcdDataDir,
      '--listen-client-urls',
      ETCD_URL,
      '--advertise-client-urls',
      ETCD_URL,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `${l.prefix}=${peer}`,
      '--logger=zap',
      '--log-level',
      'error',
    ],
    log,
  );
  recordPid(l, 'etcd', pid);
  await waitFor(
    'etcd to answer',
    async () => {
      if (!alive(pid)) throw new GiveUp(`etcd exited:\n${logTail(log)}`);
      await etcdctl(l, ['endpoint', 'health']);
      return true;
    },
    20_000,
  );
}

export async function putNetworkConfig(l: Layout, backend: DemoBackend): Promise<string> {
  const config = JSON.stringify({ Network: NETWORK, Backend: { Type: backend } });
  await etcdctl(l, ['put', `${ETCD_PREFIX}/config`, config]);
  return config;
}

export const weftdLog = (l: Layout, i: number): string => join(l.logDir, `weftd-h${i}.log`);
export const subnetFile = (l: Layout, i: number): string => join(l.hostDir(i), 'subnet.env');

/** One weftd per host (the built bin/weftd.js), then waits until each logs "weftd is ready". */
export async function startWeftds(l: Layout): Promise<void> {
  const pids: number[] = [];
  for (let i = 1; i <= HOSTS; i++) {
    mkdirSync(l.hostDir(i), { recursive: true });
    const pid = spawnDaemon(
      l.hostNs(i),
      process.execPath,
      [
        join(REPO, 'bin', 'weftd.js'),
        `--etcd-endpoints=${ETCD_URL}`,
        `--etcd-prefix=${ETCD_PREFIX}`,
        '--iface=eth0',
        '--ip-masq',
        `--subnet-file=${subnetFile(l, i)}`,
        `--state-dir=${join(l.hostDir(i), 'weftd')}`,
        '--healthz-ip=127.0.0.1',
        '--healthz-port=8081',
      ],
      weftdLog(l, i),
    );
    recordPid(l, `weftd-h${i}`, pid);
    pids.push(pid);
  }
  await Promise.all(
    pids.map((pid, k) =>
      waitFor(
        `weftd on ${l.hostNs(k + 1)} to become ready`,
        () => {
          const log = weftdLog(l, k + 1);
          if (!alive(pid))
            throw new GiveUp(`weftd on ${l.hostNs(k + 1)} exited: ${lastMessage(log)}`);
          return existsSync(log) && readFileSync(log, 'utf8').includes('"msg":"weftd is ready"');
        },
        30_000,
      ),
    ),
  );
}

/**
 * `<host dir>/weftctl`: weftctl with this host's etcd, subnet.env and health port preset, so a user types
 * `ip netns exec weft-demo-h1 /run/weft-demo/h1/weftctl status`.
 */
export function writeWeftctlWrappers(l: Layout): string[] {
  const out: string[] = [];
  for (let i = 1; i <= HOSTS; i++) {
    const file = join(l.hostDir(i), 'weftctl');
    writeFileSync(
      file,
      [
        '#!/bin/sh',
        `# weftctl for demo host ${l.hostNs(i)}: run it inside that namespace (ip netns exec ${l.hostNs(i)} ${file} status)`,
        `export WEFTCTL_ETCD_ENDPOINTS=${ETCD_URL} WEFTCTL_ETCD_PREFIX=${ETCD_PREFIX}`,
        `export WEFTCTL_SUBNET_FILE=${subnetFile(l, i)} WEFTCTL_HEALTHZ_PORT=8081`,
        `exec ${process.execPath} ${join(REPO, 'bin', 'weftctl.js')} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    out.push(file);
  }
  return out;
}

/** Prints weftd's last log lines for every host (used when something fails). */
export function dumpLogs(l: Layout): string {
  const parts: string[] = [];
  for (let i = 1; i <= HOSTS; i++) parts.push(`--- ${weftdLog(l, i)}\n${logTail(weftdLog(l, i))}`);
  return parts.join('\n');
}

/** Copies the built CNI plugin bundle to `<state>/cni-bin/weft` (the file name is the CNI type). */
export async function installCniPlugin(l: Layout): Promise<string> {
  const bundle = join(REPO, 'dist', 'cni', 'weft.cjs');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\``);
  mkdirSync(l.cniBinDir, { recursive: true });
  const target = join(l.cniBinDir, 'weft');
  await run('install', ['-m', '0755', bundle, target]);
  return target;
}
