/**
 * podman (CNI backend) on a weft network under the faults operators meet, with the sandbox of
 * podman-helpers.ts and a real weftd serving the installed shim (cni-helpers.ts): weftd stopped or
 * killed while podman runs and removes containers, `podman restart`, `stop` + `start` (same id, new
 * netns), `network reload`, a container SIGKILLed, and 15 containers started at once. After each: no
 * address handed out twice, no reservation, state file or veth left behind.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, waitFor } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import { installPlugin, startCniWeftd, type CniWeftd } from './cni-helpers.js';
import {
  BUSYBOX_IMAGE,
  createPodmanSandbox,
  havePodmanTools,
  type PodmanSandbox,
} from './podman-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins') && havePodmanTools();
useLeakCheck();

describe.skipIf(!runnable)('podman on weft under faults', () => {
  let W: string;
  let binDir: string;
  let hostNs: string;
  let net: string;
  let sb: PodmanSandbox | undefined;
  let weftd: CniWeftd | undefined;

  const podman = (args: string[], timeoutMs = 60_000) => sb!.podman(args, timeoutMs);
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  // Without the temp file of a state write in flight (weftd writes the result just after answering).
  const stateFiles = (name: string) =>
    files(join(W, 'state', name)).filter((f) => !f.startsWith('.'));
  const ipFiles = (name: string) =>
    files(join(W, 'ipam', name)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  const veths = async () =>
    (await run('ip', ['-n', hostNs, '-o', 'link', 'show', 'type', 'veth'])).stdout
      .split('\n')
      .filter(Boolean).length;
  const ipOf = async (name: string, id: string) => {
    const j = JSON.parse((await podman(['inspect', id])).stdout) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
    }[];
    return j[0]!.NetworkSettings.Networks[name]!.IPAddress;
  };
  const runDetached = async (name: string, extra: string[] = []) =>
    (
      await podman(['run', '-d', ...extra, '--network', name, BUSYBOX_IMAGE, 'sleep', '300'])
    ).stdout.trim();
  const expectClean = async (name: string) => {
    expect(stateFiles(name)).toEqual([]);
    expect(ipFiles(name)).toEqual([]);
    expect(await veths()).toBe(0);
  };

  function conflist(name: string): void {
    sb!.conflist(name, '1.0.0', [
      {
        type: 'weft',
        daemonSocket: weftd!.socket,
        subnetFile: join(W, 'subnet.env'),
        dataDir: join(W, 'state'),
        ipam: { dataDir: join(W, 'ipam') },
        delegate: { bridge: 'weftbr0', hairpinMode: true },
      },
    ]);
  }

  beforeAll(async () => {
    binDir = await installPlugin();
    const prefix = uniquePrefix();
    net = `${prefix}n`.replace(/^weft-t/, 'weftpm');
    hostNs = await createNetns(`${prefix}p`);
    sb = await createPodmanSandbox(hostNs, binDir, net);
    W = sb.dir;
    for (const d of ['state', 'ipam']) mkdirSync(join(W, d));
    weftd = await startCniWeftd(hostNs, W);
    writeFileSync(
      join(W, 'subnet.env'),
      'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.6.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
  });

  afterAll(async () => {
    if (sb) await sb.cleanup();
    await weftd?.stop();
    if (hostNs) await deleteNetns(hostNs);
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });

  it('weftd stopped, then SIGKILLed (stale socket): `podman run` fails with "try again later" and leaves nothing; `podman rm -f` releases the address', async () => {
    const name = `${net}d`;
    conflist(name);
    const id = await runDetached(name);
    expect(ipFiles(name)).toHaveLength(1);
    await weftd!.stop();
    const down = await podman(['run', '-d', '--network', name, BUSYBOX_IMAGE, 'sleep', '300']).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(down).toContain('start weftd (or wait until it has restarted) and retry');
    expect(ipFiles(name)).toHaveLength(1);
    await podman(['rm', '-f', '-t', '0', id]);
    await expectClean(name);
    weftd = await startCniWeftd(hostNs, W);
    process.kill(weftd.child.pid!, 'SIGKILL');
    await waitFor('weftd to die', () => weftd!.child.exitCode !== null || weftd!.child.signalCode);
    const stale = await podman([
      'run',
      '-d',
      '--network',
      name,
      BUSYBOX_IMAGE,
      'sleep',
      '300',
    ]).then(
      () => '',
      (e: Error) => e.message,
    );
    expect(stale).toMatch(/Connection refused: ADD runs inside weftd/);
    await expectClean(name);
    weftd = await startCniWeftd(hostNs, W);
    await podman(['rm', '-af', '-t', '0']);
    const again = await runDetached(name);
    expect(ipFiles(name)).toEqual([await ipOf(name, again)]);
    await podman(['rm', '-f', '-t', '0', again]);
    await expectClean(name);
  });

  it('`podman restart`, `stop` + `start`, `network reload` and a SIGKILLed container keep one address and one veth, and `rm -f` leaves nothing', async () => {
    const name = `${net}l`;
    conflist(name);
    const id = await runDetached(name);
    const one = async () => {
      const ip = await ipOf(name, id);
      expect(ipFiles(name)).toEqual([ip]);
      expect(stateFiles(name)).toEqual([`${id}@eth0`]);
      expect(await veths()).toBe(1);
    };
    await one();
    await podman(['restart', '-t', '0', id]);
    await one();
    await podman(['stop', '-t', '0', id]);
    await expectClean(name);
    await podman(['start', id]);
    await one();
    await podman(['network', 'reload', id]);
    await one();
    const insp = JSON.parse((await podman(['inspect', id])).stdout) as { State: { Pid: number } }[];
    process.kill(insp[0]!.State.Pid, 'SIGKILL');
    // conmon runs `podman container cleanup`, which DELs
    await waitFor(
      'the killed container to be cleaned up',
      () => ipFiles(name).length === 0,
      20_000,
    );
    await podman(['rm', '-f', '-t', '0', id]);
    await expectClean(name);
  });

  it('15 containers started at once get 15 distinct addresses; removing them at once leaves nothing', async () => {
    const name = `${net}p`;
    conflist(name);
    const ids = await Promise.all(
      Array.from({ length: 15 }, () =>
        podman(['run', '-d', '--network', name, BUSYBOX_IMAGE, 'sleep', '300'], 180_000).then((r) =>
          r.stdout.trim(),
        ),
      ),
    );
    const ips: string[] = [];
    for (const id of ids) ips.push(await ipOf(name, id));
    expect(new Set(ips).size).toBe(15);
    expect(ipFiles(name).sort()).toEqual([...ips].sort());
    expect(stateFiles(name)).toHaveLength(15);
    expect(await veths()).toBe(15);
    await Promise.all(ids.map((id) => podman(['rm', '-f', '-t', '0', id], 180_000)));
    await expectClean(name);
  });
});
