/**
 * The `weft` CNI plugin's entrypoint (design.md C13): reads stdin and the environment, runs the dispatcher
 * (dispatch.ts), writes its result or the spec's error JSON on stdout and sets the exit code. The only
 * module touching stdout or the exit code; logs go to stderr. Loads nothing beyond node: built-ins and
 * src/cni (bundled into one file by scripts/build-cni.mjs).
 */
import { readFileSync } from 'node:fs';
import { realDeps } from './deps.js';
import { runPlugin } from './dispatch.js';
import { CniCode, CniError, toErrorJson } from './errors.js';
import { stderrLog } from './log.js';
import { MAX_STDIN_BYTES } from './netconf.js';
import { LATEST_VERSION } from './versions.js';

/** All of stdin. readFileSync(0) is the fast path; a non-blocking stdin (EAGAIN) is read as a stream. */
async function readStdin(): Promise<Buffer> {
  let buf: Buffer;
  try {
    buf = readFileSync(0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    buf = Buffer.concat(chunks);
  }
  if (buf.length > MAX_STDIN_BYTES) throw new CniError(CniCode.IoFailure, 'stdin is too large');
  return buf;
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
    const e =
      err instanceof CniError
        ? err
        : new CniError(CniCode.IoFailure, `cannot read stdin: ${(err as Error).message}`);
    process.stdout.write(JSON.stringify(toErrorJson(e, LATEST_VERSION)) + '\n');
    process.exitCode = 1;
    return;
  }
  const outcome = await runPlugin(process.env, stdin, realDeps(log));
  if (outcome.stdout !== '') process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}

void main();
