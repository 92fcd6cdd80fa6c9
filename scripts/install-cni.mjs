#!/usr/bin/env node
// Installs the `weft` CNI plugin into a CNI bin dir: `npm run install:cni -- /opt/cni/bin`.
// Builds the one-file bundle, then copies it to <dir>/weft (the file name is the CNI `type`) atomically
// (temp file + rename), mode 0755, with the shebang pinned to the node that ran the install. It also
// warns when the reference plugins weft delegates to are missing from that dir and from /usr/lib/cni
// (pitfalls.md C3).
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { buildCni } from './build-cni.mjs';

const dir = resolve(process.argv[2] ?? '/opt/cni/bin');
mkdirSync(dir, { recursive: true, mode: 0o755 });
const { outfile } = await buildCni();
const target = join(dir, 'weft');
const tmp = join(dir, `.weft.${process.pid}.tmp`);
try {
  // Pin the interpreter: runtimes may call plugins with a PATH that has no `node` on it.
  const code = readFileSync(outfile, 'utf8').replace(/^#!.*\n/, `#!${process.execPath}\n`);
  writeFileSync(tmp, code, { mode: 0o755 });
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
