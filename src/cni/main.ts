/**
 * The `weft` CNI plugin's entrypoint (docs/design.md C13): reads stdin and the environment, runs the dispatcher
 * (dispatch.ts), writes its result or the spec's error JSON on stdout and sets the exit code. The only
 * module touching stdout or the exit code; logs go to stderr. Loads nothing beyond node: built-ins and
 * src/cni (bundled into one file by scripts/build-cni.mjs).
 */
import { readSync } from 'node:fs';
import { realDeps } from './deps.js';
import { failed, runPlugin } from './dispatch.js';
import { CniCode, CniError } from './errors.js';
import { stderrLog } from './log.js';
import { MAX_STDIN_BYTES } from './netconf.js';
import { LATEST_VERSION } from './versions.js';

/**
 * All of stdin, but never more than MAX_STDIN_BYTES + 1 bytes: an endless or huge stdin (a runaway
 * writer, /dev/zero) is answered with code 5 instead of exhausting memory. Synchronous reads are the
 * fast path; a non-blocking stdin (EAGAIN) is read as a stream, with the same bound.
 */
async function readStdin(): Promise<Buffer> {
  const limit = MAX_STDIN_BYTES + 1;
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = readSync(0, buf, 0, Math.min(buf.length, limit - total), null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
      if (total >= limit) break;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    for await (const c of process.stdin) {
      chunks.push(c as Buffer);
      total += (c as Buffer).length;
      if (total >= limit) break;
    }
  }
  return Buffer.concat(chunks); // more than MAX_STDIN_BYTES: runPlugin answers code 5
}

async function main(): Promise<void> {
  const log = stderrLog(process.env['WEFT_CNI_DEBUG'] === '1');
  let stdin: Buffer;
  try {
    stdin =
      process.env['CNI_COMMAND'] === 'VERSION' && process.stdin.isTTY
        ? Buffer.alloc(0)
        : await readStdin();
  } catch (err) {
    const e = new CniError(CniCode.IoFailure, `cannot read stdin: ${(err as Error).message}`);
    process.stdout.write(failed(e, LATEST_VERSION).stdout);
    process.exitCode = 1;
    return;
  }
  // Set by cni-shim/weft-cni-shim.c when it runs this full plugin because weftd could not serve the call.
  const viaShim = process.env['WEFT_CNI_SHIM_FALLBACK'];
  const deps = viaShim === undefined ? realDeps(log) : realDeps(log, { addUnavailable: viaShim });
  const outcome = await runPlugin(process.env, stdin, deps);
  if (outcome.stdout !== '') process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}

void main();
