/**
 * `weftctl docker-opts [--output=<file>] [--wait=<s>]`: subnet.env as dockerd's options, in the
 * env-file format of flannel's `mk-docker-opts.sh` (docs/docker.md): DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ,
 * DOCKER_OPT_MTU and the combined DOCKER_NETWORK_OPTIONS, on stdout or written atomically to a file (the
 * docker.service drop-in's EnvironmentFile). Docker's own masquerading is turned off when weftd
 * masquerades (FLANNEL_IPMASQ=true), as mk-docker-opts.sh does; subnet.env is hostile input. `--wait`
 * waits up to that many seconds for weftd to write subnet.env (a drop-in may start before weftd is ready).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, WeftError, hasCode } from '../../errors.js';
import { writeFileAtomic } from '../../files/atomic-write.js';
import { firstHost } from '../../ip/host-cidr.js';
import { readSubnetEnvFields } from '../../lease/subnet-env.js';
import { EXIT } from '../exit-codes.js';
import type { CommandContext, CommandOutput } from './context.js';

/** bip, ipMasq, mtu and the env file (mk-docker-opts.sh's KEY="value" lines); throws ConfigError naming
 *  the file and the missing or invalid key. */
export function dockerOptsFromSubnetEnv(text: string, file: string) {
  const p = readSubnetEnvFields(text);
  if (p.subnet === undefined) {
    throw new ConfigError(
      `${file} has no valid FLANNEL_SUBNET${p.problems.length ? ` (${p.problems.join('; ')})` : ''}: ` +
        'docker needs an IPv4 subnet from weftd; is weftd running with an IPv4 network?',
      { code: 'E_CONFIG_INVALID' },
    );
  }
  if (p.mtu === undefined) {
    throw new ConfigError(`${file} has no valid FLANNEL_MTU: is it weftd's subnet.env?`, {
      code: 'E_CONFIG_INVALID',
    });
  }
  const bip = `${firstHost(p.subnet)}/${p.subnet.prefix}`;
  // weftd masquerades the overlay's traffic itself: docker must not masquerade it a second time
  const ipMasq = p.ipMasq !== true;
  const opts = [`--bip=${bip}`, `--ip-masq=${ipMasq}`, `--mtu=${p.mtu}`];
  const envFile =
    [
      `DOCKER_OPT_BIP="${opts[0]}"`,
      `DOCKER_OPT_IPMASQ="${opts[1]}"`,
      `DOCKER_OPT_MTU="${opts[2]}"`,
      `DOCKER_NETWORK_OPTIONS="${opts.join(' ')}"`,
    ].join('\n') + '\n';
  return { bip, ipMasq, mtu: p.mtu, envFile };
}

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
