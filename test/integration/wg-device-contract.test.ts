/**
 * The native WireGuard device (engine thread, TUN, UDP socket) in a test netns, held to the contract
 * MemoryWgDevice is held to (test/unit/wg-device-memory.test.ts): the fake refuses and programs what the
 * engine does.
 */
import { closeSync } from 'node:fs';
import { afterAll, beforeAll, describe } from 'vitest';
import { openTun } from '../../src/dataplane/tun.js';
import { WireGuardDevice } from '../../src/dataplane/wireguard-device.js';
import { inNetns } from '../../src/netns/netns.js';
import { wgDeviceContract } from '../dataplane/wg-device.contract.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'tun');
useLeakCheck();

describe.skipIf(!runnable)('native WireGuardDevice', () => {
  let ns = '';
  let n = 0;
  beforeAll(async () => {
    ns = await createNetns(`${uniquePrefix()}wg`);
  });
  afterAll(async () => {
    if (ns) await deleteNetns(ns);
  });

  wgDeviceContract('native WireGuardDevice', (privateKey) =>
    inNetns(ns, () => {
      const tun = openTun(`wgc${++n}`, { vnetHdr: true });
      try {
        return WireGuardDevice.start({
          tunFd: tun.fd,
          family: 4,
          bindAddress: '127.0.0.1',
          port: 51820 + n,
          mtu: 1420,
          privateKey,
        });
      } catch (err) {
        closeSync(tun.fd);
        throw err;
      }
    }),
  );
});
