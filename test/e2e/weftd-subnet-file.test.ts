/**
 * subnet.env that cannot be written (disk full, a read-only /run, something else at its path): weftd
 * used to exit 1 after programming the dataplane, and under systemd (Restart=on-failure,
 * StartLimitBurst=10) the restart loop ended with weftd given up for good, so no later peer was ever
 * programmed. Like flannel, it now carries on: peers are programmed, the write is retried, and weftd is
 * ready (the CNI plugin's ADD needs the file) as soon as the file is written. Staged with a directory
 * in the way of the file (root writes through permissions); the same error path as ENOSPC or EROFS.
 * Once written, the file is checked every few seconds: rewritten by another process (another host's
 * subnet, junk), removed or replaced by a FIFO, it is written again. Before, it stayed so until weftd's
 * next restart, and the CNI plugin numbered containers from whatever it named.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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

  it('subnet.env rewritten, replaced or removed by another process is written again within seconds', async () => {
    const [a, b] = setup.c.daemons;
    const own = readFileSync(a!.subnetFile, 'utf8');
    const hostile: [string, () => void][] = [
      ["another host's subnet", () => writeFileSync(a!.subnetFile, readFileSync(b!.subnetFile))],
      ['1 MiB of binary junk', () => writeFileSync(a!.subnetFile, Buffer.alloc(1 << 20, 0xfe))],
      ['removed', () => rmSync(a!.subnetFile)],
      ['a FIFO', () => (rmSync(a!.subnetFile), execFileSync('mkfifo', [a!.subnetFile]))],
    ];
    for (const [what, plant] of hostile) {
      plant();
      await waitFor(
        `subnet.env written again after ${what}`,
        () => {
          try {
            return lstatSync(a!.subnetFile).isFile() && readFileSync(a!.subnetFile, 'utf8') === own;
          } catch {
            return false;
          }
        },
        10_000,
        100,
      );
    }
    expect(a!.logs).toContain('the subnet file was changed by another process: writing it again');
    expect(a!.child.exitCode).toBeNull();
    expect(await readyz(a!)).toBe(200);
  });
});
