/** The built weftd binary's command line: --help, --version, and flag errors with exit code 2. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/exec.js';
import { useLeakCheck } from '../helpers/leaks.js';

useLeakCheck();
const repo = resolve(import.meta.dirname, '../..');
const weftd = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run('node', [join(repo, 'bin/weftd.js'), ...args], {
    allowFail: true,
    env: { PATH: process.env['PATH'], ...env },
  });

describe('weftd command line', () => {
  it('is built (npm run build; scripts/test.sh builds before the tests)', () => {
    expect(existsSync(join(repo, 'dist/daemon/main.js'))).toBe(true);
  });

  it('--help lists the flags with defaults and exits 0', async () => {
    const r = await weftd(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--etcd-endpoints <value>');
    expect(r.stdout).toContain('(default http://127.0.0.1:2379)');
    expect(r.stdout).toContain('--subnet-lease-renew-margin <n>');
    expect(r.stdout).toContain('FLANNELD_<FLAG>');
  });

  it('--version prints the package version', async () => {
    const r = await weftd(['-version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^weftd \d+\.\d+\.\d+\n$/);
  });

  it('a bad flag or env value exits 2 naming it and the fix', async () => {
    const a = await weftd(['--subnet-lease-renew-margin=0']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(
      /--subnet-lease-renew-margin=0 is invalid: must be between 1 and 1439 minutes/,
    );
    const b = await weftd([], { FLANNELD_IP_MASQ: 'maybe' });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/FLANNELD_IP_MASQ must be true or false/);
    const c = await weftd(['--no-such-flag']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--no-such-flag is not defined/);
  });
});
