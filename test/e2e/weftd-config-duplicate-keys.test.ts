/**
 * A network config in etcd with two keys naming one field (`Network` and `network`): flannel (Go's
 * encoding/json, case-insensitive, one of them wins) and weft could read different networks, and a
 * mixed cluster would split silently. weftd refuses it: exit 3 naming both keys, nothing programmed.
 * The config goes through etcd as text, so a key written twice exactly reaches the check too.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { createCluster, putConfig, startWeftd, type Cluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd with a network config naming a field twice', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await createCluster(1);
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it.each([
    [
      'differing in case',
      '{"Network":"10.5.0.0/16","network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}',
      '"Network" and "network"',
    ],
    [
      'written twice',
      '{"Network":"10.5.0.0/16","SubnetLen":20,"SubnetLen":null}',
      '"SubnetLen" and "SubnetLen"',
    ],
  ])('%s: exits 3 naming both keys, programs nothing', async (_name, config, keys) => {
    await putConfig(c, config);
    const w = startWeftd(c, c.topo.hosts[0]!);
    expect(await w.exit, w.logs.slice(-2000)).toBe(3);
    expect(w.logs.replaceAll('\\"', '"')).toContain(
      `network config has the keys ${keys}, which name one field`,
    );
    expect(existsSync(w.subnetFile)).toBe(false);
    expect(await c.etcd.etcdctl(['get', '--prefix', '--keys-only', `${c.prefix}/subnets/`])).toBe(
      '',
    );
  });
});
