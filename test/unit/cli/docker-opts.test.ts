// subnet.env → dockerd options in mk-docker-opts.sh's env-file format (src/cli/commands/docker-opts.ts).
import { describe, expect, it } from 'vitest';
import { dockerOptsFromSubnetEnv } from '../../../src/cli/commands/docker-opts.js';

describe('docker-opts', () => {
  it('turns subnet.env into DOCKER_OPT_* and DOCKER_NETWORK_OPTIONS (weftd masquerades: docker not)', () => {
    const o = dockerOptsFromSubnetEnv(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
      '/run/flannel/subnet.env',
    );
    expect(o.envFile).toBe(
      'DOCKER_OPT_BIP="--bip=10.5.7.1/24"\n' +
        'DOCKER_OPT_IPMASQ="--ip-masq=false"\n' +
        'DOCKER_OPT_MTU="--mtu=1450"\n' +
        'DOCKER_NETWORK_OPTIONS="--bip=10.5.7.1/24 --ip-masq=false --mtu=1450"\n',
    );
  });

  it('lets docker masquerade when weftd does not', () => {
    const o = dockerOptsFromSubnetEnv(
      'FLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n',
      'f',
    );
    expect(o).toMatchObject({ bip: '10.5.7.1/24', ipMasq: true, mtu: 1400 });
  });

  it('names the file and the key when subnet.env is unusable (hostile content)', () => {
    expect(() => dockerOptsFromSubnetEnv('FLANNEL_MTU=1450\n', '/x/subnet.env')).toThrow(
      /\/x\/subnet.env has no valid FLANNEL_SUBNET/,
    );
    expect(() =>
      dockerOptsFromSubnetEnv('FLANNEL_SUBNET=10.5.7.1/24"; rm -rf /\nFLANNEL_MTU=1450\n', 'f'),
    ).toThrow(/no valid FLANNEL_SUBNET/);
    expect(() =>
      dockerOptsFromSubnetEnv('FLANNEL_SUBNET=10.5.7.1/24\nFLANNEL_MTU=9x\n', 'f'),
    ).toThrow(/no valid FLANNEL_MTU/);
  });
});
