/**
 * Helpers for driving the built `weft` plugin like a runtime does: installed by `scripts/install-cni.mjs`
 * into a temp CNI bin dir (`weft` = the C shim that hands calls to weftd, `weft-full` = the standalone
 * plugin the shim falls back to), executed directly inside a test netns that plays the host, with a clean
 * environment holding only PATH and the CNI_* variables; and a real weftd serving the CNI socket there.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { run, spawnTracked, stopChild, waitFor } from '../../helpers/exec.js';
import { createNetns, deleteNetns, uniquePrefix } from '../../helpers/netns.js';

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

/** One scenario of a CniHost: its own dir with subnet.env, weft's state dir and host-local's dir. */
export interface CniScenario {
  readonly subnetFile: string;
  readonly dataDir: string;
  readonly ipamDir: string;
  /** The netconf (network `weftnet`) in `cniVersion`, with `extra` keys added. */
  conf(cniVersion: string, extra?: Record<string, unknown>): string;
  /**
   * The attachments' state files, without the `.<name>.<pid>.tmp` of a write in flight: behind weftd
   * the state with the result is written just after the answer (src/cni/add.ts), so a listing right
   * after ADD returns may catch its temp file beside the first one.
   */
  stateFiles(): string[];
  /** host-local's address reservations. */
  ipFiles(): string[];
}

/** A test netns that plays the host for the installed plugin; filled in by useCniHost's beforeAll. */
export interface CniHost {
  /** The temp dir holding the scenarios (and weftd's files). */
  readonly tmp: string;
  readonly binDir: string;
  readonly hostNs: string;
  /** The weftd serving the shim (undefined for the standalone plugin). */
  readonly weftd: CniWeftd | undefined;
  /** A new container netns (deleted by the afterAll). */
  container(): Promise<string>;
  /** Runs the plugin in the host netns (callPlugin); `id` and `ns` give CNI_CONTAINERID and CNI_NETNS. */
  call(
    command: string,
    stdin: string,
    o?: { id?: string; ns?: string; env?: Record<string, string | undefined> },
  ): Promise<CniCall>;
  /**
   * A fresh scenario dir `<tmp>/s<n>` with `subnetEnv` as its subnet.env (none when null); its netconf
   * has the bridge `weftbr0` and waits 0.5 s for subnet.env unless `o` says otherwise.
   */
  scenario(
    subnetEnv: string | null,
    o?: { bridge?: string; subnetWaitSeconds?: number },
  ): CniScenario;
}

/**
 * Registers the set-up of the plugin tests that drive `plugin` in a host netns, and returns the host:
 * the beforeAll makes a temp dir (named after `tmpName`), installs the plugin, creates the host netns and,
 * `withWeftd`, starts weftd serving the shim there. The afterAll stops weftd and removes the container
 * netns, the host netns and both dirs: also what a set-up that failed half-way made.
 */
export function useCniHost(
  tmpName: string,
  plugin: 'weft' | 'weft-full',
  withWeftd: boolean,
  setupTimeoutMs?: number,
): CniHost {
  let prefix = '';
  let scenarios = 0;
  let containers = 0; // counted when a call starts: tests create containers in parallel
  const namespaces: string[] = [];
  const host = {
    weftd: undefined as CniWeftd | undefined,
    async container(): Promise<string> {
      const ns = await createNetns(`${prefix}c${++containers}`);
      namespaces.push(ns);
      return ns;
    },
    call: (command, stdin, o = {}) =>
      callPlugin({
        hostNs: host.hostNs,
        binDir: host.binDir,
        plugin,
        command,
        stdin,
        ...(o.id ? { containerId: o.id } : {}),
        ...(o.ns ? { netns: o.ns } : {}),
        ...(o.env ? { env: o.env } : {}),
      }),
    scenario(subnetEnv, o = {}) {
      const dir = join(host.tmp, `s${++scenarios}`);
      mkdirSync(dir, { recursive: true });
      const p = {
        subnetFile: join(dir, 'subnet.env'),
        dataDir: join(dir, 'state'),
        ipamDir: join(dir, 'ipam'),
      };
      if (subnetEnv !== null) writeFileSync(p.subnetFile, subnetEnv);
      const files = (d: string): string[] =>
        existsSync(join(d, 'weftnet')) ? readdirSync(join(d, 'weftnet')) : [];
      return {
        ...p,
        conf: (cniVersion, extra = {}) =>
          JSON.stringify({
            cniVersion,
            name: 'weftnet',
            type: 'weft',
            subnetFile: p.subnetFile,
            dataDir: p.dataDir,
            subnetWaitSeconds: o.subnetWaitSeconds ?? 0.5,
            ipam: { dataDir: p.ipamDir },
            delegate: { bridge: o.bridge ?? 'weftbr0' },
            ...(host.weftd ? { daemonSocket: host.weftd.socket } : {}),
            ...extra,
          }),
        stateFiles: () => files(p.dataDir).filter((f) => !f.startsWith('.')),
        ipFiles: () => files(p.ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)),
      };
    },
  } as { -readonly [K in keyof CniHost]: CniHost[K] };
  beforeAll(async () => {
    host.tmp = mkdtempSync(join(tmpdir(), tmpName));
    host.binDir = await installPlugin();
    prefix = uniquePrefix();
    host.hostNs = await createNetns(`${prefix}h`);
    if (withWeftd) host.weftd = await startCniWeftd(host.hostNs, host.tmp);
  }, setupTimeoutMs);
  afterAll(async () => {
    await host.weftd?.stop();
    for (const ns of namespaces) await deleteNetns(ns);
    if (host.hostNs) await deleteNetns(host.hostNs);
    if (host.tmp) rmSync(host.tmp, { recursive: true, force: true });
    if (host.binDir) rmSync(host.binDir, { recursive: true, force: true });
  });
  return host;
}
