/**
 * weftd against a bad network config in etcd: a clear error naming the field, a non-zero exit (3), and
 * nothing programmed (no device, no routes, no firewall table, no subnet.env, no lease). And a config
 * that appears late: weftd waits for it (not ready meanwhile) instead of failing.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nsRun, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { requireCaps } from '../helpers/require.js';
import { putConfig, readyz, startWeftd, useCluster } from './weftd-harness.js';

const runnable = requireCaps('root', 'netns', 'etcd', 'etcdctl', 'nft');
useLeakCheck();

describe.skipIf(!runnable)('weftd with a bad network config', () => {
  const setup = useCluster(1);

  it('exits 3 with a message naming the field, and programs nothing', async () => {
    const { c } = setup;
    await putConfig(c, { Network: '10.5.0.0/33', Backend: { Type: 'vxlan' } });
    const host = c.topo.hosts[0]!;
    const w = startWeftd(c, host);
    const code = await Promise.race([
      w.exit,
      new Promise((r) => setTimeout(() => r('timeout'), 15_000)),
    ]);
    expect(code, w.logs.slice(-2000)).toBe(3);
    expect(w.logs).toMatch(
      /invalid network config: network config field Network = \\"10\.5\.0\.0\/33\\"/,
    );
    expect(w.logs).toContain('nothing was programmed');
    const names = (await nsRun(host.netns, 'ip', ['-o', 'link', 'show'])).stdout
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0])
      .filter(Boolean);
    expect(names.sort()).toEqual(['eth0', 'lo']);
    expect((await nsRun(host.netns, 'ip', ['-o', 'link', 'show', 'type', 'vxlan'])).stdout).toBe(
      '',
    );
    expect((await nsRun(host.netns, 'ip', ['route', 'show'])).stdout).not.toContain('10.5.');
    expect((await nsRun(host.netns, 'nft', ['list', 'tables'])).stdout).not.toContain('weft');
    expect(existsSync(w.subnetFile)).toBe(false);
    expect(await c.etcd.etcdctl(['get', '--prefix', '--keys-only', `${c.prefix}/subnets/`])).toBe(
      '',
    );
  });

  it('an unknown backend type also exits 3 before touching the kernel', async () => {
    const { c } = setup;
    await putConfig(c, { Network: '10.5.0.0/16', Backend: { Type: 'ipsec' } });
    const w = startWeftd(c, c.topo.hosts[0]!);
    expect(await w.exit, w.logs.slice(-2000)).toBe(3);
    expect(w.logs).toMatch(/unknown backend type: ipsec/);
    expect(existsSync(w.subnetFile)).toBe(false);
  });

  it('waits while the config is absent: alive, not ready, no exit', async () => {
    const { c } = setup;
    await c.etcd.etcdctl(['del', `${c.prefix}/config`]);
    const w = startWeftd(c, c.topo.hosts[0]!);
    await waitFor('health server', async () => (await readyz(w)) === 503, 15_000, 200);
    expect(w.logs).toMatch(/network config not found in etcd: waiting for it/);
    expect(w.child.exitCode).toBeNull();
    w.child.kill('SIGTERM');
    expect(await w.exit).toBe(0);
  });
});
