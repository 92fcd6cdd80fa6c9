#!/usr/bin/env node
// `npm run package`: builds weft_<version>_<arch>.deb (docs/install.md, docs/design.md C18).
//
// The package carries its own runtime: ONE Node single-executable application (SEA: this machine's node
// binary with a script injected by postject) at /usr/lib/weft/weft that is weftd, weftctl or the CNI
// plugin depending on the name it is started by; /usr/bin/weftd, /usr/bin/weftctl and
// /usr/lib/cni/weft-full are symlinks to it (/usr/lib/cni/weft is the C shim: CNI_PLUGIN below). The
// native addons (weft's own and the patched netlink binding), built from source by `npm ci` for this
// machine, sit beside it and are loaded by absolute path. No Node.js package and no compiler on the
// target host; Depends: come from dpkg-shlibdeps on the ELF files plus the tools weftd runs.
//
// Usage: node scripts/package.mjs [--outdir dist/deb] [--fast]   (prints the .deb path and its size)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const outIdx = process.argv.indexOf('--outdir');
const outdir = resolve(outIdx > 0 ? process.argv[outIdx + 1] : join(root, 'dist', 'deb'));
const work = join(outdir, 'build');
const tree = join(work, 'root');

/** Where things go on the target host. */
export const LIBDIR = '/usr/lib/weft';
const EXE = `${LIBDIR}/weft`;
/**
 * THE one place that says which executable is the CNI plugin (/usr/lib/cni/weft): the C shim (cni-shim/,
 * built by `npm run build`), which hands each call to weftd's socket; when weftd cannot serve it, the shim
 * runs `weft-full` beside its own path, here a symlink to the multi-call executable (the full plugin).
 */
const CNI_PLUGIN = { file: join(root, 'cni-shim', 'build', 'weft-cni-shim') };
const CNI_FALLBACK = '/usr/lib/cni/weft-full';

/** The native addons the bundles load (source in the checkout → file name under LIBDIR). */
const ADDONS = [
  { from: join(root, 'native', 'build', 'Release', 'weft_native.node'), to: 'weft_native.node' },
  {
    from: join(root, 'node_modules', 'netlink', 'build', 'Release', 'netlink_binding.node'),
    to: 'netlink_binding.node',
  },
  // SO_PEERCRED for weftd's CNI socket (src/daemon/cni-peercred.ts)
  { from: join(root, 'cni-shim', 'build', 'weft_peercred.node'), to: 'weft_peercred.node' },
];

/** Tools weftd, weftctl and the CNI plugin run (not found by dpkg-shlibdeps). */
const TOOL_DEPENDS = [
  'iproute2',
  'nftables',
  'iptables',
  'containernetworking-plugins',
  'iputils-ping',
];

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...opts,
  });
}

function debArch() {
  return run('dpkg', ['--print-architecture']).trim();
}

/** esbuild plugin: the place where a bundled package reads a file next to itself (netlink's addon). */
function packagedFilesPlugin() {
  return {
    name: 'weft-packaged-files',
    setup(b) {
      b.onLoad({ filter: /netlink[\\/]dist[\\/]raw\.js$/ }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        const line = "require('node-gyp-build')(__dirname + '/..')";
        if (!src.includes(line))
          throw new Error(`netlink changed: no node-gyp-build in ${args.path}`);
        // __dirname of the running bundle is LIBDIR (src/sea/main.ts runs it from there)
        return {
          contents: src.replace(
            line,
            "require(require('node:path').join(__dirname, 'netlink_binding.node'))",
          ),
          loader: 'js',
        };
      });
    },
  };
}

async function bundle() {
  const seaDir = join(work, 'sea');
  mkdirSync(seaDir, { recursive: true });
  const common = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  };
  const main = await build({
    ...common,
    entryPoints: [join(root, 'src', 'sea', 'main.ts')],
    outfile: join(seaDir, 'main.cjs'),
    external: ['../daemon/main.js', '../cli/main.js'],
  });
  const bad = Object.keys(main.metafile.inputs).filter((i) =>
    /node_modules\/|src\/(daemon|cli|subnet|backend[^/]*|dataplane|netlink)\//.test(i),
  );
  if (bad.length > 0) throw new Error(`the SEA main script must stay small: ${bad.join(', ')}`);
  // Modules see themselves at LIBDIR/dist/bundle/weft.cjs, so `new URL('../../package.json',
  // import.meta.url)` finds LIBDIR/package.json and the native loader looks in LIBDIR.
  const full = await build({
    ...common,
    entryPoints: [join(root, 'src', 'sea', 'full.ts')],
    outfile: join(seaDir, 'weft-full.cjs'),
    define: { 'import.meta.url': '__weftImportMetaUrl' },
    banner: {
      js:
        'var __weftImportMetaUrl = require("node:url").pathToFileURL(' +
        'require("node:path").join(__dirname, "dist", "bundle", "weft.cjs")).href;',
    },
    plugins: [packagedFilesPlugin()],
  });
  const sizes = Object.fromEntries(
    Object.entries({ ...main.metafile.outputs, ...full.metafile.outputs }).map(([k, v]) => [
      k,
      v.bytes,
    ]),
  );
  return { seaDir, sizes };
}

function makeSea(seaDir) {
  const node = process.execPath;
  if (!readFileSync(node).includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2')) {
    throw new Error(`${node} has no single-executable fuse; build with a Node that supports SEA`);
  }
  const config = {
    main: join(seaDir, 'main.cjs'),
    output: join(seaDir, 'sea-prep.blob'),
    disableExperimentalSEAWarning: true,
    // no code cache: V8 rejects it (with a warning on every start) when the flags differ from the
    // build's, and weftd.service runs with NODE_OPTIONS=--max-semi-space-size=2; the main script is
    // small (dispatcher + CNI plugin), so the cache would save about a millisecond
    useCodeCache: false,
    assets: { 'weft-full.cjs': join(seaDir, 'weft-full.cjs') },
  };
  writeFileSync(join(seaDir, 'sea-config.json'), JSON.stringify(config, null, 2));
  run(node, ['--experimental-sea-config', join(seaDir, 'sea-config.json')], { cwd: seaDir });
  const exe = join(seaDir, 'weft');
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  // before the blob goes in (postject adds it as an ELF note, which strip would not keep)
  stripElf(exe);
  run(
    node,
    [
      require.resolve('postject/dist/cli.js'),
      exe,
      'NODE_SEA_BLOB',
      config.output,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return exe;
}

/**
 * Strips symbols and debug info as Debian's dh_strip does (lintian: unstripped-binary-or-object): Node's
 * runtime alone carries ~12 MB of them. The dynamic symbol table stays, so the addons still find N-API
 * in the executable.
 */
function stripElf(file) {
  run('strip', ['--strip-unneeded', '--remove-section=.comment', file]);
}

function put(src, dest, mode) {
  const to = join(tree, dest);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(src, to);
  chmodSync(to, mode);
}

function link(target, dest) {
  const at = join(tree, dest);
  mkdirSync(dirname(at), { recursive: true });
  symlinkSync(relative(dirname(dest), target), at);
}

/** Depends: from the ELF files (dpkg-shlibdeps, as a Debian build does) plus the tools. */
function shlibDepends(elfs) {
  const dir = join(work, 'shlibdeps');
  mkdirSync(join(dir, 'debian'), { recursive: true });
  writeFileSync(
    join(dir, 'debian', 'control'),
    'Source: weft\n\nPackage: weft\nArchitecture: any\n',
  );
  // its warnings (N-API symbols resolved by the executable itself, libraries linked but unused) are
  // expected for Node addons; they are shown only when it fails
  let out;
  try {
    out = run('dpkg-shlibdeps', ['-O', '-xweft', ...elfs], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    process.stderr.write(String(err.stderr ?? ''));
    throw err;
  }
  const m = /shlibs:Depends=(.*)/.exec(out);
  if (!m) throw new Error(`dpkg-shlibdeps gave no Depends: ${out}`);
  return m[1].trim();
}

function controlFile(arch, depends, installedKb) {
  return [
    'Package: weft',
    `Version: ${pkg.version}`,
    `Architecture: ${arch}`,
    'Maintainer: weft maintainers <weft@localhost>',
    `Installed-Size: ${installedKb}`,
    `Depends: ${depends}`,
    'Recommends: etcd-client',
    'Suggests: docker.io, etcd-server',
    'Section: net',
    'Priority: optional',
    'Homepage: https://github.com/weft/weft',
    'Description: container overlay network (flannel-compatible leases in etcd)',
    // at most 80 columns a line (lintian: extended-description-line-too-long)
    " weftd leases a subnet per host from etcd, in flannel's key layout, and",
    ' programs the Linux dataplane (kernel VXLAN, host-gw routes, or IP-in-UDP',
    ' through a native forwarder) so every container reaches every other one by',
    ' its own address. The package carries weftd (systemd unit weftd.service,',
    ' Type=notify), weftctl (status, doctor, migration from flannel, Docker',
    ' options) and the `weft` CNI plugin in /usr/lib/cni. It brings its own',
    ' runtime: no Node.js and no compiler needed.',
    '',
  ].join('\n');
}

/** The staged executables answer by each of their names, with an empty environment (no node on PATH). */
function smokeTest() {
  const env = { PATH: '/usr/sbin:/sbin' };
  const v = run(join(tree, 'usr/bin/weftd'), ['--version'], { env }).trim();
  if (v !== `weftd ${pkg.version}`)
    throw new Error(`packaged weftd --version said ${JSON.stringify(v)}`);
  const c = run(join(tree, 'usr/bin/weftctl'), ['version'], { env }).trim();
  if (c !== `weftctl ${pkg.version}`)
    throw new Error(`packaged weftctl version said ${JSON.stringify(c)}`);
  // the shim (weftd not running: it falls back to weft-full) and the full plugin itself
  for (const plugin of ['usr/lib/cni/weft', 'usr/lib/cni/weft-full']) {
    const cni = run(join(tree, plugin), [], {
      env: { ...env, CNI_COMMAND: 'VERSION' },
      input: '{"cniVersion":"1.0.0","daemonSocket":"/nonexistent/weft-package-smoke.sock"}',
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    if (!JSON.parse(cni).supportedVersions)
      throw new Error(`packaged ${plugin} VERSION said ${cni}`);
  }
}

function duKb(dir) {
  return Number(run('du', ['-sk', '--apparent-size', dir]).split(/\s/)[0]);
}

export async function makePackage() {
  for (const a of ADDONS) {
    if (!existsSync(a.from))
      throw new Error(`${a.from} missing: run \`npm ci\` (it builds the addons)`);
  }
  rmSync(work, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const { seaDir, sizes } = await bundle();
  const exe = makeSea(seaDir);

  put(exe, `${EXE}`, 0o755);
  for (const a of ADDONS) {
    put(a.from, `${LIBDIR}/${a.to}`, 0o644);
    stripElf(join(tree, LIBDIR.slice(1), a.to));
  }
  writeFileSync(
    join(tree, LIBDIR.slice(1), 'package.json'),
    JSON.stringify({ name: 'weft', version: pkg.version }) + '\n',
  );
  link(EXE, '/usr/bin/weftd');
  link(EXE, '/usr/bin/weftctl');
  if (!existsSync(CNI_PLUGIN.file))
    throw new Error(`${CNI_PLUGIN.file} missing: run \`npm run build\``);
  put(CNI_PLUGIN.file, '/usr/lib/cni/weft', 0o755);
  stripElf(join(tree, 'usr/lib/cni/weft'));
  link(EXE, CNI_FALLBACK);

  const p = (f) => join(root, 'packaging', f);
  put(p('weftd.service'), '/lib/systemd/system/weftd.service', 0o644);
  put(p('default-weftd'), '/etc/default/weftd', 0o644);
  put(p('docker-weft.conf'), '/usr/share/weft/docker.service.d/weft.conf', 0o644);
  put(p('copyright'), '/usr/share/doc/weft/copyright', 0o644);
  for (const doc of ['README.md']) put(join(root, doc), `/usr/share/doc/weft/${doc}`, 0o644);
  mkdirSync(join(tree, 'usr/share/doc/weft/docs'), { recursive: true });
  for (const f of readdirMd(join(root, 'docs'))) {
    put(join(root, 'docs', f), `/usr/share/doc/weft/docs/${f}`, 0o644);
  }

  smokeTest();
  const arch = debArch();
  const elfs = [join(tree, EXE.slice(1)), ...ADDONS.map((a) => join(tree, LIBDIR.slice(1), a.to))];
  const depends = [shlibDepends(elfs), ...TOOL_DEPENDS].join(', ');
  const debian = join(tree, 'DEBIAN');
  mkdirSync(debian, { recursive: true });
  writeFileSync(join(debian, 'control'), controlFile(arch, depends, duKb(tree)));
  writeFileSync(join(debian, 'conffiles'), '/etc/default/weftd\n');
  for (const s of ['postinst', 'prerm', 'postrm']) put(p(`debian/${s}`), `/DEBIAN/${s}`, 0o755);

  const deb = join(outdir, `weft_${pkg.version}_${arch}.deb`);
  rmSync(deb, { force: true });
  // xz -6 for the package to ship; --fast (scripts/test.sh) uses gzip: same contents, ~1.5x larger
  const compress = process.argv.includes('--fast') ? ['-Zgzip', '-z6'] : ['-Zxz', '-z6'];
  run('dpkg-deb', ['--root-owner-group', ...compress, '--build', tree, deb], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { deb, bytes: statSync(deb).size, installedKb: duKb(tree), depends, sizes, tree };
}

function readdirMd(dir) {
  if (!existsSync(dir)) return [];
  return execFileSync('ls', [dir], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.md'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  const r = await makePackage();
  const mib = (n) => (n / 1048576).toFixed(1);
  console.log(`built ${r.deb}`);
  console.log(
    `  package ${mib(r.bytes)} MiB (installed ${mib(r.installedKb * 1024)} MiB) in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  for (const [f, b] of Object.entries(r.sizes)) console.log(`  ${relative(root, f)}: ${b} bytes`);
  console.log(`  Depends: ${r.depends}`);
}
