/**
 * subnet.env → the options dockerd takes, in the env-file format of flannel's `mk-docker-opts.sh`
 * (docs/docker.md): DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU and the combined
 * DOCKER_NETWORK_OPTIONS. Docker's own masquerading is turned off when weftd masquerades
 * (FLANNEL_IPMASQ=true), as mk-docker-opts.sh does. Pure; subnet.env is hostile input.
 */
import { ConfigError } from '../errors.js';
import { firstHost } from '../ip/host-cidr.js';
import { readSubnetEnvFields } from '../lease/subnet-env.js';

export interface DockerOpts {
  readonly bip: string;
  readonly ipMasq: boolean;
  readonly mtu: number;
  /** The env file text (KEY="value" lines, mk-docker-opts.sh's order). */
  readonly envFile: string;
}

/** Throws ConfigError naming the file and the missing or invalid key. */
export function dockerOptsFromSubnetEnv(text: string, file: string): DockerOpts {
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
