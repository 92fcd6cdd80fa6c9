/**
 * weftd while etcd's auth is switched on and off (src/subnet/etcd/http-transport.ts):
 *  - host A runs with --etcd-username/--etcd-password while etcd's auth is still disabled: it starts
 *    (before, etcd's "authentication is not enabled" failed every call and weftd waited "for etcd"
 *    for ever; etcd's Go client, and so flannel, goes on without a token);
 *  - auth enabled: A authenticates and goes on (renews its short lease, programs a new peer); B, without
 *    credentials, cannot renew, and keeps running with its dataplane, saying which flags to check;
 *  - auth disabled again: B keeps (or re-creates) its lease and programs a new peer again; both still
 *    run and their containers talk.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  addContainer,
  expectThreePings,
  ipOut,
  startWeftd,
  subnetsOf,
  useCluster,
  waitReady,
  type Weftd,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft');
useLeakCheck();

const TTL_S = 6;
const ROOT = ['--user', 'root:weft-secret'];

describe.skipIf(!runnable)('weftd with etcd auth toggled', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'config');

  it('starts with credentials while auth is off, and rides out auth being enabled and disabled', async () => {
    const { c } = setup;
    const [hostA, hostB] = c.topo.hosts;
    let authOn = false;
    const ctl = (args: string[]) => c.etcd.etcdctl(authOn ? [...ROOT, ...args] : args);
    let probe = 0;
    /** Writes a peer lease and waits until `w` routes it. */
    const programmed = async (w: Weftd): Promise<void> => {
      probe++;
      const subnet = `10.5.${240 + probe}.0/24`;
      await ctl([
        'put',
        `${c.prefix}/subnets/${subnet.replace('/', '-')}`,
        JSON.stringify({
          PublicIP: `198.18.0.${70 + probe}`,
          PublicIPv6: null,
          BackendType: 'vxlan',
          BackendData: { VNI: 1, VtepMAC: `0e:00:5e:00:70:${(probe + 16).toString(16)}` },
        }),
      ]);
      await waitFor(
        `${w.host.netns} to program ${subnet}`,
        async () => (await ipOut(w.host.netns, ['route', 'show', subnet])).includes('10.5.'),
        20_000,
        100,
      );
    };
    const a = startWeftd(c, hostA!, [
      `--subnet-lease-ttl=${TTL_S}`,
      '--etcd-username=root',
      '--etcd-password=weft-secret',
    ]);
    const b = startWeftd(c, hostB!, [`--subnet-lease-ttl=${TTL_S}`]);
    try {
      await waitReady(a);
      await waitReady(b);
      const ca = await addContainer(c, a, 2);
      const cb = await addContainer(c, b, 2);
      await expectThreePings(ca, cb);
      const aSubnet = subnetsOf(a).subnet;

      await ctl(['user', 'add', 'root', '--new-user-password', 'weft-secret']);
      await ctl(['auth', 'enable']);
      authOn = true;
      const renewed = a.logs.split('"msg":"lease renewed"').length;
      await programmed(a);
      await waitFor(
        'A to renew its lease with auth on',
        async () => a.logs.split('"msg":"lease renewed"').length > renewed + 1,
        TTL_S * 1000 * 2,
        200,
      );
      await waitFor(
        'B to name the credential flags',
        async () => b.logs.includes('--etcd-username/--etcd-password'),
        20_000,
        200,
      );
      // B cannot renew its lease meanwhile; it keeps running and keeps its route to A.
      expect(b.child.exitCode, b.logs.slice(-2000)).toBeNull();
      expect(await ipOut(b.host.netns, ['route', 'show', aSubnet])).toContain('via');

      await ctl(['auth', 'disable']);
      authOn = false;
      await programmed(b);
      await programmed(a);
      await expectThreePings(ca, cb);
      expect(a.child.exitCode, a.logs.slice(-2000)).toBeNull();
      expect(b.child.exitCode, b.logs.slice(-2000)).toBeNull();
    } finally {
      if (authOn) await ctl(['auth', 'disable']).catch(() => undefined);
    }
  }, 180_000);
});
