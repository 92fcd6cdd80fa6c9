/**
 * Small process helpers for tests: run a command (throwing with its stderr on failure), run one inside a
 * network namespace, and spawn long-running children that are tracked so the leak check can prove they
 * were all stopped.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to completion; rejects with stdout/stderr in the message when it exits non-zero. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && !opts.allowFail) {
          reject(
            new Error(
              `${cmd} ${args.join(' ')} failed (${code}): ${stderr.trim() || stdout.trim() || err.message}`,
            ),
          );
          return;
        }
        resolve({ stdout, stderr, code });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The arguments of a fixed command line, split at single spaces (no quoting: only for words without
 *  spaces, e.g. words(`-n ${ns} route add 10.5.0.0/16 via 198.18.0.254 dev eth0`)). */
export function words(line: string): string[] {
  return line.split(' ');
}

/** Runs a command inside network namespace `ns` (`ip netns exec`). */
export function nsRun(
  ns: string,
  cmd: string,
  args: readonly string[],
  opts: Parameters<typeof run>[2] = {},
): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

const tracked = new Set<ChildProcess>();

/** Spawns a long-running child (optionally inside `ns`) and tracks it for `stopAllTracked`/leak checks. */
export function spawnTracked(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { ns?: string } = {},
): ChildProcess {
  const { ns, ...spawnOpts } = opts;
  const argv = ns ? ['netns', 'exec', ns, cmd, ...args] : [...args];
  const child = spawn(ns ? 'ip' : cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  return child;
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (isRunning(child)) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

export function trackedChildren(): ChildProcess[] {
  return [...tracked].filter(isRunning);
}

export async function stopAllTracked(): Promise<void> {
  await Promise.all(trackedChildren().map((c) => stopChild(c)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs = 10_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastErr instanceof Error ? `: ${lastErr.message}` : ''),
      );
    }
    await sleep(intervalMs);
  }
}
