/**
 * subnet.env as a hostile file on disk, read the way the plugin reads it (realDeps): a FIFO must not
 * block the plugin, a device or a huge file must not be read whole, a symlink to a regular file still
 * works; each failure is a CniError with a code, never a hang or an out-of-memory crash.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realDeps } from '../../../src/cni/deps.js';
import { CniCode, CniError } from '../../../src/cni/errors.js';
import { loadSubnetEnv } from '../../../src/cni/load-subnet.js';
import { silentLog } from '../../../src/cni/log.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-cni-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const deps = realDeps(silentLog);
const OK =
  'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';

function codeOf(fn: () => unknown): number | string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof CniError ? err.code : `not a CniError: ${String(err)}`;
  }
}

describe('subnet.env on disk (hostile)', () => {
  it('a FIFO is refused at once instead of blocking the plugin', () => {
    const fifo = join(dir, 'fifo.env');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    expect(codeOf(() => loadSubnetEnv(fifo, deps))).toBe(CniCode.IoFailure);
    expect(Date.now() - t0).toBeLessThan(1000);
  }, 3000);

  it('a symlink to a character device is refused, not read forever', () => {
    const link = join(dir, 'zero.env');
    symlinkSync('/dev/zero', link);
    expect(codeOf(() => loadSubnetEnv(link, deps))).toBe(CniCode.IoFailure);
  }, 3000);

  it('a huge (sparse, 8 GiB) file is rejected as invalid after reading a bounded prefix', () => {
    const big = join(dir, 'big.env');
    writeFileSync(big, OK);
    truncateSync(big, 8 * 1024 ** 3);
    const t0 = Date.now();
    expect(codeOf(() => loadSubnetEnv(big, deps))).toBe(CniCode.SubnetEnvInvalid);
    expect(Date.now() - t0).toBeLessThan(1000);
  }, 5000);

  it('a symlink to a regular file and a missing file behave as before', () => {
    const real = join(dir, 'real.env');
    writeFileSync(real, OK);
    const link = join(dir, 'link.env');
    symlinkSync(real, link);
    expect(loadSubnetEnv(link, deps).mtu).toBe(1450);
    expect(codeOf(() => loadSubnetEnv(join(dir, 'absent.env'), deps))).toBe(CniCode.TryAgainLater);
  });
});
