/**
 * What the commands need from the outside world, injected (docs/design.md C13) so that unit tests can drive
 * the command logic with recording fakes while integration tests use the real plugins and kernel.
 */
import { readlinkSync } from 'node:fs';
import { readAtMostSync, withRegularFileSync } from '../files/read-regular.js';
import { isAccessDenied } from '../errors.js';
import { NS_LINK } from './host-netns.js';
import type { CniEnv } from './env.js';
import { execInvoker, type Invoker } from './invoke.js';
import { nsenterInspector, type Inspector } from './inspect.js';
import { utilFlock, type Flock } from './lock.js';
import type { CniLog } from './log.js';
import type { WeftNetConf } from './netconf.js';
import { MAX_SUBNET_ENV_BYTES } from '../lease/subnet-env.js';
import type { CniVersion } from './versions.js';

export interface CniDeps {
  readonly invoke: Invoker;
  readonly inspect: Inspector;
  readonly log: CniLog;
  /** File contents, or undefined when the file does not exist. */
  readonly readFile: (path: string) => string | undefined;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  /** Takes the state lock (lock.ts): util-linux's flock standalone, the native addon's in weftd. */
  readonly flock: Flock;
  /**
   * Set when the shim could not reach weftd and ran this full plugin instead (the reason): ADD then
   * answers code 11, because ADD is served by weftd (README.md "CNI plugin").
   */
  readonly addUnavailable?: string;
  /**
   * Where state bookkeeping the answer does not depend on runs: the state file with the ADD result, and
   * the last close of a state file DEL removed (the name is gone before the answer; state.ts remove).
   * Absent (the standalone plugin): at once, before the answer, so a failure is the call's failure.
   * weftd (src/daemon/cni-server.ts) runs the task right after it sent the answer, still holding the
   * container's lock, and logs a failure (see `afterAnswer` below). `what` names the task in that line.
   */
  readonly afterAnswer?: (what: string, task: () => Promise<void> | void) => void;
  /**
   * Set in weftd (src/daemon/cni-server.ts): the pid of the shim that relayed the call. weftd may run in
   * another mount namespace than the runtime (a systemd unit's, a package test's), where a netns bind
   * mount made after weftd started is not visible; a path the runtime gave (CNI_NETNS) is then looked
   * at through /proc/<pid>/root, as the runtime sees it (`callerPath`). Absent: the standalone plugin,
   * a child of the runtime, sees what it sees.
   */
  readonly callerPid?: number;
}

/** `path` (CNI_NETNS) as the caller sees it (CniDeps.callerPid); '' (no netns) stays ''. */
export function callerPath(callerPid: number | undefined, path: string): string {
  // 0: the shim's pid is not visible in weftd's pid namespace; the path is then taken as it is
  if (path === '' || callerPid === undefined || callerPid <= 0) return path;
  const root = `/proc/${callerPid}/root`;
  // This process may not look through `root` when the kernel's ptrace access check refuses it (EACCES)
  // to a root process whose capabilities are not a superset of the caller's, as weftd's under
  // weftd.service's CapabilityBoundingSet against a runtime's shim. Every lookup under it would fail and
  // the checks would pass the path unseen (the host's own netns included), so the path is then taken as
  // this process sees it: under the unit, a mount namespace that receives the host's mounts (/run/netns,
  // /proc).
  if (accessDenied(() => readlinkSync(root))) return path;
  if (path.startsWith('/')) return resolveInRoot(root, path);
  try {
    // relative to the caller's working directory, as the caller names it
    return resolveInRoot(root, `${readlinkSync(`/proc/${callerPid}/cwd`)}/${path}`);
  } catch {
    return path;
  }
}

/** True when `look` fails because this process may not look (EACCES/EPERM); false when it works. */
export function accessDenied(look: () => unknown): boolean {
  try {
    look();
    return false;
  } catch (err) {
    return isAccessDenied(err);
  }
}

/**
 * `path` resolved under `root` the way the caller's own lookup would: a symlink's absolute target
 * (`/var/run` → `/run` on Debian) restarts at `root`, not at this process' `/`, which the kernel's walk
 * through /proc/<pid>/root would do. A loop or too many links leaves the rest unresolved (the checks
 * then see a path that does not exist and let the delegate say why).
 */
function resolveInRoot(root: string, path: string): string {
  let rest = path.split('/').filter((p) => p !== '' && p !== '.');
  let done: string[] = [];
  for (let links = 0; rest.length > 0;) {
    const part = rest.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    let target: string | null;
    try {
      target = readlinkSync(`${root}/${[...done, part].join('/')}`);
    } catch {
      target = null; // not a symlink, or absent
    }
    // taken as it is: no symlink, or a /proc magic link (`/proc/<pid>/ns/net` reads `net:[4026…]`),
    // which only the kernel's own walk follows
    if (target === null || NS_LINK.test(target)) {
      done.push(part);
      continue;
    }
    if (++links > 40) return `${root}/${[...done, part, ...rest].join('/')}`;
    if (target.startsWith('/')) done = [];
    rest = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...rest];
  }
  return `${root}/${done.join('/')}`;
}

/**
 * Runs `task` where `deps` says (CniDeps.afterAnswer): at once, or handed to weftd to run once the
 * answer is out. Either way it runs before any later call for the same container. What a task leaves
 * undone when it fails after the answer (or weftd dies in between) is what a power loss can leave too
 * (state.ts): a state file without the ADD result (DEL still releases, with the stored delegate config;
 * CHECK then answers code 3).
 */
export function afterAnswer(deps: CniDeps, what: string, task: () => Promise<void> | void): void {
  if (deps.afterAnswer) {
    deps.afterAnswer(what, task);
    return;
  }
  // At once: a synchronous failure is the caller's; a late one (fsync) is only logged, as before.
  task()?.catch((err: unknown) =>
    deps.log.warn(`${what} did not complete`, { error: (err as Error).message }),
  );
}

/** One validated invocation. */
export interface CmdContext {
  readonly env: CniEnv;
  readonly conf: WeftNetConf;
  readonly version: CniVersion;
}

/**
 * The real world. `invoke` replaces the standalone exec of delegates (weftd: the CNI shim runs them);
 * `addUnavailable` and `afterAnswer` see CniDeps.
 */
export function realDeps(
  log: CniLog,
  o: Partial<
    Pick<CniDeps, 'invoke' | 'addUnavailable' | 'afterAnswer' | 'callerPid' | 'flock'>
  > = {},
): CniDeps {
  const { callerPid } = o;
  return {
    ...o,
    invoke: o.invoke ?? execInvoker,
    inspect:
      callerPid === undefined
        ? nsenterInspector
        : (netns, ifname) => nsenterInspector(callerPath(callerPid, netns), ifname),
    log,
    // hostile-file-safe: a FIFO cannot block the plugin, a device cannot feed it endless data; one
    // byte over the limit, so the parser rejects a larger file as such
    readFile: (p) => {
      try {
        return withRegularFileSync(p, (fd) =>
          readAtMostSync(fd, MAX_SUBNET_ENV_BYTES + 1).toString('utf8'),
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
    flock: o.flock ?? utilFlock,
  };
}
