/**
 * Helpers for driving the built `weft` plugin like a runtime does: the one-file bundle installed by
 * `scripts/install-cni.mjs` into a temp CNI bin dir, executed directly (shebang) inside a test netns that
 * plays the host, with a clean environment holding only PATH and the CNI_* variables.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../../helpers/exec.js';

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

export interface CallOptions {
  hostNs: string;
  binDir: string;
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
    ['netns', 'exec', o.hostNs, 'env', '-i', ...envArgs, join(o.binDir, 'weft')],
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
