/**
 * Hostile stdin for the `weft` plugin: an endless stdin (/dev/zero) must be answered with the spec's
 * error JSON (code 5) after a bounded read, not by reading until memory runs out; JSON nested deeper than
 * MAX_JSON_DEPTH is code 6 (decode failure), not a stack overflow reported as 999.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlugin } from '../../../src/cni/dispatch.js';
import type { CniDeps } from '../../../src/cni/deps.js';
import { silentLog } from '../../../src/cni/log.js';
import { MAX_JSON_DEPTH } from '../../../src/cni/netconf.js';

const REPO = resolve(import.meta.dirname, '../../..');

const noDeps: CniDeps = {
  invoke: () => Promise.reject(new Error('no delegate may run')),
  inspect: () => Promise.reject(new Error('no inspection may run')),
  log: silentLog,
  readFile: () => undefined,
  sleep: () => Promise.resolve(),
  now: () => Date.now(),
  flock: () => Promise.reject(new Error('no lock may be taken')),
};
const env = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/none',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/usr/lib/cni',
};

describe('hostile stdin', () => {
  it('an endless stdin ends in code 5 quickly, with bounded memory', () => {
    const zero = openSync('/dev/zero', 'r');
    try {
      const r = spawnSync(join(REPO, 'node_modules/.bin/tsx'), [join(REPO, 'src/cni/main.ts')], {
        stdio: [zero, 'pipe', 'pipe'],
        env: { PATH: process.env['PATH'], ...env, NODE_OPTIONS: '--max-old-space-size=256' },
        timeout: 20_000,
        encoding: 'utf8',
      });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ code: 5, msg: 'stdin is too large' });
    } finally {
      closeSync(zero);
    }
  }, 30_000);

  it.each([
    ['delegate', (deep: string) => `{"delegate":{"x":${deep}}}`],
    ['runtimeConfig', (deep: string) => `{"runtimeConfig":${deep}}`],
    ['unknown key', (deep: string) => `{"foo":${deep}}`],
  ])('JSON nested too deep in %s is code 6, and nothing runs', async (_what, wrap) => {
    const n = 100_000;
    const deep = '['.repeat(n) + '1' + ']'.repeat(n);
    const conf = wrap(deep).replace(/^\{/, '{"cniVersion":"1.0.0","name":"weft","type":"weft",');
    const out = await runPlugin(env, Buffer.from(conf), noDeps);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 6 });
  });

  it(`accepts nesting up to ${MAX_JSON_DEPTH} levels (decode passes; fails later for lack of subnet.env)`, async () => {
    let v = '1';
    for (let i = 0; i < MAX_JSON_DEPTH - 3; i++) v = `[${v}]`;
    const conf = `{"cniVersion":"1.0.0","name":"weft","type":"weft","subnetWaitSeconds":0,"dataDir":"/nonexistent/weft-test","args":{"x":${v}}}`;
    const out = await runPlugin(env, Buffer.from(conf), noDeps);
    expect(JSON.parse(out.stdout).code).not.toBe(6);
  });
});
