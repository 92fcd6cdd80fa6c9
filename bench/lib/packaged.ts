/**
 * weftd as it ships, for the memory benches (bench/rss.ts, and `npm run bench`'s RSS row): the packaged
 * single executable and weftd.service's environment, with weftd's default timers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterOptions } from '../../test/e2e/weftd-harness.js';

/** weftd's default timers (a full reconcile every 60 s, the firewall checked every 5 s), not the e2e
 *  harness's fast ones (3 s and 2 s): the memory measured is that of a daemon as deployed. */
export const DEPLOYED_FLAGS: readonly string[] = [
  '--ip-masq',
  '--resync-period=60',
  '--iptables-resync=5',
];

/**
 * Which weftd is measured: by default what ships, the packaged single executable (`npm run package
 * -- --fast` into a temporary directory, unpacked with dpkg-deb: one bundled CommonJS script, as
 * /usr/bin/weftd runs), with the environment weftd.service gives it. BENCH_RSS_WEFTD=checkout measures
 * the checkout's bin/weftd.js (ES modules from dist/, node's ESM loader), BENCH_RSS_WEFTD=<path> that
 * executable (e.g. an unpacked .deb's usr/bin/weftd).
 */
export function packagedOptions(): { opts?: ClusterOptions; label: string; cleanup(): void } {
  const which = process.env.BENCH_RSS_WEFTD ?? 'package';
  if (which === 'checkout') return { label: 'checkout bin/weftd.js', cleanup: () => {} };
  const unit = readFileSync(new URL('../../packaging/weftd.service', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(.*)$/gm)) env[m[1]!] = m[2]!;
  if (which !== 'package')
    return { opts: { weftd: which, envFor: () => env }, label: which, cleanup: () => {} };
  const tmp = mkdtempSync(join(tmpdir(), 'weft-bench-rss-'));
  try {
    execFileSync(
      process.execPath,
      [
        fileURLToPath(new URL('../../scripts/package.mjs', import.meta.url)),
        '--fast',
        '--outdir',
        tmp,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    process.stderr.write(String((err as { stderr?: unknown }).stderr ?? ''));
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'))!;
  execFileSync('dpkg-deb', ['-x', join(tmp, deb), join(tmp, 'root')]);
  return {
    opts: { weftd: join(tmp, 'root', 'usr', 'bin', 'weftd'), envFor: () => env },
    label: `packaged ${deb} (usr/bin/weftd, ${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')})`,
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}
