/**
 * weftd serves CNI calls for runtimes that may live in another mount namespace (weftd under systemd, in
 * a package's test, the runtime in its own): a netns bind mount the runtime made after weftd started
 * is not visible in weftd's mounts, where CNI_NETNS is a plain empty file. weftd must look at the path
 * as the caller sees it (/proc/<shim pid>/root, src/cni/deps.ts callerPath): taken as it is, the
 * "not a network namespace" guard (src/cni/host-netns.ts) refused every ADD there. Real kernel: the
 * caller here is a process in a private mount namespace that made the netns with `ip netns add`; the
 * delegate is a recording fake (cni-shim.test.ts runs the real ones).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../../../src/cni/in-process.js';
import type { InvokeRequest, Invoker } from '../../../src/cni/invoke.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import { waitFor } from '../../helpers/exec.js';
import { cniPluginDir, pluginDirConf } from '../../unit/cni/plugin-dir.js';

const runnable = requireCaps('root', 'netns');
useLeakCheck();

const NSFS_MAGIC = 0x6e736673;

describe.skipIf(!runnable)('CNI_NETNS mounted only in the caller’s mount namespace', () => {
  const name = `${uniquePrefix()}-mnt`;
  const path = `/var/run/netns/${name}`;
  let caller: ChildProcess;
  let dir: string;
  const calls: InvokeRequest[] = [];
  const invoke: Invoker = async (req) => {
    calls.push(req);
    if (req.command !== 'ADD') return '';
    return JSON.stringify({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:03', sandbox: path }],
      ips: [{ interface: 0, address: '10.5.72.2/24', gateway: '10.5.72.1' }],
    });
  };
  const env = (command: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'ctr-mountns',
    CNI_NETNS: path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: join(dir, 'bin'),
  });
  const conf = () => pluginDirConf(dir);

  beforeAll(async () => {
    dir = cniPluginDir('weft-cni-mountns-');
    caller = spawn(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', `ip netns add ${name} && exec sleep 120`],
      { stdio: 'ignore' },
    );
    const pid = caller.pid!;
    await waitFor('the caller made its netns', () =>
      readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(`${name} `) ? true : null,
    );
  });
  afterAll(() => {
    caller?.kill('SIGKILL');
    // the caller's mount went with its namespace; what is left here is the plain file
    rmSync(path, { force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ADD and DEL through weftd see the netns as the caller does', async () => {
    // the scenario: in this process' mounts the path is no netns
    expect(statfsSync(path).type).not.toBe(NSFS_MAGIC);
    const blind = await runInProcess(env('ADD'), conf(), invoke);
    expect(JSON.parse(blind.stdout)).toMatchObject({
      code: 4,
      msg: expect.stringMatching(/is not a network namespace/),
    });

    const add = await runInProcess(env('ADD'), conf(), invoke, caller.pid);
    expect(add.exitCode, add.stdout).toBe(0);
    expect(calls.at(-1)).toMatchObject({ command: 'ADD' });
    for (const t of add.later) await t.run();
    const del = await runInProcess(env('DEL'), conf(), invoke, caller.pid);
    expect(del.exitCode, del.stdout).toBe(0);
    // the delegate's DEL gets the netns (a path that is no netns would be blanked: address only)
    const last = calls.at(-1)!;
    expect(last.command).toBe('DEL');
    expect(last.env['CNI_NETNS']).toBeUndefined();
  });
});
