/**
 * Helpers for driving the built `weft` plugin like a runtime does: installed by `scripts/install-cni.mjs`
 * into a temp CNI bin dir (`weft` = the C shim that hands calls to weftd, `weft-full` = the standalone
 * plugin the shim falls back to), executed directly inside a test netns that plays the host, with a clean
 * environment holding only PATH and the CNI_* variables; and a real weftd serving the CNI socket there.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, spawnTracked, stopChild, waitFor } from '../../helpers/exec.js';

export const REPO = resolve(import.meta.dirname, '../../..');

export interface CniCall {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty. */
  json: Record<string, unknown> | undefined;
  ms: number;
}

/** Builds and installs the plugin into a fresh temp bin dir; returns that dir. */
export async function installPlugin(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-bin-'));
  await run(process.execPath, [join(REPO, 'scripts', 'install-cni.mjs'), dir], {
    timeoutMs: 60_000,
  });
  return dir;
}

export interface CniWeftd {
  /** weftd's CNI socket (put it into the netconf as "daemonSocket"). */
  readonly socket: string;
  readonly child: ChildProcess;
  /** weftd's stderr so far. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts the real weftd (bin/weftd.js) inside `hostNs` with its CNI socket at `<dir>/cni.sock`, and waits
 * for the socket. Its etcd endpoint is closed on purpose (127.0.0.1:9 in the test netns): weftd then
 * keeps waiting for its network config and never touches the netns' dataplane, while it serves CNI calls
 * as it does at any time of its life (the tests write subnet.env themselves).
 */
export async function startCniWeftd(
  hostNs: string,
  dir: string,
  socket = join(dir, 'cni.sock'),
): Promise<CniWeftd> {
  await run('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
  const child = spawnTracked(
    process.execPath,
    [
      join(REPO, 'bin', 'weftd.js'),
      '--etcd-endpoints=http://127.0.0.1:9',
      `--subnet-file=${join(dir, 'weftd-subnet.env')}`,
      `--state-dir=${join(dir, 'weftd-state')}`,
      `--cni-socket=${socket}`,
    ],
    { ns: hostNs },
  );
  let logs = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (logs.length < 1 << 20) logs += b.toString();
  });
  child.stdout?.resume();
  try {
    const state = await waitFor(
      `weftd's CNI socket ${socket}`,
      () =>
        logs.includes('CNI socket off')
          ? 'off'
          : logs.includes('CNI socket listening') && existsSync(socket) && 'on',
      20_000,
    );
    if (state === 'off') throw new Error('weftd did not serve its CNI socket');
  } catch (err) {
    await stopChild(child);
    throw new Error(`${(err as Error).message}; weftd logs:\n${logs}`);
  }
  return { socket, child, logs: () => logs, stop: () => stopChild(child) };
}

export interface CallOptions {
  hostNs: string;
  binDir: string;
  /** The installed file to run: `weft` (the shim, default) or `weft-full` (the standalone plugin). */
  plugin?: 'weft' | 'weft-full';
  command: string;
  stdin: string;
  containerId?: string;
  /** container netns NAME (becomes /var/run/netns/<name>) */
  netns?: string;
  ifname?: string;
  /** Extra variables; a value of undefined removes a default one. */
  env?: Record<string, string | undefined>;
}

export async function callPlugin(o: CallOptions): Promise<CniCall> {
  const vars: Record<string, string | undefined> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    CNI_COMMAND: o.command,
    CNI_CONTAINERID: o.containerId,
    CNI_NETNS: o.netns === undefined ? undefined : `/var/run/netns/${o.netns}`,
    CNI_IFNAME: o.ifname ?? (o.containerId === undefined ? undefined : 'eth0'),
    CNI_PATH: `${o.binDir}:/usr/lib/cni`,
    ...o.env,
  };
  const envArgs = Object.entries(vars)
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const t0 = performance.now();
  const r = await run(
    'ip',
    ['netns', 'exec', o.hostNs, 'env', '-i', ...envArgs, join(o.binDir, o.plugin ?? 'weft')],
    {
      input: o.stdin,
      allowFail: true,
      timeoutMs: 60_000,
    },
  );
  const ms = performance.now() - t0;
  let json: Record<string, unknown> | undefined;
  if (r.stdout.trim() !== '') json = JSON.parse(r.stdout) as Record<string, unknown>;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, json, ms };
}

/** `ip -j` inside a netns, parsed. */
export async function ipJson<T = Record<string, unknown>[]>(
  ns: string,
  args: string[],
): Promise<T> {
  const r = await run('ip', ['-n', ns, '-j', ...args]);
  return JSON.parse(r.stdout || '[]') as T;
}

/** The two ways a runtime reaches weft: the C shim handing the call to weftd, or the full plugin alone. */
export const CNI_MODES = [
  { mode: 'shim → weftd', plugin: 'weft', weftd: true },
  { mode: 'standalone weft-full', plugin: 'weft-full', weftd: false },
] as const;
