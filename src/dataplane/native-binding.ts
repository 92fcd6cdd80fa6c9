/**
 * The only loader of weft's native addon (design.md C9) and the only place where its untyped values
 * are seen. Everything else imports the typed functions below.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from '../errors.js';

/** The addon's surface, as built from native/src/addon.cc. */
export interface NativeAddon {
  openTun(name: string, vnetHdr: boolean, multiQueue: boolean): { fd: number; name: string };
  /** setns(2) for the calling (main) thread. */
  setns(fd: number, nstype: number): void;
}

let cached: NativeAddon | undefined;

function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/dataplane (tsx/vitest) and dist/dataplane (built) both sit two levels below the package root.
  const root = join(here, '..', '..');
  const out = [join(root, 'native', 'build', 'Release', 'weft_native.node')];
  const override = process.env['WEFT_NATIVE_ADDON'];
  return override ? [override, ...out] : out;
}

/** Loads the addon once; throws E_NATIVE_UNAVAILABLE naming the fix when it was not built. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const found = candidates().find((p) => existsSync(p));
  if (!found) {
    throw new WeftError(
      'E_NATIVE_UNAVAILABLE',
      `native addon not built (looked in ${candidates().join(', ')}): run \`npm run build:native\``,
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as NativeAddon;
  return cached;
}
