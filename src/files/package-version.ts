// weftd's and weftctl's `version`: package.json's version, two directories above the running module
// (dist/<part>/ in the checkout, dist/bundle/ in the package: scripts/package.mjs); 'unknown' if unreadable.
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
