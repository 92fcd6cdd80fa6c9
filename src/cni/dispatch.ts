/**
 * The CNI dispatcher (docs/design.md C13, cni pkg/skel): validates env and stdin, checks the version against
 * the command's minimum, routes to the command and turns the outcome into stdout text and an exit code.
 * Pure with respect to the process: main.ts does the actual reading and writing.
 */
import { cmdAdd } from './add.js';
import { cmdCheck } from './check.js';
import { cmdDel } from './del.js';
import { afterAnswer, type CmdContext, type CniDeps } from './deps.js';
import { parseEnv } from './env.js';
import { CniCode, CniError, toErrorJson } from './errors.js';
import { cmdGC } from './gc.js';
import { lockCall, RELEASE_LOCK } from './lock.js';
import { configVersion, decodeStdin, isObject, MAX_STDIN_BYTES, parseNetConf } from './netconf.js';
import { cmdStatus } from './status.js';
import {
  isSupportedVersion,
  LATEST_VERSION,
  requireVersion,
  SUPPORTED_VERSIONS,
} from './versions.js';

export interface Outcome {
  /** What goes on stdout (already serialised, newline-terminated), or '' for nothing. */
  readonly stdout: string;
  readonly exitCode: number;
}

/**
 * Runs one invocation; never throws. `stdin` may be one byte over MAX_STDIN_BYTES (main.ts and weftd
 * read at most that much): code 5, whatever the command. Exported for tests that drive the dispatcher.
 */
export async function runPlugin(
  envVars: Readonly<Record<string, string | undefined>>,
  stdin: Buffer,
  deps: CniDeps,
): Promise<Outcome> {
  let replyVersion: string = LATEST_VERSION;
  if (stdin.length > MAX_STDIN_BYTES)
    return failed(new CniError(CniCode.IoFailure, 'stdin is too large'), replyVersion);
  try {
    const probe = safeVersion(stdin);
    if (probe !== undefined && /^[0-9]+\.[0-9]+\.[0-9]+$/.test(probe)) replyVersion = probe;
    const env = parseEnv(envVars);
    if (env.command === 'VERSION') {
      const cniVersion = isSupportedVersion(probe) ? probe : LATEST_VERSION;
      return ok({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
    }
    const raw = decodeStdin(stdin);
    const minimum =
      env.command === 'CHECK'
        ? '0.4.0'
        : env.command === 'STATUS' || env.command === 'GC'
          ? '1.1.0'
          : undefined;
    const version = requireVersion(configVersion(raw), env.command, minimum);
    const ctx: CmdContext = { env, conf: parseNetConf(raw), version };
    if (env.command === 'ADD' && deps.addUnavailable !== undefined)
      throw daemonDown(deps.addUnavailable);
    const held = await lockCall(ctx, deps);
    try {
      if (env.command === 'ADD') return ok(await cmdAdd(ctx, deps));
      // the other commands print nothing on success
      const commands = { DEL: cmdDel, CHECK: cmdCheck, STATUS: cmdStatus, GC: cmdGC };
      await commands[env.command](ctx, deps);
      return { stdout: '', exitCode: 0 };
    } finally {
      // after the call's own bookkeeping (weftd runs both once the answer is out, in this order)
      if (held) afterAnswer(deps, RELEASE_LOCK, held.release);
    }
  } catch (err) {
    if (!(err instanceof CniError))
      deps.log.warn('unexpected error', { error: (err as Error)?.stack ?? String(err) });
    else deps.log.debug('error', { code: err.code, msg: err.message });
    return failed(err, replyVersion);
  }
}

/** The spec's error JSON for `err` on stdout, exit 1 (also main.ts's when stdin cannot be read). */
export const failed = (err: unknown, version: string): Outcome => ({
  stdout: JSON.stringify(toErrorJson(err, version)) + '\n',
  exitCode: 1,
});

/** ADD through the shim while weftd cannot serve it: the spec's "try again later". */
const daemonDown = (reason: string): CniError =>
  new CniError(
    CniCode.TryAgainLater,
    `weftd is not serving CNI requests on this host: ${reason}`,
    'ADD runs inside weftd: start weftd (or wait until it has restarted) and retry; DEL works without it',
  );

const ok = (v: unknown): Outcome => ({ stdout: JSON.stringify(v) + '\n', exitCode: 0 });

/** `cniVersion` from stdin if it is a JSON object carrying one; never throws. */
function safeVersion(stdin: Buffer): string | undefined {
  try {
    const v: unknown = JSON.parse(stdin.toString('utf8'));
    return isObject(v) && typeof v['cniVersion'] === 'string' ? v['cniVersion'] : undefined;
  } catch {
    return undefined;
  }
}
