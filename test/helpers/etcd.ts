/**
 * A real etcd for tests (design.md C15, docs/dependencies.md §5).
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
import { run, spawnTracked, stopChild, waitFor, isRunning } from './exec.js';

export interface EtcdFixture {
  /** Client URLs, e.g. ['http://127.0.0.1:41234']. */
  readonly endpoints: string[];
  /** True when this fixture started the server and can stop/restart it. */
  readonly controllable: boolean;
  /** A fresh, unique key prefix (flannel layout below it: `<prefix>/config`, `<prefix>/subnets/...`). */
  prefix(label?: string): string;
  /** Runs etcdctl against this server (inside its netns when it has one). */
  etcdctl(args: readonly string[]): Promise<string>;
  /** Stops the server, keeping its data so `start()` resumes with the same state. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again after `kill()` (same ports, same data). */
  start(): Promise<void>;
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
