/**
 * The plugin run inside weftd (src/daemon/cni-server.ts) for one call the shim (cni-shim/) relayed: the
 * same dispatcher as the standalone plugin (main.ts); `invoke` runs the delegates (weftd: through the
 * shim, in the caller's context and environment); the log lines the standalone plugin would write to
 * stderr are collected for the shim to replay. stdout and the exit code are byte-for-byte main.ts's.
 */
import { realDeps } from './deps.js';
import type { Invoker } from './invoke.js';
import { runPlugin } from './dispatch.js';
import { CniCode, CniError, toErrorJson } from './errors.js';
import { stderrLog } from './log.js';
import { MAX_STDIN_BYTES } from './netconf.js';
import { LATEST_VERSION } from './versions.js';

export interface InProcessResult {
  readonly stdout: string;
  readonly stderr: Buffer;
  readonly exitCode: number;
}

/** stderr kept per call; more is cut (the tail is dropped, with a note). */
export const MAX_STDERR_BYTES = 1 << 20;

/** Runs one CNI call; never throws. `stdin` may be one byte over MAX_STDIN_BYTES (then code 5, as main.ts). */
export async function runInProcess(
  envVars: Readonly<Record<string, string | undefined>>,
  stdin: Buffer,
  invoke: Invoker,
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
  const stderr = (): Buffer => Buffer.concat(chunks);
  if (stdin.length > MAX_STDIN_BYTES) {
    const e = new CniError(CniCode.IoFailure, 'stdin is too large');
    return {
      stdout: JSON.stringify(toErrorJson(e, LATEST_VERSION)) + '\n',
      stderr: stderr(),
      exitCode: 1,
    };
  }
  const log = stderrLog(envVars['WEFT_CNI_DEBUG'] === '1', (s) => collect(Buffer.from(s)));
  const outcome = await runPlugin(envVars, stdin, realDeps(log, { invoke }));
  return { stdout: outcome.stdout, stderr: stderr(), exitCode: outcome.exitCode };
}
