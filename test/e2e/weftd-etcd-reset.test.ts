/**
 * etcd wiped and restarted under running weftds (a cluster reset: every key and store lease gone, the
 * revision back near 1), on the VXLAN backend with 2 hosts. Every weftd keeps running, re-registers its
 * own subnet (same key, same subnet) within seconds instead of at its next renewal hours later, and
 * programs a peer that registers in the new store; containers keep talking. Before the fix
 * (src/subnet/etcd/watch.ts) the watches resumed from a revision the new store had not reached and
 * stayed silent: no key came back and no new peer was seen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimContainer } from '../helpers/netns.js';
import { isRunning, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  expectThreePings,
  ipOut,
  putConfig,
  subnetsOf,
  twoHostsForReset,
  type Cluster,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };

describe.skipIf(!runnable)('weftd across an etcd cluster reset (data wiped)', () => {
  let c: Cluster;
  let d: Weftd[];
  let ctr: SimContainer[];

  beforeAll(async () => {
    ({ c, d, ctr } = await twoHostsForReset(CONFIG));
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('every weftd re-registers its subnet at once and sees a peer that registers in the new store', async () => {
    if (!c.etcd.reset) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    await c.etcd.reset();
    await putConfig(c, CONFIG);
    for (const w of d) {
      const key = `${c.prefix}/subnets/${subnetsOf(w).subnet.replace('/', '-')}`;
      const value = await waitFor(
        `${w.host.netns} re-registers ${key}`,
        async () => (await c.etcd.etcdctl(['get', '--print-value-only', key])).trim(),
        15_000,
        200,
      );
      expect(JSON.parse(value)).toMatchObject({ PublicIP: w.host.underlayIp });
    }
    for (const w of d) expect(isRunning(w.child), w.logs.slice(-2000)).toBe(true);
    await c.etcd.etcdctl([
      'put',
      `${c.prefix}/subnets/10.5.251.0-24`,
      JSON.stringify({
        PublicIP: '198.18.0.77',
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '0e:00:5e:00:77:01' },
      }),
    ]);
    for (const w of d)
      await waitFor(
        `${w.host.netns} programs the peer registered after the reset`,
        async () =>
          (await ipOut(w.host.netns, ['route', 'show', '10.5.251.0/24'])).includes('10.5.251.0'),
        15_000,
        200,
      );
    await expectThreePings(ctr[0]!, ctr[1]!);
    await c.etcd.etcdctl(['del', `${c.prefix}/subnets/10.5.251.0-24`]);
  });
});
