/**
 * A real runtime drives the plugin (issue 6, cni-contract.md B3): podman 4.3 with its CNI backend runs
 * busybox containers on weft conflists (cniVersion 1.0.0 and 0.4.0). Everything podman does stays in
 * places this test creates: podman runs with `nsenter --net=<test host netns>` (so the bridge, veths and
 * ip_forward land there, not in the root namespace), a private containers.conf (CONTAINERS_CONF), private
 * --root/--runroot/tmp_dir/events log, vfs storage (no mounts), a temp CNI config dir and bin dir. podman
 * still creates /var/lib/containers/cache and libcni's /var/lib/cni/results; the test removes what it
 * created there. Needs podman, runc (crun refuses this cgroup-v1 host) and busybox-static.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../helpers/exec.js';
import { useLeakCheck } from '../../helpers/leaks.js';
import { createNetns, deleteNetns, ping, uniquePrefix } from '../../helpers/netns.js';
import { inCI, requireCaps } from '../../helpers/require.js';
import { installPlugin } from './cni-helpers.js';

function haveTools(): boolean {
  const missing = ['podman', 'runc', 'busybox'].filter((c) => {
    try {
      execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return true;
  const msg = `podman CNI test needs ${missing.join(', ')} (apt-get install podman runc busybox-static)`;
  if (inCI) throw new Error(`${msg} (CI=true: a missing capability is a failure, not a skip)`);
  console.warn(`skipping: ${msg}`);
  return false;
}

const runnable = requireCaps('root', 'netns', 'cniPlugins', 'ping') && haveTools();
useLeakCheck();

const SYSTEM_PATHS = [
  '/var/lib/containers',
  '/var/lib/cni',
  '/run/libpod',
  '/run/containers',
  '/etc/cni/net.d/cni.lock',
];

describe.skipIf(!runnable)('podman (CNI backend) runs containers on a weft network', () => {
  let W: string;
  let binDir: string;
  let hostNs: string;
  let net: string;
  const preexisting = new Map<string, boolean>();

  const podman = (args: string[], timeoutMs = 60_000) =>
    run(
      'nsenter',
      [
        `--net=/var/run/netns/${hostNs}`,
        'podman',
        '--root',
        join(W, 'storage'),
        '--runroot',
        join(W, 'runroot'),
        '--storage-driver',
        'vfs',
        ...args,
      ],
      { env: { ...process.env, CONTAINERS_CONF: join(W, 'containers.conf') }, timeoutMs },
    );

  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const stateFiles = (name: string) => files(join(W, 'state', name));
  const ipFiles = (name: string) =>
    files(join(W, 'ipam', name)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));

  function conflist(name: string, cniVersion: string): void {
    writeFileSync(
      join(W, 'net.d', `${name}.conflist`),
      JSON.stringify({
        cniVersion,
        name,
        plugins: [
          {
            type: 'weft',
            subnetFile: join(W, 'subnet.env'),
            dataDir: join(W, 'state'),
            ipam: { dataDir: join(W, 'ipam') },
            delegate: { bridge: 'weftbr0', hairpinMode: true },
          },
        ],
      }),
    );
  }

  beforeAll(async () => {
    for (const p of SYSTEM_PATHS) preexisting.set(p, existsSync(p));
    W = mkdtempSync(join(tmpdir(), 'weft-podman-'));
    for (const d of ['net.d', 'state', 'ipam', 'tmp']) mkdirSync(join(W, d));
    binDir = await installPlugin();
    const prefix = uniquePrefix();
    net = `${prefix}n`.replace(/^weft-t/, 'weftpm');
    hostNs = await createNetns(`${prefix}p`);
    writeFileSync(
      join(W, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${binDir}", "/usr/lib/cni"]`,
        `network_config_dir = "${join(W, 'net.d')}"`,
        `default_network = "${net}-default"`,
        'default_subnet = "10.213.99.0/24"',
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${join(W, 'events.log')}"`,
        `tmp_dir = "${join(W, 'tmp')}"`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(W, 'subnet.env'),
      'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.6.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    // A busybox image without a registry.
    const root = join(W, 'rootfs');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
    for (const a of ['sh', 'ip', 'ping', 'sleep', 'cat'])
      symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await run('tar', ['-C', root, '-cf', join(W, 'rootfs.tar'), '.']);
    await podman([
      'import',
      '--change',
      'CMD ["/bin/sh"]',
      join(W, 'rootfs.tar'),
      'localhost/weftpm-busybox:latest',
    ]);
  });

  afterAll(async () => {
    if (W && hostNs) await podman(['rm', '-af', '-t', '0']).catch(() => undefined);
    if (hostNs) await deleteNetns(hostNs);
    if (W) {
      for (const line of execFileSync('cat', ['/proc/mounts'], { encoding: 'utf8' }).split('\n')) {
        const mnt = line.split(' ')[1];
        if (mnt?.startsWith(W)) execFileSync('umount', ['-l', mnt]);
      }
      rmSync(W, { recursive: true, force: true });
    }
    if (binDir) rmSync(binDir, { recursive: true, force: true });
    // libcni's cache: only this test's entries, then the directories if they are empty and were ours.
    for (const f of files('/var/lib/cni/results')) {
      if (net && f.startsWith(net)) rmSync(join('/var/lib/cni/results', f), { force: true });
    }
    for (const d of ['/var/lib/cni/results', '/var/lib/cni']) {
      if (!preexisting.get('/var/lib/cni') && existsSync(d) && files(d).length === 0) rmdirSync(d);
    }
    for (const [p, existed] of preexisting) {
      if (!existed && p !== '/var/lib/cni') rmSync(p, { recursive: true, force: true });
    }
  });

  it('cniVersion 1.0.0: `podman run --rm` gets an address from the subnet, routes to the cluster, and DEL cleans up', async () => {
    const name = `${net}a`;
    conflist(name, '1.0.0');
    const r = await podman([
      'run',
      '--rm',
      '--network',
      name,
      'localhost/weftpm-busybox:latest',
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

  it('cniVersion 0.4.0: a detached container is reachable from the host netns and from a second container; `podman rm -f` runs DEL', async () => {
    const name = `${net}b`;
    conflist(name, '0.4.0');
    const id = (
      await podman([
        'run',
        '-d',
        '--network',
        name,
        'localhost/weftpm-busybox:latest',
        'sleep',
        '120',
      ])
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
      'localhost/weftpm-busybox:latest',
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
