#!/usr/bin/env node
// Installs the `weft` CNI plugin into a CNI bin dir: `npm run install:cni -- /opt/cni/bin`.
// Builds the one-file bundle, then copies it to <dir>/weft (the file name is the CNI `type`) atomically
// (temp file + rename), mode 0755. It also warns when the reference plugins weft delegates to are missing
// from that dir and from /usr/lib/cni (pitfalls.md C3).
import { copyFileSync, chmodSync, existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildCni } from './build-cni.mjs';

const dir = resolve(process.argv[2] ?? '/opt/cni/bin');
mkdirSync(dir, { recursive: true, mode: 0o755 });
const { outfile } = await buildCni();
const target = join(dir, 'weft');
const tmp = join(dir, `.weft.${process.pid}.tmp`);
try {
  copyFileSync(outfile, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
} catch (err) {
  if (existsSync(tmp)) unlinkSync(tmp);
  throw err;
}
console.log(`installed ${target}`);
for (const p of ['bridge', 'host-local', 'loopback']) {
  if (!existsSync(join(dir, p)) && !existsSync(join('/usr/lib/cni', p))) {
    console.warn(
      `warning: reference plugin "${p}" is in neither ${dir} nor /usr/lib/cni; weft delegates to it`,
    );
  }
}
