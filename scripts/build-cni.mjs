#!/usr/bin/env node
// Bundles the `weft` CNI plugin (src/cni/main.ts) into ONE CommonJS file with esbuild, so each per-container
// invocation loads a single small file and nothing else (no etcd client, pino, metrics, netlink, daemon code).
// CommonJS on purpose: installed as `<cni-bin>/weft` without an extension and outside this package, Node
// treats the file as CommonJS. Usage: node scripts/build-cni.mjs [--outfile <path>]
// It also builds the plugin's C parts in cni-shim/ (make, the machine's cc; nothing downloaded):
// cni-shim/build/weft-cni-shim (what `npm run install:cni` installs as `weft`) and
// cni-shim/build/weft_peercred.node (weftd's peer check on its CNI socket).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUTFILE = join(root, 'dist', 'cni', 'weft.cjs');
export const SHIM_DIR = join(root, 'cni-shim');
export const SHIM_BINARY = join(SHIM_DIR, 'build', 'weft-cni-shim');

/** `make -C cni-shim` with Node's headers (Debian: /usr/include/node, next to the running node). */
export function buildShim() {
  const nodeInclude = join(dirname(process.execPath), '..', 'include', 'node');
  try {
    execFileSync('make', ['-s', '-C', SHIM_DIR, `NODE_INCLUDE=${nodeInclude}`], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch {
    throw new Error(
      'building cni-shim/ failed: it needs cc and make (`apt-get install -y gcc make`) and the Node headers',
    );
  }
  return SHIM_BINARY;
}

/** Modules the plugin must never pull in (start-up cost, and layering: docs/design.md C13). */
const FORBIDDEN = [
  /node_modules\//,
  /src\/(daemon|cli|subnet|backend[^/]*|dataplane|netlink|log)\//,
];

export async function buildCni(outfile = DEFAULT_OUTFILE) {
  const result = await build({
    entryPoints: [join(root, 'src', 'cni', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    banner: { js: '#!/usr/bin/env node' },
    metafile: true,
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs);
  const bad = inputs.filter((i) => FORBIDDEN.some((re) => re.test(i)));
  if (bad.length > 0) throw new Error(`the CNI bundle must not include: ${bad.join(', ')}`);
  chmodSync(outfile, 0o755);
  const bytes = result.metafile.outputs[relative(process.cwd(), outfile)]?.bytes;
  return { outfile, inputs: inputs.length, bytes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--outfile');
  const out = i > 0 ? resolve(process.argv[i + 1]) : DEFAULT_OUTFILE;
  const r = await buildCni(out);
  console.log(`built ${r.outfile} from ${r.inputs} modules${r.bytes ? ` (${r.bytes} bytes)` : ''}`);
  console.log(`built ${buildShim()}`);
}
