/**
 * weftd and a log reader that goes away (src/daemon/main.ts). A pipe into a logger that died, or a
 * terminal closed, makes each write to stderr fail with EPIPE (Node ignores SIGPIPE). Before, the
 * unhandled stream error ended weftd with exit 1 at its next log line (a SIGHUP's warning, a peer
 * joining). Now weftd keeps running and ready, drops the lines, and stops cleanly (0) on SIGTERM.
 * Started with stdout and stderr closed (`weftd >&- 2>&-`), it runs and gets ready too. Either way
 * the device and the lease stay when it stops.
 */
import { describe, expect, it } from 'vitest';
import { isRunning, sleep, spawnTracked, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import {
  readyz,
  restartWeftd,
  useCluster,
  vxlanDevice,
  waitReady,
  weftdArgs,
} from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd without a log reader', () => {
  const setup = useCluster(1, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'weftd');

  it('stderr closed by its reader: weftd keeps running and ready, and SIGTERM exits 0', async () => {
    const { c } = setup;
    const first = setup.d[0]!;
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    const w = restartWeftd(c, first);
    await waitReady(w);
    w.child.stderr!.destroy();
    w.child.kill('SIGHUP'); // logs a warning into the broken pipe
    await sleep(1000);
    expect(isRunning(w.child), `exit ${w.child.exitCode}`).toBe(true);
    expect(await readyz(w)).toBe(200);
    w.child.kill('SIGTERM');
    expect(await w.exit).toBe(0);
    expect(await vxlanDevice(w.host.netns)).not.toBeNull();
  });

  it('started with stdout and stderr closed: weftd gets ready and SIGTERM exits 0', async () => {
    const { c } = setup;
    const w = setup.d[0]!;
    const args = weftdArgs(c, w.host);
    const child = spawnTracked('sh', ['-c', 'exec "$@" >&- 2>&-', 'sh', ...args], {
      ns: w.host.netns,
    });
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(
        'weftd ready',
        async () => (await readyz(w).catch(() => 0)) === 200,
        30_000,
        100,
      );
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exit).toBe(0);
    expect(await vxlanDevice(w.host.netns)).not.toBeNull();
  });
});
