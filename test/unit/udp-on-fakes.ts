/**
 * The udp backend on fakes, for unit tests: FakeNetlink with the weft0 TUN present, a MemoryForwarder
 * started in place of the native one, leases from `subnets`.
 */
import type { Backend } from '../../src/backend/backend.js';
import { udpBackendFactory, type UdpBackendOptions } from '../../src/backend-udp/index.js';
import { nullLogger } from '../../src/log/logger.js';
import { FakeNetlink } from '../fakes/fake-netlink.js';
import { MemoryForwarder } from '../fakes/memory-forwarder.js';
import { testUplink, type MemorySubnets } from '../integration/backend-memory-subnets.js';

export function udpOnFakes(
  subnets: MemorySubnets,
  options: Pick<UdpBackendOptions, 'observer'> = {},
): { backend: Backend; nl: FakeNetlink; forwarder: () => MemoryForwarder | undefined } {
  const nl = new FakeNetlink();
  nl.addLink('weft0', { mtu: 1500, up: false });
  let fwd: MemoryForwarder | undefined;
  const backend = udpBackendFactory({
    ...options,
    netlink: nl,
    removalGraceMs: 0,
    startForwarder: (req) =>
      (fwd = MemoryForwarder.start({
        tunFd: 3,
        port: req.port,
        mtu: req.mtu,
        localSubnets: req.localSubnets,
      })),
  })({
    subnets: subnets.manager(),
    uplink: testUplink(),
    log: nullLogger,
    stateDir: '/nonexistent',
  });
  return { backend, nl, forwarder: () => fwd };
}
