/**
 * Process helpers for the demo: run a command to completion (throwing with its stderr), run one inside a
 * network namespace, start a detached daemon whose PID is recorded so `down` can stop exactly that
 * process, and print numbered progress steps with their duration.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  allowFail?: boolean;
}

/** Runs `cmd` to completion; rejects naming the command and its stderr unless `allowFail`. */
export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: o.timeoutMs ?? 30_000, maxBuffer: 16 << 20, env: o.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && !o.allowFail) {
          const why = stderr.trim() || stdout.trim() || err.message;
          reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${why.slice(-1500)}`));
          return;
        }
        resolve({ stdout, stderr, code });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** `ip netns exec <ns> cmd args…` */
export function nsRun(
  ns: string,
  cmd: string,
  args: readonly string[],
  o: RunOptions = {},
): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], o);
}

/**
 * Starts `cmd` inside `ns` as a detached daemon (own session, survives this process), output appended
 * to `logFile`. `ip netns exec` execs the command, so the returned PID is the daemon's own.
 */
export function spawnDaemon(
  ns: string,
  cmd: string,
  args: readonly string[],
  logFile: string,
): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${cmd} in ${ns}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** True when `pid` is alive and its command line contains `marker` (guards against PID reuse). */
export function isOurProcess(pid: number, marker: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown from a `waitFor` probe to stop waiting at once (the awaited thing can no longer happen). */
export class GiveUp extends Error {}

/**
 * Polls `fn` until truthy; throws `what` with the last error after `timeoutMs`, or at once when the
 * probe throws GiveUp.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/** Runs `fns` with at most `limit` in flight; results in input order. */
export async function pool<T>(limit: number, fns: readonly (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array<T>(fns.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker));
  return out;
}

/** Numbered progress lines: `[3/9] Starting weftd on 3 hosts … ok (1.2 s)`. */
export class Steps {
  private n = 0;
  constructor(private readonly total: number) {}

  async step<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.n++;
    const t0 = Date.now();
    process.stdout.write(`[${this.n}/${this.total}] ${title} … `);
    try {
      const v = await fn();
      process.stdout.write(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      return v;
    } catch (err) {
      process.stdout.write('FAILED\n');
      throw err;
    }
  }
}
