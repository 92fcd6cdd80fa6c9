/** Delegate generation against golden JSON files (docs/flannel-compat.md §16), compared key-sorted. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildDelegateConfig } from '../../../src/cni/delegate-config.js';
import { parseNetConf } from '../../../src/cni/netconf.js';
import { parseSubnetEnv } from '../../../src/lease/subnet-env.js';

/** JSON with keys sorted at every level: stable bytes for the stored state and golden tests. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}

const golden = (name: string): string =>
  canonicalJson(
    JSON.parse(readFileSync(new URL(`./golden/${name}.json`, import.meta.url), 'utf8')),
  );

const env = (text: string) => parseSubnetEnv(text, 'subnet.env');

describe('buildDelegateConfig', () => {
  it('builds what flannel builds for the kube-flannel conflist (plus explicit route gw)', () => {
    const conf = parseNetConf({
      cniVersion: '0.3.1',
      name: 'cbr0',
      type: 'weft',
      delegate: { hairpinMode: true, isDefaultGateway: true },
    });
    const se = env(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    expect(canonicalJson(buildDelegateConfig(conf, se, '0.3.1'))).toBe(golden('flannel-kube'));
  });

  it('dual stack: one range set per family, routes per network, user routes kept first, runtimeConfig copied', () => {
    const conf = parseNetConf({
      cniVersion: '1.1.0',
      name: 'weftnet',
      type: 'weft',
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
      ipam: { dataDir: '/tmp/ipam', routes: [{ dst: '192.0.2.0/24' }] },
    });
    const se = env(
      [
        'FLANNEL_NETWORK=10.5.0.0/16,10.6.0.0/16,10.5.0.0/16',
        'FLANNEL_SUBNET=10.5.72.1/24',
        'FLANNEL_IPV6_NETWORK=fd00:5::/48',
        'FLANNEL_IPV6_SUBNET=fd00:5:0:72::1/64',
        'FLANNEL_MTU=1400',
        'FLANNEL_IPMASQ=false',
      ].join('\n'),
    );
    expect(canonicalJson(buildDelegateConfig(conf, se, '1.0.0'))).toBe(golden('dual-stack'));
  });

  it('user delegate keys override the defaults; a user route to a cluster network wins', () => {
    const conf = parseNetConf({
      cniVersion: '1.0.0',
      name: 'weftnet',
      delegate: { bridge: 'weft0', isGateway: false, ipMasq: true, mtu: 9000 },
      ipam: { routes: [{ dst: '10.5.0.0/16', gw: '10.9.9.9' }] },
    });
    const se = env(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
    expect(canonicalJson(buildDelegateConfig(conf, se, '1.0.0'))).toBe(golden('overrides'));
  });

  it('a non-bridge delegate gets no isGateway; ipam type can be chosen', () => {
    const conf = parseNetConf({
      cniVersion: '1.0.0',
      name: 'weftnet',
      delegate: { type: 'macvlan', master: 'eth0' },
      ipam: { type: 'static-ish' },
    });
    const se = env(
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    );
    expect(canonicalJson(buildDelegateConfig(conf, se, '1.0.0'))).toBe(golden('non-bridge'));
  });
});
