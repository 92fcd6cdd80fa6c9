/**
 * The Debian package beside the checkout in `npm run bench:cni` (docs/install.md, docs/design.md C18):
 * the .deb's size and installed size against a budget, and the packaged CNI plugin's ADD/DEL latency
 * (the single executable from the .deb) interleaved with the checkout's
 * one-file bundle in the same run. Neither may regress silently: each row says whether its goal is met.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, deleteNetns } from '../../test/helpers/netns.js';
import { callCni, REPO } from './cni.js';
import { quantile } from './control.js';

/** The shipped (xz) package must stay under this; `--fast` (gzip) builds get the gzip budget. */
export const PACKAGE_BUDGET_MIB = { xz: 30, gzip: 40 };
/** The packaged plugin's ADD p50 may be at most this × the checkout bundle's. */
export const PACKAGED_ADD_GOAL = 1.25;

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

function newestDeb(): string | null {
  const dir = process.env['BENCH_DEB'] ? null : join(REPO, 'dist', 'deb');
  if (process.env['BENCH_DEB']) return process.env['BENCH_DEB'];
  if (!dir || !existsSync(dir)) return null;
  const debs = readdirSync(dir).filter((f) => /^weft_.*\.deb$/.test(f));
  return debs.length ? join(dir, debs.sort().at(-1)!) : null;
}

/**
 * Prints the package rows; `checkoutBin` holds the checkout's installed plugin. Runs after the bench's
 * weftd stopped, so it compares the full plugins (`weft-full`: the packaged single executable against
 * the checkout's Node bundle); the shim's fast path through weftd is measured above.
 */
export async function benchPackage(o: {
  hostNs: string;
  checkoutBin: string;
  weftConf: string;
  n: number;
  nsPrefix: string;
}): Promise<void> {
  const deb = newestDeb();
  console.log('\n## The Debian package\n');
  if (!deb) {
    console.log('No .deb in dist/deb: run `npm run package` first (or set BENCH_DEB=<file>).');
    return;
  }
  const bytes = statSync(deb).size;
  const field = (f: string): string =>
    execFileSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).trim();
  const installedKib = Number(field('Installed-Size'));
  const compressor = execFileSync('ar', ['t', deb], { encoding: 'utf8' }).includes('data.tar.xz')
    ? 'xz'
    : 'gzip';
  const budget = PACKAGE_BUDGET_MIB[compressor];
  const mib = bytes / 1048576;
  const root = mkdtempSync(join(tmpdir(), 'weft-bench-deb-'));
  try {
    execFileSync('dpkg-deb', ['-x', deb, root]);
    const packaged = join(root, 'usr', 'lib', 'cni', 'weft-full');
    const t = { checkoutAdd: [] as number[], checkoutDel: [] as number[] };
    const p = { add: [] as number[], del: [] as number[] };
    for (let i = 0; i < o.n; i++) {
      for (const which of ['checkout', 'package'] as const) {
        const ns = await createNetns(`${o.nsPrefix}${which[0]}${i}`);
        try {
          const call = (command: 'ADD' | 'DEL') =>
            callCni({
              plugin: which === 'checkout' ? join(o.checkoutBin, 'weft-full') : packaged,
              binDir: which === 'checkout' ? o.checkoutBin : join(root, 'usr', 'lib', 'cni'),
              hostNs: o.hostNs,
              command,
              containerNs: ns,
              conf: o.weftConf,
            });
          const add = await call('ADD');
          const del = await call('DEL');
          if (which === 'checkout') {
            t.checkoutAdd.push(add.ms);
            t.checkoutDel.push(del.ms);
          } else {
            p.add.push(add.ms);
            p.del.push(del.ms);
          }
        } finally {
          await deleteNetns(ns);
        }
      }
    }
    const ratio = quantile(p.add, 0.5) / quantile(t.checkoutAdd, 0.5);
    console.log(`${deb.split('/').at(-1)}: ${compressor}\n`);
    console.log('| measurement | packaged | checkout (same run) | goal | met |');
    console.log('|---|---|---|---|---|');
    console.log(
      `| package size | ${mib.toFixed(1)} MiB (installed ${(installedKib / 1024).toFixed(1)} MiB) | — | ≤ ${budget} MiB (${compressor}) | ${mib <= budget ? 'yes' : 'no'} |`,
    );
    console.log(
      `| CNI ADD p50 / p99, full plugin without weftd (${o.n} each, interleaved) | ${fmt(quantile(p.add, 0.5))} / ${fmt(quantile(p.add, 0.99))} | ${fmt(quantile(t.checkoutAdd, 0.5))} / ${fmt(quantile(t.checkoutAdd, 0.99))} | ≤ ${PACKAGED_ADD_GOAL} × checkout (p50): ${ratio.toFixed(2)} × | ${ratio <= PACKAGED_ADD_GOAL ? 'yes' : 'no'} |`,
    );
    console.log(
      `| CNI DEL p50 | ${fmt(quantile(p.del, 0.5))} | ${fmt(quantile(t.checkoutDel, 0.5))} | — | — |`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
