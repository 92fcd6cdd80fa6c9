/**
 * What the commands need from the outside world, injected (design.md C13) so that unit tests can drive
 * the command logic with recording fakes while integration tests use the real plugins and kernel.
 */
import { readFileSync } from 'node:fs';
import type { CniEnv } from './env.js';
import { execInvoker, type Invoker } from './invoke.js';
import { nsenterInspector, type Inspector } from './inspect.js';
import type { CniLog } from './log.js';
import type { JsonObject, WeftNetConf } from './netconf.js';
import type { CniVersion } from './versions.js';

export interface CniDeps {
  readonly invoke: Invoker;
  readonly inspect: Inspector;
  readonly log: CniLog;
  /** File contents, or undefined when the file does not exist. */
  readonly readFile: (path: string) => string | undefined;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/** One validated invocation. */
export interface CmdContext {
  readonly env: CniEnv;
  readonly conf: WeftNetConf;
  readonly version: CniVersion;
  readonly raw: JsonObject;
}

export function realDeps(log: CniLog): CniDeps {
  return {
    invoke: execInvoker,
    inspect: nsenterInspector,
    log,
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    now: () => Date.now(),
  };
}
