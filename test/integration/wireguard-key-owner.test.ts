/**
 * The WireGuard private key file owned by another user (src/backend-wireguard/key.ts): its owner can
 * read it whatever its mode, so weftd refuses it, naming the owner and the fix. Needs root (chown), so
 * it lives in this tier, not in test/unit.
 */
import { describe, expect, it } from 'vitest';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKey } from '../../src/backend-wireguard/key.js';
import { requireCaps } from '../helpers/require.js';

describe.skipIf(!requireCaps('root'))('WireGuard key file owned by another user', () => {
  it('is an error naming the owner and the fix, never used, its mode left alone', () => {
    // Before, weftd used it (0600), or, for a looser mode, failed with "cannot read the WireGuard
    // key …: EPERM … fchmod" under the packaged unit, which has no CAP_FOWNER.
    const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
    try {
      const state = join(dir, 'state');
      mkdirSync(state);
      const path = join(state, 'wireguard.key');
      for (const mode of [0o600, 0o644]) {
        writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode });
        chmodSync(path, mode);
        chownSync(path, 65534, 65534);
        expect(() =>
          loadOrCreateKey(state, () => {
            throw new Error('must not replace what is there');
          }),
        ).toThrow(
          /wireguard\.key is owned by uid 65534, not by weftd's user \(uid 0\): that user can read or replace .*`chown 0 .*wireguard\.key`.*or delete it/,
        );
        expect(statSync(path).mode & 0o777).toBe(mode);
        rmSync(path);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
