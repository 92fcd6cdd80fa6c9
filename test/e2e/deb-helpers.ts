// The .deb under test: the newest one `npm run package` wrote to dist/deb (scripts/test.sh builds it).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
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
