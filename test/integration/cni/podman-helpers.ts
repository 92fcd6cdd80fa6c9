/**
 * Driving podman 4.3 with its CNI backend so that everything it does stays in places a test creates
 * (docs/cni-contract.md B3): podman runs under `nsenter --net=<test host netns>` (the bridge, veths and
 * ip_forward land there, not in the root namespace) with a private containers.conf (CONTAINERS_CONF),
 * private --root/--runroot/tmp_dir/events log, vfs storage (no mounts), a temp CNI config dir and the
 * given CNI bin dir. podman still creates /var/lib/containers/cache and libcni's /var/lib/cni/results;
 * `cleanup()` removes what this sandbox created there (results named after `net`, directories that did
 * not exist before). Needs podman, runc (crun refuses this cgroup-v1 host) and busybox-static.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../helpers/exec.js';
import { inCI } from '../../helpers/require.js';

/** podman, runc and busybox present? Warns (or throws under CI=true) naming what is missing. */
export function havePodmanTools(): boolean {
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

const SYSTEM_PATHS = [
  '/var/lib/containers',
  '/var/lib/cni',
  '/run/libpod',
  '/run/containers',
  '/etc/cni/net.d/cni.lock',
];

/** The local busybox image every sandbox imports (no registry needed). */
export const BUSYBOX_IMAGE = 'localhost/weftpm-busybox:latest';

export interface PodmanSandbox {
  /** the sandbox's temp dir (net.d/, storage, …) */
  readonly dir: string;
  /** network-name prefix of this sandbox (used to find its libcni cache entries) */
  readonly net: string;
  /** runs podman in the host netns with the sandbox's config; throws on a non-zero exit */
  podman(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** writes `<dir>/net.d/<name>.conflist` with the given plugin list */
  conflist(name: string, cniVersion: string, plugins: Record<string, unknown>[]): void;
  /** removes containers, the temp dir and what podman/libcni left under /var/lib and /run */
  cleanup(): Promise<void>;
}

/**
 * Creates a podman sandbox acting in network namespace `hostNs` with CNI plugins from `binDir` (and
 * /usr/lib/cni), and imports the busybox image. `net` must start every network name the test uses.
 */
export async function createPodmanSandbox(
  hostNs: string,
  binDir: string,
  net: string,
): Promise<PodmanSandbox> {
  const preexisting = new Map<string, boolean>();
  for (const p of SYSTEM_PATHS) preexisting.set(p, existsSync(p));
  const W = mkdtempSync(join(tmpdir(), 'weft-podman-'));
  for (const d of ['net.d', 'tmp']) mkdirSync(join(W, d));
  const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

  const podman = (args: string[], timeoutMs = 60_000): Promise<RunResult> =>
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

  const cleanup = async (): Promise<void> => {
    await podman(['rm', '-af', '-t', '0']).catch(() => undefined);
    for (const line of execFileSync('cat', ['/proc/mounts'], { encoding: 'utf8' }).split('\n')) {
      const mnt = line.split(' ')[1];
      if (mnt?.startsWith(W)) execFileSync('umount', ['-l', mnt]);
    }
    rmSync(W, { recursive: true, force: true });
    // libcni's cache: only this sandbox's entries, then the directories if they are empty and were ours.
    for (const f of files('/var/lib/cni/results')) {
      if (f.startsWith(net)) rmSync(join('/var/lib/cni/results', f), { force: true });
    }
    for (const d of ['/var/lib/cni/results', '/var/lib/cni']) {
      if (!preexisting.get('/var/lib/cni') && existsSync(d) && files(d).length === 0) rmdirSync(d);
    }
    for (const [p, existed] of preexisting) {
      if (!existed && p !== '/var/lib/cni') rmSync(p, { recursive: true, force: true });
    }
  };

  try {
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
    // A busybox image without a registry.
    const root = join(W, 'rootfs');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
    for (const a of ['sh', 'ip', 'ping', 'sleep', 'cat'])
      symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await run('tar', ['-C', root, '-cf', join(W, 'rootfs.tar'), '.']);
    await podman(['import', '--change', 'CMD ["/bin/sh"]', join(W, 'rootfs.tar'), BUSYBOX_IMAGE]);
  } catch (err) {
    await cleanup();
    throw err;
  }

  return {
    dir: W,
    net,
    podman,
    cleanup,
    conflist(name, cniVersion, plugins) {
      writeFileSync(
        join(W, 'net.d', `${name}.conflist`),
        JSON.stringify({ cniVersion, name, plugins }),
      );
    },
  };
}
