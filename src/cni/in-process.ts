/**
 * The plugin run inside weftd (src/daemon/cni-server.ts) for one call the shim (cni-shim/) relayed: the
 * same dispatcher as the standalone plugin (main.ts); `invoke` runs the delegates (weftd: through the
 * shim, in the caller's context and environment); the log lines the standalone plugin would write to
 * stderr are collected for the shim to replay. stdout and the exit code are byte-for-byte main.ts's; the
 * state bookkeeping the answer does not depend on is handed back (`later`) for weftd to run once the
 * answer is out (CniDeps.afterAnswer).
 */
import { realDeps } from './deps.js';
import type { Invoker } from './invoke.js';
import { runPlugin } from './dispatch.js';
import { RELEASE_LOCK, type Flock } from './lock.js';
import { stderrLog } from './log.js';

export interface InProcessResult {
  readonly stdout: string;
  readonly stderr: Buffer;
  readonly exitCode: number;
  /** Bookkeeping the call left for after its answer (CniDeps.afterAnswer): run it with runLater. */
  readonly later: readonly LaterTask[];
}

export interface LaterTask {
  readonly what: string;
  readonly run: () => Promise<void> | void;
}

/** stderr kept per call; more is cut (the tail is dropped, with a note). */
export const MAX_STDERR_BYTES = 1 << 20;

/**
 * Runs one CNI call; never throws. `stdin` may be one byte over MAX_STDIN_BYTES (then code 5, as
 * main.ts: runPlugin). `callerPid`: the relaying shim's, to see CNI_NETNS as the runtime does (CniDeps.callerPid).
 * `flock`: how the state lock is taken (CniDeps.flock; weftd's native one). The lock is released by the
 * last `later` task, or at once when the call left nothing else for later.
 */
export async function runInProcess(
  envVars: Readonly<Record<string, string | undefined>>,
  stdin: Buffer,
  invoke: Invoker,
  callerPid?: number,
  flock?: Flock,
): Promise<InProcessResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  const collect = (c: Buffer): void => {
    if (size + c.length > MAX_STDERR_BYTES) {
      if (!cut) chunks.push(Buffer.from('\n[weftd: stderr cut at 1 MiB]\n'));
      cut = true;
      return;
    }
    size += c.length;
    chunks.push(c);
  };
  const log = stderrLog(envVars['WEFT_CNI_DEBUG'] === '1', (s) => collect(Buffer.from(s)));
  const later: LaterTask[] = [];
  const deps = realDeps(log, {
    invoke,
    afterAnswer: (what, run) => later.push({ what, run }),
    ...(callerPid !== undefined ? { callerPid } : {}),
    ...(flock !== undefined ? { flock } : {}),
  });
  const outcome = await runPlugin(envVars, stdin, deps);
  if (later.length === 1 && later[0]!.what === RELEASE_LOCK) void later.pop()!.run();
  return {
    stdout: outcome.stdout,
    stderr: Buffer.concat(chunks),
    exitCode: outcome.exitCode,
    later,
  };
}

/**
 * Runs a call's `later` tasks in order; a failure goes to `onError`. Never throws. A task's promise (a
 * state file's background fsync) is not waited for, exactly as the standalone plugin does not wait.
 */
export function runLater(
  tasks: readonly LaterTask[],
  onError: (what: string, err: unknown) => void,
): void {
  for (const t of tasks) {
    try {
      t.run()?.catch((err: unknown) => onError(t.what, err));
    } catch (err) {
      onError(t.what, err);
    }
  }
}
