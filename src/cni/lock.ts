/**
 * The lock on a network's state directory across processes (docs/cni-contract.md A2: no two operations for
 * one container at once; GC is exclusive with ADD/DEL). Standalone plugin processes, and weftd serving
 * the shim, all take flock(2) locks on files in `<dataDir>/<network>/`:
 *   `.lock`          shared for ADD, DEL and CHECK; exclusive for GC
 *   `.lock-<xx>`     exclusive for ADD, DEL and CHECK of the attachments that hash to slot xx (256 slots)
 * always in that order, so no two holders wait on each other. The slot files are fixed and never removed
 * (no unlink race); two attachments sharing a slot only run one after the other. flock locks belong to the
 * open file: the kernel drops them when the holder dies, so a crashed process never holds one for ever.
 *
 * Node has no flock(2). The standalone plugin (node built-ins only) lets util-linux's `flock` take the
 * lock on a descriptor it inherits from this process (`flock -x 3`): the lock stays with the shared open
 * file after that child exits, until this process closes it or dies. weftd uses its native addon's
 * non-blocking flock and polls (src/daemon/cni-server.ts), which costs its event loop nothing; calls
 * inside weftd are ordered by src/daemon/cni-locks.ts first, so these locks only wait for other processes.
 */
import * as fs from 'node:fs';
import type { CmdContext, CniDeps } from './deps.js';
import { CniCode, CniError } from './errors.js';
import { StateStore } from './state.js';

/** Takes a flock(2) lock on `fd` (shared or exclusive) within `timeoutMs`; rejects otherwise. */
export type Flock = (fd: number, exclusive: boolean, timeoutMs: number) => Promise<void>;

/** How long a call waits for the lock: longer than any holder can run (ADD waits ≤ 300 s for subnet.env). */
export const LOCK_WAIT_MS = 10 * 60 * 1000;

const SLOTS = 256;

/** The `afterAnswer` task that releases a call's lock (in-process.ts runs it at once when it is alone). */
export const RELEASE_LOCK = 'releasing the state lock';

export interface HeldLock {
  release(): void;
}

/** The lock file of the attachment's slot (FNV-1a of `<containerID>@<ifname>`). */
export function slotName(containerID: string, ifname: string): string {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(`${containerID}@${ifname}`)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return `.lock-${(h % SLOTS).toString(16).padStart(2, '0')}`;
}

/**
 * Takes the locks the command needs (none for VERSION and STATUS). A lock file that cannot be created
 * fails ADD (it could not store its state there either) and is logged and skipped by the others: DEL
 * must work on a host where the state directory cannot be written, and nothing else can lock it then.
 */
export async function lockCall(ctx: CmdContext, deps: CniDeps): Promise<HeldLock | undefined> {
  const { env, conf } = ctx;
  if (env.command === 'VERSION' || env.command === 'STATUS') return undefined;
  const store = new StateStore(conf.dataDir);
  const files =
    env.command === 'GC'
      ? [{ name: '.lock', exclusive: true }]
      : [
          { name: '.lock', exclusive: false },
          { name: slotName(env.containerId, env.ifname), exclusive: true },
        ];
  const fds: number[] = [];
  const release = (): void => {
    for (const fd of fds.splice(0).reverse()) fs.closeSync(fd);
  };
  try {
    for (const f of files) {
      let fd: number;
      try {
        fd = store.openLockFile(conf.name, f.name);
      } catch (err) {
        if (env.command === 'ADD') throw err;
        deps.log.warn(`${env.command}: cannot open the state lock; running without it`, {
          error: (err as Error).message,
        });
        release();
        return undefined;
      }
      fds.push(fd);
      await deps.flock(fd, f.exclusive, LOCK_WAIT_MS);
    }
  } catch (err) {
    release();
    throw err;
  }
  return { release };
}

/** `flock` of util-linux: Debian's util-linux is Essential; runtimes may pass no PATH, so it is looked up. */
const FLOCK_PATHS = ['/usr/bin/flock', '/bin/flock'];

/**
 * The standalone plugin's Flock: util-linux's `flock -w <s> -s|-x 3` on a duplicate of `fd` (the same open
 * file), which keeps the lock after it exits. Exit 1 is its timeout.
 */
export const utilFlock: Flock = async (fd, exclusive, timeoutMs) => {
  const bin = FLOCK_PATHS.find((p) => fs.existsSync(p));
  if (bin === undefined)
    throw new CniError(
      CniCode.IoFailure,
      `cannot lock the CNI state: no flock program (looked in ${FLOCK_PATHS.join(', ')})`,
      'install util-linux',
    );
  const { spawn } = await import('node:child_process');
  const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const child = spawn(bin, ['-w', secs, exclusive ? '-x' : '-s', '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).catch((err: unknown) => {
    throw new CniError(CniCode.IoFailure, `cannot run ${bin}: ${(err as Error).message}`);
  });
  if (code === 0) return;
  if (code === 1) throw lockTimeout(timeoutMs);
  throw new CniError(
    CniCode.IoFailure,
    `cannot lock the CNI state: ${bin} exited ${String(code)}: ${stderr.trim()}`,
  );
};

/**
 * A Flock over a non-blocking try (weftd: the native addon's flock(2) with LOCK_NB): polls with backoff
 * (1 ms doubling to 50 ms) until the deadline.
 */
export function pollingFlock(
  tryLock: (fd: number, exclusive: boolean) => boolean,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Flock {
  const attempt = (fd: number, exclusive: boolean): boolean => {
    try {
      return tryLock(fd, exclusive);
    } catch (err) {
      throw new CniError(CniCode.IoFailure, `cannot lock the CNI state: ${(err as Error).message}`);
    }
  };
  return async (fd, exclusive, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (let wait = 1; !attempt(fd, exclusive); wait = Math.min(50, wait * 2)) {
      if (Date.now() >= deadline) throw lockTimeout(timeoutMs);
      await sleep(wait);
    }
  };
}

const lockTimeout = (ms: number): CniError =>
  new CniError(
    CniCode.TryAgainLater,
    `another CNI call held this network's state lock for ${Math.round(ms / 1000)} s`,
    'retry; if it persists, find the weft or weftd process that hangs (its delegate is killed after 60 s)',
  );
