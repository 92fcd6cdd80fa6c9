/** The real netlink façade, inside a test netns, held to the contract FakeNetlink is held to
 *  (test/unit/netlink-fake-contract.test.ts). */
import { describe } from 'vitest';
import { createNetlinkOps } from '../../src/netlink/index.js';
import { netlinkContract } from '../fakes/netlink.contract.js';
import { createTopology } from '../helpers/netns.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns');
useLeakCheck();

describe.skipIf(!runnable)('real kernel in a netns', () => {
  netlinkContract('createNetlinkOps', async () => {
    const topo = await createTopology({ hosts: 1 });
    const host = topo.hosts[0]!;
    const ops = createNetlinkOps({ netns: host.netns });
    try {
      const eth0 = await ops.getLink(host.iface);
      return {
        ops,
        underlay: { index: eth0!.index, local: host.underlayIp },
        close: async () => {
          ops.close();
          await topo.destroy();
        },
      };
    } catch (err) {
      ops.close();
      await topo.destroy();
      throw err;
    }
  });
});
