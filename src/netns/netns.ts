/**
 * Network namespaces (docs/design.md C14). A namespace is per *thread*, and Node runs helper threads, so weft
 * never stays switched across an `await`: `inNetns` enters, runs a synchronous function (typically one
 * that creates a netlink socket, which then stays bound to that namespace) and switches back before
 * returning. Long or async work in another namespace runs in a child process (`ip netns exec`).
 */
import { closeSync, openSync } from 'node:fs';
import { WeftError } from '../errors.js';
import { loadNative } from '../native/binding.js';

const CLONE_NEWNET = 0x40000000;
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,200}$/;

export class NetnsNotFoundError extends WeftError {
  constructor(path: string, cause?: unknown) {
    super('E_NETNS_NOT_FOUND', `network namespace ${path} does not exist`, { cause });
  }
}

/** `/var/run/netns/<name>` for a named netns; absolute paths (e.g. /proc/<pid>/ns/net) pass through. */
export function netnsPath(nameOrPath: string): string {
  if (nameOrPath.startsWith('/')) return nameOrPath;
  if (!NETNS_NAME.test(nameOrPath) || nameOrPath === '.' || nameOrPath === '..') {
    throw new TypeError(`invalid netns name ${JSON.stringify(nameOrPath)}`);
  }
  return `/var/run/netns/${nameOrPath}`;
}

function openNs(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NetnsNotFoundError(path, err);
    throw err;
  }
}

/**
 * Runs `fn` synchronously with the main thread inside netns `nameOrPath`, then switches back (also when
 * `fn` throws). `fn` must not return a promise: anything async would run in the wrong namespace.
 */
export function inNetns<T>(nameOrPath: string, fn: () => T): T {
  const native = loadNative();
  const target = openNs(netnsPath(nameOrPath));
  const home = openSync(`/proc/${process.pid}/task/${process.pid}/ns/net`, 'r');
  try {
    native.setns(target, CLONE_NEWNET);
    try {
      const out = fn();
      if (out instanceof Promise) throw new TypeError('inNetns callback must be synchronous');
      return out;
    } finally {
      native.setns(home, CLONE_NEWNET);
    }
  } finally {
    closeSync(target);
    closeSync(home);
  }
}
