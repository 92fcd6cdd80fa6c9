/**
 * etcd wiped and restarted under running weftds (a cluster reset: every key and store lease gone, the
 * revision back near 1), on the VXLAN backend with 2 hosts. Every weftd keeps running, re-registers its
 * own subnet (same key, same subnet) within seconds instead of at its next renewal hours later, and
 * programs a peer that registers in the new store; containers keep talking. Before the fix
 * (src/subnet/etcd/watch.ts) the watches resumed from a revision the new store had not reached and
 * stayed silent: no key came back and no new peer was seen. Then etcd restored from a backup whose
 * revision is already past what the watches saw: a peer registered early in it must still be programmed
 * (before src/subnet/etcd/watch-anchor.ts the watches resumed silently and never saw it).
 *
 * Second block: the same reset while one host's weftd is frozen (SIGSTOP), so its subnet key comes
 * back only seconds after the other weftd re-listed the empty store: longer than the 500 ms removal
 * grace. The healthy peer's route must stay and no ping between the containers is lost (a lease that
 * is only missing from a re-list waits RELIST_REMOVAL_GRACE_MS, src/backend/peer-loop.ts). A peer
 * whose key is deleted in normal operation is still removed promptly. Before that fix the other
 * weftd removed the frozen peer's route 500 ms after its re-list and the pings were lost; and the frozen
 * weftd, its watches resuming on a store already past their revision, did not re-create its key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from '../helpers/etcd.js';
import { isRunning, sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  expectNoPingLost,
  expectThreePings,
  ipOut,
  putConfig,
  subnetsOf,
  useCluster,
  type ClusterSetup,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } };

/**
 * Two hosts on CONFIG, one container each that ping each other (useCluster), and 30 revisions of
 * history, so the old store's revision is well above what a reset store reaches in a test.
 */
function useClusterForReset(): ClusterSetup {
  const setup = useCluster(2, CONFIG);
  beforeAll(async () => {
    const { c } = setup;
    for (let i = 0; i < 30; i++) await c.etcd.etcdctl(['put', `${c.prefix}/noise`, String(i)]);
  });
  return setup;
}

describe.skipIf(!runnable)('weftd across an etcd cluster reset (data wiped)', () => {
  const setup = useClusterForReset();

  it('every weftd re-registers its subnet at once and sees a peer that registers in the new store', async () => {
    const { c, d, ctr } = setup;
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

  it('a restore from a backup already past what the watches saw: a peer registered low in it is programmed', async () => {
    const { c, d, ctr } = setup;
    if (!c.etcd.restore) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    // The backup: another store (a wiped cluster's new history) in which host B and a new peer
    // registered early, then enough writes to take it past every revision the watches have seen.
    const b = d[1]!;
    const bKey = `${c.prefix}/subnets/${subnetsOf(b).subnet.replace('/', '-')}`;
    const bValue = (await c.etcd.etcdctl(['get', '--print-value-only', bKey])).trim();
    const seen = Number(
      (
        JSON.parse(await c.etcd.etcdctl(['get', 'x', '-w', 'json'])) as {
          header: { revision: number };
        }
      ).header.revision,
    );
    const other = await startEtcd();
    const dir = mkdtempSync(join(tmpdir(), 'weft-snap-'));
    try {
      await other.etcdctl(['put', `${c.prefix}/config`, JSON.stringify(CONFIG)]);
      const id = /lease ([0-9a-f]+) granted/.exec(
        await other.etcdctl(['lease', 'grant', '600']),
      )![1]!;
      await other.etcdctl(['put', `--lease=${id}`, bKey, bValue]);
      await other.etcdctl([
        'put',
        `--lease=${id}`,
        `${c.prefix}/subnets/10.5.252.0-24`,
        JSON.stringify({
          PublicIP: '198.18.0.78',
          BackendType: 'vxlan',
          BackendData: { VNI: 1, VtepMAC: '0e:00:5e:00:78:01' },
        }),
      ]);
      for (let i = 0; i < seen + 20; i++)
        await other.etcdctl(['put', `${c.prefix}/noise`, String(i)]);
      await other.etcdctl(['snapshot', 'save', join(dir, 'snap.db')]);
      await c.etcd.restore(join(dir, 'snap.db'));
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    for (const w of d)
      await waitFor(
        `${w.host.netns} programs the peer registered low in the restored store`,
        async () =>
          (await ipOut(w.host.netns, ['route', 'show', '10.5.252.0/24'])).includes('10.5.252.0'),
        15_000,
        200,
      );
    const aKey = `${c.prefix}/subnets/${subnetsOf(d[0]!).subnet.replace('/', '-')}`;
    await waitFor(
      'A re-registers its key in the restored store',
      async () => (await c.etcd.etcdctl(['get', '--print-value-only', aKey])).trim(),
      15_000,
      200,
    );
    await expectThreePings(ctr[0]!, ctr[1]!);
    for (const w of d) expect(isRunning(w.child), w.logs.slice(-2000)).toBe(true);
  });
});

describe.skipIf(!runnable)('weftd across an etcd reset, a peer re-registering late', () => {
  const setup = useClusterForReset();
  // runs before useCluster's afterAll destroys the cluster (vitest runs after-hooks in reverse order)
  afterAll(() => {
    const pid = setup.d[1]?.child.pid;
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  });

  it("keeps a healthy peer's route while its key is re-created 3 s after the re-list", async () => {
    const { c, d, ctr } = setup;
    if (!c.etcd.reset) throw new Error('needs a spawned etcd (unset ETCD_ENDPOINTS)');
    const [a, b] = [d[0]!, d[1]!];
    const bSubnet = subnetsOf(b).subnet;
    const bKey = `${c.prefix}/subnets/${bSubnet.replace('/', '-')}`;
    const pid = b.child.pid!;
    await expectNoPingLost(ctr[0]!, ctr[1]!, 1500, 40_000, async () => {
      process.kill(pid, 'SIGSTOP');
      try {
        const relists = a.logs.split('re-listing').length;
        await c.etcd.reset!();
        await putConfig(c, CONFIG);
        await waitFor(
          `${a.host.netns}'s lease watch re-lists the new store`,
          () => a.logs.split('re-listing').length > relists,
          15_000,
          100,
        );
        // Other writers move the new store past the frozen weftd's key revision, so its watches,
        // resuming, cannot tell the store went back: its keeper must still check its key.
        for (let i = 0; i < 10; i++) await c.etcd.etcdctl(['put', `${c.prefix}/noise`, String(i)]);
        await sleep(3000);
        expect(await c.etcd.etcdctl(['get', '--print-value-only', bKey])).toBe('');
        expect(
          await ipOut(a.host.netns, ['route', 'show', bSubnet]),
          a.logs.slice(-3000),
        ).toContain(bSubnet.split('/')[0]);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await waitFor(
        `${b.host.netns} re-registers ${bKey}`,
        async () => (await c.etcd.etcdctl(['get', '--print-value-only', bKey])).trim(),
        15_000,
        200,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${b.logs.slice(-4000)}`);
      });
    });
    expect(await ipOut(a.host.netns, ['route', 'show', bSubnet])).toContain(bSubnet.split('/')[0]);
    await expectThreePings(ctr[0]!, ctr[1]!);
  });

  it('still removes a peer whose key is deleted in normal operation within a second or two', async () => {
    const { c, d } = setup;
    const a = d[0]!;
    const key = `${c.prefix}/subnets/10.5.251.0-24`;
    await c.etcd.etcdctl([
      'put',
      key,
      JSON.stringify({
        PublicIP: '198.18.0.77',
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '0e:00:5e:00:77:01' },
      }),
    ]);
    await waitFor(
      `${a.host.netns} programs 10.5.251.0/24`,
      async () =>
        (await ipOut(a.host.netns, ['route', 'show', '10.5.251.0/24'])).includes('10.5.251.0'),
      15_000,
      100,
    );
    await c.etcd.etcdctl(['del', key]);
    await waitFor(
      `${a.host.netns} removes 10.5.251.0/24 after its key was deleted`,
      async () =>
        !(await ipOut(a.host.netns, ['route', 'show', '10.5.251.0/24'])).includes('10.5.251.0'),
      2500,
      100,
    );
  });
});
