/**
 * subnet.env that cannot be written (disk full, a read-only /run, something else at its path): weftd
 * used to exit 1 after programming the dataplane, and under systemd (Restart=on-failure,
 * StartLimitBurst=10) the restart loop ended with weftd given up for good, so no later peer was ever
 * programmed. Like flannel, it now carries on: peers are programmed, the write is retried, and weftd is
 * ready (the CNI plugin's ADD needs the file) as soon as the file is written. Staged with a directory
 * in the way of the file (root writes through permissions); the same error path as ENOSPC or EROFS.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { ipOut, readyz, startWeftd, subnetsOf, useCluster, waitReady } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd when subnet.env cannot be written', () => {
  const setup = useCluster(2, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'config');

  it('keeps running and programming peers, not ready, and gets ready once the file can be written', async () => {
    const { c } = setup;
    const [hostA, hostB] = c.topo.hosts;
    const blocker = join(c.tmp, `h${hostA!.index}`, 'subnet.env', 'in-the-way');
    mkdirSync(blocker, { recursive: true });
    const a = startWeftd(c, hostA!);
    const b = startWeftd(c, hostB!);
    await waitReady(b);
    await waitFor(
      'weftd A to report the failed write',
      () => a.logs.includes('cannot write the subnet file'),
      30_000,
      100,
    );
    const bSubnet = subnetsOf(b).subnet;
    // The dataplane runs on: B's subnet is routed on A although A could not write its file.
    await waitFor(
      "A's route to B's subnet",
      async () => (await ipOut(a.host.netns, ['route', 'show', bSubnet])).includes('onlink'),
      15_000,
      200,
    );
    await sleep(1500);
    expect(a.child.exitCode).toBeNull();
    expect(a.child.signalCode).toBeNull();
    expect(await readyz(a)).toBe(503);

    rmSync(dirname(blocker), { recursive: true, force: true });
    await waitReady(a, 45_000);
    expect(await readyz(a)).toBe(200);
    const aSubnet = subnetsOf(a).subnet;
    const key = `${c.prefix}/subnets/${aSubnet.replace('/', '-')}`;
    expect(await c.etcd.etcdctl(['get', '--print-value-only', key])).toContain('198.18.0.1');
    // No temp file of the failed attempts is left beside it.
    expect(readdirSync(dirname(a.subnetFile)).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(existsSync(a.subnetFile)).toBe(true);
  });
});
