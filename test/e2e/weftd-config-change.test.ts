/**
 * The network config changed in etcd while weftd runs (another backend type, another SubnetLen): weftd
 * reads the config once, like flannel, and keeps running on it so that healthy peers stay programmed;
 * it says so within a resync period, naming what changed and the fix (restart every host). Two hosts,
 * VXLAN, one container each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { isRunning, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  addContainer,
  createCluster,
  expectThreePings,
  putConfig,
  startWeftds,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('network config changed while weftd runs', () => {
  let c: Cluster;
  let d: Weftd[];
  let ctr: SimContainer[];

  beforeAll(async () => {
    c = await createCluster(2);
    d = await startWeftds(c, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });
    ctr = [];
    for (const w of d) ctr.push(await addContainer(c, w, 2));
    await expectThreePings(ctr[0]!, ctr[1]!);
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('keeps running on the old config, peers programmed, and logs what changed with the fix', async () => {
    await putConfig(c, { Network: '10.5.0.0/16', SubnetLen: 25, Backend: { Type: 'host-gw' } });
    const line = (w: Weftd): string | undefined =>
      w.logs.split('\n').find((l) => l.includes('the network config in etcd changed'));
    // --resync-period=3 in the harness
    await waitFor('the warning on both hosts', () => d.every((w) => line(w)), 10_000, 200);
    for (const w of d) {
      expect(line(w)).toContain('"subnetLen: 24 → 25"');
      expect(line(w)).toContain('"Backend.Type: vxlan → host-gw"');
      expect(line(w)).toContain('restart weftd on every host');
      expect(isRunning(w.child)).toBe(true);
    }
    await expectThreePings(ctr[0]!, ctr[1]!);
    await expectThreePings(ctr[1]!, ctr[0]!);
    // once per distinct config, not every resync period
    await sleep(7_000);
    expect(d[0]!.logs.split('the network config in etcd changed').length - 1).toBe(1);
  });
});
