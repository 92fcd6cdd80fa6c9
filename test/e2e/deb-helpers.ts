// The .deb under test: the newest one `npm run package` wrote to dist/deb (scripts/test.sh builds it).
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/exec.js';
import { REPO } from './weftd-harness.js';

/** Path of the newest weft_*.deb in dist/deb; throws the fix when there is none. */
export function builtDeb(): string {
  const dir = join(REPO, 'dist', 'deb');
  const debs = existsSync(dir) ? readdirSync(dir).filter((f) => /^weft_.*\.deb$/.test(f)) : [];
  if (debs.length === 0) {
    throw new Error(`no weft_*.deb in ${dir}: run \`npm run package\` (scripts/test.sh does)`);
  }
  return join(dir, debs.sort().at(-1)!);
}

/**
 * Runs `script` (sh) as root on a scratch copy of this host: a chroot into an overlay of `/` (writes go
 * to a tmpfs) in private mount, PID and network namespaces, with a fresh tmpfs /run and /tmp and `files`
 * copied into its /tmp. So dpkg can install, upgrade and purge the package for real while the host's
 * root filesystem, dpkg database and network stay untouched; everything it started dies with it.
 * Resolves with its stdout and exit code.
 */
export async function onScratchHost(
  script: string,
  files: readonly string[],
  timeoutMs = 240_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-scratch-'));
  try {
    writeFileSync(join(dir, 'script.sh'), script);
    const setup = [
      'T=$1; shift',
      'mount -t tmpfs tmpfs "$T/fs"',
      'mkdir "$T/fs/upper" "$T/fs/work" "$T/fs/root"',
      'R=$T/fs/root',
      'mount -t overlay overlay -o "lowerdir=/,upperdir=$T/fs/upper,workdir=$T/fs/work" "$R"',
      'mount -t proc proc "$R/proc"',
      // a sysfs of its own network namespace: weftd reads interfaces from /sys/class/net
      'mount -t sysfs sysfs "$R/sys"',
      'mount --rbind /dev "$R/dev"',
      'mount -t tmpfs tmpfs "$R/run"',
      'mkdir -p "$R/run/lock"',
      'mount -t tmpfs tmpfs "$R/tmp"',
      'cp "$T/script.sh" "$@" "$R/tmp/"',
      'exec chroot "$R" /bin/sh -c "cd /tmp && exec sh /tmp/script.sh"',
    ].join('\n');
    mkdirSync(join(dir, 'fs'));
    const r = await run(
      'unshare',
      [
        '--mount',
        '--pid',
        '--net',
        '--fork',
        '--kill-child',
        '--propagation',
        'private',
        'sh',
        '-ec',
        setup,
        'scratch',
        dir,
        ...files,
      ],
      { timeoutMs, allowFail: true },
    );
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A copy of `deb` that says it is version `version` (an older build to upgrade from). */
export function reversionedDeb(deb: string, version: string, outDir: string): string {
  const tree = join(outDir, `tree-${version}`);
  execFileSync('dpkg-deb', ['-R', deb, tree]);
  const control = join(tree, 'DEBIAN', 'control');
  writeFileSync(
    control,
    readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}`),
  );
  const out = join(outDir, `weft_${version}_test.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '-b', tree, out], {
    stdio: 'ignore',
  });
  rmSync(tree, { recursive: true, force: true });
  return out;
}

/**
 * The start of an onScratchHost script for a packaged weftd: an uplink `eth0` (10.99.0.1/24, a veth)
 * and a local etcd on 127.0.0.1:23790 (`$E` is etcdctl for it) holding a network config for `backend`.
 */
export function scratchUplinkAndEtcd(backend: string): string {
  return `ip link set lo up
ip link add eth0 type veth peer name eth0p
ip link set eth0p up; ip addr add 10.99.0.1/24 dev eth0; ip link set eth0 up
etcd --data-dir /tmp/etcd --listen-client-urls http://127.0.0.1:23790 \\
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \\
  >/tmp/etcd.log 2>&1 &
E="etcdctl --endpoints=http://127.0.0.1:23790"
for i in $(seq 100); do $E endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
$E put /coreos.com/network/config '{"Network":"10.5.0.0/16","Backend":{"Type":"${backend}"}}' >/dev/null
`;
}
