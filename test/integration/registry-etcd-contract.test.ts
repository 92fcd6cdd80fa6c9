/** EtcdLeaseRegistry over a spawned etcd held to the contract MemoryLeaseRegistry is held to
 *  (test/unit/subnet/registry-memory-contract.test.ts). Each test gets its own key prefix. */
import { afterAll, beforeAll, describe } from 'vitest';
import { EtcdLeaseRegistry } from '../../src/subnet/etcd/etcd-registry.js';
import { nullLogger } from '../../src/log/logger.js';
import { registryContract } from '../fakes/registry.contract.js';
import { startEtcd, type EtcdFixture } from '../helpers/etcd.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('etcd', 'etcdctl');
useLeakCheck();

describe.skipIf(!runnable)('spawned etcd', () => {
  let etcd: EtcdFixture;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  registryContract('EtcdLeaseRegistry', async () => {
    const prefix = etcd.prefix('registry-contract');
    const registry = new EtcdLeaseRegistry({
      endpoints: etcd.endpoints,
      prefix,
      log: nullLogger,
      requestTimeoutMs: 5_000,
    });
    return {
      registry,
      putConfig: async (value) => void (await etcd.etcdctl(['put', `${prefix}/config`, value])),
      compact: async () => {
        const out = await etcd.etcdctl(['get', '/weft-test-revision-probe', '-w', 'json']);
        const rev = (JSON.parse(out) as { header: { revision: number } }).header.revision;
        await etcd.etcdctl(['compaction', String(rev)]);
      },
      close: () => registry.close(),
    };
  });
});
