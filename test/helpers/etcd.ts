/**
 * A real etcd for tests (docs/design.md C15, docs/dependencies.md §5).
 *
 * Order of preference:
 *  1. `ETCD_ENDPOINTS` (comma-separated) when set and no netns placement is asked for: an etcd someone
 *     else runs; `stop()`/`restart()` are then unavailable (`controllable` is false).
 *  2. Debian's `etcd` binary (etcd-server 3.4) spawned on free ports with a temp data dir: on
 *     127.0.0.1 in the test's own process namespace, or on an underlay address inside a test netns so
 *     daemons in host namespaces can reach it.
 *  3. Where a container runtime answers, testcontainers with the upstream etcd image.
 *
 * Each test takes its own key prefix from `prefix()`; nothing ever wipes a shared keyspace.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { run, spawnTracked, stopChild, waitFor, isRunning, words } from './exec.js';
import { createNetns, deleteNetnsSync } from './netns.js';

export interface EtcdFixture {
  /** Client URLs, e.g. ['http://127.0.0.1:41234']. */
  readonly endpoints: string[];
  /** True when this fixture started the server and can stop/restart it. */
  readonly controllable: boolean;
  /** A fresh, unique key prefix (flannel layout below it: `<prefix>/config`, `<prefix>/subnets/...`). */
  prefix(label?: string): string;
  /** Runs etcdctl against this server (inside its netns when it has one; a cluster: its reachable members). */
  etcdctl(args: readonly string[]): Promise<string>;
  /** Stops the server, keeping its data so `start()` resumes with the same state. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again after `kill()` (same ports, same data). */
  start(): Promise<void>;
  /**
   * Stops the server, wipes its data dir and starts it again on the same ports: a cluster reset (every
   * key and store lease gone, revisions back at 1). Only on a spawned etcd (`controllable`).
   */
  reset?(): Promise<void>;
  /**
   * Stops the server and replaces its data with `etcdctl snapshot restore` of `snapshot` (a file
   * written by `etcdctl snapshot save`, e.g. of another fixture), then starts it again on the same
   * ports: a restore from a backup. Cluster and member IDs stay as they were (etcd derives them from
   * the same flags). Only on a spawned single etcd (`controllable`).
   */
  restore?(snapshot: string): Promise<void>;
  /** Stops the server for good and removes its data. Safe to call twice. */
  stop(): Promise<void>;
}

export interface EtcdOptions {
  /** Run inside this netns, listening on `host` (must be an address in that netns). */
  netns?: string;
  host?: string;
  /** Extra etcd flags (e.g. TLS or auth for the tests of those). */
  extraArgs?: string[];
  /** Client URL scheme (https when TLS flags are given). */
  scheme?: 'http' | 'https';
  /** Extra etcdctl flags (e.g. --cacert) for `etcdctl()` and the readiness probe. */
  etcdctlArgs?: string[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function haveEtcdBinary(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function uniquePrefixKey(label = 'test'): string {
  return `/weft-test/${label}-${randomBytes(5).toString('hex')}/coreos.com/network`;
}

function externalFixture(endpoints: string[]): EtcdFixture {
  const unsupported = async (): Promise<void> => {
    throw new Error('this etcd comes from ETCD_ENDPOINTS: the test cannot stop or restart it');
  };
  return {
    endpoints,
    controllable: false,
    prefix: uniquePrefixKey,
    etcdctl: async (args) =>
      (
        await run('etcdctl', ['--endpoints', endpoints.join(','), ...args], {
          env: { ...process.env, ETCDCTL_API: '3' },
        })
      ).stdout,
    kill: unsupported,
    start: unsupported,
    reset: unsupported,
    restore: unsupported,
    stop: async () => {},
  };
}

async function spawnedFixture(opts: EtcdOptions): Promise<EtcdFixture> {
  const host = opts.host ?? '127.0.0.1';
  // In a fresh netns every port is free; on the shared loopback ask the kernel for two.
  const clientPort = opts.netns ? 2379 : await freePort();
  const peerPort = opts.netns ? 2380 : await freePort();
  const scheme = opts.scheme ?? 'http';
  const clientUrl = `${scheme}://${host}:${clientPort}`;
  const peerUrl = `http://${host}:${peerPort}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-'));
  const name = `weft-${randomBytes(3).toString('hex')}`;
  const args = [
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${name}=${peerUrl}`,
    '--logger=zap',
    '--log-level',
    'error',
    ...(opts.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;
  let stderr = '';
  let stopped = false;
  const ctlArgs = (extra: readonly string[]): string[] => [
    '--endpoints',
    clientUrl,
    '--dial-timeout',
    '1s',
    '--command-timeout',
    '5s',
    ...(opts.etcdctlArgs ?? []),
    ...extra,
  ];
  const etcdctl = async (extra: readonly string[]): Promise<string> => {
    const env = { ...process.env, ETCDCTL_API: '3' };
    const r = opts.netns
      ? await run('ip', ['netns', 'exec', opts.netns, 'etcdctl', ...ctlArgs(extra)], { env })
      : await run('etcdctl', ctlArgs(extra), { env });
    return r.stdout;
  };
  const start = async (): Promise<void> => {
    stderr = '';
    const c = spawnTracked('etcd', args, opts.netns ? { ns: opts.netns } : {});
    child = c;
    c.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 16_384) stderr += d.toString();
    });
    c.stdout?.resume();
    await waitFor(
      `etcd on ${clientUrl}`,
      async () => {
        if (!isRunning(c)) throw new Error(`etcd exited (${c.exitCode}): ${stderr.slice(-2000)}`);
        await etcdctl(['endpoint', 'health']);
        return true;
      },
      20_000,
      100,
    );
  };
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (!child) return;
    const c = child;
    child = undefined;
    if (signal === 'SIGKILL') c.kill('SIGKILL');
    await stopChild(c);
  };
  await start().catch(async (err: unknown) => {
    await kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  return {
    endpoints: [clientUrl],
    controllable: true,
    prefix: uniquePrefixKey,
    etcdctl,
    kill,
    start,
    reset: async () => {
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
      await start();
    },
    restore: async (snapshot) => {
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
      await run(
        'etcdctl',
        [
          'snapshot',
          'restore',
          snapshot,
          '--data-dir',
          dataDir,
          '--name',
          name,
          '--initial-cluster',
          `${name}=${peerUrl}`,
          '--initial-advertise-peer-urls',
          peerUrl,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' } },
      );
      await start();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function containerFixture(): Promise<EtcdFixture> {
  const tc = await import('testcontainers');
  const container = await new tc.GenericContainer('quay.io/coreos/etcd:v3.5.17')
    .withCommand([
      'etcd',
      '--listen-client-urls',
      'http://0.0.0.0:2379',
      '--advertise-client-urls',
      'http://127.0.0.1:2379',
    ])
    .withExposedPorts(2379)
    .start();
  const endpoint = `http://${container.getHost()}:${container.getMappedPort(2379)}`;
  const ext = externalFixture([endpoint]);
  return { ...ext, stop: async () => void (await container.stop()) };
}

/** Starts (or attaches to) an etcd; always pair with `await fixture.stop()` in afterAll/finally. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdFixture> {
  const fromEnv = process.env['ETCD_ENDPOINTS'];
  if (fromEnv && !opts.netns && !opts.extraArgs) {
    return externalFixture(
      fromEnv
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
  }
  if (haveEtcdBinary()) return spawnedFixture(opts);
  try {
    const tc = await import('testcontainers');
    await tc.getContainerRuntimeClient();
  } catch {
    throw new Error(
      'no etcd available: install Debian etcd-server (`apt-get install etcd-server`), set ETCD_ENDPOINTS, or run a container engine',
    );
  }
  return containerFixture();
}

/** A 3-member (or n-member) etcd cluster whose members the test can kill, restart, cut off and heal. */
export interface EtcdClusterFixture extends EtcdFixture {
  /** Client URL of each member, in member order. */
  readonly memberEndpoints: readonly string[];
  /** Index of the current leader (asks the reachable members), or -1 when there is none. */
  leader(): Promise<number>;
  /** Stops member `i` (SIGKILL by default), keeping its data. */
  killMember(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts member `i` again after `killMember` (same address, same data) and waits until it is healthy. */
  startMember(i: number): Promise<void>;
  /** Takes member `i`'s link down: no packet reaches it or leaves it (clients and peers alike). */
  cut(i: number): Promise<void>;
  /** Brings member `i`'s link back up. */
  heal(i: number): Promise<void>;
  /** Waits until the cluster has a leader and every member answers `endpoint health`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Heals every cut member and starts every stopped one (a failed test's cleanup). */
  healAll(): Promise<void>;
}

export interface EtcdClusterOptions {
  /** The underlay netns holding `bridge`; each member gets its own netns wired into that bridge. */
  readonly underlayNetns: string;
  readonly bridge: string;
  /** One address per member on the bridge's /24, e.g. ['198.18.0.251', '198.18.0.252', '198.18.0.253']. */
  readonly addrs: readonly string[];
  /** Name prefix of the member namespaces (the test topology's prefix). */
  readonly nsPrefix: string;
}

/**
 * Starts Debian's etcd as an n-member cluster inside test namespaces: member i runs in its own netns
 * `<nsPrefix>-e<i>`, joined to the underlay bridge by a veth whose bridge side (`ve<i>`, in the
 * underlay netns) `cut(i)` takes down. Election timeout 1 s, heartbeat 100 ms (etcd's defaults). Data
 * dirs in a temp dir; `stop()` kills every member, deletes the namespaces and the data.
 */
export async function startEtcdCluster(o: EtcdClusterOptions): Promise<EtcdClusterFixture> {
  const root = mkdtempSync(join(tmpdir(), 'weft-etcd-cluster-'));
  const token = `weft-${randomBytes(4).toString('hex')}`;
  const names = o.addrs.map((_, i) => `m${i + 1}`);
  const clientUrls = o.addrs.map((a) => `http://${a}:2379`);
  const initialCluster = o.addrs.map((a, i) => `${names[i]}=http://${a}:2380`).join(',');
  const netns = o.addrs.map((_, i) => `${o.nsPrefix}-e${i + 1}`);
  const children: Array<ChildProcess | undefined> = o.addrs.map(() => undefined);
  const logs: string[] = o.addrs.map(() => '');
  const isCut: boolean[] = o.addrs.map(() => false);
  let stopped = false;
  /** Members a client can reach now (running, not cut off); all of them when none is. */
  const reachable = (): string[] => {
    const up = clientUrls.filter((_, i) => children[i] !== undefined && !isCut[i]);
    return up.length > 0 ? up : clientUrls;
  };

  const ctl = async (endpoints: readonly string[], extra: readonly string[]): Promise<string> =>
    (
      await run(
        'ip',
        [
          'netns',
          'exec',
          o.underlayNetns,
          'etcdctl',
          '--endpoints',
          endpoints.join(','),
          '--dial-timeout',
          '1s',
          '--command-timeout',
          '5s',
          ...extra,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' } },
      )
    ).stdout;

  const spawnMember = (i: number, state: 'new' | 'existing'): void => {
    const a = o.addrs[i]!;
    const c = spawnTracked(
      'etcd',
      [
        '--name',
        names[i]!,
        '--data-dir',
        join(root, names[i]!),
        '--listen-client-urls',
        clientUrls[i]!,
        '--advertise-client-urls',
        clientUrls[i]!,
        '--listen-peer-urls',
        `http://${a}:2380`,
        '--initial-advertise-peer-urls',
        `http://${a}:2380`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        token,
        '--initial-cluster-state',
        state,
        '--logger=zap',
        '--log-level',
        'error',
      ],
      { ns: netns[i]! },
    );
    children[i] = c;
    logs[i] = '';
    c.stderr?.on('data', (d: Buffer) => {
      if (logs[i]!.length < 16_384) logs[i] += d.toString();
    });
    c.stdout?.resume();
  };

  const memberHealthy = async (i: number): Promise<boolean> => {
    const c = children[i];
    if (!c || !isRunning(c))
      throw new Error(`etcd member ${names[i]} exited: ${logs[i]!.slice(-2000)}`);
    await ctl([clientUrls[i]!], ['endpoint', 'health']);
    return true;
  };

  const killMember = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const c = children[i];
    if (!c) return;
    children[i] = undefined;
    if (signal === 'SIGKILL') c.kill('SIGKILL');
    await stopChild(c);
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(o.addrs.map((_, i) => killMember(i)));
    for (const ns of netns) deleteNetnsSync(ns);
    rmSync(root, { recursive: true, force: true });
  };

  const link = async (i: number, state: 'up' | 'down'): Promise<void> => {
    await run('ip', ['-n', o.underlayNetns, 'link', 'set', `ve${i + 1}`, state]);
    isCut[i] = state === 'down';
  };

  const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
    await waitFor(
      'the etcd cluster to be healthy with a leader',
      async () => {
        for (let i = 0; i < o.addrs.length; i++) await memberHealthy(i);
        return (await leader()) >= 0;
      },
      timeoutMs,
      200,
    );
  };

  const leader = async (): Promise<number> => {
    const out = await ctl(reachable(), ['endpoint', 'status', '-w', 'json']).catch(() => '[]');
    const rows = JSON.parse(out || '[]') as Array<{
      Endpoint: string;
      Status: { header: { member_id: number | string }; leader: number | string };
    }>;
    for (const r of rows) {
      if (String(r.Status.header.member_id) === String(r.Status.leader))
        return clientUrls.indexOf(r.Endpoint);
    }
    return -1;
  };

  try {
    for (let i = 0; i < o.addrs.length; i++) {
      const ns = await createNetns(netns[i]!);
      await run(
        'ip',
        words(`-n ${o.underlayNetns} link add ve${i + 1} type veth peer name eth0 netns ${ns}`),
      );
      await run('ip', words(`-n ${o.underlayNetns} link set ve${i + 1} master ${o.bridge} up`));
      await run('ip', ['-n', ns, 'addr', 'add', `${o.addrs[i]}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    for (let i = 0; i < o.addrs.length; i++) spawnMember(i, 'new');
    await waitHealthy();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    endpoints: [...clientUrls],
    memberEndpoints: clientUrls,
    controllable: true,
    prefix: uniquePrefixKey,
    etcdctl: (args) => ctl(reachable(), args),
    kill: async (signal) => {
      await Promise.all(o.addrs.map((_, i) => killMember(i, signal)));
    },
    start: async () => {
      for (let i = 0; i < o.addrs.length; i++) if (!children[i]) spawnMember(i, 'existing');
      await waitHealthy();
    },
    stop,
    leader,
    killMember,
    startMember: async (i) => {
      if (!children[i]) spawnMember(i, 'existing');
      await waitFor(`etcd member ${names[i]}`, () => memberHealthy(i), 20_000, 100);
    },
    cut: async (i) => void (await link(i, 'down')),
    heal: async (i) => void (await link(i, 'up')),
    waitHealthy,
    healAll: async () => {
      for (let i = 0; i < o.addrs.length; i++) {
        await link(i, 'up');
        if (!children[i]) spawnMember(i, 'existing');
      }
    },
  };
}
