/**
 * What the `.deb` from `npm run package` holds and declares (issue 14): the executables and where they
 * are, Depends: on Debian packages only (no Node.js, no compiler), the unit passing `systemd-analyze
 * verify`, and maintainer scripts that start nothing on a fresh install and only try-restart on an
 * upgrade (run for real against a recording `systemctl`, with /run/systemd/system present in a private
 * mount namespace).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/exec.js';
import { requireCaps } from '../helpers/require.js';
import { builtDeb } from './deb-helpers.js';

const runnable = requireCaps('root');

describe.skipIf(!runnable)('the weft .deb', () => {
  let deb: string;
  let root: string;
  beforeAll(() => {
    deb = builtDeb();
    root = mkdtempSync(join(tmpdir(), 'weft-debc-'));
    execFileSync('dpkg-deb', ['-R', deb, root]);
    // for systemd-analyze verify: a root holding the package and the host's own units (sysinit.target…)
    mkdirSync(join(root, 'usr/lib/systemd/system'), { recursive: true });
    execFileSync('cp', ['-a', '/usr/lib/systemd/system/.', join(root, 'usr/lib/systemd/system/')]);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('installs weftd, weftctl and the full CNI plugin as links to one executable, the C shim as the plugin', () => {
    const files = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
    expect(files).toMatch(/\.\/usr\/bin\/weftd -> \.\.\/lib\/weft\/weft$/m);
    expect(files).toMatch(/\.\/usr\/bin\/weftctl -> \.\.\/lib\/weft\/weft$/m);
    expect(files).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/lib\/cni\/weft$/m); // the C shim
    expect(files).toMatch(/\.\/usr\/lib\/cni\/weft-full -> \.\.\/weft\/weft$/m);
    expect(files).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/lib\/weft\/weft$/m);
    for (const f of [
      './usr/lib/weft/weft_native.node',
      './usr/lib/weft/netlink_binding.node',
      './usr/lib/weft/weft_peercred.node',
      './lib/systemd/system/weftd.service',
      './etc/default/weftd',
      './usr/share/weft/docker.service.d/weft.conf',
    ])
      expect(files).toContain(f);
    expect(readFileSync(join(root, 'DEBIAN', 'conffiles'), 'utf8')).toBe('/etc/default/weftd\n');
  });

  it('ships its ELF files stripped, as dh_strip would (lintian: unstripped-binary-or-object)', () => {
    for (const f of [
      'usr/lib/weft/weft',
      'usr/lib/weft/weft_native.node',
      'usr/lib/weft/netlink_binding.node',
      'usr/lib/weft/weft_peercred.node',
      'usr/lib/cni/weft',
    ]) {
      const sections = execFileSync('readelf', ['-SW', join(root, f)], { encoding: 'utf8' });
      expect(sections, f).not.toMatch(/\s\.(symtab|debug_\w+)\s/);
      // what the addons link against stays: N-API in the executable's dynamic symbols
      if (f.includes('/weft/')) expect(sections, f).toMatch(/\s\.dynsym\s/);
    }
  });

  it("control's Description fits 80 columns, and copyright names what the package bundles", () => {
    const desc = execFileSync('dpkg-deb', ['-f', deb, 'Description'], { encoding: 'utf8' });
    for (const line of desc.trimEnd().split('\n'))
      expect(line.length, line).toBeLessThanOrEqual(80);
    const copyright = readFileSync(join(root, 'usr/share/doc/weft/copyright'), 'utf8');
    expect(copyright).toMatch(/^Copyright: /m);
    // the npm packages the executable once carried and no longer does (weft's own etcd client and
    // Prometheus text format replaced them)
    for (const gone of ['etcd3', 'grpc', 'protobufjs', 'prom-client'])
      expect(copyright).not.toContain(gone);
  });

  it('depends on Debian packages only: no Node.js, no compiler', () => {
    const depends = execFileSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' }).trim();
    const names = depends.split(',').map((d) => d.trim().split(/[\s(]/)[0]);
    for (const need of ['libc6', 'libstdc++6', 'iproute2', 'nftables', 'iptables'])
      expect(names).toContain(need);
    expect(names).toContain('containernetworking-plugins');
    for (const bad of ['nodejs', 'node', 'npm', 'g++', 'gcc', 'make', 'python3', 'libnode108'])
      expect(names).not.toContain(bad);
    // every one of them is a package this Debian knows
    for (const n of names)
      expect(execFileSync('apt-cache', ['show', '--no-all-versions', n!]).length).toBeGreaterThan(
        0,
      );
  });

  it('weftd.service passes systemd-analyze verify and is Type=notify', async () => {
    const unit = readFileSync(join(root, 'lib/systemd/system/weftd.service'), 'utf8');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^EnvironmentFile=-\/etc\/default\/weftd$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE$/m);
    const r = await run('systemd-analyze', ['verify', `--root=${root}`, 'weftd.service'], {
      allowFail: true,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.includes('weftd'))).toEqual([]);
  });

  it('the docker drop-in passes systemd-analyze verify on top of Debian docker.service', async () => {
    const dropin = join(root, 'etc/systemd/system/docker.service.d');
    mkdirSync(dropin, { recursive: true });
    cpSync(join(root, 'usr/share/weft/docker.service.d/weft.conf'), join(dropin, 'weft.conf'));
    // stand-ins for docker.io's unit and executables (verify checks that they are executable)
    writeFileSync(
      join(root, 'usr/lib/systemd/system/docker.service'),
      '[Unit]\nDescription=Docker\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\n' +
        'ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS\n[Install]\nWantedBy=multi-user.target\n',
    );
    mkdirSync(join(root, 'usr/sbin'), { recursive: true });
    writeFileSync(join(root, 'usr/sbin/dockerd'), '#!/bin/sh\n');
    chmodSync(join(root, 'usr/sbin/dockerd'), 0o755);
    const r = await run('systemd-analyze', ['verify', `--root=${root}`, 'docker.service'], {
      allowFail: true,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /docker|weft/.test(l))).toEqual([]);
  });

  it("the docker drop-in orders dockerd after weftd without tying dockerd's life to weftd's", () => {
    const unit = readFileSync(join(root, 'usr/share/weft/docker.service.d/weft.conf'), 'utf8');
    const deps = unit
      .split('\n')
      .filter((l) =>
        /^\s*(After|Wants|Requires|Requisite|BindsTo|PartOf)\s*=.*weftd\.service/.test(l),
      )
      .map((l) => l.split('=')[0]!.trim());
    // Requires/BindsTo/PartOf/Requisite would stop or restart dockerd (and every container without
    // live-restore) when weftd is stopped or restarted, e.g. by a package upgrade's try-restart
    expect(deps.sort()).toEqual(['After', 'Wants']);
  });

  /**
   * Runs a maintainer script with systemd "running" and a systemctl that records its arguments. The
   * host's policy-rc.d is replaced (through DPKG_ROOT, which deb-systemd-invoke reads it under) by
   * none, or by one that exits `policy` (101: "do not start or stop services", as in image builds).
   */
  async function maint(script: string, args: string[], policy?: number): Promise<string[]> {
    const fake = mkdtempSync(join(tmpdir(), 'weft-maint-'));
    try {
      writeFileSync(join(fake, 'systemctl'), `#!/bin/sh\necho "$*" >> ${fake}/calls\n`);
      chmodSync(join(fake, 'systemctl'), 0o755);
      if (policy !== undefined) {
        mkdirSync(join(fake, 'usr', 'sbin'), { recursive: true });
        writeFileSync(join(fake, 'usr', 'sbin', 'policy-rc.d'), `#!/bin/sh\nexit ${policy}\n`);
        chmodSync(join(fake, 'usr', 'sbin', 'policy-rc.d'), 0o755);
      }
      mkdirSync(join(fake, 'run-systemd', 'system'), { recursive: true });
      writeFileSync(join(fake, 'calls'), '');
      await run('unshare', [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mkdir -p /run/systemd && mount --bind ${fake}/run-systemd /run/systemd && DPKG_ROOT=${fake} PATH=${fake}:/usr/sbin:/usr/bin:/sbin:/bin exec "$@"`,
        'maint',
        join(root, 'DEBIAN', script),
        ...args,
      ]);
      return readFileSync(join(fake, 'calls'), 'utf8').split('\n').filter(Boolean);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  }

  it('maintainer scripts: a fresh install starts and enables nothing', async () => {
    expect(await maint('postinst', ['configure', ''])).toEqual(['daemon-reload']);
  });

  it('maintainer scripts: an upgrade restarts weftd only if it runs, and never stops it first', async () => {
    expect(await maint('prerm', ['upgrade', '0.1.1'])).toEqual([]);
    expect(await maint('postinst', ['configure', '0.0.9'])).toEqual([
      'daemon-reload',
      'try-restart weftd.service',
    ]);
  });

  it('maintainer scripts: removal stops weftd (the dataplane stays) and keeps it enabled for a reinstall', async () => {
    expect(await maint('prerm', ['remove'])).toEqual(['stop weftd.service']);
    expect(await maint('postrm', ['remove'])).toEqual(['daemon-reload']);
  });

  it('maintainer scripts: a policy-rc.d that forbids service actions (101) is obeyed', async () => {
    // Debian policy 9.3.3: an image build or a maintenance window sets policy-rc.d to keep services
    // as they are; a direct `systemctl try-restart` or `stop` would ignore it
    expect(await maint('postinst', ['configure', '0.0.9'], 101)).toEqual(['daemon-reload']);
    expect(await maint('prerm', ['remove'], 101)).toEqual([]);
    // 0 allows them
    expect(await maint('postinst', ['configure', '0.0.9'], 0)).toEqual([
      'daemon-reload',
      'try-restart weftd.service',
    ]);
    expect(await maint('prerm', ['remove'], 0)).toEqual(['stop weftd.service']);
  });
});
