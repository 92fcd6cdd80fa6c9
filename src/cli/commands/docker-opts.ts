/**
 * `weftctl docker-opts [--output=<file>] [--wait=<s>]`: subnet.env as dockerd's options, in the
 * env-file format of flannel's mk-docker-opts.sh (src/cli/docker-opts.ts; docs/docker.md), on stdout
 * or written atomically to a file (the docker.service drop-in's EnvironmentFile). `--wait` waits up to
 * that many seconds for weftd to write subnet.env (a drop-in may start before weftd is ready).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WeftError, hasCode } from '../../errors.js';
import { writeFileAtomic } from '../../files/atomic-write.js';
import { dockerOptsFromSubnetEnv } from '../docker-opts.js';
import { EXIT } from '../exit-codes.js';
import type { CommandContext, CommandOutput } from './context.js';

async function readWithWait(file: string, waitS: number, ctx: CommandContext): Promise<string> {
  const deadline = Date.now() + waitS * 1000;
  for (;;) {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() >= deadline) {
        throw new WeftError(
          'E_IO',
          `cannot read ${file}: ${(err as Error).message}` +
            ((err as NodeJS.ErrnoException).code === 'ENOENT'
              ? '; is weftd running and ready (systemctl status weftd)? --wait=<s> waits for it'
              : ''),
        );
      }
      ctx.progress(`waiting for ${file}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function dockerOptsCommand(ctx: CommandContext): Promise<CommandOutput> {
  const { subnetFile, output, wait } = ctx.options;
  const text = await readWithWait(subnetFile, wait, ctx);
  let opts;
  try {
    opts = dockerOptsFromSubnetEnv(text, subnetFile);
  } catch (err) {
    if (hasCode(err, 'E_CONFIG_INVALID'))
      return {
        exitCode: EXIT.problem,
        json: { ok: false, error: { code: 'E_CONFIG_INVALID', message: (err as Error).message } },
        human: `${(err as Error).message}\n`,
      };
    throw err;
  }
  const json = {
    ok: true,
    bip: opts.bip,
    ipMasq: opts.ipMasq,
    mtu: opts.mtu,
    output: output ?? null,
  };
  if (output !== null && output !== '-') {
    await mkdir(dirname(output), { recursive: true, mode: 0o755 });
    await writeFileAtomic(output, opts.envFile, 0o644);
    return { exitCode: EXIT.ok, json, human: '' };
  }
  return { exitCode: EXIT.ok, json, human: opts.envFile };
}
