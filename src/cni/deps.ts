/**
 * What the commands need from the outside world, injected (docs/design.md C13) so that unit tests can drive
 * the command logic with recording fakes while integration tests use the real plugins and kernel.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { CniEnv } from './env.js';
import { execInvoker, type Invoker } from './invoke.js';
import { nsenterInspector, type Inspector } from './inspect.js';
import type { CniLog } from './log.js';
import type { JsonObject, WeftNetConf } from './netconf.js';
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
  /**
   * Set when the shim could not reach weftd and ran this full plugin instead (the reason): ADD then
   * answers code 11, because ADD is served by weftd (README.md "CNI plugin").
   */
  readonly addUnavailable?: string;
}

/** One validated invocation. */
export interface CmdContext {
  readonly env: CniEnv;
  readonly conf: WeftNetConf;
  readonly version: CniVersion;
  readonly raw: JsonObject;
}

/**
 * The real world. `invoke` replaces the standalone exec of delegates (weftd: the CNI shim runs them);
 * `addUnavailable` see CniDeps.
 */
export function realDeps(
  log: CniLog,
  o: { invoke?: Invoker; addUnavailable?: string } = {},
): CniDeps {
  return {
    invoke: o.invoke ?? execInvoker,
    ...(o.addUnavailable !== undefined ? { addUnavailable: o.addUnavailable } : {}),
    inspect: nsenterInspector,
    log,
    readFile: (p) => readBoundedFile(p, MAX_SUBNET_ENV_BYTES),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
  };
}

/**
 * A hostile-file-safe read: undefined when `path` does not exist; throws unless it is (or a symlink
 * resolves to) a regular file, so a FIFO cannot block the plugin forever and a device cannot feed it
 * endless data; reads at most `maxBytes + 1` bytes (the parser rejects anything over `maxBytes`).
 */
export function readBoundedFile(path: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
