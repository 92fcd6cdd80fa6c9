/**
 * Docker on weft, as CoreOS ran Docker on flannel (issue 14; docs/docker.md): two simulated hosts with
 * weftd (VXLAN, --ip-masq). On host 1, `weftctl docker-opts --output=<file>` writes mk-docker-opts.sh's
 * env file and Debian's dockerd is started inside host 1's network namespace (`nsenter --net=`, which
 * keeps the cgroup mounts dockerd needs; private data/exec roots, pidfile and socket; vfs storage) with
 * $DOCKER_NETWORK_OPTIONS from that file, as the packaged docker.service drop-in does. FORWARD's policy
 * is DROP (as dockerd sets it where it enables forwarding); weftd notices and puts its forward rules
 * into iptables. A Docker container
 * (busybox image imported from a rootfs, no registry) gets an address from host 1's lease and pings a
 * container the weft CNI plugin added on host 2.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsRun, run, spawnTracked, stopChild, waitFor } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';
import { inCI, requireCaps } from '../helpers/require.js';
import { installPlugin } from '../integration/cni/cni-helpers.js';
import {
  addCniContainer,
  createCluster,
  runWeftctl,
  startWeftds,
  subnetsOf,
  type Cluster,
  type Weftd,
  weftPluginConf,
  type CniContainer,
} from './weftd-harness.js';
import type { ChildProcess } from 'node:child_process';

function haveDocker(): boolean {
  const missing = ['/usr/sbin/dockerd', '/usr/bin/docker', '/usr/bin/busybox'].filter(
    (f) => !existsSync(f),
  );
  if (missing.length === 0) return true;
  const msg = `docker test needs ${missing.join(', ')} (apt-get install docker.io busybox-static)`;
  if (inCI) throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

const runnable =
  requireCaps('root', 'netns', 'etcd', 'etcdctl', 'ping', 'nft', 'cniPlugins') && haveDocker();
useLeakCheck();

describe.skipIf(!runnable)(
  'a Docker container on weft reaches a CNI container on another host',
  () => {
    let c: Cluster | undefined;
    let daemons: Weftd[];
    let dir: string;
    let dockerd: ChildProcess | undefined;
    let binDir: string | undefined;
    let h2: CniContainer | undefined;
    let envFile: string;
    const docker = (args: string[], timeoutMs = 60_000) =>
      run('docker', ['-H', `unix://${dir}/docker.sock`, ...args], { timeoutMs, allowFail: true });
    const conf = (w: Weftd) => ({
      cniVersion: '1.0.0',
      name: 'weftdk',
      ...weftPluginConf(w, 'weftdk0'),
    });

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'weft-docker-'));
      c = await createCluster(2);
      daemons = await startWeftds(c, { Network: '10.49.0.0/16', Backend: { Type: 'vxlan' } }, [
        '--ip-masq',
      ]);
      // host 2: a container added by the weft CNI plugin
      binDir = await installPlugin();
      const w2 = daemons[1]!;
      const stdin = JSON.stringify(conf(w2));
      h2 = await addCniContainer(w2, binDir, 'dk2', `${w2.host.netns}d`, stdin);
    }, 180_000);

    afterAll(async () => {
      try {
        if (dockerd) await stopChild(dockerd, 20_000);
        await h2?.remove();
      } finally {
        // dockerd leaves bind mounts of its netns files under the exec root when killed hard
        const mounts = readFileSync('/proc/mounts', 'utf8')
          .split('\n')
          .map((l) => l.split(' ')[1] ?? '')
          .filter((m) => dir && m.startsWith(dir));
        for (const m of mounts.reverse()) await run('umount', ['-l', m], { allowFail: true });
        if (dir) rmSync(dir, { recursive: true, force: true });
        if (binDir) rmSync(binDir, { recursive: true, force: true });
        await c?.destroy();
      }
    }, 90_000);

    it('weftctl docker-opts writes the env file dockerd is started with', async () => {
      envFile = join(dir, 'run', 'docker.env');
      const r = await runWeftctl(c!, daemons[0]!, ['docker-opts', `--output=${envFile}`]);
      expect(r.code, r.stderr).toBe(0);
      const text = readFileSync(envFile, 'utf8');
      const s1 = subnetsOf(daemons[0]!).subnet;
      const bip = `${s1.split('.').slice(0, 3).join('.')}.1/24`;
      expect(text).toBe(
        `DOCKER_OPT_BIP="--bip=${bip}"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\n` +
          `DOCKER_OPT_MTU="--mtu=1450"\nDOCKER_NETWORK_OPTIONS="--bip=${bip} --ip-masq=false --mtu=1450"\n`,
      );
      // the same on stdout
      const out = await runWeftctl(c!, daemons[0]!, ['docker-opts']);
      expect(out.stdout).toBe(text);
    });

    it('dockerd runs in host 1 with those options; with FORWARD at DROP weftd adds WEFT-FWD', async () => {
      const opts = /^DOCKER_NETWORK_OPTIONS="(.*)"$/m.exec(readFileSync(envFile, 'utf8'))![1]!;
      const ns = daemons[0]!.host.netns;
      dockerd = spawnTracked('nsenter', [
        `--net=/var/run/netns/${ns}`,
        'dockerd',
        `--data-root=${dir}/data`,
        `--exec-root=${dir}/exec`,
        `--pidfile=${dir}/docker.pid`,
        '-H',
        `unix://${dir}/docker.sock`,
        '--storage-driver=vfs',
        ...opts.split(/\s+/),
      ]);
      let log = '';
      dockerd.stderr?.on('data', (b: Buffer) => (log += b.toString()));
      await waitFor(
        'dockerd to answer',
        async () => {
          if (dockerd!.exitCode !== null) throw new Error(`dockerd exited: ${log.slice(-2000)}`);
          return (await docker(['version'], 5000)).code === 0;
        },
        60_000,
        500,
      );
      expect((await nsRun(ns, 'iptables', ['-S', 'FORWARD'])).stdout).toContain('-j DOCKER-USER');
      // dockerd sets FORWARD's policy to DROP when it turns ip_forward on itself; here forwarding was
      // already on (weftd's host), so the test sets it the way dockerd does on such hosts
      await nsRun(ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
      // weftd's resync (2 s here) sees the DROP policy and adds its iptables forward rules
      await waitFor(
        'weftd to jump to WEFT-FWD from FORWARD',
        async () => (await nsRun(ns, 'iptables', ['-S', 'FORWARD'])).stdout.includes('-j WEFT-FWD'),
        20_000,
        250,
      );
    });

    it('a Docker container gets an address in host 1 lease and pings the CNI container on host 2 (FORWARD at DROP)', async () => {
      const root = join(dir, 'rootfs');
      mkdirSync(join(root, 'bin'), { recursive: true });
      copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
      for (const a of ['sh', 'ping', 'ip', 'sleep']) symlinkSync('busybox', join(root, 'bin', a));
      await run('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
      const imp = await docker(['import', join(dir, 'rootfs.tar'), 'weft-busybox:test']);
      expect(imp.code, imp.stderr).toBe(0);
      const r = await docker(
        [
          'run',
          '--rm',
          'weft-busybox:test',
          '/bin/sh',
          '-c',
          `ip -4 -o addr show eth0; ping -c 3 -W 2 ${h2!.ip}`,
        ],
        120_000,
      );
      const s1 = subnetsOf(daemons[0]!).subnet;
      expect(r.stdout).toContain(`inet ${s1.split('.').slice(0, 3).join('.')}.`);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/3 packets transmitted, 3 packets received/);
    });
  },
);
