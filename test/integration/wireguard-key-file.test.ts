/**
 * The WireGuard private key file (src/backend-wireguard/key.ts) against the real kernel: one owned by
 * another user (who can read it whatever its mode) is refused, naming the owner and the fix (needs
 * root: chown); a new key reaches the disk (fsync of the file, then of the directory after the rename,
 * seen with strace) before weftd publishes its public key; with the packaged unit's capabilities (no
 * CAP_DAC_OVERRIDE, applied with setpriv) an unreadable key or state dir is an error naming the fix.
 */
import { describe, expect, it } from 'vitest';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadOrCreateKey } from '../../src/backend-wireguard/key.js';
import { requireCaps } from '../helpers/require.js';
import { run } from '../helpers/exec.js';

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

/** The checkout (the traced process loads the built module: `npm run build`, as scripts/test.sh does). */
const REPO = resolve(import.meta.dirname, '../..');

describe.skipIf(!requireCaps('strace'))('a new WireGuard key file', () => {
  it('is fsynced, renamed into place, and its directory fsynced, in that order', async () => {
    // Before: written and renamed without an fsync, so a crash soon after the first start could
    // leave an empty wireguard.key (ext4 allocates a new file's blocks late) that weftd then refused.
    const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
    try {
      const state = join(dir, 'state');
      const trace = join(dir, 'trace');
      const script =
        `import(${JSON.stringify(join(REPO, 'dist/backend-wireguard/key.js'))}).then((m) => ` +
        `m.loadOrCreateKey(${JSON.stringify(state)}, () => require('node:crypto').randomBytes(32)))`;
      await run('strace', [
        '-f',
        '-e',
        'trace=openat,fsync,fdatasync,rename,renameat,renameat2',
        '-o',
        trace,
        process.execPath,
        '-e',
        script,
      ]);
      expect(statSync(join(state, 'wireguard.key')).size).toBe(45);
      const lines = readFileSync(trace, 'utf8').split('\n');
      const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
      const tmpFd = /openat\(.*wireguard\.key\.\d+\.[0-9a-f]+\.tmp".*= (\d+)$/
        .exec(lines[at(/wireguard\.key\.\d+\.[0-9a-f]+\.tmp".*O_CREAT/)] ?? '')
        ?.at(1);
      expect(tmpFd, lines.join('\n')).toBeDefined();
      const rename = at(/rename.*\.tmp", .*wireguard\.key"/);
      const fileSync = at(new RegExp(`fsync\\(${tmpFd}\\)`));
      const dirOpen = lines.findIndex(
        (l, i) => i > rename && l.includes(`"${state}"`) && l.includes('O_DIRECTORY'),
      );
      const dirFd = /= (\d+)$/.exec(lines[dirOpen] ?? '')?.[1];
      const dirSync = lines.findIndex((l, i) => i > dirOpen && l.includes(`fsync(${dirFd})`));
      expect(fileSync, lines.join('\n')).toBeGreaterThan(-1);
      expect(fileSync).toBeLessThan(rename);
      expect(dirOpen, lines.join('\n')).toBeGreaterThan(rename);
      expect(dirSync, lines.join('\n')).toBeGreaterThan(dirOpen);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!requireCaps('root'))(
  'WireGuard key file under the packaged unit’s capabilities',
  () => {
    it('a key file or state dir root cannot read without CAP_DAC_OVERRIDE: the error names the fix', async () => {
      // packaging/weftd.service keeps only CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE, so
      // modes bind root too. Before, the error stopped at "EACCES: permission denied, open …".
      const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
      try {
        const load = (state: string) =>
          run(
            'setpriv',
            [
              '--bounding-set=-all,+net_admin,+net_raw,+net_bind_service',
              '--inh-caps=-all',
              process.execPath,
              '-e',
              `import(${JSON.stringify(join(REPO, 'dist/backend-wireguard/key.js'))}).then((m) => ` +
                `m.loadOrCreateKey(${JSON.stringify(state)}, () => require('node:crypto').randomBytes(32)))` +
                '.then(() => console.log("loaded"), (e) => console.log(e.message))',
            ],
            { allowFail: true },
          );
        const unreadable = join(dir, 'a');
        mkdirSync(unreadable);
        writeFileSync(join(unreadable, 'wireguard.key'), randomBytes(32).toString('base64') + '\n');
        chmodSync(join(unreadable, 'wireguard.key'), 0);
        const a = (await load(unreadable)).stdout;
        expect(a).toMatch(
          /cannot read the WireGuard key .*wireguard\.key: EACCES.*: weftd \(root without CAP_DAC_OVERRIDE under weftd\.service\) must own .*: chown root .*; chmod 0600 .*wireguard\.key/,
        );
        const closed = join(dir, 'b');
        mkdirSync(closed);
        chmodSync(closed, 0);
        const b = (await load(closed)).stdout;
        expect(b).toMatch(/wireguard\.key: EACCES.*chown root .*chmod u\+rwx /);
        chmodSync(closed, 0o700);
        expect((await load(closed)).stdout.trim()).toBe('loaded'); // the fix works
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
