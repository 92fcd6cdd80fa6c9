/** Proves the etcd fixture: a real etcd on loopback and one on an underlay address inside a test netns. */
import { afterAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { etcdWriter } from '../helpers/etcd-writer.js';
import { createTopology, type Topology } from '../helpers/netns.js';
import { nsRun, words } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('harness: etcd fixture', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('serves a unique prefix per test and survives a restart with its data', async () => {
    const etcd: EtcdFixture = await startEtcd();
    cleanup.push(() => etcd.stop());
    const p1 = etcd.prefix();
    const p2 = etcd.prefix();
    expect(p1).not.toBe(p2);
    expect(p1).toMatch(/^\/weft-test\/.+\/coreos\.com\/network$/);
    const client = etcdWriter(etcd.endpoints);
    cleanup.push(async () => client.close());
    await client.put(`${p1}/config`, '{"Network":"10.5.0.0/16"}');
    expect(await client.get(`${p1}/config`)).toBe('{"Network":"10.5.0.0/16"}');
    expect(await client.get(`${p2}/config`)).toBeNull();
    if (etcd.controllable) {
      await etcd.kill();
      await expect(etcd.etcdctl(['get', `${p1}/config`])).rejects.toThrow();
      await etcd.start();
      expect(await etcd.etcdctl(['get', '--print-value-only', `${p1}/config`])).toContain(
        '10.5.0.0/16',
      );
    }
  });

  it('runs inside a test netns on an underlay address reachable from the host namespaces', async () => {
    if (!requireCaps('root', 'netns')) return;
    const topo: Topology = await createTopology({ hosts: 1 });
    cleanup.push(() => topo.destroy());
    const etcd = await startEtcd({ netns: topo.underlayNetns, host: topo.underlayGatewayIp });
    cleanup.push(() => etcd.stop());
    expect(etcd.endpoints).toEqual(['http://198.18.0.254:2379']);
    await etcd.etcdctl(['put', '/weft-test/x', 'y']);
    const r = await nsRun(
      topo.hosts[0]!.netns,
      'etcdctl',
      words(`--endpoints ${etcd.endpoints[0]!} get --print-value-only /weft-test/x`),
    );
    expect(r.stdout.trim()).toBe('y');
  });
});
