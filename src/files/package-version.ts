// weftd's and weftctl's `version`: package.json's version, two directories above the running module
// (dist/<part>/ in the checkout, dist/bundle/ in the package: scripts/package.mjs); 'unknown' if unreadable.
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  try {
    const url = new URL('../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
