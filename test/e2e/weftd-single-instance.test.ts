/**
 * One weftd per host (src/daemon/instance-lock.ts): a second weftd started beside a running one with the
 * same --state-dir exits 1 at once, naming the fix, before it touches the device, the lease, the rules or
 * subnet.env; the first keeps running and ready. Before, the second started fully (reused the device and
 * the lease, re-applied the rules, rewrote subnet.env) and the two fought over everything. The lock dies
 * with its process: after a SIGKILL the next weftd starts at once. The state dir named through a
 * symbolic link is the same dir: before, the lock was named after the path as given (only `..` and `.`
 * folded), and a second weftd on `--state-dir=/srv/weft` → `/var/lib/weft` ran beside the first.
 */
import { readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRunning } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { readyz, restartWeftd, startWeftd, useCluster, waitReady } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd: one instance per host', () => {
  const setup = useCluster(1, { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } }, [], 'weftd');

  it('a second weftd with the same state dir exits 1 naming the running one; the first is untouched', async () => {
    const { c } = setup;
    const first = setup.d[0]!;
    const envBefore = readFileSync(first.subnetFile, 'utf8');
    const mtimeBefore = statSync(first.subnetFile).mtimeMs;
    const second = startWeftd(c, first.host, ['--healthz-port=8082']);
    const code = await Promise.race([
      second.exit,
      new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000)),
    ]);
    expect(code, second.logs.slice(-2000)).toBe(1);
    expect(second.logs).toMatch(/another weftd already runs on this host with --state-dir/);
    expect(second.logs).not.toMatch(/lease acquired|firewall rules applied|subnet file written/);
    expect(isRunning(first.child)).toBe(true);
    expect(await readyz(first)).toBe(200);
    expect(readFileSync(first.subnetFile, 'utf8')).toBe(envBefore);
    expect(statSync(first.subnetFile).mtimeMs).toBe(mtimeBefore);
  });

  it('the same state dir through a symbolic link or `..` is the same lock', async () => {
    const { c } = setup;
    const first = setup.d[0]!;
    const link = join(c.tmp, 'state-link');
    symlinkSync(join(first.dir, 'state'), link);
    for (const stateDir of [link, join(first.dir, 'state', '..', 'state')]) {
      const second = startWeftd(c, first.host, ['--healthz-port=8082', `--state-dir=${stateDir}`]);
      const code = await Promise.race([
        second.exit,
        new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000)),
      ]);
      expect(code, second.logs.slice(-2000)).toBe(1);
      expect(second.logs).toMatch(/another weftd already runs on this host with --state-dir/);
      expect(isRunning(first.child)).toBe(true);
    }
    expect(await readyz(first)).toBe(200);
  });

  it('the lock dies with its process: after SIGKILL a new weftd starts and gets ready', async () => {
    const { c } = setup;
    const first = setup.d[0]!;
    first.child.kill('SIGKILL');
    await first.exit;
    const next = restartWeftd(c, first);
    await waitReady(next);
    expect(await readyz(next)).toBe(200);
  });
});
