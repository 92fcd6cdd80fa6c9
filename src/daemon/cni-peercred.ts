/**
 * Loader of cni-shim/build/weft_peercred.node (SO_PEERCRED, which Node's net module does not expose),
 * built by `npm run build` (cni-shim/Makefile). WEFT_PEERCRED_ADDON overrides the path (packaging).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

type PeerCredFn = (fd: number) => PeerCred;

/** The addon's peerCred, or an Error saying where it was looked for. */
export function loadPeerCred(): PeerCredFn | Error {
  // src/daemon (tsx/vitest) and dist/daemon (built) both sit two levels below the package root.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const candidates = [
    process.env['WEFT_PEERCRED_ADDON'],
    join(root, 'cni-shim', 'build', 'weft_peercred.node'),
    // the Debian package's layout: the addon beside the executable (scripts/package.mjs)
    join(root, 'weft_peercred.node'),
  ].filter((p): p is string => typeof p === 'string' && p !== '');
  for (const p of candidates) {
    if (!existsSync(p)) continue;
    try {
      const mod = createRequire(import.meta.url)(p) as { peerCred?: unknown };
      if (typeof mod.peerCred === 'function') return mod.peerCred as PeerCredFn;
    } catch (err) {
      return new Error(`cannot load ${p}: ${(err as Error).message}`);
    }
  }
  return new Error(`${candidates.join(' or ')} not found: run \`npm run build\``);
}
