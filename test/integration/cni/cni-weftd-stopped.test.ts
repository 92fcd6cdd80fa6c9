/**
 * The shim while weftd is stopped (`kill -STOP`, a debugger): weftd's socket still accepts connections
 * (the kernel queues them), but nobody answers. The shim (cni-shim/weft-cni-shim.c, read_reply) sees
 * weftd's stop state and runs the full plugin after 2 s: DEL succeeds without weftd, ADD answers code 11
 * ("try again later"). Before, both waited for weftd's answer for up to 10 minutes. When weftd resumes
 * it finds those requests in its queue with their shims gone, and drops them (src/daemon/cni-server.ts):
 * running the stale ADD then would give a container the runtime was told to retry an interface and an
 * address nobody releases.
 */
import { describe, expect, it } from 'vitest';
import { useLeakCheck } from '../../helpers/leaks.js';
import { requireCaps } from '../../helpers/require.js';
import { ipJson, useCniHost } from './cni-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins');
useLeakCheck();

const SUBNET_ENV =
  'FLANNEL_NETWORK=10.79.0.0/16\nFLANNEL_SUBNET=10.79.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe.skipIf(!runnable)('the weft shim while weftd is stopped', () => {
  const host = useCniHost('weft-cni-stopped-', 'weft', true);

  it('DEL (also of a request larger than the socket buffer) succeeds and ADD answers "try again later" within seconds; the resumed weftd drops both requests', async () => {
    const s = host.scenario(SUBNET_ENV);
    const conf = s.conf('1.0.0');
    const c1 = await host.container();
    const c2 = await host.container();
    const add1 = await host.call('ADD', conf, { id: 'c1', ns: c1 });
    expect(add1.code, add1.stdout + add1.stderr).toBe(0);
    expect(s.ipFiles()).toHaveLength(1);
    const weftd = host.weftd!;
    const pid = weftd.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const del1 = await host.call('DEL', conf, { id: 'c1', ns: c1 });
      expect(del1.code, del1.stdout + del1.stderr).toBe(0);
      expect(del1.ms).toBeLessThan(15_000);
      expect(s.stateFiles()).toEqual([]);
      expect(s.ipFiles()).toEqual([]);

      // a request larger than the socket buffer: the shim's write itself waits on weftd (it blocked
      // for ever before send_full)
      const big = s.conf('1.0.0', { padding: 'x'.repeat(600_000) });
      const del3 = await host.call('DEL', big, { id: 'c3', ns: c1 });
      expect(del3.code, del3.stdout + del3.stderr).toBe(0);
      expect(del3.ms).toBeLessThan(15_000);

      const add2 = await host.call('ADD', conf, { id: 'c2', ns: c2 });
      expect(add2.code).toBe(1);
      expect(add2.json?.['code']).toBe(11);
      expect(add2.ms).toBeLessThan(15_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // weftd works off its queue at once; what it would do with the stale ADD is done in well under 2 s
    await new Promise((r) => setTimeout(r, 2000));
    // the stale ADD did not run: c2 has no interface, no state and no address
    expect((await ipJson(c2, ['link', 'show'])).map((l) => l['ifname'])).toEqual(['lo']);
    expect(s.stateFiles()).toEqual([]);
    expect(s.ipFiles()).toEqual([]);
    expect(weftd.logs().split('dropped a request whose shim had already given up').length - 1).toBe(
      2,
    );
    // and weftd serves the retry
    const again = await host.call('ADD', conf, { id: 'c2', ns: c2 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(s.ipFiles()).toHaveLength(1);
    const del2 = await host.call('DEL', conf, { id: 'c2', ns: c2 });
    expect(del2.code).toBe(0);
  });
});
