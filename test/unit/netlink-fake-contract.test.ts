/** FakeNetlink held to the netlink façade contract (the real façade runs the same suite in
 *  test/integration/netlink-contract.test.ts). */
import { FakeNetlink } from '../fakes/fake-netlink.js';
import { netlinkContract } from '../fakes/netlink.contract.js';

netlinkContract('FakeNetlink', async () => {
  const ops = new FakeNetlink();
  const eth0 = ops.addLink('eth0');
  ops.addrs.push({ index: eth0.index, cidr: '198.18.0.1/24' });
  return {
    ops,
    underlay: { index: eth0.index, local: '198.18.0.1' },
    close: async () => ops.close(),
  };
});
