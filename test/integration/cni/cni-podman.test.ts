/**
 * A real runtime drives the plugin (issue 6, docs/cni-contract.md B3): podman 4.3 with its CNI backend runs
 * busybox containers on weft conflists (cniVersion 1.0.0 and 0.4.0). Everything podman does stays in
 * places this test creates: podman runs with `nsenter --net=<test host netns>` (so the bridge, veths and
 * ip_forward land there, not in the root namespace), a private containers.conf (CONTAINERS_CONF), private
 * --root/--runroot/tmp_dir/events log, vfs storage (no mounts), a temp CNI config dir and bin dir. podman
 * still creates /var/lib/containers/cache and libcni's /var/lib/cni/results; the test removes what it
 * created there. Needs podman, runc (crun refuses this cgroup-v1 host) and busybox-static. The plugin is
 * the installed one (the C shim), served by a real weftd in the test host netns (cni-helpers.ts).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, ping, uniquePrefix } from '../../helpers/netns.js';
import { requireCaps } from '../../helpers/require.js';
import { installPlugin, startCniWeftd, type CniWeftd } from './cni-helpers.js';
import {
  BUSYBOX_IMAGE,
  createPodmanSandbox,
  havePodmanTools,
  type PodmanSandbox,
} from './podman-helpers.js';

const runnable = requireCaps('root', 'netns', 'cniPlugins', 'ping') && havePodmanTools();
useLeakCheck();

describe.skipIf(!runnable)('podman (CNI backend) runs containers on a weft network', () => {
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

  function conflist(
    name: string,
    cniVersion: string,
    chained: Record<string, unknown>[] = [],
  ): void {
    sb!.conflist(name, cniVersion, [
      {
        type: 'weft',
        daemonSocket: weftd!.socket,
        subnetFile: join(W, 'subnet.env'),
        dataDir: join(W, 'state'),
        ipam: { dataDir: join(W, 'ipam') },
        delegate: { bridge: 'weftbr0', hairpinMode: true },
      },
      ...chained,
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

  it('cniVersion 1.0.0: `podman run --rm` gets an address from the subnet, routes to the cluster, and DEL cleans up', async () => {
    const name = `${net}a`;
    conflist(name, '1.0.0');
    const r = await podman([
      'run',
      '--rm',
      '--network',
      name,
      BUSYBOX_IMAGE,
      'sh',
      '-c',
      'ip -4 -o addr show eth0; ip route; ping -c1 -W2 10.77.6.1',
    ]);
    expect(r.stdout).toMatch(/inet 10\.77\.6\.\d+\/24/);
    expect(r.stdout).toContain('10.77.0.0/16 via 10.77.6.1 dev eth0');
    expect(r.stdout).toContain('1 packets received');
    expect(stateFiles(name)).toEqual([]);
    expect(ipFiles(name)).toEqual([]);
  });

  it("chained after weft: portmap (-p), tuning (MAC, sysctl) and firewall get weft's result; `podman rm -f` DELs all of them", async () => {
    const name = `${net}c`;
    conflist(name, '1.0.0', [
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'tuning', mac: '02:77:06:00:00:99', sysctl: { 'net.ipv4.conf.eth0.rp_filter': '2' } },
      { type: 'firewall', backend: 'iptables' },
    ]);
    const id = (
      await podman([
        'run',
        '-d',
        '--network',
        name,
        '-p',
        '18099:80',
        BUSYBOX_IMAGE,
        'sleep',
        '120',
      ])
    ).stdout.trim();
    const [ip] = ipFiles(name);
    expect(ip).toMatch(/^10\.77\.6\.\d+$/);
    const inspect = JSON.parse((await podman(['inspect', id])).stdout) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string }> };
    }[];
    expect(inspect[0]!.NetworkSettings.Networks[name]).toMatchObject({
      IPAddress: ip,
      MacAddress: '02:77:06:00:00:99',
    });
    expect(await ping(hostNs, ip!, 1)).toBe(true);
    const nat = (await run('ip', ['netns', 'exec', hostNs, 'iptables-save', '-t', 'nat'])).stdout;
    expect(nat).toMatch(
      new RegExp(`--dport 18099 .*--to-destination ${ip!.replace(/\./g, '\\.')}:80`),
    );
    await podman(['rm', '-f', '-t', '0', id]);
    expect(stateFiles(name)).toEqual([]);
    expect(ipFiles(name)).toEqual([]);
    const after = (await run('ip', ['netns', 'exec', hostNs, 'iptables-save', '-t', 'nat'])).stdout;
    expect(after).not.toContain('18099');
  });

  it('cniVersion 0.4.0: a detached container is reachable from the host netns and from a second container; `podman rm -f` runs DEL', async () => {
    const name = `${net}b`;
    conflist(name, '0.4.0');
    const id = (
      await podman(['run', '-d', '--network', name, BUSYBOX_IMAGE, 'sleep', '120'])
    ).stdout.trim();
    expect(stateFiles(name)).toEqual([`${id}@eth0`]);
    const [ip] = ipFiles(name);
    expect(ip).toMatch(/^10\.77\.6\.\d+$/);
    const inspect = JSON.parse((await podman(['inspect', id])).stdout) as {
      NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string }> };
    }[];
    expect(inspect[0]!.NetworkSettings.Networks[name]!.IPAddress).toBe(ip);
    expect(inspect[0]!.NetworkSettings.Networks[name]!.MacAddress).toMatch(
      /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/,
    );
    expect(await ping(hostNs, ip!, 1)).toBe(true);
    // A second container on the same weft bridge reaches the first one.
    const r = await podman([
      'run',
      '--rm',
      '--network',
      name,
      BUSYBOX_IMAGE,
      'ping',
      '-c1',
      '-W2',
      ip!,
    ]);
    expect(r.stdout).toContain('1 packets received');
    await podman(['rm', '-f', '-t', '0', id]);
    expect(stateFiles(name)).toEqual([]);
    expect(ipFiles(name)).toEqual([]);
  });
});
