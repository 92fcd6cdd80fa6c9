// weftctl entrypoint (docs/design.md C12): argv → runCli → print → exit code. The only place that exits.
import { runCli } from './run.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > 1 << 20) throw new Error('stdin is larger than 1 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// No top-level await: the packaged single executable runs this module as CommonJS (docs/design.md C18).
void runCli(process.argv.slice(2), {
  env: process.env,
  stdoutIsTty: process.stdout.isTTY === true,
  stderrIsTty: process.stderr.isTTY === true,
  writeErr: (t) => process.stderr.write(t),
  readStdin,
}).then((result) => process.stdout.write(result.stdout, () => process.exit(result.exitCode)));
