/**
 * The network config changed in etcd while weftd runs (another backend type, another SubnetLen): weftd
 * reads the config once, like flannel, and keeps running on it so that healthy peers stay programmed;
 * it says so within a resync period, naming what changed and the fix (restart every host), and says when
 * the config became invalid (no weftd could start on it). Two hosts,
 * VXLAN, one container each.
 */
import { describe, expect, it } from 'vitest';
import { isRunning, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { expectThreePings, putConfig, useCluster, type Weftd } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('network config changed while weftd runs', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } });

  it('keeps running on the old config, peers programmed, and logs what changed with the fix', async () => {
    const { c, d, ctr } = setup;
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

  it('says so when the config in etcd becomes invalid, once, and keeps the peers programmed', async () => {
    const { c, d, ctr } = setup;
    const invalid = 'the network config in etcd is now invalid';
    await putConfig(c, { Network: '10.5.0.0/16', SubnetLen: 99, Backend: { Type: 'vxlan' } });
    await waitFor(
      'the warning on both hosts',
      () => d.every((w) => w.logs.includes(invalid)),
      10_000,
      200,
    );
    for (const w of d) {
      const l = w.logs.split('\n').find((x) => x.includes(invalid))!;
      expect(l).toMatch(/SubnetLen/);
      expect(l).toContain('weftctl config set');
      expect(isRunning(w.child)).toBe(true);
    }
    await expectThreePings(ctr[0]!, ctr[1]!);
    await sleep(7_000);
    expect(d[0]!.logs.split(invalid).length - 1).toBe(1);
  });
});
