/** MemoryLeaseRegistry held to the LeaseRegistry contract (EtcdLeaseRegistry runs the same suite
 *  against a spawned etcd in test/integration/registry-etcd-contract.test.ts). */
import { MemoryLeaseRegistry } from '../../fakes/memory-registry.js';
import { registryContract } from '../../fakes/registry.contract.js';

registryContract('MemoryLeaseRegistry', async () => {
  const registry = new MemoryLeaseRegistry();
  return {
    registry,
    putConfig: async (value) => void (registry.config = value),
    compact: async () => registry.compact(),
    close: () => registry.close(),
  };
});
