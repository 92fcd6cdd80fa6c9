/**
 * NativeForwarder against the shared Forwarder contract. Each forwarder gets a fresh TUN device in a
 * test network namespace (never in the root namespace); its UDP socket is created there too.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { closeSync } from 'node:fs';
import type { ForwarderOptions } from '../../src/dataplane/forwarder.js';
import { NativeForwarder } from '../../src/dataplane/native-forwarder.js';
import { openTun } from '../../src/dataplane/tun.js';
import { inNetns } from '../../src/netns/netns.js';
import { forwarderContract, type ForwarderHarness } from '../dataplane/forwarder.contract.js';
import { createNetns, deleteNetns, uniquePrefix } from '../helpers/netns.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';

const runnable = requireCaps('root', 'netns', 'tun');
useLeakCheck();

describe.skipIf(!runnable)('NativeForwarder', () => {
  let ns = '';
  let n = 0;
  beforeAll(async () => {
    ns = await createNetns(`${uniquePrefix()}-fc`);
  });
  afterAll(async () => {
    if (ns) await deleteNetns(ns);
  });

  /** A forwarder on a fresh TUN in the test namespace (`threads` given: that many loop threads). */
  const startIn =
    (extra: Pick<ForwarderOptions, 'threads'>): (() => ForwarderHarness) =>
    () => ({
      start: (opts) =>
        inNetns(ns, () => {
          const tun = openTun(`wct${n++}`, { vnetHdr: true });
          try {
            return NativeForwarder.start({
              tunFd: tun.fd,
              port: 0,
              mtu: 1472,
              localSubnets: [],
              ...extra,
              ...opts,
            });
          } catch (err) {
            closeSync(tun.fd); // start failed: the fd is still ours
            throw err;
          }
        }),
    });

  forwarderContract('NativeForwarder, one loop thread', startIn({ threads: 1 }));
  forwarderContract('NativeForwarder', startIn({}));
});
