/**
 * `weftctl docker-opts [--output=<file>] [--wait=<s>]`: subnet.env as dockerd's options, in the
 * env-file format of flannel's `mk-docker-opts.sh` (docs/docker.md): DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ,
 * DOCKER_OPT_MTU and the combined DOCKER_NETWORK_OPTIONS, on stdout or written atomically to a file (the
 * docker.service drop-in's EnvironmentFile). Docker's own masquerading is turned off when weftd
 * masquerades (FLANNEL_IPMASQ=true), as mk-docker-opts.sh does; subnet.env is hostile input. `--wait`
 * waits up to that many seconds for weftd to write subnet.env (a drop-in may start before weftd is ready).
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, WeftError, hasCode } from '../../errors.js';
import { writeFileAtomic } from '../../files/atomic-write.js';
import { readRegularFile } from '../../files/read-regular.js';
import { firstHost } from '../../ip/host-cidr.js';
import { MAX_SUBNET_ENV_BYTES, readSubnetEnvFields } from '../../lease/subnet-env.js';
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
    // hostile-safe: a FIFO or device planted at the path neither hangs nor floods weftctl
    const r = await readRegularFile(file, MAX_SUBNET_ENV_BYTES);
    if (r.ok) return r.buf.toString('utf8');
    if (!r.missing || Date.now() >= deadline) {
      throw new WeftError(
        'E_IO',
        r.problem +
          (r.missing
            ? '; is weftd running and ready (systemctl status weftd)? --wait=<s> waits for it'
            : ''),
      );
    }
    ctx.progress(`waiting for ${file}`);
    await new Promise((res) => setTimeout(res, 250));
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
