/**
 * The packaged multi-call executable (docs/design.md C18): ONE Node single-executable application,
 * installed as /usr/lib/weft/weft, that is weftd, weftctl or the `weft` CNI plugin depending on the name
 * it was started by (/usr/bin/weftd, /usr/bin/weftctl and /usr/lib/cni/weft-full, the full CNI plugin,
 * are symlinks to it; /usr/lib/cni/weft is the C shim in cni-shim/, which falls back to weft-full).
 *
 * This file is the SEA's main script, bundled to CommonJS by scripts/package.mjs with the CNI plugin
 * inside (the per-container path loads nothing else). weftd and weftctl are a second bundle stored as a
 * SEA asset and compiled only when one of them is started, so the CNI plugin does not pay for parsing
 * the etcd client and the daemon.
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { runInThisContext } from 'node:vm';
import { getAsset, isSea } from 'node:sea';

/** The name of the SEA asset holding weftd + weftctl (scripts/package.mjs writes it). */
export const FULL_ASSET = 'weft-full.cjs';

/** Which program to be, from the name the executable was started by. */
export function programFor(argv0: string): 'weftd' | 'weftctl' | 'cni' | null {
  const name = basename(argv0);
  if (name === 'weftd') return 'weftd';
  if (name === 'weftctl') return 'weftctl';
  // the CNI runtime execs the plugin by its `type` ("weft"); the packaged /usr/lib/cni/weft is the C shim
  // (cni-shim/), which runs this executable as `weft-full` when weftd cannot serve a call
  if (name === 'weft' || name === 'weft-full' || name.startsWith('weft-cni')) return 'cni';
  return null;
}

/** Compiles and runs the weftd/weftctl bundle as a CommonJS module whose directory is the executable's. */
function runFull(): void {
  const code = getAsset(FULL_ASSET, 'utf8');
  const filename = join(dirname(process.execPath), FULL_ASSET);
  const wrapper = runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${code}\n})`,
    { filename },
  ) as (e: unknown, r: NodeJS.Require, m: { exports: unknown }, f: string, d: string) => void;
  const mod = { exports: {} };
  wrapper(mod.exports, createRequire(filename), mod, filename, dirname(filename));
}

const program = programFor(process.argv0);
if (!isSea()) {
  process.stderr.write('src/sea/main.ts runs only inside the packaged executable\n');
  process.exitCode = 2;
} else if (program === 'weftd' || program === 'weftctl') {
  runFull();
} else if (program === 'cni') {
  void import('../cni/main.js');
} else {
  process.stderr.write(
    `weft: started as "${basename(process.argv0)}"; this executable is weftd, weftctl or the weft ` +
      'CNI plugin depending on its name: run /usr/bin/weftd, /usr/bin/weftctl or /usr/lib/cni/weft\n',
  );
  process.exitCode = 2;
}
