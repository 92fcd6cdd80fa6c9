#!/usr/bin/env node
// Installs the `weft` CNI plugin into a CNI bin dir: `npm run install:cni -- /opt/cni/bin`.
//   <dir>/weft       the C shim (cni-shim/): hands each call to the running weftd over its CNI socket
//   <dir>/weft-full  the full plugin (the one-file Node bundle, shebang pinned to the installing node):
//                    the shim runs it when weftd cannot serve a call (DEL/GC/CHECK/STATUS/VERSION work
//                    without weftd; ADD answers code 11 "try again later")
// `--standalone` installs the full plugin itself as <dir>/weft (no weftd needed for any command; every
// call then pays a Node start). Files are written atomically (temp + rename), mode 0755. It warns when
// the reference plugins weft delegates to are missing from that dir and from /usr/lib/cni.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { buildCni, buildShim } from './build-cni.mjs';

const args = process.argv.slice(2);
const standalone = args.includes('--standalone');
const dir = resolve(args.find((a) => !a.startsWith('--')) ?? '/opt/cni/bin');
mkdirSync(dir, { recursive: true, mode: 0o755 });
const { outfile } = await buildCni();
const shim = standalone ? null : buildShim();

/** Writes `name` in `dir` atomically with `write(tmp)`, mode 0755. */
function place(name, write) {
  const target = join(dir, name);
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    write(tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
  console.log(`installed ${target}`);
}

// Pin the interpreter: runtimes may call plugins with a PATH that has no `node` on it.
const full = readFileSync(outfile, 'utf8').replace(/^#!.*\n/, `#!${process.execPath}\n`);
place('weft-full', (tmp) => writeFileSync(tmp, full, { mode: 0o755 }));
if (shim) place('weft', (tmp) => copyFileSync(shim, tmp));
else place('weft', (tmp) => writeFileSync(tmp, full, { mode: 0o755 }));

for (const p of ['bridge', 'host-local', 'loopback']) {
  if (!existsSync(join(dir, p)) && !existsSync(join('/usr/lib/cni', p))) {
    console.warn(
      `warning: reference plugin "${p}" is in neither ${dir} nor /usr/lib/cni; weft delegates to it`,
    );
  }
}
